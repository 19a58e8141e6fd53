"""Bounded memory under backpressure: peak RSS of a producer faster than its consumer, and
of a slow consumer over a large backlog.

    python benchmarks/bench_backpressure.py                       # memory:// and Redis
    python benchmarks/bench_backpressure.py --backends memory --count 200000
    python benchmarks/bench_backpressure.py --backends redis --faces sync,aio

Every scenario runs in a fresh Python subprocess, so one scenario's peak cannot hide in
another's; the subprocess reports its resident set (``VmRSS`` of /proc/self/status) at the
start (connected, topic and group made, nothing sent), its peak (``VmHWM``, the kernel's
high-water mark) and at the end (consumer stopped, client still open), with a sample every
``--sample`` seconds of RSS, the consumer's ``in_flight`` (received and not yet settled)
and the backlog (sent minus handled). The scenarios, per backend (``memory`` and any
other whose ``MQKIT_TEST_<BACKEND>_URL`` is set: ``redis`` by default) and face:

* **fast-producer**: ``--count`` messages of ``--size`` bytes sent with ``send_batch`` of
  100 from a thread, as fast as the broker takes them, while one consumer with
  ``prefetch=100`` runs ``consumer.run`` with a slow handler (it sleeps ``--handler-ms``
  milliseconds every 100 messages, so it falls behind); ``--linger`` seconds after the
  last send the consumer is stopped, the rest is left in the broker.
* **fill-only** (memory:// only): the same sends with no consumer. memory:// keeps every
  message in this process (the broker is a data structure here), so its RSS is the
  broker's share; fast-producer's peak minus fill-only's is mqkit's own.
* **slow-consumer**: a backlog of ``--count`` messages is put in first (on a real broker
  by another subprocess, so the filling leaves nothing in the measured one), then one
  consumer with ``prefetch=100`` and the slow handler runs for ``--seconds``. The same
  with a backlog of ``--small-backlog`` shows whether RSS grows with the backlog.
* **acks-unavailable** (only when named in ``--scenarios``): as slow-consumer, but every
  ack the consumer hands to the driver is refused as :class:`mqkit.Unavailable` (the
  driver's ``ack`` is replaced, a probe of mqkit's private state) while receives go on:
  shows whether decided messages waiting for the broker (the settlement queue) count
  against the prefetch. The acks are let through again before the consumer stops.

Figures are printed, never asserted. The topics are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mqkit
import mqkit.aio

HERE = Path(__file__).resolve()
BATCH = 100
PREFETCH = 100
# The scenarios whose backlog is put in before the measured consumer starts.
BACKLOG = ("slow-consumer", "acks-unavailable")
SCENARIOS = ("fill-only", "fast-producer", "slow-consumer")


# -- measuring (in the child) ------------------------------------------------------------

def _status(field_name: str) -> int:
    """A ``kB`` field of /proc/self/status (``VmRSS``, ``VmHWM``), in bytes."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field_name} in /proc/self/status")


def rss() -> int:
    """This process's resident set now, in bytes."""
    return _status("VmRSS")


def peak_rss() -> int:
    """This process's resident set high-water mark, in bytes."""
    return _status("VmHWM")


@dataclass
class Counters:
    """What the sampler reads: messages sent and handled, and the consumer (once made)."""

    sent: int = 0
    handled: int = 0
    consumer: Any = None


@dataclass
class Report:
    """One scenario's figures, sent back to the parent as JSON."""

    backend: str
    face: str
    scenario: str
    count: int
    size: int
    start: int = 0
    peak: int = 0
    end: int = 0
    sent: int = 0
    handled: int = 0
    max_in_flight: int = 0
    max_backlog: int = 0
    seconds: float = 0.0
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)
    # (seconds since start, RSS bytes, in_flight, backlog)


class Sampler(threading.Thread):
    """Every ``interval`` seconds, note RSS, the consumer's in_flight and the backlog."""

    def __init__(self, counters: Counters, report: Report, interval: float,
                 backlog0: int = 0) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.counters, self.report, self.interval = counters, report, interval
        self.backlog0 = backlog0
        self.started_at = time.monotonic()
        self.done = threading.Event()
        self.sample()

    def sample(self) -> None:
        """Take one sample now."""
        c = self.counters
        in_flight = int(getattr(c.consumer, "in_flight", 0) or 0)
        backlog = self.backlog0 + c.sent - c.handled
        r = self.report
        r.max_in_flight = max(r.max_in_flight, in_flight)
        r.max_backlog = max(r.max_backlog, backlog)
        r.samples.append((round(time.monotonic() - self.started_at, 2), rss(), in_flight,
                          backlog))

    def run(self) -> None:
        """Sample until stopped."""
        while not self.done.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        """Stop sampling, after a last sample."""
        self.done.set()
        self.join()
        self.sample()


