"""Correlated logs: every mqkit record about a message carries ``mqkit_topic``,
``mqkit_group``, ``mqkit_message_id`` and, under a span, ``trace_id`` / ``span_id`` as
structured ``extra`` fields (memory:// and faulty://, both faces)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mqkit
import mqkit.aio
from mqkit import Support
from mqkit._logfields import FIELDS, log_fields, trace_fields
from mqkit.middleware import Idempotent, MemoryStore
from mqkit.otel import AsyncTracing, Tracing
from mqkit.service import App, TestApp

from .faulty import FAULTS

ROOT = Path(__file__).resolve().parent.parent
FAST = mqkit.RetryPolicy(max_attempts=2, initial_backoff=0.0, jitter=0.0)


def _url() -> str:
    return f"memory://logs-{uuid.uuid4().hex[:8]}"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {name: getattr(record, name, "<missing>") for name in FIELDS}


def _records(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "mqkit" and text in r.getMessage()]


def _fail(msg: object) -> None:
    raise ValueError("cannot bill this")


@pytest.fixture
def provider() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    yield tp, exporter
    tp.shutdown()


def _ids(span: ReadableSpan) -> tuple[str, str]:
    assert span.context is not None
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"


# -- the records of the handler loop, both faces ------------------------------------------

def _check_retry_and_dead_letter(caplog: pytest.LogCaptureFixture, msg_id: str) -> None:
    (retried,) = _records(caplog, "handler failed on")
    (dead,) = _records(caplog, "dead-lettered")
    expected = {"mqkit_topic": "orders", "mqkit_group": "billing",
                "mqkit_message_id": msg_id, "trace_id": None, "span_id": None}
    assert _fields(retried) == expected
    assert _fields(dead) == expected
    # the human-readable text is unchanged
    assert retried.getMessage() == (f"mqkit: handler failed on {msg_id} (attempt 1 of 2): "
                                    "ValueError: cannot bill this")
    assert dead.getMessage().startswith(f"mqkit: dead-lettered {msg_id} from orders/billing")


def test_retried_and_dead_lettered_records_carry_the_message_fields_blocking(
        caplog: pytest.LogCaptureFixture) -> None:
    with mqkit.connect(_url()) as client, caplog.at_level(logging.INFO, "mqkit"):
        client.admin.create_topic("orders")
        client.admin.create_group("orders", "billing")
        with client.producer("orders") as p:
            msg_id = p.send(b"order 1")
        with client.consumer("orders", "billing") as c:
            c.run(_fail, retry=FAST, idle_timeout=0.3)
    _check_retry_and_dead_letter(caplog, msg_id)


async def test_retried_and_dead_lettered_records_carry_the_message_fields_asyncio(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "mqkit")
    async with mqkit.aio.connect(_url()) as client:
        await client.admin.create_topic("orders")
        await client.admin.create_group("orders", "billing")
        async with client.producer("orders") as p:
            msg_id = await p.send(b"order 1")
        async with client.consumer("orders", "billing") as c:
            await c.run(_fail, retry=FAST, idle_timeout=0.3)
    _check_retry_and_dead_letter(caplog, msg_id)


def _check_traced(caplog: pytest.LogCaptureFixture, exporter: InMemorySpanExporter) -> None:
    process = [s for s in exporter.get_finished_spans() if s.name == "process orders"]
    assert len(process) == 2  # the first attempt and the retry
    (retried,) = _records(caplog, "handler failed on")
    (dead,) = _records(caplog, "dead-lettered")
    trace_id, span_id = _ids(process[0])
    assert (retried.trace_id, retried.span_id) == (trace_id, span_id)  # type: ignore[attr-defined]
    trace_id, span_id = _ids(process[1])
    assert (dead.trace_id, dead.span_id) == (trace_id, span_id)  # type: ignore[attr-defined]
    assert dead.mqkit_topic == "orders"  # type: ignore[attr-defined]


def test_the_trace_id_is_the_process_spans_under_tracing_blocking(
        caplog: pytest.LogCaptureFixture,
        provider: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    tp, exporter = provider
    with mqkit.connect(_url()) as client, caplog.at_level(logging.INFO, "mqkit"):
        client.admin.create_topic("orders")
        client.admin.create_group("orders", "billing")
        with client.producer("orders") as p:
            p.send(b"order 1")
        with client.consumer("orders", "billing") as c:
            # settle_spans=False: the span is kept for the log records all the same
            c.run(_fail, retry=FAST, idle_timeout=0.3,
                  middleware=[Tracing(tracer_provider=tp, settle_spans=False)])
    _check_traced(caplog, exporter)


async def test_the_trace_id_is_the_process_spans_under_tracing_asyncio(
        caplog: pytest.LogCaptureFixture,
        provider: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    tp, exporter = provider
    caplog.set_level(logging.INFO, "mqkit")
    async with mqkit.aio.connect(_url()) as client:
        await client.admin.create_topic("orders")
        await client.admin.create_group("orders", "billing")
        async with client.producer("orders") as p:
            await p.send(b"order 1")
        async with client.consumer("orders", "billing") as c:
            await c.run(_fail, retry=FAST, idle_timeout=0.3,
                        middleware=[AsyncTracing(tracer_provider=tp)])
    _check_traced(caplog, exporter)


def test_a_dropped_message_is_logged_with_its_fields(
        caplog: pytest.LogCaptureFixture) -> None:
    # faulty:// without nack: a failed handler's message is dropped (at-most-once)
    FAULTS.reset()
    FAULTS.caps["nack"] = Support.UNSUPPORTED
    url = f"faulty://d-{uuid.uuid4().hex[:8]}"
    try:
        with mqkit.connect(url) as client, caplog.at_level(logging.INFO, "mqkit"):
            client.admin.create_topic("orders")
            client.admin.create_group("orders", "billing")
            with client.producer("orders") as p:
                msg_id = p.send(b"order 1")
            with client.consumer("orders", "billing") as c:
                c.run(_fail, retry=FAST, idle_timeout=0.3)
    finally:
        FAULTS.reset()
    (dropped,) = _records(caplog, "message dropped")
    assert _fields(dropped) == {"mqkit_topic": "orders", "mqkit_group": "billing",
                                "mqkit_message_id": msg_id, "trace_id": None,
                                "span_id": None}


def test_a_settlement_failure_names_its_messages(caplog: pytest.LogCaptureFixture) -> None:
    FAULTS.reset()
    url = f"faulty://s-{uuid.uuid4().hex[:8]}"
    try:
        with mqkit.connect(url) as client, caplog.at_level(logging.INFO, "mqkit"):
            client.admin.create_topic("orders")
            client.admin.create_group("orders", "billing")
            with client.producer("orders") as p:
                msg_id = p.send(b"order 1")
            FAULTS.fail("ack", mqkit.BackendError("refused"), times=1)
            with client.consumer("orders", "billing") as c:
                c.run(lambda m: None, stop_after=2, idle_timeout=1.0)
    finally:
        FAULTS.reset()
    records = _records(caplog, "not taken by the broker")
    assert records, caplog.text
    assert records[0].mqkit_topic == "orders"  # type: ignore[attr-defined]
    assert records[0].mqkit_group == "billing"  # type: ignore[attr-defined]
    assert records[0].mqkit_message_ids == [msg_id]  # type: ignore[attr-defined]
    assert records[0].mqkit_message_id == msg_id  # type: ignore[attr-defined]


def test_a_duplicate_skipped_by_idempotent_is_logged_in_the_process_span(
        caplog: pytest.LogCaptureFixture,
        provider: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    tp, exporter = provider
    with mqkit.connect(_url()) as client, caplog.at_level(logging.INFO, "mqkit"):
        client.admin.create_topic("orders")
        client.admin.create_group("orders", "billing")
        with client.producer("orders") as p:
            p.send(b"once")
            second_id = p.send(b"twice")
        same = Idempotent(MemoryStore(), key=lambda ctx: "order-1")  # both one order
        with client.consumer("orders", "billing") as c:
            c.run(lambda m: None, idle_timeout=0.3,
                  middleware=[Tracing(tracer_provider=tp), same])
    (dup,) = _records(caplog, "was handled already")
    second = [s for s in exporter.get_finished_spans() if s.name == "process orders"][1]
    assert _fields(dup) == {"mqkit_topic": "orders", "mqkit_group": "billing",
                            "mqkit_message_id": second_id, "trace_id": _ids(second)[0],
                            "span_id": _ids(second)[1]}


async def test_the_apps_payload_error_is_dead_lettered_with_the_fields(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "mqkit")
    app = App()

    @app.handler("orders", group="billing")
    def bill(order: dict[str, int]) -> None:
        raise AssertionError("never called")

    async with TestApp(app) as t:
        msg_id = await t.send("orders", b"not json")
        await t.wait_idle()
    (dead,) = _records(caplog, "dead-lettered")
    # the App decodes before its middleware runs: no process span for an undecodable body
    assert _fields(dead) == {"mqkit_topic": "orders", "mqkit_group": "billing",
                             "mqkit_message_id": msg_id, "trace_id": None, "span_id": None}
    assert "PayloadError: body does not decode" in dead.getMessage()


# -- the fields themselves ------------------------------------------------------------------

def test_the_current_span_is_used_when_no_process_span_is_known(
        provider: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    tp, _ = provider
    assert trace_fields() == (None, None)
    with tp.get_tracer("test").start_as_current_span("outer") as span:
        ctx = span.get_span_context()
        fields = log_fields("t", "g", "m-1")
    assert fields == {"mqkit_topic": "t", "mqkit_group": "g", "mqkit_message_id": "m-1",
                      "trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}
    assert len(fields["trace_id"]) == 32 and len(fields["span_id"]) == 16


def test_reading_the_span_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def get_span_context(self) -> None:
            raise RuntimeError("broken span")

    class BrokenTrace:
        @staticmethod
        def get_current_span() -> Broken:
            return Broken()

    assert trace_fields(Broken()) == (None, None)
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", BrokenTrace())
    assert log_fields("t", None)["trace_id"] is None


def test_log_fields_never_import_opentelemetry() -> None:
    code = ("import sys, logging, mqkit\n"
            "from mqkit._logfields import log_fields\n"
            "fields = log_fields('t', 'g', 'm')\n"
            "assert fields['trace_id'] is None, fields\n"
            "assert not [m for m in sys.modules if m.startswith('opentelemetry')]\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_json_formatter_of_the_docs_writes_the_fields() -> None:
    """The docs' JSON logging setup, on a record the loop makes."""
    from io import StringIO
    docs = (ROOT / "docs" / "observability.md").read_text()
    start = docs.index("class JsonFormatter")
    code = docs[docs.rindex("```python", 0, start) + len("```python"):
                docs.index("```", start)]
    namespace: dict[str, Any] = {}
    exec(compile(code, "observability.md", "exec"), namespace)
    stream = StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(namespace["JsonFormatter"]())
    logger = logging.getLogger("mqkit")
    logger.addHandler(handler)
    try:
        with mqkit.connect(_url()) as client:
            client.admin.create_topic("orders")
            client.admin.create_group("orders", "billing")
            with client.producer("orders") as p:
                msg_id = p.send(b"order 1")
            with client.consumer("orders", "billing") as c:
                c.run(_fail, retry=FAST, idle_timeout=0.3)
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    dead = [d for d in lines if "dead-lettered" in d["message"]]
    assert dead and dead[0]["mqkit_message_id"] == msg_id
    assert dead[0]["mqkit_topic"] == "orders" and dead[0]["level"] == "WARNING"
