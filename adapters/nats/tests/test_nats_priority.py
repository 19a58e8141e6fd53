"""NATS adapter: priority emulated with one stream per band (``_bands``, ``_banded``).

Band naming, the consumer rule and the capability declaration are checked without a
broker; ordering, the group/band race, settling band messages, the admin verbs across
bands and the plain client's view run against the real server (``MQKIT_TEST_NATS_URL``;
skipped without it).
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mqkit_nats._bands import LOOK_EVERY, band_consumer_config
from mqkit_nats._driver import CoreDriver, JetStreamDriver
from mqkit_nats._names import (
    BANDS,
    band_subject,
    check_topic,
    is_band_subject,
    stream_name,
)
from mqkit_nats._options import NatsOptions
from mqkit_nats._wire import encode_batch
from nats.js import api

import mqkit
import mqkit.aio
from mqkit import Message, Support

# -- names and rules (no broker) ----------------------------------------------------------

_TOPICS = st.text(st.characters(codec="ascii", categories=("L", "N"),
                                include_characters="._-"), min_size=1, max_size=30)


@given(topic=_TOPICS, priority=st.integers(1, 9))
def test_band_subject_and_stream(topic: str, priority: int) -> None:
    subject = band_subject(topic, priority)
    assert subject == f"{topic}.mqkit-p{priority}"
    assert is_band_subject(subject)
    assert stream_name("MQKIT_", subject) == f"{stream_name('MQKIT_', topic)}_mqkit-p{priority}"
    with pytest.raises(mqkit.ConfigurationError, match="topic"):
        check_topic(subject)


@given(priority=st.one_of(st.integers().filter(lambda p: not 1 <= p <= 9),
                          st.sampled_from([None, 1.0, "3", True])))
def test_band_subject_refuses_a_bad_priority(priority: Any) -> None:
    with pytest.raises(mqkit.InvalidMessage, match="priority"):
        band_subject("t", priority)


@given(topic=_TOPICS)
def test_topics_not_named_like_a_band_are_fine(topic: str) -> None:
    if is_band_subject(topic):
        with pytest.raises(mqkit.ConfigurationError, match="topic"):
            check_topic(topic)
    else:
        check_topic(topic)


def test_band_like_names() -> None:
    for fine in ("orders.mqkit-p", "orders.mqkit-p0", "orders.mqkit-p10", "orders-mqkit-p3",
                 "orders.mqkit-p3.x", "mqkit-p3"):
        assert not is_band_subject(fine)
        check_topic(fine)
    assert BANDS == (9, 8, 7, 6, 5, 4, 3, 2, 1)


def _info(policy: api.DeliverPolicy) -> api.ConsumerInfo:
    created = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    config = api.ConsumerConfig(name="g", durable_name="g", deliver_policy=policy,
                                ack_policy=api.AckPolicy.EXPLICIT, ack_wait=7.0,
                                max_deliver=5, filter_subject="t", opt_start_seq=None)
    return api.ConsumerInfo(name="g", stream_name="MQKIT_t", config=config, created=created)


def test_band_consumer_starts_where_its_group_started() -> None:
    earliest = band_consumer_config(_info(api.DeliverPolicy.ALL), "t.mqkit-p3", None)
    assert earliest.deliver_policy == api.DeliverPolicy.ALL
    assert earliest.filter_subject == "t.mqkit-p3" and earliest.durable_name == "g"
    assert earliest.ack_wait == 7.0 and earliest.max_deliver == 5
    for policy in (api.DeliverPolicy.NEW, api.DeliverPolicy.BY_START_SEQUENCE,
                   api.DeliverPolicy.LAST):
        info = _info(policy)
        later = band_consumer_config(info, "t.mqkit-p3", 42)
        assert later.deliver_policy == api.DeliverPolicy.BY_START_SEQUENCE
        assert later.opt_start_seq == 42 and later.opt_start_time is None
        assert later.filter_subject == "t.mqkit-p3" and later.ack_wait == 7.0
        with pytest.raises(ValueError, match="start sequence"):
            band_consumer_config(info, "t.mqkit-p3", None)


def test_priority_is_declared_on_jetstream_only() -> None:
    assert JetStreamDriver.capabilities_for(NatsOptions(), 1000).priority is Support.EMULATED
    assert CoreDriver.capabilities_for(NatsOptions(), 1000).priority is Support.UNSUPPORTED


def test_encode_batch_sends_each_message_to_its_subject() -> None:
    messages = [Message(b"a", id="1"), Message(b"b", id="2", priority=4)]
    data = encode_batch("t", messages, 1 << 20, "_R.", ["t", "t.mqkit-p4"])
    assert data.count(b"HPUB t _R.0 ") == 1 and data.count(b"HPUB t.mqkit-p4 _R.1 ") == 1
    assert encode_batch("t", messages, 1 << 20, "_R.", None) == encode_batch(
        "t", messages, 1 << 20, "_R.")


# -- against the broker -------------------------------------------------------------------


@pytest.fixture
async def client(url: str, name: str) -> AsyncIterator[mqkit.aio.Client]:
    async with mqkit.aio.connect(url) as c:
        try:
            yield c
        finally:
            for topic in (name, name + ".dlq"):
                await c.admin.delete_topic(topic)


async def _drain(consumer: mqkit.aio.Consumer, n: int, timeout: float = 10.0,
                 batch: int = 1) -> list[mqkit.aio.ReceivedMessage]:
    got: list[mqkit.aio.ReceivedMessage] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        msgs = await consumer.receive(batch, 0.5)
        for m in msgs:
            await m.ack()
        got.extend(msgs)
    return got


async def test_highest_band_first_fifo_within_a_band(client: mqkit.aio.Client,
                                                     name: str) -> None:
    await client.admin.create_topic(name)
    await client.admin.create_group(name, "g")
    sent = [Message(f"{p}:{i}".encode(), priority=p) for i in range(3)
            for p in (0, 2, 9, None, 5, 2)]
    await client.producer(name).send_batch(sent)
    async with client.consumer(name, "g", prefetch=4) as consumer:
        got = await _drain(consumer, len(sent), batch=4)
    order = [(m.message.priority or 0, m.body) for m in got]
    assert [p for p, _ in order] == sorted((p for p, _ in order), reverse=True)
    assert [b for p, b in order if p == 2] == [b"2:0", b"2:0", b"2:1", b"2:1", b"2:2",
                                             b"2:2"]
    assert [b for p, b in order if p == 0] == [f"{p}:{i}".encode() for i in range(3)
                                               for p in (0, None)]
    assert len({m.broker_id for m in got}) == len(sent)
    assert (await client.admin.stats(name, "g")).depth == 0
    assert await client.admin.list_topics() == sorted(
        t for t in await client.admin.list_topics() if not is_band_subject(t))
    assert name in await client.admin.list_topics()


async def test_a_receive_asks_each_band_only_for_what_is_missing(
        client: mqkit.aio.Client, name: str) -> None:
    await client.admin.create_topic(name)
    await client.admin.create_group(name, "g")
    await client.producer(name).send_batch(
        [Message(b"low", priority=1), Message(b"plain"), Message(b"high", priority=8)])
    async with client.consumer(name, "g") as consumer:
        first = await consumer.receive(2, 2.0)
        assert [m.body for m in first] == [b"high", b"low"]
        await consumer.ack(first)
        rest = await consumer.receive(10, 2.0)
        assert [m.body for m in rest] == [b"plain"]
        await consumer.ack(rest)
    assert (await client.admin.stats(name, "g")).depth == 0


async def test_group_created_after_a_band_gets_the_band_from_its_start(
        client: mqkit.aio.Client, name: str) -> None:
    await client.admin.create_topic(name)
    producer = client.producer(name)
    await producer.send(b"before", priority=6)  # the band exists, no group yet
    await client.admin.create_group(name, "latest")
    await client.admin.create_group(name, "earliest", start="earliest")
    await producer.send(b"after", priority=6)
    async with client.consumer(name, "latest") as consumer:
        assert [m.body for m in await _drain(consumer, 1)] == [b"after"]
        assert await consumer.receive(5, 0.5) == []
    async with client.consumer(name, "earliest") as consumer:
        assert [m.body for m in await _drain(consumer, 2)] == [b"before", b"after"]


async def test_the_band_of_a_group_made_meanwhile_starts_at_the_group(
        client: mqkit.aio.Client, url: str, name: str) -> None:
    """The race: a group created on the plain stream whose band consumer is made only
    after a message was stored in the band still gets that message."""
    await client.admin.create_topic(name)
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        stream = stream_name("MQKIT_", name)
        await js.add_stream(api.StreamConfig(name=stream + "_mqkit-p4",
                                             subjects=[band_subject(name, 4)]))
        # The group's plain consumer as create_group makes it, its bands not yet.
        await js.add_consumer(stream, api.ConsumerConfig(
            name="g", durable_name="g", deliver_policy=api.DeliverPolicy.NEW,
            ack_policy=api.AckPolicy.EXPLICIT, filter_subject=name))
        await js.publish(band_subject(name, 4), b"meanwhile")
    finally:
        await nc.close()
    async with client.consumer(name, "g") as consumer:  # repairs: makes the band's
        assert [m.body for m in await _drain(consumer, 1)] == [b"meanwhile"]


async def test_a_band_made_while_receiving_is_found(client: mqkit.aio.Client,
                                                    name: str) -> None:
    await client.admin.create_topic(name)
    await client.admin.create_group(name, "g")
    async with client.consumer(name, "g") as consumer:
        assert await consumer.receive(1, 0.2) == []
        await client.producer(name).send(b"urgent", priority=9)
        got = await _drain(consumer, 1, timeout=LOOK_EVERY + 5)
    assert [(m.body, m.message.priority) for m in got] == [(b"urgent", 9)]


async def test_plain_clients_see_the_plain_subject(client: mqkit.aio.Client, url: str,
                                                   name: str) -> None:
    await client.admin.create_topic(name)
    await client.admin.create_group(name, "g")
    await client.producer(name).send_batch([Message(b"zero", priority=0),
                                            Message(b"three", priority=3)])
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        stream = stream_name("MQKIT_", name)
        assert (await js.stream_info(stream)).config.subjects == [name]
        assert (await js.stream_info(stream)).state.messages == 1
        band = await js.stream_info(stream + "_mqkit-p3")
        assert band.config.subjects == [band_subject(name, 3)]
        assert band.state.messages == 1
        assert [c.name for c in await js.consumers_info(stream + "_mqkit-p3")] == ["g"]
    finally:
        await nc.close()
    with pytest.raises(mqkit.ConfigurationError, match="topic"):
        await client.admin.create_topic(band_subject(name, 3))
    assert band_subject(name, 3) not in await client.admin.list_topics()


async def test_admin_verbs_span_the_bands(client: mqkit.aio.Client, url: str,
                                          name: str) -> None:
    await client.admin.create_topic(name)
    await client.admin.create_group(name, "a")
    await client.admin.create_group(name, "b")
    await client.producer(name).send_batch(
        [Message(b"1"), Message(b"2", priority=2), Message(b"3", priority=7)])
    assert (await client.admin.stats(name, "a")).depth == 3
    await client.admin.purge(name, "a")
    assert (await client.admin.stats(name, "a")).depth == 0
    assert (await client.admin.stats(name, "b")).depth == 3
    await client.producer(name).send(b"after", priority=7)
    async with client.consumer(name, "a") as consumer:
        assert [m.body for m in await _drain(consumer, 1)] == [b"after"]
    await client.admin.delete_group(name, "b")
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        stream = stream_name("MQKIT_", name)
        for band in (stream + "_mqkit-p2", stream + "_mqkit-p7"):
            assert [c.name for c in await js.consumers_info(band)] == ["a"]
        await client.admin.delete_topic(name)
        left = [i.config.name for i in await js.streams_info()
                if (i.config.name or "").startswith(stream)]
        assert left == []
    finally:
        await nc.close()


async def test_settling_band_messages(client: mqkit.aio.Client, name: str) -> None:
    """nack with a delay, lease extension, reject and the give-back on close all act on
    the band's message."""
    await client.admin.create_topic(name)
    await client.admin.create_group(name, "g")
    await client.producer(name).send_batch([Message(b"n", priority=5),
                                            Message(b"r", priority=3)])
    async with client.consumer(name, "g", lease=1.0) as holder, \
            client.consumer(name, "g", lease=1.0) as other:
        [n] = await holder.receive(1, 2.0)
        assert n.body == b"n" and n.delivery_count == 1
        for _ in range(3):  # 1.5 s, past the 1 s AckWait
            await holder.extend_lease([n], 1.0)
            for r in await other.receive(1, 0.5):  # never n: its lease is kept
                assert r.body == b"r"
                await r.reject()
        await n.nack(delay=1.0)
        start = time.monotonic()
        [again] = await _drain(holder, 1, timeout=5)
        assert again.body == b"n" and again.delivery_count == 2
        assert time.monotonic() - start >= 0.9
    await client.producer(name).send(b"c", priority=5)
    async with client.consumer(name, "g", lease=30) as consumer:
        [c] = await consumer.receive(1, 2.0)
        assert c.body == b"c"
    async with client.consumer(name, "g", lease=30) as consumer:  # given back on close
        [c2] = await _drain(consumer, 1, timeout=3)
        assert c2.id == c.id
    assert (await client.admin.stats(name, "g")).depth == 0