def _bodies(size: int) -> list[bytes]:
    """One batch of bodies, made once: the test is of buffers, not of building bytes."""
    return [b"x" * size for _ in range(BATCH)]


def slow_handler(counters: Counters, handler_ms: float) -> Callable[[mqkit.ReceivedMessage], None]:
    """A handler that sleeps ``handler_ms`` ms every 100 messages."""
    pause = handler_ms / 1000.0

    def handle(msg: mqkit.ReceivedMessage) -> None:
        counters.handled += 1
        if counters.handled % BATCH == 0:
            time.sleep(pause)
    return handle


def async_slow_handler(counters: Counters, handler_ms: float) -> Callable[..., Any]:
    """The asyncio handler: ``await asyncio.sleep`` every 100 messages."""
    pause = handler_ms / 1000.0

    async def handle(msg: Any) -> None:
        counters.handled += 1
        if counters.handled % BATCH == 0:
            await asyncio.sleep(pause)
    return handle


def _refuse_acks(driver: Any, *, awaitable: bool = False) -> Callable[[], None]:
    """Make ``driver`` (a consumer's open subscription) refuse every ack as unavailable,
    alone or riding ahead of a read (``ack_and_receive``: the consumer then takes the
    plain way, whose ack is refused too); return what lets the acks through again."""
    def refuse(*_args: object) -> None:
        raise mqkit.Unavailable("acks refused by bench_backpressure (acks-unavailable)")

    async def refuse_async(*args: object) -> None:
        refuse(*args)

    driver.ack = refuse_async if awaitable else refuse
    driver.ack_and_receive = refuse_async if awaitable else refuse

    def restore() -> None:
        del driver.ack  # the instance attributes go: the class's methods are back
        del driver.ack_and_receive
    return restore


def send_all(client: mqkit.Client, topic: str, count: int, size: int,
             counters: Counters) -> None:
    """``count`` messages with ``send_batch(100)``, as fast as the broker takes them."""
    bodies = _bodies(size)
    with client.producer(topic) as producer:
        for i in range(0, count, BATCH):
            n = min(BATCH, count - i)
            producer.send_batch(bodies[:n])
            counters.sent += n


def child_sync(args: argparse.Namespace) -> Report:
    """One scenario on the blocking face, in this (fresh) process."""
    report = Report(args.backend, "sync", args.scenario, args.count, args.size)
    counters = Counters()
    with mqkit.connect(args.url) as client:
        if args.scenario not in BACKLOG or args.backend == "memory":
            client.admin.create_topic(args.topic)
            client.admin.create_group(args.topic, "g")
        backlog0 = 0
        if args.scenario in BACKLOG and args.backend == "memory":
            send_all(client, args.topic, args.count, args.size, Counters())
        if args.scenario in BACKLOG:
            backlog0 = args.count
        report.start = rss()
        sampler = Sampler(counters, report, args.sample, backlog0)
        sampler.start()
        began = time.monotonic()
        if args.scenario == "fill-only":
            send_all(client, args.topic, args.count, args.size, counters)
        else:
            with client.consumer(args.topic, "g", prefetch=PREFETCH) as consumer:
                counters.consumer = consumer
                stopper: threading.Thread
                if args.scenario == "fast-producer":
                    def produce_then_stop() -> None:
                        send_all(client, args.topic, args.count, args.size, counters)
                        time.sleep(args.linger)
                        consumer.stop()
                    stopper = threading.Thread(target=produce_then_stop, daemon=True)
                else:
                    restore = (_refuse_acks(consumer._open())
                               if args.scenario == "acks-unavailable" else None)

                    def stop_later() -> None:
                        time.sleep(args.seconds)
                        if restore is not None:
                            restore()
                        consumer.stop()
                    stopper = threading.Thread(target=stop_later, daemon=True)
                stopper.start()
                consumer.run(slow_handler(counters, args.handler_ms))
                stopper.join()
                sampler.stop()
                report.end = rss()
        if args.scenario == "fill-only":
            sampler.stop()
            report.end = rss()
        report.seconds = round(time.monotonic() - began, 2)
    report.peak = peak_rss()
    report.sent, report.handled = counters.sent, counters.handled
    return report


