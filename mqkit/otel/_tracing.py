"""Spans and context propagation per the OpenTelemetry messaging semantic conventions.

Producer side (:class:`SendTracer`, a send hook added by :func:`mqkit.otel.instrument`):

- ``send`` (one message): a ``send {topic}`` span of kind PRODUCER whose context is the
  message's creation context, injected into its headers.
- ``send_batch``: a ``create {topic}`` span (PRODUCER) per message, injected into that
  message, and one ``send {topic}`` span (CLIENT) with
  ``messaging.batch.message_count`` linking to every creation context.
- ``send(wait=False)``: the ``create`` span when the message is buffered; the flush is
  one ``send`` span (CLIENT) linking to the buffered messages' contexts.
- A message that already carries a context (set by the caller, or a dead-letter copy
  carrying the original's) is not changed; its ``send`` span links to that context.

Consumer side (:class:`Tracing`, :class:`AsyncTracing`, middleware): a ``process
{topic}`` span (CONSUMER) around the handler, linked to the creation context (or its
child with ``parent=True``), then one ``{ack|nack|dead_letter|reject|drop|release}
{topic}`` settle span (CLIENT, child of the process span) per decision, with
``mqkit.outcome``.

While mqkit sends, other instrumentations are suppressed (the API's
suppress-instrumentation key; ``instrument(client, client_spans=True)`` lets them run), so
a contrib instrumentation of the client library neither duplicates the send span nor
rewrites the context mqkit put in the message.

Without an SDK (the API's no-op tracer) and with an empty current context, there is
nothing to trace or carry: sends and handled messages skip all of it (no span, no
injection, no header copy); a context carried in, an ambient span or baggage, or an SDK
set later, and the full path runs again (see ``_idle``).

The header budget: where a backend caps the number of headers (``max_headers``: SQS, 9
with mqkit's own attribute) and the message's own headers use it, ``tracestate`` goes
first, then ``traceparent``: the send span gets a ``mqkit.context_not_injected`` event
and a warning is logged once per topic; the send itself never fails for tracing.
"""

from __future__ import annotations

import builtins
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, NonRecordingSpan, SpanKind, Status, StatusCode

from .. import __version__
from .._errors import ConfigurationError, MQError
from .._logfields import SPAN_KEY, log_fields
from .._message import Message, new_message_id
from .._outcome import Outcome, OutcomeKind, ReleaseMessage

if TYPE_CHECKING:
    from collections.abc import Callable

    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.trace import Span, SpanContext, Tracer, TracerProvider

    from .._sync._client import Client
    from .._sync._middleware import HandlerContext
    from .._sync._middleware import Next as SyncNext
    from ..aio._client import AsyncClient
    from ..aio._middleware import AsyncHandlerContext
    from ..aio._middleware import Next as AsyncNext

__all__ = ["SCHEMA_URL", "AsyncTracing", "SendTracer", "Tracing", "messaging_system"]

log = logging.getLogger("mqkit")

# The messaging conventions followed (``messaging.operation.type``,
# ``messaging.consumer.group.name``, span kinds per operation type: 1.27 on).
SCHEMA_URL = "https://opentelemetry.io/schemas/1.27.0"

SYSTEM = "messaging.system"
OPERATION_TYPE = "messaging.operation.type"
OPERATION_NAME = "messaging.operation.name"
DESTINATION = "messaging.destination.name"
GROUP = "messaging.consumer.group.name"
MESSAGE_ID = "messaging.message.id"
BATCH_COUNT = "messaging.batch.message_count"
BODY_SIZE = "messaging.message.body.size"
ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
OUTCOME = "mqkit.outcome"

