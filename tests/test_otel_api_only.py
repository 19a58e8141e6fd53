"""mqkit.otel on the OpenTelemetry API with no SDK configured (the default global
providers): the fast path does nothing, and stops doing nothing the moment there is
something to trace or carry.

Each case runs in a fresh interpreter: the global providers are process state, set once.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PRELUDE = '''
import asyncio, uuid
import mqkit, mqkit.aio
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from mqkit.otel import AsyncTracing, Tracing, instrument

TRACE, SPAN = 0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7
CARRIED = f"00-{TRACE:032x}-{SPAN:016x}-01"

def url():
    return f"memory://api-{uuid.uuid4().hex[:8]}"

def setup(client):
    client.admin.create_topic("t")
    client.admin.create_group("t", "g")
    client.admin.create_topic("out")
    client.admin.create_group("out", "g")

def drain(client, topic):
    with client.consumer(topic, "g") as c:
        return [dict(m.headers) for m in c.receive(10, timeout=0.2)]
'''


def _run(code: str) -> None:
    done = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
                          check=False, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr


def test_without_sdk_nothing_is_carried_and_the_handler_sees_no_span() -> None:
    _run('''
    seen = []
    with instrument(mqkit.connect(url())) as client:
        setup(client)
        with client.producer("t") as p:
            p.send(b"a")
            p.send_batch([b"b", b"c"])
            p.send(b"d", wait=False)
        def handler(msg):
            seen.append((dict(msg.headers),
                         trace.get_current_span().get_span_context().is_valid))
        with client.consumer("t", "g") as c:
            stats = c.run(handler, idle_timeout=0.3, middleware=[Tracing(parent=True)])
    assert stats.acked == 4, stats
    assert seen == [({}, False)] * 4, seen
    ''')


def test_without_sdk_a_carried_context_still_travels_through_the_handler() -> None:
    """Tracing(parent=True) on the API alone: the handler runs in the producer's context
    (a non-recording span), so what it sends carries that trace on."""
    _run('''
    async def main(parent):
        out = []
        async with instrument(mqkit.aio.connect(url())) as client:
            await client.admin.create_topic("t")
            await client.admin.create_group("t", "g")
            await client.admin.create_topic("out")
            async with client.producer("t") as p:
                await p.send(b"a", headers={"traceparent": CARRIED})
            async def handler(msg):
                async with client.producer("out") as o:
                    await o.send(b"reply")
                out.append(trace.get_current_span().get_span_context())
            async with client.consumer("t", "g") as c:
                await c.run(handler, idle_timeout=0.3,
                            middleware=[AsyncTracing(parent=parent)])
        return out
    (ctx,) = asyncio.run(main(True))
    assert (ctx.trace_id, ctx.span_id) == (TRACE, SPAN), ctx
    (ctx,) = asyncio.run(main(False))  # linked, not parented: nothing current
    assert not ctx.is_valid

    with instrument(mqkit.connect(url())) as client:
        setup(client)
        with client.producer("t") as p:
            p.send(b"a", headers={"traceparent": CARRIED})
        def handler(msg):
            with client.producer("out") as o:
                o.send(b"reply")
        with client.consumer("t", "g") as c:
            c.run(handler, idle_timeout=0.3, middleware=[Tracing(parent=True)])
        (reply,) = drain(client, "out")
    assert reply["traceparent"] == CARRIED, reply
    ''')


def test_without_sdk_an_ambient_context_is_carried() -> None:
    _run('''
    ambient = NonRecordingSpan(SpanContext(TRACE, SPAN, is_remote=False,
                                           trace_flags=TraceFlags(1)))
    with instrument(mqkit.connect(url())) as client:
        setup(client)
        with client.producer("t") as p, trace.use_span(ambient):
            p.send(b"a")
            p.send_batch([b"b"])
        got = drain(client, "t")
    assert [h.get("traceparent") for h in got] == [CARRIED, CARRIED], got
    ''')


def test_an_sdk_set_later_is_used_at_once() -> None:
    """The fast path asks at every message: spans and metrics start when a global SDK
    provider is set, with no new client or middleware."""
    _run('''
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracing = Tracing()
    with instrument(mqkit.connect(url())) as client:
        setup(client)
        with client.producer("t") as p:
            p.send(b"before")
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            trace.set_tracer_provider(provider)
            metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
            p.send(b"after")
        with client.consumer("t", "g") as c:
            c.run(lambda m: None, idle_timeout=0.3, middleware=[tracing])
    names = [s.name for s in exporter.get_finished_spans()]
    assert sorted(names) == ["ack t", "ack t", "process t", "process t", "receive t",
                             "send t"], names
    sent = [m for rm in reader.get_metrics_data().resource_metrics
            for sm in rm.scope_metrics for m in sm.metrics
            if m.name == "messaging.client.sent.messages"]
    assert sent and sent[0].data.data_points[0].value == 1, sent
    ''')
