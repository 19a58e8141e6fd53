"""kombu and faststream, driven the way their documentation shows, for sidebyside.py.

Each peer owns one destination (made at open, deleted by ``close``) with the durability
mqkit's topic has on that backend, and measures two phases, the same as mqkit's:

* ``send(body, count)``: ``count`` messages, each publish returning once the broker took it
  (kombu ``Producer.publish`` with ``confirm_publish``; faststream ``broker.publish``
  awaiting the publisher confirm / the JetStream PubAck / the ``acks=all`` record
  metadata; on Kafka faststream's ``publish_batch`` of 100, its batch API, or of as many as fit
  its 256 KiB batch);
* ``receive(count)``: ``count`` of those messages consumed with a manual ack per message
  (kombu ``message.ack()`` in a consumer callback, prefetch 100; faststream's subscriber
  with its default ack-after-handler policy, prefetch / batch 100), from the moment the
  consumer is started until the last handler returned.

kombu: RabbitMQ (py-amqp: a durable quorum queue, persistent messages), Redis (kombu's
own list-based transport, not streams: a different structure, shown for what kombu users
get), SQS (boto3: a standard queue, one ``SendMessage`` per publish and one
``DeleteMessage`` per ack, as kombu's SQS transport does) and Kafka (confluent-kafka,
``kombu.transport.confluentkafka``, a virtual transport; see ``_kombu_kafka``: a topic of 3
partitions, producer ``acks=all``, idempotent; each publish is a ``produce`` of kombu's
JSON envelope then ``flush()``, each ack an asynchronous ``commit()``). faststream: RabbitMQ
(aio-pika: a durable quorum queue, persistent messages), Redis streams (a consumer group,
XACK per message), NATS JetStream (a file stream, a durable pull consumer) and Kafka
(aiokafka: 3 partitions, ``acks=all``, idempotent; a commit per message).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from _harness import FirstBatchClock, Result

BATCH = 100
KAFKA_BATCH_BYTES = 262_144  # the producer batch size mqkit's and raw's Kafka runs use


def make(name: str, backend: str, url: str) -> Any:
    """The peer ``name`` ("kombu" or "faststream") on ``backend``."""
    if name == "kombu":
        return KombuPeer(backend, url)
    if name == "faststream":
        return FastStreamPeer(backend, url)
    raise ValueError(f"unknown peer {name!r}")


# -- kombu -------------------------------------------------------------------------------

class KombuPeer:
    """kombu ``Producer.publish`` / ``Consumer`` + ``message.ack()`` on one durable queue."""

    def __init__(self, backend: str, url: str) -> None:
        from kombu import Connection, Exchange, Queue
        self.backend = backend
        self.name = f"bench-kombu-{uuid.uuid4().hex[:8]}"
        options: dict[str, Any] = {"confirm_publish": True} if backend == "rabbitmq" else {}
        self.servers = ""  # Kafka's bootstrap servers, for the topic's wait and delete
        if backend == "sqs":
            url, options = _kombu_sqs(url)
        elif backend == "kafka":
            url, options = _kombu_kafka(url)
            self.servers = url.removeprefix("confluentkafka://")
        self.conn = Connection(url, transport_options=options)
        self.exchange = Exchange(self.name, "direct", durable=True)
        arguments = {"x-queue-type": "quorum"} if backend == "rabbitmq" else None
        self.queue = Queue(self.name, self.exchange, routing_key=self.name, durable=True,
                           queue_arguments=arguments)
        self.queue(self.conn.default_channel).declare()
        if backend == "kafka":  # kombu sends CreateTopics and does not wait for it
            _kafka_wait(self.servers, self.name, present=True)

    def __repr__(self) -> str:
        return f"KombuPeer({self.backend}, {self.name})"

    def send(self, body: bytes, count: int) -> Result:
        producer = self.conn.Producer()
        start = time.perf_counter()
        for _ in range(count):
            producer.publish(body, exchange=self.exchange, routing_key=self.name,
                             delivery_mode=2, content_type="application/octet-stream",
                             content_encoding="binary")
        label = {"rabbitmq": "publish x100, confirm each",
                 "sqs": "publish x100 (SendMessage each)",
                 "kafka": "publish x100 (produce + flush each), acks=all"}.get(
                     self.backend, "publish x100 (list transport)")
        return Result("kombu", label, count, time.perf_counter() - start)

    def receive(self, count: int) -> Result:
        got = 0
        clock = FirstBatchClock()

        def on_message(body: Any, message: Any) -> None:
            nonlocal got
            if not got:
                clock.got(1)  # timed from the first message in hand, as every side
            message.ack()
            got += 1

        with self.conn.Consumer([self.queue], callbacks=[on_message],
                                accept=["application/octet-stream"],
                                prefetch_count=BATCH):
            label = {"sqs": "Consumer + message.ack() (DeleteMessage each)",
                     "kafka": "Consumer + message.ack() (async commit each)"}.get(
                         self.backend, "Consumer + message.ack() (prefetch 100)")
            while got < count:
                self.conn.drain_events(timeout=10)
            return clock.result("kombu", label, got)

    def close(self) -> None:
        if self.backend == "kafka":
            # kombu's Queue.delete raises KeyError on Kafka when nothing was consumed (it
            # closes the queue's consumer first) and does not wait for DeleteTopics: release
            # the connection (its channel closes the consumer, leaving the group), then
            # delete the topic and wait until it is gone.
            self.conn.release()
            _kafka_delete(self.servers, self.name)
            return
        try:
            bound = self.queue(self.conn.default_channel)
            bound.delete()
            self.exchange(self.conn.default_channel).delete()
        finally:
            self.conn.release()


def _kombu_sqs(url: str) -> tuple[str, dict[str, Any]]:
    """kombu's SQS URL and transport options for mqkit's ``sqs://KEY:SECRET@HOST:PORT?
    region=R&tls=false`` (kombu takes the endpoint from the host, the region and TLS from
    its transport options)."""
    from urllib.parse import parse_qs, urlsplit
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    options: dict[str, Any] = {
        "region": query.get("region", "us-east-1"),
        "is_secure": query.get("tls", "true").lower() not in ("false", "0", "no"),
        "wait_time_seconds": 1,
    }
    return f"sqs://{parts.netloc}", options


def _kombu_kafka(url: str) -> tuple[str, dict[str, Any]]:
    """kombu's Kafka URL and transport options for mqkit's ``kafka://HOST:PORT``.

    ``kombu.transport.confluentkafka`` (kombu 5.7) is a virtual transport over
    confluent-kafka (librdkafka); what it does, read from its source:

    * declare: the direct exchange and its binding live in kombu's memory; the queue is a
      topic of that name, made by ``AdminClient.create_topics`` (``num_partitions``,
      replication 1) unless listed, its future not awaited (hence ``_kafka_wait``);
    * publish: kombu's JSON envelope (headers, properties, the body base64-encoded, about
      4/3 of it plus some 330 B) is ``produce``d to the topic, without a key, by one
      producer per queue (made on the first publish, inside the timed loop), then
      ``producer.flush()``: each publish waits for the broker's ack (``acks=all`` and
      idempotence passed through ``kafka_producer_config``);
    * consume: one confluent-kafka ``Consumer`` per queue, group ``<queue>-consumer-group``,
      ``auto.offset.reset=earliest``, ``enable.auto.commit=false``, subscribed on the first
      ``drain_events``; each ``drain_events`` is one ``poll(wait_time_seconds)`` (from
      librdkafka's prefetched queue), one message, JSON and base64 decoded; an empty poll
      sleeps ``polling_interval`` (1 s) before the next; prefetch only caps unacked
      messages;
    * ack: ``consumer.commit()`` with confluent-kafka's default ``asynchronous=True``: an
      OffsetCommit of the consumer's current positions on all its partitions, queued and
      not awaited (a later ack's commit covers an earlier one's, none is confirmed).
    """
    servers = url.removeprefix("kafka://").split("?")[0].split("/")[0]
    options: dict[str, Any] = {
        "num_partitions": 3,
        "kafka_producer_config": {"acks": "all", "enable.idempotence": True},
    }
    return f"confluentkafka://{servers}", options


def _kafka_wait(servers: str, topic: str, *, present: bool, timeout: float = 30.0) -> None:
    """Wait until ``topic`` is listed (``present``) or gone from the broker's metadata."""
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": servers})
    deadline = time.monotonic() + timeout
    while (topic in admin.list_topics(timeout=10).topics) != present:
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic!r} still {'absent' if present else 'listed'}")
        time.sleep(0.1)


