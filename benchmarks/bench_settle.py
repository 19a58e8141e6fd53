"""Batched settlement: per-message ``msg.ack()`` against the raw client's batched acks.

    eval "$(scripts/brokers env)"
    python benchmarks/bench_settle.py --backends redis,nats --count 5000 --rounds 3

For each backend whose ``MQKIT_TEST_<BACKEND>_URL`` is set (or given in ``--backends``),
one topic with four groups is filled with ``--count`` 100-byte messages per round (mqkit
``send_batch``, not timed), then each group is drained by one variant, interleaved:

* (a) mqkit blocking: ``receive(100)`` then ``msg.ack()`` per message;
* (b) mqkit asyncio: the same with ``await msg.ack()``;
* (c) mqkit blocking: ``receive(100)`` then ``consumer.ack(msgs)``;
* (d) the raw client's batched consume with the same durability: pika ``basic_consume``
  (prefetch 100) with one multiple-ack per 100, kafka-python ``poll`` + ``commit`` per
  poll, redis ``XREADGROUP`` + one ``XACK`` per batch, nats-py JetStream ``fetch(100)`` +
  acks + flush, boto3 ``receive_message(10)`` + ``delete_message_batch``;
* (e) where the client has an asyncio face of its own (redis-py's ``redis.asyncio``), the
  same batched consume on it: the baseline of (b), whose driver is that face.

Every variant is timed from its first batch in hand (``FirstBatchClock``): opening the
subscription and a Kafka group join are left out on every side, with that first batch's
count. mqkit variants end with ``flush_settlements()`` inside the timed part (every decision
taken by the broker, as the raw side's last ack). Prints the median msgs/s of each
variant over ``--rounds`` rounds and the ratios (a)/(d), (b)/(d), (b)/(a); for SQS also
requests per message (send + receive + delete). Targets: (a)/(d) >= 0.9; (b)/(d) >= 0.9
and (b)/(a) >= 0.8 over blocking drivers ((b)/(e) >= 0.9 where the driver is the client's
asyncio face); SQS <= 0.30 requests/msg (sends, receives and deletes per message; the
one-time lookups a producer or consumer makes when it opens are printed apart).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import FirstBatchClock, Result, report

import mqkit
import mqkit.aio

ROOT = Path(__file__).resolve().parents[1]
BODY = b"x" * 100
BATCH = 100
BACKENDS = ("rabbitmq", "kafka", "sqs", "redis", "nats")
DEFAULT_COUNT = {"sqs": 300}
GROUPS = {"a": "ga", "b": "gb", "c": "gc", "d": "g", "e": "ge"}  # (d) "g": the raw side's
LABELS = {"a": "mqkit receive+msg.ack()", "b": "mqkit aio receive+await msg.ack()",
          "c": "mqkit receive+ack(msgs)", "d": "raw batched consume",
          "e": "raw asyncio batched consume"}


def _ensure_plugin(backend: str) -> None:
    """Register the adapter in-process when its entry point is not installed."""
    from mqkit._registry import plugin_for, register
    try:
        plugin_for(backend)
    except mqkit.ConfigurationError:
        sys.path.insert(0, str(ROOT / "adapters" / backend))
        module = __import__(f"mqkit_{backend}", fromlist=["plugin"])
        register(module.plugin)


# -- mqkit variants ----------------------------------------------------------------------

def fill(client: mqkit.Client, topic: str, count: int) -> None:
    """``count`` messages into every group of ``topic`` (not timed)."""
    with client.producer(topic) as producer:
        for i in range(0, count, BATCH):
            producer.send_batch([mqkit.Message(BODY, key="k")
                                 for _ in range(min(BATCH, count - i))])


def _drain(client: mqkit.Client, topic: str, count: int, timeout: float,
           variant: str) -> Result:
    """Variant (a), ``msg.ack()`` per message, or (c), ``consumer.ack(msgs)`` per batch."""
    with client.consumer(topic, GROUPS[variant], prefetch=BATCH) as consumer:
        clock = FirstBatchClock()
        got = 0
        while got < count:
            msgs = consumer.receive(BATCH, timeout=timeout)
            if not msgs:
                raise RuntimeError(f"({variant}) stalled at {got}")
            clock.got(len(msgs))
            if variant == "a":
                for msg in msgs:
                    msg.ack()
            else:
                consumer.ack(msgs)
            got += len(msgs)
        consumer.flush_settlements()
        return clock.result("mqkit", LABELS[variant], got)


def mqkit_each(client: mqkit.Client, topic: str, count: int, timeout: float) -> Result:
    return _drain(client, topic, count, timeout, "a")


def mqkit_batch(client: mqkit.Client, topic: str, count: int, timeout: float) -> Result:
    return _drain(client, topic, count, timeout, "c")


async def _aio_each(url: str, topic: str, count: int, timeout: float,
                    on_client: Callable[[Any], None] | None) -> Result:
    async with mqkit.aio.connect(url) as client:
        if on_client is not None:
            on_client(client)
        async with client.consumer(topic, GROUPS["b"], prefetch=BATCH) as consumer:
            clock = FirstBatchClock()
            got = 0
            while got < count:
                msgs = await consumer.receive(BATCH, timeout=timeout)
                if not msgs:
                    raise RuntimeError(f"(b) stalled at {got}")
                clock.got(len(msgs))
                for msg in msgs:
                    await msg.ack()
                got += len(msgs)
            await consumer.flush_settlements()
            return clock.result("mqkit", LABELS["b"], got)


def aio_each(url: str, topic: str, count: int, timeout: float,
             on_client: Callable[[Any], None] | None = None) -> Result:
    return asyncio.run(_aio_each(url, topic, count, timeout, on_client))


# -- raw batched consumes ----------------------------------------------------------------

def raw_rabbitmq(url: str, topic: str, count: int) -> Result:
    """pika ``basic_consume`` (prefetch 100), one multiple-ack per 100 messages
    (bench_rabbitmq's raw_consume acks each message, so it is not the batched one)."""
    import pika
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=BATCH)
    got = 0
    clock = FirstBatchClock()

    def on_message(c: Any, method: Any, props: Any, body: bytes) -> None:
        nonlocal got
        got += 1
        if got == 1:
            clock.got(1)  # a push consumer's first batch is its first message
        if got % BATCH == 0 or got >= count:
            c.basic_ack(method.delivery_tag, multiple=True)
        if got >= count:
            c.stop_consuming()

    ch.basic_consume(f"{topic}.{GROUPS['d']}", on_message)
    try:
        ch.start_consuming()
        return clock.result("pika", LABELS["d"] + " (multi-ack/100)", got)
    finally:
        conn.close()


