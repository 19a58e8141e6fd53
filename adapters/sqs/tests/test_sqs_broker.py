"""The SQS adapter against the moto server of ``scripts/brokers`` (real HTTP, no mocks).

Interop with raw boto3 both ways, queue-only mode, FIFO, native redrive, native delay and
visibility, requests per message, limits, error mapping, and recovery after a restart.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient
from mqkit_sqs import AwsClients

import mqkit

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def client(url: str) -> Iterator[mqkit.Client]:
    with mqkit.connect(url) as c:
        yield c


@pytest.fixture
def queue_client(url: str) -> Iterator[mqkit.Client]:
    with mqkit.connect(url, mode="queue") as c:
        yield c


def _native(client: mqkit.Client) -> AwsClients:
    native = client.as_(AwsClients)
    assert native is not None
    return native


def _collect(consumer: mqkit.Consumer, count: int, timeout: float = 10.0) -> list[Any]:
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        batch = consumer.receive(10, timeout=1.0)
        consumer.ack(batch)
        got += batch
    return got


def _cleanup(client: mqkit.Client, *topics: str) -> None:
    for topic in topics:
        try:
            client.admin.delete_topic(topic)
        except mqkit.MQError:
            pass


# -- interop with raw boto3 -------------------------------------------------------------

def test_plain_client_writes_and_mqkit_reads(client: mqkit.Client, name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    native = _native(client)
    try:
        arn = native.sns.create_topic(Name=name)["TopicArn"]  # the same topic
        native.sns.publish(TopicArn=arn, Message="from sns", MessageAttributes={
            "tenant": {"DataType": "String", "StringValue": "a"}})
        queue_url = native.sqs.get_queue_url(QueueName=f"{name}-g")["QueueUrl"]
        sent = native.sqs.send_message(QueueUrl=queue_url, MessageBody="from sqs",
                                       MessageAttributes={
                                           "tenant": {"DataType": "String", "StringValue": "b"},
                                           "n": {"DataType": "Number", "StringValue": "7"}})
        with client.consumer(name, "g") as consumer:
            got = {m.body: m for m in _collect(consumer, 2)}
        assert set(got) == {b"from sns", b"from sqs"}
        assert dict(got[b"from sns"].headers) == {"tenant": "a"}
        assert dict(got[b"from sqs"].headers) == {"tenant": "b", "n": "7"}
        assert got[b"from sqs"].id == sent["MessageId"]
    finally:
        _cleanup(client, name)


def test_mqkit_writes_and_plain_client_reads(client: mqkit.Client, name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    native = _native(client)
    try:
        with client.producer(name) as producer:
            text_id = producer.send("zoë ✓".encode(), headers={"tenant": "a", "x-y": "z"},
                                    key="k1", correlation_id="c1")
            producer.send(b"\x00\xffbinary", headers={"kind": "bin"})
        queue_url = native.sqs.get_queue_url(QueueName=f"{name}-g")["QueueUrl"]
        raw: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while len(raw) < 2 and time.monotonic() < deadline:
            reply = native.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=1,
                                               MessageAttributeNames=["All"])
            for m in reply.get("Messages", []):
                native.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
                raw.append(m)
        by_kind = {m["MessageAttributes"].get("kind", {}).get("StringValue", "text"): m
                   for m in raw}
        text = by_kind["text"]
        assert text["Body"] == "zoë ✓"  # plain text goes as is
        headers = {k: v["StringValue"] for k, v in text["MessageAttributes"].items()
                   if k != "mqkit"}
        assert headers == {"tenant": "a", "x-y": "z"}
        meta = json.loads(text["MessageAttributes"]["mqkit"]["StringValue"])
        assert meta == {"id": text_id, "key": "k1", "correlation-id": "c1"}
        binary = by_kind["bin"]
        flag = json.loads(binary["MessageAttributes"]["mqkit"]["StringValue"])["body"]
        assert flag == "base64" and base64.b64decode(binary["Body"]) == b"\x00\xffbinary"
    finally:
        _cleanup(client, name)


def test_one_session_and_client_reused(client: mqkit.Client, name: str) -> None:
    client.admin.create_topic(name)
    try:
        native = _native(client)
        made: list[str] = []
        create = native.session.client

        def counting(*args: Any, **kwargs: Any) -> Any:
            made.append(str(args[0] if args else kwargs.get("service_name")))
            return create(*args, **kwargs)

        native.session.client = counting  # type: ignore[method-assign]
        for _ in range(3):
            with client.producer(name) as producer, client.consumer(name, "g") as consumer:
                producer.send(b"x")
                _collect(consumer, 1)
        assert made == [], f"clients created per producer/consumer: {made}"
        again = _native(client)
        assert client.as_(BaseClient) is native.sqs
        assert (again.session, again.sqs, again.sns) == (native.session, native.sqs,
                                                         native.sns)
    finally:
        _cleanup(client, name)


# -- batching: requests per message -----------------------------------------------------

def test_requests_per_message_at_steady_load(client: mqkit.Client, name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    native = _native(client)
    count = {"n": 0}

    def tick(**_: Any) -> None:
        count["n"] += 1

    try:
        with client.producer(name) as producer, \
                client.consumer(name, "g", prefetch=10) as consumer:
            consumer.receive(1, timeout=0)  # opened before counting
            for c in (native.sqs, native.sns):
                c.meta.events.register("before-send", tick)
            for _ in range(20):
                producer.send_batch([b"m"] * 10)
            got = 0
            while got < 200:
                batch = consumer.receive(10, timeout=5)
                assert batch, f"stalled at {got}"
                consumer.ack(batch)
                got += len(batch)
        assert count["n"] / 200 <= 0.35, f"{count['n'] / 200:.3f} requests per message"
    finally:
        for c in (native.sqs, native.sns):
            c.meta.events.unregister("before-send", tick)
        _cleanup(client, name)


def test_large_batch_goes_in_requests_under_256_kib(client: mqkit.Client, name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    native = _native(client)
    sizes: list[int] = []

    def measure(request: Any, **_: Any) -> None:
        sizes.append(len(request.body or b""))

    try:
        with client.producer(name) as producer:
            producer.send(b"warm")  # opened before counting
            native.sns.meta.events.register("before-send.sns.PublishBatch", measure)
            ids = producer.send_batch([bytes([65 + i]) * 100_000 for i in range(10)])
        assert len(sizes) == 5  # two 100 kB messages per request
        with client.consumer(name, "g") as consumer:
            got = _collect(consumer, 11)
        assert set(ids) <= {m.id for m in got} and len(got) == 11
    finally:
        native.sns.meta.events.unregister("before-send.sns.PublishBatch", measure)
        _cleanup(client, name)


# -- limits ------------------------------------------------------------------------------

def test_headers_past_the_attribute_limit_fit_and_size_is_a_typed_error(
        client: mqkit.Client, name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    try:
        with client.producer(name) as producer:
            nine = {f"h{i}": "v" for i in range(9)}
            twelve = {**nine, "h9": "v", "h10": "w", "h11": "x"}  # 3 ride in mqkit's
            producer.send(b"ok", headers=nine)
            producer.send(b"more", headers=twelve)
            with pytest.raises(mqkit.MessageTooLarge):
                producer.send(b"x" * client.capabilities.max_message_size,
                              headers={k: "v" * 200 for k in nine})
            with pytest.raises(mqkit.InvalidMessage):
                producer.send(b"late", delay=901)
        with client.consumer(name, "g") as consumer:
            got = _collect(consumer, 2)
            assert sorted((m.body, dict(m.headers)) for m in got) == sorted(
                [(b"ok", nine), (b"more", twelve)])
            assert consumer.receive(10, timeout=0.5) == []
    finally:
        _cleanup(client, name)


# -- queue-only mode ---------------------------------------------------------------------

def test_queue_mode_one_group_native_delay(queue_client: mqkit.Client, name: str) -> None:
    client = queue_client
    assert not client.capabilities.groups
    client.admin.create_topic(name)
    try:
        client.admin.create_group(name, "workers")
        client.admin.create_group(name, "workers")  # idempotent
        with pytest.raises(mqkit.Unsupported):
            client.admin.create_group(name, "others")
        assert client.admin.list_groups(name) == ["workers"]
        native = _native(client)
        assert native.sns is None
        native.sqs.get_queue_url(QueueName=name)  # the topic is a plain SQS queue
        with client.producer(name) as producer:
            producer.send(b"later", delay=2)
            producer.send(b"now")
        with client.consumer(name, "workers") as consumer:
            start = time.monotonic()
            first = consumer.receive(10, timeout=1.5)
            assert [m.body for m in first] == [b"now"]
            consumer.ack(first)
            later = _collect(consumer, 1, timeout=10)
            assert [m.body for m in later] == [b"later"]
            assert time.monotonic() - start >= 1.8
    finally:
        _cleanup(client, name)


# -- FIFO --------------------------------------------------------------------------------

@pytest.mark.parametrize(("mode", "every"), [("sns", False), ("queue", False), ("sns", True)])
def test_fifo_keeps_per_key_order_and_dedups_by_id(url: str, name: str, mode: str,
                                                   every: bool) -> None:
    topic = name if every else f"{name}.fifo"
    with mqkit.connect(url, mode=mode, fifo=every) as client:
        client.admin.create_topic(topic)
        client.admin.create_group(topic, "g")
        try:
            with client.producer(topic) as producer:
                messages = [mqkit.Message(f"{k}-{i}".encode(), key=k, id=f"{k}-{i}")
                            for i in range(5) for k in ("a", "b")]
                producer.send_batch(messages)
                producer.send(mqkit.Message(b"dup", key="a", id="a-0"))  # deduplicated
                with pytest.raises(mqkit.Unsupported):
                    producer.send(b"x", key="a", delay=1)
            with client.consumer(topic, "g") as consumer:
                got = _collect(consumer, 10)
                assert consumer.receive(10, timeout=1.0) == []
            for key in ("a", "b"):
                assert [m.id for m in got if m.key == key] == [f"{key}-{i}" for i in range(5)]
        finally:
            _cleanup(client, topic, client.dead_letter_topic(topic))


# -- dead letters, nack, lease -----------------------------------------------------------

def test_native_redrive_moves_messages_after_max_receive_count(url: str, name: str) -> None:
    with mqkit.connect(url, max_receive_count=2) as client:
        # The redrive is a safety net; the dead-letter path is the portable copy.
        assert client.capabilities.dead_letter is mqkit.Support.EMULATED
        client.admin.create_topic(name)
        client.admin.create_group(name, "g")
        dlq = client.dead_letter_topic(name)
        assert dlq == f"{name}-dlq" and client.admin.group_exists(dlq, mqkit.DEAD_LETTER_GROUP)
        try:
            with client.producer(name) as producer:
                msg_id = producer.send(b"crashes consumers", headers={"h": "v"})
            with client.consumer(name, "g") as consumer:
                for attempt in (1, 2):
                    [msg] = _receive_one(consumer)
                    assert msg.delivery_count == attempt
                    msg.nack()  # a consumer that keeps failing without a verdict
                assert consumer.receive(1, timeout=1.5) == []  # moved by SQS itself
            with client.consumer(dlq, mqkit.DEAD_LETTER_GROUP) as letters:
                dead = _collect(letters, 1)
            assert [(m.id, m.body, dict(m.headers)) for m in dead] == [
                (msg_id, b"crashes consumers", {"h": "v"})]
        finally:
            _cleanup(client, name, dlq)


def _receive_one(consumer: mqkit.Consumer) -> list[Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = consumer.receive(1, timeout=1.0)
        if got:
            return got
    raise AssertionError("nothing received")


def test_nack_delay_and_lease_use_visibility(client: mqkit.Client, name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    try:
        client.producer(name).send(b"v")
        with client.consumer(name, "g", lease=1.0) as consumer:
            [msg] = _receive_one(consumer)
            consumer.extend_lease([msg], 4)
            time.sleep(1.5)  # past the first lease: still ours
            with client.consumer(name, "g") as rival:
                assert rival.receive(1, timeout=1.0) == []
            msg.nack(delay=2)
            start = time.monotonic()
            assert consumer.receive(1, timeout=1.0) == []
            [back] = _receive_one(consumer)
            assert time.monotonic() - start >= 1.5 and back.delivery_count == 2
            back.ack()
        assert client.admin.depth(name, "g") == 0
    finally:
        _cleanup(client, name)


# -- errors ------------------------------------------------------------------------------

def test_missing_queue_is_not_found_with_native_cause(client: mqkit.Client, name: str) -> None:
    with pytest.raises(mqkit.NotFound):
        client.producer(name).send(b"x")
    with pytest.raises(mqkit.NotFound) as info:
        client.admin.depth(name, "g")
    assert info.value.__cause__ is None or "NonExistentQueue" in str(info.value)
    assert not client.admin.topic_exists(name)


def test_secrets_never_shown(url: str) -> None:
    parsed = mqkit.URL.parse(url)
    secret = "Sup3r-S3cret-Key"
    with mqkit.connect(f"sqs://AKID:{secret}@{parsed.host}:{parsed.port}",
                       region="us-east-1", tls=False, session_token="t0k3n-x") as client:
        for text in (repr(client), str(client.url), repr(client.options)):
            assert secret not in text and "t0k3n" not in text


# -- recovery after a broker restart ---------------------------------------------------

def _brokers(*args: str) -> None:
    subprocess.run([str(REPO / "scripts" / "brokers"), *args], check=True, timeout=300,
                   capture_output=True)


@pytest.mark.skipif(not os.environ.get("MQKIT_TEST_SQS_URL"), reason="needs the broker")
def test_restart_producer_and_consumer_recover(client: mqkit.Client, name: str) -> None:
    """moto keeps nothing across a restart (by design): the clients see typed errors
    while it is down, recreate the topic and group they used, and carry on; every send
    that returned after the restart is received."""
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    try:
        producer = client.producer(name)
        consumer = client.consumer(name, "g", lease=5)
        producer.send(b"before")
        assert [m.body for m in _collect(consumer, 1)] == [b"before"]
        held_id = producer.send(b"unacked")
        [held] = _receive_one(consumer)
        assert held.id == held_id
        consumer.close()  # unacked: back to the queue at once
        consumer = client.consumer(name, "g", lease=5)
        assert [m.id for m in _collect(consumer, 1)] == [held_id]
        _brokers("stop", "sqs")
        errors: list[BaseException] = []
        try:
            for call in (lambda: consumer.receive(1, timeout=0.5),
                         lambda: client.admin.depth(name, "g")):
                try:
                    call()
                except mqkit.MQError as exc:
                    errors.append(exc)
        finally:
            _brokers("start", "sqs")
        assert errors and all(isinstance(e, mqkit.Unavailable) for e in errors), errors
        sent: list[str] = []
        received: list[str | None] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (len(sent) < 5 or set(received) < set(sent)):
            try:
                if len(sent) < 5:
                    sent.append(producer.send(f"after-{len(sent)}".encode()))
                batch = consumer.receive(10, timeout=1.0)
                consumer.ack(batch)
                received += [m.id for m in batch]
            except mqkit.MQError as exc:
                assert isinstance(exc, mqkit.Unavailable), repr(exc)
                time.sleep(0.5)
        assert len(sent) == 5 and set(sent) <= set(received)
        consumer.close()
        producer.close()
    finally:
        _cleanup(client, name)


@pytest.mark.parametrize("mode", ["sns", "queue"])
def test_admin_on_missing_resources(url: str, name: str, mode: str) -> None:
    with mqkit.connect(url, mode=mode) as client:
        client.admin.delete_topic(name)  # nothing to do, no error
        client.admin.delete_group(name, "g")
        with pytest.raises(mqkit.NotFound):
            client.admin.list_groups(name)
        with pytest.raises(mqkit.NotFound) as info:
            client.admin.purge(name, "g")
        assert info.value.__cause__ is not None  # the botocore error stays reachable
        assert not client.admin.topic_exists(name)
