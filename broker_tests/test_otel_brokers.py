"""mqkit's tracing beside the OpenTelemetry contrib instrumentation of the client library it
wraps, on a real broker (issue 16, "done when": no duplicated or broken context).

Two libraries, each with its contrib instrumentation (both in the ``dev`` extra):

* redis-py and ``opentelemetry-instrumentation-redis`` (``RedisInstrumentor``): a CLIENT
  span per command sent through ``Redis.execute_command`` / pipelines, nothing
  propagated. mqkit's Redis adapter writes its commands on the connection directly, so
  the instrumentation traces none of mqkit's own traffic, only the application's;
* botocore (boto3) and ``opentelemetry-instrumentation-botocore``
  (``BotocoreInstrumentor``), on SQS (mqkit's sqs:// publishes to SNS): a CLIENT span per
  AWS call, and its SNS extension writes the context of its own ``{topic} send`` span
  into the message attributes of every ``Publish``: beside mqkit the message would carry
  that span's context, and the dead-letter copy a new trace (seen on this broker with
  ``instrument(client, client_spans=True)``). By default mqkit suppresses other
  instrumentations during its sends, so neither happens.

With the instrumentation installed, on both faces, a message sent under an application
span must be:

* sent in mqkit's ``send`` span, child of the application span;
* carrying exactly one trace context in its headers, the ``traceparent`` of mqkit's
  ``send`` span, unchanged across a retry and in the dead-letter copy;
* processed (``Tracing(parent=True)``) in ``process`` spans whose parent is that ``send``
  span, the handler's own call through the library (traced by the instrumentation) a
  child of its ``process`` span: one trace from the application span to every attempt,
  no span of that trace pointing to a parent missing from it.

URLs come from ``MQKIT_TEST_<BACKEND>_URL`` (``eval "$(scripts/brokers env)"``); without
one the test is skipped, or fails when ``MQKIT_REQUIRE_BACKENDS`` names the backend (CI),
as every broker test (``contract_tests.brokers.env_url``). The instrumentations of pika,
kafka-python and boto3's SQS resource (``-boto3sqs``) inject their own context into the
messages; docs/observability.md ("Beside the contrib instrumentations") says what that
does to mqkit's and the setting that avoids it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import pytest
import redis
from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import mqkit
import mqkit.aio
from contract_tests.brokers import env_url
from mqkit.otel import AsyncTracing, Tracing, instrument


def _redis_call(url: str) -> Callable[[], object]:
    client = redis.Redis.from_url(url)
    return lambda: client.get("stock:1")


def _sqs_call(url: str) -> Callable[[], object]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    scheme = "http" if query.get("tls", ["true"])[0] == "false" else "https"
    client = boto3.client(
        "sqs", endpoint_url=f"{scheme}://{parts.hostname}:{parts.port}",
        region_name=query.get("region", ["us-east-1"])[0],
        aws_access_key_id=unquote(parts.username or ""),
        aws_secret_access_key=unquote(parts.password or ""))
    return lambda: client.list_queues(MaxResults=1)


@dataclass(frozen=True)
class Library:
    """A client library mqkit wraps and its contrib instrumentation."""

    backend: str
    instrumentor: Callable[[], BaseInstrumentor]
    own_call: Callable[[str], Callable[[], object]]  # the handler's own library call
    own_span: str          # the name the instrumentation gives that call's span


LIBRARIES = {
    "redis": Library("redis", RedisInstrumentor, _redis_call, "GET"),
    "sqs": Library("sqs", BotocoreInstrumentor, _sqs_call, "SQS.ListQueues"),
}


class Traced:
    """An SDK provider exporting to memory, the library's instrumentation on it."""

    def __init__(self, library: Library) -> None:
        self.library = library
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())


@pytest.fixture(params=sorted(LIBRARIES))
def traced(request: pytest.FixtureRequest) -> Iterator[Traced]:
    traced = Traced(LIBRARIES[request.param])
    instrumentor = traced.library.instrumentor()
    instrumentor.instrument(tracer_provider=traced.provider)
    try:
        yield traced
    finally:
        instrumentor.uninstrument()
        traced.provider.shutdown()


def _policy(topic: str) -> mqkit.RetryPolicy:
    return mqkit.RetryPolicy(max_attempts=2, initial_backoff=0.0, jitter=0.0,
                             dead_letter_topic=f"{topic}-dlq")


def _fail(call: Callable[[], object], seen: list[dict[str, str]]) -> Any:
    """A handler that makes one call of its own through the library, then fails."""
    def handler(msg: Any) -> None:
        seen.append(dict(msg.headers))
        call()
        raise ValueError("cannot bill this")
    return handler


def _context_headers(headers: dict[str, str]) -> list[str]:
    return sorted(k for k in headers if "trace" in k.lower() or k.lower() == "baggage")