def raw_kafka(url: str, topic: str, count: int) -> Result:
    """kafka-python ``poll(100)`` + ``commit()`` per poll (no auto-commit)."""
    from bench_kafka import _servers
    from kafka import KafkaConsumer
    consumer = KafkaConsumer(topic, bootstrap_servers=_servers(url), group_id=f"{topic}.raw",
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             max_poll_records=BATCH)
    try:
        clock = FirstBatchClock()
        got = 0
        stalled = time.monotonic() + 30
        while got < count:
            batches = consumer.poll(timeout_ms=1000, max_records=BATCH)
            n = sum(len(v) for v in batches.values())
            if n:
                clock.got(n)
                consumer.commit()
                got += n
            elif time.monotonic() > stalled:
                raise RuntimeError(f"(d) stalled at {got}")
        return clock.result("kafka-py", LABELS["d"] + " (poll+commit)", got)
    finally:
        consumer.close()


def raw_redis(url: str, topic: str, count: int) -> Result:
    """redis-py ``XREADGROUP`` 100 + one ``XACK`` per batch."""
    import redis
    r = redis.Redis.from_url(url)
    try:
        clock = FirstBatchClock()
        got = 0
        while got < count:
            reply = r.xreadgroup(GROUPS["d"], "raw", {topic: ">"}, count=BATCH, block=5000)
            if not reply:
                raise RuntimeError(f"(d) stalled at {got}")
            ids = [entry_id for entry_id, _ in reply[0][1]]
            clock.got(len(ids))
            r.xack(topic, GROUPS["d"], *ids)
            got += len(ids)
        return clock.result("redis-py", LABELS["d"] + " (xreadgroup+xack)", got)
    finally:
        r.close()