async def child_aio(args: argparse.Namespace) -> Report:
    """One scenario on the asyncio face: the producer is a task beside ``consumer.run``."""
    report = Report(args.backend, "aio", args.scenario, args.count, args.size)
    counters = Counters()
    bodies = _bodies(args.size)

    async def send(client: Any, c: Counters) -> None:
        async with client.producer(args.topic) as producer:
            for i in range(0, args.count, BATCH):
                n = min(BATCH, args.count - i)
                await producer.send_batch(bodies[:n])
                c.sent += n

    async with mqkit.aio.connect(args.url) as client:
        if args.scenario not in BACKLOG or args.backend == "memory":
            await client.admin.create_topic(args.topic)
            await client.admin.create_group(args.topic, "g")
        backlog0 = 0
        if args.scenario in BACKLOG and args.backend == "memory":
            await send(client, Counters())
        if args.scenario in BACKLOG:
            backlog0 = args.count
        report.start = rss()
        sampler = Sampler(counters, report, args.sample, backlog0)
        sampler.start()
        began = time.monotonic()
        if args.scenario == "fill-only":
            await send(client, counters)
        else:
            async with client.consumer(args.topic, "g", prefetch=PREFETCH) as consumer:
                counters.consumer = consumer

                restore = (_refuse_acks(await consumer._open(), awaitable=True)
                           if args.scenario == "acks-unavailable" else None)

                async def stopper() -> None:
                    if args.scenario == "fast-producer":
                        await send(client, counters)
                        await asyncio.sleep(args.linger)
                    else:
                        await asyncio.sleep(args.seconds)
                    if restore is not None:
                        restore()
                    consumer.stop()
                task = asyncio.create_task(stopper())
                await consumer.run(async_slow_handler(counters, args.handler_ms))
                await task
        sampler.stop()
        report.end = rss()
        report.seconds = round(time.monotonic() - began, 2)
    report.peak = peak_rss()
    report.sent, report.handled = counters.sent, counters.handled
    return report


def child_fill(args: argparse.Namespace) -> None:
    """Make the topic and group and put ``--count`` messages in (no measuring)."""
    with mqkit.connect(args.url) as client:
        client.admin.create_topic(args.topic)
        client.admin.create_group(args.topic, "g")
        send_all(client, args.topic, args.count, args.size, Counters())


def child_delete(args: argparse.Namespace) -> None:
    """Delete the scenario's topic."""
    with mqkit.connect(args.url) as client:
        client.admin.delete_topic(args.topic)


# -- the parent ------------------------------------------------------------------------

def _spawn(args: argparse.Namespace, **over: Any) -> Report | None:
    """Run one child (``over`` replaces arguments); its Report, or None for fill/delete."""
    argv = [sys.executable, str(HERE), "--child"]
    options = {"backend": args.backend, "url": args.url, "topic": args.topic,
               "scenario": args.scenario, "face": args.face, "count": args.count,
               "size": args.size, "handler_ms": args.handler_ms, "linger": args.linger,
               "seconds": args.seconds, "sample": args.sample} | over
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(f"  FAILED ({options['scenario']}, {options['face']}): "
              f"{proc.stderr.strip()[-2000:]}", flush=True)
        return None
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            data = json.loads(line[len("RESULT "):])
            data["samples"] = [tuple(s) for s in data["samples"]]
            return Report(**data)
    return None


def _mib(n: int) -> str:
    """``n`` bytes in MiB, one decimal."""
    return f"{n / 2**20:,.1f}"


