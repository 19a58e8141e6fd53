"""memory:// on the asyncio driver, and across faces (sync producer, async consumer)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

import mqkit
from mqkit.driver import (
    AsyncDriver,
    AsyncSubscriptionDriver,
    ConnectParams,
    Driver,
    Message,
    SubscriptionOptions,
)
from mqkit.memory import Broker, async_only_plugin, plugin, reset, sync_only_plugin


def _params(name: str) -> ConnectParams:
    return ConnectParams(url=mqkit.URL.parse(f"memory://{name}"))


def _m(body: bytes, **kw: object) -> Message:
    return Message(body, id=uuid.uuid4().hex, **kw)  # type: ignore[arg-type]


@pytest.fixture
def name() -> Iterator[str]:
    broker = f"a-{uuid.uuid4().hex[:10]}"
    yield broker
    reset(broker)


@pytest.fixture
async def adriver(name: str) -> AsyncIterator[AsyncDriver]:
    assert plugin.connect_async is not None
    d = await plugin.connect_async(_params(name))
    await d.create_topic("t", {})
    await d.create_group("t", "g", "latest")
    yield d
    await d.close()


@pytest.fixture
def sdriver(name: str) -> Iterator[Driver]:
    assert plugin.connect is not None
    d = plugin.connect(_params(name))
    yield d
    d.close()


async def _sub(d: AsyncDriver, **kw: object) -> AsyncSubscriptionDriver:
    return await d.open_subscription("t", "g", SubscriptionOptions(**kw))  # type: ignore[arg-type]


def test_plugins_offer_the_faces_they_name() -> None:
    assert plugin.connect is not None and plugin.connect_async is not None
    assert sync_only_plugin.schemes == ("memory+sync",) and sync_only_plugin.connect_async is None
    assert async_only_plugin.schemes == ("memory+async",) and async_only_plugin.connect is None


async def test_round_trip_and_settles(adriver: AsyncDriver) -> None:
    topic = await adriver.open_topic("t")
    await topic.send_batch([_m(b"a"), _m(b"b"), _m(b"c")])
    sub = await _sub(adriver, lease=0.2)
    a, b, c = await sub.receive_batch(3, 0)
    await sub.ack([a])
    await sub.reject([b])
    await sub.extend_lease([c], 5)
    await asyncio.sleep(0.25)
    assert await sub.receive_batch(3, 0) == []  # c's lease was extended
    await sub.nack([c], None)
    [again] = await sub.receive_batch(3, 0)
    assert again.message.body == b"c" and again.delivery_count == 2
    stats = await adriver.group_stats("t", "g")
    assert (stats.depth, stats.in_flight) == (1, 1)
    await sub.close()
    with pytest.raises(mqkit.Closed):
        await sub.receive_batch(1, 0)
    assert (await adriver.group_stats("t", "g")).in_flight == 0


async def test_waiting_receive_is_woken_by_a_sync_send_from_another_thread(
        adriver: AsyncDriver, sdriver: Driver) -> None:
    sub = await _sub(adriver)
    producer = sdriver.open_topic("t")
    threading.Timer(0.1, lambda: producer.send_batch([_m(b"cross")])).start()
    t0 = time.monotonic()
    got = await sub.receive_batch(10, 5)
    assert [d.message.body for d in got] == [b"cross"]
    assert time.monotonic() - t0 < 1


async def test_waiting_receive_does_not_block_the_loop(adriver: AsyncDriver) -> None:
    sub = await _sub(adriver)
    topic = await adriver.open_topic("t")

    async def later() -> None:
        await asyncio.sleep(0.05)
        await topic.send_batch([_m(b"same-loop")])

    sender = asyncio.create_task(later())
    got = await sub.receive_batch(10, 5)
    await sender
    assert [d.message.body for d in got] == [b"same-loop"]


async def test_sync_receiver_gets_an_async_send(adriver: AsyncDriver, sdriver: Driver) -> None:
    sub = sdriver.open_subscription("t", "g", SubscriptionOptions())
    result: list[bytes] = []
    waiter = threading.Thread(
        target=lambda: result.extend(d.message.body for d in sub.receive_batch(1, 5)))
    waiter.start()
    await asyncio.sleep(0.05)
    await (await adriver.open_topic("t")).send_batch([_m(b"to-sync")])
    await asyncio.to_thread(waiter.join, 2)
    assert result == [b"to-sync"]


async def test_wakes_when_a_delayed_message_is_due(adriver: AsyncDriver) -> None:
    sub = await _sub(adriver)
    await (await adriver.open_topic("t")).send_batch([_m(b"d", delay=0.15)])
    assert await sub.receive_batch(1, 0) == []
    t0 = time.monotonic()
    assert len(await sub.receive_batch(1, 5)) == 1
    assert 0.1 < time.monotonic() - t0 < 1


async def test_timeout_returns_empty(adriver: AsyncDriver) -> None:
    sub = await _sub(adriver)
    t0 = time.monotonic()
    assert await sub.receive_batch(1, 0.1) == []
    assert 0.09 <= time.monotonic() - t0 < 0.5


@pytest.mark.parametrize("how", ["wait_for", "cancel"])
async def test_cancelled_receive_takes_nothing(adriver: AsyncDriver, how: str) -> None:
    sub = await _sub(adriver, lease=30)
    if how == "wait_for":
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(sub.receive_batch(1, 5), 0.05)
    else:
        task = asyncio.create_task(sub.receive_batch(1, 5))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    await (await adriver.open_topic("t")).send_batch([_m(b"after")])
    await asyncio.sleep(0.02)  # let any stray wake-up run
    assert (await adriver.group_stats("t", "g")).in_flight == 0
    other = await _sub(adriver)
    assert [d.message.body for d in await other.receive_batch(1, 0)] == [b"after"]
    broker = adriver.as_(Broker)
    assert broker is not None and not broker._waiters  # no waiter left registered


async def test_cancelled_waiter_does_not_starve_the_other_one(adriver: AsyncDriver) -> None:
    doomed, alive = await _sub(adriver), await _sub(adriver)
    task = asyncio.create_task(doomed.receive_batch(1, 5))
    survivor = asyncio.create_task(alive.receive_batch(1, 5))
    await asyncio.sleep(0.05)
    task.cancel()
    await (await adriver.open_topic("t")).send_batch([_m(b"x")])
    got = await asyncio.wait_for(survivor, 1)
    assert [d.message.body for d in got] == [b"x"]


async def test_topic_deleted_under_a_waiting_async_receiver(adriver: AsyncDriver,
                                                            sdriver: Driver) -> None:
    sub = await _sub(adriver)
    threading.Timer(0.1, lambda: sdriver.delete_topic("t")).start()
    t0 = time.monotonic()
    with pytest.raises(mqkit.NotFound):
        await sub.receive_batch(1, 5)
    assert time.monotonic() - t0 < 1


async def test_driver_close_wakes_a_waiting_receiver_with_closed(name: str) -> None:
    assert plugin.connect_async is not None
    d = await plugin.connect_async(_params(name))
    await d.create_topic("t", {})
    sub = await d.open_subscription("t", "g", SubscriptionOptions())
    task = asyncio.create_task(sub.receive_batch(1, 5))
    await asyncio.sleep(0.05)
    await d.close()
    with pytest.raises(mqkit.Closed):
        await asyncio.wait_for(task, 1)
    with pytest.raises(mqkit.Closed):
        await d.list_topics()


async def test_close_redelivers_to_an_async_consumer(adriver: AsyncDriver,
                                                     sdriver: Driver) -> None:
    await (await adriver.open_topic("t")).send_batch([_m(b"held")])
    sync_sub = sdriver.open_subscription("t", "g", SubscriptionOptions(lease=60))
    assert len(sync_sub.receive_batch(1, 0)) == 1
    sub = await _sub(adriver)
    waiting = asyncio.create_task(sub.receive_batch(1, 5))
    await asyncio.sleep(0.05)
    sdriver.close()
    [back] = await asyncio.wait_for(waiting, 1)
    assert back.message.body == b"held" and back.delivery_count == 2


async def test_admin_on_the_async_face(adriver: AsyncDriver) -> None:
    await adriver.create_topic("u", {})
    assert sorted(await adriver.list_topics()) == ["t", "u"]
    assert await adriver.topic_exists("u")
    await adriver.create_group("u", "h", "earliest")
    assert await adriver.list_groups("u") == ["h"]
    await (await adriver.open_topic("u")).send_batch([_m(b"1"), _m(b"2")])
    await adriver.purge("u", "h")
    assert (await adriver.group_stats("u", "h")).depth == 0
    await adriver.delete_group("u", "h")
    assert await adriver.list_groups("u") == []
    await adriver.delete_topic("u")
    with pytest.raises(mqkit.NotFound):
        await adriver.open_topic("u")
    with pytest.raises(mqkit.ConfigurationError):
        await adriver.create_topic("v", {"retention": 1})


async def test_sends_and_ready_receives_yield_to_other_tasks(adriver: AsyncDriver) -> None:
    """Like a network driver, every call lets other tasks of the loop run: a producer
    sending in a loop (or a consumer draining a full queue) does not starve its peers."""
    sub = await _sub(adriver)
    topic = await adriver.open_topic("t")
    ticks = 0

    async def peer() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(peer())
    try:
        await asyncio.sleep(0)
        start = ticks
        for i in range(20):
            await topic.send_batch([_m(bytes([i]))])
        assert ticks - start >= 19, "send_batch never let the other task run"
        start = ticks
        got = []
        for _ in range(20):
            got += await sub.receive_batch(1, 5)
        assert len(got) == 20
        assert ticks - start >= 19, "a ready receive_batch never let the other task run"
    finally:
        task.cancel()
