"""The portable layer's own rules, on memory:// through the blocking face."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence

import pytest

import mqkit
from mqkit import Message


@pytest.fixture
def client() -> Iterator[mqkit.Client]:
    with mqkit.connect(f"memory://t-{uuid.uuid4().hex[:8]}") as c:
        c.admin.create_topic("t")
        c.admin.create_group("t", "g")
        yield c


def _send(client: mqkit.Client, *bodies: bytes) -> list[str]:
    with client.producer("t") as p:
        return p.send_batch(list(bodies))


def test_first_decision_wins(client: mqkit.Client) -> None:
    _send(client, b"a", b"b")
    with client.consumer("t", "g") as c:
        a, b = c.receive(2, timeout=1)
        a.ack()
        with pytest.raises(mqkit.MessageStateError, match="already acked"):
            a.ack()
        with pytest.raises(mqkit.MessageStateError):
            a.nack()
        b.nack()
        with pytest.raises(mqkit.MessageStateError, match="already nacked"):
            b.ack()
        again = c.receive(2, timeout=1)
    assert [m.body for m in again] == [b"b"] and again[0].delivery_count == 2


def test_closed_rules(client: mqkit.Client) -> None:
    producer = client.producer("t")
    producer.close()
    producer.close()  # twice: no-op
    with pytest.raises(mqkit.Closed):
        producer.send(b"x")
    consumer = client.consumer("t", "g")
    consumer.close()
    with pytest.raises(mqkit.Closed):
        consumer.receive(1, timeout=0)
    client.close()
    client.close()
    with pytest.raises(mqkit.Closed):
        client.producer("t")


def test_ack_after_consumer_close_raises_closed_and_message_returns(client: mqkit.Client) -> None:
    _send(client, b"a")
    consumer = client.consumer("t", "g")
    [msg] = consumer.receive(1, timeout=1)
    consumer.close()
    with pytest.raises(mqkit.Closed):
        msg.ack()
    with client.consumer("t", "g") as other:
        [back] = other.receive(1, timeout=1)
    assert back.id == msg.id and back.delivery_count == 2


def test_prefetch_one_holds_back_until_settled(client: mqkit.Client) -> None:
    _send(client, b"1", b"2")
    with client.consumer("t", "g", prefetch=1) as c:
        first = c.receive(10, timeout=1)
        assert len(first) == 1
        t0 = time.monotonic()
        assert c.receive(10, timeout=0.3) == []
        assert time.monotonic() - t0 >= 0.25
        first[0].ack()
        assert [m.body for m in c.receive(10, timeout=1)] == [b"2"]


def test_run_retries_then_dead_letters_with_reason(client: mqkit.Client) -> None:
    ids = _send(client, b"ok", b"bad")
    attempts: list[int] = []

    def handler(msg: mqkit.ReceivedMessage) -> None:
        if msg.body == b"bad":
            attempts.append(msg.delivery_count)
            raise ValueError("cannot bill")

    policy = mqkit.RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)
    with client.consumer("t", "g") as c:
        stats = c.run(handler, retry=policy, idle_timeout=0.5)
    assert attempts == [1, 2, 3]
    assert (stats.acked, stats.retried, stats.dead_lettered) == (1, 2, 1)
    dlq = client.dead_letter_topic("t")
    with client.consumer(dlq, mqkit.DEAD_LETTER_GROUP) as d:
        [dead] = d.receive(10, timeout=1)
    assert dead.body == b"bad" and dead.id == ids[1]
    assert dead.headers["mqkit-dead-letter-reason"] == "ValueError: cannot bill"
    assert dead.headers["mqkit-dead-letter-attempts"] == "3"
    assert dead.headers["mqkit-dead-letter-group"] == "g"
    assert client.admin.depth("t", "g") == 0


def test_permanent_failure_skips_retries(client: mqkit.Client) -> None:
    _send(client, b"x")

    def handler(msg: mqkit.ReceivedMessage) -> None:
        raise mqkit.PermanentFailure("schema mismatch")

    with client.consumer("t", "g") as c:
        stats = c.run(handler, stop_after=1)
    assert (stats.retried, stats.dead_lettered) == (0, 1)


def test_graceful_stop_finishes_and_acks_in_flight(client: mqkit.Client) -> None:
    _send(client, *[str(i).encode() for i in range(5)])
    started = threading.Event()
    done: list[bytes] = []
    consumer = client.consumer("t", "g")

    def slow(msg: mqkit.ReceivedMessage) -> None:
        started.set()
        time.sleep(0.3)
        done.append(msg.body)

    result: list[mqkit.RunStats] = []
    worker = threading.Thread(target=lambda: result.append(consumer.run(slow, batch_size=5)))
    worker.start()
    assert started.wait(2)
    consumer.stop()
    worker.join(5)
    stats = result[0]
    assert stats.acked == len(done) >= 1 and stats.released == 5 - len(done)
    consumer.close()
    assert client.admin.depth("t", "g") == 5 - len(done)


def test_send_batch_splits_to_the_limit() -> None:
    with mqkit.connect(f"memory://split-{uuid.uuid4().hex[:6]}?max_batch=3") as client:
        client.admin.create_topic("t")
        client.admin.create_group("t", "g")
        with client.producer("t") as p:
            ids = p.send_batch([bytes([i]) for i in range(10)])
        with client.consumer("t", "g") as c:
            got = c.receive(20, timeout=1)
        assert [m.id for m in got] == ids


def test_partial_batch_failure_names_entries(client: mqkit.Client,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    producer = client.producer("t")
    driver = producer._open()
    real = driver.send_batch

    def flaky(messages: Sequence[Message]) -> None:
        if any(m.body == b"boom" for m in messages):
            raise mqkit.BackendError("rejected")
        real(messages)

    monkeypatch.setattr(driver, "send_batch", flaky)
    with pytest.raises(mqkit.SendBatchError) as info:
        producer.send_batch([b"a", b"boom"])
    assert set(info.value.failures) == {0, 1}
    producer.close()


def test_buffered_sends_flush_on_close(client: mqkit.Client) -> None:
    with client.producer("t") as p:
        for i in range(5):
            p.send(bytes([i]), wait=False)
        assert client.admin.depth("t", "g") == 0
    assert client.admin.depth("t", "g") == 5


def test_send_retries_while_unavailable(client: mqkit.Client,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    producer = client.producer("t")
    driver = producer._open()
    real = driver.send_batch
    failures = [mqkit.Unavailable("down"), mqkit.Unavailable("still down")]

    def recovering(messages: Sequence[Message]) -> None:
        if failures:
            raise failures.pop(0)
        real(messages)

    monkeypatch.setattr(driver, "send_batch", recovering)
    producer.send(b"eventually")
    assert client.admin.depth("t", "g") == 1
    producer.close()


def test_foreign_errors_become_backend_errors_without_secrets() -> None:
    url = f"memory://user:hunter22@sec-{uuid.uuid4().hex[:6]}"
    with mqkit.connect(url) as client:
        assert "hunter22" not in repr(client)
        client.admin.create_topic("t")
        producer = client.producer("t")
        driver = producer._open()

        def broken(messages: Sequence[Message]) -> None:
            raise RuntimeError("auth failed for password hunter22")

        # The backend's own driver, below the connection's error mapping.
        driver._inner.send_batch = broken  # type: ignore[method-assign]
        with pytest.raises(mqkit.BackendError) as info:
            producer.send(b"x")
        assert "hunter22" not in str(info.value)
        assert isinstance(info.value.__cause__, RuntimeError)


def test_request_reply_and_timeout(client: mqkit.Client) -> None:
    server = client.consumer("t", "g")
    worker = threading.Thread(
        target=server.run, args=(lambda req: client.reply(req, req.body[::-1]),))
    worker.start()
    try:
        reply = client.request("t", b"abc", timeout=5)
        assert reply.body == b"cba"
    finally:
        server.stop()
        worker.join(5)
        server.close()
    client.admin.create_topic("silent")
    with pytest.raises(mqkit.Timeout, match="no reply"):
        client.request("silent", b"?", timeout=0.3)


def test_missing_topic_is_not_found_and_not_created(client: mqkit.Client) -> None:
    with pytest.raises(mqkit.NotFound):
        client.producer("nope").send(b"x")
    with pytest.raises(mqkit.NotFound):
        client.consumer("nope", "g").receive(1, timeout=0)
    assert not client.admin.topic_exists("nope")


def test_auto_create() -> None:
    with mqkit.connect(f"memory://ac-{uuid.uuid4().hex[:6]}", auto_create=True) as client:
        with client.consumer("fresh", "g") as c:
            c.receive(1, timeout=0)
            client.producer("fresh").send(b"x")
            assert [m.body for m in c.receive(1, timeout=1)] == [b"x"]


def test_oversized_message_raises_before_sending() -> None:
    with mqkit.connect(f"memory://big-{uuid.uuid4().hex[:6]}?max_message_size=10") as client:
        client.admin.create_topic("t")
        client.admin.create_group("t", "g")
        with client.producer("t") as p:
            p.send(b"x" * 10)
            with pytest.raises(mqkit.MessageTooLarge):
                p.send_batch([b"ok", b"y" * 11])
        assert client.admin.depth("t", "g") == 1


def test_iteration_ends_on_close(client: mqkit.Client) -> None:
    _send(client, b"a", b"b")
    consumer = client.consumer("t", "g")
    seen = []
    for msg in consumer:
        seen.append(msg.body)
        msg.ack()
        if len(seen) == 2:
            threading.Timer(0.2, consumer.close).start()
    assert seen == [b"a", b"b"]