def print_report(r: Report) -> None:
    """One line per scenario, and a few samples of RSS against the backlog."""
    print(f"  {r.backend:8} {r.face:4} {r.scenario:14} start {_mib(r.start):>7} MiB  "
          f"peak {_mib(r.peak):>7} MiB  end {_mib(r.end):>7} MiB  sent {r.sent:>8,}  "
          f"handled {r.handled:>8,}  max in_flight {r.max_in_flight:>4}  "
          f"max backlog {r.max_backlog:>9,}  {r.seconds:6.1f} s", flush=True)
    if r.samples:
        step = max(1, len(r.samples) // 6)
        picks = r.samples[::step] + ([r.samples[-1]] if (len(r.samples) - 1) % step else [])
        print("      t s / RSS MiB / in_flight / backlog: " + "; ".join(
            f"{t:.0f}/{_mib(m)}/{f}/{b:,}" for t, m, f, b in picks), flush=True)


def table(reports: list[Report]) -> str:
    """The results as a Markdown table."""
    lines = ["| backend | face | scenario | backlog at most | RSS start MiB | peak MiB | "
             "end MiB | peak - start MiB | max in_flight | sent | handled |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        lines.append(f"| {r.backend} | {r.face} | {r.scenario} | {r.max_backlog:,} | "
                     f"{_mib(r.start)} | {_mib(r.peak)} | {_mib(r.end)} | "
                     f"{_mib(r.peak - r.start)} | {r.max_in_flight} | {r.sent:,} | "
                     f"{r.handled:,} |")
    return "\n".join(lines)


def run_backend(args: argparse.Namespace, backend: str, url: str,
                faces: list[str]) -> list[Report]:
    """Every scenario of one backend, each in its own subprocess."""
    out: list[Report] = []
    for face in faces:
        scenarios = [s for s in args.scenarios.split(",")
                     if s.strip() and (backend == "memory" or s.strip() != "fill-only")]
        for scenario in (s.strip() for s in scenarios):
            backlogs = [args.count, args.small_backlog] if scenario == "slow-consumer" \
                else [args.count]
            for count in backlogs:
                topic = f"bench-bp-{uuid.uuid4().hex[:8]}"
                # memory:// brokers are per process: a fresh name each time anyway.
                the_url = f"memory://bp-{uuid.uuid4().hex[:8]}" if backend == "memory" else url
                ns = argparse.Namespace(**vars(args))
                ns.backend, ns.url, ns.topic, ns.face = backend, the_url, topic, face
                ns.scenario, ns.count = scenario, count
                print(f"-- {backend} {face} {scenario} ({count:,} messages)", flush=True)
                try:
                    if scenario in BACKLOG and backend != "memory":
                        _spawn(ns, scenario="fill", face="sync")
                    report = _spawn(ns)
                finally:
                    if backend != "memory":
                        _spawn(ns, scenario="delete", face="sync")
                if report is not None:
                    print_report(report)
                    out.append(report)
    return out


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    """The command line (the parent's and the child's)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="memory,redis",
                        help="memory and any of redis, rabbitmq, kafka, nats, sqs (their "
                             "MQKIT_TEST_<BACKEND>_URL must be set)")
    parser.add_argument("--faces", default="sync", help="sync, aio or sync,aio")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="any of fill-only (memory:// only), fast-producer, "
                             "slow-consumer, acks-unavailable")
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--small-backlog", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--handler-ms", type=float, default=10.0,
                        help="the handler sleeps this long every 100 messages")
    parser.add_argument("--linger", type=float, default=3.0,
                        help="fast-producer: seconds the consumer goes on after the last send")
    parser.add_argument("--seconds", type=float, default=15.0,
                        help="slow-consumer, acks-unavailable: seconds the consumer runs")
    parser.add_argument("--sample", type=float, default=0.5)
    parser.add_argument("--json", default=str(HERE.parent.parent / "build" / "bench"
                                              / "backpressure.json"))
    # The child's own arguments.
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("backend", "url", "topic", "scenario", "face"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the scenarios (the parent), or one of them (``--child``)."""
    args = _arguments(argv)
    if args.child:
        if args.scenario == "fill":
            child_fill(args)
        elif args.scenario == "delete":
            child_delete(args)
        else:
            report = (asyncio.run(child_aio(args)) if args.face == "aio"
                      else child_sync(args))
            print("RESULT " + json.dumps(asdict(report)), flush=True)
        return
    faces = [f.strip() for f in args.faces.split(",") if f.strip()]
    reports: list[Report] = []
    for backend in (b.strip() for b in args.backends.split(",") if b.strip()):
        url = "memory://" if backend == "memory" else os.environ.get(
            f"MQKIT_TEST_{backend.upper()}_URL", "")
        if not url:
            print(f"{backend}: MQKIT_TEST_{backend.upper()}_URL not set, skipped")
            continue
        reports += run_backend(args, backend, url, faces)
    print()
    print(table(reports))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([asdict(r) for r in reports], indent=1) + "\n",
                   encoding="utf-8")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
