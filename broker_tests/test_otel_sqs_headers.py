"""On SQS (10 message attributes, one of them mqkit's), the trace context still travels
when the user's headers use the other nine: past the budget, headers ride inside mqkit's
own attribute (issue 16, item 2). Real moto server from ``MQKIT_TEST_SQS_URL``."""

from __future__ import annotations

import uuid

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import mqkit
from contract_tests.brokers import env_url
from mqkit.otel import instrument


def test_the_trace_context_travels_when_the_user_headers_fill_the_attributes() -> None:
    provider = TracerProvider()
    tracer = provider.get_tracer("test")
    topic = f"otel-sqs-{uuid.uuid4().hex[:8]}"
    user = {f"h{i}": f"v{i}" for i in range(9)}  # every attribute left beside mqkit's
    with instrument(mqkit.connect(env_url("sqs")), tracer_provider=provider) as client:
        client.admin.create_topic(topic)
        client.admin.create_group(topic, "g")
        try:
            with tracer.start_as_current_span("request") as span:
                trace_id = span.get_span_context().trace_id
                client.producer(topic).send(b"x", headers=user)
            with client.consumer(topic, "g") as consumer:
                [msg] = consumer.receive(1, timeout=10)
                msg.ack()
        finally:
            client.admin.delete_topic(topic)
    headers = dict(msg.headers)
    assert {k: headers[k] for k in user} == user
    carried = TraceContextTextMapPropagator().extract(headers)
    from opentelemetry import trace

    assert trace.get_current_span(carried).get_span_context().trace_id == trace_id
    provider.shutdown()
