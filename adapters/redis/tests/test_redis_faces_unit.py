"""Redis adapter: the two faces' I/O shells (``_aio`` and the ``_driver`` generated from it).

No broker: each face's link runs a flow over a fake pooled connection, and the pub/sub
subscription over a fake redis-py ``PubSub``. What is checked is what differs between
the faces by ``# unasync:`` lines (reading replies, the step deadline, when pub/sub
subscribes) and that the generated face matches its source name for name.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.exceptions as re_
from mqkit_redis import _aio, _driver, _flows
from mqkit_redis._names import Names
from mqkit_redis._options import RedisOptions

from mqkit.driver import URL, ConnectParams, Unavailable

PACKAGE = Path(_aio.__file__).parent
PARAMS = ConnectParams(url=URL.parse("redis://localhost:1"), connect_timeout=0.2)


class FakeConn:
    """A pooled connection: records what was written, answers from a script."""

    def __init__(self, replies: list[Any]) -> None:
        self.replies = list(replies)
        self.written: list[bytes] = []
        self.read_kwargs: list[dict[str, Any]] = []
        self._packer: Any = redis.Connection()  # type: ignore[no-untyped-call]  # never connected

    def pack_commands(self, commands: list[Any]) -> list[bytes]:
        packed: list[bytes] = self._packer.pack_commands(commands)
        return packed

    def send_packed_command(self, data: list[bytes]) -> None:
        self.written += data

    def read_response(self, **kwargs: Any) -> Any:
        self.read_kwargs.append(kwargs)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


class AsyncFakeConn(FakeConn):
    def __init__(self, replies: list[Any], stall: float = 0.0) -> None:
        super().__init__(replies)
        self.stall = stall

    async def send_packed_command(self, data: list[bytes]) -> None:  # type: ignore[override]
        super().send_packed_command(data)

    async def read_response(self, **kwargs: Any) -> Any:
        await asyncio.sleep(self.stall)
        return super().read_response(**kwargs)


class FakePool:
    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.released = 0

    def get_connection(self) -> Any:
        return self.conn

    def release(self, conn: Any) -> None:
        self.released += 1


class AsyncFakePool(FakePool):
    async def get_connection(self) -> Any:
        return self.conn

    async def release(self, conn: Any) -> None:  # type: ignore[override]
        self.released += 1


def _two_steps() -> _flows.Flow[list[Any]]:
    first = yield [("TYPE", "s"), ("XLEN", "s")]
    second = yield [("PING",)]
    return [*first, *second]


REPLIES = [b"stream", re_.ResponseError("WRONGTYPE nope"), b"PONG"]


def _check_run(conn: FakeConn, pool: FakePool, result: list[Any]) -> None:
    assert result[0] == b"stream" and result[2] == b"PONG"
    assert isinstance(result[1], re_.ResponseError)  # an error reply in its place
    assert len(conn.written) == 2  # one write per step
    assert conn.written[0] == b"".join(conn.pack_commands([("TYPE", "s"), ("XLEN", "s")]))
    assert pool.released == 1


def test_the_blocking_link_runs_a_flow_reading_raw_replies() -> None:
    link = _driver.Link(PARAMS, RedisOptions())
    conn, pool = FakeConn(REPLIES), FakePool(FakeConn([]))
    pool.conn = conn
    link.client.connection_pool = pool
    _check_run(conn, pool, link.run(_two_steps()))
    # each read bounded by the socket timeout: no timeout of its own
    assert conn.read_kwargs == [{"disable_decoding": True}] * 3
    assert type(link.client) is redis.Redis


def test_the_asyncio_link_runs_a_flow_with_one_deadline_per_step() -> None:
    async def main() -> None:
        link = _aio.AsyncLink(PARAMS, RedisOptions())
        conn = AsyncFakeConn(REPLIES)
        pool = AsyncFakePool(conn)
        link.client.connection_pool = pool
        _check_run(conn, pool, await link.run(_two_steps()))
        # no timer per reply: the step's deadline bounds them all
        assert conn.read_kwargs == [{"disable_decoding": True, "timeout": float("inf")}] * 3
        assert isinstance(link.client, redis.asyncio.Redis)

    asyncio.run(main())


def test_a_silent_server_times_out_the_asyncio_step_as_a_socket_timeout_would() -> None:
    async def main() -> None:
        options = RedisOptions(block_slice=0.05)
        link = _aio.AsyncLink(PARAMS, options)  # deadline: connect_timeout + block_slice
        conn = AsyncFakeConn([b"late", b"late"], stall=5.0)
        pool = AsyncFakePool(conn)
        link.client.connection_pool = pool
        with pytest.raises(re_.TimeoutError, match="no reply within"):
            await link.run(_flows.call(("PING",)))
        assert pool.released == 1
        with pytest.raises(Unavailable):  # and mapped as every redis-py timeout is
            await _aio.AsyncPubSubDriver(link, Names())._run("ping", _flows.call(("PING",)))

    asyncio.run(main())


class FakePubSub:
    def __init__(self) -> None:
        self.subscribed: list[str] = []
        self.fail: Exception | None = None

    def subscribe(self, channel: str) -> None:
        if self.fail is not None:
            raise self.fail
        self.subscribed.append(channel)

    def get_message(self, timeout: float) -> dict[str, Any] | None:
        return None


class AsyncFakePubSub(FakePubSub):
    async def subscribe(self, channel: str) -> None:  # type: ignore[override]
        super().subscribe(channel)

    async def get_message(self, timeout: float) -> dict[str, Any] | None:  # type: ignore[override]
        return None


class FakeLink:
    def __init__(self, pubsub: FakePubSub) -> None:
        self.client = self
        self._pubsub = pubsub

    def pubsub(self, ignore_subscribe_messages: bool) -> FakePubSub:
        assert ignore_subscribe_messages
        return self._pubsub


def test_blocking_pubsub_subscribes_as_it_opens() -> None:
    fake = FakePubSub()
    sub = _driver.PubSubSubscription(FakeLink(fake), "t", "p:t")  # type: ignore[arg-type]
    assert fake.subscribed == ["p:t"]
    assert sub.receive_batch(5, 0.0) == [] and fake.subscribed == ["p:t"]
    fake.fail = re_.ConnectionError("gone")
    with pytest.raises(Unavailable, match="subscribe to 't'"):
        _driver.PubSubSubscription(FakeLink(fake), "t", "p:t")  # type: ignore[arg-type]


def test_asyncio_pubsub_subscribes_at_the_first_receive() -> None:
    async def main() -> None:
        fake = AsyncFakePubSub()
        sub = _aio.AsyncPubSubSubscription(FakeLink(fake), "t", "p:t")  # type: ignore[arg-type]
        assert fake.subscribed == []
        assert await sub.receive_batch(5, 0.0) == []
        assert await sub.receive_batch(5, 0.0) == []
        assert fake.subscribed == ["p:t"]
        failing = AsyncFakePubSub()
        failing.fail = re_.ConnectionError("gone")
        sub = _aio.AsyncPubSubSubscription(FakeLink(failing), "t", "p:t")  # type: ignore[arg-type]
        with pytest.raises(Unavailable, match="receive from 't'"):
            await sub.receive_batch(5, 0.0)

    asyncio.run(main())


def _surface(module: Any) -> dict[str, list[str]]:
    """Class name (``Async`` dropped) -> its public and driver methods."""
    return {name.removeprefix("Async"): sorted(n for n, _ in inspect.getmembers(cls)
                                               if not n.startswith("__"))
            for name, cls in vars(module).items()
            if inspect.isclass(cls) and cls.__module__ == module.__name__}


def test_the_generated_face_has_the_source_faces_classes_and_methods() -> None:
    assert _surface(_driver) == _surface(_aio)
    assert _driver.__all__ == [n.removeprefix("Async") for n in _aio.__all__]


def test_the_blocking_face_is_generated_and_has_no_asyncio() -> None:
    text = (PACKAGE / "_driver.py").read_text()
    assert text.startswith("# GENERATED from adapters/redis/mqkit_redis/_aio.py")
    tree = ast.parse(text)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in imported if "asyncio" in m or m == "math"}
    assert "aclose" not in text and "redis.asyncio" not in text
