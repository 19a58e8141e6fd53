"""CONTRACT I and J: batching and admin (behaviours 40-44, 62)."""

from __future__ import annotations

import time
from typing import Any

import pytest

import mqkit
from mqkit import Feature

from ._env import Env, eventually

pytestmark = pytest.mark.asyncio


@pytest.mark.contract(40)
async def test_c40_batch_larger_than_the_limit(env: Env) -> None:
    topic = await env.topic("g")
    count = min(env.caps.max_batch * 2 + 3, 250)
    ids = await env.client.producer(topic).send_batch([f"{i}".encode() for i in range(count)])
    assert len(set(ids)) == count
    async with env.client.consumer(topic, "g") as consumer:
        env.check_ids(ids, await env.collect(consumer, count, timeout=30))


@pytest.mark.contract(41)
async def test_c41_batch_receive_with_per_message_settling(env: Env) -> None:
    env.require(Feature.NACK)
    topic = await env.topic("g")
    await env.client.producer(topic).send_batch([bytes([i]) for i in range(6)])
    async with env.client.consumer(topic, "g", lease=2.0) as consumer:
        batch = await env.collect(consumer, 6, ack=False)
        keep = [m for m in batch if m.body[0] % 2 == 0]
        for m in batch:
            if m in keep:
                await m.ack()
            else:
                await m.nack()
        again = await env.collect(consumer, 3, settle_wait=0.5)
    assert sorted(m.body[0] for m in again) == [1, 3, 5]


@pytest.mark.contract(42)
async def test_c42_admin_lifecycle(env: Env) -> None:
    env.require(Feature.RETENTION)  # without it there are no stored topics to administer
    admin = env.client.admin
    topic = env.name()
    await admin.create_topic(topic)
    await admin.create_topic(topic)  # idempotent
    assert await admin.topic_exists(topic) and topic in await admin.list_topics()
    await admin.create_group(topic, "g")
    await admin.create_group(topic, "g")
    assert await admin.group_exists(topic, "g") and "g" in await admin.list_groups(topic)
    await env.client.producer(topic).send_batch([b"1", b"2"])
    if env.caps.support(Feature.PURGE):
        await admin.purge(topic, "g")
        assert await eventually(lambda: _depth_is(admin, topic, 0), 10)
    await admin.delete_group(topic, "g")
    assert not await admin.group_exists(topic, "g")
    await admin.delete_topic(topic)
    assert not await admin.topic_exists(topic)


async def _depth_is(admin: object, topic: str, depth: int) -> bool:
    return await admin.depth(topic, "g") == depth  # type: ignore[attr-defined,no-any-return]


@pytest.mark.contract(43)
async def test_c43_depth_or_lag_follows_sends_and_acks(env: Env) -> None:
    env.require(Feature.ADMIN_STATS)
    topic = await env.topic("g")
    admin = env.client.admin
    assert await admin.depth(topic, "g") == 0
    await env.client.producer(topic).send_batch([bytes([i]) for i in range(5)])
    assert await eventually(lambda: _depth_is(admin, topic, 5), 10)
    async with env.client.consumer(topic, "g") as consumer:
        got = await env.collect(consumer, 3, ack=False)
        # held, not settled: still the group's (depth counts what is not acked yet)
        assert await eventually(lambda: _depth_is(admin, topic, 5), 10)
        await consumer.ack(got[:3])
        for m in got[3:]:
            await m.nack()
    assert await eventually(lambda: _depth_is(admin, topic, 2), 10)


@pytest.mark.contract(44)
async def test_c44_missing_destination_fails_fast_and_creates_nothing(env: Env) -> None:
    env.require(Feature.RETENTION)  # without it a subject or channel exists by being used
    missing = env.name("missing")
    with pytest.raises(mqkit.NotFound):
        await env.client.producer(missing).send(b"x")
    with pytest.raises(mqkit.NotFound):
        await env.client.consumer(missing, "g").receive(1, timeout=0.2)
    assert not await env.client.admin.topic_exists(missing)


@pytest.mark.contract(62)
async def test_c62_receive_returns_at_most_max_messages(env: Env) -> None:
    """``receive(max_messages=3)`` with ten messages waiting and room for twenty never
    returns more than three, and the calls together return all ten."""
    topic = await env.topic("g")
    ids = await env.client.producer(topic).send_batch([f"{i}".encode() for i in range(10)])
    got: list[Any] = []
    async with env.client.consumer(topic, "g", prefetch=20) as consumer:
        deadline = time.monotonic() + 15
        while len({m.id for m in got}) < len(ids) and time.monotonic() < deadline:
            batch = await consumer.receive(3, timeout=1.0)
            assert len(batch) <= 3, f"receive(3) returned {len(batch)} messages"
            await consumer.ack(batch)
            got.extend(batch)
    env.check_ids(ids, got)