# ``messaging.system`` per URL scheme: the conventions' values where they define one
# (rabbitmq, kafka, aws_sqs, aws.sns); otherwise the scheme (redis, nats, memory).
_SYSTEMS = {"amqp": "rabbitmq", "amqps": "rabbitmq", "kafka": "kafka", "sqs": "aws_sqs",
            "sns+sqs": "aws_sqs", "redis": "redis", "rediss": "redis", "redis+sentinel": "redis",
            "rediss+sentinel": "redis", "redis+cluster": "redis", "rediss+cluster": "redis",
            "nats": "nats", "memory": "memory"}

# The settle span's ``messaging.operation.name`` per outcome (SETTLED: the handler
# settled the message itself, no settle span here).
_SETTLE_NAMES = {OutcomeKind.ACKED: "ack", OutcomeKind.RETRIED: "nack",
                 OutcomeKind.DEAD_LETTERED: "dead_letter", OutcomeKind.REJECTED: "reject",
                 OutcomeKind.DROPPED: "drop", OutcomeKind.RELEASED: "release"}
# The context key the contrib instrumentations skip their work under (defined by the API;
# the plain string is what they also accept, should the API's name ever move).
_SUPPRESS = getattr(otel_context, "_SUPPRESS_INSTRUMENTATION_KEY", "suppress_instrumentation")

# The most (topic, operation) / consumer attribute sets kept (more topics: built per use).
_CACHED = 1024
_FAILED = frozenset({OutcomeKind.RETRIED, OutcomeKind.DEAD_LETTERED, OutcomeKind.REJECTED,
                     OutcomeKind.DROPPED})

def messaging_system(scheme: str, *, sending: bool = False) -> str:
    """The ``messaging.system`` value for a URL scheme (``aws.sns`` when sending on
    ``sns+sqs``, whose sends go to SNS; the scheme itself where the conventions define
    no value)."""
    if sending and scheme == "sns+sqs":
        return "aws.sns"
    return _SYSTEMS.get(scheme, scheme)


def error_type(exc: BaseException) -> str:
    """``error.type``: the exception's class, as ``mqkit.Timeout``, ``ValueError`` or
    ``package.module.Class``."""
    cls = type(exc)
    module = cls.__module__
    if module == builtins.__name__:
        return cls.__qualname__
    if module.split(".", 1)[0] == "mqkit":
        return f"mqkit.{cls.__qualname__}"
    return f"{module}.{cls.__qualname__}"


def _server(url: Any, attrs: dict[str, Any]) -> dict[str, Any]:
    host, port = url.host, url.port
    if host and url.scheme != "memory":  # memory://name: a namespace, not a server
        attrs[SERVER_ADDRESS] = host
        if port:
            attrs[SERVER_PORT] = port
    return attrs


def _tracer(provider: TracerProvider | None) -> Tracer:
    return trace.get_tracer("mqkit", __version__, provider, schema_url=SCHEMA_URL)


_ProxyTracer, _NoOpTracer = trace.ProxyTracer, trace.NoOpTracer
_current_context = otel_context.get_current


def _noop(tracer: Tracer) -> bool:
    """Whether ``tracer`` certainly hands out no-op spans now: the API's ``NoOpTracer``,
    or its ``ProxyTracer`` while no SDK provider is set (the test the proxy itself makes
    at each ``start_span``: its ``_real_tracer`` unset, the API's ``_TRACER_PROVIDER``
    unset). Those two names are opentelemetry-api internals: were they ever missing, the
    answer is ``False`` (the full path), never a wrong ``True``."""
    if type(tracer) is _ProxyTracer:
        return (getattr(tracer, "_real_tracer", True) is None
                and getattr(trace, "_TRACER_PROVIDER", True) is None)
    return isinstance(tracer, _NoOpTracer)


def _idle(tracer: Tracer) -> bool:
    """Nothing to trace and nothing to carry (the fast path of the API without an SDK):
    ``tracer`` makes no-op spans (:func:`_noop`) and the current context is empty (no
    span, no baggage), so a span would be invalid and the propagators would write
    nothing."""
    return _noop(tracer) and not _current_context()


