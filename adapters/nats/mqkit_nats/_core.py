"""Core NATS (``mode=core``): at-most-once publish/subscribe, no persistence.

A topic is a subject; a group is a queue group on it (every group gets each message,
members of one group share them). A message published while no member of a group is
subscribed is never seen by that group. ``send_batch`` publishes and then flushes (one
PING/PONG round trip): the server has the batch when the call returns. Ack and reject
do nothing (core NATS has no acknowledgements); nack, dead letters, lease, replay,
stats and purge are unsupported.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from typing import TypeVar

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from mqkit.driver import (
    AsyncSubscriptionDriver,
    AsyncTopicDriver,
    BackendError,
    Closed,
    Delivery,
    Message,
    MQError,
    SubscriptionOptions,
    Unsupported,
)

from ._errors import mapped
from ._link import Link
from ._names import split_headers
from ._private import write
from ._wire import encode_batch

__all__ = ["CoreSubscription", "CoreTopic"]

T = TypeVar("T")


class CoreTopic(AsyncTopicDriver):
    """Publishes to subject ``topic``."""

    def __init__(self, link: Link, topic: str, max_payload: int) -> None:
        self._link = link
        self._topic = topic
        self._max_payload = max_payload

    async def send_batch(self, messages: Sequence[Message]) -> None:
        what = f"send to {self._topic!r}"
        data = encode_batch(self._topic, messages, self._max_payload)
        await self._link.ready(what)
        with mapped(what):
            # One write for the whole batch (nats-py's own buffer and flusher), then a
            # PING/PONG: the server has every message when this returns.
            await write(self._link.nc, data)
            await self._link.flush()

    async def close(self) -> None:
        return None

    def as_(self, kind: type[T]) -> T | None:
        return self._link.nc if isinstance(self._link.nc, kind) else None


class CoreSubscription(AsyncSubscriptionDriver):
    """A queue-group subscription; messages are buffered as they arrive."""

    def __init__(self, link: Link, topic: str, group: str) -> None:
        self._link = link
        self._topic = topic
        self._group = group
        self._sub: Subscription | None = None
        self._buffer: deque[Msg] = deque()
        self._arrived = asyncio.Event()
        self._error: MQError | None = None
        self._received = 0

    @classmethod
    async def open(cls, link: Link, topic: str, group: str,
                   options: SubscriptionOptions) -> CoreSubscription:
        self = cls(link, topic, group)
        await link.ready("subscribe")
        with mapped(f"subscribe to {topic!r}/{group!r}"):
            self._sub = await link.nc.subscribe(topic, queue=group, cb=self._on_msg)
            await link.flush()
        link.watch_slow(self._sub, self._on_slow)
        return self

    async def _on_msg(self, msg: Msg) -> None:
        self._buffer.append(msg)
        self._arrived.set()

    def _on_slow(self, exc: BaseException) -> None:
        error = BackendError(
            f"nats: slow consumer on {self._topic!r}/{self._group!r}: messages were "
            "dropped (core NATS does not redeliver them)")
        error.__cause__ = exc
        self._error = error

    async def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        if self._sub is None:
            raise Closed("nats: subscription closed")
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        deadline = time.monotonic() + timeout
        while not self._buffer:
            await self._link.ready(f"receive from {self._topic!r}", deadline - time.monotonic())
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                pass
        out: list[Delivery] = []
        while self._buffer and len(out) < max_messages:
            msg = self._buffer.popleft()
            self._received += 1
            message = split_headers(msg.headers, msg.data, None)
            out.append(Delivery(message=message, topic=self._topic, handle=None,
                                broker_id=str(self._received)))
        return out

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        return None  # core NATS has no acknowledgements

    async def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        raise Unsupported("nats", "nack", "core NATS cannot redeliver")

    async def reject(self, deliveries: Sequence[Delivery]) -> None:
        return None  # dropped already: core NATS never redelivers

    async def close(self) -> None:
        sub, self._sub = self._sub, None
        self._buffer.clear()
        if sub is None:
            return
        self._link.unwatch(sub)
        if self._link.nc.is_connected:
            with mapped(f"close {self._topic!r}/{self._group!r}"):
                await sub.unsubscribe()

    def as_(self, kind: type[T]) -> T | None:
        for native in (self._link.nc, self._sub):
            if isinstance(native, kind):
                return native
        return None
