"""The blocking driver over :class:`Broker`; the asyncio face bridges it (worker threads)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .._capabilities import Capabilities, Support
from .._errors import Closed, ConfigurationError, NotFound
from .._message import Delivery, Message
from ..driver import Driver, GroupStats, SubscriptionDriver, SubscriptionOptions, TopicDriver
from ._broker import Broker

__all__ = ["MemoryDriver", "MemoryOptions", "broker_named", "reset"]

T = TypeVar("T")
_NATIVE = Support.NATIVE


@dataclass(frozen=True)
class MemoryOptions:
    """``memory://`` query parameters (see the package docstring)."""

    max_message_size: int = 1_048_576
    max_batch: int = 10_000
    dedup_window: float = 120.0
    # Bounded so a long-lived process does not grow without limit; only replay from the
    # earliest message (a new group with start="earliest") reads this log.
    max_retained: int = 100_000

    def __post_init__(self) -> None:
        if self.max_message_size < 0 or self.max_batch < 1 or self.max_retained < 0:
            raise ConfigurationError("memory:// limits must be positive")


_brokers: dict[str, Broker] = {}
_brokers_lock = threading.Lock()


def broker_named(name: str, max_retained: int = 100_000) -> Broker:
    """The process-wide broker called ``name``, created on first use."""
    with _brokers_lock:
        broker = _brokers.get(name)
        if broker is None:
            broker = _brokers[name] = Broker(max_retained)
        return broker


def reset(name: str | None = None) -> None:
    """Forget the broker called ``name`` (every broker when ``None``): for unit tests."""
    with _brokers_lock:
        if name is None:
            _brokers.clear()
        else:
            _brokers.pop(name, None)


class MemoryTopic(TopicDriver):
    """Sends to one topic of the broker."""

    def __init__(self, driver: MemoryDriver, topic: str) -> None:
        self._driver = driver
        self._topic = topic
        self._closed = False

    def send_batch(self, messages: Sequence[Message]) -> None:
        if self._closed or self._driver.closed:
            raise Closed(f"memory topic {self._topic!r} is closed")
        self._driver.broker.send(self._topic, messages, self._driver.options.dedup_window)

    def close(self) -> None:
        self._closed = True


class MemorySubscription(SubscriptionDriver):
    """One consumer of a group; its leased messages go back to the group on close."""

    _ids = itertools.count(1)

    def __init__(self, driver: MemoryDriver, topic: str, group: str,
                 options: SubscriptionOptions) -> None:
        self._driver = driver
        self._topic = topic
        self._group = group
        self._options = options
        self.id = next(self._ids)
        self.closed = False

    def _live(self) -> Broker:
        if self.closed:
            raise Closed(f"memory subscription to {self._topic!r}/{self._group!r} is closed")
        return self._driver.broker

    def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        return self._live().receive(self._topic, self._group, self.id, max_messages, timeout,
                                    lease=self._options.lease,
                                    prefetch=self._options.prefetch)

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        self._live().settle(self._topic, self._group, _handles(deliveries), "ack")

    def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        self._live().settle(self._topic, self._group, _handles(deliveries), "nack", delay)

    def reject(self, deliveries: Sequence[Delivery]) -> None:
        self._live().settle(self._topic, self._group, _handles(deliveries), "reject")

    def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        self._live().extend(self._topic, self._group, _handles(deliveries), seconds)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._driver.broker.release(self.id)
            self._driver.forget(self)


def _handles(deliveries: Sequence[Delivery]) -> list[int]:
    return [d.handle for d in deliveries]  # type: ignore[misc]


class MemoryDriver(Driver):
    """A connection to one named in-process broker."""

    def __init__(self, name: str, options: MemoryOptions) -> None:
        self.name = name
        self.options = options
        self.broker = broker_named(name, options.max_retained)
        self.closed = False
        self._subs: dict[int, MemorySubscription] = {}
        self._subs_lock = threading.Lock()
        self.capabilities = Capabilities(
            backend="memory", nack=_NATIVE, nack_delay=_NATIVE, delay=_NATIVE,
            dead_letter=Support.EMULATED, ordering=_NATIVE, groups=_NATIVE,
            competing_consumers=_NATIVE, replay=_NATIVE, priority=_NATIVE, ttl=_NATIVE,
            dedup=_NATIVE, request_reply=Support.EMULATED, lease_extension=_NATIVE,
            persistence=Support.UNSUPPORTED, redelivery_on_close=_NATIVE,
            admin_stats=_NATIVE, purge=_NATIVE, max_message_size=options.max_message_size,
            max_headers=None, max_batch=options.max_batch, max_delay=None,
            delivery="at-least-once")

    def _live(self) -> Broker:
        if self.closed:
            raise Closed(f"memory://{self.name} connection is closed")
        return self.broker

    def open_topic(self, topic: str) -> TopicDriver:
        self._live().check_topic(topic)
        return MemoryTopic(self, topic)

    def open_subscription(self, topic: str, group: str,
                          options: SubscriptionOptions) -> SubscriptionDriver:
        broker = self._live()
        if not broker.has_group(topic, group):
            if not options.create_group:
                raise NotFound(f"group {group!r} does not exist on topic {topic!r}")
            broker.create_group(topic, group, options.start)
        sub = MemorySubscription(self, topic, group, options)
        with self._subs_lock:
            self._subs[sub.id] = sub
        return sub

    def forget(self, sub: MemorySubscription) -> None:
        with self._subs_lock:
            self._subs.pop(sub.id, None)

    def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        if options:
            raise ConfigurationError(
                f"unknown topic option(s) {', '.join(sorted(options))} for memory://; "
                "it takes none")
        self._live().create_topic(topic)

    def delete_topic(self, topic: str) -> None:
        self._live().delete_topic(topic)

    def list_topics(self) -> list[str]:
        return self._live().topics()

    def topic_exists(self, topic: str) -> bool:
        return self._live().has_topic(topic)

    def create_group(self, topic: str, group: str, start: str) -> None:
        self._live().create_group(topic, group, start)

    def delete_group(self, topic: str, group: str) -> None:
        self._live().delete_group(topic, group)

    def list_groups(self, topic: str) -> list[str]:
        return self._live().groups(topic)

    def group_stats(self, topic: str, group: str) -> GroupStats:
        depth, in_flight = self._live().stats(topic, group)
        return GroupStats(topic, group, depth, in_flight)

    def purge(self, topic: str, group: str) -> None:
        self._live().purge(topic, group)

    def close(self) -> None:
        """Close every subscription (their leased messages become ready), then the driver."""
        with self._subs_lock:
            subs = list(self._subs.values())
        for sub in subs:
            sub.close()
        self.closed = True

    def as_(self, kind: type[T]) -> T | None:
        return self.broker if isinstance(self.broker, kind) else None
