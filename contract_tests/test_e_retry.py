"""CONTRACT E and F: dead letters, delay, TTL, priority, ordering (behaviours 27-31, 64)."""

from __future__ import annotations

import asyncio
import time

import pytest

import mqkit
from mqkit import Feature, Message

from ._env import Env, eventually

pytestmark = pytest.mark.asyncio
FAST_RETRY = mqkit.RetryPolicy(max_attempts=3, initial_backoff=0.05, max_backoff=0.2)


@pytest.mark.contract(27)
async def test_c27_dead_letter_after_max_attempts(env: Env) -> None:
    env.require(Feature.DEAD_LETTER, Feature.NACK)
    topic = await env.topic("g")
    ids = await env.client.producer(topic).send_batch(
        [Message(b"good"), Message(b"poison", headers={"origin": "test"})])
    attempts: list[int] = []

    async def handler(msg: object) -> None:
        if msg.body == b"poison":  # type: ignore[attr-defined]
            attempts.append(msg.delivery_count)  # type: ignore[attr-defined]
            raise ValueError("cannot process")

    async with env.client.consumer(topic, "g", lease=2.0) as consumer:
        stats = await consumer.run(handler, retry=FAST_RETRY, idle_timeout=4.0)
    assert stats.acked == 1 and stats.dead_lettered == 1
    assert attempts == [1, 2, 3]
    dlq = env.client.dead_letter_topic(topic)
    async with env.client.consumer(dlq, mqkit.DEAD_LETTER_GROUP) as letters:
        dead = await env.collect(letters, 1, settle_wait=0.5)
    assert [m.id for m in dead] == [ids[1]] and dead[0].body == b"poison"
    assert dead[0].headers["origin"] == "test"
    assert dead[0].headers[mqkit.DLQ_HEADERS["reason"]] == "ValueError: cannot process"
    async with env.client.consumer(topic, "g") as consumer:
        assert await consumer.receive(10, timeout=1.0) == []


@pytest.mark.contract(28)
async def test_c28_delayed_send(env: Env) -> None:
    topic = await env.topic("g", needs=(Feature.DELAY,))
    delay = 2.0
    producer = env.client.producer(topic)
    sent = time.monotonic()
    # one key: on a partitioned broker both are in one partition, one queue
    await producer.send(b"later", key="k", delay=delay)
    await producer.send(b"now", key="k")  # sent after it, not held back by it
    async with env.client.consumer(topic, "g") as consumer:
        first = await env.collect(consumer, 1, timeout=delay * 0.5)
        assert [m.body for m in first] == [b"now"]
        assert await consumer.receive(1, timeout=0.2) == []
        got = await env.collect(consumer, 1, timeout=delay + 10)
        assert [m.body for m in got] == [b"later"]
        assert time.monotonic() - sent >= delay * 0.9


@pytest.mark.contract(28)
async def test_c28_delayed_nack(env: Env) -> None:
    env.require(Feature.NACK_DELAY)
    topic = await env.topic("g")
    delay = 2.0
    await env.client.producer(topic).send(b"retry")
    async with env.client.consumer(topic, "g", lease=30.0) as consumer:
        [msg] = await env.collect(consumer, 1, ack=False)
        await msg.nack(delay=delay)
        start = time.monotonic()
        assert await consumer.receive(1, timeout=delay * 0.5) == []
        back = await env.collect(consumer, 1, timeout=delay + 10)
        assert back and back[0].delivery_count == 2
        assert back[0].body == b"retry"
        assert time.monotonic() - start >= delay * 0.9


@pytest.mark.contract(29)
async def test_c29_ttl_expires(env: Env) -> None:
    env.require(Feature.TTL)
    topic = await env.topic("g")
    await env.client.producer(topic).send(b"short", ttl=1.0)
    keep = await env.client.producer(topic).send(b"keep")
    await asyncio.sleep(2.0)
    async with env.client.consumer(topic, "g") as consumer:
        got = await env.collect(consumer, 1, settle_wait=1.0)
    assert [m.id for m in got] == [keep]
    if env.caps.support(Feature.ADMIN_STATS):  # dropped for good, not left waiting

        async def drained() -> bool:
            depth: int = await env.client.admin.depth(topic, "g")
            return depth == 0

        assert await eventually(drained, 10.0), (
            f"depth {await env.client.admin.depth(topic, 'g')} after the ttl and the read")


@pytest.mark.contract(30)
async def test_c30_priority_order(env: Env) -> None:
    env.require(Feature.PRIORITY)
    topic = await env.topic("g")
    async with env.client.producer(topic) as producer:
        for p in (1, 5, 9, 3):
            await producer.send(str(p).encode(), priority=p)
    async with env.client.consumer(topic, "g", prefetch=1) as consumer:
        order = []
        for _ in range(4):
            [m] = await env.collect(consumer, 1)
            order.append(int(m.body))
    assert order == [9, 5, 3, 1]


@pytest.mark.contract(31)
async def test_c31_per_key_order(env: Env) -> None:
    topic = await env.topic("g", needs=(Feature.ORDERING,))
    messages = [Message(f"{key}:{i}".encode(), key=key) for i in range(10) for key in "abc"]
    await env.client.producer(topic).send_batch(messages)
    async with env.client.consumer(topic, "g") as consumer:
        got = await env.collect(consumer, 30, settle_wait=0.3)
    for key in "abc":
        seq = [int(m.body.split(b":")[1]) for m in got if m.key == key]
        assert seq == sorted(seq) and len(set(seq)) == 10, (key, seq)


@pytest.mark.contract(64)
async def test_c64_same_id_sent_twice_is_delivered_once(env: Env) -> None:
    """A message sent again with the id of one sent a moment before (a producer's retry)
    is dropped by the broker: the group gets that message once, and its neighbour."""
    topic = await env.topic("g", needs=(Feature.DEDUP,))
    given = env.name("dedup")
    async with env.client.producer(topic) as producer:
        first = await producer.send_batch([Message(b"once", id=given)])
        again = await producer.send_batch([Message(b"once", id=given)])
        other = await producer.send(b"other")
    assert first == again == [given]
    async with env.client.consumer(topic, "g") as consumer:
        got = await env.collect(consumer, 2, settle_wait=1.5)
    assert sorted(m.id for m in got) == sorted([given, other]), [m.id for m in got]
