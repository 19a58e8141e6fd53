"""Priority bands against the moto server of ``scripts/brokers``: layout, groups made
before and after a band, delete, queue mode, FIFO refusal, settlement of band messages,
and the requests a receive sends with and without bands."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from typing import Any

import mqkit_sqs._consumer as sqs_consumer
import pytest
from mqkit_sqs import AwsClients
from mqkit_sqs._names import BANDS

import mqkit


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


def _queues(client: mqkit.Client, prefix: str) -> set[str]:
    urls = _native(client).sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
    return {u.rsplit("/", 1)[-1] for u in urls}


def _sns_topics(client: mqkit.Client, name: str) -> set[str]:
    arns = [t["TopicArn"] for t in _native(client).sns.list_topics().get("Topics", [])]
    return {a.rsplit(":", 1)[-1] for a in arns if a.rsplit(":", 1)[-1].startswith(name)}


def _drain(consumer: mqkit.Consumer, count: int, timeout: float = 10.0) -> list[Any]:
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        batch = consumer.receive(1, timeout=1.0)
        consumer.ack(batch)
        got += batch
    return got


class _Counter:
    def __init__(self, client: mqkit.Client) -> None:
        self.ops: collections.Counter[str] = collections.Counter()
        native = _native(client)
        for c in (native.sqs, native.sns):
            c.meta.events.register("before-send", self._count)

    def _count(self, event_name: str = "", **_: Any) -> None:
        self.ops[event_name.rsplit(".", 1)[-1]] += 1


def test_bands_reach_every_group_before_and_after_and_go_with_topic(
        client: mqkit.Client, name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "early")
    try:
        with client.producer(name) as producer:
            producer.send_batch([mqkit.Message(str(p).encode(), priority=p)
                                 for p in (0, 2, 7)])
            client.admin.create_group(name, "late")  # gets bands 2 and 7, not what was sent
            producer.send(b"7b", priority=7)
            producer.send(b"4", priority=4)  # a band made after "late" exists
        assert client.admin.list_topics().count(name) == 1
        assert not [t for t in client.admin.list_topics() if t.startswith(name + "-mqkit")]
        assert sorted(client.admin.list_groups(name)) == ["early", "late"]
        assert _sns_topics(client, name) == {name, *(f"{name}-mqkit-p{p}" for p in (2, 4, 7))}
        assert {f"{name}-mqkit-p{p}-{g}" for p in (2, 4, 7) for g in ("early", "late")} \
            <= _queues(client, name)
        assert client.admin.stats(name, "early").depth == 5
        with client.consumer(name, "early", prefetch=1) as consumer:
            early = [m.body for m in _drain(consumer, 5)]
        with client.consumer(name, "late", prefetch=1) as consumer:
            late = [m.body for m in _drain(consumer, 2)]
        assert early[:3] in ([b"7", b"7b", b"4"], [b"7b", b"7", b"4"])
        assert early[3:] == [b"2", b"0"]
        assert sorted(late) == [b"4", b"7b"]
        client.admin.delete_group(name, "late")
        assert not {q for q in _queues(client, name) if q.endswith("-late")}
    finally:
        client.admin.delete_topic(name)
    assert not _sns_topics(client, name)
    assert not _queues(client, name)


def test_groups_created_while_bands_are_made_get_every_later_send(
        url: str, client: mqkit.Client, name: str) -> None:
    """A producer's first send at each level (each from a new client, so it makes the
    band) races with groups being created: every group whose create_group returned
    before a send started gets that message."""
    client.admin.create_topic(name)
    client.admin.create_group(name, "g0")
    done: list[str] = []  # groups whose create_group returned, in order
    sent: dict[int, list[str]] = {}  # priority -> groups existing when the send began

    def make_groups() -> None:
        with mqkit.connect(url) as admin:
            for i in range(1, 5):
                admin.admin.create_group(name, f"g{i}")
                done.append(f"g{i}")

    try:
        worker = threading.Thread(target=make_groups)
        worker.start()
        for p in BANDS:
            sent[p] = ["g0", *done]
            with mqkit.connect(url) as producer_client:
                producer_client.producer(name).send(str(p).encode(), priority=p)
        worker.join()
        for group in ["g0", *done]:
            want = sorted(str(p).encode() for p, groups in sent.items() if group in groups)
            got: list[bytes] = []
            with client.consumer(name, group, prefetch=1) as consumer:
                deadline = time.monotonic() + 30.0  # more may come: sent while it was made
                while not set(want) <= set(got) and time.monotonic() < deadline:
                    batch = consumer.receive(10, timeout=1.0)
                    consumer.ack(batch)
                    got += [m.body for m in batch]
            assert set(want) <= set(got), f"{group}: want {want}, got {got}, sent {sent}"
    finally:
        client.admin.delete_topic(name)


def test_band_messages_nack_with_delay_reject_and_extend_lease(
        client: mqkit.Client, name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    try:
        with client.producer(name) as producer:
            producer.send(b"hi", priority=8)
            producer.send(b"lo", priority=1)
        with client.consumer(name, "g", prefetch=1, lease=2.0) as consumer:
            [hi] = consumer.receive(1, timeout=5.0)
            assert (hi.body, hi.message.priority, hi.delivery_count) == (b"hi", 8, 1)
            consumer.extend_lease([hi], 30.0)
            consumer.nack([hi], delay=1.0)
            consumer.flush_settlements()
            [lo] = consumer.receive(1, timeout=5.0)  # hi waits its delay
            assert lo.body == b"lo"
            consumer.reject([lo])
            time.sleep(1.2)
            [again] = consumer.receive(1, timeout=5.0)
            assert (again.body, again.delivery_count) == (b"hi", 2)
            again.ack()
            consumer.flush_settlements()
        assert client.admin.stats(name, "g").depth == 0
    finally:
        client.admin.delete_topic(name)


def test_band_message_is_dead_lettered_with_its_reason(client: mqkit.Client,
                                                      name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    dlq = client.dead_letter_topic(name)
    try:
        ident = client.producer(name).send(b"poison", priority=6)

        def handler(msg: mqkit.ReceivedMessage) -> None:
            raise ValueError("cannot process")

        with client.consumer(name, "g", lease=2.0) as consumer:
            stats = consumer.run(handler, retry=mqkit.RetryPolicy(
                max_attempts=2, initial_backoff=0.05, max_backoff=0.2), idle_timeout=3.0)
        assert stats.dead_lettered == 1
        with client.consumer(dlq, mqkit.DEAD_LETTER_GROUP) as letters:
            [dead] = _drain(letters, 1)
        assert (dead.id, dead.body) == (ident, b"poison")
        assert dead.headers[mqkit.DLQ_HEADERS["reason"]] == "ValueError: cannot process"
        assert client.admin.stats(name, "g").depth == 0
    finally:
        client.admin.delete_topic(name)
        client.admin.delete_topic(dlq)


def test_ttl_and_delayed_send_with_priority(client: mqkit.Client, name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    try:
        with client.producer(name) as producer:
            producer.send(b"gone", priority=5, ttl=1.0)
            producer.send(b"later", priority=5, delay=1.0)
            producer.send(b"plain")
        time.sleep(1.5)
        with client.consumer(name, "g", prefetch=1) as consumer:
            got = [m.body for m in _drain(consumer, 2)]
        assert got == [b"later", b"plain"]
    finally:
        client.admin.delete_topic(name)


def test_native_redrive_covers_band_queues(url: str, name: str) -> None:
    with mqkit.connect(url, max_receive_count=5) as client:
        client.admin.create_topic(name)
        client.admin.create_group(name, "g")
        try:
            client.producer(name).send(b"x", priority=3)
            native = _native(client).sqs
            queue = native.get_queue_url(QueueName=f"{name}-mqkit-p3-g")["QueueUrl"]
            attrs = native.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])
            assert f"{name}-dlq-dead-letters" in attrs["Attributes"]["RedrivePolicy"]
        finally:
            client.admin.delete_topic(name)
            client.admin.delete_topic(f"{name}-dlq")


def test_queue_mode_reads_bands_highest_first(queue_client: mqkit.Client,
                                              name: str) -> None:
    queue_client.admin.create_topic(name)
    queue_client.admin.create_group(name, "g")
    try:
        with queue_client.producer(name) as producer:
            for p in (1, 0, 9, 4):
                producer.send(str(p).encode(), priority=p)
        assert name + "-mqkit-p9" in _queues(queue_client, name)
        assert queue_client.admin.list_topics().count(name) == 1
        with queue_client.consumer(name, "g", prefetch=1) as consumer:
            got = [int(m.body) for m in _drain(consumer, 4)]
        assert got == [9, 4, 1, 0]
    finally:
        queue_client.admin.delete_topic(name)
    assert not _queues(queue_client, name)


def test_fifo_topics_declare_and_take_no_priority(client: mqkit.Client, name: str) -> None:
    topic = name + ".fifo"
    assert client.capabilities.priority is mqkit.Support.EMULATED
    assert client.capabilities_for(topic).priority is mqkit.Support.UNSUPPORTED
    client.admin.create_topic(topic)
    try:
        with pytest.raises(mqkit.Unsupported, match="priority"):
            client.producer(topic).send(b"x", priority=3)
        client.producer(topic).send(b"x", priority=0)
    finally:
        client.admin.delete_topic(topic)


def test_band_send_to_a_deleted_topic_raises_and_leaves_no_band(
        client: mqkit.Client, name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    with client.producer(name) as producer:
        producer.send(b"warm")
        client.admin.delete_topic(name)
        with pytest.raises(mqkit.NotFound):
            producer.send(b"x", priority=4)
    assert not _sns_topics(client, name)
    assert not _queues(client, name)


def test_topic_named_like_a_band_is_refused(client: mqkit.Client, name: str) -> None:
    with pytest.raises(mqkit.ConfigurationError, match="topic"):
        client.admin.create_topic(name + "-mqkit-p3")


def test_receive_requests_without_and_with_bands(client: mqkit.Client, name: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    counter = _Counter(client)
    try:
        with client.consumer(name, "g") as consumer:
            client.producer(name).send_batch([mqkit.Message(b"x")] * 10)
            counter.ops.clear()
            assert len(_drain(consumer, 10)) == 10  # no band: one ReceiveMessage each
            assert counter.ops["ReceiveMessage"] == 10
            assert counter.ops["GetQueueUrl"] == 0
        monkeypatch.setattr(sqs_consumer, "BAND_REFRESH", 0.0)  # look at every receive
        with client.consumer(name, "g") as consumer:
            client.producer(name).send_batch(
                [mqkit.Message(b"a", priority=9), mqkit.Message(b"b", priority=2)])
            client.producer(name).send(b"c")
            counter.ops.clear()
            got = consumer.receive(10, timeout=5.0)  # finds the bands made after it opened
            assert [m.body for m in got] == [b"a", b"b", b"c"]
            consumer.ack(got)
            consumer.flush_settlements()
            # 2 band short polls and 1 plain one; the bands found with 2 GetQueueUrl
            # (the 7 missing levels asked once more); one delete per queue
            assert counter.ops["ReceiveMessage"] == 3
            assert counter.ops["DeleteMessageBatch"] == 3
            assert counter.ops["GetQueueUrl"] == 7
    finally:
        client.admin.delete_topic(name)
