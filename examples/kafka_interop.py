"""mqkit and a plain kafka-python client on the same Kafka topic, both ways.

    MQKIT_URL=kafka://127.0.0.1:9092 python examples/kafka_interop.py

The topic is a Kafka topic of the same name; an mqkit group ``billing`` is the consumer
group ``<topic>.billing`` (``group_format``). A plain producer's record (value, key,
headers) is read by mqkit; mqkit's message is read by a plain consumer, its id in the
``mqkit-id`` header, user headers as Kafka headers (docs/backends/kafka.md). On any
other backend it says so and exits 0 (CI runs every example on every backend).
"""

from __future__ import annotations

import os
import uuid

import mqkit


def main() -> None:
    url = os.environ.get("MQKIT_URL", "kafka://127.0.0.1:9092")
    if not url.startswith("kafka://"):
        print(f"skipped: {url.split('://', 1)[0]}:// is not a kafka:// URL")
        return
    from kafka import KafkaConsumer, KafkaProducer

    servers = url.removeprefix("kafka://").split("?", 1)[0].split("/", 1)[0].split(",")
    topic = f"example-interop-{uuid.uuid4().hex[:6]}"
    with mqkit.connect(url) as client:
        client.admin.create_topic(topic)
        client.admin.create_group(topic, "billing")
        try:
            # plain kafka-python -> mqkit
            plain_producer = KafkaProducer(bootstrap_servers=servers, acks="all")
            plain_producer.send(topic, value=b"from kafka-python", key=b"user-1",
                                headers=[("tenant", b"a")])
            plain_producer.flush()
            plain_producer.close()
            with client.consumer(topic, "billing") as consumer:
                [msg] = consumer.receive(1, timeout=15)
                print(f"mqkit read: {msg.body!r} key={msg.key} headers={dict(msg.headers)}")
                assert msg.key == "user-1" and dict(msg.headers) == {"tenant": "a"}
                msg.ack()
            # mqkit -> plain kafka-python
            with client.producer(topic) as producer:
                sent = producer.send(b"from mqkit", key="user-2", headers={"tenant": "b"})
            plain_consumer = KafkaConsumer(
                topic, bootstrap_servers=servers, group_id=f"{topic}.plain",
                auto_offset_reset="earliest", consumer_timeout_ms=15000)
            try:
                record = next(r for r in plain_consumer if r.value == b"from mqkit")
                headers = {k: v.decode() for k, v in record.headers}
                print(f"kafka-python read: {record.value!r} key={record.key!r} "
                      f"headers={headers}")
                assert headers == {"tenant": "b", "mqkit-id": sent}
            finally:
                plain_consumer.close()
        finally:
            client.admin.delete_topic(topic)


if __name__ == "__main__":
    main()
