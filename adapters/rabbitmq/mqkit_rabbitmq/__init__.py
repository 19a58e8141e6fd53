"""mqkit's RabbitMQ adapter (pika), for ``amqp://`` and ``amqps://`` URLs.

Words
-----
=============  ===============================================================
mqkit          RabbitMQ
=============  ===============================================================
topic          durable ``topic`` exchange named ``<exchange_prefix><topic>``
key            the routing key (``""`` when the message has no key)
group          durable queue ``queue_format`` (default ``<topic>.<group>``), quorum by
               default (``queue_type=classic`` for classic), bound with
               ``binding_key`` (default ``#``: every key)
ack            ``basic_ack``
nack           ``basic_nack(requeue=True)``
nack(delay)    emulated: republished (confirmed) to the TTL queue
               ``mqkit.retry.<queue>.<ms>`` that dead-letters back into the group's
               queue, then the original is acked
reject         ``basic_reject(requeue=False)``: dropped
dead letter    emulated by mqkit above the driver: a copy with the failure reason is
               published to topic ``<topic>.dlq`` (group ``dead-letters``), then acked
delay (send)   emulated: published to fanout exchange + TTL queue
               ``mqkit.delay.<exchange>.<ms>`` dead-lettering into the topic exchange
               with the message's key; delays are rounded *up* (100 ms steps under
               10 s, 1 s under 5 min, 10 s beyond)
priority       ``x-max-priority`` on classic queues when ``max_priority`` > 0
ttl            per-message ``expiration``
delivery count quorum queues' ``x-delivery-count`` + 1, or this subscription's own
               count per message id when higher (classic queues: only that, with
               the ``redelivered`` flag for messages it never saw)
lease          emulated: a delivery handed out and not settled within ``lease``
               seconds is requeued (``basic_nack``); ``extend_lease`` pushes that
               deadline. Deliveries pushed ahead (prefetch) and not claimed by
               ``receive`` for 1 s are given back
replay         ``*.stream`` topics only: a stream queue ``mqkit.archive.<exchange>``
               bound to the exchange keeps the history (bounded retention); a group
               created at ``earliest`` gets it copied into its queue (._archive),
               then behaves as any group. ``earliest`` elsewhere: ``Unsupported``
=============  ===============================================================

Delivery is at-least-once. ``send``/``send_batch`` return once the broker confirmed
every message (publisher confirms, waited for once per batch). Sends are not
``mandatory``: a message sent to a topic with no group is dropped by the broker.

Message fields map to AMQP properties: ``id`` → ``message_id``, ``correlation_id``,
``content_type``, ``reply_to``, ``priority``, ``ttl`` → ``expiration`` (ms), headers →
the ``headers`` table (values received from other clients are turned into str).
mqkit adds no header to a plain send; a delayed retry carries ``x-mqkit-key`` and
``x-mqkit-delivered``, removed on receipt.

URL
---
``amqp[s]://[user[:password]@]host[:port][,host2[:port]...][/vhost][?params]``
(vhost URL-encoded: ``%2F`` is ``/``, the default; user and password default to
guest). Parameters (also keyword arguments of ``mqkit.connect``):

``heartbeat`` (int, 30), ``queue_type`` (``quorum``|``classic``), ``quorum_size``
(members of each group's quorum queue, ``x-quorum-initial-group-size``; default: the
broker's; every client of a group must give the same), ``binding_key``
(``#``), ``max_priority`` (0; classic only), ``queue_format`` (``{topic}.{group}``),
``exchange_prefix`` (""), ``persistent`` (true: delivery mode 2), ``confirm`` (true:
publisher confirms), ``tls`` (default: true for amqps), ``ca_file``, ``cert_file``,
``key_file``, ``key_password`` (secret), ``verify`` (true), ``server_hostname``,
``blocked_timeout`` (30 s), ``archive_max_age`` (seconds, 7 days) and
``archive_max_bytes`` (1 GiB): the retention of each ``*.stream`` topic's archive, also
options of ``create_topic`` for that topic (its only topic options). Portable
parameters (``connect_timeout``, ``prefetch``...) are mqkit's own.

On a cluster, name every node: ``amqp://u:p@h1:5672,h2:5672,h3:5672/vhost``. A
connection goes to the first host that accepts it; when that node dies or is cut off, the
call fails with ``Unavailable`` and the next one connects to the next host that answers
(the portable layer retries sends and receives across that). Group queues are quorum
queues by default (replicated, a majority confirms each message); ``quorum_size`` sets
their members. The group queue options are connection options, not topic options: a
RabbitMQ topic is an exchange, and its groups' queues are declared by ``create_group``
and by each subscription. The TTL queues behind ``nack(delay)`` and ``send(delay)`` are
classic queues on one node.

Native objects through ``as_()``: ``pika.BlockingConnection`` (client, producer,
consumer) and ``pika.adapters.blocking_connection.BlockingChannel`` (producer,
consumer).
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


plugin = AdapterPlugin(name="rabbitmq", schemes=("amqp", "amqps"), extra="rabbitmq",
                       connect=_connect)
