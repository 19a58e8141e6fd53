"""Kafka adapter against a real broker (``MQKIT_TEST_KAFKA_URL``, ``scripts/brokers``).

Skipped without the URL, except under ``MQKIT_REQUIRE_BACKENDS`` naming kafka, where a
missing URL fails. The test marked ``broker_restart`` restarts the broker with
``scripts/brokers restart kafka``.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from mqkit_kafka._driver import KafkaDriver
from mqkit_kafka._net import group_state

import mqkit

ROOT = Path(__file__).resolve().parents[3]


def _servers(url: str) -> str:
    return url.removeprefix("kafka://").split("?")[0].split("/")[0]


@pytest.fixture
def client(url: str) -> Iterator[mqkit.Client]:
    with mqkit.connect(url) as c:
        yield c


@pytest.fixture
def topic(client: mqkit.Client, name: str) -> Iterator[str]:
    client.admin.create_topic(name)
    yield name
    try:
        client.admin.delete_topic(name)
        client.admin.delete_topic(client.dead_letter_topic(name))
    except mqkit.MQError:
        pass


def _collect(consumer: mqkit.Consumer, count: int, timeout: float = 15.0,
             ack: bool = True) -> list[mqkit.ReceivedMessage]:
    got: list[mqkit.ReceivedMessage] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        batch = consumer.receive(100, 0.5)
        if ack and batch:
            consumer.ack(batch)
        got.extend(batch)
    return got


# -- interop with plain kafka-python --------------------------------------------------

def test_plain_client_writes_mqkit_reads(client: mqkit.Client, topic: str, url: str) -> None:
    client.admin.create_group(topic, "g")
    raw = KafkaProducer(bootstrap_servers=_servers(url), acks="all")
    body = b"\x00plain\xff"
    raw.send(topic, value=body, key=b"k1", headers=[("tenant", b"a"), ("who", "zoë".encode())])
    raw.send(topic, value=b"second", headers=[("mqkit-id", b"given-id")])
    raw.flush()
    raw.close()
    with client.consumer(topic, "g") as consumer:
        got = sorted(_collect(consumer, 2), key=lambda m: m.body)
    assert [m.body for m in got] == [body, b"second"]
    assert got[0].key == "k1" and dict(got[0].headers) == {"tenant": "a", "who": "zoë"}
    first_id = got[0].id
    assert first_id is not None and first_id.startswith(f"{topic}:")  # topic:partition:offset
    assert got[1].id == "given-id" and dict(got[1].headers) == {}


def test_mqkit_writes_plain_client_reads(client: mqkit.Client, topic: str, url: str) -> None:
    with client.producer(topic) as producer:
        msg_id = producer.send(b"\x01to-plain", key="user-1", headers={"tenant": "b"},
                               content_type="application/octet-stream")
    raw = KafkaConsumer(topic, bootstrap_servers=_servers(url), group_id=f"{topic}-plain",
                        auto_offset_reset="earliest", consumer_timeout_ms=15000)
    try:
        record = next(iter(raw))
    finally:
        raw.close()
    headers = {k: v.decode() for k, v in record.headers}
    assert record.value == b"\x01to-plain" and record.key == b"user-1"
    assert headers == {"tenant": "b", "mqkit-id": msg_id,
                       "content-type": "application/octet-stream"}


def test_group_format_gives_plain_group_ids(url: str, name: str) -> None:
    with mqkit.connect(url, group_format="{group}") as client:
        client.admin.create_topic(name)
        try:
            client.admin.create_group(name, f"{name}-billing", "earliest")
            admin = client.as_(KafkaAdminClient)
            assert admin is not None
            assert f"{name}-billing" in {g["group_id"] for g in admin.list_groups()}
            assert client.admin.list_groups(name) == [f"{name}-billing"]
        finally:
            client.admin.delete_topic(name)


# -- commits, nack, dead letters, lag -------------------------------------------------

def test_out_of_order_acks_never_commit_past_an_unacked(client: mqkit.Client, url: str,
                                                        name: str) -> None:
    client.admin.create_topic(name, partitions=1)
    try:
        client.admin.create_group(name, "g")
        client.producer(name).send_batch([bytes([i]) for i in range(5)])
        with client.consumer(name, "g") as consumer:
            got = sorted(_collect(consumer, 5, ack=False), key=lambda m: m.body)
            consumer.ack([got[1], got[2], got[4]], wait=True)  # offset 0 and 3 unacked
            admin = client.as_(KafkaAdminClient)
            assert admin is not None
            committed = admin.list_group_offsets(f"{name}.g")[f"{name}.g"]
            assert committed[TopicPartition(name, 0)].offset == 0
            got[0].ack(wait=True)
            committed = admin.list_group_offsets(f"{name}.g")[f"{name}.g"]
            assert committed[TopicPartition(name, 0)].offset == 3
        with client.consumer(name, "g") as again:  # 3 unacked: comes back, 4 too
            back = _collect(again, 2)
        assert sorted(m.body for m in back) == [b"\x03", b"\x04"]
    finally:
        client.admin.delete_topic(name)


def test_nack_delay_and_delivery_count(client: mqkit.Client, topic: str) -> None:
    client.admin.create_group(topic, "g")
    msg_id = client.producer(topic).send(b"later", key="k", headers={"h": "1"})
    with client.consumer(topic, "g") as consumer:
        [msg] = _collect(consumer, 1, ack=False)
        msg.nack(delay=2.0)
        start = time.monotonic()
        assert consumer.receive(1, 1.0) == []
        [back] = _collect(consumer, 1)
        assert time.monotonic() - start >= 1.8
    assert (back.id, back.key, dict(back.headers), back.delivery_count) == (
        msg_id, "k", {"h": "1"}, 2)


def test_dead_letter_topic_gets_the_reason(client: mqkit.Client, topic: str) -> None:
    client.admin.create_group(topic, "g")
    msg_id = client.producer(topic).send(b"poison", headers={"o": "t"})

    def fail(msg: mqkit.ReceivedMessage) -> None:
        raise RuntimeError("broken")

    retry = mqkit.RetryPolicy(max_attempts=2, initial_backoff=0.05, max_backoff=0.1)
    with client.consumer(topic, "g") as consumer:
        stats = consumer.run(fail, retry=retry, idle_timeout=3.0)
    assert stats.dead_lettered == 1
    dlq = client.dead_letter_topic(topic)
    assert dlq == f"{topic}.dlq"
    with client.consumer(dlq, mqkit.DEAD_LETTER_GROUP) as letters:
        [dead] = _collect(letters, 1)
    assert dead.id == msg_id and dead.headers["o"] == "t"
    assert dead.headers["mqkit-dead-letter-reason"] == "RuntimeError: broken"


def test_lag_per_partition(client: mqkit.Client, name: str) -> None:
    client.admin.create_topic(name, partitions=2)
    try:
        client.admin.create_group(name, "g")
        client.producer(name).send_batch(
            [mqkit.Message(b"x", key=f"k{i}") for i in range(10)])
        driver = client._connection._driver  # the adapter's own per-partition view
        assert isinstance(driver, KafkaDriver)
        lag = driver._admin.lag(name, "g")
        assert sum(v for (t, _), v in lag.items() if t == name) == 10
        assert {p for (t, p) in lag if t == name} == {0, 1}
        assert client.admin.depth(name, "g") == 10
    finally:
        client.admin.delete_topic(name)


def test_too_large_with_headers_is_refused_before_sending(client: mqkit.Client,
                                                          topic: str) -> None:
    client.admin.create_group(topic, "g")
    limit = client.capabilities.max_message_size
    with pytest.raises(mqkit.MessageTooLarge):
        client.producer(topic).send(b"x" * limit, headers={"big": "y" * 60_000})
    assert client.admin.depth(topic, "g") == 0


def test_member_joining_mid_stream_loses_nothing(client: mqkit.Client, topic: str) -> None:
    client.admin.create_group(topic, "g")
    producer = client.producer(topic)
    ids = producer.send_batch([mqkit.Message(bytes([i]), key=str(i)) for i in range(30)])
    received: list[mqkit.ReceivedMessage] = []
    first = client.consumer(topic, "g", prefetch=5)
    received += _collect(first, 5, timeout=10)
    second = client.consumer(topic, "g", prefetch=5)  # joins: partitions move
    deadline = time.monotonic() + 30
    while len({m.id for m in received}) < 30 and time.monotonic() < deadline:
        for member in (first, second):
            batch = member.receive(5, 0.3)
            if batch:
                member.ack(batch)
                received += batch
    first.close()
    second.close()
    assert {m.id for m in received} == set(ids)


def test_as_gives_native_objects(client: mqkit.Client, topic: str) -> None:
    assert isinstance(client.as_(KafkaAdminClient), KafkaAdminClient)
    client.producer(topic).send(b"x")
    assert isinstance(client.as_(KafkaProducer), KafkaProducer)


# -- broker restart -------------------------------------------------------------------

def _restart() -> None:
    subprocess.run([str(ROOT / "scripts" / "brokers"), "restart", "kafka"], check=True,
                   timeout=300)


@pytest.mark.broker_restart
def test_recovers_after_broker_restart(url: str, name: str) -> None:
    with mqkit.connect(url) as client:
        client.admin.create_topic(name)
        client.admin.create_group(name, "g")
        producer = client.producer(name)
        consumer = client.consumer(name, "g", prefetch=10)
        sent = producer.send_batch([mqkit.Message(f"a{i}".encode()) for i in range(50)])
        held: list[mqkit.ReceivedMessage] = []
        while not held:  # unacked across the restart; 5 of prefetch 10, so more can come
            held = consumer.receive(5, 5.0)
        errors: list[BaseException] = []
        stop = threading.Event()

        def keep_sending() -> None:
            i = 0
            while not stop.is_set():
                try:
                    sent.extend(producer.send_batch([f"b{i}".encode(), f"c{i}".encode()]))
                except mqkit.MQError as exc:
                    errors.append(exc)
                i += 1
                time.sleep(0.01)

        sender = threading.Thread(target=keep_sending)
        sender.start()
        try:
            _restart()
            time.sleep(1.0)
        finally:
            stop.set()
            sender.join()
        received: set[str | None] = set()
        deadline = time.monotonic() + 60
        held_ids = {m.id for m in held}
        while not set(sent) - held_ids <= received and time.monotonic() < deadline:
            try:
                batch = consumer.receive(100, 0.5)
                consumer.ack([m for m in batch])
                received.update(m.id for m in batch)
            except mqkit.Unavailable:
                time.sleep(0.2)
        consumer.close()  # the held ones were never acked: the group gets them again
        with client.consumer(name, "g") as again:
            received.update(m.id for m in _collect(again, len(held_ids), timeout=30))
        client.admin.delete_topic(name)
    assert set(sent) <= received, len(set(sent) - received)
    assert held_ids <= received
    assert all(isinstance(e, mqkit.Unavailable | mqkit.SendBatchError) for e in errors), errors


def test_stalled_member_is_replaced(url: str, name: str) -> None:
    # 6 s is the broker's smallest session: the watchdog acts after 6 + 5 s idle.
    with mqkit.connect(url, session_timeout_ms=6000) as client:
        client.admin.create_topic(name)
        try:
            client.admin.create_group(name, "g")
            consumer = client.consumer(name, "g")
            deadline = time.monotonic() + 20
            native = None
            while time.monotonic() < deadline:
                assert consumer.receive(1, 0.5) == []
                native = consumer._driver._inner._consumer  # type: ignore[union-attr]
                if native.assignment():
                    break
            assert native is not None and native.assignment()
            native.pause(*native.assignment())  # fetches nothing from now on
            msg_id = client.producer(name).send(b"stalled")
            start = time.monotonic()
            got = _collect(consumer, 1, timeout=40)
            assert [m.id for m in got] == [msg_id]
            assert time.monotonic() - start >= 5
            assert consumer._driver._inner._consumer is not native  # type: ignore[union-attr]
            consumer.close()
        finally:
            client.admin.delete_topic(name)


def test_idle_member_with_every_partition_owned_is_left_alone(url: str, name: str) -> None:
    with mqkit.connect(url, session_timeout_ms=6000) as client:
        client.admin.create_topic(name, partitions=1)
        try:
            client.admin.create_group(name, "g")
            a = client.consumer(name, "g")
            b = client.consumer(name, "g")
            deadline = time.monotonic() + 30
            natives = []
            while time.monotonic() < deadline:  # both members joined, one owns it all
                a.receive(1, 0.3)
                b.receive(1, 0.3)
                natives = [c._driver._inner._consumer  # type: ignore[union-attr]
                           for c in (a, b)]
                owners = [bool(n.assignment()) for n in natives]
                if sorted(owners) == [False, True] and all(
                        group_state(n) == "<stable>" for n in natives):
                    break
            end = time.monotonic() + 6 + 5 + 3 + 4  # past the watchdog's two looks
            while time.monotonic() < end:
                assert a.receive(1, 0.3) == [] and b.receive(1, 0.3) == []
            assert [c._driver._inner._consumer  # type: ignore[union-attr]
                    for c in (a, b)] == natives
            a.close()
            b.close()
        finally:
            client.admin.delete_topic(name)


def test_a_partition_the_member_did_not_know_at_join_is_read_within_seconds(
        client: mqkit.Client, name: str, url: str) -> None:
    """A member's metadata refresh shows partitions it did not know when it joined (a
    topic created a moment before, whose leaders were not elected yet; here: partitions
    added later) and the group rebalances onto them within seconds, not after
    kafka-python's default 5-minute metadata age (contract case 3 once lost a live
    message that way in CI)."""
    from kafka.admin import NewPartitions

    client.admin.create_topic(name, partitions=1)
    try:
        client.admin.create_group(name, "g")
        with client.consumer(name, "g") as consumer:
            consumer.receive(1, timeout=1.0)  # joined, holding partition 0 only
            admin = KafkaAdminClient(bootstrap_servers=_servers(url))
            try:
                admin.create_partitions({name: NewPartitions(total_count=2)})
            finally:
                admin.close()
            producer = KafkaProducer(bootstrap_servers=_servers(url))
            try:
                producer.send(name, b"late", partition=1,
                              headers=[("mqkit-id", b"late-1")]).get(timeout=10)
            finally:
                producer.close()
            started = time.monotonic()
            got = _collect(consumer, 1, timeout=12.0)
            assert [m.id for m in got] == ["late-1"]
            assert time.monotonic() - started < 12.0
    finally:
        client.admin.delete_topic(name)