async def _raw_redis_aio(url: str, topic: str, count: int) -> Result:
    import redis.asyncio
    r = redis.asyncio.Redis.from_url(url)
    try:
        clock = FirstBatchClock()
        got = 0
        while got < count:
            reply = await r.xreadgroup(GROUPS["e"], "raw", {topic: ">"}, count=BATCH,
                                       block=5000)
            if not reply:
                raise RuntimeError(f"(e) stalled at {got}")
            ids = [entry_id for entry_id, _ in reply[0][1]]
            clock.got(len(ids))
            await r.xack(topic, GROUPS["e"], *ids)
            got += len(ids)
        return clock.result("redis.asyncio", LABELS["e"] + " (xreadgroup+xack)", got)
    finally:
        await r.aclose()


def raw_redis_aio(url: str, topic: str, count: int) -> Result:
    return asyncio.run(_raw_redis_aio(url, topic, count))


async def _raw_nats(url: str, topic: str, count: int) -> Result:
    import nats
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe_bind(GROUPS["d"], stream="MQKIT_" + topic.replace(".", "_"))
        clock = FirstBatchClock()
        got = 0
        while got < count:
            msgs = await sub.fetch(min(BATCH, count - got), timeout=5)
            clock.got(len(msgs))
            for msg in msgs:
                await msg.ack()
            await nc.flush()
            got += len(msgs)
        return clock.result("nats-py", LABELS["d"] + " (fetch+ack+flush)", got)
    finally:
        await nc.close()


def raw_nats(url: str, topic: str, count: int) -> Result:
    return asyncio.run(_raw_nats(url, topic, count))


def raw_sqs(sqs: Any, queue_url: str, count: int) -> Result:
    """boto3 receive 10 (long poll) + one delete_message_batch per receive."""
    clock = FirstBatchClock()
    got = 0
    while got < count:
        msgs = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=20,
            VisibilityTimeout=30, MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        ).get("Messages", [])
        if not msgs:
            raise RuntimeError(f"(d) stalled at {got}")
        clock.got(len(msgs))
        reply = sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
        if reply.get("Failed"):
            raise RuntimeError(f"(d) deletes failed: {reply['Failed']}")
        got += len(msgs)
    return clock.result("boto3", LABELS["d"] + " (receive 10+delete batch)", got)


# -- one backend -------------------------------------------------------------------------

# Lookups a producer, consumer or client makes once when it opens (the topic's existence,
# a queue's URL): counted apart, as they do not grow with the number of messages.
ONE_TIME = frozenset({"GetTopicAttributes", "GetQueueUrl", "GetQueueAttributes"})


class Requests:
    """Counts HTTP requests of the boto3 clients it is attached to (``before-send``)."""

    def __init__(self) -> None:
        self.count = 0
        self.ops: collections.Counter[str] = collections.Counter()

    def attach(self, *clients: Any) -> None:
        for client in clients:
            if client is not None:
                client.meta.events.register("before-send", self._count)

    def per_message(self) -> int:
        """Requests that scale with the messages (sends, receives, deletes)."""
        return sum(n for op, n in self.ops.items() if op not in ONE_TIME)

    def at_open(self) -> int:
        """Requests made once per producer/consumer/client (lookups at open)."""
        return sum(n for op, n in self.ops.items() if op in ONE_TIME)

    def _count(self, event_name: str = "", **_: Any) -> None:
        self.count += 1
        self.ops[event_name.rsplit(".", 1)[-1]] += 1


