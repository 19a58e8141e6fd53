"""memory:// semantics on the blocking driver, called directly (no portable layer)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest

import mqkit
from mqkit.driver import (
    ConnectParams,
    Delivery,
    Driver,
    Message,
    SubscriptionDriver,
    SubscriptionOptions,
)
from mqkit.memory import plugin, reset


def _connect(name: str, **options: object) -> Driver:
    assert plugin.connect is not None
    return plugin.connect(ConnectParams(url=mqkit.URL.parse(f"memory://{name}"),
                                        options=options))


@pytest.fixture
def name() -> Iterator[str]:
    broker = f"t-{uuid.uuid4().hex[:10]}"
    yield broker
    reset(broker)


@pytest.fixture
def driver(name: str) -> Iterator[Driver]:
    d = _connect(name)
    d.create_topic("t", {})
    d.create_group("t", "g", "latest")
    yield d
    d.close()


def _m(body: bytes, **kw: object) -> Message:
    return Message(body, id=uuid.uuid4().hex, **kw)  # type: ignore[arg-type]


def _send(d: Driver, *messages: Message, topic: str = "t") -> None:
    t = d.open_topic(topic)
    t.send_batch(list(messages))
    t.close()


def _sub(d: Driver, group: str = "g", **kw: object) -> SubscriptionDriver:
    return d.open_subscription("t", group, SubscriptionOptions(**kw))  # type: ignore[arg-type]


def _bodies(deliveries: list[Delivery]) -> list[bytes]:
    return [d.message.body for d in deliveries]


def test_every_group_gets_every_message_and_members_compete(driver: Driver) -> None:
    driver.create_group("t", "other", "latest")
    _send(driver, *[_m(bytes([i])) for i in range(10)])
    a, b, other = _sub(driver), _sub(driver), _sub(driver, "other")
    got_a = a.receive_batch(6, 0)
    got_b = b.receive_batch(10, 0)
    assert _bodies(got_a) == [bytes([i]) for i in range(6)]
    assert _bodies(got_b) == [bytes([i]) for i in range(6, 10)]
    assert a.receive_batch(10, 0) == []
    assert _bodies(other.receive_batch(100, 0)) == [bytes([i]) for i in range(10)]


def test_delivery_carries_the_message_as_sent(driver: Driver) -> None:
    sent = _m(b"\x00body", key="k", headers={"h": "v"}, correlation_id="c", reply_to="r")
    before = time.time()
    _send(driver, sent, _m(b"second"))
    first, second = _sub(driver).receive_batch(2, 0)
    assert first.message == sent and first.topic == "t" and first.delivery_count == 1
    assert first.timestamp is not None and before <= first.timestamp <= time.time()
    assert (first.broker_id, second.broker_id) == ("1", "2")


def test_latest_group_misses_earlier_messages_earliest_replays_them(driver: Driver) -> None:
    _send(driver, _m(b"old"))
    driver.create_group("t", "late", "latest")
    driver.create_group("t", "replay", "earliest")
    _send(driver, _m(b"new"))
    assert _bodies(_sub(driver, "late").receive_batch(10, 0)) == [b"new"]
    assert _bodies(_sub(driver, "replay").receive_batch(10, 0)) == [b"old", b"new"]
    # acked in other groups or not, the log keeps it for a new earliest group
    sub = _sub(driver, "later", start="earliest")
    assert _bodies(sub.receive_batch(10, 0)) == [b"old", b"new"]


def test_max_retained_bounds_the_replay_log(name: str) -> None:
    d = _connect(name, max_retained="2")
    d.create_topic("t", {})
    _send(d, _m(b"1"), _m(b"2"), _m(b"3"))
    assert _bodies(_sub(d, "g", start="earliest").receive_batch(10, 0)) == [b"2", b"3"]
    d.close()


def test_ack_reject_and_nack(driver: Driver) -> None:
    _send(driver, _m(b"a"), _m(b"b"), _m(b"c"))
    sub = _sub(driver)
    a, b, c = sub.receive_batch(3, 0)
    sub.ack([a])
    sub.reject([b])
    sub.nack([c], None)
    [again] = sub.receive_batch(10, 0)
    assert again.message.body == b"c" and again.delivery_count == 2
    sub.nack([again], None)
    [third] = sub.receive_batch(10, 0)
    assert third.delivery_count == 3
    sub.ack([third])
    assert sub.receive_batch(10, 0) == []
    assert driver.group_stats("t", "g").depth == 0


def test_settling_twice_or_after_expiry_is_ignored(driver: Driver) -> None:
    _send(driver, _m(b"a"))
    sub = _sub(driver, lease=0.1)
    [first] = sub.receive_batch(1, 0)
    time.sleep(0.15)
    [second] = sub.receive_batch(1, 0)
    assert second.delivery_count == 2
    sub.ack([first])  # stale handle: must not settle the second delivery
    assert driver.group_stats("t", "g").in_flight == 1
    sub.ack([second])
    sub.nack([second], None)  # already acked: ignored
    assert driver.group_stats("t", "g").depth == 0


def test_redelivered_message_takes_back_its_place(driver: Driver) -> None:
    _send(driver, *[_m(bytes([i])) for i in range(4)])
    sub = _sub(driver)
    first = sub.receive_batch(2, 0)
    sub.nack(first[::-1], None)
    assert _bodies(sub.receive_batch(10, 0)) == [bytes([i]) for i in range(4)]


def test_lease_expiry_redelivers_and_extend_prevents_it(driver: Driver) -> None:
    _send(driver, _m(b"a"), _m(b"b"))
    sub = _sub(driver, lease=0.2)
    _, b = sub.receive_batch(2, 0)
    sub.extend_lease([b], 5)
    assert sub.receive_batch(2, 0) == []
    t0 = time.monotonic()
    again = sub.receive_batch(2, 2)  # wakes when a's lease runs out, not at the timeout
    assert time.monotonic() - t0 < 1
    assert _bodies(again) == [b"a"] and again[0].delivery_count == 2
    stats = driver.group_stats("t", "g")
    assert (stats.depth, stats.in_flight) == (2, 2)


def test_extend_lease_shortens_too(driver: Driver) -> None:
    _send(driver, _m(b"a"))
    sub = _sub(driver, lease=60)
    [a] = sub.receive_batch(1, 0)
    sub.extend_lease([a], 0.05)
    time.sleep(0.1)
    assert _bodies(sub.receive_batch(1, 0)) == [b"a"]


def test_closing_a_subscription_redelivers_its_messages(driver: Driver) -> None:
    _send(driver, _m(b"a"), _m(b"b"))
    sub, other = _sub(driver, lease=60), _sub(driver)
    held = sub.receive_batch(2, 0)
    sub.ack(held[1:])
    assert other.receive_batch(10, 0) == []
    sub.close()
    [back] = other.receive_batch(10, 0)
    assert back.message.body == b"a" and back.delivery_count == 2


def test_closing_the_driver_closes_its_subscriptions(name: str, driver: Driver) -> None:
    _send(driver, _m(b"a"))
    d2 = _connect(name)
    sub = d2.open_subscription("t", "g", SubscriptionOptions(lease=60))
    assert len(sub.receive_batch(1, 0)) == 1
    topic = d2.open_topic("t")
    d2.close()
    assert _sub(driver).receive_batch(1, 0)[0].delivery_count == 2
    for call in (lambda: sub.receive_batch(1, 0), lambda: sub.ack([]),
                 lambda: topic.send_batch([_m(b"x")]), d2.list_topics,
                 lambda: d2.open_topic("t"), lambda: d2.create_topic("x", {})):
        with pytest.raises(mqkit.Closed):
            call()


def test_prefetch_limits_messages_held(driver: Driver) -> None:
    _send(driver, *[_m(bytes([i])) for i in range(5)])
    sub = _sub(driver, prefetch=2)
    held = sub.receive_batch(10, 0)
    assert len(held) == 2
    t0 = time.monotonic()
    assert sub.receive_batch(10, 0.1) == []
    assert time.monotonic() - t0 >= 0.09
    sub.ack(held[:1])
    assert len(sub.receive_batch(10, 0)) == 1
    assert len(_sub(driver).receive_batch(10, 0)) == 2  # the rest went to nobody else


def test_delayed_send_and_delayed_nack(driver: Driver) -> None:
    _send(driver, _m(b"later", delay=0.3), _m(b"now"))
    sub = _sub(driver)
    [now] = sub.receive_batch(10, 0)
    assert now.message.body == b"now"
    sub.nack([now], 0.2)
    assert sub.receive_batch(10, 0.1) == []
    t0 = time.monotonic()
    got = sub.receive_batch(10, 2)
    assert 0.03 < time.monotonic() - t0 < 1  # woken when due
    got += sub.receive_batch(10, 2) if len(got) < 2 else []
    assert sorted(_bodies(got)) == [b"later", b"now"]
    assert {d.message.body: d.delivery_count for d in got} == {b"later": 1, b"now": 2}


def test_waiting_receiver_sees_a_delay_sent_while_it_waits(driver: Driver) -> None:
    sub = _sub(driver)
    threading.Timer(0.05, lambda: _send(driver, _m(b"d", delay=0.1))).start()
    t0 = time.monotonic()
    assert _bodies(sub.receive_batch(1, 5)) == [b"d"]
    assert time.monotonic() - t0 < 1


def test_ttl_expired_messages_are_never_delivered(driver: Driver) -> None:
    _send(driver, _m(b"short", ttl=0.1), _m(b"long", ttl=60), _m(b"late", delay=0.2, ttl=0.1))
    assert driver.group_stats("t", "g").depth == 3
    sub = _sub(driver)
    [short] = sub.receive_batch(1, 0)
    sub.nack([short], None)
    time.sleep(0.25)
    assert _bodies(sub.receive_batch(10, 0)) == [b"long"]
    assert driver.group_stats("t", "g").depth == 1
    driver.create_group("t", "replay", "earliest")  # expired ones are not replayed either
    assert driver.group_stats("t", "replay").depth == 1


def test_priority_first_then_send_order(driver: Driver) -> None:
    _send(driver, _m(b"p0"), _m(b"p1", priority=1), _m(b"p9", priority=9),
          _m(b"p1b", priority=1), _m(b"none"))
    sub = _sub(driver)
    got = sub.receive_batch(10, 0)
    assert _bodies(got) == [b"p9", b"p1", b"p1b", b"p0", b"none"]
    sub.nack([got[3]], None)
    _send(driver, _m(b"p5", priority=5), _m(b"p0b"))
    assert _bodies(sub.receive_batch(10, 0)) == [b"p5", b"p0", b"p0b"]


def test_dedup_drops_repeated_ids_within_the_window(name: str) -> None:
    d = _connect(name, dedup_window="0.2")
    d.create_topic("t", {})
    d.create_topic("u", {})
    d.create_group("t", "g", "latest")
    d.create_group("u", "g", "latest")
    _send(d, Message(b"1", id="x"), Message(b"2", id="x"), Message(b"3", id="y"))
    _send(d, Message(b"4", id="y"))
    _send(d, Message(b"5", id="x"), topic="u")  # another topic: not a duplicate
    time.sleep(0.25)
    _send(d, Message(b"6", id="x"))  # the window passed
    assert _bodies(_sub(d).receive_batch(10, 0)) == [b"1", b"3", b"6"]
    assert _bodies(d.open_subscription("u", "g", SubscriptionOptions()).receive_batch(9, 0)) \
        == [b"5"]
    d.close()


def test_blocked_receiver_wakes_on_send_from_another_thread(driver: Driver) -> None:
    sub = _sub(driver)
    threading.Timer(0.1, lambda: _send(driver, _m(b"x"))).start()
    t0 = time.monotonic()
    assert _bodies(sub.receive_batch(5, 5)) == [b"x"]
    assert time.monotonic() - t0 < 1


def test_receive_times_out_empty(driver: Driver) -> None:
    sub = _sub(driver)
    t0 = time.monotonic()
    assert sub.receive_batch(1, 0.1) == []
    assert 0.09 <= time.monotonic() - t0 < 0.5
