"""The per-message cost of mqkit.otel's tracing and metrics, on memory://, both faces.

    python benchmarks/bench_otel.py                       # 20 000 messages, 7 rounds
    python benchmarks/bench_otel.py --count 5000 --rounds 3 --faces blocking

Two workloads, each timed per message:

* ``send``: ``producer.send(b"...")`` one message at a time;
* ``handled``: ``consumer.run(handler, stop_after=N)`` over N messages sent beforehand
  (not timed) by the same variant's client, so they carry its trace context or none;
  the handler does nothing.

The variants, run interleaved in every round (the order rotates between rounds so drift
favours none), each on a fresh memory:// namespace (deleted after; garbage collected
before each timed part, the collector left on while timing):

* ``none``: (a) OpenTelemetry not installed. mqkit never imports it unless asked, so this
  is the client with no ``instrument()`` and no middleware; the script also checks
  that ``python -X importtime -c "import mqkit"`` imports no ``opentelemetry`` module;
* ``api``: (b) the API only, no SDK configured: ``instrument(client)`` (its send spans
  and send metrics, on the default global providers, which are no-ops) and the
  ``Tracing`` middleware (``AsyncTracing`` on asyncio);
* ``api+metrics``: (b) plus the ``Metrics`` / ``AsyncMetrics`` middleware;
* ``sdk``: (c) the SDK: a ``TracerProvider`` with a ``SimpleSpanProcessor`` into an
  exporter that drops everything, and a ``MeterProvider`` with an ``InMemoryMetricReader``
  (never collected while timing); ``instrument(client)`` and ``Tracing``;
* ``sdk+metrics``: (c) plus ``Metrics`` on that ``MeterProvider``.

Times are the process's CPU time (``time.process_time``, all its threads), so the
load of other processes on a shared machine does not count. Prints, per face and
workload, the median µs per message of each variant over
``--rounds`` and the median of its per-round difference to ``none`` (paired in the round),
against the targets: 0 for (a), at most 2 µs for (b); (c) is reported. Figures are
printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import mqkit
import mqkit.aio
from mqkit.otel import AsyncMetrics, AsyncTracing, Metrics, Tracing, instrument

# The process's CPU time (every thread of it): on a shared machine the other processes'
# load does not count, as wall time would (memory:// never waits while timed).
CLOCK = time.process_time

VARIANTS = ("none", "api", "api+metrics", "sdk", "sdk+metrics")
TARGETS = {"none": "target 0", "api": "target <= 2 us", "api+metrics": "",
           "sdk": "reported", "sdk+metrics": "reported"}
BODY = b"x" * 64
TOPIC, GROUP = "orders", "billing"


class DropExporter(SpanExporter):
    """An exporter that drops every span (the SDK's cost without any export's)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class Setup:
    """One variant's providers: what ``instrument`` and the middleware are given."""

    def __init__(self, variant: str) -> None:
        self.variant = variant
        self.tp: TracerProvider | None = None
        self.mp: MeterProvider | None = None
        if variant.startswith("sdk"):
            self.tp = TracerProvider()
            self.tp.add_span_processor(SimpleSpanProcessor(DropExporter()))
            self.mp = MeterProvider(metric_readers=[InMemoryMetricReader()])

    def instrument(self, client: Any) -> Any:
        if self.variant == "none":
            return client
        return instrument(client, tracer_provider=self.tp, meter_provider=self.mp)

    def middleware(self, asyncio_face: bool) -> list[Any]:
        if self.variant == "none":
            return []
        tracing = AsyncTracing if asyncio_face else Tracing
        chain: list[Any] = [tracing(tracer_provider=self.tp)]
        if self.variant.endswith("+metrics"):
            metrics = AsyncMetrics if asyncio_face else Metrics
            chain.append(metrics(meter_provider=self.mp))
        return chain

    def close(self) -> None:
        if self.tp is not None:
            self.tp.shutdown()
        if self.mp is not None:
            self.mp.shutdown()


def _url() -> str:
    return f"memory://bench-otel-{uuid.uuid4().hex[:8]}"


# -- blocking face --------------------------------------------------------------------------