def _fail(span: Span, exc: BaseException) -> None:
    span.set_attribute(ERROR_TYPE, error_type(exc))
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


def _carried(propagator: TextMapPropagator, headers: Mapping[str, str]
             ) -> tuple[otel_context.Context, SpanContext] | None:
    """The context a message carries in its headers, or ``None``."""
    if not headers:
        return None
    ctx = propagator.extract(headers)
    carried = trace.get_current_span(ctx).get_span_context()
    return (ctx, carried) if carried.is_valid else None


class SendTracer:
    """The send hook :func:`mqkit.otel.instrument` adds (see the module docstring).

    ``tracer_provider`` (default: the global one) and ``propagator`` (default: the
    global one at each send, ``opentelemetry.propagate``) may be given.

    ``client_spans``: ``False`` (default) suppresses other OpenTelemetry
    instrumentations while mqkit sends (the API's suppress-instrumentation context key,
    which the contrib instrumentations of pika, botocore, redis-py... honour), so an
    instrumentation of the client library neither adds its own spans under mqkit's send
    span nor rewrites the trace context mqkit put in the message (botocore's SNS
    extension and pika's do: the dead-letter copy would then carry a new trace).
    ``True`` lets them run.
    """

    def __init__(self, client: Client | AsyncClient, *,
                 tracer_provider: TracerProvider | None = None,
                 propagator: TextMapPropagator | None = None,
                 client_spans: bool = False) -> None:
        if not isinstance(client_spans, bool):
            raise ConfigurationError(
                f"client_spans must be a bool, got {type(client_spans).__name__}")
        self._client = client
        self._client_spans = client_spans
        self._tracer = _tracer(tracer_provider)
        self._propagator = propagator
        self._attrs = _server(client.url, {SYSTEM: messaging_system(client.url.scheme,
                                                                    sending=True)})
        self._warned: set[str] = set()
        # (topic, operation) -> (span name, attributes): built once, never changed
        self._spans: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}

    def __call__(self, operation: str, topic: str,
                 messages: list[Message]) -> Callable[[BaseException | None], None] | None:
        tracer = self._tracer
        if _idle(tracer):
            return None  # the messages are left as they are, no span
        propagator = self._propagator or propagate.get_global_textmap()
        if operation == "create":
            name, attrs = self._span(topic, "create")
            span = tracer.start_span(name, kind=SpanKind.PRODUCER, attributes=attrs)
            if _carried(propagator, messages[0].headers) is None:
                messages[0] = self._inject(span, messages[0], topic, propagator)
            if span.is_recording():
                span.set_attribute(MESSAGE_ID, messages[0].id or "")
            span.end()
            return None
        if operation == "send":
            msg = messages[0]
            found = _carried(propagator, msg.headers)
            name, attrs = self._span(topic, "send")
            if found is None:
                span = tracer.start_span(name, kind=SpanKind.PRODUCER, attributes=attrs)
                msg = messages[0] = self._inject(span, msg, topic, propagator)
            else:
                span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attrs,
                                         links=[Link(found[1])])
            if msg.id is not None and span.is_recording():
                span.set_attribute(MESSAGE_ID, msg.id)
            return self._finisher(span)
        # send_batch, flush: one send span linking to each message's creation context
        links = []
        for i, msg in enumerate(messages):
            found = _carried(propagator, msg.headers)
            if found is not None:
                links.append(Link(found[1]))
            elif operation == "send_batch":
                name, attrs = self._span(topic, "create")
                span = tracer.start_span(name, kind=SpanKind.PRODUCER, attributes=attrs)
                messages[i] = self._inject(span, msg, topic, propagator)
                if span.is_recording():
                    span.set_attribute(MESSAGE_ID, messages[i].id or "")
                span.end()
                created = span.get_span_context()
                if created.is_valid:
                    links.append(Link(created))
        name, attrs = self._span(topic, "send")
        attrs = {**attrs, BATCH_COUNT: len(messages)}
        return self._finisher(tracer.start_span(name, kind=SpanKind.CLIENT,
                                                attributes=attrs, links=links))

    def _span(self, topic: str, operation: str) -> tuple[str, dict[str, Any]]:
        """The span name and attributes of ``operation`` on ``topic``, built once per
        pair (the dict is shared: never changed after it is built)."""
        found = self._spans.get((topic, operation))
        if found is None:
            attrs = dict(self._attrs)
            attrs[OPERATION_TYPE] = attrs[OPERATION_NAME] = operation
            attrs[DESTINATION] = topic
            found = (f"{operation} {topic}", attrs)
            if len(self._spans) < _CACHED:
                self._spans[(topic, operation)] = found
        return found

    def _finisher(self, span: Span) -> Callable[[BaseException | None], None] | None:
        """What ends ``span`` when the send ends, with ``span`` current meanwhile;
        ``None`` for a span that records nothing and has no valid context (the API
        without an SDK): nothing to end, nothing to make current."""
        if not span.is_recording() and not span.get_span_context().is_valid:
            return None
        current = trace.set_span_in_context(span)
        if not self._client_spans:
            current = otel_context.set_value(_SUPPRESS, True, current)
        token = otel_context.attach(current)

        def finish(error: BaseException | None) -> None:
            if error is not None:
                _fail(span, error)
            span.end()
            otel_context.detach(token)
        return finish

    def _max_headers(self) -> int | None:
        try:
            return self._client.capabilities.max_headers
        except MQError:
            return None

    def _inject(self, span: Span, msg: Message, topic: str,
                propagator: TextMapPropagator) -> Message:
        """``msg`` with the context of ``span`` in its headers (and an id, so the span
        can name it)."""
        carrier: dict[str, str] = {}
        if span.get_span_context().is_valid or otel_context.get_current():
            propagator.inject(carrier, context=trace.set_span_in_context(span))
        if not carrier and (msg.id is not None or not span.is_recording()):
            return msg  # nothing to carry (no valid context): no copy
        headers = dict(msg.headers)
        ident = msg.id or new_message_id()
        limit = self._max_headers()
        dropped = []
        for name in sorted(carrier, key=lambda n: n != "traceparent"):
            if limit is not None and name not in headers and len(headers) >= limit:
                dropped.append(name)
                continue
            headers[name] = carrier[name]
        if dropped:
            span.add_event("mqkit.context_not_injected",
                           {"mqkit.headers": dropped, "mqkit.header_limit": limit or 0})
            if topic not in self._warned:
                self._warned.add(topic)
                log.warning("mqkit: messages to %s use all %s headers the backend allows; "
                            "%s not carried (trace context lost for those messages)",
                            topic, limit, ", ".join(dropped),
                            extra=log_fields(topic, None, ident, span=span))
        return dataclasses.replace(msg, headers=headers, id=ident)


