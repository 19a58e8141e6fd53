"""CONTRACT A: publish / consume (behaviours 1-8, 59, 61)."""

from __future__ import annotations

import asyncio
import time

import pytest

from mqkit import Feature, Message

from ._env import Env

pytestmark = pytest.mark.asyncio

STAMP_SLACK = 1.0
"""Seconds a delivery's timestamp may lie outside its send call (contract 59): a backend
whose sending client stamps whole seconds (RabbitMQ) rounds down by up to one."""


@pytest.mark.contract(1, 8)
async def test_c01_c08_exact_id_set_with_body_key_headers(env: Env) -> None:
    topic = await env.topic("g")
    sent = [Message(f"body-{i}".encode(), key=f"k{i % 3}", headers={"n": str(i)})
            for i in range(20)]
    async with env.client.producer(topic) as producer:
        ids = await producer.send_batch(sent)
    async with env.client.consumer(topic, "g") as consumer:
        got = await env.collect(consumer, len(ids), settle_wait=0.5)
    env.check_ids(ids, got)
    by_id = {m.id: m for m in got}
    for msg_id, original in zip(ids, sent, strict=True):
        m = by_id[msg_id]
        assert (m.body, m.key, dict(m.headers)) == (original.body, original.key,
                                                   dict(original.headers))
        assert m.topic == topic and m.delivery_count >= 1
    assert all(m.timestamp is None or m.timestamp > 1e9 for m in got)


@pytest.mark.contract(2)
async def test_c02_group_retains_before_any_consumer(env: Env) -> None:
    topic = await env.topic("early")
    async with env.client.producer(topic) as producer:
        ids = await producer.send_batch([b"a", b"b", b"c"])
    async with env.client.consumer(topic, "early") as consumer:
        env.check_ids(ids, await env.collect(consumer, 3))


@pytest.mark.contract(3)
async def test_c03_live_delivery(env: Env) -> None:
    topic = await env.topic("live", live=True)
    async with env.client.consumer(topic, "live") as consumer:
        await consumer.receive(1, timeout=0.2)  # running first
        async with env.client.producer(topic) as producer:
            msg_id = await producer.send(b"live")
        # 30 s, not the default 10: on Kafka a member that joined before a new topic's
        # metadata reached the group's leader gets no partition and is replaced (2-3 s
        # idle, then a rejoin, which on a loaded CI machine took longer than 10 s once).
        # The message must still arrive.
        env.check_ids([msg_id], await env.collect(consumer, 1, timeout=30.0))


@pytest.mark.contract(4)
async def test_c04_isolation_between_topics(env: Env) -> None:
    a = await env.topic("g")
    b = await env.topic("g")
    async with env.client.producer(a) as producer:
        await producer.send(b"for-a")
    async with env.client.consumer(b, "g") as consumer:
        assert await consumer.receive(10, timeout=1.0) == []


@pytest.mark.contract(5)
async def test_c05_one_client_many_topics(env: Env) -> None:
    topics = [await env.topic("g") for _ in range(3)]
    sent: dict[str, str] = {}
    for topic in topics:
        sent[topic] = await env.client.producer(topic).send(topic.encode())
    for topic in topics:
        async with env.client.consumer(topic, "g") as consumer:
            got = await env.collect(consumer, 1)
        assert [m.id for m in got] == [sent[topic]] and got[0].body == topic.encode()


@pytest.mark.contract(6)
async def test_c06_empty_receive_is_bounded(env: Env) -> None:
    topic = await env.topic("g", live=True)
    async with env.client.consumer(topic, "g") as consumer:
        start = time.monotonic()
        assert await consumer.receive(5, timeout=0.5) == []
        elapsed = time.monotonic() - start
    assert 0.3 <= elapsed < 5.0, elapsed


@pytest.mark.contract(7)
async def test_c07_pull_iteration_and_handler_see_the_same(env: Env) -> None:
    ids_by_style: dict[str, list[str]] = {}
    for style in ("pull", "iterate", "handler"):
        topic = await env.topic("g")
        async with env.client.producer(topic) as producer:
            ids = await producer.send_batch([b"1", b"2", b"3"])
        async with env.client.consumer(topic, "g") as consumer:
            if style == "pull":
                got = [m.id for m in await env.collect(consumer, 3)]
            elif style == "iterate":
                got = []
                async for msg in consumer:
                    got.append(msg.id)
                    await msg.ack()
                    if len(got) == 3:
                        break
            else:
                got = []
                await consumer.run(lambda msg, out=got: out.append(msg.id),
                                   stop_after=3, idle_timeout=10)
        assert sorted(got) == sorted(ids)
        ids_by_style[style] = got
    assert {len(v) for v in ids_by_style.values()} == {3}
    await asyncio.sleep(0)


@pytest.mark.contract(59)
async def test_c59_delivery_carries_the_send_time(env: Env) -> None:
    """Every delivery carries the time its message was accepted: within its send call
    (give or take :data:`STAMP_SLACK`), so two sends 1.5 s apart are told apart, and
    neither stamp is the time of receipt (1.5 s after the last send)."""
    env.require(Feature.TIMESTAMP)
    topic = await env.topic("g")
    windows: dict[str, tuple[float, float]] = {}
    async with env.client.producer(topic) as producer:
        for i in range(2):
            if i:
                await asyncio.sleep(1.5)
            before = time.time()
            msg_id = await producer.send(f"stamped-{i}".encode())
            windows[msg_id] = (before, time.time())
    await asyncio.sleep(1.5)
    async with env.client.consumer(topic, "g") as consumer:
        got = await env.collect(consumer, 2)
    env.check_ids(list(windows), got)
    for m in got:
        before, after = windows[m.id]
        assert m.timestamp is not None, f"delivery {m.id} carries no timestamp"
        assert before - STAMP_SLACK <= m.timestamp <= after + STAMP_SLACK, (
            f"timestamp {m.timestamp:.3f} of {m.id} is not its send time "
            f"({before:.3f}..{after:.3f})")


@pytest.mark.contract(61)
async def test_c61_broker_ids_tell_messages_apart(env: Env) -> None:
    """Where deliveries carry the broker's own id of a message (an offset, a stream entry
    id, an SQS MessageId), no two messages carry the same one."""
    topic = await env.topic("g")
    ids = await env.client.producer(topic).send_batch([f"{i}".encode() for i in range(10)])
    async with env.client.consumer(topic, "g") as consumer:
        got = await env.collect(consumer, 10, settle_wait=0.5)
    env.check_ids(ids, got)
    broker_ids = {m.id: m.broker_id for m in got}  # a redelivery keeps its message's id
    given = [b for b in broker_ids.values() if b is not None]
    assert len(set(given)) == len(given), f"broker ids repeat across messages: {given}"
