"""A third-party adapter outside mqkit passes the whole contract suite, with no case knowing
its name.

``tests/thirdparty`` is such an adapter's own distribution (``mqkit-thirdparty``: a driver
written only against ``mqkit.driver``, over the ``memory://`` plugin, registered under the
``mqkit.adapters`` entry points as ``thirdparty://``). It is made installed the way pip
would: a ``.dist-info`` with its ``entry_points.txt`` (read from its ``pyproject.toml``) on
the path of a fresh interpreter. That takes no time and no build tool (a ``pip install``
into a venv needs the ``wheel`` package, absent on the development machines). The suite
then runs as docs/contract.md tells a third party, ``python -m pytest --pyargs
mqkit_contract``, from a directory outside the repository, so none of its pytest settings
apply. The suite is imported under its installed name, ``mqkit_contract`` (the wheel maps
the repository's ``contract_tests/`` folder to it), from a site directory that links
``mqkit`` and ``mqkit_contract`` to this clone, with the repository itself off the path:
a module of the suite that imported itself as ``contract_tests`` would fail here.

The cases sleep much and compute little, so the files run as a few concurrent pytest
processes (about 30 s instead of about 100 s), each writing its own conformance report.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "tests" / "thirdparty"
SUITE = REPO / "contract_tests"
INSTALLED = "mqkit_contract"
"""The suite's name once installed (pyproject's package-dir maps the folder to it)."""
BACKEND = "thirdparty"
HEAVY = ("test_d_ack", "test_e_retry", "test_o_settlement")
"""Files that each take a process of their own (their cases wait out leases and delays)."""
LIGHT_SHARDS = 2
TIMEOUT = 240.0
GATED = {"passed", "unsupported", "harness"}
"""The only statuses a case may end with: passed, or ruled out by the backend's declared
capabilities, or by what the harness can do for a backend it was only given the URL of."""


def _toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib

        with path.open("rb") as f:
            return tomllib.load(f)
    tomli: Any = pytest.importorskip("tomli")  # pragma: no cover - Python 3.10
    with path.open("rb") as f:  # pragma: no cover
        loaded: dict[str, Any] = tomli.load(f)
        return loaded


def install(site: Path) -> None:
    """Make ``tests/thirdparty`` an installed distribution for interpreters with ``site``
    on their path: its metadata and entry points, as pip writes them."""
    project = _toml(PACKAGE / "pyproject.toml")["project"]
    dist = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = []
    for group, entries in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in entries.items()]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")


def shards() -> list[list[str]]:
    """Every case file of the suite, as module names, split into concurrent runs."""
    modules = sorted(p.stem for p in SUITE.glob("test_*.py"))
    assert set(HEAVY) <= set(modules), "a heavy file was renamed: update HEAVY"
    light = [m for m in modules if m not in HEAVY]
    groups = [[m] for m in HEAVY] + [light[i::LIGHT_SHARDS] for i in range(LIGHT_SHARDS)]
    return [[f"{INSTALLED}.{m}" for m in group] for group in groups if group]


def contract_numbers() -> set[int]:
    """Every behaviour number a case of the suite carries."""
    found: set[int] = set()
    for path in SUITE.glob("test_*.py"):
        for args in re.findall(r"@pytest\.mark\.contract\(([^)]*)\)", path.read_text()):
            found.update(int(n) for n in args.split(","))
    return found


def child_env(site: Path, report: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MQKIT_", "PYTEST_")) and k != "PYTHONPATH"}
    env.update({
        # mqkit and the suite as installed (links in site), the adapter's package and its
        # metadata; not the repository (its contract_tests/ folder is not a module name).
        "PYTHONPATH": os.pathsep.join([str(site), str(PACKAGE)]),
        "MQKIT_CONTRACT_URLS": f"{BACKEND}={BACKEND}://suite",
        "MQKIT_CONTRACT_BACKENDS": BACKEND,
        "MQKIT_CONFORMANCE_REPORT": str(report),
    })
    return env


def run_suite(tmp: Path) -> tuple[list[tuple[list[str], int, str]], dict[str, Any]]:
    """Run every shard at once; their (modules, exit status, output) and the merged
    ``thirdparty`` report entries (number -> face -> entry)."""
    site = tmp / "site"
    install(site)
    (site / "mqkit").symlink_to(REPO / "mqkit")
    (site / INSTALLED).symlink_to(SUITE)
    work = tmp / "elsewhere"  # no pyproject, no conftest: the third party's view
    work.mkdir()
    procs = []
    for i, modules in enumerate(shards()):
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
               "--pyargs", *modules]
        out = (tmp / f"shard-{i}.log").open("w+")
        proc = subprocess.Popen(cmd, cwd=work, env=child_env(site, tmp / f"report-{i}.json"),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        procs.append((modules, proc, out))
    results = []
    behaviours: dict[str, Any] = {}
    for i, (modules, proc, out) in enumerate(procs):
        try:
            code = proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        out.seek(0)
        results.append((modules, code, out.read()))
        out.close()
        report = tmp / f"report-{i}.json"
        if report.exists():
            data = json.loads(report.read_text())
            slot = data["backends"].get(BACKEND, {})
            assert slot.get("capabilities", {}).get("backend") in (None, BACKEND)
            behaviours.update(slot.get("behaviours", {}))
    return results, behaviours


def test_third_party_adapter_passes_the_whole_suite(tmp_path: Path) -> None:
    start = time.monotonic()
    results, behaviours = run_suite(tmp_path)
    took = time.monotonic() - start
    for modules, code, output in results:
        tail = "\n".join(output.splitlines()[-30:])
        assert code == 0, f"{' '.join(modules)} exited {code}:\n{tail}"
        summary = output.strip().splitlines()[-1]
        assert " passed" in summary and "failed" not in summary and "error" not in summary, \
            summary
    ran = {int(n) for n in behaviours}
    assert ran == contract_numbers(), f"behaviours not reported: {contract_numbers() - ran}"
    bad = {f"{n}/{face}": entry for n, by_face in behaviours.items()
           for face, entry in by_face.items() if entry.get("status") not in GATED}
    assert not bad, f"cases neither passed nor capability/harness gated: {bad}"
    for by_face in behaviours.values():
        assert set(by_face) == {"sync", "async"}
    harness = {int(n) for n, by_face in behaviours.items()
               if any(e["status"] == "harness" for e in by_face.values())}
    # What a harness given only a URL cannot do: restart the broker (37's persistence is
    # declared unsupported first), make it unreachable, log in with a checked password.
    assert harness == {38, 46, 47, 57, 58}, harness
    print(f"third-party contract run: {len(results)} processes, {took:.1f} s")


def test_the_adapter_imports_only_the_driver_spi() -> None:
    """The adapter stands for one outside mqkit: of mqkit it imports ``mqkit.driver`` only."""
    source = (PACKAGE / "mqkit_thirdparty" / "__init__.py").read_text()
    imported = set(re.findall(r"^\s*(?:from|import) (mqkit[\w.]*)", source, re.MULTILINE))
    assert imported == {"mqkit.driver"}, imported


def test_shards_cover_every_case_file() -> None:
    modules = [m for group in shards() for m in group]
    assert len(modules) == len(set(modules))
    assert {m.removeprefix(f"{INSTALLED}.") for m in modules} == {
        p.stem for p in SUITE.glob("test_*.py")}
