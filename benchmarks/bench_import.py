"""Start-up cost: ``import mqkit``, ``mqkit --help`` and the first use of the blocking face.

    python benchmarks/bench_import.py [--runs 15]

Each figure is the median over ``--runs`` fresh interpreters (after one warm-up), so a
noisy shared machine shows as a wide min-max, not a wrong median:

* ``import mqkit (in-process)``: the cumulative time ``python -X importtime`` reports
  for the ``mqkit`` package, i.e. what ``import mqkit`` costs inside a running program;
* ``python -c "import mqkit"`` and ``mqkit --help``: whole processes, wall clock, with
  the bare interpreter (``python -c pass``) alongside and subtracted (``over python``);
* ``first connect``: ``mqkit.connect("memory://")`` in a fresh process (the blocking
  face, the registry and the memory adapter load here, no longer at import).

Targets on this 2-core machine: ``import mqkit`` at most 80 ms and ``mqkit --help`` at
most 150 ms (whole process); the script prints ``ok`` or ``OVER`` next to each, and
its exit status is 0 either way (speed is reported, never asserted by tests).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

TARGETS_MS = {"python -c 'import mqkit'": 80.0, "mqkit --help": 150.0}
_IMPORTTIME = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \| mqkit$", re.MULTILINE)


def _wall(argv: Sequence[str], runs: int) -> list[float]:
    """Wall-clock milliseconds of ``argv`` as a whole process, one per run."""
    subprocess.run(argv, check=True, capture_output=True)  # warm-up (page cache, pyc)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _importtime(runs: int) -> list[float]:
    """Milliseconds ``-X importtime`` reports for the ``mqkit`` package itself."""
    argv = [sys.executable, "-X", "importtime", "-c", "import mqkit"]
    subprocess.run(argv, check=True, capture_output=True)
    out = []
    for _ in range(runs):
        err = subprocess.run(argv, check=True, capture_output=True, text=True).stderr
        match = _IMPORTTIME.search(err)
        if match is None:
            raise SystemExit("no 'mqkit' line in python -X importtime output")
        out.append(int(match.group(1)) / 1000)
    return out


def _heaviest(limit: int = 8) -> list[str]:
    """The modules with the largest cumulative import time under ``import mqkit``."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import mqkit"],
                         check=True, capture_output=True, text=True).stderr
    rows = []
    seen_site = False
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        if name.strip() == "site":
            seen_site = True  # everything up to here is interpreter start-up
            continue
        if seen_site:
            rows.append((int(parts[1]), name))
    return [f"{us / 1000:8.1f} ms  {name}" for us, name in sorted(rows, reverse=True)[:limit]]


def _row(label: str, values: list[float], base: float | None = None) -> str:
    median = statistics.median(values)
    text = (f"{label:34} median {median:7.1f} ms   min {min(values):7.1f}   "
            f"max {max(values):7.1f}")
    if base is not None:
        text += f"   over python {median - base:6.1f} ms"
    target = TARGETS_MS.get(label)
    if target is not None:
        text += f"   target {target:.0f} ms: {'ok' if median <= target else 'OVER'}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per figure")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    py = sys.executable
    script = shutil.which("mqkit", path=os.path.dirname(py)) or shutil.which("mqkit")
    help_argv = [script, "--help"] if script else [py, "-m", "mqkit.cli", "--help"]

    print(f"python {sys.version.split()[0]} at {py}; {args.runs} runs per figure")
    bare = _wall([py, "-c", "pass"], args.runs)
    base = statistics.median(bare)
    print(_row("python -c pass", bare))
    print(_row("import mqkit (in-process)", _importtime(args.runs)))
    print(_row("python -c 'import mqkit'", _wall([py, "-c", "import mqkit"], args.runs), base))
    print(_row("mqkit --help", _wall(help_argv, args.runs), base)
          + ("" if script else "   (python -m mqkit.cli: no mqkit script found)"))
    print(_row("first connect (memory://)", _wall(
        [py, "-c", "import mqkit; mqkit.connect('memory://').close()"], args.runs), base))
    print("heaviest imports under 'import mqkit' (cumulative):")
    for line in _heaviest():
        print("  " + line)


if __name__ == "__main__":
    main()
