"""The blocking ``memory://`` driver: a thin face over :class:`~._broker.Broker`.

A waiting ``receive_batch`` sleeps on a ``threading.Event`` that the broker sets when a
message may have arrived, and never longer than the group's next due time (a delayed
message or an expiring lease), so it needs no polling loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import TypeVar

from .._errors import Closed
from .._message import Delivery, Message
from ..driver import (
    ConnectParams,
    Driver,
    GroupStats,
    SubscriptionDriver,
    SubscriptionOptions,
    TopicDriver,
)
from ._broker import Broker
from ._session import Session
from ._state import Member

__all__ = ["MemoryDriver", "connect"]

T = TypeVar("T")


def _as(broker: Broker, kind: type[T]) -> T | None:
    return broker if isinstance(broker, kind) else None


class MemoryTopic(TopicDriver):
    """Sends to one topic (looked up by name on each send, so a deleted topic raises
    NotFound and a re-created one is sent to)."""

    def __init__(self, session: Session, topic: str) -> None:
        self._session = session
        self._topic = topic
        self._closed = False

    def send_batch(self, messages: Sequence[Message]) -> None:
        if self._closed or self._session.closed:
            raise Closed(f"memory topic {self._topic!r} is closed")
        self._session.broker.send(self._topic, messages, self._session.options.dedup_window)

    def close(self) -> None:
        self._closed = True

    def as_(self, kind: type[T]) -> T | None:
        return _as(self._session.broker, kind)


class MemorySubscription(SubscriptionDriver):
    """One member of a group; its leased messages are ready again when it closes."""

    def __init__(self, session: Session, member: Member) -> None:
        self._session = session
        self._broker = session.broker
        self._member = member
        self._event = threading.Event()
        self._wake = self._event.set

    def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        broker, member = self._broker, self._member
        got, due = broker.receive(member, max_messages, None)
        if got or timeout <= 0:
            return got
        end = time.monotonic() + timeout
        try:
            while True:
                self._event.clear()
                got, due = broker.receive(member, max_messages, self._wake)
                now = time.monotonic()
                if got or now >= end:
                    return got
                self._event.wait(min(end, due) - now)
        finally:
            broker.unwait(member, self._wake)

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        self._broker.settle(self._member, deliveries, False)

    def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        self._broker.settle(self._member, deliveries, True, delay)

    def reject(self, deliveries: Sequence[Delivery]) -> None:
        self._broker.settle(self._member, deliveries, False)

    def release(self, deliveries: Sequence[Delivery]) -> None:
        self._broker.settle(self._member, deliveries, True, release=True)

    def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        self._broker.extend(self._member, deliveries, seconds)

    def close(self) -> None:
        self._session.leave(self._member)

    def as_(self, kind: type[T]) -> T | None:
        return _as(self._broker, kind)


class MemoryDriver(Driver):
    """A blocking connection to one named in-process broker."""

    def __init__(self, params: ConnectParams) -> None:
        self._session = Session(params)
        self.capabilities = self._session.capabilities

    def open_topic(self, topic: str) -> TopicDriver:
        self._session.live().check_topic(topic)
        return MemoryTopic(self._session, topic)

    def open_subscription(self, topic: str, group: str,
                          options: SubscriptionOptions) -> SubscriptionDriver:
        member = self._session.live().join(topic, group, options)
        return MemorySubscription(self._session, self._session.adopt(member))

    def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        self._session.live().create_topic(topic, options, self._session.options.max_retained)

    def delete_topic(self, topic: str) -> None:
        self._session.live().delete_topic(topic)

    def list_topics(self) -> list[str]:
        return self._session.live().topics()

    def topic_exists(self, topic: str) -> bool:
        return self._session.live().has_topic(topic)

    def create_group(self, topic: str, group: str, start: str) -> None:
        self._session.live().create_group(topic, group, start)

    def delete_group(self, topic: str, group: str) -> None:
        self._session.live().delete_group(topic, group)

    def list_groups(self, topic: str) -> list[str]:
        return self._session.live().groups(topic)

    def group_stats(self, topic: str, group: str) -> GroupStats:
        return self._session.live().stats(topic, group)

    def purge(self, topic: str, group: str) -> None:
        self._session.live().purge(topic, group)

    def close(self) -> None:
        """Close every subscription still open (their leased messages become ready)."""
        self._session.close()

    def as_(self, kind: type[T]) -> T | None:
        return _as(self._session.broker, kind)


def connect(params: ConnectParams) -> Driver:
    """Open a blocking driver on the broker named by ``params.url`` (``memory://NAME``)."""
    return MemoryDriver(params)
