#!/usr/bin/env python3
"""Generate mqkit's blocking face from its asyncio face, or check that they match.

The asyncio files are the source of truth (``PAIRS``: the core's ``mqkit/aio`` and
``mqkit/driver/_async.py``, and an adapter's asyncio driver, e.g. ``mqkit_redis/_aio.py``
-> ``_driver.py``); each generated file is the source rewritten token by token, so code and
text are told apart:

* **Code** loses ``async``/``await`` (``async def`` -> ``def``, ``await x`` -> ``x``, the
  async dunders and ``StopAsyncIteration`` -> their blocking twins) and ``Async*`` names
  are renamed (``AsyncConsumer`` -> ``Consumer``, ``mqkit.aio`` -> ``mqkit``). A
  generated tree may add names of its own (``RENAMES``, by source path: for the Redis
  adapter ``redis.asyncio`` -> ``redis``, so ``redis.asyncio.Redis`` -> ``redis.Redis``
  and ``redis.asyncio.client.Pipeline`` -> ``redis.client.Pipeline``, and ``aclose`` ->
  ``close``).
* **Strings and comments** (docstrings included) are prose: only names are renamed
  (``Async*``, the dunders, ``mqkit.aio``) and ``async def/with/for`` become
  ``def/with/for``, which mean the same on the blocking face. ``await`` is removed only
  where it prefixes code: inside a ````code span```` (````await consumer.receive()````)
  or on a ``>>>`` example line. Any other ``await`` in a string (````await```` alone,
  "await it") says something true of the asyncio face only: it is kept as written and
  reported as a *face note* naming the source line, to be reworded so it reads true on
  both faces (``--strict`` makes notes an error).
* A line ending in the comment ``# unasync: <text>`` becomes ``<text>`` (same indent) in
  the blocking file; ``# unasync: drop`` leaves the line out. A line holding only such
  a comment is a line of the blocking file alone (its indent is the comment's). So no
  decision logic is ever written twice by hand.

    python scripts/unasync.py            # regenerate the stale files
    python scripts/unasync.py --check    # exit 1 if a generated file is stale (CI)
    python scripts/unasync.py --diff     # show what regenerating would change
"""

from __future__ import annotations

import argparse
import difflib
import io
import re
import subprocess
import sys
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAIRS = {
    "mqkit/driver/_async.py": "mqkit/driver/_sync.py",
    "mqkit/aio/_client.py": "mqkit/_sync/_client.py",
    "mqkit/aio/_connection.py": "mqkit/_sync/_connection.py",
    "mqkit/aio/_producer.py": "mqkit/_sync/_producer.py",
    "mqkit/aio/_consumer.py": "mqkit/_sync/_consumer.py",
    "mqkit/aio/_admin.py": "mqkit/_sync/_admin.py",
    "mqkit/aio/_received.py": "mqkit/_sync/_received.py",
    "mqkit/aio/_requests.py": "mqkit/_sync/_requests.py",
    "mqkit/aio/_middleware.py": "mqkit/_sync/_middleware.py",
    "adapters/redis/mqkit_redis/_aio.py": "adapters/redis/mqkit_redis/_driver.py",
}
Rules = list[tuple[re.Pattern[str], str]]
# Names: renamed in code and in text alike.
NAME_RULES: Rules = [
    (re.compile(r"\b__aenter__\b"), "__enter__"),
    (re.compile(r"\b__aexit__\b"), "__exit__"),
    (re.compile(r"\b__aiter__\b"), "__iter__"),
    (re.compile(r"\b__anext__\b"), "__next__"),
    (re.compile(r"\bStopAsyncIteration\b"), "StopIteration"),
    (re.compile(r"\bAsync(?=[A-Z])"), ""),
    (re.compile(r"\bmqkit\.aio\b"), "mqkit"),
]
# Keyword phrases with an exact blocking equivalent, in code and in text.
PHRASE_RULES: Rules = [
    (re.compile(r"\basync def\b"), "def"),
    (re.compile(r"\basync with\b"), "with"),
    (re.compile(r"\basync for\b"), "for"),
]
# Names of a generated tree's own (client libraries' asyncio modules and methods), by
# the source path they apply under: renamed in code and in text, after NAME_RULES.
RENAMES: dict[str, Rules] = {
    "adapters/redis/": [
        (re.compile(r"\bredis\.asyncio\b"), "redis"),  # .Redis, .client.Pipeline, .retry
        (re.compile(r"\baclose\b"), "close"),
    ],
}
AWAIT = re.compile(r"\bawait (?=\S)")
CODE_RULES: Rules = [*PHRASE_RULES, (AWAIT, ""), *NAME_RULES]
TEXT_RULES: Rules = [*PHRASE_RULES, *NAME_RULES]
CODE_SPAN = re.compile(r"``(.+?)``")
FIELD = re.compile(r"(?<!\{)(\{(?!\{)[^{}]*\})")  # an f-string replacement field
EXAMPLE_LINE = re.compile(r"^(\s*>>> )(.*)$")
FACE_WORD = re.compile(r"\bawait\b|\basync\b(?!io)")
DIRECTIVE = re.compile(r"^# unasync: (?P<text>.*)$")
HEADER = "# GENERATED from {origin} by scripts/unasync.py: do not edit; edit the source.\n"
# The same on two lines, where one would pass the line length (a long source path).
HEADER_WRAPPED = ("# GENERATED from {origin} by scripts/unasync.py:\n"
                  "# do not edit; edit the source.\n")
