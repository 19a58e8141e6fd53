"""RabbitMQ adapter against a real broker (``MQKIT_TEST_RABBITMQ_URL``).

Skipped without a broker, except when ``MQKIT_REQUIRE_BACKENDS`` names rabbitmq: then a
missing URL fails. Tests marked ``broker_restart`` restart the broker with
``scripts/brokers restart rabbitmq``.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

import mqkit
from contract_tests.brokers import env_url

ROOT = Path(__file__).resolve().parents[3]


def _url() -> str:
    return env_url("rabbitmq")


def _with(url: str, **query: str) -> str:
    sep = "&" if "?" in url else "?"
    return url + sep + "&".join(f"{k}={v}" for k, v in query.items()) if query else url


@pytest.fixture
def url() -> str:
    return _url()


@pytest.fixture
def name() -> str:
    return f"rt-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client(url: str, name: str) -> Iterator[mqkit.Client]:
    c = mqkit.connect(url)
    yield c
    try:
        c.admin.delete_topic(name)
    finally:
        c.close()


def _pika(url: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(url))


def _receive_all(consumer: mqkit.Consumer, n: int, timeout: float = 10.0
                 ) -> list[mqkit.ReceivedMessage]:
    got: list[mqkit.ReceivedMessage] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        batch = consumer.receive(100, 0.5)
        consumer.ack(batch)
        got.extend(batch)
    return got


def test_plain_pika_writes_mqkit_reads(client: mqkit.Client, url: str, name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    conn = _pika(url)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        props = pika.BasicProperties(
            message_id="m-1", correlation_id="c-1", content_type="application/json",
            reply_to="back", headers={"tenant": "a", "n": "1"}, delivery_mode=2)
        ch.basic_publish(name, "user.1", b'{"x": 1}\x00\xff', props)
    finally:
        conn.close()
    with client.consumer(name, "g") as consumer:
        [msg] = _receive_all(consumer, 1)
    assert msg.body == b'{"x": 1}\x00\xff' and msg.key == "user.1"
    assert dict(msg.headers) == {"tenant": "a", "n": "1"}
    assert (msg.id, msg.correlation_id, msg.content_type, msg.reply_to) == (
        "m-1", "c-1", "application/json", "back")
    assert msg.delivery_count == 1


def test_mqkit_writes_plain_pika_reads(client: mqkit.Client, url: str, name: str) -> None:
    client.admin.create_topic(name)
    conn = _pika(url)
    try:
        ch = conn.channel()
        queue = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(queue, name, "#")
        with client.producer(name) as producer:
            producer.send(b"\x00body\xff", key="k.1", headers={"h": "v", "ü": "ß"},
                          id="id-7", correlation_id="c-7", content_type="text/plain",
                          reply_to="rq")
        method, props, body = ch.basic_get(queue, auto_ack=True)
    finally:
        conn.close()
    assert method is not None and body == b"\x00body\xff" and method.routing_key == "k.1"
    assert props.headers == {"h": "v", "ü": "ß"}
    assert (props.message_id, props.correlation_id, props.content_type, props.reply_to) \
        == ("id-7", "c-7", "text/plain", "rq")
    assert props.delivery_mode == 2


def test_unroutable_sends_are_dropped(client: mqkit.Client, name: str) -> None:
    """Policy: a topic with no group drops messages (no mandatory flag, no error)."""
    client.admin.create_topic(name)
    with client.producer(name) as producer:
        producer.send(b"lost")
    client.admin.create_group(name, "late")
    with client.producer(name) as producer:
        producer.send(b"kept")
    with client.consumer(name, "late") as consumer:
        got = _receive_all(consumer, 2, timeout=2.0)
    assert [m.body for m in got] == [b"kept"]


def test_send_batch_confirms_and_throughput(client: mqkit.Client, name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    n = 5000
    with client.producer(name) as producer:
        started = time.perf_counter()
        ids = producer.send_batch([mqkit.Message(os.urandom(100)) for _ in range(n)])
        rate = n / (time.perf_counter() - started)
    assert client.admin.stats(name, "g").depth == n  # returned => stored
    assert rate > 3000, rate  # one round trip per message would be ~1,500/s
    with client.consumer(name, "g", prefetch=500) as consumer:
        got = _receive_all(consumer, n, timeout=30)
    assert {m.id for m in got} == set(ids)


def test_slow_handler_keeps_connection(url: str, name: str) -> None:
    """heartbeat=2 s and a handler sleeping 6 s: the message is acked once, not lost."""
    with mqkit.connect(_with(url, heartbeat="2")) as c:
        try:
            c.admin.create_topic(name)
            c.admin.create_group(name, "g")
            with c.producer(name) as producer:
                producer.send(b"slow")
                producer.send(b"next")
            seen: list[bytes] = []

            def handler(msg: mqkit.ReceivedMessage) -> None:
                if msg.body == b"slow":
                    time.sleep(6)
                seen.append(msg.body)

            with c.consumer(name, "g", prefetch=1) as consumer:
                stats = consumer.run(handler, stop_after=2)
            assert seen == [b"slow", b"next"] and stats.acked == 2
            assert c.admin.stats(name, "g").depth == 0
            with c.consumer(name, "g") as consumer:
                assert consumer.receive(10, 1.0) == []
        finally:
            c.admin.delete_topic(name)


@pytest.mark.parametrize("queue_type", ["quorum", "classic"])
def test_delivery_count_and_delayed_nack(url: str, name: str, queue_type: str) -> None:
    with mqkit.connect(_with(url, queue_type=queue_type)) as c:
        try:
            c.admin.create_topic(name)
            c.admin.create_group(name, "g")
            with c.producer(name) as producer:
                producer.send(b"x", key="a.b", headers={"h": "1"})
            with c.consumer(name, "g") as consumer:
                [m1] = consumer.receive(1, 5)
                assert m1.delivery_count == 1
                m1.nack()
                [m1b] = consumer.receive(1, 5)
                assert m1b.delivery_count == 2
                m1b.nack()
                [m2] = consumer.receive(1, 5)
                assert m2.delivery_count == 3 and m2.body == b"x"
                started = time.monotonic()
                m2.nack(delay=1.0)
                assert consumer.receive(1, 0.7) == []
                [m3] = consumer.receive(1, 5)
                assert time.monotonic() - started >= 1.0
                assert m3.delivery_count == 4 and m3.key == "a.b"
                assert dict(m3.headers) == {"h": "1"} and m3.id == m1.id
                m3.ack()
                assert consumer.receive(1, 0.5) == []
        finally:
            c.admin.delete_topic(name)


def test_delayed_send_ttl_and_key(client: mqkit.Client, name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    with client.producer(name) as producer:
        producer.send(b"later", key="k", delay=1.0)
        producer.send(b"expired", ttl=0.05)
    time.sleep(0.3)
    with client.consumer(name, "g") as consumer:
        assert consumer.receive(10, 0.3) == []
        [msg] = consumer.receive(10, 5)
        assert msg.body == b"later" and msg.key == "k" and dict(msg.headers) == {}
        msg.ack()


def test_priority_on_classic_queues(url: str, name: str) -> None:
    with mqkit.connect(_with(url, queue_type="classic", max_priority="9")) as c:
        try:
            c.admin.create_topic(name)
            c.admin.create_group(name, "g")
            with c.producer(name) as producer:
                producer.send_batch([mqkit.Message(str(p).encode(), priority=p)
                                     for p in (1, 5, 9, 3)])
            with c.consumer(name, "g") as consumer:
                got = _receive_all(consumer, 4)
            assert [m.body for m in got] == [b"9", b"5", b"3", b"1"]
        finally:
            c.admin.delete_topic(name)


def test_admin_registry(client: mqkit.Client, name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_topic(name)
    client.admin.create_group(name, "g1")
    client.admin.create_group(name, "g2")
    assert name in client.admin.list_topics()
    assert client.admin.list_groups(name) == ["g1", "g2"]
    client.admin.delete_group(name, "g1")
    assert client.admin.list_groups(name) == ["g2"]
    client.admin.delete_topic(name)
    assert name not in client.admin.list_topics()
    assert not client.admin.topic_exists(name)
    with pytest.raises(mqkit.NotFound):
        client.admin.list_groups(name)


def test_missing_topic_is_not_found(client: mqkit.Client, name: str) -> None:
    with pytest.raises(mqkit.NotFound):
        client.producer(name).send(b"x")
    with pytest.raises(mqkit.NotFound):
        client.consumer(name, "g").receive(1, 0.1)
    assert not client.admin.topic_exists(name)


def test_a_topic_deleted_under_its_producer_fails_the_send_at_once(
        client: mqkit.Client, url: str, name: str) -> None:
    """Another client deletes the exchange while a producer is open: the broker answers
    the next publish by closing the producer's channel (404), so no confirm comes. The
    send fails with that error at once, not with a Timeout at the 30 s confirm bound."""
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    with client.producer(name) as producer:
        producer.send(b"before", key="k")
        conn = _pika(url)
        try:
            conn.channel().exchange_delete(name)
        finally:
            conn.close()
        started = time.monotonic()
        with pytest.raises(mqkit.NotFound):
            producer.send(b"after", key="k")
        assert time.monotonic() - started < 10


def _restart() -> None:
    subprocess.run([str(ROOT / "scripts" / "brokers"), "restart", "rabbitmq"], check=True,
                   timeout=300)


@pytest.mark.broker_restart
def test_recovers_after_broker_restart(client: mqkit.Client, name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    producer = client.producer(name)
    consumer = client.consumer(name, "g", prefetch=10)
    sent = producer.send_batch([mqkit.Message(f"a{i}".encode()) for i in range(50)])
    held = consumer.receive(5, 5)  # unacked across the restart: must come back
    assert held
    errors: list[BaseException] = []
    stop = threading.Event()

    def keep_sending() -> None:
        i = 0
        while not stop.is_set():
            try:
                sent.append(producer.send(f"b{i}".encode()))
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
    # Acks of deliveries from the lost connection do nothing (the broker requeued them)
    # and free their prefetch slots.
    consumer.ack(held)
    received: set[str] = set()
    deadline = time.monotonic() + 60
    while not set(sent) <= received and time.monotonic() < deadline:
        try:
            batch = consumer.receive(100, 0.5)
            consumer.ack(batch)
            received.update(m.id for m in batch if m.id)
        except mqkit.Unavailable:
            time.sleep(0.2)
    producer.close()
    consumer.close()
    assert set(sent) <= received, len(set(sent) - received)
    assert {m.id for m in held} <= received  # unacked before the restart: came back
    assert all(isinstance(e, mqkit.Unavailable) for e in errors), errors


async def test_async_face_round_trip(url: str, name: str) -> None:
    import mqkit.aio

    async with mqkit.aio.connect(url) as c:
        try:
            await c.admin.create_topic(name)
            await c.admin.create_group(name, "g")
            async with c.producer(name) as producer:
                ids = await producer.send_batch([b"a", b"b", b"c"])
            async with c.consumer(name, "g") as consumer:
                got: list[mqkit.aio.ReceivedMessage] = []
                while len(got) < 3:
                    batch = await consumer.receive(10, 2.0)
                    assert batch
                    await consumer.ack(batch)
                    got.extend(batch)
            assert {m.id for m in got} == set(ids)
            assert (await c.admin.stats(name, "g")).depth == 0
        finally:
            await c.admin.delete_topic(name)


def test_depth_counts_unacked_of_this_client(client: mqkit.Client, name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    with client.producer(name) as producer:
        producer.send_batch([b"1", b"2", b"3", b"4"])
    assert client.admin.stats(name, "g").depth == 4
    with client.consumer(name, "g", prefetch=2) as consumer:
        got = consumer.receive(1, 5)
        assert client.admin.stats(name, "g").depth == 4  # 1 held, 1 buffered, 2 ready
        consumer.ack(got)
        assert client.admin.stats(name, "g").depth == 3
    # After close the broker requeues the unacked ones asynchronously.
    deadline = time.monotonic() + 5
    while client.admin.stats(name, "g").depth != 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.admin.stats(name, "g").depth == 3


def test_group_deleted_under_consumer(client: mqkit.Client, name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    with client.consumer(name, "g") as consumer:
        assert consumer.receive(1, 0.2) == []
        client.admin.delete_group(name, "g")
        started = time.monotonic()
        with pytest.raises(mqkit.NotFound):
            consumer.receive(1, 5.0)
        assert time.monotonic() - started < 2.0
        with pytest.raises(mqkit.NotFound):
            consumer.receive(1, 0.5)
    assert not client.admin.group_exists(name, "g")


def test_dead_letter_and_redelivery_on_close(client: mqkit.Client, name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    with client.producer(name) as producer:
        producer.send(b"poison", headers={"a": "b"})
        producer.send(b"held")

    def fail(msg: mqkit.ReceivedMessage) -> None:
        if msg.body == b"poison":
            raise ValueError("bad payload")

    with client.consumer(name, "g", prefetch=1) as consumer:
        [first] = consumer.receive(1, 5)
        assert first.body == b"poison"
    # Closed without settling: it comes back, counted.
    with client.consumer(name, "g") as consumer:
        stats = consumer.run(fail, stop_after=3, idle_timeout=10,
                             retry=mqkit.RetryPolicy(max_attempts=3,
                                                      initial_backoff=0.2))
    assert stats.dead_lettered == 1 and stats.acked == 1
    dlq = client.dead_letter_topic(name)
    try:
        with client.consumer(dlq, mqkit.DEAD_LETTER_GROUP) as consumer:
            [dead] = _receive_all(consumer, 1)
        assert dead.body == b"poison" and dead.headers["a"] == "b"
        assert "bad payload" in dead.headers["mqkit-dead-letter-reason"]
    finally:
        client.admin.delete_topic(dlq)


def test_request_reply(client: mqkit.Client, name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "svc")
    done = threading.Event()

    def serve() -> None:
        with client.consumer(name, "svc") as consumer:
            while not done.is_set():
                for req in consumer.receive(1, 0.2):
                    client.reply(req, b"pong:" + req.body)
                    req.ack()

    server = threading.Thread(target=serve)
    server.start()
    try:
        reply = client.request(name, b"ping", timeout=10)
        assert reply.body == b"pong:ping"
        client.admin.create_topic(f"{name}-nobody")
        client.admin.create_group(f"{name}-nobody", "idle")
        with pytest.raises(mqkit.Timeout):
            client.request(f"{name}-nobody", b"x", timeout=0.5)
    finally:
        done.set()
        server.join()
        client.admin.delete_topic(f"{name}-nobody")


def test_group_binds_with_a_pattern(url: str, name: str) -> None:
    with mqkit.connect(_with(url, binding_key="eu.*")) as c:
        try:
            c.admin.create_topic(name)
            c.admin.create_group(name, "eu")
            with c.producer(name) as producer:
                producer.send_batch([mqkit.Message(b"1", key="eu.fr"),
                                     mqkit.Message(b"2", key="us.ny"),
                                     mqkit.Message(b"3", key="eu.de.x"),
                                     mqkit.Message(b"4", key="eu.de")])
            with c.consumer(name, "eu") as consumer:
                got = _receive_all(consumer, 2)
                assert consumer.receive(10, 0.3) == []
            assert sorted((m.key, m.body) for m in got) == [("eu.de", b"4"), ("eu.fr", b"1")]
        finally:
            c.admin.delete_topic(name)
