"""memory:// semantics, straight on the driver (no portable layer)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest

import mqkit
from mqkit.driver import ConnectParams, Driver, Message, SubscriptionOptions
from mqkit.memory import plugin


@pytest.fixture
def driver() -> Iterator[Driver]:
    assert plugin.connect is not None
    d = plugin.connect(ConnectParams(url=mqkit.URL.parse(f"memory://m-{uuid.uuid4().hex}")))
    d.create_topic("t", {})
    d.create_group("t", "g", "latest")
    yield d
    d.close()


def _send(d: Driver, *messages: Message) -> None:
    d.open_topic("t").send_batch(list(messages))


def _m(body: bytes, **kw: object) -> Message:
    return Message(body, id=uuid.uuid4().hex, **kw)  # type: ignore[arg-type]


def _sub(d: Driver, group: str = "g", **kw: object) -> object:
    return d.open_subscription("t", group, SubscriptionOptions(**kw))  # type: ignore[arg-type]


def test_groups_fan_out_and_members_compete(driver: Driver) -> None:
    driver.create_group("t", "other", "latest")
    _send(driver, *[_m(bytes([i])) for i in range(10)])
    a = driver.open_subscription("t", "g", SubscriptionOptions())
    b = driver.open_subscription("t", "g", SubscriptionOptions())
    got_a = a.receive_batch(6, 0)
    got_b = b.receive_batch(10, 0)
    assert len(got_a) == 6 and len(got_b) == 4
    assert {d.message.body for d in got_a} | {d.message.body for d in got_b} == \
        {bytes([i]) for i in range(10)}
    other = driver.open_subscription("t", "other", SubscriptionOptions())
    assert len(other.receive_batch(100, 0)) == 10


def test_lease_expiry_redelivers_and_extend_prevents_it(driver: Driver) -> None:
    _send(driver, _m(b"a"), _m(b"b"))
    sub = driver.open_subscription("t", "g", SubscriptionOptions(lease=0.2))
    first = sub.receive_batch(2, 0)
    sub.extend_lease([first[1]], 5)
    time.sleep(0.3)
    again = sub.receive_batch(2, 1)
    assert [d.message.body for d in again] == [b"a"] and again[0].delivery_count == 2
    sub.ack(first)  # first[0]'s lease already expired: ignored; first[1] acked
    assert driver.group_stats("t", "g").depth == 1


def test_close_releases_leases(driver: Driver) -> None:
    _send(driver, _m(b"a"))
    sub = driver.open_subscription("t", "g", SubscriptionOptions(lease=60))
    assert len(sub.receive_batch(1, 0)) == 1
    sub.close()
    other = driver.open_subscription("t", "g", SubscriptionOptions())
    [back] = other.receive_batch(1, 0)
    assert back.delivery_count == 2


def test_prefetch_limits_leased_messages(driver: Driver) -> None:
    _send(driver, *[_m(bytes([i])) for i in range(5)])
    sub = driver.open_subscription("t", "g", SubscriptionOptions(prefetch=2))
    held = sub.receive_batch(10, 0)
    assert len(held) == 2 and sub.receive_batch(10, 0) == []
    sub.ack(held[:1])
    assert len(sub.receive_batch(10, 0)) == 1


def test_nack_delay_and_send_delay(driver: Driver) -> None:
    _send(driver, _m(b"later", delay=0.3), _m(b"now"))
    sub = driver.open_subscription("t", "g", SubscriptionOptions())
    [now] = sub.receive_batch(10, 0)
    assert now.message.body == b"now"
    sub.nack([now], 0.3)
    assert sub.receive_batch(10, 0.1) == []
    t0 = time.monotonic()
    got = sub.receive_batch(10, 2)
    got += sub.receive_batch(10, 0.5) if len(got) < 2 else []
    assert sorted(d.message.body for d in got) == [b"later", b"now"]
    assert 0.1 < time.monotonic() - t0 < 1.5


def test_ttl_priority_dedup(driver: Driver) -> None:
    dup = _m(b"dup")
    _send(driver, _m(b"expires", ttl=0.1), _m(b"low", priority=1), _m(b"high", priority=9),
          dup, dup)
    time.sleep(0.15)
    sub = driver.open_subscription("t", "g", SubscriptionOptions())
    assert [d.message.body for d in sub.receive_batch(10, 0)] == [b"high", b"low", b"dup"]


def test_earliest_replays_the_log(driver: Driver) -> None:
    _send(driver, _m(b"old"))
    driver.create_group("t", "late", "latest")
    driver.create_group("t", "replay", "earliest")
    late = driver.open_subscription("t", "late", SubscriptionOptions())
    replay = driver.open_subscription("t", "replay", SubscriptionOptions())
    assert late.receive_batch(10, 0) == []
    assert [d.message.body for d in replay.receive_batch(10, 0)] == [b"old"]


def test_missing_and_deleted_topics(driver: Driver) -> None:
    with pytest.raises(mqkit.NotFound):
        driver.open_topic("missing")
    with pytest.raises(mqkit.NotFound):
        driver.open_subscription("t", "nope", SubscriptionOptions(create_group=False))
    sub = driver.open_subscription("t", "g", SubscriptionOptions())
    result: list[BaseException] = []

    def wait() -> None:
        try:
            sub.receive_batch(1, 5)
        except mqkit.MQError as exc:
            result.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    driver.delete_topic("t")
    waiter.join(2)
    assert isinstance(result[0], mqkit.NotFound) and time.monotonic() - t0 < 1


def test_blocked_receiver_wakes_on_send(driver: Driver) -> None:
    sub = driver.open_subscription("t", "g", SubscriptionOptions())
    threading.Timer(0.1, lambda: _send(driver, _m(b"x"))).start()
    t0 = time.monotonic()
    assert len(sub.receive_batch(1, 5)) == 1
    assert time.monotonic() - t0 < 1


def test_stats_purge_and_closed(driver: Driver) -> None:
    _send(driver, _m(b"a"), _m(b"b"), _m(b"c"))
    sub = driver.open_subscription("t", "g", SubscriptionOptions())
    sub.receive_batch(1, 0)
    stats = driver.group_stats("t", "g")
    assert (stats.depth, stats.in_flight) == (3, 1)
    driver.purge("t", "g")
    assert driver.group_stats("t", "g").depth == 1
    with pytest.raises(mqkit.ConfigurationError, match="takes none"):
        driver.create_topic("x", {"partitions": 3})
    sub.close()
    with pytest.raises(mqkit.Closed):
        sub.receive_batch(1, 0)
