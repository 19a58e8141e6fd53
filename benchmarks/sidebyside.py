"""Side by side: mqkit (both faces), the raw client, kombu and faststream on the same brokers.

    eval "$(scripts/brokers env)"          # or: source a file exporting MQKIT_TEST_*_URL
    python -m benchmarks --quick           # a smoke run: every backend, small counts
    python -m benchmarks --backends redis,nats --count 5000 --rounds 3 --plot out.png

What is measured, per backend, per message size (``--sizes``, 100 B and 10 KiB), in
``--rounds`` rounds (the order of the sides alternates from round to round, so drift on a
shared machine does not favour one side), in one process on the same brokers:

* **send**: ``--count`` messages sent in batches of 100, each batch returning once the
  broker has taken all of it (the durable guarantee): mqkit ``producer.send_batch`` on the
  blocking and on the asyncio face, and the raw client with the same guarantee and the
  same 100 per batch (pika: publish 100 then wait for their confirms; kafka-python:
  ``acks=all``, idempotent, ``flush`` per 100; redis-py: one pipeline of 100 ``XADD``;
  nats-py: 100 ``publish_async`` then await their PubAcks; boto3: ten SNS
  ``publish_batch`` of 10). The message objects are built inside the timed loop on every
  side, as a user's code builds them.
* **receive**: ``--count`` messages drained from a group filled beforehand: mqkit
  ``receive(100)`` then ``msg.ack()`` per message (blocking, and ``await msg.ack()`` on the
  asyncio face) ending with ``flush_settlements()``, against the raw client's batched
  consume with the same durability (bench_settle.py's variants (a), (b) and (d)). Every
  receive side (kombu and faststream too) is timed from its first batch in hand, without
  that batch: opening the subscription and a Kafka group join are left out alike.
* **kombu** (RabbitMQ; Redis through its list transport; SQS; Kafka through its
  confluent-kafka transport) and **faststream**
  (RabbitMQ, Redis streams, NATS JetStream, Kafka), each the way its documentation shows:
  a publish per message awaited (kombu with ``confirm_publish``, faststream's publisher
  confirms / PubAck / ``acks=all``), and a subscriber acking every message. They send to
  and consume from a destination of their own with the same durability (durable quorum
  queue; a JetStream file stream; a stream consumer group; a topic of 3 partitions).

A result is msgs/s; the table shows each side's median over the rounds with the min-max
spread, and the ratios mqkit/raw, mqkit asyncio/raw and mqkit/kombu, mqkit/faststream.
The whole run is written as JSON (``--json``, default ``build/bench/results.json``) and,
with ``--plot PATH``, drawn (matplotlib, the ``bench`` extra). ``--latency`` adds p50/p99
send→receive latency at a fixed rate for mqkit and the raw client.

Speed is printed, never asserted. Every topic, queue and stream made here is deleted.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:  # the sibling scripts import each other as top-level modules
    sys.path.insert(0, str(HERE))

import bench_settle  # noqa: E402
from _harness import Result  # noqa: E402

import mqkit  # noqa: E402
import mqkit.aio  # noqa: E402

BACKENDS = ("rabbitmq", "kafka", "sqs", "redis", "nats")
BATCH = 100
SIDES = ("mqkit", "mqkit-aio", "raw", "kombu", "faststream")
# The client each backend's "raw" side uses.
RAW_CLIENT = {"rabbitmq": "pika", "kafka": "kafka-python", "sqs": "boto3", "redis": "redis-py",
              "nats": "nats-py"}
# The producer settings the raw side uses too (bench_kafka.py): 3 partitions, acks=all.
MQKIT_OPTIONS: dict[str, dict[str, Any]] = {
    "kafka": {"partitions": 3, "linger_ms": 5, "batch_size": 262_144, "acks": "all",
              "idempotence": True},
}
KOMBU = ("rabbitmq", "redis", "sqs", "kafka")
FASTSTREAM = ("rabbitmq", "redis", "nats", "kafka")


def _key(backend: str, i: int) -> str | None:
    """Message keys: spread over the Kafka partitions as the raw producer does; none
    elsewhere, as the raw sides there send none."""
    return str(i % 64) if backend == "kafka" else None


# -- mqkit send, both faces ------------------------------------------------------------

def mqkit_send(client: mqkit.Client, backend: str, topic: str, body: bytes,
               count: int) -> Result:
    with client.producer(topic) as producer:
        start = time.perf_counter()
        for i in range(0, count, BATCH):
            producer.send_batch([mqkit.Message(body, key=_key(backend, j))
                                 for j in range(i, min(count, i + BATCH))])
        return Result("mqkit", f"send_batch({BATCH})", count, time.perf_counter() - start)


async def _aio_send(url: str, backend: str, topic: str, body: bytes, count: int) -> Result:
    async with mqkit.aio.connect(url, **MQKIT_OPTIONS.get(backend, {})) as client:
        async with client.producer(topic) as producer:
            start = time.perf_counter()
            for i in range(0, count, BATCH):
                await producer.send_batch([mqkit.Message(body, key=_key(backend, j))
                                           for j in range(i, min(count, i + BATCH))])
            return Result("mqkit", f"aio send_batch({BATCH})", count,
                          time.perf_counter() - start)


def aio_send(url: str, backend: str, topic: str, body: bytes, count: int) -> Result:
    return asyncio.run(_aio_send(url, backend, topic, body, count))


# -- raw sends into the same topic -----------------------------------------------------

async def _raw_nats_send(url: str, topic: str, body: bytes, count: int) -> Result:
    import nats
    nc = await nats.connect(url)
    try:
        js = nc.jetstream(publish_async_max_pending=BATCH)
        start = time.perf_counter()
        for i in range(0, count, BATCH):
            futures = [await js.publish_async(topic, body)
                       for _ in range(min(BATCH, count - i))]
            await asyncio.gather(*futures)
        return Result("nats-py", f"raw publish_async({BATCH})+PubAcks", count,
                      time.perf_counter() - start)
    finally:
        await nc.close()


def raw_sqs_send(sns: Any, arn: str, body: bytes, count: int) -> Result:
    text = body.decode()
    start = time.perf_counter()
    for _ in range(0, count, 10):
        reply = sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
            {"Id": str(i), "Message": text, "MessageAttributes": {
                "id": {"DataType": "String", "StringValue": uuid.uuid4().hex}}}
            for i in range(10)])
        assert not reply.get("Failed"), reply["Failed"]
    return Result("boto3", "raw sns publish_batch(10) x10", count, time.perf_counter() - start)


class Raw:
    """The raw client of ``backend``: a send into mqkit's topic, a batched consume of its
    group ``g`` (bench_settle's (d))."""

    def __init__(self, backend: str, url: str, topic: str) -> None:
        self.backend, self.url, self.topic = backend, url, topic
        self.sqs: Any = None
        if backend == "sqs":
            from bench_sqs import raw_clients
            self.sqs, self.sns = raw_clients(mqkit.URL.parse(url))
            self.arn = self.sns.create_topic(Name=topic)["TopicArn"]  # idempotent
            self.queue_url = self.sqs.get_queue_url(QueueName=f"{topic}-g")["QueueUrl"]

    def send(self, body: bytes, count: int) -> Result:
        if self.backend == "rabbitmq":
            from bench_rabbitmq import raw_send_batched
            return raw_send_batched(self.url, self.topic, count, BATCH, body)
        if self.backend == "kafka":
            from bench_kafka import _servers, raw_send
            return raw_send(_servers(self.url), self.topic, count, BATCH, body)
        if self.backend == "redis":
            import redis
            from bench_redis import raw_send as redis_send
            r = redis.Redis.from_url(self.url)
            try:
                return redis_send(r, self.topic, count, BATCH, body)
            finally:
                r.close()
        if self.backend == "nats":
            return asyncio.run(_raw_nats_send(self.url, self.topic, body, count))
        return raw_sqs_send(self.sns, self.arn, body, count)

    def receive(self, count: int) -> Result:
        if self.backend == "rabbitmq":
            return bench_settle.raw_rabbitmq(self.url, self.topic, count)
        if self.backend == "kafka":
            return bench_settle.raw_kafka(self.url, self.topic, count)
        if self.backend == "redis":
            return bench_settle.raw_redis(self.url, self.topic, count)
        if self.backend == "nats":
            return bench_settle.raw_nats(self.url, self.topic, count)
        return bench_settle.raw_sqs(self.sqs, self.queue_url, count)


# -- one run ---------------------------------------------------------------------------

@dataclass
class Series:
    """One side's measurements of one phase (all rounds)."""

    backend: str
    size: int
    phase: str  # "send" | "receive"
    side: str   # one of SIDES
    label: str = ""
    count: int = 0
    rates: list[float] = field(default_factory=list)

    def add(self, result: Result) -> None:
        self.label, self.count = result.label, result.count
        self.rates.append(result.rate)

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    def as_json(self) -> dict[str, Any]:
        return {"backend": self.backend, "size": self.size, "phase": self.phase,
                "side": self.side, "label": self.label, "count": self.count,
                "rates": [round(r, 1) for r in self.rates], "median": round(self.median, 1),
                "min": round(min(self.rates), 1), "max": round(max(self.rates), 1)}


class Run:
    """Every series of a run, keyed by (backend, size, phase, side)."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, int, str, str], Series] = {}
        self.latency: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def add(self, backend: str, size: int, phase: str, side: str, result: Result) -> None:
        key = (backend, size, phase, side)
        self.series.setdefault(key, Series(backend, size, phase, side)).add(result)
        print(f"  {backend:9} {_size(size):>6} {phase:8} {side:11} {result.label:44} "
              f"{result.count:>7} msgs {result.rate:>10,.0f} msgs/s", flush=True)

    def get(self, backend: str, size: int, phase: str, side: str) -> Series | None:
        return self.series.get((backend, size, phase, side))


def _size(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


class Stalled(Exception):
    """A measurement ran past its deadline (a lost confirm, a broker that stopped)."""


def _on_alarm(signum: int, frame: object) -> None:
    raise Stalled(f"no end after {DEADLINE} s")


DEADLINE = 180  # seconds one measurement may take before it is abandoned


def _attempt(run: Run, where: tuple[str, int, str, str], work: Callable[[], Result]) -> None:
    """Run one measurement; a side that fails or stalls is noted and skipped, not fatal."""
    backend, size, phase, side = where
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(DEADLINE)
    try:
        run.add(backend, size, phase, side, work())
    except Exception as exc:  # a peer library's failure must not lose the run
        note = f"{backend} {_size(size)} {phase} {side}: {type(exc).__name__}: {exc}"
        print("  FAILED " + note, flush=True)
        run.notes.append(note)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def bench_round(run: Run, backend: str, url: str, size: int, count: int, *, rnd: int,
                peers: list[str]) -> None:
    """One round on one backend and size: every side sends, then every side receives."""
    body = b"x" * size
    timeout = 20.0 if backend == "sqs" else 5.0
    topic = f"bench-sbs-{uuid.uuid4().hex[:8]}"
    options = MQKIT_OPTIONS.get(backend, {})
    with mqkit.connect(url, **options) as client:
        client.admin.create_topic(topic)
        for group in ("ga", "gb", "g"):  # mqkit blocking, mqkit asyncio, raw
            client.admin.create_group(topic, group)
        others: dict[str, Any] = {}
        try:
            raw = Raw(backend, url, topic)
            for name in peers:
                try:
                    others[name] = _peer(name, backend, url)
                except Exception as exc:  # kombu or faststream not installed, or failing
                    note = f"{backend} {_size(size)} {name}: {type(exc).__name__}: {exc}"
                    print("  FAILED " + note, flush=True)
                    run.notes.append(note)
            # Every sender writes ``count`` into the same topic (or the peer's own), so
            # each group holds at least ``count`` when the receivers run.
            senders: list[tuple[str, Callable[[], Result]]] = [
                ("mqkit", lambda: mqkit_send(client, backend, topic, body, count)),
                ("mqkit-aio", lambda: aio_send(url, backend, topic, body, count)),
                ("raw", lambda: raw.send(body, count)),
            ]
            senders += [(name, lambda p=peer: p.send(body, count))
                        for name, peer in others.items()]
            receivers: list[tuple[str, Callable[[], Result]]] = [
                ("mqkit", lambda: bench_settle.mqkit_each(client, topic, count, timeout)),
                ("mqkit-aio", lambda: bench_settle.aio_each(url, topic, count, timeout)),
                ("raw", lambda: raw.receive(count)),
            ]
            receivers += [(name, lambda p=peer: p.receive(count))
                          for name, peer in others.items()]
            if rnd % 2:
                senders.reverse()
                receivers.reverse()
            for side, work in senders:
                _attempt(run, (backend, size, "send", side), work)
            for side, work in receivers:
                _attempt(run, (backend, size, "receive", side), work)
        finally:
            for peer in others.values():
                try:
                    peer.close()
                except Exception as exc:
                    print(f"  cleanup of {peer!r} failed: {exc}")
            client.admin.delete_topic(topic)


def _peer(name: str, backend: str, url: str) -> Any:
    import peers
    return peers.make(name, backend, url)


# -- the table ---------------------------------------------------------------------------

def _cell(series: Series | None) -> str:
    if series is None or not series.rates:
        return "—"
    if len(series.rates) == 1:
        return f"{series.median:,.0f}"
    return f"{series.median:,.0f} ({min(series.rates):,.0f}-{max(series.rates):,.0f})"


def _ratio(mine: Series | None, other: Series | None) -> str:
    if mine is None or other is None or not mine.rates or not other.rates:
        return "—"
    return f"{mine.median / other.median:.2f}"


def table(run: Run) -> str:
    """The results as a Markdown table: medians (min-max) in msgs/s, and ratios."""
    lines = ["| backend | size | phase | mqkit | mqkit asyncio | raw client | kombu | "
             "faststream | mqkit/raw | asyncio/raw | mqkit/kombu | mqkit/faststream |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(b, s, p) for (b, s, p, _) in run.series},
                  key=lambda k: (BACKENDS.index(k[0]), k[1], k[2] != "send"))
    for backend, size, phase in keys:
        got = {side: run.get(backend, size, phase, side) for side in SIDES}
        lines.append(
            f"| {backend} | {_size(size)} | {phase} | {_cell(got['mqkit'])} | "
            f"{_cell(got['mqkit-aio'])} | {_cell(got['raw'])} ({RAW_CLIENT[backend]}) | "
            f"{_cell(got['kombu'])} | {_cell(got['faststream'])} | "
            f"{_ratio(got['mqkit'], got['raw'])} | {_ratio(got['mqkit-aio'], got['raw'])} | "
            f"{_ratio(got['mqkit'], got['kombu'])} | "
            f"{_ratio(got['mqkit'], got['faststream'])} |")
    return "\n".join(lines)


def latency_table(rows: list[dict[str, Any]]) -> str:
    import latency
    return latency.table(rows)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version
    out = {"mqkit": mqkit.__version__, "python": platform.python_version()}
    for dist in ("pika", "kafka-python", "boto3", "redis", "nats-py", "kombu", "faststream",
                 "aio-pika", "aiokafka", "confluent-kafka"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="mqkit beside the raw clients, kombu and faststream: send_batch(100) "
                    "and receive(100) + msg.ack(), msgs/s, per backend and size.")
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="comma-separated; a backend whose MQKIT_TEST_<NAME>_URL is not "
                             "set is skipped")
    parser.add_argument("--count", type=int, default=5000,
                        help="messages per side per phase per round (default 5000)")
    parser.add_argument("--sqs-count", type=int, default=300,
                        help="the same for SQS (moto is slow; default 300)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="100,10240", help="message sizes in bytes")
    parser.add_argument("--peers", default="kombu,faststream",
                        help="comma-separated peers to run where they support the backend "
                             "('' for none)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 500 messages (SQS 50), 1 round")
    parser.add_argument("--latency", action="store_true",
                        help="also p50/p99 send->receive latency at --rate msgs/s")
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--json", default=str(ROOT / "build" / "bench" / "results.json"))
    parser.add_argument("--plot", metavar="PATH", help="also draw the results (matplotlib)")
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.sqs_count, args.rounds = 500, 50, 1
        args.duration = min(args.duration, 2.0)
    return args


def main(argv: list[str] | None = None) -> None:
    """Run every backend whose URL is set, print the table, write the JSON (and plot)."""
    args = _arguments(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    wanted_peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    run = Run()
    started = datetime.datetime.now(datetime.timezone.utc)
    for backend in (b.strip() for b in args.backends.split(",") if b.strip()):
        url = os.environ.get(f"MQKIT_TEST_{backend.upper()}_URL")
        if not url:
            print(f"{backend}: MQKIT_TEST_{backend.upper()}_URL not set, skipped")
            continue
        bench_settle._ensure_plugin(backend)
        count = args.sqs_count if backend == "sqs" else args.count
        count = max(BATCH, count - count % BATCH)
        peers = [p for p in wanted_peers
                 if backend in {"kombu": KOMBU, "faststream": FASTSTREAM}.get(p, ())]
        for size in sizes:
            for rnd in range(max(1, args.rounds)):
                print(f"-- {backend}, {_size(size)}, round {rnd + 1}", flush=True)
                try:
                    bench_round(run, backend, url, size, count, rnd=rnd, peers=peers)
                except Exception as exc:  # the broker is down: the next backend still runs
                    note = f"{backend} {_size(size)} round {rnd + 1}: {type(exc).__name__}: {exc}"
                    print("  FAILED " + note, flush=True)
                    run.notes.append(note)
        if args.latency:
            import latency
            run.latency += latency.bench(backend, url, args.rate, args.duration)
    print()
    print(table(run))
    if run.latency:
        print()
        print(latency_table(run.latency))
    for note in run.notes:
        print("failed: " + note)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "processor": platform.machine()},
        "versions": _versions(),
        "args": {"count": args.count, "sqs_count": args.sqs_count, "rounds": args.rounds,
                 "sizes": sizes, "batch": BATCH, "peers": wanted_peers},
        "results": [s.as_json() for s in run.series.values()],
        "latency": run.latency,
        "failed": run.notes,
    }, indent=1) + "\n", encoding="utf-8")
    tables = table(run) + ("\n\n" + latency_table(run.latency) if run.latency else "")
    out.with_suffix(".md").write_text(tables + "\n", encoding="utf-8")
    print(f"\nwrote {out} and {out.with_suffix('.md')} (the tables)")
    if args.plot:
        import plot
        plot.render(json.loads(out.read_text(encoding="utf-8")), Path(args.plot))
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
