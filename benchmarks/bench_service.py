"""The App's cost per message over a bare ``consumer.run`` with the same handler.

    python benchmarks/bench_service.py                        # memory:// only
    eval "$(scripts/brokers env)"
    python benchmarks/bench_service.py --backends redis,nats --count 5000 --rounds 5

Each round fills one topic with ``--count`` small JSON orders (not timed); two groups get
every message. Then, interleaved (the order alternates between rounds so drift favours
neither side), each group is drained by one variant on the asyncio face, with the same
``prefetch`` (``--batch``), ``concurrency``, retry policy and handler work (decode the
body into a dataclass, add to a counter):

* ``bare``: ``consumer.run(handler, concurrency=C)``, the handler decoding ``msg.body``
  with the same decoder the App uses;
* ``app``: an :class:`mqkit.service.App` (``declare=False``, on the same client) whose
  handler is annotated with the dataclass.

The clock runs from the start of ``consumer.run`` / ``app.run`` to the handler's N-th
call (the drain after it is not timed, on either side). Prints the median over
``--rounds`` rounds of each variant, the App's extra µs per message and the ratio
app/bare time; then the same from this process's CPU time (all threads, the broker's
own work not included), which other load on a shared machine barely moves. Targets: at
most 5 µs/message on ``memory://``, at most 10% (ratio ≤ 1.10) on a broker. Brokers:
``--backends`` names them; one whose ``MQKIT_TEST_<NAME>_URL`` is not set is skipped.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _harness import Result, report

import mqkit
import mqkit.aio
from mqkit._payloads import decoder_for
from mqkit.service import App

BACKENDS = ("rabbitmq", "kafka", "sqs", "redis", "nats")
DEFAULT_COUNT = {"memory": 20000, "sqs": 300}


@dataclass
class Order:
    id: int
    qty: int


DECODE = decoder_for(Order)
CPU: dict[str, list[float]] = {"bare": [], "app": []}
"""This process's CPU seconds per variant and round (all its threads): unlike the wall
time, barely moved by other work on a shared machine."""


class Counter:
    """The handlers' shared work: count orders; note the time of the N-th one."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.seen = 0
        self.total = 0
        self.done_at = 0.0
        self.cpu_at = 0.0
        self.done = asyncio.Event()

    def add(self, order: Order) -> None:
        self.total += order.qty
        self.seen += 1
        if self.seen == self.target:
            self.done_at = time.perf_counter()
            self.cpu_at = time.process_time()
            self.done.set()


async def fill(client: mqkit.aio.Client, topic: str, count: int) -> None:
    async with client.producer(topic, codec=mqkit.JSON) as producer:
        for i in range(0, count, 100):
            await producer.send_batch([{"id": n, "qty": 1}
                                       for n in range(i, min(i + 100, count))])


async def bare(client: mqkit.aio.Client, topic: str, count: int, *, batch: int,
               concurrency: int, timeout: float) -> Result:
    counter = Counter(count)
    consumer = client.consumer(topic, "bare", prefetch=batch)

    async def handler(msg: mqkit.aio.ReceivedMessage) -> None:
        counter.add(DECODE(msg.body, msg.content_type))

    start, cpu = time.perf_counter(), time.process_time()
    run = asyncio.ensure_future(consumer.run(handler, concurrency=concurrency))
    try:
        await _wait(counter, run, timeout, "bare")
    finally:
        consumer.stop()
        await run
        await consumer.close()
    CPU["bare"].append(counter.cpu_at - cpu)
    return Result("mqkit", f"bare consumer.run c={concurrency}", count,
                  counter.done_at - start)


async def app(client: mqkit.aio.Client, topic: str, count: int, *, batch: int,
              concurrency: int, timeout: float) -> Result:
    counter = Counter(count)
    service = App(client=client, declare=False)

    @service.handler(topic, group="app", prefetch=batch, concurrency=concurrency)
    async def handler(order: Order) -> None:
        counter.add(order)

    start, cpu = time.perf_counter(), time.process_time()
    run = asyncio.ensure_future(service.run())
    try:
        await _wait(counter, run, timeout, "app")
    finally:
        service.stop()
        await run
    CPU["app"].append(counter.cpu_at - cpu)
    return Result("mqkit", f"App handler c={concurrency}", count, counter.done_at - start)


