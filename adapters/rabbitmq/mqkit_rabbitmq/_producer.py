"""TopicDriver: publishes batches to a topic exchange with publisher confirms.

pika's ``BlockingChannel.confirm_delivery`` waits for each confirm inside
``basic_publish`` (one round trip per message). Instead the channel's underlying
``pika.channel.Channel`` (reached through :mod:`._private`) is put in confirm mode with
a callback; a batch is published in one go and the driver then waits once for the
broker's (usually ``multiple``) acks covering every delivery tag of the batch. A batch
that returned is confirmed.

Unroutable messages (no group bound) are dropped by the broker, not returned: sends are
not ``mandatory``. That is the documented policy, pinned by a test.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pika
import pika.spec
from pika.adapters.blocking_connection import BlockingChannel

from mqkit.driver import (
    Message,
    MQError,
    SendBatchError,
    Timeout,
    TopicDriver,
    Unavailable,
)

from ._link import Link
from ._names import Names
from ._private import underlying

__all__ = ["RabbitTopic", "properties_for"]

T = TypeVar("T")

KEY_HEADER = "x-mqkit-key"
DELIVERED_HEADER = "x-mqkit-delivered"


def properties_for(msg: Message, persistent: bool, extra: dict[str, Any] | None = None,
                   now: int | None = None) -> pika.BasicProperties:
    """The AMQP properties carrying ``msg``'s fields (headers as a plain table)."""
    headers: dict[str, Any] | None = dict(msg.headers) if msg.headers or extra else None
    if extra and headers is not None:
        headers.update(extra)
    return pika.BasicProperties(
        message_id=msg.id,
        correlation_id=msg.correlation_id,
        content_type=msg.content_type,
        reply_to=msg.reply_to,
        headers=headers,
        priority=msg.priority,
        # AMQP expiration is milliseconds as a string; round up so ttl > 0 never means 0.
        expiration=None if msg.ttl is None else str(max(1, math.ceil(msg.ttl * 1000))),
        delivery_mode=2 if persistent else 1,
        timestamp=int(time.time()) if now is None else now,
    )


def delay_bucket(seconds: float) -> int:
    """Milliseconds of the delay queue for ``seconds``: rounded *up* to a coarse step,
    so a message is never early and a jittered backoff does not create a queue per
    message (100 ms steps under 10 s, 1 s under 5 min, 10 s beyond)."""
    ms = math.ceil(seconds * 1000)
    step = 100 if ms < 10_000 else 1000 if ms < 300_000 else 10_000
    return max(step, math.ceil(ms / step) * step)


def _nothing() -> None:
    return None


class Confirms:
    """Delivery-tag bookkeeping of a channel in confirm mode."""

    def __init__(self, wake: Callable[[], None] | None = None) -> None:
        self.next_tag = 1
        self.pending: set[int] = set()
        self.nacked: set[int] = set()
        # Why the channel closed (pika's reason), once it has: no confirm comes after.
        self.closed: BaseException | None = None
        self._wake = wake

    def on_confirm(self, frame: Any) -> None:
        method = frame.method
        tag = method.delivery_tag
        done = {t for t in self.pending if t <= tag} if method.multiple else {tag} & self.pending
        self.pending -= done
        if isinstance(method, pika.spec.Basic.Nack):
            self.nacked |= done
        if self._wake is not None:
            self._wake()

    def on_close(self, _channel: object, reason: BaseException) -> None:
        """The channel's close callback. A close by the broker already ends pika's
        ``process_data_events`` (no wake needed; the connection may be closing too)."""
        self.closed = reason