async def test_delay_ttl_and_dead_letters_on_a_band(client: mqkit.aio.Client,
                                                    name: str) -> None:
    await client.admin.create_topic(name)
    await client.admin.create_group(name, "g")
    producer = client.producer(name)
    await producer.send(b"later", priority=4, delay=1.5)
    await producer.send(b"gone", priority=4, ttl=0.2)
    await producer.send(b"poison", priority=8)
    await asyncio.sleep(0.3)
    sent = time.monotonic()
    seen: list[bytes] = []

    async def handler(msg: mqkit.aio.ReceivedMessage) -> None:
        seen.append(msg.body)
        if msg.body == b"poison":
            raise ValueError("bad")
        assert msg.message.priority == 4

    retry = mqkit.RetryPolicy(max_attempts=2, initial_backoff=0.05, max_backoff=0.1)
    async with client.consumer(name, "g", lease=5.0) as consumer:
        stats = await consumer.run(handler, retry=retry, idle_timeout=3.0)
    assert seen == [b"poison", b"poison", b"later"]
    assert time.monotonic() - sent >= 1.0
    assert stats.dead_lettered == 1 and stats.acked == 1
    async with client.consumer(client.dead_letter_topic(name),
                               mqkit.DEAD_LETTER_GROUP) as letters:
        [dead] = await _drain(letters, 1)
    assert dead.body == b"poison"