class _ConsumerSpans:
    """One consumer's span names and attributes, built once (the dicts are shared by
    every span: never changed after they are built)."""

    __slots__ = ("_settle", "attrs", "process", "topic")

    def __init__(self, topic: str, attrs: dict[str, Any]) -> None:
        self.topic = topic
        self.attrs = attrs
        self.process = f"process {topic}"
        self._settle: dict[OutcomeKind, tuple[str, dict[str, Any]]] = {}

    def settle(self, kind: OutcomeKind) -> tuple[str, dict[str, Any]] | None:
        """The settle span's name and attributes for ``kind`` (``None``: no span)."""
        found = self._settle.get(kind)
        if found is None:
            name = _SETTLE_NAMES.get(kind)
            if name is None:
                return None
            attrs = dict(self.attrs)
            attrs[OPERATION_TYPE] = "settle"
            attrs[OPERATION_NAME] = name
            attrs[OUTCOME] = kind.value
            found = self._settle[kind] = (f"{name} {self.topic}", attrs)
        return found


class ReceiveTracer:
    """The receive hook :func:`mqkit.otel.instrument` adds: a ``receive {topic}`` span
    (kind CONSUMER, ``messaging.operation.type`` ``receive``) per receive that returned
    messages, from when the receive began to when it returned, with the consumer group
    and ``messaging.batch.message_count``. It links to nothing (the ``process`` span of
    each message links to, or is a child of, its producer's context) and is a root or
    the child of whatever span is current around the receive. An empty receive (a long
    poll that timed out) makes no span. Without an SDK it costs a check per receive.
    """

    def __init__(self, client: Client | AsyncClient, *,
                 tracer_provider: TracerProvider | None = None) -> None:
        self._tracer = _tracer(tracer_provider)
        self._attrs = _server(client.url, {SYSTEM: messaging_system(client.url.scheme),
                                           OPERATION_TYPE: "receive",
                                           OPERATION_NAME: "receive"})
        # (topic, group) -> (span name, attributes): built once, never changed
        self._spans: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}

    def __call__(self, topic: str, group: str, messages: Sequence[Any],
                 started_ns: int) -> None:
        tracer = self._tracer
        if _noop(tracer):
            return
        found = self._spans.get((topic, group))
        if found is None:
            attrs = {**self._attrs, DESTINATION: topic, GROUP: group}
            found = (f"receive {topic}", attrs)
            if len(self._spans) < _CACHED:
                self._spans[(topic, group)] = found
        name, attrs = found
        span = tracer.start_span(name, kind=SpanKind.CONSUMER, start_time=started_ns,
                                 attributes={**attrs, BATCH_COUNT: len(messages)})
        if len(messages) == 1 and span.is_recording():
            span.set_attribute(MESSAGE_ID, messages[0].id or "")
        span.end()


