"""The portable layer on the asyncio face, and both bridges."""

from __future__ import annotations

import asyncio
import uuid

import pytest

import mqkit
import mqkit.aio
from mqkit._registry import register
from mqkit.memory import async_only_plugin, sync_only_plugin

register(sync_only_plugin)
register(async_only_plugin)


def _url(scheme: str = "memory") -> str:
    return f"{scheme}://a-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("scheme", ["memory", "memory+sync"])
async def test_async_round_trip_and_run(scheme: str) -> None:
    """Straight through (memory) and over worker threads (a blocking-only driver)."""
    async with mqkit.aio.connect(_url(scheme)) as client:
        await client.admin.create_topic("t")
        await client.admin.create_group("t", "g")
        async with client.producer("t", codec=mqkit.JSON) as p:
            ids = await p.send_batch([{"n": n} for n in range(20)])
        seen: list[int] = []

        async def handler(msg: mqkit.aio.ReceivedMessage) -> None:
            seen.append(msg.decode()["n"])

        async with client.consumer("t", "g") as c:
            stats = await c.run(handler, stop_after=20, concurrency=4)
        assert sorted(seen) == list(range(20)) and stats.acked == 20
        assert len(set(ids)) == 20
        assert await client.admin.depth("t", "g") == 0


def test_sync_face_over_async_only_driver() -> None:
    """A blocking client over an asyncio-only driver runs it on a loop thread."""
    with mqkit.connect(_url("memory+async")) as client:
        client.admin.create_topic("t")
        client.admin.create_group("t", "g")
        with client.producer("t") as p:
            p.send_batch([b"a", b"b"])
        with client.consumer("t", "g") as c:
            got = c.receive(10, timeout=1)
            c.ack(got)
        assert sorted(m.body for m in got) == [b"a", b"b"]


async def test_await_connect_and_lazy_connect() -> None:
    client = await mqkit.aio.connect(_url())
    assert client.capabilities.backend == "memory"
    await client.close()
    lazy = mqkit.aio.connect(_url())
    with pytest.raises(mqkit.MQError, match="not connected"):
        _ = lazy.capabilities
    await lazy.admin.create_topic("t")  # first use connects
    assert lazy.capabilities.backend == "memory"
    await lazy.close()


@pytest.mark.parametrize("scheme", ["memory", "memory+sync"])
async def test_cancelled_receive_loses_nothing(scheme: str) -> None:
    async with mqkit.aio.connect(_url(scheme)) as client:
        await client.admin.create_topic("t")
        await client.admin.create_group("t", "g")
        consumer = client.consumer("t", "g", lease=30)
        task = asyncio.create_task(consumer.receive(1, timeout=2))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with client.producer("t") as p:
            await p.send(b"after-cancel")
        got = await consumer.receive(1, timeout=2)
        assert [m.body for m in got] == [b"after-cancel"]
        await consumer.close()


async def test_async_request_reply() -> None:
    async with mqkit.aio.connect(_url()) as client:
        await client.admin.create_topic("svc")
        await client.admin.create_group("svc", "workers")
        server = client.consumer("svc", "workers")

        async def answer(req: mqkit.aio.ReceivedMessage) -> None:
            await client.reply(req, b"pong:" + req.body)

        task = asyncio.create_task(server.run(answer))
        replies = await asyncio.gather(*(client.request("svc", f"{i}".encode(), timeout=5)
                                         for i in range(5)))
        assert sorted(r.body for r in replies) == [f"pong:{i}".encode() for i in range(5)]
        server.stop()
        await task
        await server.close()