def _kafka_delete(servers: str, topic: str) -> None:
    """Delete ``topic`` and wait for it (kombu's group goes with the topic's offsets)."""
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": servers})
    for future in admin.delete_topics([topic], operation_timeout=30).values():
        future.result()
    _kafka_wait(servers, topic, present=False)


# -- faststream --------------------------------------------------------------------------

class FastStreamPeer:
    """A faststream broker publishing per message and a subscriber acking per message."""

    def __init__(self, backend: str, url: str) -> None:
        self.backend, self.url = backend, url
        self.name = f"bench-fs-{uuid.uuid4().hex[:8]}"
        logging.getLogger("faststream").setLevel(logging.WARNING)
        if backend == "kafka":
            from kafka import KafkaAdminClient
            from kafka.admin import NewTopic
            admin = KafkaAdminClient(bootstrap_servers=self._servers())
            try:
                admin.create_topics([NewTopic(self.name, 3, 1)])
            finally:
                admin.close()
        elif backend == "redis":
            import redis
            r = redis.Redis.from_url(url)
            try:  # the group exists before the messages, as mqkit's and raw's do
                r.xgroup_create(self.name, "g", id="0", mkstream=True)
            finally:
                r.close()
        elif backend == "nats":
            asyncio.run(self._add_stream())
        self.sent = False

    def __repr__(self) -> str:
        return f"FastStreamPeer({self.backend}, {self.name})"

    def _servers(self) -> str:
        return self.url.removeprefix("kafka://").split("?")[0].split("/")[0]

    def _broker(self) -> Any:
        if self.backend == "rabbitmq":
            from faststream.rabbit import Channel, RabbitBroker
            return RabbitBroker(self.url, logger=None,
                                default_channel=Channel(prefetch_count=BATCH))
        if self.backend == "redis":
            from faststream.redis import RedisBroker
            return RedisBroker(self.url, logger=None)
        if self.backend == "nats":
            from faststream.nats import NatsBroker
            return NatsBroker(self.url, logger=None)
        from faststream.kafka import KafkaBroker
        return KafkaBroker(self._servers(), logger=None, acks="all", enable_idempotence=True,
                           linger_ms=5, max_batch_size=KAFKA_BATCH_BYTES)

    def _queue(self) -> Any:
        from faststream.rabbit import QueueType, RabbitQueue
        return RabbitQueue(self.name, queue_type=QueueType.QUORUM, durable=True)

    def _stream(self) -> Any:
        from faststream.nats import JStream
        from nats.js.api import StorageType
        return JStream(self.name, subjects=[self.name], storage=StorageType.FILE,
                       declare=False)  # made by _add_stream

    def send(self, body: bytes, count: int) -> Result:
        return asyncio.run(self._send(body, count))

    async def _send(self, body: bytes, count: int) -> Result:
        broker = self._broker()
        await broker.connect()
        try:
            if self.backend == "rabbitmq":
                from faststream.rabbit import RabbitQueue
                await broker.declare_queue(self._queue())
                target: Any = RabbitQueue(self.name, declare=False)
            start = time.perf_counter()
            if self.backend == "rabbitmq":
                for _ in range(count):
                    await broker.publish(body, queue=target, persist=True)
                label = "publish x100 (confirm each)"
            elif self.backend == "redis":
                for _ in range(count):
                    await broker.publish(body, stream=self.name)
                label = "publish x100 (XADD each)"
            elif self.backend == "nats":
                for _ in range(count):
                    await broker.publish(body, self.name, stream=self.name)
                label = "publish x100 (PubAck each)"
            else:  # aiokafka's batch must fit max_batch_size: 100 of 100 B, 24 of 10 KiB
                per = max(1, min(BATCH, KAFKA_BATCH_BYTES * 9 // 10 // (len(body) + 64)))
                for i in range(0, count, per):
                    await broker.publish_batch(*([body] * min(per, count - i)),
                                               topic=self.name)
                label = f"publish_batch({per}), acks=all"
            self.sent = True
            return Result("faststream", label, count, time.perf_counter() - start)
        finally:
            await broker.stop()

    def receive(self, count: int) -> Result:
        if not self.sent:
            raise RuntimeError("nothing to receive: the send failed")
        return asyncio.run(self._receive(count))

    async def _receive(self, count: int) -> Result:
        from faststream import AckPolicy
        broker = self._broker()
        done = asyncio.Event()
        got = 0
        clock = FirstBatchClock()
        if self.backend == "rabbitmq":
            sub = broker.subscriber(self._queue(), ack_policy=AckPolicy.ACK)
        elif self.backend == "redis":
            from faststream.redis import StreamSub
            sub = broker.subscriber(stream=StreamSub(self.name, group="g", consumer="c",
                                                     max_records=BATCH),
                                    ack_policy=AckPolicy.ACK)
        elif self.backend == "nats":
            from faststream.nats import PullSub
            sub = broker.subscriber(self.name, stream=self._stream(), durable="g",
                                    pull_sub=PullSub(batch_size=BATCH),
                                    ack_policy=AckPolicy.ACK)
        else:
            sub = broker.subscriber(self.name, group_id="g", auto_offset_reset="earliest",
                                    max_records=BATCH, ack_policy=AckPolicy.ACK)

        @sub
        async def handle(body: bytes) -> None:
            nonlocal got
            if not got:
                clock.got(1)  # timed from the first message in hand, as every side
            got += 1
            if got >= count:
                done.set()

        await broker.connect()
        await broker.start()
        try:
            await asyncio.wait_for(done.wait(), timeout=60)
            return clock.result("faststream", "subscriber, ack per message", got)
        finally:
            await broker.stop()

    def close(self) -> None:
        if self.backend == "rabbitmq":
            import pika
            conn = pika.BlockingConnection(pika.URLParameters(self.url))
            try:
                conn.channel().queue_delete(self.name)
            finally:
                conn.close()
        elif self.backend == "redis":
            import redis
            r = redis.Redis.from_url(self.url)
            try:
                r.delete(self.name)
            finally:
                r.close()
        elif self.backend == "nats":
            asyncio.run(self._delete_stream())
        else:
            from kafka import KafkaAdminClient
            admin = KafkaAdminClient(bootstrap_servers=self._servers())
            try:
                admin.delete_topics([self.name])
            finally:
                admin.close()

    async def _add_stream(self) -> None:
        import nats
        from nats.js.api import StorageType
        nc = await nats.connect(self.url)
        try:
            await nc.jetstream().add_stream(name=self.name, subjects=[self.name],
                                            storage=StorageType.FILE)
        finally:
            await nc.close()

    async def _delete_stream(self) -> None:
        import nats
        nc = await nats.connect(self.url)
        try:
            await nc.jetstream().delete_stream(self.name)
        finally:
            await nc.close()
