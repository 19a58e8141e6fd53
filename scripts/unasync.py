#!/usr/bin/env python3
"""Generate mqkit's blocking face from its asyncio face, or check that they match.

The asyncio files are the source of truth. Each generated file is the source with
``async``/``await`` removed and ``Async*`` names renamed (``AsyncConsumer`` becomes
``Consumer``). A line ending in ``# unasync: <text>`` becomes ``<text>`` (same indent) in
the blocking file; a line ending in ``# unasync: drop`` is left out. So no decision logic
is ever written twice by hand.

    python scripts/unasync.py          # regenerate
    python scripts/unasync.py --check  # exit 1 if a generated file is stale (CI)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAIRS = {
    "mqkit/driver/_async.py": "mqkit/driver/_sync.py",
    "mqkit/aio/_client.py": "mqkit/_sync/_client.py",
    "mqkit/aio/_producer.py": "mqkit/_sync/_producer.py",
    "mqkit/aio/_consumer.py": "mqkit/_sync/_consumer.py",
    "mqkit/aio/_admin.py": "mqkit/_sync/_admin.py",
    "mqkit/aio/_received.py": "mqkit/_sync/_received.py",
    "mqkit/aio/_requests.py": "mqkit/_sync/_requests.py",
}
RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\basync def\b"), "def"),
    (re.compile(r"\basync with\b"), "with"),
    (re.compile(r"\basync for\b"), "for"),
    (re.compile(r"\bawait "), ""),
    (re.compile(r"\b__aenter__\b"), "__enter__"),
    (re.compile(r"\b__aexit__\b"), "__exit__"),
    (re.compile(r"\b__aiter__\b"), "__iter__"),
    (re.compile(r"\b__anext__\b"), "__next__"),
    (re.compile(r"\bStopAsyncIteration\b"), "StopIteration"),
    (re.compile(r"\bAsync(?=[A-Z])"), ""),
    (re.compile(r"\bmqkit\.aio\b"), "mqkit"),
]
DIRECTIVE = re.compile(r"^(?P<indent>\s*)(?P<code>.*?)\s*# unasync: (?P<text>.*)$")


def transform(source: str, origin: str) -> str:
    out = [f"# GENERATED from {origin} by scripts/unasync.py: do not edit; edit the source.\n"]
    for line in source.splitlines(keepends=True):
        match = DIRECTIVE.match(line)
        if match:
            text = match.group("text").strip()
            if text == "drop":
                continue
            out.append(f"{match.group('indent')}{text}\n")
            continue
        converted = line
        for pattern, repl in RULES:
            converted = pattern.sub(repl, converted)
        out.append(converted)
    return sort_imports("".join(out), origin)


def sort_imports(code: str, origin: str) -> str:
    """Re-sort imports with ruff (renamed names change the order), as the linter wants."""
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--quiet", "--select", "I", "--fix-only",
         "--exit-zero", "--stdin-filename", origin.replace("/aio/", "/_sync/"), "-"],
        input=code, capture_output=True, text=True, check=True, cwd=ROOT)
    return result.stdout


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for src, dst in PAIRS.items():
        wanted = transform((ROOT / src).read_text(), src)
        target = ROOT / dst
        current = target.read_text() if target.exists() else None
        if current != wanted:
            stale.append(dst)
            if not check:
                target.write_text(wanted)
    if check and stale:
        print("stale generated files (run python scripts/unasync.py):", *stale, sep="\n  ")
        return 1
    if not check:
        print(f"generated {len(PAIRS)} files ({len(stale)} changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
