"""The connection under producers, consumers and admin (mqkit/aio/_connection.py).

An idempotent call the broker refuses as :class:`Unavailable` (Kafka right after a
start: no coordinator yet) is tried again until ``connect_timeout``, once for every
backend: drivers never retry. Run on ``faulty://`` (tests/faulty.py), both faces.
"""

from __future__ import annotations

import ast
import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mqkit
import mqkit.aio

from .faulty import FAULTS


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    FAULTS.reset()
    yield
    FAULTS.reset()


def _url() -> str:
    return f"faulty://c-{uuid.uuid4().hex[:8]}"


def test_an_unavailable_admin_call_is_tried_again_until_it_succeeds() -> None:
    with mqkit.connect(_url()) as client:
        client.admin.create_topic("t")
        FAULTS.fail("create_group", mqkit.Unavailable("no coordinator yet"), times=2)
        client.admin.create_group("t", "g")
        assert FAULTS.count("create_group") == 3
        assert client.admin.group_exists("t", "g")


def test_a_lasting_outage_raises_the_last_unavailable_after_connect_timeout() -> None:
    with mqkit.connect(_url(), connect_timeout=0.5) as client:
        client.admin.create_topic("t")
        client.admin.create_group("t", "g")
        FAULTS.fail_always("group_stats", mqkit.Unavailable("broker restarting"))
        began = time.monotonic()
        with pytest.raises(mqkit.Unavailable, match="broker restarting"):
            client.admin.stats("t", "g")
        took = time.monotonic() - began
        assert 0.4 <= took < 3.0
        assert 3 <= FAULTS.count("group_stats") <= 12  # backoff, not a spin


@pytest.mark.parametrize("error", [mqkit.PermissionDenied("denied"),
                                   mqkit.NotFound("no such group")])
def test_other_errors_are_not_retried(error: mqkit.MQError) -> None:
    with mqkit.connect(_url()) as client:
        client.admin.create_topic("t")
        FAULTS.fail("create_group", error, times=5)
        with pytest.raises(type(error)):
            client.admin.create_group("t", "g")
        assert FAULTS.count("create_group") == 1


def test_opening_a_subscription_and_a_topic_rides_out_a_refusal() -> None:
    with mqkit.connect(_url()) as client:
        client.admin.create_topic("t")
        client.admin.create_group("t", "g")
        FAULTS.fail("open_topic", mqkit.Unavailable("no leader yet"))
        FAULTS.fail("open_subscription", mqkit.Unavailable("no coordinator yet"))
        with client.producer("t") as producer:
            producer.send(b"x")
        with client.consumer("t", "g") as consumer:
            [msg] = consumer.receive(1, timeout=1)
            msg.ack(wait=True)
        assert FAULTS.count("open_topic") == 2
        assert FAULTS.count("open_subscription") == 2


def test_the_asyncio_face_retries_the_same_way() -> None:
    async def main() -> int:
        async with mqkit.aio.connect(_url()) as client:
            await client.admin.create_topic("t")
            FAULTS.fail("create_group", mqkit.Unavailable("no coordinator yet"), times=2)
            await client.admin.create_group("t", "g")
            return FAULTS.count("create_group")

    assert asyncio.run(main()) == 3


@pytest.mark.parametrize("face", ["aio", "_sync"])
def test_producer_consumer_admin_and_requests_do_not_import_the_client(face: str) -> None:
    """They depend on the connection: the face's modules are no import circle."""
    root = Path(mqkit.__file__).parent / face
    for name in ("_producer", "_consumer", "_admin", "_requests", "_connection"):
        tree = ast.parse((root / f"{name}.py").read_text())
        imported = {node.module for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module}
        assert "_client" not in imported, f"mqkit/{face}/{name}.py imports ._client"
        text = (root / f"{name}.py").read_text()
        assert "_client." not in text, f"mqkit/{face}/{name}.py reaches into the client"


# -- error mapping: one helper for every driver call -----------------------------------------

