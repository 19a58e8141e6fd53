"""Shared by the secrets tests: generated secrets, where they may show, and DEBUG log capture.

A generated secret is made of *marker chunks* (``ZQ`` and four lowercase letters or
digits, a text that nothing else prints) joined by separators drawn from every reserved
URL character, ``%``, spaces, quotes, backslashes and non-ASCII text. A secret "shows"
when any one of its chunks appears: that catches a secret printed whole, cut into parts
(a password split at an unencoded ``/``), escaped (``repr`` of its ``bytes``) or
percent-encoded.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable, Iterator

from hypothesis import strategies as st

RESERVED = ":/?#[]@!$&'()*+,;=%"
OTHERS = (" ", "\t", '"', "\\", "~", "-", ".", "_", "é", "€", "ß", "\u00a0", "🙂", "中")
CHUNK = re.compile(r"ZQ[a-z0-9]{4}")

chunks = st.from_regex(CHUNK, fullmatch=True)


def separators(exclude: str = "") -> st.SearchStrategy[str]:
    """One to three characters from the reserved and awkward ones, minus ``exclude``."""
    alphabet = [c for c in RESERVED if c not in exclude] + [c for c in OTHERS if c not in exclude]
    return st.text(alphabet=st.sampled_from(alphabet), min_size=1, max_size=3)


@st.composite
def secrets(draw: st.DrawFn, exclude: str = "") -> str:
    """A secret: marker chunks joined by (and maybe starting/ending with) separators."""
    parts = draw(st.lists(chunks, min_size=1, max_size=4))
    seps = separators(exclude)
    text = draw(st.one_of(st.just(""), seps))
    for i, part in enumerate(parts):
        text += part
        if i < len(parts) - 1 or draw(st.booleans()):
            text += draw(seps)
    return text


def shown_chunks(text: str, secret: str) -> list[str]:
    """The chunks of ``secret`` that appear in ``text`` (empty when it does not show)."""
    return [c for c in CHUNK.findall(secret) if c in text]


def assert_hidden(texts: Iterable[str], secret: str) -> None:
    """Fail naming the text that shows part of ``secret``."""
    for text in texts:
        shown = shown_chunks(text, secret)
        assert not shown, f"secret part {shown[0]!r} shows in: {text[:2000]}"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []
        self.names: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.names.append(record.name)


@contextlib.contextmanager
def debug_logs() -> Iterator[_Collect]:
    """Everything logged anywhere at DEBUG while the block runs, formatted as a handler
    of the application would (message, exception text, stack)."""
    root = logging.getLogger()
    handler = _Collect()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
