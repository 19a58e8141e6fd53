"""CONTRACT P: traces and metrics through ``mqkit.otel`` (behaviours 65-66).

Run with the OpenTelemetry SDK's in-memory exporter and reader, passed explicitly (no
global provider is touched). ``mqkit.otel`` is an optional extra: where the SDK is not
installed the cases are skipped by ``pytest.importorskip`` (mqkit's own CI installs it).
"""

from __future__ import annotations

from typing import Any

import pytest

import mqkit
from mqkit import Feature, Message

from ._env import Env
from ._proxy import unwrap

pytestmark = pytest.mark.asyncio
RETRY = mqkit.RetryPolicy(max_attempts=2, initial_backoff=0.05, max_backoff=0.1, jitter=0)


class Otel:
    """An SDK tracer and meter provider with in-memory export, and the mqkit pieces for
    the case's face (``Tracing``/``Metrics`` on the blocking face, ``Async*`` else)."""

    def __init__(self, env: Env, *, parent: bool = False) -> None:
        pytest.importorskip("opentelemetry.sdk")
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )

        from mqkit import otel

        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        blocking = env.face == "sync"
        tracing = otel.Tracing if blocking else otel.AsyncTracing
        metrics = otel.Metrics if blocking else otel.AsyncMetrics
        self.middleware = [tracing(tracer_provider=self.tracer_provider, parent=parent),
                           metrics(meter_provider=self.meter_provider)]
        # the send hooks go on the real client of either face (the case holds a proxy)
        otel.instrument(unwrap(env.client), tracer_provider=self.tracer_provider,
                        meter_provider=self.meter_provider)

    def spans(self, name: str) -> list[Any]:
        return [s for s in self.exporter.get_finished_spans() if s.name == name]

    def total(self, name: str, **attrs: str) -> float:
        """Sum over the points of ``name`` whose attributes include ``attrs`` (values of
        counters, counts of histograms)."""
        from opentelemetry.sdk.metrics.export import NumberDataPoint

        data = self.reader.get_metrics_data()
        total = 0.0
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name != name:
                        continue
                    for point in metric.data.data_points:
                        have = dict(point.attributes or {})
                        if all(have.get(k) == v for k, v in attrs.items()):
                            total += (point.value if isinstance(point, NumberDataPoint)
                                      else point.count)
        return total

    def close(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


async def _flaky_run(env: Env, otel: Otel, topic: str) -> mqkit.RunStats:
    """Handle ``ok``, ``flaky`` (fails its first attempt) and ``bad`` (always fails)."""
    seen: dict[bytes, int] = {}

    async def handler(msg: Any) -> None:
        seen[msg.body] = seen.get(msg.body, 0) + 1
        if msg.body == b"bad" or (msg.body == b"flaky" and seen[msg.body] == 1):
            raise ValueError(f"cannot process {msg.body!r}")

    async with env.client.consumer(topic, "g") as consumer:
        stats: mqkit.RunStats = await consumer.run(
            handler, retry=RETRY, idle_timeout=4.0, middleware=otel.middleware)
    return stats


@pytest.mark.contract(65)
@pytest.mark.parametrize("parent", [False, True], ids=["link", "parent"])
async def test_c65_a_message_is_processed_in_its_senders_trace(env: Env,
                                                               parent: bool) -> None:
    env.require(Feature.NACK, Feature.DEAD_LETTER)
    topic = await env.topic("g")
    otel = Otel(env, parent=parent)
    try:
        from opentelemetry import trace

        tracer = otel.tracer_provider.get_tracer("contract")
        traces: dict[bytes, int] = {}
        producer = env.client.producer(topic)
        for body in (b"ok", b"flaky", b"bad"):
            with tracer.start_as_current_span(f"request {body!r}") as request:
                traces[body] = request.get_span_context().trace_id
                await producer.send(body)
        stats = await _flaky_run(env, otel, topic)
        assert (stats.acked, stats.retried, stats.dead_lettered) == (2, 2, 1)

        sends = otel.spans(f"send {topic}")
        assert sorted(s.context.trace_id for s in sends) == sorted(traces.values())
        processed: dict[int, list[Any]] = {}
        for span in otel.spans(f"process {topic}"):
            if parent:  # a child of the send: the same trace
                trace_id = span.context.trace_id
                assert span.parent is not None
            else:  # its own trace, linked to the send's context
                assert len(span.links) == 1, span.links
                trace_id = span.links[0].context.trace_id
            processed.setdefault(trace_id, []).append(span)
        # every attempt, the retried ones included, belongs to its sender's trace
        assert {body: len(processed.get(t, [])) for body, t in traces.items()} == {
            b"ok": 1, b"flaky": 2, b"bad": 2}
        failed = [s for s in processed[traces[b"bad"]]
                  if s.status.status_code == trace.StatusCode.ERROR]
        assert len(failed) == 2

        # the dead letter carries the original context: findable from the trace
        dlq = env.client.dead_letter_topic(topic)
        async with env.client.consumer(dlq, mqkit.DEAD_LETTER_GROUP) as letters:
            [dead] = await env.collect(letters, 1, settle_wait=0.5)
        carried = trace.get_current_span(
            _extract(dict(dead.headers))).get_span_context().trace_id
        assert carried == traces[b"bad"]
    finally:
        otel.close()


def _extract(headers: dict[str, str]) -> Any:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract(headers)


@pytest.mark.contract(66)
async def test_c66_metrics_count_exactly_what_was_sent_and_decided(env: Env) -> None:
    env.require(Feature.NACK, Feature.DEAD_LETTER)
    topic = await env.topic("g")
    otel = Otel(env)
    try:
        await env.client.producer(topic).send(b"ok")
        await env.client.producer(topic).send_batch([Message(b"flaky"), Message(b"bad")])
        stats = await _flaky_run(env, otel, topic)
        assert (stats.acked, stats.retried, stats.dead_lettered) == (2, 2, 1)
        dlq = env.client.dead_letter_topic(topic)
        common = {"messaging.destination.name": topic,
                  "messaging.consumer.group.name": "g"}
        assert otel.total("messaging.client.sent.messages",
                          **{"messaging.destination.name": topic}) == 3
        assert otel.total("messaging.client.sent.messages",
                          **{"messaging.destination.name": dlq}) == 1
        assert otel.total("messaging.client.consumed.messages", **common) == 5
        outcomes = {kind: otel.total("mqkit.consumer.outcomes", **common,
                                     **{"mqkit.outcome": kind})
                    for kind in ("acked", "retried", "dead_lettered", "rejected")}
        assert outcomes == {"acked": 2, "retried": 2, "dead_lettered": 1, "rejected": 0}
        assert otel.total("messaging.process.duration", **common) == 5
    finally:
        otel.close()