_PASSWORD = "hunter2pw"
_CALLS: list[tuple[str, str, tuple[object, ...]]] = [
    ("topic", "send_batch", ([],)),
    ("topic", "close", ()),
    ("subscription", "receive_batch", (1, 0.1)),
    ("subscription", "ack", ([],)),
    ("subscription", "nack", ([], None)),
    ("subscription", "reject", ([],)),
    ("subscription", "release", ([],)),
    ("subscription", "extend_lease", ([], 1.0)),
    ("subscription", "close", ()),
]


class _Raising:
    """A topic or subscription driver stand-in: every verb raises ``error`` (a coroutine
    function's on the asyncio face) and notes its name and arguments."""

    def __init__(self, error: BaseException, aio: bool) -> None:
        self.error = error
        self.aio = aio
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        def call(*args: object) -> None:
            self.calls.append((name, args))
            raise self.error

        async def acall(*args: object) -> None:
            call(*args)

        return acall if self.aio else call


def _mapped_call(face: str, kind: str, verb: str, args: tuple[object, ...],
                 error: BaseException) -> tuple[BaseException, _Raising]:
    """What leaves ``Mapped<kind>.<verb>(*args)`` of ``face`` over a driver raising
    ``error``, and the stand-in (to check the call was passed through unchanged)."""
    from mqkit._connect import resolve
    from mqkit._sync import _connection as sync_connection
    from mqkit.aio import _connection as aio_connection

    resolved = resolve(f"faulty://mqkit:{_PASSWORD}@h/c", {})
    inner = _Raising(error, aio=face == "aio")
    module: Any = aio_connection if face == "aio" else sync_connection
    prefix = "Async" if face == "aio" else ""
    cls = getattr(module, f"{prefix}Mapped{kind.title()}")
    mapped = cls(inner, module._Mapping(resolved))
    with pytest.raises(BaseException) as info:
        result = getattr(mapped, verb)(*args)
        if face == "aio":
            asyncio.run(result)
    return info.value, inner


@pytest.mark.parametrize("face", ["aio", "_sync"])
@pytest.mark.parametrize(("kind", "verb", "args"), _CALLS)
def test_a_library_error_leaves_as_backend_error_from_it(
        face: str, kind: str, verb: str, args: tuple[object, ...]) -> None:
    """Message (named by the plugin, scrubbed of the URL's password), ``__cause__`` and
    ``__context__`` the library's error, on every verb of both faces."""
    native = RuntimeError(f"boom for mqkit:{_PASSWORD}")
    raised, inner = _mapped_call(face, kind, verb, args, native)
    assert type(raised) is mqkit.BackendError
    assert str(raised) == "faulty: RuntimeError: boom for mqkit:***"
    assert raised.__cause__ is native and raised.__context__ is native
    assert raised.__suppress_context__
    assert inner.calls == [(verb, args)]


@pytest.mark.parametrize("face", ["aio", "_sync"])
@pytest.mark.parametrize(("kind", "verb", "args"), _CALLS)
@pytest.mark.parametrize("error", [mqkit.Unavailable("down"), KeyboardInterrupt()],
                         ids=["MQError", "BaseException"])
def test_mqkit_errors_and_base_exceptions_leave_as_they_are(
        face: str, kind: str, verb: str, args: tuple[object, ...],
        error: BaseException) -> None:
    raised, inner = _mapped_call(face, kind, verb, args, error)
    assert raised is error
    assert raised.__cause__ is None and raised.__context__ is None
    assert inner.calls == [(verb, args)]


def test_connection_calls_map_library_errors_on_both_faces() -> None:
    """Admin verbs (``_call``) and closing the driver map the same way; a library error is
    not retried (only :class:`Unavailable` is)."""
    native = RuntimeError("admin boom")
    with mqkit.connect(_url()) as client:
        FAULTS.fail("create_topic", native, times=5)
        with pytest.raises(mqkit.BackendError, match=r"^faulty: RuntimeError: admin boom$") \
                as info:
            client.admin.create_topic("t")
        assert info.value.__cause__ is native
        assert FAULTS.count("create_topic") == 1

    async def main() -> BaseException:
        async with mqkit.aio.connect(_url()) as client:
            FAULTS.fail("create_topic", native)
            with pytest.raises(mqkit.BackendError) as info:
                await client.admin.create_topic("t")
            return info.value

    raised = asyncio.run(main())
    assert str(raised) == "faulty: RuntimeError: admin boom" and raised.__cause__ is native