async def _wait(counter: Counter, run: asyncio.Future[Any], timeout: float,
                what: str) -> None:
    done: asyncio.Future[Any] = asyncio.ensure_future(counter.done.wait())
    try:
        await asyncio.wait([done, run], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        done.cancel()
    if run.done():
        run.result()  # raises the loop's error
    if not counter.done.is_set():
        raise RuntimeError(f"{what} stalled at {counter.seen}/{counter.target}")


async def bench_backend(backend: str, url: str, count: int, *, rounds: int, batch: int,
                        concurrencies: list[int]) -> None:
    timeout = 120.0 if backend == "sqs" else 60.0
    async with mqkit.aio.connect(url) as client:
        for concurrency in concurrencies:
            results: dict[str, list[Result]] = {"bare": [], "app": []}
            for times in CPU.values():
                times.clear()
            for rnd in range(rounds):
                topic = f"bench-service-{uuid.uuid4().hex[:8]}"
                await client.admin.create_topic(topic)
                await client.admin.create_group(topic, "bare")
                await client.admin.create_group(topic, "app")
                try:
                    await fill(client, topic, count)
                    order = ["bare", "app"] if rnd % 2 == 0 else ["app", "bare"]
                    for key in order:
                        variant = bare if key == "bare" else app
                        result = await variant(client, topic, count, batch=batch,
                                               concurrency=concurrency, timeout=timeout)
                        results[key].append(result)
                        report(Result(backend, f"r{rnd + 1} {result.label}", result.count,
                                      result.seconds))
                finally:
                    await client.admin.delete_topic(topic)
            bare_s = statistics.median(r.seconds for r in results["bare"])
            app_s = statistics.median(r.seconds for r in results["app"])
            extra_us = (app_s - bare_s) / count * 1e6
            print(f"-- {backend} c={concurrency} batch={batch}: median of {rounds} rounds, "
                  f"{count} msgs")
            print(f"{backend:9} bare {count / bare_s:>10,.0f} msgs/s ({bare_s / count * 1e6:.2f}"
                  f" µs/msg)   app {count / app_s:>10,.0f} msgs/s "
                  f"({app_s / count * 1e6:.2f} µs/msg)")
            target = "target <= 5 µs/msg" if backend == "memory" else "target <= 1.10"
            print(f"{backend:9} App cost {extra_us:+.2f} µs/msg   app/bare time "
                  f"{app_s / bare_s:.3f}   ({target})", flush=True)
            bare_cpu, app_cpu = (statistics.median(CPU[k]) for k in ("bare", "app"))
            print(f"{backend:9} CPU      bare {bare_cpu / count * 1e6:.2f} µs/msg   app "
                  f"{app_cpu / count * 1e6:.2f} µs/msg   App cost "
                  f"{(app_cpu - bare_cpu) / count * 1e6:+.2f} µs/msg   app/bare "
                  f"{app_cpu / bare_cpu:.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="",
                        help="comma-separated brokers besides memory (e.g. "
                             f"{','.join(BACKENDS)}); one whose MQKIT_TEST_<NAME>_URL is "
                             "not set is skipped")
    parser.add_argument("--count", type=int, default=None,
                        help="messages per variant per round (default: memory 20000, "
                             "sqs 300, other brokers 2000)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100, help="the consumers' prefetch")
    parser.add_argument("--concurrency", default="1,8",
                        help="comma-separated handler concurrencies to measure")
    parser.add_argument("--no-memory", action="store_true", help="skip memory://")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
    rounds = max(1, args.rounds)
    if not args.no_memory:
        count = args.count or DEFAULT_COUNT["memory"]
        url = f"memory://bench-service-{uuid.uuid4().hex[:8]}?max_batch=1000"
        asyncio.run(bench_backend("memory", url, count, rounds=rounds, batch=args.batch,
                                  concurrencies=concurrencies))
    for backend in (b.strip() for b in args.backends.split(",") if b.strip()):
        url = os.environ.get(f"MQKIT_TEST_{backend.upper()}_URL", "")
        if not url:
            print(f"{backend}: MQKIT_TEST_{backend.upper()}_URL not set, skipped")
            continue
        from bench_settle import _ensure_plugin  # the adapter, in-process if not installed
        _ensure_plugin(backend)
        count = args.count or DEFAULT_COUNT.get(backend, 2000)
        asyncio.run(bench_backend(backend, url, count, rounds=rounds, batch=args.batch,
                                  concurrencies=concurrencies))


if __name__ == "__main__":
    main()