def _check(traced: Traced, seen: list[dict[str, str]], dead: list[dict[str, str]],
           topic: str) -> None:
    library = traced.library
    spans = traced.spans()
    (app,) = [s for s in spans if s.name == "checkout"]
    assert app.context is not None
    trace_id = app.context.trace_id
    (send,) = [s for s in spans if s.name == f"send {topic}"]
    assert send.context is not None and send.parent is not None
    assert send.parent.span_id == app.context.span_id
    theirs = [s for s in spans if s.instrumentation_scope is not None
              and s.instrumentation_scope.name.startswith("opentelemetry.instrumentation")]
    # in the trace, the instrumentation traced the handler's calls, none of mqkit's sends
    in_trace = {s.name for s in theirs
                if s.context is not None and s.context.trace_id == trace_id}
    assert in_trace == {library.own_span}, sorted(in_trace)
    # one context in the headers, mqkit's send span's, on every attempt and the dead letter
    expected = f"00-{trace_id:032x}-{send.context.span_id:016x}-"
    assert len(seen) == 2 and len(dead) == 1
    for headers in [*seen, *dead]:
        assert _context_headers(headers) == ["traceparent"], headers
        assert headers["traceparent"].startswith(expected), (headers, expected)
    # each attempt processed as a child of the send span, its own call a child of it
    process = [s for s in spans if s.name == f"process {topic}"]
    assert len(process) == 2
    own = [s for s in theirs if s.name == library.own_span and s.kind is SpanKind.CLIENT
           and s.context is not None and s.context.trace_id == trace_id]
    assert len(own) == 2, sorted(s.name for s in spans)
    for span in process:
        assert span.context is not None and span.context.trace_id == trace_id
        assert span.parent is not None and span.parent.span_id == send.context.span_id
        assert [s for s in own if s.parent is not None
                and s.parent.span_id == span.context.span_id]
    # no span of the trace points to a parent outside it (no broken chain)
    ours = {s.context.span_id for s in spans
            if s.context is not None and s.context.trace_id == trace_id}
    for span in spans:
        if span.context is not None and span.context.trace_id == trace_id and span is not app:
            assert span.parent is not None and span.parent.span_id in ours, span.name


def test_beside_the_contrib_instrumentation_blocking(traced: Traced) -> None:
    url = env_url(traced.library.backend)
    topic = f"otel-{uuid.uuid4().hex[:8]}"
    seen: list[dict[str, str]] = []
    dead: list[dict[str, str]] = []
    tracer = traced.provider.get_tracer("test")
    handler = _fail(traced.library.own_call(url), seen)
    with instrument(mqkit.connect(url), tracer_provider=traced.provider) as client:
        for t in (topic, f"{topic}-dlq"):
            client.admin.create_topic(t)
        client.admin.create_group(topic, "billing")
        client.admin.create_group(f"{topic}-dlq", "inspect")
        try:
            with client.producer(topic) as producer, \
                    tracer.start_as_current_span("checkout"):
                producer.send(b"order 1", headers={"tenant": "acme"})
            with client.consumer(topic, "billing") as consumer:
                consumer.run(handler, retry=_policy(topic), idle_timeout=2.0,
                             middleware=[Tracing(parent=True,
                                                 tracer_provider=traced.provider)])
            with client.consumer(f"{topic}-dlq", "inspect") as inspect:
                for msg in inspect.receive(10, timeout=5.0):
                    dead.append(dict(msg.headers))
                    msg.ack()
        finally:
            for t in (topic, f"{topic}-dlq"):
                client.admin.delete_topic(t)
    _check(traced, seen, dead, topic)


def test_beside_the_contrib_instrumentation_asyncio(traced: Traced) -> None:
    url = env_url(traced.library.backend)
    topic = f"otel-{uuid.uuid4().hex[:8]}"
    seen: list[dict[str, str]] = []
    dead: list[dict[str, str]] = []
    tracer = traced.provider.get_tracer("test")
    handler = _fail(traced.library.own_call(url), seen)

    async def main() -> None:
        client = instrument(mqkit.aio.connect(url), tracer_provider=traced.provider)
        async with client:
            for t in (topic, f"{topic}-dlq"):
                await client.admin.create_topic(t)
            await client.admin.create_group(topic, "billing")
            await client.admin.create_group(f"{topic}-dlq", "inspect")
            try:
                async with client.producer(topic) as producer:
                    with tracer.start_as_current_span("checkout"):
                        await producer.send(b"order 1", headers={"tenant": "acme"})
                async with client.consumer(topic, "billing") as consumer:
                    await consumer.run(
                        handler, retry=_policy(topic), idle_timeout=2.0,
                        middleware=[AsyncTracing(parent=True,
                                                 tracer_provider=traced.provider)])
                async with client.consumer(f"{topic}-dlq", "inspect") as inspect:
                    for msg in await inspect.receive(10, timeout=5.0):
                        dead.append(dict(msg.headers))
                        await msg.ack()
            finally:
                for t in (topic, f"{topic}-dlq"):
                    await client.admin.delete_topic(t)

    asyncio.run(main())
    _check(traced, seen, dead, topic)
