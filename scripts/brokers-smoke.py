#!/usr/bin/env python3
"""Round-trip one message through each test broker with its raw client library.

    eval "$(scripts/brokers env)"
    python scripts/brokers-smoke.py              # all five backends
    python scripts/brokers-smoke.py kafka nats   # some of them
    python scripts/brokers-smoke.py --restart    # also: restart each broker under a connected
                                                 # client and check what survives it

Reads the ``MQKIT_TEST_<BACKEND>_URL`` variables (falling back to ``scripts/brokers env``'s
defaults), prints one line per backend and exits non-zero if any failed. It uses the client
libraries directly (pika, kafka-python, boto3, redis-py, nats-py), not mqkit, so a failure
here is the broker's or the environment's, never the SDK's.

With ``--restart``, for each backend: write data, keep a client connected, run
``scripts/brokers restart BACKEND``, reconnect, and check that what the broker persists came
back (RabbitMQ durable queue + persistent message, Kafka topic + record, NATS JetStream file
stream; Redis its AOF) and that moto answers again (it starts empty by design).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

BROKERS = Path(__file__).resolve().parent / "brokers"
DEFAULTS = {
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/%2F",
    "kafka": "kafka://127.0.0.1:9092",
    "sqs": "sqs://testing:testing@127.0.0.1:5000?region=us-east-1&tls=false",
    "redis": "redis://127.0.0.1:6379/0",
    "nats": "nats://127.0.0.1:4222",
}
TAG = uuid.uuid4().hex[:8]


def url(backend: str) -> str:
    return os.environ.get(f"MQKIT_TEST_{backend.upper()}_URL") or DEFAULTS[backend]


def restart(backend: str) -> None:
    subprocess.run([sys.executable, str(BROKERS), "restart", backend], check=True)


# ---- RabbitMQ ------------------------------------------------------------------------------


def _pika_connection():  # type: ignore[no-untyped-def]
    import pika

    return pika.BlockingConnection(pika.URLParameters(url("rabbitmq")))


def _rabbit_publish(queue: str, body: bytes) -> None:
    import pika

    conn = _pika_connection()
    ch = conn.channel()
    ch.queue_declare(queue=queue, durable=True)
    ch.confirm_delivery()
    ch.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2))
    conn.close()


def _rabbit_get(queue: str) -> bytes:
    conn = _pika_connection()
    ch = conn.channel()
    ch.queue_declare(queue=queue, durable=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        method, _props, body = ch.basic_get(queue, auto_ack=True)
        if method is not None:
            ch.queue_delete(queue)
            conn.close()
            return bytes(body)
        time.sleep(0.2)
    conn.close()
    raise AssertionError(f"no message on {queue}")


def smoke_rabbitmq() -> str:
    queue = f"mqkit-smoke-{TAG}"
    _rabbit_publish(queue, b"hello rabbit")
    got = _rabbit_get(queue)
    assert got == b"hello rabbit", got
    return f"durable queue {queue}: publish(confirm) + basic_get ok"


def restart_rabbitmq() -> str:
    import pika.exceptions

    queue = f"mqkit-smoke-restart-{TAG}"
    _rabbit_publish(queue, b"survives restart")
    conn = _pika_connection()  # the client that is connected during the restart
    restart("rabbitmq")
    try:
        conn.process_data_events(time_limit=1)
        conn.channel()
        dropped = "client NOT disconnected?!"
    except pika.exceptions.AMQPError:
        dropped = "connected client saw the connection drop"
    got = _rabbit_get(queue)
    assert got == b"survives restart", got
    return f"{dropped}; persistent message on durable queue survived"


# ---- Kafka ---------------------------------------------------------------------------------


def _kafka_bootstrap() -> str:
    return urlsplit(url("kafka")).netloc


def _kafka_produce(topic: str, value: bytes, create: bool) -> None:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    if create:
        admin = KafkaAdminClient(bootstrap_servers=_kafka_bootstrap(), client_id="mqkit-smoke")
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        admin.close()
    producer = KafkaProducer(bootstrap_servers=_kafka_bootstrap(), acks="all")
    producer.send(topic, value).get(timeout=30)
    producer.flush()
    producer.close()


def _kafka_consume(topic: str, count: int) -> list[bytes]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=_kafka_bootstrap(),
        group_id=f"mqkit-smoke-{TAG}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=30000,
    )
    got = []
    for record in consumer:
        got.append(record.value)
        if len(got) >= count:
            break
    consumer.close()
    return got


def smoke_kafka() -> str:
    topic = f"mqkit-smoke-{TAG}"
    _kafka_produce(topic, b"hello kafka", create=True)
    got = _kafka_consume(topic, 1)
    assert got == [b"hello kafka"], got
    return f"topic {topic}: create + produce(acks=all) + consume ok"


def restart_kafka() -> str:
    from kafka import KafkaProducer

    topic = f"mqkit-smoke-restart-{TAG}"
    _kafka_produce(topic, b"before restart", create=True)
    producer = KafkaProducer(
        bootstrap_servers=_kafka_bootstrap(), acks="all", retries=10, reconnect_backoff_max_ms=2000
    )
    producer.send(topic, b"connected producer, before").get(timeout=30)
    restart("kafka")
    # The same producer, connected across the restart, must reconnect and deliver.
    producer.send(topic, b"connected producer, after").get(timeout=60)
    producer.close()
    got = _kafka_consume(topic, 3)
    assert got == [
        b"before restart",
        b"connected producer, before",
        b"connected producer, after",
    ], got
    return "topic and records survived; the connected producer reconnected and delivered"


# ---- SQS (moto) ----------------------------------------------------------------------------


def _sqs_client():  # type: ignore[no-untyped-def]
    import boto3

    parts = urlsplit(url("sqs"))
    query = parse_qs(parts.query)
    tls = query.get("tls", ["true"])[0].lower() not in ("false", "0", "no")
    return boto3.client(
        "sqs",
        endpoint_url=f"{'https' if tls else 'http'}://{parts.hostname}:{parts.port}",
        region_name=query.get("region", ["us-east-1"])[0],
        aws_access_key_id=unquote(parts.username or "testing"),
        aws_secret_access_key=unquote(parts.password or "testing"),
    )


def smoke_sqs() -> str:
    sqs = _sqs_client()
    queue_url = sqs.create_queue(QueueName=f"mqkit-smoke-{TAG}")["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="hello sqs")
    msgs = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=5).get("Messages", [])
    assert [m["Body"] for m in msgs] == ["hello sqs"], msgs
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=msgs[0]["ReceiptHandle"])
    sqs.delete_queue(QueueUrl=queue_url)
    return "create_queue + send_message + receive_message + delete ok"


def restart_sqs() -> str:
    sqs = _sqs_client()  # kept across the restart: botocore reconnects per request
    sqs.create_queue(QueueName=f"mqkit-smoke-restart-{TAG}")
    restart("sqs")
    names = sqs.list_queues().get("QueueUrls", [])
    assert not any(f"mqkit-smoke-restart-{TAG}" in n for n in names), names
    smoke_sqs()
    return "same client works after restart; state is gone (moto keeps none, as documented)"


# ---- Redis ---------------------------------------------------------------------------------


def smoke_redis() -> str:
    import redis

    client = redis.Redis.from_url(url("redis"))
    stream = f"mqkit-smoke-{TAG}"
    entry_id = client.xadd(stream, {"body": b"hello redis"})
    got = client.xread({stream: "0-0"}, count=1, block=1000)
    assert got and got[0][1][0][0] == entry_id and got[0][1][0][1] == {b"body": b"hello redis"}, got
    client.delete(stream)
    client.close()
    return "XADD + XREAD ok"


def restart_redis() -> str:
    import redis

    client = redis.Redis.from_url(url("redis"), retry_on_error=[redis.ConnectionError])
    client.xadd(f"mqkit-smoke-restart-{TAG}", {"body": b"x"})
    restart("redis")
    try:
        client.ping()
        reconnect = "client reconnected"
    except redis.ConnectionError:
        client = redis.Redis.from_url(url("redis"))
        reconnect = "new connection needed"
    assert client.exists(f"mqkit-smoke-restart-{TAG}") == 1, "the stream did not survive"
    client.delete(f"mqkit-smoke-restart-{TAG}")
    client.close()
    smoke_redis()
    return f"{reconnect}; stream kept (AOF, appendfsync everysec)"


# ---- NATS ----------------------------------------------------------------------------------


async def _nats_smoke() -> str:
    import nats

    nc = await nats.connect(url("nats"))
    # core pub/sub
    sub = await nc.subscribe(f"mqkit.smoke.{TAG}")
    await nc.publish(f"mqkit.smoke.{TAG}", b"hello core")
    msg = await sub.next_msg(timeout=5)
    assert msg.data == b"hello core"
    # JetStream
    js = nc.jetstream()
    stream = f"MQKIT_SMOKE_{TAG}"
    await js.add_stream(name=stream, subjects=[f"mqkit.js.{TAG}"], storage="file")
    ack = await js.publish(f"mqkit.js.{TAG}", b"hello jetstream")
    psub = await js.pull_subscribe(f"mqkit.js.{TAG}", durable="smoke")
    msgs = await psub.fetch(1, timeout=5)
    assert [m.data for m in msgs] == [b"hello jetstream"]
    await msgs[0].ack()
    await js.delete_stream(stream)
    await nc.close()
    return f"core pub/sub + JetStream file stream publish(seq {ack.seq}) + pull fetch ok"


def smoke_nats() -> str:
    return asyncio.run(_nats_smoke())


async def _nats_restart() -> str:
    import nats

    events: list[str] = []
    back = asyncio.Event()

    async def disconnected() -> None:
        events.append("disconnected")

    async def reconnected() -> None:
        events.append("reconnected")
        back.set()

    nc = await nats.connect(
        url("nats"),
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
    )
    js = nc.jetstream()
    stream = f"MQKIT_SMOKE_RESTART_{TAG}"
    subject = f"mqkit.jsr.{TAG}"
    await js.add_stream(name=stream, subjects=[subject], storage="file")
    await js.publish(subject, b"survives restart")
    await asyncio.to_thread(restart, "nats")
    await asyncio.wait_for(back.wait(), timeout=30)
    psub = await js.pull_subscribe(subject, durable="smoke-restart")
    msgs = await psub.fetch(1, timeout=10)
    assert [m.data for m in msgs] == [b"survives restart"]
    await js.delete_stream(stream)
    seen = " then ".join(events)
    await nc.close()
    return f"connected client {seen}; JetStream file stream message survived"


def restart_nats() -> str:
    return asyncio.run(_nats_restart())


SMOKES: dict[str, Callable[[], str]] = {
    "rabbitmq": smoke_rabbitmq,
    "kafka": smoke_kafka,
    "sqs": smoke_sqs,
    "redis": smoke_redis,
    "nats": smoke_nats,
}
RESTARTS: dict[str, Callable[[], str]] = {
    "rabbitmq": restart_rabbitmq,
    "kafka": restart_kafka,
    "sqs": restart_sqs,
    "redis": restart_redis,
    "nats": restart_nats,
}


def main(argv: list[str]) -> int:
    with_restart = "--restart" in argv
    backends = [a for a in argv if not a.startswith("-")] or list(SMOKES)
    unknown = [b for b in backends if b not in SMOKES]
    if unknown:
        print(
            f"unknown backend(s): {', '.join(unknown)}; choose from {', '.join(SMOKES)}",
            file=sys.stderr,
        )
        return 2
    failed = 0
    checks = [(b, "smoke", SMOKES[b]) for b in backends]
    if with_restart:
        checks += [(b, "restart", RESTARTS[b]) for b in backends]
    for backend, kind, check in checks:
        started = time.monotonic()
        try:
            detail = check()
            status = "ok"
        except Exception as exc:
            failed += 1
            status = "FAIL"
            detail = f"{type(exc).__name__}: {exc}"
            traceback.print_exc(file=sys.stderr)
        took = time.monotonic() - started
        print(f"{backend:<9} {kind:<8} {status:<4} {took:5.1f}s  {detail}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
