"""CONTRACT O: settlement and failure (behaviours 56, 57, 60)."""

from __future__ import annotations

import asyncio
import time

import pytest

import mqkit
from mqkit import Feature

from ._env import RESTART, Env

pytestmark = pytest.mark.asyncio
LEASE = 2.0


@pytest.mark.contract(56)
async def test_c56_per_message_decisions_batched_first_wins_close_waits(env: Env) -> None:
    """Per-message ack/nack/reject keep first-decision-wins; only close hands them over
    (a 30 s settle interval), and close waits until the broker took them."""
    env.require(Feature.NACK)
    topic = await env.topic("g")
    ids = await env.client.producer(topic).send_batch([bytes([i]) for i in range(9)])
    consumer = env.client.consumer(topic, "g", lease=LEASE, settle_interval=30.0)
    got = await env.collect(consumer, 9, ack=False)
    assert {m.id for m in got} == set(ids)
    acked, nacked, rejected = got[0:3], got[3:6], got[6:9]
    for m in acked:
        await m.ack()
    for m in nacked:
        await m.nack()
    for m in rejected:
        await m.reject()
    for m in acked + rejected:
        with pytest.raises(mqkit.MessageStateError):
            await m.nack()
    for m in nacked:
        with pytest.raises(mqkit.MessageStateError):
            await m.ack()
    await consumer.close()  # hands over all nine, or raises
    async with env.client.consumer(topic, "g", lease=LEASE) as fresh:
        back = await env.collect(fresh, 3, timeout=LEASE + 15, settle_wait=LEASE + 1)
    assert {m.id for m in back} == {m.id for m in nacked}, "acked or rejected came back"


@pytest.mark.contract(57)
@pytest.mark.broker_restart  # restarts the broker: -m "not broker_restart" skips it
async def test_c57_acks_across_a_broker_restart_never_raise(env: Env) -> None:
    """A loop that guards only receive (against Unavailable) survives a restart
    between receive and ack; what it acked stays settled or comes back."""
    topic = await env.topic("g")
    env.require_harness(RESTART)
    ids = await env.client.producer(topic).send_batch([bytes([i]) for i in range(5)])
    consumer = env.client.consumer(topic, "g", lease=LEASE)
    first = await env.collect(consumer, 5, ack=False)
    assert {m.id for m in first} == set(ids)
    await asyncio.to_thread(env.handle.restart)
    for m in first:
        await m.ack()  # must not raise, whatever the connection's state
    seen: list[object] = []
    deadline = time.monotonic() + LEASE + 20
    while time.monotonic() < deadline:
        try:
            batch = await consumer.receive(10, timeout=0.5)
        except mqkit.Unavailable:
            await asyncio.sleep(0.2)
            continue
        for m in batch:
            await m.ack()
        seen.extend(batch)
    try:
        await consumer.close()
    except mqkit.SettlementUnavailable:
        pass  # the broker stayed away past settle_timeout: those come back
    assert {m.id for m in seen} <= set(ids)  # type: ignore[attr-defined]
    if env.caps.support(Feature.PERSISTENCE):
        async with env.client.consumer(topic, "g", lease=LEASE) as fresh:
            assert await env.collect(fresh, 1, timeout=LEASE + 3) == [], \
                "acked after the restart, yet delivered again"


@pytest.mark.contract(60)
async def test_c60_released_messages_do_not_use_up_attempts(env: Env) -> None:
    """Messages that iteration held and gave back (break) keep every attempt; where the
    backend declares ``release``, their delivery count does not rise either."""
    env.require(Feature.NACK)
    topic = await env.topic("g")
    ids = await env.client.producer(topic).send_batch([bytes([i]) for i in range(6)])
    async with env.client.consumer(topic, "g", lease=LEASE) as consumer:
        taken = []
        for _ in range(3):  # each loop takes one and gives back what else it held
            async for msg in consumer:
                await msg.ack()
                taken.append(msg.id)
                break
        first_count: dict[str, int] = {}

        async def fail_once(msg: mqkit.aio.ReceivedMessage) -> None:
            assert msg.id is not None
            if msg.id not in first_count:
                first_count[msg.id] = msg.delivery_count
                raise RuntimeError("first attempt fails")

        policy = mqkit.RetryPolicy(max_attempts=2, initial_backoff=0.0, jitter=0.0)
        stats = await consumer.run(fail_once, retry=policy, idle_timeout=LEASE + 3)
    assert set(first_count) | set(taken) == set(ids)
    if env.caps.support(Feature.RELEASE):
        # Declared: the broker did not count the releases (a lease running out instead
        # of a release would show as 2 here).
        assert set(first_count.values()) == {1}, f"release counted: {first_count}"
    else:
        assert max(first_count.values()) >= 2, "nothing was released: the case proves nothing"
    assert stats.dead_lettered == 0, "a release was counted as a failed attempt"
    assert stats.retried == len(first_count) and stats.acked == len(first_count)
