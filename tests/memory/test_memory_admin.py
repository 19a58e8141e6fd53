"""memory:// admin verbs, NotFound and Closed cases, options, on the blocking driver."""

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
    Support,
)
from mqkit.memory import Broker, plugin, reset


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


def test_missing_things_raise_not_found(driver: Driver) -> None:
    with pytest.raises(mqkit.NotFound):
        driver.open_topic("missing")
    with pytest.raises(mqkit.NotFound):
        driver.open_subscription("missing", "g", SubscriptionOptions())
    with pytest.raises(mqkit.NotFound):
        _sub(driver, "nope", create_group=False)
    with pytest.raises(mqkit.NotFound):
        driver.create_group("missing", "g", "latest")
    with pytest.raises(mqkit.NotFound):
        driver.list_groups("missing")
    with pytest.raises(mqkit.NotFound):
        driver.group_stats("t", "nope")
    with pytest.raises(mqkit.NotFound):
        driver.purge("t", "nope")
    driver.delete_group("t", "nope")
    driver.delete_topic("missing")
    assert "nope" not in driver.list_groups("t")
    _sub(driver, "auto")  # create_group=True (the default) creates it
    assert sorted(driver.list_groups("t")) == ["auto", "g"]


def test_producer_of_a_deleted_topic_gets_not_found(driver: Driver) -> None:
    topic = driver.open_topic("t")
    driver.delete_topic("t")
    assert not driver.topic_exists("t") and driver.list_topics() == []
    with pytest.raises(mqkit.NotFound):
        topic.send_batch([_m(b"x")])
    driver.create_topic("t", {})
    topic.send_batch([_m(b"x")])  # sends by name: the new topic


def test_topic_deleted_under_a_waiting_receiver(driver: Driver) -> None:
    sub = _sub(driver)
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
    driver.create_topic("t", {})
    driver.create_group("t", "g", "latest")  # a new group of the same name...
    with pytest.raises(mqkit.NotFound):
        sub.receive_batch(1, 0)  # ...is not the one this subscription belonged to
    with pytest.raises(mqkit.NotFound):
        sub.ack([])


def test_group_deleted_under_a_subscription(driver: Driver) -> None:
    sub = _sub(driver)
    driver.delete_group("t", "g")
    with pytest.raises(mqkit.NotFound):
        sub.receive_batch(1, 0.01)


def test_stats_and_purge(driver: Driver) -> None:
    _send(driver, _m(b"a"), _m(b"b"), _m(b"c"), _m(b"d", delay=60))
    sub = _sub(driver)
    [a] = sub.receive_batch(1, 0)
    stats = driver.group_stats("t", "g")
    assert (stats.topic, stats.group, stats.depth, stats.in_flight) == ("t", "g", 4, 1)
    driver.purge("t", "g")
    assert (driver.group_stats("t", "g").depth, sub.receive_batch(10, 0)) == (1, [])
    sub.ack([a])  # leased messages survive a purge and settle normally
    assert driver.group_stats("t", "g").depth == 0


def test_admin_verbs(driver: Driver) -> None:
    driver.create_topic("t", {})  # idempotent
    driver.create_topic("u", {})
    assert sorted(driver.list_topics()) == ["t", "u"]
    assert driver.topic_exists("u") and not driver.topic_exists("v")
    driver.create_group("t", "g", "earliest")  # idempotent: keeps its messages
    with pytest.raises(mqkit.ConfigurationError, match="'partitions'"):
        driver.create_topic("x", {"partitions": 3})
    with pytest.raises(mqkit.ConfigurationError):
        driver.create_group("t", "h", "middle")
    assert driver.dead_letter_topic("t") == "t.dlq"


def test_brokers_are_shared_by_name_and_reset(name: str, driver: Driver) -> None:
    other = _connect(name)
    assert other.list_topics() == ["t"]
    assert other.as_(Broker) is driver.as_(Broker) is not None
    assert other.as_(int) is None
    elsewhere = _connect(name + "-x")
    assert elsewhere.list_topics() == []
    reset(name)
    assert _connect(name).list_topics() == []
    assert other.list_topics() == ["t"]  # open connections keep their broker
    other.close()


def test_default_name() -> None:
    a, b = _connect(""), _connect("default")
    a.create_topic("t-default", {})
    assert b.topic_exists("t-default")
    a.delete_topic("t-default")


def test_options_and_capabilities(name: str) -> None:
    with pytest.raises(mqkit.ConfigurationError, match="'face'"):
        _connect(name, face="sync")
    with pytest.raises(mqkit.ConfigurationError, match="max_batch"):
        _connect(name, max_batch="lots")
    with pytest.raises(mqkit.ConfigurationError):
        _connect(name, max_batch="0")
    caps = _connect(name, max_message_size="10", max_batch="7").capabilities
    assert (caps.backend, caps.max_message_size, caps.max_batch) == ("memory", 10, 7)
    assert caps.dead_letter is Support.EMULATED and caps.request_reply is Support.EMULATED
    assert caps.persistence is Support.UNSUPPORTED and caps.max_delay is None
    native = ("nack", "nack_delay", "delay", "ordering", "groups", "competing_consumers",
              "replay", "priority", "ttl", "dedup", "lease_extension",
              "redelivery_on_close", "admin_stats", "purge")
    assert all(caps.support(f) is Support.NATIVE for f in native)
