"""Replay on ``*.stream`` topics against a real broker (``MQKIT_TEST_RABBITMQ_URL``):
the archive stream, the history copy into a group created at ``earliest``, and what the
group's queue semantics stay."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pika
import pika.exceptions as pe
import pytest
from mqkit_rabbitmq._archive import archive_arguments

import mqkit
from contract_tests.brokers import env_url


@pytest.fixture
def url() -> str:
    return env_url("rabbitmq")


@pytest.fixture
def topic() -> str:
    return f"rt-{uuid.uuid4().hex[:10]}.stream"


@pytest.fixture
def client(url: str, topic: str) -> Iterator[mqkit.Client]:
    c = mqkit.connect(url)
    yield c
    try:
        c.admin.delete_topic(topic)
    finally:
        c.close()


def _drain(consumer: mqkit.Consumer, n: int, timeout: float = 20.0,
           settle: float = 0.5) -> list[mqkit.ReceivedMessage]:
    got: list[mqkit.ReceivedMessage] = []
    deadline = time.monotonic() + timeout
    quiet_until: float | None = None
    while time.monotonic() < deadline:
        batch = consumer.receive(max_messages=500, timeout=0.2)
        consumer.ack(batch)
        got.extend(batch)
        if len(got) >= n:
            quiet_until = quiet_until or time.monotonic() + settle
            if time.monotonic() >= quiet_until:
                break
    return got


def test_earliest_group_gets_the_history_and_keeps_queue_semantics(
        client: mqkit.Client, topic: str) -> None:
    client.admin.create_topic(topic)
    # More than one copy batch (1000), sent while no group exists: only the archive has them.
    with client.producer(topic) as producer:
        ids = producer.send_batch([mqkit.Message(str(i).encode(), key=f"k{i % 3}",
                                                 headers={"n": str(i)})
                                   for i in range(2500)])
    client.admin.create_group(topic, "late", "latest")
    client.admin.create_group(topic, "replay", "earliest")
    with client.consumer(topic, "replay") as consumer:
        first = consumer.receive(max_messages=1, timeout=5)
        assert first and first[0].delivery_count == 1
        consumer.nack(first)  # an ordinary queue: the copy comes back, counted
        got = _drain(consumer, 2500)
    by_id = {m.id: m for m in got}
    assert set(by_id) == set(ids) and len(got) == 2500
    again = by_id[first[0].id]
    assert again.delivery_count == 2 and again.body == first[0].body
    for m in got:
        i = int(m.body)
        assert (m.key, dict(m.headers)) == (f"k{i % 3}", {"n": str(i)})
    assert client.admin.depth(topic, "replay") == 0
    # The copy consumed nothing: a second earliest group gets it all again.
    client.admin.create_group(topic, "replay2", "earliest")
    with client.consumer(topic, "replay2") as consumer:
        assert {m.id for m in _drain(consumer, 2500)} == set(ids)
    with client.consumer(topic, "late") as consumer:
        assert consumer.receive(max_messages=10, timeout=0.5) == []


def test_sends_racing_the_creation_are_all_delivered(client: mqkit.Client,
                                                      topic: str) -> None:
    client.admin.create_topic(topic)
    sent: list[str] = []
    stop = threading.Event()

    def keep_sending() -> None:
        with client.producer(topic) as producer:
            while not stop.is_set():
                sent.extend(producer.send_batch([b"x"] * 5))

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        time.sleep(0.3)
        client.admin.create_group(topic, "g", "earliest")
        time.sleep(0.3)
    finally:
        stop.set()
        sender.join()
    with client.consumer(topic, "g") as consumer:
        got = _drain(consumer, len(sent))
    ids = [m.id for m in got]
    assert set(ids) == set(sent), "a message sent around the creation was lost"
    # Duplicates: only those sent between the binding and the marker (about 0.1 s).
    assert len(ids) - len(set(ids)) < len(sent) / 2


def test_archive_is_bounded_and_goes_with_the_topic(client: mqkit.Client, url: str,
                                                    topic: str) -> None:
    client.admin.create_topic(topic, archive_max_age=60, archive_max_bytes=1 << 20)
    client.admin.create_topic(topic, archive_max_age=99)  # idempotent: kept as it was
    archive = f"mqkit.archive.{topic}"
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        # The same arguments are accepted, other ones refused: the retention is set.
        channel.queue_declare(archive, durable=True,
                              arguments=archive_arguments(60, 1 << 20))
        with pytest.raises(pe.ChannelClosedByBroker) as info:
            channel.queue_declare(archive, durable=True,
                                  arguments=archive_arguments(61, 1 << 20))
        assert info.value.reply_code == 406
        client.admin.delete_topic(topic)
        channel = connection.channel()
        with pytest.raises(pe.ChannelClosedByBroker) as gone:
            channel.queue_declare(archive, passive=True)
        assert gone.value.reply_code == 404
    finally:
        connection.close()


def test_earliest_without_an_archive_is_unsupported(client: mqkit.Client,
                                                    topic: str) -> None:
    plain = topic.removesuffix(".stream")
    client.admin.create_topic(plain)
    try:
        with pytest.raises(mqkit.Unsupported):
            client.admin.create_group(plain, "g", "earliest")
        with pytest.raises(mqkit.Unsupported):
            client.consumer(plain, "g", start="earliest").receive(timeout=0.1)
        assert client.capabilities_for(plain).replay is mqkit.Support.UNSUPPORTED
        assert client.capabilities_for(topic).replay is mqkit.Support.EMULATED
        client.admin.create_group(plain, "g", "latest")  # a plain group is fine
    finally:
        client.admin.delete_topic(plain)


def test_consumer_created_group_replays_from_earliest(client: mqkit.Client,
                                                      topic: str) -> None:
    client.admin.create_topic(topic)
    with client.producer(topic) as producer:
        old = producer.send(b"old")
    with client.consumer(topic, "fresh", start="earliest") as consumer:
        assert [m.id for m in _drain(consumer, 1, timeout=5)] == [old]