async def test_core_mode_has_no_priority(url: str, name: str) -> None:
    async with mqkit.aio.connect(url, mode="core") as c:
        assert c.capabilities.priority is Support.UNSUPPORTED
        with pytest.raises(mqkit.Unsupported):
            await c.producer(name).send(b"x", priority=3)


def test_sync_face_priority(url: str, name: str) -> None:
    with mqkit.connect(url) as c:
        c.admin.create_topic(name)
        try:
            c.admin.create_group(name, "g")
            with c.producer(name) as producer:
                for p in (None, 3, 7):
                    producer.send(str(p).encode(), priority=p)
            with c.consumer(name, "g") as consumer:
                got: list[bytes] = []
                deadline = time.monotonic() + 10
                while len(got) < 3 and time.monotonic() < deadline:
                    for m in consumer.receive(1, 0.5):
                        m.ack()
                        got.append(m.body)
            assert got == [b"7", b"3", b"None"]
        finally:
            c.admin.delete_topic(name)


async def test_a_wait_on_existing_bands_ends_at_the_first_arrival(
        client: mqkit.aio.Client, name: str) -> None:
    await client.admin.create_topic(name)
    await client.admin.create_group(name, "g")
    producer = client.producer(name)
    await producer.send_batch([Message(b"a", priority=2), Message(b"b", priority=7)])
    async with client.consumer(name, "g") as consumer:
        assert len(await _drain(consumer, 2, batch=10)) == 2
        late = asyncio.get_running_loop().call_later(
            0.5, lambda: asyncio.ensure_future(producer.send(b"late", priority=2)))
        start = time.monotonic()
        got = await consumer.receive(10, 5.0)
        late.cancel()
        assert [m.body for m in got] == [b"late"]
        assert time.monotonic() - start < 3.0
        await consumer.ack(got)


