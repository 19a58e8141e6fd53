"""Send-to-receive latency at a fixed rate, mqkit beside the raw client (sidebyside.py).

    python -m benchmarks --latency --rate 500 --duration 5

What is measured: ``rate * duration`` messages of 100 bytes are sent one at a time on a
fixed schedule (``rate`` per second), each send returning once the broker took it (mqkit
``producer.send``; pika with publisher confirms; redis-py ``XADD``; kafka-python
``send()``, ``flush()`` and ``get()`` with ``acks=all``; nats-py ``js.publish`` awaiting
its PubAck), while a consumer in the same process receives them (mqkit ``receive(100)``
+ ``msg.ack()`` per message on a second client; the raw client's batched consume with its
acks). Each body
starts with the ``perf_counter`` time just before its send; the latency of a message is
the time from there to the moment the consumer holds it. Prints p50, p99 and max in ms,
and the rate the sender achieved (a send slower than 1/rate makes the schedule slip; the
latency is still from the real send). Before the timed sends, each side sends one
warm-up message and waits until its consumer holds it: the producer has the topic's
metadata and the consumer has joined its group, on both sides alike. SQS is left out:
moto's long polls are not a broker's.
"""

from __future__ import annotations

import asyncio
import statistics
import struct
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import mqkit

BACKENDS = ("rabbitmq", "kafka", "redis", "nats")
PAD = b"x" * 92  # 8 bytes of timestamp + 92 = 100 bytes
WARM = b"warm-up" + b"x" * 93  # not stamped: not counted


class Sink:
    """What a consumer thread fills: the ages of the stamped messages it got, and
    ``warmed`` once the warm-up message arrived."""

    def __init__(self) -> None:
        self.ages: list[float] = []
        self.warmed = threading.Event()

    def take(self, body: bytes) -> None:
        if body == WARM:
            self.warmed.set()
        else:
            self.ages.append(_age(body))

    def __len__(self) -> int:
        return len(self.ages)


def _stamp() -> bytes:
    return struct.pack("!d", time.perf_counter()) + PAD


def _age(body: bytes) -> float:
    return time.perf_counter() - struct.unpack("!d", body[:8])[0]


def _paced(send_one: Callable[[bytes], object], n: int, rate: int) -> float:
    """Send ``n`` messages on a schedule of ``rate``/s; the achieved rate."""
    start = time.perf_counter()
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        send_one(_stamp())
    return n / (time.perf_counter() - start)


def _summary(backend: str, side: str, ages: list[float], n: int, *, achieved: float,
             rate: int) -> dict[str, Any]:
    ms = sorted(a * 1000 for a in ages)
    q = statistics.quantiles(ms, n=100) if len(ms) >= 2 else ms * 99
    row = {"backend": backend, "side": side, "rate": rate, "achieved": round(achieved, 1),
           "sent": n, "received": len(ms), "p50_ms": round(q[49], 2),
           "p99_ms": round(q[98], 2), "max_ms": round(ms[-1], 2) if ms else None}
    print(f"  {backend:9} latency {side:6} sent {n} at {achieved:,.0f}/s, received "
          f"{len(ms)}: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, max {row['max_ms']} ms",
          flush=True)
    return row


