"""mqkit's Kafka adapter (kafka-python), for ``kafka://`` URLs.

Words
-----
=============  ===============================================================
mqkit          Kafka
=============  ===============================================================
topic          topic of the same name (topic options ``partitions``, ``replication``,
               ``min_insync_replicas``, ``configs`` on create)
key            the record key: the default partitioner maps it to a partition
group          consumer group ``group_format`` (default ``<topic>.<group>``, as Kafka
               group ids are cluster-wide); it exists once it has committed offsets
               on the topic. ``create_group`` commits the end (``latest``) or the
               beginning (``earliest``) of every partition without joining
ack            commit of the contiguous acked prefix per partition (synchronous, at
               each ack call): acks out of order never commit past an unacked
               message; the prefix is committed before a partition is revoked
nack           emulated: a copy is produced (acks awaited) to the group's retry
               topic ``<retry_prefix><group id>`` (default prefix
               ``mqkit.retry.``) with ``mqkit-delivery-count`` = count + 1, then
               the original is settled. The consumer reads topic and retry topic.
               A retried message leaves its key's order: it comes after messages
               of that key sent later
nack(delay)    emulated: the copy also carries ``mqkit-retry-at`` (epoch ms); the
               retry partition is paused until then, so a later retry behind a
               longer one waits for it (never early)
reject         the offset is settled (committed with the prefix): dropped
dead letter    emulated by mqkit above the driver: a copy with the failure reason is
               produced to topic ``dead_letter_format`` (default ``<topic>.dlq``;
               group ``dead-letters``), then acked
delay (send)   unsupported: it would stall a partition for every group
delivery count ``mqkit-delivery-count`` of a retried copy, else 1 (a redelivery
               after a crash or rebalance is not counted: Kafka does not know it)
lease          none (unsupported): an unacked message stays with its member until
               it closes, dies (``session_timeout_ms``) or loses the partition to
               a rebalance; then the group's next owner reads it again
=============  ===============================================================

Delivery is at-least-once. ``send``/``send_batch`` return once the broker acknowledged
every record with ``acks`` (``all`` by default, idempotent producer): the batch is
flushed at once and its futures awaited. Records are checked against
``max_request_size`` (key and headers included) before anything is sent. After a
rebalance, unacked messages of a partition that moved are read again by its new owner
(duplicates possible, nothing lost); acks of such stale deliveries do nothing.

Message fields map to record fields and headers: body → value, key → key, ``id`` →
header ``mqkit-id``, ``content_type`` → ``content-type``, ``correlation_id`` →
``mqkit-correlation-id``, ``reply_to`` → ``mqkit-reply-to``, headers → headers (UTF-8
values; bytes from other clients are decoded with replacement). A record with no
``mqkit-id`` gets the id ``<topic>:<partition>:<offset>``. The broker's timestamp and
``<topic>:<partition>:<offset>`` (``broker_id``) are exposed on receipt.

URL
---
``kafka://[user[:password]@]host[:port][,host2[:port]...][?params]`` (port 9092).
User and password mean SASL (``PLAIN`` unless ``sasl_mechanism`` says otherwise); a
refused login is ``PermissionDenied`` from ``connect`` at once, never retried (see
``_net``: kafka-python alone retries it until the connect timeout).
Parameters (also keyword arguments of ``mqkit.connect``):

``partitions`` (3), ``replication`` (broker default), ``min_insync_replicas`` (broker
default; at most ``replication``: the topic's ``min.insync.replicas``), ``group_format``
(``{topic}.{group}``), ``retry_prefix`` (``mqkit.retry.``), ``dead_letter_format``
(``{topic}.dlq``), ``acks`` (``all``|``1``|
``0``), ``idempotence`` (true; needs acks=all), ``linger_ms`` (5), ``batch_size``
(262144), ``compression`` (``none``|``gzip``|``snappy``|``lz4``|``zstd``),
``max_message_size`` (1000000, body), ``max_request_size`` (1048576, whole record),
``delivery_timeout_ms`` (30000), ``session_timeout_ms`` (10000),
``heartbeat_interval_ms`` (1000), ``max_poll_interval_ms`` (300000), ``client_id``
(``mqkit``), ``tls`` (false), ``ca_file``, ``cert_file``, ``key_file``,
``key_password`` (secret), ``verify`` (true), ``sasl_mechanism`` (``PLAIN``,
``SCRAM-SHA-256``, ``SCRAM-SHA-512``). Portable parameters (``connect_timeout``,
``prefetch``, ``start``...) are mqkit's own.

On a cluster, name every node (``kafka://h1:9092,h2:9092,h3:9092``: any one answering
bootstraps the client) and create topics with ``replication=3`` and
``min_insync_replicas=2`` (topic options of ``create_topic``, or URL parameters for every
topic and retry topic mqkit creates): with ``acks=all`` an acknowledged record is then on
two nodes at least, and one node may fail without losing it or stopping sends.

Native objects through ``as_()``: ``kafka.KafkaAdminClient`` and ``kafka.KafkaProducer``
(client), ``kafka.KafkaConsumer`` (the subscription driver; not reachable through the
portable ``Consumer`` yet).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mqkit.driver import AdapterPlugin, ConnectParams

if TYPE_CHECKING:
    from mqkit.driver import Driver

__all__ = ["plugin"]


def _connect(params: ConnectParams) -> Driver:
    from ._driver import connect

    return connect(params)


plugin = AdapterPlugin(name="kafka", schemes=("kafka",), extra="kafka", connect=_connect)
