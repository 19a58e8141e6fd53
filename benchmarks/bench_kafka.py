"""Kafka: mqkit against raw kafka-python doing the same durable work.

    python benchmarks/bench_kafka.py --url kafka://127.0.0.1:9092 --count 50000

Same work on both sides: a topic of 3 partitions, 100-byte bodies with a key and one
id header (the raw producer writes the ``mqkit-id`` header mqkit writes, so both
consumers read identical records), the
producer with ``acks=all`` and idempotence, ``linger_ms=5``, ``batch_size=262144``;
each batch of ``--batch`` messages is flushed and every ack awaited before the next.
Receive + ack: a consumer group with auto-commit off, batches of ``--prefetch``
records, a synchronous commit after each batch (what mqkit's ``ack`` of a batch does).
Prints msgs/s for each and the ratio mqkit/raw: the best of ``--rounds`` rounds that
alternate raw and mqkit on fresh topics (the machine is shared; the best round is the
least disturbed one, for both sides alike).
"""

from __future__ import annotations

import argparse
import os
import uuid

from _harness import Result, measure, report
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

import mqkit
from mqkit._message import new_message_id
from mqkit._registry import plugin_for, register

try:
    plugin_for("kafka")
except mqkit.ConfigurationError:  # the entry point is not installed yet: register here
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adapters" / "kafka"))
    from mqkit_kafka import plugin

    register(plugin)

BODY = b"x" * 100
PARTITIONS = 3


def _servers(url: str) -> str:
    return url.removeprefix("kafka://").split("?")[0].split("/")[0]


def raw_send(servers: str, topic: str, count: int, batch: int,
             body: bytes = BODY) -> Result:
    producer = KafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=True,
                             linger_ms=5, batch_size=262_144)

    def work() -> None:
        for start in range(0, count, batch):
            futures = [producer.send(topic, value=body, key=str(i % 64).encode(),
                                     headers=[("mqkit-id", new_message_id().encode())])
                       for i in range(start, min(count, start + batch))]
            producer.flush()
            for f in futures:
                f.get(timeout=30)

    try:
        return measure("kafka-py", f"raw send, flush per {batch}", count, work)
    finally:
        producer.close()


def raw_receive(servers: str, topic: str, count: int, prefetch: int) -> Result:
    consumer = KafkaConsumer(topic, bootstrap_servers=servers,
                             group_id=f"{topic}.raw", enable_auto_commit=False,
                             auto_offset_reset="earliest", max_poll_records=prefetch)

    def work() -> None:
        got = 0
        while got < count:
            batches = consumer.poll(timeout_ms=1000, max_records=prefetch)
            n = sum(len(v) for v in batches.values())
            if n:
                consumer.commit()
                got += n

    try:
        return measure("kafka-py", f"raw poll({prefetch})+commit", count, work)
    finally:
        consumer.close()


def one_round(url: str, servers: str, count: int, batch: int,
              prefetch: int) -> list[Result]:
    """Raw send, mqkit send, raw receive+ack, mqkit receive+ack, on fresh topics."""
    raw_topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=servers)
    admin.create_topics({raw_topic: {"num_partitions": PARTITIONS}}, wait_for_metadata=True)
    out: list[Result] = []
    with mqkit.connect(url, partitions=PARTITIONS, linger_ms=5, batch_size=262_144,
                       acks="all", idempotence=True) as client:
        topic = f"bench-mqkit-{uuid.uuid4().hex[:8]}"
        client.admin.create_topic(topic)
        client.admin.create_group(topic, "g", "earliest")
        try:
            out.append(raw_send(servers, raw_topic, count, batch))
            messages = [mqkit.Message(BODY, key=str(i % 64)) for i in range(count)]
            with client.producer(topic) as producer:
                def send_batches() -> None:
                    for start in range(0, count, batch):
                        producer.send_batch(messages[start:start + batch])

                out.append(measure("mqkit", f"send_batch({batch})", count, send_batches))
            out.append(raw_receive(servers, raw_topic, count, prefetch))
            with client.consumer(topic, "g", prefetch=prefetch) as consumer:
                def consume() -> None:
                    got = 0
                    while got < count:
                        msgs = consumer.receive(prefetch, 1.0)
                        if msgs:
                            consumer.ack(msgs)
                            got += len(msgs)

                out.append(measure("mqkit", f"receive({prefetch})+ack", count, consume))
        finally:
            client.admin.delete_topic(topic)
            admin.delete_topics([raw_topic])
            admin.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("MQKIT_TEST_KAFKA_URL",
                                                        "kafka://127.0.0.1:9092"))
    parser.add_argument("--count", type=int, default=50000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--prefetch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds alternating raw and mqkit; the best of each is shown "
                             "(the machine is shared: the best is the least disturbed)")
    args = parser.parse_args()
    best: list[Result] = []
    for _ in range(args.rounds):
        results = one_round(args.url, _servers(args.url), args.count, args.batch,
                            args.prefetch)
        best = results if not best else [max(a, b, key=lambda r: r.rate)
                                         for a, b in zip(best, results, strict=True)]
    raw_send_r, mqkit_send, raw_recv, mqkit_recv = best
    report(raw_send_r)
    report(mqkit_send, raw_send_r)
    report(raw_recv)
    report(mqkit_recv, raw_recv)


if __name__ == "__main__":
    main()
