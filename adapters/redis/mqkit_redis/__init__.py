"""mqkit's Redis adapter (redis-py), for ``redis://``, ``rediss://``, (Sentinel)
``redis+sentinel://``, ``rediss+sentinel://`` and (Redis Cluster) ``redis+cluster://``,
``rediss+cluster://`` URLs.

Streams with consumer groups (the default, durable, at-least-once), or pub/sub channels
with ``mode=pubsub`` (ephemeral, at-most-once).

Words (Streams)
---------------
==============  ==============================================================
mqkit           Redis
==============  ==============================================================
topic           stream at key ``<key_prefix><topic>`` (created empty by
                ``create_topic``; a send never creates one: ``XADD NOMKSTREAM``)
key             entry field ``key`` (no partitioning: one stream is one order)
group           consumer group of the stream (``XGROUP CREATE``, from ``$`` for
                ``latest``, ``0`` for ``earliest``); consumer name = mqkit's
                per-consumer ``consumer_name`` (unique per consumer instance)
receive         ``XREADGROUP GROUP g c COUNT n BLOCK ms STREAMS key >``, blocking
                at most ``block_slice`` at a time (never a busy loop)
lease           ``XAUTOCLAIM`` by any consumer of entries idle longer than its
                ``lease`` (their consumer died or is too slow)
ack             ``XACK`` (the entry stays in the stream for other groups until
                trimmed)
nack            emulated: the entry stays pending and its id goes into the group's
                retry schedule, sorted set ``<stream>:mqkit-retry:<group>``
                (score = due time in ms); consumers take due ids (``ZREM`` as the
                lock) and ``XCLAIM`` them, which counts a delivery
nack(delay)     the same, with the due time ``now + delay``
reject          ``XACK``: dropped for this group
delivery count  the pending entries list's delivery counter (``XPENDING``); 1 for
                an entry read with ``>``
dead letter     emulated by mqkit above the driver: a copy with the failure reason
                (header ``mqkit-dead-letter-reason``) is sent to the stream
                ``<topic>:dlq`` (``dlq_suffix``; group ``dead-letters``), then acked
delay (send)    emulated: sorted set ``<stream>:mqkit-delayed`` (score = due ms,
                member = the entry's fields); the topic's consumers move due
                entries into the stream with one Lua script (``XADD`` + ``ZREM``)
extend_lease    ``XCLAIM ... JUSTID`` (resets the idle time, counts nothing)
close           the consumer's pending entries are scheduled at once (``ZADD NX``:
                one waiting for a delayed nack keeps its time), handed to
                consumer ``mqkit-released`` and the consumer deleted from the group
==============  ==============================================================

Delivery is at-least-once. ``send_batch`` returns once Redis replied to every ``XADD``
of the batch, written as one pipeline (no MULTI/EXEC: entries of a failed batch may be
partly written, and named). Durability across a server restart needs AOF
(``appendonly yes``; ``appendfsync always`` to lose no acknowledged write,
``everysec`` to lose up to a second); the adapter declares ``persistence`` native
only when the server reports AOF on (``persistence=auto``). Without persistence a
restart empties the server: clients re-create the streams and groups they use and go
on (``redeclare``); what was in the server is lost.

Entry layout (readable and writable by plain clients): ``body`` (bytes), ``id``,
``key``, ``content-type``, ``correlation-id``, ``reply-to``, and one ``h:<name>`` field
per header. An entry without ``id`` takes its entry id; any other field a plain client
writes is a header under its own name.

Pub/sub mode (``mode=pubsub``): topic = channel ``<key_prefix><topic>`` (known topics
in the set ``<key_prefix>mqkit:channels``), send = ``PUBLISH`` of the fields joined as
``<len>:<bytes>``; every consumer gets what is published while it listens, whatever its
group; ack/reject do nothing; nack, groups, replay, persistence are unsupported.

URL
---
``redis[s]://[[user]:password@]host[:port][/db][?params]`` (port 6379, db 0; ``rediss``
turns TLS on). Parameters (also keyword arguments of ``mqkit.connect``):

``mode`` (``streams`` | ``pubsub``), ``key_prefix`` (""), ``dlq_suffix`` (``:dlq``),
``maxlen`` (0: no trimming; else ``XADD MAXLEN``), ``max_age`` (0; seconds, ``XADD
MINID``), ``trim_exact`` (false: ``~`` approximate trimming), ``block_slice`` (1 s),
``persistence`` (``auto`` | ``on`` | ``off``), ``redeclare`` (true), ``client_name``
(``mqkit``), ``username``, ``password`` (secret; else from the URL), ``tls`` (default:
true for ``rediss``), ``ca_file``, ``cert_file``, ``key_file``, ``key_password``
(secret), ``verify`` (true), ``check_hostname`` (true). Portable parameters
(``connect_timeout``, ``prefetch``, ``lease``...) are mqkit's own.

Drivers: blocking (``redis.Redis``) and asyncio-native (``redis.asyncio.Redis``), one
source for both (see "One source for both faces" below).

Sentinel: ``redis[s]+sentinel://[[user]:password@]sentinel[:port][,sentinel[:port]...]
[/db]?service=NAME[&params]``. The hosts are the Sentinels (port 26379), ``service``
(required) the name they monitor the primary by; the credentials, database and TLS
(``rediss+sentinel``) are the data nodes', as in a ``redis://`` URL; ``sentinel_username``
and ``sentinel_password`` (secret) are the Sentinels' own, when they require auth (they
are reached without TLS). Each new connection asks a Sentinel for the primary's address;
a connection to a primary that was demoted (READONLY) or died is dropped, so after a
failover the next call reaches the new primary (calls during the failover fail with
``Unavailable``, retried by the portable layer within its deadline). A scheme rather than
an option because the host list means something else (Sentinels, not servers, with their
own default port) and a reader of the URL should see that at once; redis-py has no URL
form for Sentinel. Replication is asynchronous: a write the primary acknowledged but had
not replicated when it died can be lost at a failover.

Cluster: ``redis[s]+cluster://[[user]:password@]seed[:port][,seed[:port]...][?params]``.
The hosts are seeds (port 6379): redis-py's ``RedisCluster`` fetches the slot map from
the first that answers, again after a node fails or a step answers ``MOVED``/``ASK``
(the step is then sent again, up to 3 times). Every key of topic ``t`` carries ``{t}`` as
hash tag (``_names``), so each step of a flow, each script and each ``MULTI`` stays on
one slot and is sent to its primary as one write (``_cluster``); ``list_topics`` and
``INFO`` run on every primary; restart re-creation (``redeclare``) is per node, for
the keys of its slots. No database number, no ``mode=pubsub``; a topic or
``key_prefix`` with a brace is refused.

Native objects through ``as_()``: ``redis.Redis`` (blocking face) or
``redis.asyncio.Redis`` (asyncio face), on client, producer and consumer;
``redis.cluster.RedisCluster`` or ``redis.asyncio.cluster.RedisCluster`` in cluster mode.

One source for both faces
-------------------------
Nothing is written twice by hand. The decisions (commands built, replies parsed,
deliveries built, what a restart re-creates, how an error maps) are sans-I/O and
face-neutral: ``_flows`` (generators that yield commands and receive raw replies),
``_wire``, ``_link`` (client arguments, packing, restart bookkeeping), ``_capabilities``,
``_errors``. What is left is the I/O shell (link, topic, subscription, driver, pub/sub),
which differs between the faces only by ``async``/``await`` and redis-py's names. It is
written once, for asyncio, in ``_aio``; the blocking ``_driver`` is generated from it by
``scripts/unasync.py`` (the core's generator, with the rename table ``redis.asyncio`` ->
``redis`` and ``aclose`` -> ``close``), and CI fails when it is stale (``unasync.py
--check``). The few real differences (a ``threading.Lock``, one socket timeout per reply
instead of one asyncio deadline per step, pub/sub subscribing at open rather than at the
first receive) are ``# unasync:`` lines beside the asyncio line they replace.

Why not more sans-I/O helpers alone: they hold the logic already, but a method body
cannot be shared between a ``def`` and an ``async def``. Sharing the shell by hand would
leave two dozen two-line twins (``with mapped(...): [await] link.run(flow)``) and their
bookkeeping, free to drift; building them by metaprogramming would hide them from
mypy. Generation leaves one text, checked, with the same speed (no extra indirection on
the hot paths: the blocking face is plain blocking code).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mqkit.driver import AdapterPlugin, ConnectParams

if TYPE_CHECKING:
    from mqkit.driver import AsyncDriver, Driver

__all__ = ["plugin"]


def _connect(params: ConnectParams) -> Driver:
    from ._driver import connect

    return connect(params)


async def _connect_async(params: ConnectParams) -> AsyncDriver:
    from ._aio import connect

    return await connect(params)


plugin = AdapterPlugin(name="redis",
                       schemes=("redis", "rediss", "redis+sentinel", "rediss+sentinel",
                                "redis+cluster", "rediss+cluster"),
                       extra="redis", connect=_connect, connect_async=_connect_async)