LINE_LENGTH = 100  # pyproject's [tool.ruff] line-length


@dataclass(frozen=True)
class Note:
    """A string of the blocking face that still speaks of ``await``/``async``."""

    origin: str
    line: int
    text: str

    def __str__(self) -> str:
        return (f"{self.origin}:{self.line}: face note: the blocking face's text still says "
                f"{self.text.strip()!r}; reword it to read true on both faces")


def _apply(rules: Rules, text: str) -> str:
    for pattern, repl in rules:
        text = pattern.sub(repl, text)
    return text


def renames(origin: str) -> Rules:
    """The extra names (``RENAMES``) of the tree ``origin`` (a repository path) is in."""
    return [rule for prefix, rules in RENAMES.items() if origin.startswith(prefix)
            for rule in rules]


def convert_text(text: str, fstring: bool = False,
                 extra: Sequence[tuple[re.Pattern[str], str]] = ()) -> str:
    """A piece of a string literal or comment, rewritten for the blocking face.

    ``fstring``: the piece belongs to an f-string token (Python < 3.12), whose
    replacement fields (``{...}``) are code. ``extra``: names of the tree's own.
    """
    code_rules = [*CODE_RULES, *extra]
    if fstring:
        parts = FIELD.split(text)
        return "".join(_apply(code_rules, part) if i % 2 else convert_text(part, extra=extra)
                       for i, part in enumerate(parts))
    text = _apply([*TEXT_RULES, *extra], text)
    text = CODE_SPAN.sub(lambda m: "``" + AWAIT.sub("", m.group(1)) + "``", text)
    match = EXAMPLE_LINE.match(text)
    if match:
        text = match.group(1) + _apply(code_rules, match.group(2))
    return text


def _text_spans(source: str) -> dict[int, list[tuple[int, int, bool]]]:
    """Per line number (1-based), the column ranges that are string or comment text,
    each with whether it is (part of) an f-string token whose fields are code.

    On Python 3.12+ an f-string's replacement fields are tokenized as code (only its
    literal parts, ``FSTRING_MIDDLE``, are text); before, an f-string is one token.
    """
    text_types = {tokenize.STRING, tokenize.COMMENT}
    middle = getattr(tokenize, "FSTRING_MIDDLE", None)
    if middle is not None:
        text_types.add(middle)
    lines = source.splitlines(keepends=True)
    spans: dict[int, list[tuple[int, int, bool]]] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in text_types:
            continue
        fstring = tok.type == tokenize.STRING and "f" in _prefix(tok.string).lower()
        (srow, scol), (erow, ecol) = tok.start, tok.end
        for row in range(srow, erow + 1):
            start = scol if row == srow else 0
            end = ecol if row == erow else len(lines[row - 1])
            spans.setdefault(row, []).append((start, end, fstring))
    return spans


