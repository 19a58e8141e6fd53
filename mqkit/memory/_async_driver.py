"""The asyncio ``memory://`` driver: a thin face over :class:`~._broker.Broker`.

Broker calls hold its lock for one batch's worth of work and never block, so they run
straight on the event loop; ``send_batch`` and a ``receive_batch`` that finds messages
ready still yield to the loop once (``sleep(0)``), as a network driver would, so a task
sending or draining in a loop does not starve the loop's other tasks. A waiting
``receive_batch`` awaits a future that the broker resolves through
``loop.call_soon_threadsafe`` (a send may come from any thread), bounded by a
``call_later`` at the group's next due time. Cancelling it is safe: messages are only
taken by the receiver's own call, never handed to a waiter.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import TypeVar

from .._errors import Closed
from .._message import Delivery, Message
from ..driver import (
    AsyncDriver,
    AsyncSubscriptionDriver,
    AsyncTopicDriver,
    ConnectParams,
    GroupStats,
    SubscriptionOptions,
)
from ._broker import Broker, Wake
from ._session import Session
from ._state import Member

__all__ = ["AsyncMemoryDriver", "connect_async"]

T = TypeVar("T")


def _as(broker: Broker, kind: type[T]) -> T | None:
    return broker if isinstance(broker, kind) else None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _waker(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> Wake:
    def wake() -> None:
        try:
            loop.call_soon_threadsafe(_resolve, future)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass
    return wake


class AsyncMemoryTopic(AsyncTopicDriver):
    """Sends to one topic (looked up by name on each send)."""

    def __init__(self, session: Session, topic: str) -> None:
        self._session = session
        self._topic = topic
        self._closed = False

    async def send_batch(self, messages: Sequence[Message]) -> None:
        if self._closed or self._session.closed:
            raise Closed(f"memory topic {self._topic!r} is closed")
        self._session.broker.send(self._topic, messages, self._session.options.dedup_window)
        await asyncio.sleep(0)  # yield as a network send would (a sending loop shares)

    async def close(self) -> None:
        self._closed = True

    def as_(self, kind: type[T]) -> T | None:
        return _as(self._session.broker, kind)


class AsyncMemorySubscription(AsyncSubscriptionDriver):
    """One member of a group; its leased messages are ready again when it closes."""

    def __init__(self, session: Session, member: Member) -> None:
        self._session = session
        self._broker = session.broker
        self._member = member

    async def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        broker, member = self._broker, self._member
        got, due = broker.receive(member, max_messages, None)
        if got or timeout <= 0:
            await asyncio.sleep(0)  # yield as a network receive would
            return got
        loop = asyncio.get_running_loop()
        end = time.monotonic() + timeout
        while True:
            future: asyncio.Future[None] = loop.create_future()
            wake = _waker(loop, future)
            try:
                got, due = broker.receive(member, max_messages, wake)
                now = time.monotonic()
                if got or now >= end:
                    return got
                timer = loop.call_later(min(end, due) - now, _resolve, future)
                try:
                    await future
                finally:
                    timer.cancel()
            finally:
                broker.unwait(member, wake)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        self._broker.settle(self._member, deliveries, False)

    async def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        self._broker.settle(self._member, deliveries, True, delay)

    async def reject(self, deliveries: Sequence[Delivery]) -> None:
        self._broker.settle(self._member, deliveries, False)

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        self._broker.settle(self._member, deliveries, True, release=True)

    async def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        self._broker.extend(self._member, deliveries, seconds)

    async def close(self) -> None:
        self._session.leave(self._member)

    def as_(self, kind: type[T]) -> T | None:
        return _as(self._broker, kind)


class AsyncMemoryDriver(AsyncDriver):
    """An asyncio connection to one named in-process broker."""

    def __init__(self, params: ConnectParams) -> None:
        self._session = Session(params)
        self.capabilities = self._session.capabilities

    async def open_topic(self, topic: str) -> AsyncTopicDriver:
        self._session.live().check_topic(topic)
        return AsyncMemoryTopic(self._session, topic)

    async def open_subscription(self, topic: str, group: str,
                                options: SubscriptionOptions) -> AsyncSubscriptionDriver:
        member = self._session.live().join(topic, group, options)
        return AsyncMemorySubscription(self._session, self._session.adopt(member))

    async def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        self._session.live().create_topic(topic, options, self._session.options.max_retained)

    async def delete_topic(self, topic: str) -> None:
        self._session.live().delete_topic(topic)

    async def list_topics(self) -> list[str]:
        return self._session.live().topics()

    async def topic_exists(self, topic: str) -> bool:
        return self._session.live().has_topic(topic)

    async def create_group(self, topic: str, group: str, start: str) -> None:
        self._session.live().create_group(topic, group, start)

    async def delete_group(self, topic: str, group: str) -> None:
        self._session.live().delete_group(topic, group)

    async def list_groups(self, topic: str) -> list[str]:
        return self._session.live().groups(topic)

    async def group_stats(self, topic: str, group: str) -> GroupStats:
        return self._session.live().stats(topic, group)

    async def purge(self, topic: str, group: str) -> None:
        self._session.live().purge(topic, group)

    async def close(self) -> None:
        """Close every subscription still open (their leased messages become ready)."""
        self._session.close()

    def as_(self, kind: type[T]) -> T | None:
        return _as(self._session.broker, kind)


async def connect_async(params: ConnectParams) -> AsyncDriver:
    """Open an asyncio driver on the broker named by ``params.url`` (``memory://NAME``)."""
    return AsyncMemoryDriver(params)