def _with_consumer(consume: Callable[[threading.Event, Sink, int], None],
                   produce: Callable[[int], float], n: int,
                   send_one: Callable[[bytes], object]) -> tuple[list[float], float]:
    """Start ``consume`` on a thread and wait until it is ready; send the warm-up
    message with ``send_one`` and wait until the consumer holds it; run ``produce``;
    join."""
    ready = threading.Event()
    sink = Sink()
    thread = threading.Thread(target=consume, args=(ready, sink, n), daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("the consumer did not start")
    send_one(WARM)
    if not sink.warmed.wait(30):
        raise RuntimeError("the warm-up message did not arrive within 30 s")
    achieved = produce(n)
    thread.join(30 + n / 100)
    return sink.ages, achieved


# -- mqkit -------------------------------------------------------------------------------

def mqkit_latency(backend: str, url: str, rate: int, duration: float,
                  options: dict[str, Any]) -> dict[str, Any]:
    n = int(rate * duration)
    topic = f"bench-lat-{uuid.uuid4().hex[:8]}"
    with mqkit.connect(url, **options) as client, mqkit.connect(url, **options) as reader:
        client.admin.create_topic(topic)
        client.admin.create_group(topic, "g")
        try:
            def consume(ready: threading.Event, sink: Sink, n: int) -> None:
                with reader.consumer(topic, "g", prefetch=100) as consumer:
                    ready.set()
                    deadline = time.monotonic() + 30 + n / 100
                    while len(sink) < n and time.monotonic() < deadline:
                        for msg in consumer.receive(100, timeout=0.5):
                            sink.take(msg.body)
                            msg.ack()
                    consumer.flush_settlements()

            with client.producer(topic) as producer:
                def send_one(body: bytes) -> object:
                    return producer.send(body, key="k")
                ages, achieved = _with_consumer(
                    consume, lambda n: _paced(send_one, n, rate), n, send_one)
        finally:
            client.admin.delete_topic(topic)
    return _summary(backend, "mqkit", ages, n, achieved=achieved, rate=rate)


# -- raw clients -------------------------------------------------------------------------

def raw_redis(url: str, n: int, rate: int) -> tuple[list[float], float]:
    import redis
    key = f"bench-lat-raw-{uuid.uuid4().hex[:8]}"
    r = redis.Redis.from_url(url)
    r.xgroup_create(key, "g", id="$", mkstream=True)

    def consume(ready: threading.Event, sink: Sink, n: int) -> None:
        c = redis.Redis.from_url(url)
        ready.set()
        deadline = time.monotonic() + 30 + n / 100
        while len(sink) < n and time.monotonic() < deadline:
            reply = c.xreadgroup("g", "c", {key: ">"}, count=100, block=500)
            if reply:
                entries = reply[0][1]
                for _, fields in entries:
                    sink.take(fields[b"body"])
                c.xack(key, "g", *[entry_id for entry_id, _ in entries])
        c.close()

    def send_one(body: bytes) -> object:
        return r.xadd(key, {"body": body, "id": uuid.uuid4().hex})

    try:
        return _with_consumer(consume, lambda n: _paced(send_one, n, rate), n, send_one)
    finally:
        r.delete(key)
        r.close()


def raw_rabbitmq(url: str, n: int, rate: int) -> tuple[list[float], float]:
    import pika
    queue = f"bench-lat-raw-{uuid.uuid4().hex[:8]}"
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    ch.confirm_delivery()
    props = pika.BasicProperties(delivery_mode=2)

    def consume(ready: threading.Event, sink: Sink, n: int) -> None:
        c = pika.BlockingConnection(pika.URLParameters(url))
        cch = c.channel()
        cch.basic_qos(prefetch_count=100)

        def on_message(chan: Any, method: Any, _props: Any, body: bytes) -> None:
            sink.take(body)
            chan.basic_ack(method.delivery_tag)

        cch.basic_consume(queue, on_message)
        ready.set()
        deadline = time.monotonic() + 30 + n / 100
        while len(sink) < n and time.monotonic() < deadline:
            c.process_data_events(time_limit=0.2)
        c.close()

    def send_one(body: bytes) -> object:
        return ch.basic_publish("", queue, body, props)

    try:
        return _with_consumer(consume, lambda n: _paced(send_one, n, rate), n, send_one)
    finally:
        ch.queue_delete(queue)
        conn.close()


def raw_kafka(url: str, n: int, rate: int) -> tuple[list[float], float]:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.admin import NewTopic
    servers = url.removeprefix("kafka://").split("?")[0].split("/")[0]
    topic = f"bench-lat-raw-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=servers)
    admin.create_topics([NewTopic(topic, 3, 1)])
    producer = KafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=True,
                             linger_ms=5)

    def consume(ready: threading.Event, sink: Sink, n: int) -> None:
        consumer = KafkaConsumer(topic, bootstrap_servers=servers, group_id=topic,
                                 enable_auto_commit=False, auto_offset_reset="earliest",
                                 max_poll_records=100)
        ready.set()
        deadline = time.monotonic() + 30 + n / 100
        while len(sink) < n and time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=500, max_records=100)
            records = [rec for recs in batches.values() for rec in recs]
            if records:
                for rec in records:
                    sink.take(rec.value)
                consumer.commit()
        consumer.close()

    def send_one(body: bytes) -> object:
        # flush() sends at once instead of lingering linger_ms (as mqkit's send does);
        # get() then has the broker's ack.
        future = producer.send(topic, value=body, key=b"k")
        producer.flush(timeout=30)
        return future.get(timeout=30)

    try:
        return _with_consumer(consume, lambda n: _paced(send_one, n, rate), n, send_one)
    finally:
        producer.close()
        admin.delete_topics([topic])
        admin.close()


