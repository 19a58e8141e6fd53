"""SubscriptionDriver: consumes a group's queue with ``basic_consume`` and ``basic_qos``.

Deliveries pushed by the broker are buffered (never more than ``prefetch``, the
channel's QoS) and handed out by ``receive_batch``. ack = ``basic_ack``; nack =
``basic_nack(requeue=True)``; reject = ``basic_reject(requeue=False)`` (dropped: mqkit
dead-letters by republishing, above the driver). A delayed nack republishes the message
(confirmed) to a TTL queue that dead-letters it back into the group's queue, then acks
the original. Deliveries of a connection that was lost are not settled (the broker
already requeued them): acking them does nothing, they come back.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pika.spec
from pika.adapters.blocking_connection import BlockingChannel

from mqkit.driver import (
    Delivery,
    DeliveryCounts,
    Message,
    NotFound,
    SubscriptionDriver,
    SubscriptionOptions,
    received,
)

from ._link import Link
from ._names import Names
from ._producer import DELIVERED_HEADER, KEY_HEADER, delay_bucket, properties_for

__all__ = ["RabbitSubscription", "to_message"]

T = TypeVar("T")

# Headers the broker adds when a message was dead-lettered by one of mqkit's delay
# queues; removed on receipt so headers round-trip exactly.
_DEATH_HEADERS = ("x-death", "x-first-death-exchange", "x-first-death-queue",
                  "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue",
                  "x-last-death-reason")
# Classic queues carry no delivery count; the subscription counts deliveries per message
# id itself, forgetting the oldest beyond this many (a bound on memory, not on messages).
_TRACK_MAX = 100_000
# A consumer that has not called receive for this long gives back the deliveries the
# broker pushed to it (prefetch) that it never handed out, so a consumer that stopped
# receiving but stays open does not hoard messages other consumers could take.
_IDLE_RELEASE = 1.0
_Raw = tuple[int, pika.spec.Basic.Deliver, pika.BasicProperties, bytes]
_NO_HEADERS: dict[str, str] = {}  # frozen by received() into the shared empty Headers


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else str(value)


def to_message(method: pika.spec.Basic.Deliver, props: pika.BasicProperties,
               body: bytes) -> tuple[Message, int | None, int]:
    """The message, the quorum delivery count (if any) and the deliveries before a
    delayed republish, from an AMQP delivery."""
    raw = dict(props.headers or {})
    native = raw.pop("x-delivery-count", None)
    earlier = raw.pop(DELIVERED_HEADER, None)
    key = raw.pop(KEY_HEADER, None)
    first_queue = raw.get("x-first-death-queue")
    if isinstance(first_queue, (str, bytes)) and _text(first_queue).startswith("mqkit."):
        for name in _DEATH_HEADERS:
            raw.pop(name, None)
    headers = {str(k): _text(v) for k, v in raw.items()}
    routing_key = _text(key) if key is not None else method.routing_key
    message = Message(
        body=body, key=routing_key or None, headers=headers, id=props.message_id,
        content_type=props.content_type, correlation_id=props.correlation_id,
        reply_to=props.reply_to, priority=props.priority)
    return (message, None if native is None else int(native),
            int(_text(earlier)) if earlier is not None else 0)


class RabbitSubscription(SubscriptionDriver):
    """One group (queue) of one topic, over its own connection."""

    def __init__(self, link: Link, names: Names, topic: str, group: str, *,
                 options: SubscriptionOptions, persistent: bool,
                 declare: Callable[[BlockingChannel, bool], None]) -> None:
        self._link = link
        self._names = names
        self._topic = topic
        self._queue = names.queue(topic, group)
        self._options = options
        self._persistent = persistent
        self._declare = declare
        self._cancelled = False  # the broker cancelled the consumer: queue deleted
        self._gone = False
        self.on_close: Callable[[], None] | None = None
        self._buffer: deque[_Raw] = deque()
        self._seen = DeliveryCounts(_TRACK_MAX)
        # Delivery tags of the current channel not settled yet (buffered or handed out).
        self._outstanding: set[int] = set()
        self._retry_ready: dict[int, float] = {}
        self._consuming = False
        self._last_receive = time.monotonic()
        # Handed-out deliveries of the current channel: tag -> end of lease.
        self._leases: dict[int, float] = {}
        link.setup = self._setup
        link.on_idle = self._on_idle

    def _setup(self, channel: BlockingChannel) -> None:
        self._buffer.clear()
        self._outstanding.clear()
        self._leases.clear()
        self._retry_ready.clear()
        self._declare(channel, self._gone)
        self._cancelled = False
        channel.add_on_cancel_callback(self._on_cancel)
        channel.confirm_delivery()  # only delayed nacks publish; they must be confirmed
        # AMQP's prefetch_count is 16 bits.
        channel.basic_qos(prefetch_count=min(self._options.prefetch, 65535))
        self._consume(channel)

    def _consume(self, channel: BlockingChannel) -> None:
        generation = self._link.generation
        channel.basic_consume(
            self._queue,
            lambda _ch, method, props, body: self._on_message(
                generation, method, props, body),
            auto_ack=False, consumer_tag=self._options.consumer_name)
        self._consuming = True

    def _on_idle(self) -> None:
        self._expire_leases()
        self._release_unclaimed()

    def _expire_leases(self) -> None:
        """Requeue handed-out deliveries whose lease ran out (mqkit's lease, emulated:
        RabbitMQ itself keeps them until the connection closes)."""
        channel = self._link.channel
        if not self._leases or channel is None or not channel.is_open:
            return
        now = time.monotonic()
        for tag in [t for t, end in self._leases.items() if end <= now]:
            channel.basic_nack(tag, requeue=True)
            del self._leases[tag]
            self._outstanding.discard(tag)

    def _release_unclaimed(self) -> None:
        """Idle for ``_IDLE_RELEASE``: stop consuming and requeue the deliveries never
        handed out (the broker counts that as a delivery: ``x-delivery-count`` rises).
        The next ``receive`` consumes again."""
        channel = self._link.channel
        if not self._buffer or not self._consuming or channel is None or not channel.is_open:
            return
        if time.monotonic() - self._last_receive < _IDLE_RELEASE:
            return
        channel.basic_cancel(self._options.consumer_name)  # pika requeues undispatched
        self._consuming = False
        generation = self._link.generation
        while self._buffer:
            gen, method, _props, _body = self._buffer.popleft()
            if gen == generation:
                channel.basic_nack(method.delivery_tag, requeue=True)
                self._outstanding.discard(method.delivery_tag)

    @property
    def unacked(self) -> int:
        """Deliveries of this subscription's channel not settled yet."""
        return len(self._outstanding)

    def sync(self) -> None:
        """Take in every delivery the broker sent before now (for an exact depth): a
        round trip on the channel (``basic.qos``, answered after deliveries already
        sent), then dispatch. Skipped while a call holds the channel for over 1 s."""
        if not self._link.lock.acquire(timeout=1.0):
            return
        try:
            channel = self._link.channel
            if channel is not None and channel.is_open:
                channel.basic_qos(prefetch_count=min(self._options.prefetch, 65535))
                channel.connection.process_data_events(0)
        except Exception:
            self._link.reset()
        finally:
            self._link.lock.release()

    def _on_cancel(self, _frame: object) -> None:
        self._cancelled = True

    def _check_cancelled(self) -> None:
        if self._cancelled:
            self._gone = True
            self._link.reset_channel()
            raise NotFound(f"rabbitmq: queue {self._queue!r} was deleted "
                           "(the broker cancelled the consumer)")

    def _on_message(self, generation: int, method: pika.spec.Basic.Deliver,
                    props: pika.BasicProperties, body: bytes) -> None:
        self._buffer.append((generation, method, props, body))
        self._outstanding.add(method.delivery_tag)

    def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        with self._link.use(f"receive from {self._queue!r}") as channel:
            connection = channel.connection
            deadline = time.monotonic() + timeout
            self._expire_leases()
            if not self._consuming:
                self._consume(channel)
            if not self._buffer:
                connection.process_data_events(0)
            while not self._buffer:
                self._check_cancelled()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                # Returns on a delivery or a cancel; bounded by the timeout.
                connection.process_data_events(time_limit=remaining)
            # The broker sends a burst once acks free its prefetch window: take what has
            # already reached the socket too (reads that do not wait), so that a receive
            # returns whole batches rather than the burst's first packet.
            while 0 < len(self._buffer) < max_messages:
                held = len(self._buffer)
                connection.process_data_events(0)
                if len(self._buffer) == held:
                    break
            out: list[Delivery] = []
            generation = self._link.generation
            lease_end = time.monotonic() + self._options.lease
            while self._buffer and len(out) < max_messages:
                gen, method, props, body = self._buffer.popleft()
                if gen == generation:
                    out.append(self._delivery(gen, method, props, body))
                    self._leases[method.delivery_tag] = lease_end
            self._last_receive = time.monotonic()
            return out

    def _delivery(self, generation: int, method: pika.spec.Basic.Deliver,
                  props: pika.BasicProperties, body: bytes) -> Delivery:
        if props.headers:  # mqkit's own headers, the broker's counts: the full parse
            message, native, earlier = to_message(method, props, body)
            key, headers = message.key, message.headers
        else:  # no headers (the common case): no dict work, built by received()
            native, earlier, headers = None, 0, _NO_HEADERS
            key = method.routing_key or None
        message_id = props.message_id
        # The broker's count where it keeps one; this subscription's own count too, so a
        # broker that does not count some returns (RabbitMQ 4's quorum queues and
        # requeues) still shows a rising count here.
        count = self._redelivery_count(message_id) if method.redelivered else 1
        if native is not None:
            count = max(count, native + 1)
        stamp = props.timestamp
        return received(body, key, headers, message_id, props.content_type,
                        props.correlation_id, props.reply_to, self._topic,
                        (generation, method.delivery_tag), earlier + count,
                        None if stamp is None else float(stamp), None,
                        priority=props.priority)

    def _redelivery_count(self, message_id: str | None) -> int:
        """The count of a redelivered message: 2, or one more than this subscription saw.

        A first delivery is not recorded: RabbitMQ flags every delivery of a message
        delivered before (requeued, its channel lost, its node restarted), so counting
        starts at the first redelivery and the common path costs no bookkeeping (nor its
        forget at the ack). A redelivered message never seen here was delivered before,
        to another consumer."""
        if message_id is None:
            return 2
        return self._seen.next(message_id, 2)

    def _tags(self, deliveries: Sequence[Delivery]) -> list[int]:
        """Delivery tags of the current connection (older ones are already requeued)."""
        return [tag for tag, _ in self._live(deliveries)]

    def _live(self, deliveries: Sequence[Delivery]) -> list[tuple[int, Delivery]]:
        generation = self._link.generation
        out = []
        for d in deliveries:
            handle: tuple[int, int] = d.handle  # type: ignore[assignment]
            # Not of this channel, or its lease ran out and it was requeued: settling it
            # now would be a second settle of the tag (a channel error). It comes back.
            if handle[0] == generation and self._leases.pop(handle[1], None) is not None:
                out.append((handle[1], d))
        return out

    def _covers(self, tags: list[int]) -> bool:
        """Whether ``tags`` are exactly the outstanding tags up to their maximum."""
        if len(tags) < 2:
            return False
        top = max(tags)
        return sum(1 for t in self._outstanding if t <= top) == len(set(tags))

    def _forget(self, deliveries: Sequence[Delivery]) -> None:
        seen = self._seen
        if not seen:  # nothing was redelivered here: nothing to forget
            return
        for d in deliveries:
            if d.message.id is not None:
                seen.forget(d.message.id)

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        with self._link.settling(f"ack on {self._queue!r}") as channel:
            if channel is not None:
                tags = self._tags(deliveries)
                if self._covers(tags):
                    # Every outstanding tag up to the highest is in this batch: one frame.
                    channel.basic_ack(max(tags), multiple=True)
                else:
                    for tag in tags:
                        channel.basic_ack(tag)
                self._outstanding.difference_update(tags)
        self._forget(deliveries)

    def reject(self, deliveries: Sequence[Delivery]) -> None:
        with self._link.settling(f"reject on {self._queue!r}") as channel:
            if channel is not None:
                tags = self._tags(deliveries)
                for tag in tags:
                    channel.basic_reject(tag, requeue=False)
                self._outstanding.difference_update(tags)
        self._forget(deliveries)

    def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        with self._link.settling(f"nack on {self._queue!r}") as channel:
            if channel is None:
                return
            if delay is None or delay <= 0:
                tags = self._tags(deliveries)
                for tag in tags:
                    channel.basic_nack(tag, requeue=True)
                self._outstanding.difference_update(tags)
                return  # keep counting deliveries of these ids (classic queues)
            queue = self._retry_queue(channel, delay_bucket(delay))
            for tag, d in self._live(deliveries):
                extra: dict[str, Any] = {DELIVERED_HEADER: str(d.delivery_count)}
                if d.message.key:
                    extra[KEY_HEADER] = d.message.key
                channel.basic_publish("", queue, d.message.body,
                                      properties_for(d.message, self._persistent, extra))
                channel.basic_ack(tag)
                self._outstanding.discard(tag)
        self._forget(deliveries)

    def _retry_queue(self, channel: BlockingChannel, ms: int) -> str:
        """A TTL queue dead-lettering into this group's queue after ``ms``."""
        name = self._names.delay_retry(self._queue, ms)
        now = time.monotonic()
        if now - self._retry_ready.get(ms, -1e9) > 30:  # expires 60 s after its TTL
            channel.queue_declare(name, durable=True, arguments={
                "x-queue-type": "classic",
                "x-message-ttl": ms,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self._queue,
                "x-expires": ms + 60_000,
            })
            self._retry_ready[ms] = now
        return name

    def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        """Push the end of these deliveries' leases to ``seconds`` from now."""
        end = time.monotonic() + seconds
        with self._link.lock:
            generation = self._link.generation
            for d in deliveries:
                handle: tuple[int, int] = d.handle  # type: ignore[assignment]
                if handle[0] == generation and handle[1] in self._leases:
                    self._leases[handle[1]] = end

    def close(self) -> None:
        self._link.close()
        if self.on_close is not None:
            self.on_close()

    def as_(self, kind: type[T]) -> T | None:
        for obj in (self._link.channel, self._link.connection):
            if isinstance(obj, kind):
                return obj
        return None
