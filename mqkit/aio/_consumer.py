"""Consumer: receives one group's messages from one topic.

Three styles see the same messages: ``receive`` (pull a list), iteration (one at a
time), and ``run(handler)``, where a handler that returns acks its message and one that
raises is retried with backoff and finally dead-lettered (see :class:`RetryPolicy`).

``prefetch`` bounds the messages held unsettled: with ``prefetch=1`` nothing more
arrives before the one held is acked, nacked or rejected. Calls on the broker are
serialised per consumer, so an ``ack`` from another thread waits for a running
``receive`` (at most its timeout). ``close`` (idempotent) ends iteration and handler
loops without waiting for unsettled messages; the broker redelivers those.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from .._capabilities import Feature
from .._errors import Closed, ConfigurationError, MQError, Unavailable
from .._message import Message
from .._retry import Action, RetryPolicy, decide, failure_reason
from .._validation import DLQ_HEADERS
from ..driver import AsyncSubscriptionDriver, SubscriptionOptions
from ._received import AsyncReceivedMessage
from ._runtime import Event, Lock, Ticker, call_handler, monotonic, run_all, sleep

if TYPE_CHECKING:
    from ._client import AsyncClient

__all__ = ["AsyncConsumer", "RunStats"]

T = TypeVar("T")

log = logging.getLogger("mqkit")

# How long one receive inside run() or iteration waits before looking at stop/close
# flags again: short enough for a prompt stop, long enough not to spin.
_POLL = 0.5
# Pause after a receive failed because the broker is unavailable, before trying again.
_RECONNECT_PAUSE = 0.5
_NOT_STARTED = object()


@dataclass
class RunStats:
    """What a ``run`` did: messages handled and how each ended."""

    handled: int = 0
    acked: int = 0
    retried: int = 0
    dead_lettered: int = 0
    rejected: int = 0
    released: int = 0


class AsyncConsumer:
    """Receives from one group of one topic. Create with ``client.consumer(topic, group)``."""

    def __init__(self, client: AsyncClient, topic: str, group: str,
                 options: SubscriptionOptions) -> None:
        self._client = client
        self.topic = topic
        self.group = group
        self.options = options
        self._driver: AsyncSubscriptionDriver | None = None
        self._lock = Lock()
        self._state = threading.Lock()  # guards the counters below; never held across I/O
        self._unsettled: dict[int, AsyncReceivedMessage] = {}
        self._slot_freed = Event()
        self._buffer: deque[AsyncReceivedMessage] = deque()
        self._closed = False
        self._stopping = False

    # -- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> AsyncConsumer:
        await self._open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop receiving; unsettled messages go back to the broker for redelivery.

        Ends iteration and ``run`` loops. Closing twice is allowed and does nothing.
        """
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        self._slot_freed.set()
        self._client._forget(self)
        self._buffer.clear()
        async with self._lock:
            driver, self._driver = self._driver, None
            if driver is not None:
                with self._client._errors():
                    await driver.close()

    def stop(self) -> None:
        """Ask a running ``run`` loop to finish its in-flight handlers and return."""
        self._stopping = True
        self._slot_freed.set()

    @property
    def in_flight(self) -> int:
        """Messages received and not yet settled."""
        return len(self._unsettled)

    async def _open(self) -> AsyncSubscriptionDriver:
        if self._closed:
            raise Closed(f"consumer of {self.topic!r}/{self.group!r} is closed")
        if self._driver is None:
            async with self._lock:
                if self._driver is None:
                    self._driver = await self._client._open_subscription(
                        self.topic, self.group, self.options)
        return self._driver

    # -- pull ------------------------------------------------------------------------

    async def receive(self, max_messages: int = 10,
                      timeout: float = 1.0) -> list[AsyncReceivedMessage]:
        """Up to ``max_messages`` messages; ``[]`` once ``timeout`` seconds pass.

        Returns as soon as one message is available. Never returns more than the
        prefetch limit allows; when that many are unsettled, waits for a settle.
        """
        if max_messages < 1:
            raise ConfigurationError("max_messages must be at least 1")
        if timeout < 0:
            raise ConfigurationError("timeout must not be negative")
        driver = await self._open()
        deadline = monotonic() + timeout
        while True:
            room = self.options.prefetch - len(self._unsettled)
            if room > 0 or self._closed:
                break
            remaining = deadline - monotonic()
            if remaining <= 0:
                return []
            self._slot_freed.clear()
            if self.options.prefetch - len(self._unsettled) <= 0:
                await self._slot_freed.wait(remaining)
        if self._closed:
            raise Closed(f"consumer of {self.topic!r}/{self.group!r} is closed")
        async with self._lock:
            if self._driver is None:
                raise Closed(f"consumer of {self.topic!r}/{self.group!r} is closed")
            with self._client._errors():
                deliveries = await driver.receive_batch(
                    min(max_messages, room), max(0.0, deadline - monotonic()))
        group = self.group
        received = [AsyncReceivedMessage(d, self, group) for d in deliveries]
        with self._state:
            self._unsettled.update(zip(map(id, received), received, strict=True))
        return received

    def __aiter__(self) -> AsyncConsumer:
        return self

    async def __anext__(self) -> AsyncReceivedMessage:
        """The next message; iteration ends when the consumer is closed."""
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            try:
                got = await self.receive(min(self.options.prefetch, 100), _POLL)
            except Closed:
                raise StopAsyncIteration from None
            self._buffer.extend(got)
        return self._buffer.popleft()

    # -- settling --------------------------------------------------------------------

    async def ack(self, messages: Sequence[AsyncReceivedMessage]) -> None:
        """Ack several messages in one broker call (first decision wins for each)."""
        await self._settle(messages, "ack", None)

    async def nack(self, messages: Sequence[AsyncReceivedMessage],
                   delay: float | None = None) -> None:
        """Nack several messages: they come back, after ``delay`` seconds if given."""
        if delay is not None and delay > 0:
            self._client.capabilities.require(Feature.NACK_DELAY)
        else:
            delay = None
        await self._settle(messages, "nack", delay)

    async def reject(self, messages: Sequence[AsyncReceivedMessage]) -> None:
        """Reject several messages: dropped for good."""
        await self._settle(messages, "reject", None)

    async def extend_lease(self, messages: Sequence[AsyncReceivedMessage],
                           seconds: float) -> None:
        """Keep unsettled messages from other consumers for ``seconds`` more."""
        self._client.capabilities.require(Feature.LEASE_EXTENSION)
        live = [m.delivery for m in messages if m.decision is None]
        if not live:
            return
        driver = await self._open()
        async with self._lock:
            with self._client._errors():
                await driver.extend_lease(live, seconds)

    async def _settle(self, messages: Sequence[AsyncReceivedMessage], decision: str,
                      delay: float | None) -> None:
        if not messages:
            return
        with self._state:
            for msg in messages:
                if msg._consumer is not self:
                    raise ConfigurationError("message was received by another consumer")
                if msg.decision is not None:
                    msg._claim(decision)  # raises: first decision wins
            for msg in messages:
                msg.decision = decision
        try:
            if self._closed or self._driver is None:
                raise Closed(f"consumer of {self.topic!r}/{self.group!r} is closed; "
                             "the broker will redeliver its unsettled messages")
            driver = self._driver
            deliveries = [m.delivery for m in messages]
            async with self._lock:
                with self._client._errors():
                    if decision == "ack":
                        await driver.ack(deliveries)
                    elif decision == "nack":
                        await driver.nack(deliveries, delay)
                    else:
                        await driver.reject(deliveries)
        except Unavailable:
            # The connection is gone, so the broker takes these back and redelivers them:
            # free their prefetch slots, leave them undecided, and tell the caller.
            with self._state:
                for msg in messages:
                    msg.decision = None
                    self._unsettled.pop(id(msg), None)
            self._slot_freed.set()
            raise
        except BaseException:
            with self._state:
                for msg in messages:
                    msg.decision = None
            raise
        with self._state:
            forget = self._unsettled.pop
            for msg in messages:
                forget(id(msg), None)
        self._slot_freed.set()

    # -- handler loop ----------------------------------------------------------------

    async def run(self, handler: Callable[[AsyncReceivedMessage], Any], *,
                  retry: RetryPolicy | None = None, concurrency: int = 1,
                  stop_after: int | None = None, idle_timeout: float | None = None,
                  batch_size: int | None = None) -> RunStats:
        """Call ``handler`` for each message until stopped; return what happened.

        A handler that returns acks its message; one that raises is nacked with the
        policy's backoff until the message's ``max_attempts``-th delivery, after which
        the message is dead-lettered with the failure reason in its headers
        (``mqkit-dead-letter-reason``) and acked. :class:`PermanentFailure` skips the
        retries. A handler may settle its message itself; then the loop leaves it.

        Stops after ``stop_after`` messages, after ``idle_timeout`` seconds without a
        message, on ``stop()`` (graceful: in-flight handlers finish and are settled;
        received messages not yet started are released for redelivery) or on
        ``close()``. Up to ``concurrency`` handlers run at once. Messages still in
        hand are kept leased while their handlers run, where the backend allows.
        """
        policy = retry or RetryPolicy()
        if concurrency < 1:
            raise ConfigurationError("concurrency must be at least 1")
        await self._open()
        if not self._closed:
            self._stopping = False
        stats = RunStats()
        caps = self._client.capabilities
        size = batch_size or max(concurrency, min(self.options.prefetch, 100))
        ticker = None
        if caps.support(Feature.LEASE_EXTENSION):
            ticker = Ticker(max(0.05, self.options.lease / 3), self._extend_unsettled)
            ticker.start()
        last_message = monotonic()
        try:
            while not self._stopping:
                want = size if stop_after is None else min(size, stop_after - stats.handled)
                if want <= 0:
                    break
                poll = _POLL if idle_timeout is None else min(_POLL, idle_timeout)
                try:
                    batch = await self.receive(want, poll)
                except Closed:
                    break
                except Unavailable as exc:
                    log.warning("mqkit: receive from %s/%s failed (%s); retrying",
                                self.topic, self.group, exc)
                    await sleep(_RECONNECT_PAUSE)
                    continue
                if not batch:
                    if idle_timeout is not None and monotonic() - last_message >= idle_timeout:
                        break
                    continue
                last_message = monotonic()
                outcomes = await run_all(
                    [self._make_call(handler, m) for m in batch], concurrency)
                try:
                    await self._apply(batch, outcomes, policy, stats)
                except Unavailable as exc:
                    log.warning("mqkit: settling on %s/%s failed (%s); the broker will "
                                "redeliver", self.topic, self.group, exc)
        finally:
            if ticker is not None:
                await ticker.stop()
        return stats

    def _make_call(self, handler: Callable[[AsyncReceivedMessage], Any],
                   msg: AsyncReceivedMessage) -> Callable[[], Any]:
        async def call() -> object:
            if self._stopping:
                return _NOT_STARTED
            try:
                await call_handler(handler, msg)
            except Exception as exc:
                return exc
            return None
        return call

    async def _apply(self, batch: Sequence[AsyncReceivedMessage], outcomes: Sequence[object],
                     policy: RetryPolicy, stats: RunStats) -> None:
        to_ack: list[AsyncReceivedMessage] = []
        released: list[AsyncReceivedMessage] = []
        for msg, outcome in zip(batch, outcomes, strict=True):
            if outcome is _NOT_STARTED:
                released.append(msg)
                continue
            stats.handled += 1
            if msg.decision is not None:
                continue  # the handler settled it itself
            error = outcome if isinstance(outcome, BaseException) else None
            action = decide(policy, error, msg.delivery_count)
            if action is Action.ACK:
                to_ack.append(msg)
            elif action is Action.RETRY:
                assert error is not None
                log.info("mqkit: handler failed on %s (attempt %d of %d): %s", msg.id,
                         msg.delivery_count, policy.max_attempts, failure_reason(error))
                await self._retry(msg, policy)
                stats.retried += 1
            elif action is Action.DEAD_LETTER:
                assert error is not None
                await self._dead_letter(msg, policy, error)
                stats.dead_lettered += 1
            else:
                await self.reject([msg])
                stats.rejected += 1
        if to_ack:
            await self.ack(to_ack)
            stats.acked += len(to_ack)
        if released:
            await self.nack(released)
            stats.released += len(released)

    async def _retry(self, msg: AsyncReceivedMessage, policy: RetryPolicy) -> None:
        delay: float | None = policy.backoff(msg.delivery_count)
        if not self._client.capabilities.support(Feature.NACK_DELAY):
            delay = None
        await self.nack([msg], delay=delay)

    async def _dead_letter(self, msg: AsyncReceivedMessage, policy: RetryPolicy,
                           error: BaseException) -> None:
        """Publish a copy with the failure reason to the dead-letter topic, then ack.

        If the copy cannot be published the message is nacked instead: never lost.
        """
        topic = policy.dead_letter_topic or self._client.dead_letter_topic(self.topic)
        headers = dict(msg.headers)
        headers[DLQ_HEADERS["reason"]] = failure_reason(error)
        headers[DLQ_HEADERS["topic"]] = self.topic
        headers[DLQ_HEADERS["group"]] = self.group
        headers[DLQ_HEADERS["attempts"]] = str(msg.delivery_count)
        src = msg.message
        copy = Message(src.body, key=src.key, headers=headers, id=src.id,
                       content_type=src.content_type, correlation_id=src.correlation_id,
                       reply_to=src.reply_to)
        try:
            await self._client._publish_dead_letter(topic, copy)
        except MQError as exc:
            log.error("mqkit: could not dead-letter %s to %s (%s); nacking it instead",
                      msg.id, topic, exc)
            await self.nack([msg])
            return
        log.warning("mqkit: dead-lettered %s from %s/%s to %s after %d attempts: %s",
                    msg.id, self.topic, self.group, topic, msg.delivery_count,
                    failure_reason(error))
        await self.ack([msg])

    async def _extend_unsettled(self) -> None:
        with self._state:
            live = [m for m in self._unsettled.values() if m.decision is None]
        if live and not self._closed:
            try:
                await self.extend_lease(live, self.options.lease)
            except MQError as exc:
                log.warning("mqkit: lease extension on %s/%s failed: %s",
                            self.topic, self.group, exc)

    def as_(self, kind: type[T]) -> T | None:
        """The native object of type ``kind`` behind this consumer (escape hatch), or ``None``
        (before its first receive opens the subscription, after close,
        or when the backend has none of that type)."""
        return None if self._driver is None else self._driver.as_(kind)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Consumer topic={self.topic!r} group={self.group!r} {state}>"