def blocking_round(setup: Setup, count: int) -> tuple[float, float]:
    """(send, handled) µs per message on the blocking face."""
    with setup.instrument(mqkit.connect(_url())) as client:
        client.admin.create_topic(TOPIC)
        client.admin.create_group(TOPIC, GROUP)
        with client.producer(TOPIC) as producer:
            send = producer.send
            gc.collect()
            start = CLOCK()
            for _ in range(count):
                send(BODY)
            sent = CLOCK() - start
        middleware = setup.middleware(asyncio_face=False)
        with client.consumer(TOPIC, GROUP, prefetch=100) as consumer:
            gc.collect()
            start = CLOCK()
            stats = consumer.run(_noop, stop_after=count, middleware=middleware)
            handled = CLOCK() - start
        client.admin.delete_topic(TOPIC)  # free the namespace's messages
        if stats.acked != count:
            raise SystemExit(f"{setup.variant}: {stats.acked} acked of {count}")
    return sent * 1e6 / count, handled * 1e6 / count


def _noop(msg: object) -> None:
    return None


# -- asyncio face ---------------------------------------------------------------------------

async def _anoop(msg: object) -> None:
    return None


async def _async_round(setup: Setup, count: int) -> tuple[float, float]:
    async with setup.instrument(mqkit.aio.connect(_url())) as client:
        await client.admin.create_topic(TOPIC)
        await client.admin.create_group(TOPIC, GROUP)
        async with client.producer(TOPIC) as producer:
            send = producer.send
            gc.collect()
            start = CLOCK()
            for _ in range(count):
                await send(BODY)
            sent = CLOCK() - start
        middleware = setup.middleware(asyncio_face=True)
        async with client.consumer(TOPIC, GROUP, prefetch=100) as consumer:
            gc.collect()
            start = CLOCK()
            stats = await consumer.run(_anoop, stop_after=count, middleware=middleware)
            handled = CLOCK() - start
        await client.admin.delete_topic(TOPIC)  # free the namespace's messages
        if stats.acked != count:
            raise SystemExit(f"{setup.variant}: {stats.acked} acked of {count}")
    return sent * 1e6 / count, handled * 1e6 / count


def asyncio_round(setup: Setup, count: int) -> tuple[float, float]:
    """(send, handled) µs per message on the asyncio face."""
    return asyncio.run(_async_round(setup, count))


FACES: dict[str, Callable[[Setup, int], tuple[float, float]]] = {
    "blocking": blocking_round, "asyncio": asyncio_round}


# -- (a): import mqkit imports no OpenTelemetry --------------------------------------------

def otel_imported_by_import_mqkit() -> list[str]:
    """The ``opentelemetry`` modules ``python -X importtime -c "import mqkit"`` lists."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import mqkit"],
                          capture_output=True, text=True, check=True)
    return [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
            if "opentelemetry" in line]


# -- main -----------------------------------------------------------------------------------

def run_face(face: str, count: int, rounds: int) -> None:
    work = FACES[face]
    times: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    work(Setup("none"), min(count, 2000))  # warm up (imports, first-call caches)
    for r in range(rounds):
        order = VARIANTS[r % len(VARIANTS):] + VARIANTS[:r % len(VARIANTS)]
        for variant in order:
            setup = Setup(variant)
            try:
                times[variant].append(work(setup, count))
            finally:
                setup.close()
    for index, workload in enumerate(("send", "handled")):
        base = [t[index] for t in times["none"]]
        print(f"\n{face} face, {workload} ({count} messages, median of {rounds} rounds)")
        print(f"  {'variant':14} {'us/msg':>8} {'delta':>8}")
        for variant in VARIANTS:
            mine = [t[index] for t in times[variant]]
            delta = statistics.median(m - b for m, b in zip(mine, base, strict=True))
            target = TARGETS[variant]
            if variant == "none":
                delta = 0.0
            elif variant == "api":
                target += " ok" if delta <= 2.0 else " MISSED"
            print(f"  {variant:14} {statistics.median(mine):8.2f} {delta:+8.2f}   {target}",
                  flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--faces", default="blocking,asyncio")
    args = parser.parse_args(argv)
    found = otel_imported_by_import_mqkit()
    print(f"(a) python -X importtime -c 'import mqkit': {len(found)} opentelemetry "
          f"module(s) imported{': ' + ', '.join(found) if found else ''} (target 0)")
    for face in args.faces.split(","):
        run_face(face.strip(), args.count, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