class RabbitTopic(TopicDriver):
    """Sends to one topic exchange over its own connection."""

    def __init__(self, link: Link, names: Names, topic: str, *, persistent: bool,
                 confirm: bool, send_timeout: float) -> None:
        self._link = link
        self._names = names
        self._topic = topic
        self._exchange = names.exchange(topic)
        self._persistent = persistent
        self._confirm = confirm
        self._send_timeout = send_timeout
        self._confirms = Confirms()
        self._delay_ready: dict[int, float] = {}
        link.setup = self._setup

    def _setup(self, channel: BlockingChannel) -> None:
        channel.exchange_declare(self._exchange, passive=True)
        connection = channel.connection
        # A confirm frame is handled inside pika's I/O loop, which process_data_events
        # would not leave before its time limit; a (same-thread) callback makes it
        # return at once, so a confirm costs one round trip and no idle wait.
        self._confirms = Confirms(lambda: connection.add_callback_threadsafe(_nothing))
        self._delay_ready.clear()
        underlying(channel).add_on_close_callback(self._confirms.on_close)
        if self._confirm:
            underlying(channel).confirm_delivery(self._confirms.on_confirm)

    def send_batch(self, messages: Sequence[Message]) -> None:
        with self._link.use(f"send to {self._topic!r}") as channel:
            confirms = self._confirms
            first = confirms.next_tag
            now = int(time.time())
            # The underlying channel's publish only queues frames; the whole batch is
            # written by the I/O loop below (BlockingChannel.basic_publish would flush
            # the socket once per message).
            publish = underlying(channel).basic_publish
            for msg in messages:
                exchange = self._exchange
                if msg.delay is not None and msg.delay > 0:
                    exchange = self._delay_exchange(channel, delay_bucket(msg.delay))
                publish(exchange, msg.key or "", msg.body,
                        properties_for(msg, self._persistent, None, now))
                if self._confirm:
                    confirms.pending.add(confirms.next_tag)
                    confirms.next_tag += 1
            if self._confirm:
                self._wait(channel, first, len(messages))
            else:
                channel.connection.process_data_events(0)  # write the batch out

    def _wait(self, channel: BlockingChannel, first: int, count: int) -> None:
        confirms = self._confirms
        connection = channel.connection
        deadline = time.monotonic() + self._send_timeout
        last = first + count - 1
        while any(first <= t <= last for t in confirms.pending):
            if confirms.closed is not None:
                # Closed by the broker (e.g. 404: the exchange was deleted; 406: a message
                # over its max size): no confirm can come, so its error now rather than a
                # Timeout at the deadline; ``Link.use`` maps it and drops the channel.
                raise confirms.closed
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._link.reset()  # unknown outcome: a fresh channel, fresh tags
                raise Timeout(f"rabbitmq: no publisher confirm for {self._topic!r} "
                              f"within {self._send_timeout}s")
            connection.process_data_events(time_limit=remaining)  # returns on a confirm
        nacked = {t - first: t for t in confirms.nacked if first <= t <= last}
        confirms.nacked -= set(nacked.values())
        if nacked:
            # A nack means the queue could not take the message now: on a cluster, a
            # quorum queue whose leader's node just died nacks until the channel finds
            # the new leader, and a channel opened in that window kept nacking for good
            # (RabbitMQ 3.10, seen in fault_tests). A fresh channel for the next send.
            self._link.reset_channel()
            reason = ("rabbitmq: broker nacked the message (not stored; the queue could "
                      "not take it now, e.g. during a leader change)")
            if len(nacked) == count:
                raise Unavailable(reason)  # nothing stored: the whole batch may be resent
            failures: dict[int, MQError] = {i: Unavailable(reason) for i in nacked}
            raise SendBatchError(failures, count)

    def _delay_exchange(self, channel: BlockingChannel, ms: int) -> str:
        """A fanout exchange feeding a TTL queue that dead-letters into the topic
        exchange with the message's own routing key (its key). Re-declared at most once
        a minute, because the queue expires a minute after its TTL when unused."""
        name = self._names.delay_send(self._topic, ms)
        now = time.monotonic()
        if now - self._delay_ready.get(ms, -1e9) > 30:
            channel.exchange_declare(name, "fanout", durable=True, auto_delete=True)
            channel.queue_declare(name, durable=True, arguments={
                "x-queue-type": "classic",
                "x-message-ttl": ms,
                "x-dead-letter-exchange": self._exchange,
                "x-expires": ms + 60_000,
            })
            channel.queue_bind(name, name, "")
            self._delay_ready[ms] = now
        return name

    def close(self) -> None:
        self._link.close()

    def as_(self, kind: type[T]) -> T | None:
        for obj in (self._link.channel, self._link.connection):
            if isinstance(obj, kind):
                return obj
        return None
