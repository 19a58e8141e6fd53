"""CONTRACT D: ack, nack, redelivery, prefetch, leases (behaviours 17-26, 63)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import mqkit
from mqkit import Feature

from ._env import Env

pytestmark = pytest.mark.asyncio
LEASE = 2.0  # short leases keep redelivery cases fast on visibility-timeout backends
# Long enough that a redelivery inside it must come from the nack or the close itself.
HOLD = 30.0


@pytest.mark.contract(17)
async def test_c17_acked_is_never_redelivered(env: Env) -> None:
    topic = await env.topic("g")
    await env.client.producer(topic).send(b"once")
    async with env.client.consumer(topic, "g", lease=LEASE) as consumer:
        assert len(await env.collect(consumer, 1)) == 1
    await asyncio.sleep(LEASE + 0.5)
    async with env.client.consumer(topic, "g", lease=LEASE) as fresh:
        assert await fresh.receive(10, timeout=1.0) == []


@pytest.mark.contract(18, 25)
async def test_c18_c25_nack_redelivers_same_message_with_higher_count(env: Env) -> None:
    env.require(Feature.NACK)
    topic = await env.topic("g")
    msg_id = await env.client.producer(topic).send(b"again", headers={"x": "1"})
    async with env.client.consumer(topic, "g", lease=HOLD) as consumer:
        first = await env.collect(consumer, 1, ack=False)
        assert first[0].delivery_count == 1
        await first[0].nack()
        again = await env.collect(consumer, 1, ack=False, timeout=HOLD / 3)
        assert again and again[0].id == msg_id
        assert again[0].body == b"again" and dict(again[0].headers) == {"x": "1"}
        assert again[0].delivery_count == 2
        await again[0].ack()


@pytest.mark.contract(19)
async def test_c19_many_nacked_at_once_all_come_back(env: Env) -> None:
    env.require(Feature.NACK)
    topic = await env.topic("g")
    ids = await env.client.producer(topic).send_batch([bytes([i]) for i in range(10)])
    async with env.client.consumer(topic, "g", lease=HOLD) as consumer:
        first = await env.collect(consumer, 10, ack=False)
        await consumer.nack(first)
        env.check_ids(ids, await env.collect(consumer, 10, timeout=HOLD / 3))


@pytest.mark.contract(20)
async def test_c20_nack_cycles_across_consumers_lose_nothing(env: Env) -> None:
    env.require(Feature.NACK)
    topic = await env.topic("g")
    ids = await env.client.producer(topic).send_batch([bytes([i]) for i in range(6)])
    for _ in range(3):
        async with env.client.consumer(topic, "g", lease=LEASE) as consumer:
            batch = await env.collect(consumer, 6, ack=False)
            assert {m.id for m in batch} == set(ids)
            await consumer.nack(batch)
    async with env.client.consumer(topic, "g", lease=LEASE) as consumer:
        final = await env.collect(consumer, 6)
    env.check_ids(ids, final)
    assert min(m.delivery_count for m in final) >= 4


@pytest.mark.contract(21)
async def test_c21_reject_removes(env: Env) -> None:
    topic = await env.topic("g")
    await env.client.producer(topic).send(b"bad")
    async with env.client.consumer(topic, "g", lease=LEASE) as consumer:
        [msg] = await env.collect(consumer, 1, ack=False)
        await msg.reject()
        assert await consumer.receive(10, timeout=LEASE + 1.0) == []


@pytest.mark.contract(22)
async def test_c22_first_decision_wins(env: Env) -> None:
    topic = await env.topic("g")
    await env.client.producer(topic).send_batch([b"a", b"b"])
    async with env.client.consumer(topic, "g", lease=LEASE) as consumer:
        a, b = sorted(await env.collect(consumer, 2, ack=False), key=lambda m: m.body)
        await a.ack()
        with pytest.raises(mqkit.MessageStateError):
            await a.ack()
        await b.reject()
        with pytest.raises(mqkit.MessageStateError):
            await b.ack()
        assert await consumer.receive(10, timeout=LEASE + 0.5) == []


@pytest.mark.contract(23)
async def test_c23_unacked_of_closed_consumer_is_redelivered(env: Env) -> None:
    env.require(Feature.REDELIVERY_ON_CLOSE)
    topic = await env.topic("g")
    msg_id = await env.client.producer(topic).send(b"orphan")
    other = await env.connect()
    dying = other.consumer(topic, "g", lease=HOLD)
    assert [m.id for m in await env.collect(dying, 1, ack=False)] == [msg_id]
    await other.close()  # the consumer's connection goes away without an ack
    async with env.client.consumer(topic, "g", lease=HOLD) as survivor:
        got = await env.collect(survivor, 1, timeout=HOLD / 3)
    assert [m.id for m in got] == [msg_id]


@pytest.mark.contract(24)
async def test_c24_prefetch_one(env: Env) -> None:
    topic = await env.topic("g")
    await env.client.producer(topic).send_batch([b"1", b"2"])
    async with env.client.consumer(topic, "g", prefetch=1, lease=30) as consumer:
        first = await env.collect(consumer, 1, ack=False)
        assert len(first) == 1
        assert await consumer.receive(10, timeout=0.5) == []
        await first[0].ack()
        assert len(await env.collect(consumer, 1)) == 1


@pytest.mark.contract(26)
async def test_c26_slow_handler_keeps_its_lease(env: Env) -> None:
    env.require(Feature.LEASE_EXTENSION)
    topic = await env.topic("g")
    msg_id = await env.client.producer(topic).send(b"slow")
    rival = env.client.consumer(topic, "g", lease=LEASE)
    stolen: list[str] = []
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            for m in await rival.receive(5, timeout=0.5):
                stolen.append(m.id)
                await m.nack()

    watchers: list[asyncio.Task[None]] = []

    async def slow(msg: object) -> None:
        watchers.append(asyncio.create_task(watch()))  # the rival starts once we hold it
        await asyncio.sleep(LEASE * 2.5)

    async with env.client.consumer(topic, "g", lease=LEASE) as consumer:
        start = time.monotonic()
        stats = await consumer.run(slow, stop_after=1, idle_timeout=15)
    done.set()
    await asyncio.gather(*watchers)
    await rival.close()
    assert stats.acked == 1 and time.monotonic() - start >= LEASE * 2
    assert msg_id not in stolen, "a second consumer got the message during the handler"


@pytest.mark.contract(63)
async def test_c63_unsettled_message_comes_back_after_its_lease(env: Env) -> None:
    """A delivery neither settled nor extended stops being its consumer's once the lease
    runs out, though that consumer is still open: the group gets it again (here: either
    of two members, whichever receives first) no sooner than the lease, with a higher
    delivery count."""
    env.require(Feature.LEASE_EXTENSION)  # a backend with leases to extend has leases
    topic = await env.topic("g")
    msg_id = await env.client.producer(topic).send(b"forgotten")
    # one lease for both: a group may have one ack wait for all its members (JetStream)
    async with env.client.consumer(topic, "g", lease=LEASE) as holder, \
            env.client.consumer(topic, "g", lease=LEASE) as other:
        first = await env.collect(holder, 1, ack=False)
        taken = time.monotonic()
        assert [m.id for m in first] == [msg_id]
        again: list[Any] = []
        while not again and time.monotonic() - taken < LEASE + 20:
            for member in (holder, other):
                again += await member.receive(5, timeout=0.5)
        waited = time.monotonic() - taken
        await asyncio.gather(*(m.ack() for m in again))
    assert [m.id for m in again] == [msg_id], "the message never came back after its lease"
    assert waited >= LEASE * 0.75, f"back after {waited:.1f} s, before its {LEASE} s lease"
    assert again[0].delivery_count >= 2