class _TracingBase:
    """What both faces' middleware share: the process span and the settle span."""

    def __init__(self, *, parent: bool = False, settle_spans: bool = True,
                 body_size: bool = True, tracer_provider: TracerProvider | None = None,
                 propagator: TextMapPropagator | None = None) -> None:
        for name, value in (("parent", parent), ("settle_spans", settle_spans),
                            ("body_size", body_size)):
            if not isinstance(value, bool):
                raise ConfigurationError(f"{name} must be a bool, got {type(value).__name__}")
        self.parent = parent
        self.settle_spans = settle_spans
        self.body_size = body_size
        self._tracer = _tracer(tracer_provider)
        self._propagator = propagator
        self._consumers: dict[int, tuple[object, _ConsumerSpans]] = {}

    def _base(self, ctx: HandlerContext | AsyncHandlerContext) -> _ConsumerSpans:
        consumer = getattr(ctx.message, "_consumer", None)
        cached = self._consumers.get(id(consumer))
        if cached is not None and cached[0] is consumer:
            return cached[1]
        url = getattr(getattr(consumer, "_connection", None), "url", None)
        attrs: dict[str, Any] = {OPERATION_TYPE: "process", OPERATION_NAME: "process",
                                 DESTINATION: ctx.topic, GROUP: ctx.group}
        if url is not None:
            attrs[SYSTEM] = messaging_system(url.scheme)
            _server(url, attrs)
        spans = _ConsumerSpans(ctx.topic, attrs)
        if consumer is not None and len(self._consumers) < _CACHED:
            self._consumers[id(consumer)] = (consumer, spans)
        return spans

    def _start(self, ctx: HandlerContext | AsyncHandlerContext) -> tuple[Span, object] | None:
        """Start the process span; ``(span, token)``, the token ``None`` when the span
        was not made current (it records nothing and has no valid context). ``None``, no
        span at all, on the API without an SDK with nothing current and no context that
        would become the parent (the fast path: such a span would be invalid)."""
        msg = ctx.message
        noop = _noop(self._tracer)
        if noop and not _current_context() and not (self.parent and msg.headers):
            return None
        propagator = self._propagator or propagate.get_global_textmap()
        found = _carried(propagator, msg.headers)
        base = self._base(ctx)
        attrs = base.attrs  # shared by every span of this consumer: never changed
        if not noop:  # the per-message attributes, at creation (samplers see them)
            attrs = dict(attrs)
            if msg.id is not None:
                attrs[MESSAGE_ID] = msg.id
            if self.body_size:
                attrs[BODY_SIZE] = len(msg.body)
        links = None
        parent = None
        if found is not None:
            links = [Link(found[1])]
            if self.parent:
                parent = found[0]
                ambient = trace.get_current_span().get_span_context()
                if ambient.is_valid:
                    links.append(Link(ambient))
        span = self._tracer.start_span(base.process, context=parent,
                                       kind=SpanKind.CONSUMER, attributes=attrs,
                                       links=links)
        ctx.state[SPAN_KEY] = span  # the settle span's parent; the log records' trace
        if not span.is_recording() and not span.get_span_context().is_valid:
            return span, None
        return span, otel_context.attach(trace.set_span_in_context(span))

    @staticmethod
    def _end(span: Span, token: object, error: BaseException | None) -> None:
        if error is not None and not isinstance(error, ReleaseMessage):
            _fail(span, error)
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]
        span.end()

    def outcome(self, ctx: HandlerContext | AsyncHandlerContext,
                outcome: Outcome) -> float | None:
        """A settle span for the loop's decision: a child of the process span, made
        only when that span records (none without an SDK, none for a sampled-out
        message)."""
        if not self.settle_spans:
            return None
        state = ctx._state  # (not ctx.state: no dict made for a message without a span)
        span = None if state is None else state.get(SPAN_KEY)
        if span is None or isinstance(span, NonRecordingSpan):  # (ended: not recording)
            return None
        found = self._base(ctx).settle(outcome.kind)
        if found is None:
            return None
        name, base = found
        attrs = {**base, "mqkit.attempt": outcome.attempts}
        if ctx.message.id is not None:
            attrs[MESSAGE_ID] = ctx.message.id
        if outcome.delay is not None:
            attrs["mqkit.retry.delay"] = outcome.delay
        settle = self._tracer.start_span(name, context=trace.set_span_in_context(span),
                                         kind=SpanKind.CLIENT, attributes=attrs)
        if outcome.kind in _FAILED and outcome.error is not None:
            settle.set_attribute(ERROR_TYPE, error_type(outcome.error))
        settle.end()
        return None


class Tracing(_TracingBase):
    """Tracing middleware for the blocking face's ``consumer.run(middleware=[...])``.

    ``parent``: ``False`` (default, as the conventions recommend) links the process
    span to the producer's context; ``True`` makes it the parent (and links the ambient
    span, if any). ``settle_spans``: a settle span per decision (``mqkit.outcome``).
    ``body_size``: ``messaging.message.body.size`` (Opt-In in the conventions).
    """

    def handle(self, ctx: HandlerContext, call_next: SyncNext) -> Any:
        started = self._start(ctx)
        if started is None:
            return call_next(ctx)
        span, token = started
        try:
            result = call_next(ctx)
        except BaseException as exc:
            self._end(span, token, exc)
            raise
        self._end(span, token, None)
        return result


class AsyncTracing(_TracingBase):
    """:class:`Tracing` for the asyncio face's ``consumer.run`` and the service App."""

    async def handle(self, ctx: AsyncHandlerContext, call_next: AsyncNext) -> Any:
        started = self._start(ctx)
        if started is None:
            return await call_next(ctx)
        span, token = started
        try:
            result = await call_next(ctx)
        except BaseException as exc:
            self._end(span, token, exc)
            raise
        self._end(span, token, None)
        return result