def bench_backend(backend: str, url: str, count: int, rounds: int) -> None:
    _ensure_plugin(backend)
    timeout = 20.0 if backend == "sqs" else 5.0
    topic = f"bench-settle-{uuid.uuid4().hex[:8]}"
    rates: dict[str, list[Result]] = {k: [] for k in GROUPS}
    requests: dict[str, list[float]] = {k: [] for k in GROUPS}
    at_open: dict[str, list[int]] = {k: [] for k in GROUPS}
    with mqkit.connect(url) as client:
        client.admin.create_topic(topic)
        for group in GROUPS.values():
            client.admin.create_group(topic, group)
        sqs_raw: Any = None
        counter = Requests()
        if backend == "sqs":
            from bench_sqs import raw_clients
            from mqkit_sqs import AwsClients
            sqs_raw, _sns = raw_clients(mqkit.URL.parse(url))
            native = client.as_(AwsClients)
            assert native is not None
            counter.attach(native.sqs, native.sns, sqs_raw)
            queue_url = sqs_raw.get_queue_url(QueueName=f"{topic}-{GROUPS['d']}")["QueueUrl"]

        def attach_aio(aio_client: Any) -> None:
            from mqkit_sqs import AwsClients
            native = aio_client.as_(AwsClients)
            if native is None:
                print("sqs: the asyncio client gave no AwsClients; (b) requests not counted")
            else:
                counter.attach(native.sqs, native.sns)

        phases: dict[str, Callable[[], Result]] = {
            "a": lambda: mqkit_each(client, topic, count, timeout),
            "b": lambda: aio_each(url, topic, count, timeout,
                                  attach_aio if backend == "sqs" else None),
            "c": lambda: mqkit_batch(client, topic, count, timeout),
            "d": {"rabbitmq": lambda: raw_rabbitmq(url, topic, count),
                  "kafka": lambda: raw_kafka(url, topic, count),
                  "redis": lambda: raw_redis(url, topic, count),
                  "nats": lambda: raw_nats(url, topic, count),
                  "sqs": lambda: raw_sqs(sqs_raw, queue_url, count)}[backend],
        }
        if backend == "redis":
            phases["e"] = lambda: raw_redis_aio(url, topic, count)
        try:
            for rnd in range(rounds):
                counter.ops.clear()
                fill(client, topic, count)  # one send fans out to all four groups
                send_per_msg = counter.per_message() / count
                order = list(phases)
                if rnd % 2:  # alternate the order, so drift does not favour one side
                    order.reverse()
                for key in order:
                    counter.ops.clear()
                    result = phases[key]()
                    rates[key].append(result)
                    requests[key].append(send_per_msg + counter.per_message() / count)
                    at_open[key].append(counter.at_open())
                    report(Result(backend, f"r{rnd + 1} ({key}) {result.label}", result.count,
                                  result.seconds))
                    if backend == "sqs":
                        print(f"   ({key}) requests: {dict(sorted(counter.ops.items()))}")
        finally:
            client.admin.delete_topic(topic)
    _summary(backend, count, rounds, rates=rates, requests=requests, at_open=at_open)


def _summary(backend: str, count: int, rounds: int, *, rates: dict[str, list[Result]],
             requests: dict[str, list[float]], at_open: dict[str, list[int]]) -> None:
    med = {k: statistics.median(r.rate for r in v) for k, v in rates.items() if v}
    print(f"-- {backend}: median of {rounds} rounds, {count} msgs of {len(BODY)} B each")
    for key, rate in med.items():
        line = f"{backend:9} ({key}) {LABELS[key]:36} {rate:>10,.0f} msgs/s"
        if backend == "sqs":
            line += (f"   {statistics.median(requests[key]):.3f} requests/msg "
                     f"(+{statistics.median(at_open[key]):.0f} at open)")
        print(line)
    print(f"{backend:9} ratios (a)/(d) {med['a'] / med['d']:.2f}   (b)/(d) "
          f"{med['b'] / med['d']:.2f}   (b)/(a) {med['b'] / med['a']:.2f}   "
          f"(c)/(d) {med['c'] / med['d']:.2f}"
          + (f"   (b)/(e) {med['b'] / med['e']:.2f}" if "e" in med else ""), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="comma-separated; a backend whose MQKIT_TEST_<NAME>_URL is "
                             "not set is skipped")
    parser.add_argument("--count", type=int, default=5000,
                        help="messages per variant per round (sqs: at most 300 unless "
                             "--sqs-count is given)")
    parser.add_argument("--sqs-count", type=int, default=DEFAULT_COUNT["sqs"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    for backend in (b.strip() for b in args.backends.split(",") if b.strip()):
        url = os.environ.get(f"MQKIT_TEST_{backend.upper()}_URL")
        if not url:
            print(f"{backend}: MQKIT_TEST_{backend.upper()}_URL not set, skipped")
            continue
        count = args.sqs_count if backend == "sqs" else args.count
        if backend == "sqs":
            count -= count % 10
        bench_backend(backend, url, count, max(1, args.rounds))


if __name__ == "__main__":
    main()
