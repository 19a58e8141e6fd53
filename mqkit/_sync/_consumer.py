# GENERATED from mqkit/aio/_consumer.py by scripts/unasync.py: do not edit; edit the source.
"""Consumer: receives one group's messages from one topic, and settles them in batches.

Three styles see the same messages: ``receive`` (pull a list), iteration (one at a
time), and ``run(handler)``, where a handler that returns acks its message and one that
raises is retried with backoff and finally dead-lettered (see :class:`RetryPolicy`).

**Settlement is a pipeline.** ``msg.ack()``, ``nack()`` and ``reject()`` record the
decision (first decision wins) and return without I/O. The consumer hands decisions to
the broker in batches: when a batch is full (the backend's ``max_batch``), at most
``settle_interval`` seconds after the first one (5 ms by default), before its next
receive, on :meth:`flush_settlements` and on :meth:`close`. Pass ``wait=True`` to wait
until the broker took a decision. A settlement refused while the broker is unavailable
is retried (up to ``settle_timeout``); a refusal for good is raised as a
:class:`SettlementError` naming the messages, from the next ``receive`` (or iteration
step, or ``flush_settlements``/``close``), and those messages come back (at-least-once).

``prefetch`` bounds the messages held undecided: with ``prefetch=1`` nothing more
arrives before the one held is decided. Driver calls are serialised per consumer.
``close`` (idempotent) hands over pending decisions, ends iteration and handler loops,
and leaves undecided messages to the broker, which redelivers them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from time import time_ns
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from .._capabilities import Feature, Support
from .._errors import (
    Closed,
    ConfigurationError,
    MQError,
    SendBatchError,
    SettlementError,
    SettlementUnavailable,
    Timeout,
    Unavailable,
)
from .._expiry import EXPIRES, split_expired
from .._logfields import SPAN_KEY, log_fields
from .._message import Delivery, Message
from .._options import ClientOptions
from .._outcome import Outcome, OutcomeKind, ReleaseMessage
from .._retry import Action, RetryPolicy, decide, failure_reason
from .._run import Outage, RunStats
from .._settlement import ACK, NACK, REJECT, Decision, SettleQueue, retry_pause
from .._validation import DLQ_HEADERS, check_bool, check_int, check_name, check_seconds
from ..driver import SubscriptionOptions
from ._middleware import (
    HandlerContext,
    Middleware,
    build_chain,
    check_middleware,
    outcome_hooks,
    report_outcomes,
)
from ._received import ReceivedMessage
from ._runtime import (
    AwaitableResult,
    Event,
    Flusher,
    HandlerPool,
    Lock,
    Ticker,
    call_handler,
    check_handler,
    monotonic,
    sleep,
)

if TYPE_CHECKING:

    from ._connection import Connection, MappedSubscription

__all__ = ["Consumer", "RunStats"]

T = TypeVar("T")

log = logging.getLogger("mqkit")

# How long one receive inside run() or iteration waits before looking at stop/close
# flags again: short enough for a prompt stop, long enough not to spin.
_POLL = 0.5
# Iteration fetches this many at most per receive: enough to amortise a round trip,
# few enough that the messages it holds ahead of the caller stay a small set (their
# leases are extended while held, and they are given back when the loop ends).
_ITER_BATCH = 100
_NOT_STARTED = object()
# While a middleware asked the loop to stop receiving, how often it looks at stop/close.
_PAUSE_POLL = 0.1
# What _apply reports per message for the middleware's outcome hooks.
Report = list[tuple[ReceivedMessage, Outcome]]
# The batch's handler contexts by id(message), under middleware (the log fields' span).
Contexts = dict[int, HandlerContext]

# What run() calls: on this face a coroutine function or a plain function; the blocking
# face's type admits plain functions only (a coroutine function is refused there).
Handler = Callable[[ReceivedMessage], None]


class Consumer:
    """Receives from one group of one topic. Create with ``client.consumer(topic, group)``."""

    def __init__(
            self, connection: Connection, topic: str, group: str,
            options: SubscriptionOptions, timing: ClientOptions | None = None, *,
            dead_letters: Callable[[str, list[Message]], None],
    ) -> None:
        """``dead_letters(topic, copies)`` is how ``run`` dead-letters: the client sends
        the copies with its internal producer, or raises :class:`SendBatchError` naming
        those not sent."""
        self._connection = connection
        self._dead_letters = dead_letters
        self.topic = topic
        self.group = group
        self.options = options
        self.timing = timing or connection.options
        self._driver: MappedSubscription | None = None
        self._lock = Lock()  # serialises driver calls
        self._state = threading.Lock()  # guards the bookkeeping below; never held across I/O
        self._unsettled: dict[int, ReceivedMessage] = {}
        self._queue = SettleQueue(1000)  # the backend's max_batch, once open
        self._flusher = Flusher(self.timing.settle_interval, self._background_flush)
        self._slot_freed = Event()
        self._slot_wanted = False  # a receive waits for a slot (guarded by _state)
        self._closed = False
        self._stop_requested = False
        # The outage the last run loop or iteration rode out (None once the broker
        # answered again): unavailable_since reads its start from it.
        self._outage: Outage | None = None
        self._expiring = False  # the backend emulates TTL: drop expired at receive
        self.expired = 0
        """Messages received past their emulated TTL (``mqkit-expires``), acked away
        and never handed out (backends that declare ``ttl`` emulated; see
        :mod:`mqkit._expiry`)."""

    # -- lifecycle -----------------------------------------------------------------

    def __enter__(self) -> Consumer:
        self._open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self, timeout: float | None = None) -> None:
        """Hand pending decisions to the broker, then stop receiving.

        Waits up to ``timeout`` seconds (default ``settle_timeout``) for the broker to
        take every decision already recorded, retrying while it is unavailable; then
        closes the subscription whatever happened, and raises :class:`SettlementError`
        naming the decisions it did not take. Undecided messages go back to the broker
        for redelivery. Ends iteration and ``run`` loops; later decisions raise
        :class:`Closed`. Closing twice is allowed and does nothing.
        """
        limit = (self.timing.settle_timeout if timeout is None
                 else check_seconds("timeout", timeout))
        if self._closed:
            return
        self._closed = True
        self._stop_requested = True
        self._slot_freed.set()
        self._connection.forget(self)
        self._flusher.stop()
        try:
            self._drain(limit)
        finally:
            with self._lock:
                driver, self._driver = self._driver, None
                if driver is not None:
                    driver.close()
        self._raise_failures()

    def stop(self) -> None:
        """Ask the running ``run`` loop (or the next one, if none runs yet) to return.

        Handlers in flight finish and are settled; messages received and not started
        are given back without using up an attempt.
        """
        self._stop_requested = True
        self._slot_freed.set()

    @property
    def unavailable_since(self) -> float | None:
        """When (``time.monotonic()``) the broker started answering this consumer's
        ``run`` loop or iteration as unavailable, while they ride the outage out;
        ``None`` while it answers. What a readiness probe reads."""
        outage = self._outage
        return None if outage is None else outage.since

    @property
    def in_flight(self) -> int:
        """Messages received and not yet settled (undecided, or decided and not yet
        taken by the broker)."""
        return len(self._unsettled) + len(self._queue.pending) + self._queue.in_driver

    def _open(self) -> MappedSubscription:
        if self._closed:
            raise Closed(f"consumer of {self.topic!r}/{self.group!r} is closed")
        if self._driver is None:
            with self._lock:
                if self._driver is None:
                    self._driver = self._connection.open_subscription(
                        self.topic, self.group, self.options)
                    caps = self._connection.capabilities
                    self._queue.max_batch = max(1, caps.max_batch)
                    self._expiring = caps.ttl is Support.EMULATED
        return self._driver

    def _closed_error(self) -> Closed:
        return Closed(f"consumer of {self.topic!r}/{self.group!r} is closed; the broker "
                      "will redeliver its unsettled messages")

    # -- pull ------------------------------------------------------------------------

    def receive(self, max_messages: int = 10,
                      timeout: float = 1.0) -> list[ReceivedMessage]:
        """Up to ``max_messages`` messages; ``[]`` once ``timeout`` seconds pass.

        Returns as soon as one message is available. Never returns more than the
        prefetch limit allows; when that many are undecided, waits for a decision.
        Hands pending decisions to the broker first, and raises
        :class:`SettlementError` (receiving nothing) when earlier ones were refused.
        """
        check_int("max_messages", max_messages, 1)
        timeout = check_seconds("timeout", timeout)
        if self._connection.receive_hooks:
            started = time_ns()
            got = self._receive(max_messages, timeout)
            if got:
                self._run_receive_hooks(got, started)
            return got
        return self._receive(max_messages, timeout)

    def _receive(self, max_messages: int,
                       timeout: float) -> list[ReceivedMessage]:
        driver = self._open()
        self._raise_failures()
        deadline = monotonic() + timeout
        while True:
            room = self.options.prefetch - len(self._unsettled)
            if room > 0 or self._closed:
                break
            remaining = deadline - monotonic()
            if remaining <= 0:
                return []
            with self._state:
                self._slot_freed.clear()
                self._slot_wanted = True
                full = self.options.prefetch - len(self._unsettled) <= 0
            if full:
                self._slot_freed.wait(remaining)
        if self._closed:
            raise self._closed_error()
        while True:
            with self._lock:
                got = self._settle_and_read(driver, max_messages, deadline)
            if got is not None:
                deliveries = got
                break
            remaining = deadline - monotonic()
            if remaining <= 0:
                return []
            sleep(min(remaining, retry_pause(self._queue.unavailable)))
            if self._closed:
                raise self._closed_error()
        group = self.group
        if self._expiring and deliveries:
            deliveries, expired = split_expired(deliveries)
            if expired:
                self._expire([ReceivedMessage(d, self, group) for d in expired])
                if not deliveries and monotonic() < deadline:  # only expired: go on
                    return self._receive(max_messages, deadline - monotonic())
        received = [ReceivedMessage(d, self, group) for d in deliveries]
        with self._state:
            self._unsettled.update(zip(map(id, received), received, strict=True))
        return received

    def _run_receive_hooks(self, messages: list[ReceivedMessage], started: int) -> None:
        for hook in self._connection.receive_hooks:
            try:
                hook(self.topic, self.group, messages, started)
            except Exception:
                log.exception("mqkit: a receive hook failed on %s/%s (ignored)", self.topic,
                              self.group)

    def _expire(self, messages: list[ReceivedMessage]) -> None:
        """Ack away messages past their emulated TTL: never handed out, counted."""
        with self._state:
            self._unsettled.update(zip(map(id, messages), messages, strict=True))
            self.expired += len(messages)
        self._decide(messages, ACK, None)
        log.debug("mqkit: dropped %d message(s) past their ttl from %s/%s", len(messages),
                  self.topic, self.group)

    def __iter__(self) -> Iterator[ReceivedMessage]:
        """Messages one at a time, until the consumer is closed.

        The loop fetches up to 100 at once and holds them ahead of the caller; while it
        holds them (and while the message it last handed out is undecided) their leases
        are extended where the backend allows. When the loop ends (``break``, an error,
        or the iterator is dropped) the messages it still holds are given back without
        using up an attempt. A broker that is unavailable is retried for up to
        ``unavailable_timeout`` (logged), then :class:`Unavailable` ends the loop.
        """
        return self._iterate()

    def _iterate(self) -> Iterator[ReceivedMessage]:
        held: list[ReceivedMessage] = []
        # At-most-once backends cannot take back what the loop holds: hold nothing.
        batch = (min(self.options.prefetch, _ITER_BATCH)
                 if self._connection.capabilities.support(Feature.NACK) else 1)
        outage = Outage(self.timing.unavailable_timeout)
        ticker = self._lease_ticker()
        try:
            while True:
                if not held:
                    if self._closed:
                        return
                    try:
                        got = self.receive(batch, _POLL)
                    except Closed:
                        return
                    except SettlementUnavailable as exc:
                        self._log_settle_failure(exc)
                        continue
                    except Unavailable as exc:
                        self._ride_out(outage, exc)
                        continue
                    self._outage_over(outage)
                    got.reverse()
                    held = got
                    continue
                yield held.pop()
        finally:
            if ticker is not None:
                ticker.stop()
            if held and not self._closed:
                self._release(held)

    # -- settling --------------------------------------------------------------------

    def ack(self, messages: Sequence[ReceivedMessage], *,
                  wait: bool = False) -> None:
        """Ack several messages (first decision wins for each).

        Returns at once; with ``wait=True``, once the broker took every decision
        recorded so far (raising :class:`SettlementError` if it refused any).
        """
        batch = self._messages("ack", messages)
        check_bool("wait", wait)
        self._decide(batch, ACK, None)
        if wait:
            self.flush_settlements()

    def nack(self, messages: Sequence[ReceivedMessage],
                   delay: float | None = None, *, wait: bool = False) -> None:
        """Nack several messages: they come back, after ``delay`` seconds if given."""
        batch = self._messages("nack", messages)
        check_bool("wait", wait)
        if delay is not None:
            delay = check_seconds("delay", delay)
        caps = self._connection.capabilities
        caps.require(Feature.NACK)
        if delay is not None and delay > 0:
            caps.require(Feature.NACK_DELAY)
        else:
            delay = None
        self._decide(batch, NACK, delay)
        if wait:
            self.flush_settlements()

    def reject(self, messages: Sequence[ReceivedMessage], *,
                     wait: bool = False) -> None:
        """Reject several messages: dropped for good."""
        batch = self._messages("reject", messages)
        check_bool("wait", wait)
        self._decide(batch, REJECT, None)
        if wait:
            self.flush_settlements()

    def _messages(self, verb: str, messages: object) -> Sequence[ReceivedMessage]:
        """``messages`` as a sequence of this face's received messages, or a
        :class:`ConfigurationError` naming what is wrong (a single message included)."""
        if isinstance(messages, ReceivedMessage):
            raise ConfigurationError(
                f"{verb}() takes a list of messages, got one message; "
                f"call msg.{verb}() for a single message")
        if isinstance(messages, (str, bytes)) or not hasattr(messages, "__iter__"):
            raise ConfigurationError(
                f"{verb}(): messages must be a list of received messages, "
                f"got {type(messages).__name__}")
        batch = messages if isinstance(messages, list | tuple) else list(messages)
        for i, msg in enumerate(batch):
            if not isinstance(msg, ReceivedMessage):
                raise ConfigurationError(
                    f"{verb}(): messages[{i}] is a {type(msg).__name__}, not a message "
                    "this consumer received")
        return batch

    def flush_settlements(self, timeout: float | None = None) -> None:
        """Wait until the broker took every decision recorded so far.

        Retries while the broker is unavailable, for up to ``timeout`` seconds (default
        ``settle_timeout``). Raises :class:`SettlementError` naming every decision the
        broker refused (or that ran out of time) since the last such error.
        """
        limit = (self.timing.settle_timeout if timeout is None
                 else check_seconds("timeout", timeout))
        if self._driver is not None or self._queue.pending:
            self._drain(limit)
        self._raise_failures()

    def extend_lease(self, messages: Sequence[ReceivedMessage],
                           seconds: float) -> None:
        """Keep undecided messages from other consumers for ``seconds`` more
        (a positive number)."""
        batch = self._messages("extend_lease", messages)
        seconds = check_seconds("seconds", seconds, positive=True)
        self._connection.capabilities.require(Feature.LEASE_EXTENSION)
        live = [m.delivery for m in batch if m.decision is None]
        if not live:
            return
        driver = self._open()
        with self._lock:
            driver.extend_lease(live, seconds)

    def _decide(self, messages: Sequence[ReceivedMessage], kind: str,
                delay: float | None, release: bool = False) -> None:
        """Record ``kind`` for every message (all or none), and schedule the hand-over."""
        if not messages:
            return
        with self._state:
            for msg in messages:
                if msg._consumer is not self:
                    raise ConfigurationError("message was received by another consumer")
                if msg.decision is not None:
                    msg._claim(kind)  # raises: first decision wins
            if self._closed:
                raise self._closed_error()
            forget = self._unsettled.pop
            for msg in messages:
                msg.decision = kind
                forget(id(msg), None)
            full = self._queue.add([Decision(m, kind, delay, release) for m in messages])
            wanted, self._slot_wanted = self._slot_wanted, False
        self._after_decision(wanted, full)

    def _after_decision(self, wanted: bool, full: bool) -> None:
        """Wake a receive waiting for a slot (``wanted``), and schedule the hand-over."""
        if wanted:
            self._slot_freed.set()
        self._flusher.wake(full)

    def _decide_one(self, msg: ReceivedMessage, kind: str, delay: float | None) -> None:
        """:meth:`_decide` for one message of this consumer: the per-message path (what
        ``msg.ack()`` costs, so the queueing and :meth:`_after_decision` are written out
        here: two calls fewer per message)."""
        queue = self._queue
        with self._state:
            if msg.decision is not None:
                msg._claim(kind)  # raises: first decision wins
            if self._closed:
                raise self._closed_error()
            msg.decision = kind
            self._unsettled.pop(id(msg), None)
            pending = queue.pending
            pending.append(Decision(msg, kind, delay))
            full = len(pending) >= queue.max_batch
            wanted = self._slot_wanted
            if wanted:
                self._slot_wanted = False
        if wanted:
            self._slot_freed.set()
        self._flusher.wake(full)

    def _release(self, messages: Sequence[ReceivedMessage]) -> int:
        """Give back undecided messages without using up an attempt; how many."""
        live = [m for m in messages if m.decision is None]
        if not live or self._closed:
            return 0
        if not self._connection.capabilities.support(Feature.NACK):
            return 0  # nothing to give back with: the broker drops them (at-most-once)
        if not self._connection.capabilities.support(Feature.RELEASE):
            releases = self._connection.releases  # the broker counts them: remember
            for msg in live:
                key = self._key(msg)
                if key is not None:
                    releases.add(key)
        self._decide(live, NACK, None, release=True)
        return len(live)

    def _key(self, msg: ReceivedMessage) -> tuple[str, str, str] | None:
        ident = msg.id or msg.broker_id
        return None if ident is None else (self.topic, self.group, ident)

    def _attempts(self, msg: ReceivedMessage) -> int:
        """Failed attempts so far, counting this one: deliveries minus the releases
        the broker counted (none where it has Feature.RELEASE)."""
        key = self._key(msg)
        released = 0 if key is None else self._connection.releases.count(key)
        return max(1, msg.delivery_count - released)

    def _background_flush(self) -> float | None:
        with self._state:
            if not self._queue.pending:
                # A receive handed everything over meanwhile: do not queue up for the
                # lock it may be holding while it waits for messages.
                return None
        with self._lock:
            driver = self._driver
            if driver is None:
                return None
            self._hand_over(driver)
        with self._state:
            if self._queue.pending:
                return retry_pause(self._queue.unavailable)
        return None

    def _drain(self, timeout: float) -> None:
        """Hand over every pending decision, retrying an unavailable broker until
        ``timeout``; what is left then is recorded as failed."""
        deadline = monotonic() + timeout
        while True:
            with self._lock:
                driver = self._driver
                if driver is not None:
                    self._hand_over(driver)
            with self._state:
                left = bool(self._queue.pending)
            if not left:
                return
            remaining = deadline - monotonic()
            if driver is None or remaining <= 0:
                with self._state:
                    self._queue.fail_pending(
                        self._closed_error() if driver is None else
                        self._queue.last_unavailable or
                        Timeout(f"settlements on {self.topic!r}/{self.group!r} not taken "
                                f"by the broker within {timeout:g} s"))
                return
            sleep(min(remaining, retry_pause(self._queue.unavailable)))

    def _settle_and_read(self, driver: MappedSubscription, max_messages: int,
                               deadline: float) -> list[Delivery] | None:
        """Hand pending decisions over, then read what there is room for; None when there
        is none (the broker refuses settlements as unavailable). Caller holds the lock.

        Plain acks alone go out with the read in one call where the driver combines the
        two (:meth:`SubscriptionDriver.ack_and_receive`). If that call fails,
        whichever part failed, its acks are pending again and go the plain way at once
        (``ack``, then ``receive_batch``), so the caller sees exactly what it would have
        seen without combining (an unavailable broker's acks retried, not raised)."""
        if self._driver is None:
            raise self._closed_error()
        acks = None
        if self._queue.pending:
            if driver.combines_ack_and_receive:
                with self._state:
                    acks = self._queue.take_acks()
            if acks is None:
                self._hand_over(driver)
                self._raise_failures()
        # Decisions the broker has not taken yet count too: while it refuses them as
        # unavailable, nothing more is received (memory stays bounded).
        room = self.options.prefetch - self.in_flight
        if acks:
            room += len(acks)  # applied before the read reads
            if room > 0:
                try:
                    return self._ack_and_receive(driver, acks, min(max_messages, room),
                                                       deadline)
                except MQError:
                    pass  # pending again: the plain way below decides what the caller sees
            else:
                with self._state:
                    self._queue.give_back(acks)
            self._hand_over(driver)
            self._raise_failures()
            room = self.options.prefetch - self.in_flight
        if room > 0:
            return driver.receive_batch(min(max_messages, room),
                                              max(0.0, deadline - monotonic()))
        return None

    def _ack_and_receive(self, driver: MappedSubscription, acks: list[Decision],
                               max_messages: int, deadline: float) -> list[Delivery]:
        """Hand ``acks`` (taken from the queue) over with the read, in one call; caller
        holds the lock. When the call fails, the acks are pending again, first."""
        try:
            deliveries = driver.ack_and_receive(
                [d.message.delivery for d in acks], max_messages,
                max(0.0, deadline - monotonic()))
        except BaseException:
            with self._state:
                self._queue.give_back(acks)
            raise
        with self._state:
            self._queue.done(acks)
        self._forget_releases(acks)
        return deliveries

    def _hand_over(self, driver: MappedSubscription) -> None:
        """Send pending decisions to the driver, batch by batch; caller holds the lock.

        Stops early when the broker is unavailable (the rest stays pending).
        """
        queue = self._queue
        timeout = self.timing.settle_timeout
        while True:
            with self._state:
                groups = queue.take()
            if not groups:
                return
            for i, group in enumerate(groups):
                try:
                    self._settle_group(driver, group)
                except Unavailable as exc:
                    with self._state:
                        queue.put_back(groups[i:], exc, monotonic(), timeout)
                    return
                except MQError as exc:
                    with self._state:
                        queue.refused(group, exc)
                else:
                    with self._state:
                        queue.done(group)

    def _settle_group(self, driver: MappedSubscription,
                            group: Sequence[Decision]) -> None:
        first = group[0]
        deliveries = [d.message.delivery for d in group]
        if first.kind == ACK:
            driver.ack(deliveries)
        elif first.release:
            driver.release(deliveries)
            return
        elif first.kind == NACK:
            driver.nack(deliveries, first.delay)
            return
        else:
            driver.reject(deliveries)
        self._forget_releases(group)

    def _forget_releases(self, group: Sequence[Decision]) -> None:
        """``group`` is acked or rejected for good: its releases no longer count."""
        releases = self._connection.releases
        if releases:
            for d in group:
                key = self._key(d.message)
                if key is not None:
                    releases.forget(key)

    def _raise_failures(self) -> None:
        """Raise the settlements refused since the last call, if any."""
        if not self._queue.failed:
            return
        with self._state:
            failed, causes = self._queue.take_failures()
            for d in failed:
                d.message.decision = None
        if not failed:
            return
        messages = [d.message for d in failed]
        unavailable = all(isinstance(c, Unavailable) for c in causes)
        cls = SettlementUnavailable if unavailable else SettlementError
        last = causes[-1] if causes else None
        raise cls(f"{len(messages)} settlement(s) on {self.topic!r}/{self.group!r} not "
                  f"taken by the broker ({type(last).__name__}: {last}); the broker "
                  "will redeliver those messages", messages, causes) from last

    def _log_settle_failure(self, exc: SettlementError) -> None:
        log.warning("mqkit: %s on %s; the broker will redeliver those messages",
                    exc, self._connection.url,
                    extra=log_fields(self.topic, self.group,
                                     message_ids=[getattr(m, "id", None)
                                                  for m in exc.messages]))

    def _fields(self, msg: ReceivedMessage,
                contexts: Contexts | None = None) -> dict[str, Any]:
        """The structured fields of a log record about ``msg`` (:mod:`mqkit._logfields`):
        with its handler context, the trace of the span it was processed in."""
        ctx = None if contexts is None else contexts.get(id(msg))
        span = None if ctx is None else ctx.state.get(SPAN_KEY)
        return log_fields(self.topic, self.group, msg.id, span=span)

    # -- handler loop ----------------------------------------------------------------

    def run(self, handler: Handler, *,
                  retry: RetryPolicy | None = None, concurrency: int = 1,
                  stop_after: int | None = None, idle_timeout: float | None = None,
                  batch_size: int | None = None,
                  middleware: Sequence[Middleware] = ()) -> RunStats:
        """Call ``handler`` for each message until stopped; return what happened.

        A handler that returns acks its message; one that raises is nacked with the
        policy's backoff until the message's ``max_attempts``-th attempt, after which
        the message is dead-lettered with the failure reason in its headers
        (``mqkit-dead-letter-reason``) and acked. :class:`PermanentFailure` skips the
        retries. A handler may settle its message itself; then the loop leaves it.
        Attempts are deliveries minus releases (see ``stop``). If the dead-letter topic
        refuses the copy, the message is nacked with backoff and tried again. On an
        at-most-once backend (no nack) a failed message is logged and dropped.

        Stops after ``stop_after`` messages, after ``idle_timeout`` seconds without a
        message, on ``stop()`` (graceful: in-flight handlers finish and are settled;
        received messages not yet started are given back), or on ``close()``: then
        ``run`` returns once the handlers in flight returned, and their messages are
        left to redelivery. Up to ``concurrency`` handlers run at once; messages in hand
        are kept leased while their handlers run, where the backend allows.

        A broker that is unavailable is retried with backoff for up to
        ``unavailable_timeout`` seconds (logged at WARNING), then :class:`Unavailable`
        is raised; :class:`PermissionDenied` and other errors are raised at once.
        Before returning, waits for the broker to take the loop's decisions.

        ``middleware`` (see :class:`mqkit.Middleware`; the first is outermost) wraps
        each handler call and sees each message's outcome once the loop decided it. A
        middleware may short-circuit (the message is acked unhandled), give the message
        back (:class:`ReleaseMessage`, no attempt used) or ask the loop to stop
        receiving for a while (its ``outcome`` returns seconds). Without middleware
        nothing of this runs.
        """
        policy = RetryPolicy() if retry is None else retry
        chain_items = check_middleware(middleware)
        dead_letter_topic = self._check_run(handler, policy, concurrency=concurrency,
                                            stop_after=stop_after,
                                            idle_timeout=idle_timeout,
                                            batch_size=batch_size)
        self._open()
        stats = RunStats()
        caps = self._connection.capabilities
        releasable = bool(caps.support(Feature.NACK))
        size = batch_size or max(concurrency, min(self.options.prefetch, 100))
        ticker = self._lease_ticker()
        outage = Outage(self.timing.unavailable_timeout)
        last_message = monotonic()
        pool = HandlerPool(concurrency)
        chain, hooks = ((build_chain(chain_items, handler), outcome_hooks(chain_items))
                        if chain_items else (None, ()))
        try:
            while not self._stop_requested and not self._closed:
                want = size if stop_after is None else min(size, stop_after - stats.handled)
                if want <= 0:
                    break
                poll = _POLL if idle_timeout is None else min(_POLL, idle_timeout)
                batch = self._run_receive(want, poll, stats=stats, outage=outage,
                                                idle_timeout=idle_timeout,
                                                last_message=last_message)
                if batch is None:
                    break
                if not batch:
                    continue
                last_message = monotonic()
                if chain is None:
                    outcomes = self._run_batch(
                        pool, [self._make_call(handler, m, releasable) for m in batch], batch)
                    try:
                        self._apply(batch, outcomes, policy, stats, dead_letter_topic)
                    except Closed:
                        break
                    continue
                pause = self._run_chained(batch, chain, hooks, pool, releasable,
                                                policy=policy, stats=stats,
                                                dead_letter_topic=dead_letter_topic)
                if pause is None:
                    break
                if pause > 0 and self._pause_receiving(pause):
                    last_message = monotonic()
        finally:
            pool.close()
            if ticker is not None:
                ticker.stop()
            self._stop_requested = self._closed
        if not self._closed:
            try:
                self.flush_settlements()
            except SettlementError as exc:
                self._log_settle_failure(exc)
                stats.settle_failed += len(exc.messages)
        return stats

    def _run_receive(self, want: int, poll: float, *, stats: RunStats,
                           outage: Outage, idle_timeout: float | None,
                           last_message: float) -> list[ReceivedMessage] | None:
        """One receive of the run loop: a batch, ``[]`` to go on, ``None`` to return."""
        idle = idle_timeout is not None and monotonic() - last_message >= idle_timeout
        try:
            batch = self.receive(want, poll)
        except Closed:
            return None
        except SettlementError as exc:
            self._log_settle_failure(exc)
            stats.settle_failed += len(exc.messages)
            return []
        except Unavailable as exc:
            if idle:
                raise
            self._ride_out(outage, exc)
            return []
        self._outage_over(outage)
        if (not batch and idle_timeout is not None
                and monotonic() - last_message >= idle_timeout):
            return None
        return batch

    def _check_run(self, handler: Handler, policy: RetryPolicy, *, concurrency: int,
                   stop_after: int | None, idle_timeout: float | None,
                   batch_size: int | None) -> str | None:
        """Refuse bad run() arguments before anything is received; the dead-letter topic."""
        check_handler(handler)
        if not isinstance(policy, RetryPolicy):
            raise ConfigurationError(
                f"retry must be a RetryPolicy, got {type(policy).__name__}")
        check_int("concurrency", concurrency, 1)
        if stop_after is not None:
            check_int("stop_after", stop_after, 1)
        if idle_timeout is not None:
            check_seconds("idle_timeout", idle_timeout)
        if batch_size is not None:
            check_int("batch_size", batch_size, 1)
        if not policy.dead_letter:
            return None
        if policy.dead_letter_topic is not None:
            return check_name("dead_letter_topic", policy.dead_letter_topic)
        return self._connection.dead_letter_topic(self.topic)

    def _outage_over(self, outage: Outage) -> None:
        outage.ok()
        self._outage = None

    def _ride_out(self, outage: Outage, exc: Unavailable) -> None:
        """Wait before retrying an unavailable broker, or raise ``exc`` when it has been
        unavailable for ``unavailable_timeout`` seconds."""
        pause = outage.failed()
        self._outage = outage
        if pause < 0:
            log.error("mqkit: %s unavailable for %s/%s for %.0f s; giving up: %s",
                      self._connection.url, self.topic, self.group, outage.limit, exc,
                      extra=log_fields(self.topic, self.group))
            raise exc
        log.warning("mqkit: %s unavailable for %s/%s (%s); retrying for up to %.0f s",
                    self._connection.url, self.topic, self.group, exc, outage.limit,
                    extra=log_fields(self.topic, self.group))
        sleep(pause)

    def _lease_ticker(self) -> Ticker | None:
        if not self._connection.capabilities.support(Feature.LEASE_EXTENSION):
            return None
        ticker = Ticker(max(0.05, self.options.lease / 3), self._extend_unsettled)
        ticker.start()
        return ticker

    def _run_batch(self, pool: HandlerPool, calls: Sequence[Callable[[], Any]],
                         batch: Sequence[ReceivedMessage]) -> list[object]:
        """The calls' outcomes; a handler of the wrong face gives the batch back."""
        try:
            return pool.run_all(calls)
        except AwaitableResult:
            self._release(batch)
            raise

    def _run_chained(self, batch: Sequence[ReceivedMessage],
                           chain: Callable[[HandlerContext], Any],
                           hooks: Sequence[Middleware], pool: HandlerPool,
                           releasable: bool, *, policy: RetryPolicy, stats: RunStats,
                           dead_letter_topic: str | None) -> float | None:
        """Handle and settle one batch through the middleware chain, then call the
        outcome ``hooks`` (the middleware with an ``outcome`` of its own; none: no
        outcome is recorded); the pause they asked for, or ``None`` when the consumer
        closed."""
        topic, group, count = self.topic, self.group, self._attempts
        contexts = [HandlerContext(m, topic, group, count) for m in batch]
        outcomes = self._run_batch(
            pool, [self._make_chained_call(chain, c, releasable) for c in contexts], batch)
        report: Report | None = [] if hooks else None
        closed = False
        by_message = {id(c.message): c for c in contexts}
        try:
            self._apply(batch, outcomes, policy, stats, dead_letter_topic,
                              report=report, contexts=by_message)
        except Closed:
            closed = True
        pause = 0.0 if report is None else report_outcomes(
            hooks, [(by_message[id(msg)], out) for msg, out in report])
        return None if closed else pause

    def _pause_receiving(self, seconds: float) -> bool:
        """Receive nothing for ``seconds`` (a middleware asked), unless stopped or
        closed; ``True`` (the pause does not count as idle time)."""
        log.warning("mqkit: middleware paused receiving on %s/%s for %.1f s",
                    self.topic, self.group, seconds, extra=log_fields(self.topic, self.group))
        deadline = monotonic() + seconds
        while not self._stop_requested and not self._closed:
            left = deadline - monotonic()
            if left <= 0:
                break
            sleep(min(left, _PAUSE_POLL))
        return True

    def _make_chained_call(self, chain: Callable[[HandlerContext], Any],
                           ctx: HandlerContext, releasable: bool) -> Callable[[], Any]:
        def call() -> object:
            if self._stop_requested and releasable:
                return _NOT_STARTED
            try:
                chain(ctx)
            except AwaitableResult:
                raise
            except Exception as exc:
                return exc
            return None
        return call

    def _make_call(self, handler: Callable[[ReceivedMessage], Any],
                   msg: ReceivedMessage, releasable: bool) -> Callable[[], Any]:
        def call() -> object:
            if self._stop_requested and releasable:
                return _NOT_STARTED
            try:
                call_handler(handler, msg)
            except AwaitableResult:
                raise
            except Exception as exc:
                return exc
            return None
        return call

    def _apply(self, batch: Sequence[ReceivedMessage], outcomes: Sequence[object],
                     policy: RetryPolicy, stats: RunStats,
                     dead_letter_topic: str | None, *, report: Report | None = None,
                     contexts: Contexts | None = None) -> None:
        """Settle a handled batch; with ``report``, append each message's outcome
        (``contexts``: the handler contexts, for the log records' trace)."""
        to_ack: list[ReceivedMessage] = []
        to_reject: list[ReceivedMessage] = []
        to_drop: list[ReceivedMessage] = []
        to_dead_letter: list[tuple[ReceivedMessage, BaseException, int]] = []
        released: list[ReceivedMessage] = []
        can_nack = self._connection.capabilities.support(Feature.NACK)
        for msg, outcome in zip(batch, outcomes, strict=True):
            if outcome is _NOT_STARTED or isinstance(outcome, ReleaseMessage):
                self._give_back(msg, outcome, released if outcome is _NOT_STARTED or can_nack
                                else to_drop, report, contexts)
                continue
            stats.handled += 1
            error = outcome if isinstance(outcome, BaseException) else None
            if msg.decision is not None:  # the handler settled it itself
                if report is not None:
                    report.append((msg, Outcome(OutcomeKind.SETTLED, error=error,
                                                attempts=self._attempts(msg))))
                continue
            attempts = self._attempts(msg)
            action = decide(policy, error, attempts)
            if action is Action.ACK:
                to_ack.append(msg)
                kind = OutcomeKind.ACKED
            elif not can_nack:
                log.error("mqkit: handler failed on %s from %s/%s; the backend cannot "
                          "redeliver (at-most-once), message dropped: %s", msg.id,
                          self.topic, self.group, failure_reason(error or Exception()),
                          extra=self._fields(msg, contexts))
                to_drop.append(msg)
                kind = OutcomeKind.DROPPED
            elif action is Action.RETRY:
                assert error is not None
                log.info("mqkit: handler failed on %s (attempt %d of %d): %s", msg.id,
                         attempts, policy.max_attempts, failure_reason(error),
                         extra=self._fields(msg, contexts))
                delay = self._retry(msg, policy, attempts)
                stats.retried += 1
                if report is not None:
                    report.append((msg, Outcome(OutcomeKind.RETRIED, delay, error,
                                                attempts)))
                continue
            elif action is Action.DEAD_LETTER:
                assert error is not None and dead_letter_topic is not None
                to_dead_letter.append((msg, error, attempts))
                continue  # reported once the dead-letter topic took the copy or not
            else:
                to_reject.append(msg)
                kind = OutcomeKind.REJECTED
            if report is not None:
                report.append((msg, Outcome(kind, None, error, attempts)))
        if to_dead_letter:
            assert dead_letter_topic is not None
            self._dead_letter(to_dead_letter, dead_letter_topic, policy, stats,
                                    report, contexts=contexts)
        self._settle_lists(stats, to_reject, to_ack, to_drop, released)

    def _give_back(self, msg: ReceivedMessage, outcome: object,
                   into: list[ReceivedMessage], report: Report | None,
                   contexts: Contexts | None = None) -> None:
        """A message not handled (the loop stopped, or :class:`ReleaseMessage`) goes
        ``into`` the released list, or the dropped one where nothing can be given back."""
        into.append(msg)
        kind = OutcomeKind.RELEASED
        if outcome is not _NOT_STARTED and not self._connection.capabilities.support(
                Feature.NACK):
            log.error("mqkit: %s from %s/%s given back (%s) on a backend that cannot "
                      "redeliver (at-most-once): message dropped", msg.id, self.topic,
                      self.group, outcome, extra=self._fields(msg, contexts))
            kind = OutcomeKind.DROPPED
        if report is not None:
            report.append((msg, Outcome(kind, attempts=self._attempts(msg))))

    def _settle_lists(self, stats: RunStats, to_reject: list[ReceivedMessage],
                      to_ack: list[ReceivedMessage], to_drop: list[ReceivedMessage],
                      released: list[ReceivedMessage]) -> None:
        if to_reject:
            self._decide(to_reject, REJECT, None)
            stats.rejected += len(to_reject)
        if to_ack:
            self._decide(to_ack, ACK, None)
            stats.acked += len(to_ack)
        if to_drop:
            self._decide(to_drop, ACK, None)  # settles nothing on the broker; frees slots
            stats.dropped += len(to_drop)
        if released:
            stats.released += self._release(released)

    def _retry(self, msg: ReceivedMessage, policy: RetryPolicy,
                     attempts: int) -> float | None:
        """Nack ``msg`` with the policy's backoff; the delay (``None``: at once)."""
        delay: float | None = policy.backoff(attempts)
        if not self._connection.capabilities.support(Feature.NACK_DELAY):
            delay = None
        self.nack([msg], delay=delay)
        return delay or None

    def _dead_letter(self, items: Sequence[tuple[ReceivedMessage, BaseException, int]],
                           topic: str, policy: RetryPolicy, stats: RunStats,
                           report: Report | None = None, *,
                           contexts: Contexts | None = None) -> None:
        """Publish copies with the failure reason to ``topic`` in one batch; ack those
        the topic accepted, nack the others with backoff (never lost, never a spin)."""
        copies = []
        for msg, error, attempts in items:
            headers = dict(msg.headers)
            headers.pop(EXPIRES, None)  # a dead letter is kept, not expired
            headers[DLQ_HEADERS["reason"]] = failure_reason(error)
            headers[DLQ_HEADERS["topic"]] = self.topic
            headers[DLQ_HEADERS["group"]] = self.group
            headers[DLQ_HEADERS["attempts"]] = str(attempts)
            src = msg.message
            copies.append(Message(src.body, key=src.key, headers=headers, id=src.id,
                                  content_type=src.content_type,
                                  correlation_id=src.correlation_id, reply_to=src.reply_to))
        failed: dict[int, MQError] = {}
        try:
            self._dead_letters(topic, copies)
        except SendBatchError as exc:
            failed = dict(exc.failures)
        except MQError as exc:
            failed = dict.fromkeys(range(len(items)), exc)
        done = []
        for i, (msg, error, attempts) in enumerate(items):
            if i in failed:
                log.error("mqkit: could not dead-letter %s to %s (%s); nacking it with "
                          "backoff instead", msg.id, topic, failed[i],
                          extra=self._fields(msg, contexts))
                delay = self._retry(msg, policy, attempts)
                stats.dead_letter_failed += 1
                if report is not None:
                    report.append((msg, Outcome(OutcomeKind.RETRIED, delay, error, attempts)))
                continue
            log.warning("mqkit: dead-lettered %s from %s/%s to %s after %d attempts: %s",
                        msg.id, self.topic, self.group, topic, attempts,
                        failure_reason(error), extra=self._fields(msg, contexts))
            done.append(msg)
            if report is not None:
                report.append((msg, Outcome(OutcomeKind.DEAD_LETTERED, None, error, attempts)))
        if done:
            self._decide(done, ACK, None)
            stats.dead_lettered += len(done)

    def _extend_unsettled(self) -> None:
        with self._state:
            live = [m for m in self._unsettled.values() if m.decision is None]
        if live and not self._closed:
            try:
                self.extend_lease(live, self.options.lease)
            except MQError as exc:
                log.warning("mqkit: lease extension on %s/%s failed: %s",
                            self.topic, self.group, exc,
                            extra=log_fields(self.topic, self.group,
                                             message_ids=[m.id for m in live]))

    def as_(self, kind: type[T]) -> T | None:
        """The native object of type ``kind`` behind this consumer (escape hatch), or ``None``
        (before its first receive opens the subscription, after close,
        or when the backend has none of that type)."""
        return None if self._driver is None else self._driver.as_(kind)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Consumer topic={self.topic!r} group={self.group!r} {state}>"
