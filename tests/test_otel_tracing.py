"""mqkit.otel: spans per the messaging conventions and trace context in the headers
(memory://, both faces, the SDK's in-memory exporter)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import mqkit
import mqkit.aio
from mqkit.otel import AsyncTracing, SendTracer, Tracing, instrument, messaging_system
from mqkit.service import App, TestApp

ROOT = Path(__file__).resolve().parent.parent
FAST = mqkit.RetryPolicy(max_attempts=2, initial_backoff=0.0, jitter=0.0)


class Traced:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("test")

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans()
                if name is None or s.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.spans(name)
        assert len(found) == 1, [s.name for s in self.spans()]
        return found[0]


@pytest.fixture
def otel() -> Iterator[Traced]:
    traced = Traced()
    yield traced
    traced.provider.shutdown()


def _url() -> str:
    return f"memory://otel-{uuid.uuid4().hex[:8]}"


def _traceparent(span: ReadableSpan) -> str:
    ctx = span.context
    assert ctx is not None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-"


def _linked(span: ReadableSpan) -> list[int]:
    return [link.context.span_id for link in span.links]


def _id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


# -- import cost and the missing extra ---------------------------------------------------

def _python(code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get(
        "PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=60, check=False)


def test_import_mqkit_does_not_import_opentelemetry() -> None:
    done = _python("import sys, mqkit, mqkit.aio, mqkit.middleware, mqkit.service\n"
                   "bad = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
                   "print(bad)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_without_the_extra_the_module_names_it() -> None:
    done = _python("import sys\n"
                   "sys.modules['opentelemetry'] = None  # as if not installed\n"
                   "import mqkit\n"
                   "try:\n"
                   "    import mqkit.otel\n"
                   "except mqkit.AdapterNotInstalled as exc:\n"
                   "    print('refused:', exc)\n")
    assert done.returncode == 0, done.stderr
    assert "refused:" in done.stdout and "mqkit-sdk[otel]" in done.stdout


def test_messaging_system_values() -> None:
    assert [messaging_system(s) for s in ("amqp", "amqps", "kafka", "sqs", "sns+sqs",
                                          "redis", "rediss", "nats", "memory")] == [
        "rabbitmq", "rabbitmq", "kafka", "aws_sqs", "aws_sqs", "redis", "redis", "nats",
        "memory"]
    assert messaging_system("sns+sqs", sending=True) == "aws.sns"


# -- the blocking face ------------------------------------------------------------------

def test_send_then_process_links_across_the_headers(otel: Traced) -> None:
    seen: list[dict[str, str]] = []
    with instrument(mqkit.connect(_url()), tracer_provider=otel.provider) as client:
        client.admin.create_topic("orders")
        client.admin.create_group("orders", "billing")
        with otel.tracer.start_as_current_span("request"), client.producer("orders") as p:
            ident = p.send(b"hello", headers={"tenant": "a"})
        with client.consumer("orders", "billing") as consumer:
            stats = consumer.run(lambda m: seen.append(dict(m.headers)),
                                 middleware=[Tracing(tracer_provider=otel.provider)],
                                 idle_timeout=0.3)
    assert stats.acked == 1
    request, send = otel.one("request"), otel.one("send orders")
    assert send.kind is SpanKind.PRODUCER
    assert send.parent is not None and send.parent.span_id == _id(request)
    assert _attrs(send) == {
        "messaging.system": "memory", "messaging.operation.type": "send",
        "messaging.operation.name": "send", "messaging.destination.name": "orders",
        "messaging.message.id": ident}
    assert seen[0]["tenant"] == "a"
    assert seen[0]["traceparent"].startswith(_traceparent(send))  # send is the creation ctx
    process = otel.one("process orders")
    assert process.kind is SpanKind.CONSUMER
    assert _linked(process) == [_id(send)]
    assert process.parent is None  # linked, not parented (the default)
    assert _attrs(process) == {
        "messaging.system": "memory", "messaging.operation.type": "process",
        "messaging.operation.name": "process", "messaging.destination.name": "orders",
        "messaging.consumer.group.name": "billing", "messaging.message.id": ident,
        "messaging.message.body.size": 5}
    settle = otel.one("ack orders")
    assert settle.kind is SpanKind.CLIENT
    assert settle.parent is not None and settle.parent.span_id == _id(process)
    assert _attrs(settle)["messaging.operation.type"] == "settle"
    assert _attrs(settle)["mqkit.outcome"] == "acked"


def test_parent_mode_puts_process_in_the_producers_trace(otel: Traced) -> None:
    with instrument(mqkit.connect(_url()), tracer_provider=otel.provider) as client:
        client.admin.create_topic("t")
        client.admin.create_group("t", "g")
        with client.producer("t") as p:
            p.send(b"x")
        with client.consumer("t", "g") as consumer:
            consumer.run(lambda m: None, idle_timeout=0.3,
                         middleware=[Tracing(parent=True, settle_spans=False,
                                             body_size=False, tracer_provider=otel.provider)])
    send, process = otel.one("send t"), otel.one("process t")
    assert process.parent is not None and process.parent.span_id == _id(send)
    assert process.context is not None and send.context is not None
    assert process.context.trace_id == send.context.trace_id
    assert _linked(process) == [_id(send)]
    assert "messaging.message.body.size" not in _attrs(process)
    assert not otel.spans("ack t")


def test_batch_is_one_send_span_with_a_create_context_per_message(otel: Traced) -> None:
    carried: list[str] = []
    with instrument(mqkit.connect(_url()), tracer_provider=otel.provider) as client:
        client.admin.create_topic("t")
        client.admin.create_group("t", "g")
        with client.producer("t") as p:
            p.send_batch([b"1", b"2", b"3"])
        with client.consumer("t", "g") as consumer:
            consumer.run(lambda m: carried.append(m.headers["traceparent"]),
                         idle_timeout=0.3, middleware=[Tracing(tracer_provider=otel.provider)])
    creates = otel.spans("create t")
    send = otel.one("send t")
    assert len(creates) == 3
    assert all(c.kind is SpanKind.PRODUCER for c in creates)
    assert send.kind is SpanKind.CLIENT  # the creation contexts are the create spans
    assert _attrs(send)["messaging.batch.message_count"] == 3
    assert sorted(_linked(send)) == sorted(_id(c) for c in creates)
    assert sorted(carried) == sorted(carried)  # one each, from its own create span
    assert {tp[:53] for tp in carried} == {_traceparent(c)[:53] for c in creates}
    processes = otel.spans("process t")
    assert sorted(_linked(p)[0] for p in processes) == sorted(_id(c) for c in creates)


def test_buffered_sends_get_create_spans_and_one_send_on_flush(otel: Traced) -> None:
    with instrument(mqkit.connect(_url()), tracer_provider=otel.provider) as client:
        client.admin.create_topic("t")
        with client.producer("t") as p:
            p.send(b"1", wait=False)
            p.send(b"2", wait=False)
            p.flush()
    creates, send = otel.spans("create t"), otel.one("send t")
    assert len(creates) == 2
    assert sorted(_linked(send)) == sorted(_id(c) for c in creates)
    assert _attrs(send)["messaging.batch.message_count"] == 2


def test_failure_sets_error_type_retries_then_dead_letters_with_the_context(
        otel: Traced) -> None:
    url = _url()
    with instrument(mqkit.connect(url), tracer_provider=otel.provider) as client:
        client.admin.create_topic("t")
        client.admin.create_group("t", "g")
        with client.producer("t") as p:
            p.send(b"boom")

        def fail(msg: mqkit.ReceivedMessage) -> None:
            raise ValueError("bad order")

        with client.consumer("t", "g") as consumer:
            stats = consumer.run(fail, retry=FAST, idle_timeout=0.3,
                                 middleware=[Tracing(tracer_provider=otel.provider)])
        assert (stats.retried, stats.dead_lettered) == (1, 1)
        dlq = client.dead_letter_topic("t")
        with client.consumer(dlq, mqkit.DEAD_LETTER_GROUP) as dead:
            copies = dead.receive(timeout=1)
    send = otel.spans("send t")[0]
    processes = otel.spans("process t")
    assert len(processes) == 2  # the retry kept its original context
    for process in processes:
        assert _linked(process) == [_id(send)]
        assert _attrs(process)["error.type"] == "ValueError"
        assert process.status.status_code is trace.StatusCode.ERROR
    nack, dead_letter = otel.one("nack t"), otel.one("dead_letter t")
    assert _attrs(nack)["mqkit.outcome"] == "retried"
    assert _attrs(dead_letter)["mqkit.outcome"] == "dead_lettered"
    assert _attrs(dead_letter)["error.type"] == "ValueError"
    assert _attrs(dead_letter)["mqkit.attempt"] == 2
    assert len(copies) == 1
    assert copies[0].headers["traceparent"].startswith(_traceparent(send))
    # the dead-letter copy's own send links to the original creation context
    dlq_send = otel.one(f"send {dlq}")
    assert _linked(dlq_send) == [_id(send)]


def test_full_header_budget_keeps_the_send_and_reports(otel: Traced,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(SendTracer, "_max_headers", lambda self: 2)  # as SQS's 9 of 9
    with instrument(mqkit.connect(_url()), tracer_provider=otel.provider) as client:
        client.admin.create_topic("t")
        client.admin.create_group("t", "g")
        with client.producer("t") as p, caplog.at_level(logging.WARNING, "mqkit"):
            p.send(b"x", headers={"a": "1", "b": "2"})
            p.send(b"y", headers={"a": "1"})
        with client.consumer("t", "g") as consumer:
            got = consumer.receive(max_messages=2, timeout=1)
    full, spare = otel.spans("send t")
    assert "traceparent" not in got[0].headers
    assert [e.name for e in full.events] == ["mqkit.context_not_injected"]
    assert "traceparent" in got[1].headers and not spare.events
    assert "trace context lost" in caplog.text


def test_instrument_refuses_other_objects_and_is_idempotent(otel: Traced) -> None:
    with pytest.raises(mqkit.ConfigurationError, match="instrument takes an mqkit client"):
        instrument(object())  # type: ignore[type-var]
    with mqkit.connect(_url()) as client:
        instrument(client)
        instrument(client)
        assert [type(h).__name__ for h in client._connection.send_hooks] == [
            "SendTracer", "SendMeter"]
    with pytest.raises(mqkit.ConfigurationError, match="parent must be a bool"):
        Tracing(parent="yes")  # type: ignore[arg-type]


def test_middleware_checks_the_face() -> None:
    with mqkit.connect(_url()) as client:
        client.admin.create_topic("t")
        client.admin.create_group("t", "g")
        with client.consumer("t", "g") as consumer, pytest.raises(
                mqkit.ConfigurationError, match="must be a plain function"):
            consumer.run(lambda m: None, idle_timeout=0.1,
                         middleware=[AsyncTracing()])  # type: ignore[list-item]


# -- the asyncio face and the App --------------------------------------------------------

def test_async_face_send_batch_process_and_dead_letter(otel: Traced) -> None:
    async def main() -> list[mqkit.aio.ReceivedMessage]:
        client = instrument(mqkit.aio.connect(_url()), tracer_provider=otel.provider)
        async with client:
            await client.admin.create_topic("t")
            await client.admin.create_group("t", "g")
            async with client.producer("t") as p:
                await p.send(b"ok")
                await p.send_batch([b"fail"])

            async def handle(msg: mqkit.aio.ReceivedMessage) -> None:
                if msg.body == b"fail":
                    raise mqkit.PermanentFailure("no")
                with otel.tracer.start_as_current_span("inside"):
                    pass

            async with client.consumer("t", "g") as consumer:
                await consumer.run(handle, retry=FAST, idle_timeout=0.3,
                                   middleware=[AsyncTracing(tracer_provider=otel.provider)])
            async with client.consumer(client.dead_letter_topic("t"),
                                       mqkit.DEAD_LETTER_GROUP) as dead:
                return await dead.receive(timeout=1)
    copies = asyncio.run(main())
    single, batch = otel.spans("send t")
    create = otel.one("create t")
    assert single.kind is SpanKind.PRODUCER and batch.kind is SpanKind.CLIENT
    assert _linked(batch) == [_id(create)]
    ok, failed = sorted(otel.spans("process t"), key=lambda s: "error.type" in _attrs(s))
    assert _linked(ok) == [_id(single)] and _linked(failed) == [_id(create)]
    inside = otel.one("inside")  # the handler runs in the process span
    assert inside.parent is not None and inside.parent.span_id == _id(ok)
    assert _attrs(failed)["error.type"] == "mqkit.PermanentFailure"
    assert _attrs(otel.one("dead_letter t"))["mqkit.outcome"] == "dead_lettered"
    assert copies[0].headers["traceparent"].startswith(_traceparent(create))


def test_app_with_tracing(otel: Traced) -> None:
    got: list[str] = []
    app = App(client=instrument(mqkit.aio.connect(_url()), tracer_provider=otel.provider),
              middleware=[AsyncTracing(tracer_provider=otel.provider)])

    @app.handler("orders", group="g", output="shipped")
    async def handle(order: dict[str, int]) -> dict[str, int]:
        got.append(trace.format_trace_id(trace.get_current_span().get_span_context()
                                         .trace_id))
        return order

    async def main() -> None:
        async with TestApp(app) as t:
            await t.send("orders", {"n": 1})
            await t.wait_idle()
    asyncio.run(main())
    process = otel.one("process orders")
    assert _linked(process) == [_id(otel.one("send orders"))]
    shipped = otel.one("send shipped")  # published from the handler: inside its span
    assert shipped.parent is not None and shipped.parent.span_id == _id(process)
    assert got and process.context is not None
    assert got[0] == trace.format_trace_id(process.context.trace_id)


# -- receive spans -----------------------------------------------------------------


@pytest.mark.parametrize("face", ["sync", "async"])
def test_a_receive_that_returned_messages_is_a_receive_span(face: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    url = f"memory://recv-{uuid.uuid4().hex[:8]}"

    def check(first: int, second: int) -> None:
        spans = [s for s in exporter.get_finished_spans() if s.name == "receive t"]
        assert [dict(s.attributes or {})["messaging.batch.message_count"]
                for s in spans] == [3]
        [span] = spans
        attrs = dict(span.attributes or {})
        assert span.kind is SpanKind.CONSUMER
        assert attrs["messaging.operation.type"] == "receive"
        assert attrs["messaging.consumer.group.name"] == "g"
        assert attrs["messaging.destination.name"] == "t"
        assert span.start_time is not None and span.end_time is not None
        assert first <= span.start_time <= span.end_time <= second
        # the empty receive after it made no span

    if face == "sync":
        with instrument(mqkit.connect(url), tracer_provider=provider) as client:
            client.admin.create_topic("t")
            client.admin.create_group("t", "g")
            client.producer("t").send_batch([b"1", b"2", b"3"])
            with client.consumer("t", "g") as c:
                first = time.time_ns()
                c.ack(c.receive(10, timeout=1))
                assert c.receive(10, timeout=0.05) == []
                second = time.time_ns()
        check(first, second)
        return

    async def main() -> tuple[int, int]:
        async with instrument(mqkit.aio.connect(url), tracer_provider=provider) as client:
            await client.admin.create_topic("t")
            await client.admin.create_group("t", "g")
            await client.producer("t").send_batch([b"1", b"2", b"3"])
            async with client.consumer("t", "g") as c:
                first = time.time_ns()
                await c.ack(await c.receive(10, timeout=1))
                assert await c.receive(10, timeout=0.05) == []
                return first, time.time_ns()

    check(*asyncio.run(main()))


def test_a_failing_receive_hook_is_logged_and_the_messages_kept(
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(topic: str, group: str, messages: object, started: int) -> None:
        raise RuntimeError("hook bug")

    with mqkit.connect(f"memory://recv-{uuid.uuid4().hex[:8]}") as client:
        client.add_receive_hook(broken)
        client.admin.create_topic("t")
        client.admin.create_group("t", "g")
        client.producer("t").send(b"x")
        with client.consumer("t", "g") as c, caplog.at_level("ERROR", logger="mqkit"):
            got = c.receive(10, timeout=1)
            c.ack(got)
    assert [m.body for m in got] == [b"x"]
    assert "a receive hook failed on t/g" in caplog.text
    with pytest.raises(mqkit.ConfigurationError, match="hook must be callable"):
        client.add_receive_hook("nope")  # type: ignore[arg-type]