async def test_groups_created_while_bands_are_made_lose_nothing(
        client: mqkit.aio.Client, name: str) -> None:
    """The race, for real: groups created while producers make bands and send; every
    message sent after a group's create_group returned reaches that group."""
    await client.admin.create_topic(name)
    created: dict[str, float] = {}
    sent: list[tuple[float, str]] = []

    async def make_groups() -> None:
        for i in range(6):
            group = f"g{i}"
            await client.admin.create_group(name, group)
            created[group] = time.monotonic()
            await asyncio.sleep(0.02)

    async def send(priority: int) -> None:
        producer = client.producer(name)
        for i in range(15):
            started = time.monotonic()
            [msg_id] = await producer.send_batch([Message(f"{priority}:{i}".encode(),
                                                          priority=priority)])
            sent.append((started, msg_id))
            await asyncio.sleep(0.01)

    await asyncio.gather(make_groups(), *(send(p) for p in (3, 6, 9)))
    for group, at in created.items():
        due = {msg_id for started, msg_id in sent if started > at}
        async with client.consumer(name, group) as consumer:
            got = {m.id for m in await _drain(consumer, len(due), batch=50)}
        assert due <= got, (group, len(due - got))


async def test_big_batches_keep_strict_order_across_bands(client: mqkit.aio.Client,
                                                           name: str) -> None:
    """A band's no_wait answer is taken whole before a lower band is read: nothing of a
    higher band is left behind (buffered for later) while lower ones are handed out."""
    await client.admin.create_topic(name)
    await client.admin.create_group(name, "g")
    sent = [Message(b"x" * 100, priority=p) for _ in range(200) for p in (9, 8, 0)]
    for i in range(0, len(sent), 200):
        await client.producer(name).send_batch(sent[i:i + 200])
    async with client.consumer(name, "g", prefetch=100) as consumer:
        got = await _drain(consumer, len(sent), batch=100)
    order = [m.message.priority or 0 for m in got]
    assert len(order) == len(sent)
    assert order == sorted(order, reverse=True)
