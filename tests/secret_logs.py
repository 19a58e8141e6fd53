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
import uuid
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


def assert_absent(lines: Iterable[str], secret: str) -> None:
    """Fail when ``secret``, or a form a library prints it in, is in one of ``lines``."""
    from urllib.parse import quote

    forms = {secret, repr(secret)[1:-1], repr(secret.encode())[2:-1], quote(secret, safe="")}
    for line in lines:
        for form in forms:
            assert form not in line, f"secret {form!r} shows in: {line[:2000]}"


def round_trip_at_debug(url: str, **options: object) -> tuple[_Collect, BaseException | None]:
    """Connect with mqkit, create a topic and group, send and receive one message, close:
    all while the whole process logs at DEBUG. Returns the captured log and the mqkit error
    that stopped the round trip (``None`` when it completed)."""
    import mqkit

    topic = f"secret-logs-{uuid.uuid4().hex[:8]}"
    error: BaseException | None = None
    with debug_logs() as logs:
        try:
            with mqkit.connect(url, connect_timeout=5, **options) as client:
                client.admin.create_topic(topic)
                try:
                    client.admin.create_group(topic, "g")
                    with client.consumer(topic, "g") as consumer, client.producer(topic) as p:
                        consumer.receive(1, timeout=0)
                        p.send(b"secret-logs")
                        got = consumer.receive(1, timeout=10)
                        assert got and got[0].body == b"secret-logs"
                        got[0].ack()
                finally:
                    client.admin.delete_topic(topic)
        except mqkit.MQError as exc:
            error = exc
            logging.getLogger("tests.secret_logs").exception("round trip failed")
    return logs, error


def auth_url(backend: str) -> str:
    """``MQKIT_TEST_<BACKEND>_AUTH_URL`` (a broker that checks a password), with the same
    policy as ``contract_tests.brokers.env_url``: missing fails when
    ``MQKIT_REQUIRE_BACKENDS`` names the backend, else skips."""
    import os

    import pytest

    from contract_tests.brokers import required_backends

    var = f"MQKIT_TEST_{backend.upper()}_AUTH_URL"
    url = os.environ.get(var)
    if url:
        return url
    if backend in required_backends():
        pytest.fail(f"MQKIT_REQUIRE_BACKENDS names {backend} but {var} is not set")
    pytest.skip(f"no {backend} broker with authentication: set {var}")


def password_of(url: str) -> str:
    """The clear-text password of ``url``."""
    from mqkit import URL

    parsed = URL.parse(url)
    assert parsed.password is not None, "the URL has no password"
    return parsed.password.reveal()


def with_password(url: str, password: str) -> str:
    """``url`` with its password (percent-encoded) replaced by ``password``."""
    from urllib.parse import quote

    from mqkit import URL

    parsed = URL.parse(url)
    auth = f"{quote(parsed.username or 'mqkit', safe='')}:{quote(password, safe='')}@"
    scheme, _, rest = parsed.render(reveal=True).partition("://")
    return f"{scheme}://{auth}{rest.rpartition('@')[2]}"
