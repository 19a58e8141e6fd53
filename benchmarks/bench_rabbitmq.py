"""RabbitMQ: mqkit against raw pika doing the same durable work.

    python benchmarks/bench_rabbitmq.py --url amqp://guest:guest@127.0.0.1:5672/%2F \\
        --count 20000

Same work on both sides: a durable topic exchange, a durable quorum queue bound with
``#``, persistent 100-byte messages, publisher confirms on every send, manual acks,
prefetch ``--prefetch``. Prints msgs/s for each and the ratio mqkit/raw:

* send: raw pika waiting for each confirm (``BlockingChannel.confirm_delivery``), raw
  pika publishing a batch and waiting once for its confirms (what mqkit does), and
  mqkit ``send_batch``, ``send`` (one confirmed message per call) and
  ``send(wait=False)`` + ``flush``;
* receive + ack: raw pika ``basic_consume`` acking each message, and mqkit ``receive``
  in batches + ``ack``, and ``run(handler)``.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from typing import Any

import pika
import pika.spec
from _harness import Result, measure, report

import mqkit

BODY = b"x" * 100
# Seconds a batch may wait for its publisher confirms (mqkit's send timeout is 30 s too).
CONFIRM_TIMEOUT = 30.0


def _setup(ch: Any, exchange: str, queue: str) -> None:
    ch.exchange_declare(exchange, "topic", durable=True)
    ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    ch.queue_bind(queue, exchange, "#")


def raw_send_each(url: str, count: int) -> Result:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    exchange = f"bench-raw-{uuid.uuid4().hex[:8]}"
    _setup(ch, exchange, exchange + ".g")
    ch.confirm_delivery()
    props = pika.BasicProperties(delivery_mode=2)

    def work() -> None:
        for _ in range(count):
            ch.basic_publish(exchange, "k", BODY, props)

    try:
        return measure("pika", "raw send, confirm each", count, work)
    finally:
        ch.queue_delete(exchange + ".g")
        ch.exchange_delete(exchange)
        conn.close()


def raw_send_batched(url: str, exchange: str, count: int, batch: int,
                     body: bytes = BODY) -> Result:
    """Publish ``batch`` messages of ``body``, then wait once for their confirms.

    The channel's delivery tags run 1, 2, ... from ``confirm_select``; each is recorded
    as pending *before* its ``basic_publish``. ``BlockingChannel.basic_publish`` runs
    pika's I/O loop until the message is written, and the same loop pass can read and
    dispatch the broker's ack of that very message: recorded after the publish, such a
    ``multiple=False`` ack removed nothing and the tag stayed pending for ever (the
    wait never ended: 29 of 2,000 batches of 100 on a local broker). A batch also
    fails, instead of waiting on, when its channel closes or no confirm comes within
    :data:`CONFIRM_TIMEOUT`.
    """
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    pending: set[int] = set()
    nacked: list[int] = []

    def on_confirm(frame: Any) -> None:
        m = frame.method
        tag = m.delivery_tag
        done = {t for t in pending if t <= tag} if m.multiple else {tag} & pending
        pending.difference_update(done)
        if isinstance(m, pika.spec.Basic.Nack):
            nacked.extend(done)

    ch._impl.confirm_delivery(on_confirm)  # before the first publish: tags start at 1
    props = pika.BasicProperties(delivery_mode=2)
    tag = 0

    def work() -> None:
        nonlocal tag
        for start in range(0, count, batch):
            for _ in range(min(batch, count - start)):
                tag += 1
                pending.add(tag)  # before the publish, which may dispatch its ack
                ch.basic_publish(exchange, "k", body, props)
            deadline = time.monotonic() + CONFIRM_TIMEOUT
            while pending:
                if not ch.is_open:
                    raise RuntimeError(f"raw pika: channel closed with {len(pending)} "
                                       "publisher confirms outstanding")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"raw pika: {len(pending)} publisher confirms "
                                       f"not received within {CONFIRM_TIMEOUT} s")
                conn.process_data_events(time_limit=0.001)
        if nacked:
            raise RuntimeError(f"raw pika: broker nacked {len(nacked)} messages")

    try:
        return measure("pika", f"raw send, confirm per {batch}", count, work)
    finally:
        conn.close()


def raw_consume(url: str, queue: str, count: int, prefetch: int) -> Result:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=prefetch)
    got = 0

    def on_message(c: Any, method: Any, props: Any, body: bytes) -> None:
        nonlocal got
        c.basic_ack(method.delivery_tag)
        got += 1
        if got >= count:
            c.stop_consuming()

    ch.basic_consume(queue, on_message)
    try:
        return measure("pika", f"raw consume+ack (prefetch {prefetch})", count,
                       ch.start_consuming)
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("MQKIT_TEST_RABBITMQ_URL",
                                                        "amqp://guest:guest@127.0.0.1/%2F"))
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--prefetch", type=int, default=500)
    parser.add_argument("--single", type=int, default=2000,
                        help="messages for the one-at-a-time send measurements")
    args = parser.parse_args()
    count, batch = args.count, args.batch
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    with mqkit.connect(args.url) as client:
        client.admin.create_topic(topic)
        client.admin.create_group(topic, "g")
        try:
            raw_each = raw_send_each(args.url, args.single)
            report(raw_each)
            raw_batch = raw_send_batched(args.url, topic, count, batch)
            report(raw_batch)
            with client.producer(topic) as producer:
                messages = [mqkit.Message(BODY, key="k") for _ in range(count)]

                def send_batches() -> None:
                    for i in range(0, count, batch):
                        producer.send_batch(messages[i:i + batch])

                report(measure("mqkit", f"send_batch({batch})", count, send_batches),
                       raw_batch)

                def send_each() -> None:
                    for _ in range(args.single):
                        producer.send(BODY, key="k")

                report(measure("mqkit", "send (confirm each)", args.single, send_each),
                       raw_each)

                def send_nowait() -> None:
                    for _ in range(count):
                        producer.send(BODY, key="k", wait=False)
                    producer.flush()

                report(measure("mqkit", "send(wait=False)+flush", count, send_nowait),
                       raw_batch)
            # The queue now holds 3 * count + single messages: enough for all three.
            bench_receive(client, args.url, topic, count, args.prefetch)
        finally:
            client.admin.delete_topic(topic)


def bench_receive(client: mqkit.Client, url: str, topic: str, count: int,
                  prefetch: int) -> None:
    raw_recv = raw_consume(url, f"{topic}.g", count, prefetch)
    report(raw_recv)
    with client.consumer(topic, "g", prefetch=prefetch) as consumer:
        def consume() -> None:
            got = 0
            while got < count:
                msgs = consumer.receive(100, timeout=5.0)
                if not msgs:
                    raise RuntimeError(f"stalled at {got}")
                consumer.ack(msgs)
                got += len(msgs)

        report(measure("mqkit", f"receive(100)+ack (prefetch {prefetch})", count, consume),
               raw_recv)

        def handle(msg: mqkit.ReceivedMessage) -> None:
            return None

        def run() -> None:
            consumer.run(handle, stop_after=count)

        report(measure("mqkit", f"run(handler) (prefetch {prefetch})", count, run), raw_recv)


if __name__ == "__main__":
    main()
