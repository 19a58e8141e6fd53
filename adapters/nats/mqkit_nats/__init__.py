"""mqkit's NATS adapter (nats-py, asyncio-native), for ``nats://`` URLs.

Words (JetStream, the default ``mode=jetstream``)
------------------------------------------------
==============  ==============================================================
mqkit           NATS
==============  ==============================================================
topic           subject ``<topic>``, captured by the stream
                ``<stream_prefix><topic with '.' -> '_'>`` (default prefix
                ``MQKIT_``; subjects ``[<topic>]``, limits retention, file storage).
                ``orders.dlq`` is a subject of its own, in stream ``MQKIT_orders_dlq``
group           durable pull consumer ``<group with '.' -> '_'>`` on that stream
                (FilterSubject = topic, AckPolicy explicit, AckWait = lease,
                DeliverPolicy ``new`` for start=latest, ``all`` for earliest;
                description ``mqkit group <group>``)
key             header ``mqkit-key`` (NATS has no key; order is per stream)
ack             ``+ACK``
nack            ``-NAK``; nack(delay): ``-NAK {"delay": ns}`` (native)
reject          ``+TERM``: never redelivered
lease           AckWait; ``extend_lease`` sends ``+WPI`` (in progress), which restarts
                the full AckWait (native)
delivery count  the message metadata's ``num_delivered``
dead letter     emulated by mqkit above the driver: a copy with the failure reason is
                published to topic ``<topic>.dlq`` (group ``dead-letters``), then acked
dedup           ``Nats-Msg-Id`` = message id, within the stream's ``duplicate_window``
delay (send)    unsupported (NATS 2.9/2.10 has no message scheduling)
ttl             emulated by mqkit: header ``mqkit-expires``, dropped at receive
priority        emulated (JetStream): priority p in 1..9 is published to subject
                ``<topic>.mqkit-p<p>``, captured by band stream
                ``<stream>_mqkit-p<p>`` (made on the first send at p, with a consumer
                per group); a consumer reads its bands highest first, then the
                plain subject (priority 0 or none). Core mode: unsupported
purge           the group's consumer is recreated to start after the stream's last
                message (other groups keep their backlog)
==============  ==============================================================

Delivery is at-least-once. ``send``/``send_batch`` return once every message's PubAck
came back: the batch is stored by the stream. Up to ``publish_window`` PubAcks are
outstanding at once, so a batch costs about one round trip, not one per message.

``mode=core`` is plain NATS: topic = subject, group = queue group, at-most-once, no
persistence; a batch returns after a flush (the server has it); ack and reject do
nothing; nack, dead letters, lease, replay, stats and purge are unsupported.

Message fields map to NATS headers: ``id`` → ``Nats-Msg-Id``, ``content_type`` →
``Content-Type``, ``correlation_id`` → ``mqkit-correlation-id``, ``reply_to`` →
``mqkit-reply-to``, ``key`` → ``mqkit-key``; user headers are NATS headers as they
are. A message from a plain client without ``Nats-Msg-Id`` gets the id
``<stream>.<stream sequence>``; ``broker_id`` is the stream sequence.

URL
---
``nats://[user[:password]@]host[:port][,host2[:port]...][?params]`` (port 4222). Parameters
(also keyword arguments of ``mqkit.connect``):

``mode`` (``jetstream``|``core``), ``stream_prefix`` (``MQKIT_``), ``storage``
(``file``|``memory``), ``replicas`` (1), ``max_age`` (s, 0 = unlimited), ``max_bytes``
(-1), ``max_msgs`` (-1), ``duplicate_window`` (120 s), ``max_deliver`` (-1: unlimited),
``max_ack_pending`` (20000), ``publish_window`` (1000), ``max_batch`` (1000),
``api_timeout`` (5 s), ``ping_interval`` (10 s), ``max_outstanding_pings`` (2),
``reconnect_wait`` (0.5 s), ``name`` (``mqkit``), ``inbox_prefix`` (``_INBOX``);
TLS: ``tls`` (false), ``ca_file``, ``cert_file``, ``key_file``, ``key_password`` (secret),
``verify`` (true), ``server_hostname``, ``tls_handshake_first`` (false);
authentication: ``user``, ``password`` (secret; or in the URL), ``token`` (secret),
``nkey_seed`` (secret), ``creds_file``. ``create_topic`` accepts ``max_age``,
``max_bytes``, ``max_msgs``, ``storage``, ``replicas``, ``duplicate_window``.
Portable parameters (``connect_timeout``, ``prefetch``, ``lease``...) are mqkit's own.

Native objects through ``as_()``: ``nats.aio.client.Client`` and
``nats.js.JetStreamContext`` (client, producer, consumer) and
``nats.aio.subscription.Subscription`` (consumer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mqkit.driver import AdapterPlugin, ConnectParams

if TYPE_CHECKING:
    from mqkit.driver import AsyncDriver

__all__ = ["plugin"]


async def _connect_async(params: ConnectParams) -> AsyncDriver:
    from ._driver import connect

    return await connect(params)


plugin = AdapterPlugin(name="nats", schemes=("nats",), extra="nats",
                       connect_async=_connect_async)