def _prefix(literal: str) -> str:
    return literal[:len(literal) - len(literal.lstrip("rRbBuUfF"))]


def _directives(source: str) -> dict[int, str]:
    """Line number -> the text of its ``# unasync:`` comment (a real comment token)."""
    found = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            match = DIRECTIVE.match(tok.string)
            if match:
                found[tok.start[0]] = match.group("text").strip()
    return found


def transform_notes(source: str, origin: str,
                    target: str | None = None) -> tuple[str, list[Note]]:
    """The blocking twin of ``source`` (imports sorted as for ``target``, by default
    ``origin`` with ``/aio/`` read as ``/_sync/``), and its face notes."""
    extra = renames(origin)
    code_rules = [*CODE_RULES, *extra]
    spans = _text_spans(source)
    directives = _directives(source)
    header = HEADER.format(origin=origin)
    if len(header) > LINE_LENGTH + 1:
        header = HEADER_WRAPPED.format(origin=origin)
    out = [header]
    notes: list[Note] = []
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        if number in directives:
            text = directives[number]
            if text != "drop":
                out.append(f"{line[:len(line) - len(line.lstrip())]}{text}\n")
            continue
        pieces, pos = [], 0
        for start, end, fstring in sorted(spans.get(number, [])):
            pieces.append(_apply(code_rules, line[pos:start]))
            prose = convert_text(line[start:end], fstring, extra)
            if FACE_WORD.search(prose):
                notes.append(Note(origin, number, prose))
            pieces.append(prose)
            pos = end
        pieces.append(_apply(code_rules, line[pos:]))
        out.append("".join(pieces))
    return sort_imports("".join(out), target or origin.replace("/aio/", "/_sync/")), notes


def transform(source: str, origin: str, target: str | None = None) -> str:
    """The blocking twin of ``source``, read from ``origin`` (a repository path), to be
    written to ``target``."""
    return transform_notes(source, origin, target)[0]


def sort_imports(code: str, target: str) -> str:
    """Re-sort imports with ruff (renamed names change the order), as the linter wants
    them in ``target`` (the generated file's repository path)."""
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--quiet", "--select", "I", "--fix-only",
         "--exit-zero", "--stdin-filename", target, "-"],
        input=code, capture_output=True, text=True, check=True, cwd=ROOT)
    return result.stdout


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/unasync.py",
        description="Generate mqkit's blocking face (mqkit/_sync, mqkit/driver/_sync.py, "
                    "adapters/redis/mqkit_redis/_driver.py) from its asyncio face. Without "
                    "options: rewrite the stale files.",
        epilog="Exit status: 0 up to date (or regenerated), 1 stale (--check, --diff) or "
               "face notes with --strict, 2 bad usage.")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="write nothing; exit 1 naming every stale generated file")
    mode.add_argument("--diff", action="store_true",
                      help="write nothing; print a unified diff of what would change")
    parser.add_argument("--strict", action="store_true",
                        help="face notes (asyncio-only text left in the blocking face) "
                             "are errors")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the repository to work on (default: this script's)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root: Path = args.root
    stale: list[str] = []
    notes: list[Note] = []
    for src, dst in PAIRS.items():
        wanted, found = transform_notes((root / src).read_text(), src, dst)
        notes += found
        target = root / dst
        current = target.read_text() if target.exists() else ""
        if current == wanted:
            continue
        stale.append(dst)
        if args.diff:
            sys.stdout.writelines(difflib.unified_diff(
                current.splitlines(keepends=True), wanted.splitlines(keepends=True),
                f"a/{dst}", f"b/{dst}"))
        elif not args.check:
            target.write_text(wanted)
    for note in notes:
        print(note, file=sys.stderr)
    if args.check and stale:
        print("stale generated files (run python scripts/unasync.py):", *stale,
              sep="\n  ", file=sys.stderr)
    elif not (args.check or args.diff):
        print(f"generated {len(PAIRS)} files ({len(stale)} changed)")
    if args.strict and notes:
        return 1
    return 1 if stale and (args.check or args.diff) else 0


if __name__ == "__main__":
    sys.exit(main())