async def _raw_nats(url: str, n: int, rate: int) -> tuple[list[float], float]:
    import nats
    from nats.js import api
    nc = await nats.connect(url)
    js = nc.jetstream()
    subject = f"bench-lat-raw-{uuid.uuid4().hex[:8]}"
    await js.add_stream(name=subject, subjects=[subject], storage=api.StorageType.FILE)
    sub = await js.pull_subscribe(subject, durable="g", stream=subject)
    sink = Sink()

    async def consume() -> None:
        deadline = time.monotonic() + 30 + n / 100
        while len(sink) < n and time.monotonic() < deadline:
            try:
                msgs = await sub.fetch(100, timeout=0.5)
            except nats.errors.TimeoutError:
                continue
            for msg in msgs:
                sink.take(msg.data)
                await msg.ack()
            await nc.flush()

    task = asyncio.create_task(consume())
    await js.publish(subject, WARM)
    warm_until = time.monotonic() + 30
    while not sink.warmed.is_set():
        if time.monotonic() > warm_until:
            raise RuntimeError("the warm-up message did not arrive within 30 s")
        await asyncio.sleep(0.01)
    start = time.perf_counter()
    try:
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await js.publish(subject, _stamp())
        achieved = n / (time.perf_counter() - start)
        await asyncio.wait_for(task, 30 + n / 100)
        return sink.ages, achieved
    finally:
        await js.delete_stream(subject)
        await nc.close()


RAW: dict[str, Callable[[str, int, int], tuple[list[float], float]]] = {
    "redis": raw_redis, "rabbitmq": raw_rabbitmq, "kafka": raw_kafka,
    "nats": lambda url, n, rate: asyncio.run(_raw_nats(url, n, rate)),
}


def bench(backend: str, url: str, rate: int, duration: float) -> list[dict[str, Any]]:
    """mqkit's and the raw client's latency on ``backend`` (none for SQS)."""
    if backend not in BACKENDS:
        print(f"  {backend:9} latency: not measured here")
        return []
    from sidebyside import MQKIT_OPTIONS
    out = []
    for side in ("raw", "mqkit"):
        try:
            if side == "mqkit":
                out.append(mqkit_latency(backend, url, rate, duration,
                                         MQKIT_OPTIONS.get(backend, {})))
            else:
                n = int(rate * duration)
                ages, achieved = RAW[backend](url, n, rate)
                out.append(_summary(backend, "raw", ages, n, achieved=achieved, rate=rate))
        except Exception as exc:
            print(f"  {backend:9} latency {side}: FAILED {type(exc).__name__}: {exc}")
    return out


def table(rows: list[dict[str, Any]]) -> str:
    """The latency rows as a Markdown table."""
    lines = ["| backend | side | rate asked / achieved | received | p50 ms | p99 ms | max ms |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['backend']} | {row['side']} | {row['rate']} / "
                     f"{row['achieved']:,.0f} | {row['received']}/{row['sent']} | "
                     f"{row['p50_ms']} | {row['p99_ms']} | {row['max_ms']} |")
    return "\n".join(lines)
