"""CONTRACT G and H: groups, fan-out, durability and faults (behaviours 32-39)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import mqkit
import mqkit.aio
from mqkit import Feature

from ._env import RESTART, Env

pytestmark = pytest.mark.asyncio
WAITING = 5.0
"""Contract 39: the timeout of the receive waiting when its topic is deleted."""


@pytest.mark.contract(32)
async def test_c32_two_groups_each_get_everything(env: Env) -> None:
    env.require(Feature.GROUPS)
    topic = await env.topic("one", "two")
    ids = await env.client.producer(topic).send_batch([bytes([i]) for i in range(10)])
    for group in ("one", "two"):
        async with env.client.consumer(topic, group) as consumer:
            env.check_ids(ids, await env.collect(consumer, 10, settle_wait=0.3))


@pytest.mark.contract(33)
async def test_c33_members_split_the_stream(env: Env) -> None:
    env.require(Feature.COMPETING_CONSUMERS)
    topic = await env.topic("g")
    ids = await env.client.producer(topic).send_batch([bytes([i]) for i in range(20)])
    members = [env.client.consumer(topic, "g", prefetch=5) for _ in range(2)]
    taken: list[list[Any]] = [[], []]
    deadline = time.monotonic() + 15

    async def work(n: int) -> None:
        while time.monotonic() < deadline and len({m.id for t in taken for m in t}) < 20:
            batch = await members[n].receive(5, timeout=0.3)
            if batch:
                await members[n].ack(batch)
                taken[n].extend(batch)

    await asyncio.gather(work(0), work(1))
    for member in members:
        await member.close()
    env.check_ids(ids, taken[0] + taken[1])
    assert sum(len(t) for t in taken) >= 20


@pytest.mark.contract(34)
async def test_c34_new_group_from_earliest_or_latest(env: Env) -> None:
    topic = await env.topic(needs=(Feature.REPLAY,))
    old = await env.client.producer(topic).send(b"old")
    await env.client.admin.create_group(topic, "from-earliest", "earliest")
    await env.client.admin.create_group(topic, "from-latest", "latest")
    new = await env.client.producer(topic).send(b"new")
    async with env.client.consumer(topic, "from-earliest") as consumer:
        env.check_ids([old, new], await env.collect(consumer, 2, settle_wait=0.3))
    async with env.client.consumer(topic, "from-latest") as consumer:
        env.check_ids([new], await env.collect(consumer, 1, settle_wait=0.3))


@pytest.mark.contract(35, 36)
async def test_c35_c36_member_leaving_and_reopening_loses_nothing(env: Env) -> None:
    topic = await env.topic("g")
    ids = await env.client.producer(topic).send_batch([bytes([i]) for i in range(12)])
    received = []
    for _ in range(3):  # each consumer takes a few, acks some, and leaves
        async with env.client.consumer(topic, "g", lease=2.0) as consumer:
            batch = await env.collect(consumer, 4, ack=False, timeout=5)
            half = batch[: len(batch) // 2]
            if half:
                await consumer.ack(half)
            received.extend(half)
    async with env.client.consumer(topic, "g", lease=2.0) as consumer:
        received.extend(await env.collect(consumer, 12 - len({m.id for m in received}),
                                          timeout=15, settle_wait=0.5))
    env.check_ids(ids, received)


@pytest.mark.contract(37)
@pytest.mark.broker_restart  # restarts the broker: -m "not broker_restart" skips it
async def test_c37_broker_restart_loses_nothing(env: Env) -> None:
    env.require(Feature.PERSISTENCE)
    env.require_harness(RESTART)
    topic = await env.topic("g")
    ids = await env.client.producer(topic).send_batch([bytes([i]) for i in range(10)])
    await asyncio.to_thread(env.handle.restart)
    ids += await env.client.producer(topic).send_batch([bytes([i]) for i in range(10, 15)])
    async with env.client.consumer(topic, "g") as consumer:
        env.check_ids(ids, await env.collect(consumer, 15, timeout=30, settle_wait=0.5))


@pytest.mark.contract(38)
@pytest.mark.broker_restart  # restarts the broker: -m "not broker_restart" skips it
async def test_c38_connection_lost_then_recovered(env: Env) -> None:
    env.require_harness(RESTART)  # an in-process backend has no broker to restart
    topic = await env.topic("g")
    consumer = env.client.consumer(topic, "g")
    await consumer.receive(1, timeout=0.2)
    await asyncio.to_thread(env.handle.restart)  # every connection of the client drops
    start = time.monotonic()
    errors: list[BaseException] = []
    got: list[object] = []
    msg_id = None
    while not got and time.monotonic() - start < 60:
        try:
            if msg_id is None:
                msg_id = await env.client.producer(topic).send(b"after-restart")
            got = await consumer.receive(1, timeout=1.0)
        except mqkit.MQError as exc:
            assert isinstance(exc, mqkit.Unavailable), f"untyped error: {exc!r}"
            errors.append(exc)
            await asyncio.sleep(0.5)
    await consumer.close()
    assert got and got[0].id == msg_id, "no automatic recovery within 60 s"  # type: ignore[attr-defined]


@pytest.mark.contract(39)
async def test_c39_topic_deleted_under_live_consumer(env: Env) -> None:
    """A receive waiting when the topic goes ends by its timeout at the latest, empty or
    with NotFound / Unavailable (never another error); the next calls raise one of
    those two within 15 s."""
    topic = await env.topic("g")
    async with env.client.consumer(topic, "g") as consumer:
        await consumer.receive(1, timeout=0.2)

        async def waiting() -> BaseException | None:
            try:
                await consumer.receive(1, timeout=WAITING)
            except mqkit.MQError as exc:
                return exc
            return None

        waiter = asyncio.create_task(waiting())
        await asyncio.sleep(0.5)
        await env.client.admin.delete_topic(topic)
        ended = await asyncio.wait_for(waiter, WAITING + 10)
        assert ended is None or isinstance(ended, (mqkit.NotFound, mqkit.Unavailable)), (
            f"a receive waiting when its topic was deleted raised {ended!r}")
        start = time.monotonic()
        errors = 0
        for _ in range(3):
            try:
                await consumer.receive(1, timeout=0.5)
            except mqkit.MQError as exc:
                assert isinstance(exc, (mqkit.NotFound, mqkit.Unavailable)), exc
                errors += 1
        assert errors >= 1, "no typed error after the topic was deleted"
        assert time.monotonic() - start < 15
