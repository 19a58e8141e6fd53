"""Metrics per the OpenTelemetry messaging semantic conventions, plus mqkit's own.

Producer side: :class:`SendMeter`, a send hook (added by :func:`mqkit.otel.instrument`):

- ``messaging.client.sent.messages`` (counter, ``{message}``): messages each send tried
  to send (a batch counts each message; ``send(wait=False)`` counts when the buffer is
  flushed, not when a message is buffered), with ``error.type`` when the send failed;
- ``messaging.client.operation.duration`` (histogram, s): each ``send`` / ``send_batch``
  / flush, ``messaging.operation.name`` ``send``.

Consumer side: :class:`Metrics` (blocking ``consumer.run``) / :class:`AsyncMetrics`
(asyncio ``consumer.run`` and the App), middleware:

- ``messaging.client.consumed.messages`` (counter): every message the loop took from the
  broker, once per delivery (counted when the loop decided its outcome, so a message
  released unhandled at a stop is counted too); ``messaging.operation.name`` ``receive``;
- ``messaging.process.duration`` (histogram, s): the handler (and the middleware inside
  this one), with ``error.type`` when it raised; a release is not recorded;
- ``mqkit.consumer.outcomes`` (counter): one per delivery and decision, ``mqkit.outcome``
  = ``acked``, ``retried``, ``dead_lettered``, ``rejected``, ``dropped``, ``released`` or
  ``settled`` (the retried, dead-lettered and rejected counts are its series), with
  ``error.type`` of the handler's error for the failed ones;
- ``mqkit.message.latency`` (histogram, s): end-to-end latency, the wall-clock time from
  the broker's timestamp of the delivery to its handler returning (or raising), for
  messages whose backend gives a timestamp; clock skew between hosts shows in it, a
  negative difference is recorded as 0;
- ``mqkit.consumer.group.depth`` (observable gauge, ``{message}``): the group's backlog
  from ``admin.stats(topic, group).depth`` (the lag on log backends), for each (topic,
  group) this middleware handled a message of, read at most once per
  ``depth_interval`` seconds (see :class:`Metrics`).

Every metric carries ``messaging.system``, ``messaging.destination.name`` and, on the
consumer side, ``messaging.consumer.group.name``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from .. import __version__
from .._errors import ConfigurationError, MQError
from .._logfields import log_fields
from .._outcome import Outcome, OutcomeKind, ReleaseMessage
from .._validation import check_seconds
from ._registry import FrozenAttributes
from ._tracing import (
    DESTINATION,
    ERROR_TYPE,
    GROUP,
    OPERATION_NAME,
    OUTCOME,
    SCHEMA_URL,
    SYSTEM,
    error_type,
    messaging_system,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from opentelemetry.metrics import Meter, MeterProvider

    from .._message import Message
    from .._sync._client import Client
    from .._sync._middleware import HandlerContext
    from .._sync._middleware import Next as SyncNext
    from ..aio._client import AsyncClient
    from ..aio._middleware import AsyncHandlerContext
    from ..aio._middleware import Next as AsyncNext

__all__ = ["CONSUMED", "DEPTH", "DURATION_BUCKETS", "LATENCY", "OPERATION_DURATION",
           "OUTCOMES", "PROCESS_DURATION", "SENT", "AsyncMetrics", "Metrics", "SendMeter"]

log = logging.getLogger("mqkit")

SENT = "messaging.client.sent.messages"
CONSUMED = "messaging.client.consumed.messages"
OPERATION_DURATION = "messaging.client.operation.duration"
PROCESS_DURATION = "messaging.process.duration"
OUTCOMES = "mqkit.consumer.outcomes"
LATENCY = "mqkit.message.latency"
DEPTH = "mqkit.consumer.group.depth"

# The conventions' advisory buckets for the duration histograms.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
                    7.5, 10.0)
# End-to-end latency spans queueing too: up to an hour.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                   60.0, 300.0, 900.0, 3600.0)


def _meter(provider: MeterProvider | None) -> Meter:
    return metrics.get_meter("mqkit", __version__, provider, schema_url=SCHEMA_URL)


class SendMeter:
    """The send hook counting sends (see the module docstring); added by
    :func:`mqkit.otel.instrument`. ``meter_provider``: default the global one."""

    def __init__(self, client: Client | AsyncClient, *,
                 meter_provider: MeterProvider | None = None) -> None:
        meter = _meter(meter_provider)
        self._sent = meter.create_counter(
            SENT, "{message}", "Number of messages producer attempted to send to the broker.")
        self._duration = meter.create_histogram(
            OPERATION_DURATION, "s", "Duration of messaging operation initiated by a "
            "producer or consumer client.", explicit_bucket_boundaries_advisory=DURATION_BUCKETS)
        self._system = messaging_system(client.url.scheme, sending=True)
        self._attrs: dict[str, dict[str, Any]] = {}

    def _base(self, topic: str) -> dict[str, Any]:
        attrs = self._attrs.get(topic)
        if attrs is None:
            attrs = self._attrs[topic] = FrozenAttributes(
                {SYSTEM: self._system, DESTINATION: topic, OPERATION_NAME: "send"})
        return attrs

    def __call__(self, operation: str, topic: str,
                 messages: list[Message]) -> Callable[[BaseException | None], None] | None:
        if operation == "create":  # buffered: counted when flushed
            return None
        if getattr(self._sent, "_real_instrument", False) is None:
            # the API's proxy instrument with no SDK behind it (yet): a record would do
            # nothing, so neither is the send timed (an internal of opentelemetry-api:
            # if it is ever missing, the full path)
            return None
        attrs = self._base(topic)
        count = len(messages)
        start = time.perf_counter()

        def finish(error: BaseException | None) -> None:
            elapsed = time.perf_counter() - start
            if error is None:
                self._sent.add(count, attrs)
                self._duration.record(elapsed, attrs)
            else:
                failed = {**attrs, ERROR_TYPE: error_type(error)}
                self._sent.add(count, failed)
                self._duration.record(elapsed, failed)
        return finish


class _GroupDepth:
    """The cached depth of one (topic, group), refreshed at most once per interval."""

    __slots__ = ("attrs", "group", "loop", "read", "refreshing", "stamp", "topic", "value")

    def __init__(self, topic: str, group: str, attrs: dict[str, Any],
                 read: Callable[[], Any], loop: asyncio.AbstractEventLoop | None) -> None:
        self.topic = topic
        self.group = group
        self.attrs = attrs
        self.read = read            # blocking: returns GroupStats; asyncio: a coroutine
        self.loop = loop
        self.value: int | None = None
        self.stamp = -float("inf")  # monotonic time of the last read started
        self.refreshing = False

    def store(self, stats: Any) -> None:
        self.value = int(stats.depth)

    def failed(self, exc: BaseException) -> None:
        log.debug("mqkit: group depth of %s/%s not read: %s: %s", self.topic, self.group,
                  type(exc).__name__, exc, extra=log_fields(self.topic, self.group))


class _MetricsBase:
    """What both faces' middleware share (see the module docstring)."""

    def __init__(self, *, meter_provider: MeterProvider | None = None,
                 depth_interval: float | None = 15.0, latency: bool = True) -> None:
        if not isinstance(latency, bool):
            raise ConfigurationError(f"latency must be a bool, got {type(latency).__name__}")
        self.depth_interval = (None if depth_interval is None
                               else check_seconds("depth_interval", depth_interval,
                                                  positive=True))
        self.latency = latency
        meter = _meter(meter_provider)
        self._consumed = meter.create_counter(
            CONSUMED, "{message}", "Number of messages that were delivered to the application.")
        self._process = meter.create_histogram(
            PROCESS_DURATION, "s", "Duration of processing operation.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS)
        self._outcomes = meter.create_counter(
            OUTCOMES, "{message}", "Messages by how the run loop settled them (mqkit.outcome).")
        self._latency = meter.create_histogram(
            LATENCY, "s", "Seconds from the broker's timestamp of a message to its handler "
            "finishing.", explicit_bucket_boundaries_advisory=LATENCY_BUCKETS)
        self._groups: dict[tuple[str, str], _GroupDepth] = {}
        self._groups_lock = threading.Lock()
        self._next_read = -float("inf")  # blocking face: the next look at the groups
        if self.depth_interval is not None:
            meter.create_observable_gauge(
                DEPTH, [self._observe_depth], "{message}",
                "Messages the consumer group has not acked yet (the lag on log backends).")
        # per consumer: (consumer, base attrs, receive attrs, process attrs)
        self._consumers: dict[int, tuple[object, dict[str, Any], dict[str, Any],
                                         dict[str, Any]]] = {}
        self._outcome_attrs: dict[tuple[Any, str, str, OutcomeKind, str | None],
                                  dict[str, Any]] = {}

    def _attrs(self, ctx: HandlerContext | AsyncHandlerContext
               ) -> tuple[object, dict[str, Any], dict[str, Any], dict[str, Any]]:
        consumer = getattr(ctx.message, "_consumer", None)
        cached = self._consumers.get(id(consumer))
        if cached is not None and cached[0] is consumer:
            return cached
        url = getattr(getattr(consumer, "_connection", None), "url", None)
        base: dict[str, Any] = {DESTINATION: ctx.topic, GROUP: ctx.group}
        if url is not None:
            base[SYSTEM] = messaging_system(url.scheme)
        entry = (consumer, FrozenAttributes(base),
                 FrozenAttributes({**base, OPERATION_NAME: "receive"}),
                 FrozenAttributes({**base, OPERATION_NAME: "process"}))
        if consumer is not None:
            self._consumers[id(consumer)] = entry
            if self.depth_interval is not None:
                self._watch(ctx, consumer, base)
        return entry

    def _watch(self, ctx: HandlerContext | AsyncHandlerContext, consumer: object,
               base: dict[str, Any]) -> None:
        """Start reading the depth of ``ctx``'s group (first message of a consumer)."""
        pair = (ctx.topic, ctx.group)
        with self._groups_lock:
            if pair in self._groups:
                return
            connection = getattr(consumer, "_connection", None)
            if connection is None or not hasattr(connection, "group_stats"):
                return
            read = self._reader(connection, ctx.topic, ctx.group)
            self._groups[pair] = _GroupDepth(ctx.topic, ctx.group, dict(base), read,
                                             _running_loop())

    @staticmethod
    def _reader(connection: Any, topic: str, group: str) -> Callable[[], Any]:
        return lambda: connection.group_stats(topic, group)

    def _observe_depth(self, options: CallbackOptions) -> Iterable[Observation]:
        del options
        with self._groups_lock:
            groups = list(self._groups.values())
        now = time.monotonic()
        for entry in groups:
            if entry.loop is not None:
                self._refresh_async(entry, now)
            if entry.value is not None:
                yield Observation(entry.value, entry.attrs)

    def _due(self, entry: _GroupDepth, now: float) -> bool:
        assert self.depth_interval is not None
        if entry.refreshing or now - entry.stamp < self.depth_interval:
            return False
        entry.stamp = now
        entry.refreshing = True
        return True

    def _refresh_async(self, entry: _GroupDepth, now: float) -> None:
        """Asyncio face: read on the consumer's loop, from any thread; wait (up to 1 s)
        only for the first reading, and only off the loop."""
        loop = entry.loop
        if loop is None or loop.is_closed() or not self._due(entry, now):
            return

        async def read() -> None:
            try:
                entry.store(await entry.read())
            except Exception as exc:
                entry.failed(exc)
            finally:
                entry.refreshing = False

        try:
            future = asyncio.run_coroutine_threadsafe(read(), loop)
        except RuntimeError:  # the loop closed meanwhile
            entry.refreshing = False
            return
        if entry.value is None and _running_loop() is not loop:
            try:
                future.result(1.0)
            except Exception:  # a slow first read: reported at the next collection
                pass

    def _refresh_blocking(self) -> None:
        """Blocking face: read on the consumer's own thread (from ``outcome``, between
        batches), so the client is never used from two threads."""
        if not self._groups:
            return
        now = time.monotonic()
        if now < self._next_read:
            return
        assert self.depth_interval is not None
        self._next_read = now + min(self.depth_interval, 1.0)
        with self._groups_lock:
            due = [e for e in self._groups.values() if e.loop is None and self._due(e, now)]
        for entry in due:
            try:
                entry.store(entry.read())
            except (MQError, OSError) as exc:
                entry.failed(exc)
            finally:
                entry.refreshing = False

    def _handled(self, ctx: HandlerContext | AsyncHandlerContext, start: float,
                 error: BaseException | None) -> None:
        elapsed = time.perf_counter() - start
        entry = self._attrs(ctx)
        if error is None:
            self._process.record(elapsed, entry[3])
        elif not isinstance(error, ReleaseMessage):
            self._process.record(elapsed, {**entry[3], ERROR_TYPE: error_type(error)})
        if self.latency:
            stamp = ctx.message.timestamp
            if stamp is not None:
                self._latency.record(max(0.0, time.time() - stamp), entry[1])

    def outcome(self, ctx: HandlerContext | AsyncHandlerContext,
                outcome: Outcome) -> float | None:
        """Count the delivery (consumed) and its decision (``mqkit.consumer.outcomes``)."""
        entry = self._attrs(ctx)
        self._consumed.add(1, entry[2])
        error = outcome.error
        etype = None if error is None else error_type(error)
        key = (entry[1].get(SYSTEM), ctx.topic, ctx.group, outcome.kind, etype)
        attrs = self._outcome_attrs.get(key)
        if attrs is None:
            plain = {**entry[1], OUTCOME: outcome.kind.value}
            if etype is not None:
                plain[ERROR_TYPE] = etype
            attrs = self._outcome_attrs[key] = FrozenAttributes(plain)
        self._outcomes.add(1, attrs)
        return None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Metrics(_MetricsBase):
    """Metrics middleware for the blocking face's ``consumer.run(middleware=[...])``.

    ``meter_provider``: where the instruments live (default: the global one; a
    :class:`~mqkit.otel.MetricsRegistry` for ``/metrics``). ``depth_interval``: seconds
    between two reads of a group's depth (default 15; ``None``: no depth gauge). On this
    face the depth is read on the consumer's thread, between batches, once the interval
    passed: a consumer that receives nothing keeps reporting its last reading.
    ``latency``: record ``mqkit.message.latency``. One instance may serve several
    consumers; its counts add up.
    """

    def handle(self, ctx: HandlerContext, call_next: SyncNext) -> Any:
        start = time.perf_counter()
        try:
            result = call_next(ctx)
        except BaseException as exc:
            self._handled(ctx, start, exc)
            raise
        self._handled(ctx, start, None)
        return result

    def outcome(self, ctx: HandlerContext | AsyncHandlerContext,
                outcome: Outcome) -> float | None:
        super().outcome(ctx, outcome)
        self._refresh_blocking()
        return None


class AsyncMetrics(_MetricsBase):
    """:class:`Metrics` for the asyncio face's ``consumer.run`` and the service App.

    The group depth is read on the consumer's event loop (a task, never blocking it)
    whenever the gauge is collected and the last read is older than
    ``depth_interval``; a collection reports the previous reading (the first one waits
    up to 1 s for it when collected off the loop's thread).
    """

    async def handle(self, ctx: AsyncHandlerContext, call_next: AsyncNext) -> Any:
        start = time.perf_counter()
        try:
            result = await call_next(ctx)
        except BaseException as exc:
            self._handled(ctx, start, exc)
            raise
        self._handled(ctx, start, None)
        return result
