#!/usr/bin/env python3
"""The repository's static checks and unit tests, defined once.

``scripts/test-all`` (CI), ``tox.ini`` and ``.pre-commit-config.yaml`` run these commands
through this script instead of listing them each, so a path or a flag changes in one place::

    python scripts/checks.py generated      # mqkit/_sync is what scripts/unasync.py makes
    python scripts/checks.py lint           # ruff over the code CI ships and tests
    python scripts/checks.py type           # mypy --strict: mqkit, the contract suite,
                                            # every adapter and its tests, tests/
    python scripts/checks.py unit           # the unit tests (no broker)
    python scripts/checks.py docs           # mkdocs build --strict into build/site
    python scripts/checks.py lint type      # several, in order; stops at the first failure
    python scripts/checks.py --list         # the names and their commands, nothing run

Each check runs with this interpreter (``python3 scripts/checks.py`` uses ``python3``'s
ruff, mypy, pytest and mkdocs) from the repository root and prints its command and its
time. The exit status is the failed command's, 2 for an unknown check name.

The adapters checked are the shipped ones: those registered in pyproject's
``mqkit.adapters`` entry points (as ``scripts/contract-suite --adapters`` prints them).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def shipped_adapters() -> list[str]:
    """The backends whose adapter package ``mqkit_<name>`` is registered in pyproject."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split('[project.entry-points."mqkit.adapters"]', 1)[-1].split("\n[", 1)[0]
    return sorted(set(re.findall(r'=\s*"mqkit_(\w+):', section)))


def _lint() -> list[list[str]]:
    paths = ["mqkit", "contract_tests", "tests", "broker_tests", "fault_tests", "scripts",
             "scripts/brokers", "scripts/clusters", "examples", "benchmarks"]
    paths += [f"adapters/{name}" for name in shipped_adapters()]
    return [[sys.executable, "-m", "ruff", "check", *paths]]


def _type() -> list[list[str]]:
    packages = ["-p", "mqkit", "-p", "contract_tests"]  # the suite, scripts/brokers' code
    for name in shipped_adapters():
        packages += ["-p", f"mqkit_{name}"]
    # pyproject's [tool.mypy] is strict for all; tests/ has no relaxed module. Each
    # adapter's tests/ is a folder of top-level modules (pytest's rootdir imports, each with
    # its own conftest), so each is its own mypy run: together they would clash by name.
    commands = [[sys.executable, "-m", "mypy", *packages],
                [sys.executable, "-m", "mypy", "tests", "broker_tests"],
                [sys.executable, "-m", "mypy", "-p", "fault_tests"]]
    commands += [[sys.executable, "-m", "mypy", f"adapters/{name}/tests"]
                 for name in shipped_adapters() if (ROOT / "adapters" / name / "tests").is_dir()]
    return commands


CHECKS: dict[str, Callable[[], list[list[str]]]] = {
    "generated": lambda: [[sys.executable, "scripts/unasync.py", "--check"]],
    "lint": _lint,
    "type": _type,
    "unit": lambda: [[sys.executable, "-m", "pytest", "-q", "tests"]],
    "docs": lambda: [[sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                      "--site-dir", "build/site"]],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/checks.py", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("names", nargs="*", metavar="CHECK",
                        help=f"one or more of: {', '.join(CHECKS)}")
    parser.add_argument("--list", action="store_true", help="print each check's commands")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in CHECKS]
    if unknown or not (args.names or args.list):
        parser.error(f"unknown check {unknown[0]!r}; choose from {', '.join(CHECKS)}"
                     if unknown else "name at least one check")
    if args.list:
        for name, commands in CHECKS.items():
            for command in commands():
                print(f"{name}: {' '.join(command)}")
        return 0
    for name in args.names:
        for command in CHECKS[name]():
            print(f"--- {name}: {' '.join(command)}", flush=True)
            start = time.monotonic()
            rc = subprocess.call(command, cwd=ROOT)
            print(f"--- {name}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} "
                  f"in {time.monotonic() - start:.1f} s", flush=True)
            if rc:
                return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
