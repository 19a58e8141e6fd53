"""The drivers' I/O shell: link, topic, subscription, driver and pub/sub, for one face.

``_aio.py`` is the asyncio face and the one source: ``_driver.py``, the blocking face, is
generated from it by ``scripts/unasync.py`` (never edit ``_driver.py``; CI runs
``scripts/unasync.py --check``). The logic (commands sent, replies read, deliveries
built, what a restart re-creates, errors) is in the face-neutral modules ``_flows``,
``_wire``, ``_link``, ``_capabilities`` and ``_errors``; each method here only runs a
flow on the link and maps its errors. The few lines where the faces really differ are
``# unasync:`` directives, next to the asyncio line they replace.

Cancelling a call (``asyncio`` cancellation) drops the connection it was using
(redis-py disconnects a connection whose reply was not read), so no half-read reply is
left for the next call.
"""

from __future__ import annotations

import asyncio  # unasync: import threading
import logging
import math  # unasync: drop
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.exceptions as re_
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from mqkit.driver import (
    AsyncDriver,
    AsyncSubscriptionDriver,
    AsyncTopicDriver,
    Capabilities,
    ConnectParams,
    ConnectTimeout,
    Delivery,
    GroupStats,
    Message,
    SubscriptionOptions,
    Unsupported,
    parse_options,
)

from . import _flows as flows
from . import _reader
from ._capabilities import aof_enabled, capabilities_for, pubsub_capabilities
from ._cluster import MOVED_TRIES, cluster_args, is_cluster, slot, step_key
from ._delay import MOVE_DUE_SHA
from ._errors import mapped
from ._link import (
    Known,
    client_kwargs,
    pack,
    redeclared,
    sentinel_args,
    within,  # unasync: drop
)
from ._names import Names
from ._options import RedisOptions
from ._wire import decode, encode, join_fields, parse_payload

__all__ = ["AsyncLink", "AsyncPubSubDriver", "AsyncRedisDriver", "AsyncShell", "connect",
           "read_replies"]

T = TypeVar("T")
log = logging.getLogger("mqkit.redis")


class AsyncLink:
    """One pool for a driver (in cluster mode: one per node), its known names, and the
    flow runner."""

    def __init__(self, params: ConnectParams, options: RedisOptions) -> None:
        self.options = options
        self.known = Known(options.redeclare)
        # The lock keeps two new connections from re-creating at once.
        self._connect_lock = asyncio.Lock()  # unasync: self._connect_lock = threading.Lock()
        hook: Any = self._on_connect  # redis-py types it as taking no argument; it gets one
        kwargs = client_kwargs(params, options)
        sentinel = sentinel_args(params, options)
        self._cluster = cluster_args(params, options, kwargs)
        self._stale = False  # cluster: fetch the slot map again before the next step
        self.client: Any = None
        if self._cluster is not None:
            pass  # made by open(): redis-py's blocking cluster client connects at once
        elif sentinel is None:
            self.client = redis.asyncio.Redis(
                redis_connect_func=hook, retry=Retry(NoBackoff(), 0), **kwargs)
        else:
            # Each new connection asks a Sentinel for the primary's address first; one to
            # a demoted primary (READONLY) is dropped, so the next one finds the new one.
            del kwargs["host"], kwargs["port"]
            self.client = redis.asyncio.sentinel.Sentinel(
                sentinel.hosts, sentinel_kwargs=sentinel.kwargs,
            ).master_for(sentinel.service, redis_connect_func=hook,
                         retry=Retry(NoBackoff(), 0), **kwargs)
        self.script_sha = MOVE_DUE_SHA
        self._read_timeout = params.connect_timeout + options.block_slice  # unasync: drop

    async def open(self) -> None:
        """Cluster mode: make the cluster client, which fetches the slot map from the
        first seed that answers. Nothing to do otherwise (connections open lazily)."""
        if self._cluster is None:
            return
        # Every new connection to a node runs the restart check (_on_connect), as on a
        # single server: per node, re-creating the keys of the slots that node serves.
        hook: Any = self._on_connect
        seed: Any = redis.asyncio.cluster.ClusterNode  # untyped on the blocking face
        self.client = redis.asyncio.cluster.RedisCluster(
            startup_nodes=[seed(host, port) for host, port in self._cluster.hosts],
            **self._cluster.kwargs)  # unasync: **self._cluster.kwargs, redis_connect_func=hook)
        # asyncio: no such argument; the nodes' connection arguments take it instead
        self.client.connection_kwargs["redis_connect_func"] = hook  # unasync: drop
        for node in self.client.nodes_manager.startup_nodes.values():  # unasync: drop
            node.connection_kwargs["redis_connect_func"] = hook  # unasync: drop
        await self.client.initialize()  # unasync: drop

    def _node_of(self, conn: Any) -> tuple[str, Callable[[str], bool] | None]:
        """Cluster mode: the node ``conn`` reaches (``host:port``) and which stream keys
        it serves now; ``("", None)`` for a single server."""
        if self._cluster is None:
            return "", None
        name = f"{conn.host}:{conn.port}"

        def serves(key: str) -> bool:
            try:
                return bool(self.client.nodes_manager.get_node_from_slot(slot(key)).name
                            == name)
            except Exception:  # the slot map is being fetched: try it (MOVED is ignored)
                return True

        return name, serves

    async def _on_connect(self, conn: Any) -> None:
        await conn.on_connect()
        await conn.send_command("INFO", "server")
        try:
            info = await conn.read_response()
        except re_.ResponseError as exc:  # an ACL user without INFO: no restart check
            log.debug("mqkit: INFO server refused (%s); restarts go unnoticed", exc)
            return
        node, serves = self._node_of(conn)
        async with self._connect_lock:
            for command in self.known.connected(info, node, serves):
                await conn.send_command(*command)
                try:
                    await conn.read_response()
                except (re_.ClusterDownError, re_.TryAgainError, re_.BusyLoadingError):
                    # a cluster node back before its cluster: this connection fails
                    # (Unavailable, retried) and the next one re-creates again
                    self.known.reset(node)
                    raise
                except re_.ResponseError as exc:
                    redeclared(command, exc)

    async def run(self, flow: flows.Flow[T]) -> T:
        """Drive ``flow`` on one pooled connection; its result."""
        if self._cluster is not None:
            return await self._run_cluster(flow, None)
        pool: Any = self.client.connection_pool
        conn: Any = await pool.get_connection()
        try:
            commands = next(flow)
            while True:
                await conn.send_packed_command([pack(conn, commands)])
                # asyncio: one deadline for the whole step, not one timer per reply
                # (redis-py arms one per read_response unless told math.inf): a silent
                # server still times out, and a batch of 1,000 replies costs 1,000 plain
                # reads. Blocking: each read within the socket timeout, the same value.
                replies = await within(  # unasync: replies = read_replies(conn, len(commands))
                    self._read_timeout, read_replies(conn, len(commands)))  # unasync: drop
                commands = flow.send(replies)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            await pool.release(conn)

    async def run_each(self, make: Callable[[], flows.Flow[T]]) -> list[T]:
        """The results of a flow (``make()``) run on each primary of the cluster, in
        turn; of one run on the server otherwise. For keyless flows (``SCAN``, ``INFO``)."""
        if self._cluster is None:
            return [await self.run(make())]
        await self._refresh()
        return [await self._run_cluster(make(), node)
                for node in self.client.get_primaries()]

    async def _refresh(self) -> None:
        if self._stale:
            self._stale = False
            await self.client.nodes_manager.initialize()

    async def _run_cluster(self, flow: flows.Flow[T], node: Any) -> T:
        """Drive ``flow`` in cluster mode: each step on a connection to its slot's
        primary (a keyless step: to ``node``, then the previous step's node)."""
        try:
            commands = next(flow)
            while True:
                replies, node = await self._cluster_step(commands, node)
                commands = flow.send(replies)
        except StopIteration as stop:
            result: T = stop.value
            return result

    async def _cluster_step(
            self, commands: list[flows.Command], node: Any) -> tuple[list[Any], Any]:
        """One step's replies and the node that gave them. A step whose slot moved
        (``MOVED``/``ASK``: nothing of it ran) is sent again, the slot map fetched anew
        first, up to ``MOVED_TRIES`` times; then the redirections are its replies."""
        key = step_key(commands)
        replies: list[Any] = []
        for _ in range(MOVED_TRIES):
            await self._refresh()
            if key is not None:
                node = self.client.nodes_manager.get_node_from_slot(slot(key))
            elif node is None:
                node = self.client.get_default_node()
            conn: Any = node.acquire_connection()  # unasync: drop
            # unasync: conn: Any = node.redis_connection.connection_pool.get_connection()
            try:
                await conn.send_packed_command([pack(conn, commands)])
                replies = await within(  # unasync: replies = read_replies(conn, len(commands))
                    self._read_timeout, read_replies(conn, len(commands)))  # unasync: drop
            except (re_.ConnectionError, re_.TimeoutError, OSError):
                self._stale = True  # a node died or was cut: ask the seeds again
                raise
            finally:
                node.release(conn)  # unasync: node.redis_connection.connection_pool.release(conn)
            if not any(isinstance(r, re_.AskError) for r in replies):  # MOVED is an ASK
                return replies, node
            self._stale = True
        return replies, node

    async def close(self) -> None:
        if self.client is None:
            return
        await self.client.aclose()
        if self._cluster is None:
            await self.client.connection_pool.disconnect()


async def read_replies(conn: Any, count: int) -> list[Any]:
    """``count`` raw replies in order, an error reply in its place (not raised)."""
    replies: list[Any] = []
    for _ in range(count):  # plain method calls: faster than bound ones held in locals
        try:
            replies.append(await conn.read_response(disable_decoding=True,  # unasync: drop
                                                    timeout=math.inf))  # unasync: drop
            # unasync: replies.append(conn.read_response(disable_decoding=True))
        except re_.ResponseError as exc:
            replies.append(exc)
    return replies


async def connect(params: ConnectParams) -> AsyncDriver:
    options = parse_options(RedisOptions, params.options)
    names = Names(options.key_prefix, options.dlq_suffix,
                  cluster=is_cluster(params.url.scheme))
    link = AsyncLink(params, options)
    try:
        with mapped("connect"):
            try:
                await link.open()
                # Cluster: every primary's; persistence only when all keep AOF.
                infos = await link.run_each(lambda: flows.server_info("persistence"))
                aof = all(aof_enabled(info) for info in infos)
            except re_.NoPermissionError:
                aof = False  # an ACL user without INFO: persistence not declared
            except re_.TimeoutError as exc:
                raise ConnectTimeout(
                    f"redis: connect: no answer within {params.connect_timeout} s "
                    f"from {params.url}") from exc
    except BaseException:
        await link.close()
        raise
    if options.mode == "pubsub":
        return AsyncPubSubDriver(link, names)
    return AsyncRedisDriver(link, names, capabilities_for(options, aof))


class AsyncShell:
    """What the driver, topic and subscription objects of a face share: a flow run on
    the link with its errors mapped, and the native client (``as_``)."""

    _link: AsyncLink

    async def _run(self, what: str, flow: flows.Flow[T]) -> T:
        with mapped(what):
            return await self._link.run(flow)

    def as_(self, kind: type[T]) -> T | None:
        client = self._link.client
        return client if isinstance(client, kind) else None


# -- streams mode ----------------------------------------------------------------------

class AsyncRedisTopic(AsyncShell, AsyncTopicDriver):
    """A stream key; ``send_batch`` is one pipeline without MULTI/EXEC. Messages with a
    priority go to their band's stream (``flows.send_banded``); the bands this object
    made or saw are remembered, so a band costs one more round trip on first use."""

    def __init__(self, link: AsyncLink, names: Names, topic: str) -> None:
        self._link = link
        self._names = names
        self._topic = topic
        self._key = names.stream(topic)
        self._delayed = names.delayed(topic)
        self._bands: set[str] = set()

    async def send_batch(self, messages: Sequence[Message]) -> None:
        flow: flows.Flow[list[Any]]
        if any(m.priority for m in messages):
            flow = flows.send_banded(self._names, self._topic, self._link.options,
                                     messages, time.time(), ensured=self._bands)
        else:
            flow = flows.exchange(flows.send_commands(
                self._key, self._delayed, self._link.options, messages, time.time()))
        with mapped(f"send to {self._topic!r}"):
            replies = await self._link.run(flow)
        flows.send_outcome(self._topic, self._key, replies)

    async def close(self) -> None:
        return None


class AsyncRedisSubscription(AsyncShell, AsyncSubscriptionDriver):
    """One consumer (``options.consumer_name``) of one group of one stream: runs the
    flows of its ``_reader.Reader``."""

    def __init__(self, link: AsyncLink, reader: _reader.Reader) -> None:
        self._link = link
        self._reader = reader
        self._what = f"group {reader.group!r} of {reader.topic!r}"

    async def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        return await self._run(f"receive from {self._what}",
                               self._reader.receive(max_messages, timeout))

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        await self._run(f"ack on {self._what}", self._reader.ack(flows.handles(deliveries)))

    # The acks a receive hands over ride ahead of its read: XACK ... XREADGROUP in one
    # round trip instead of two.
    combines_ack_and_receive = True

    async def ack_and_receive(self, deliveries: Sequence[Delivery], max_messages: int,
                              timeout: float) -> list[Delivery]:
        return await self._run(f"receive from {self._what}", flows.ahead(
            self._reader.ack_commands(flows.handles(deliveries)),
            self._reader.receive(max_messages, timeout)))

    async def reject(self, deliveries: Sequence[Delivery]) -> None:
        await self._run(f"reject on {self._what}", self._reader.ack(flows.handles(deliveries)))

    async def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        await self._run(f"nack on {self._what}",
                        self._reader.nack(flows.handles(deliveries), delay))

    async def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        # Resetting the idle time buys one whole lease of this consumer's; ``seconds``
        # is the portable layer's lease, the same value.
        await self._run(f"extend lease on {self._what}",
                        self._reader.extend(flows.handles(deliveries)))

    async def close(self) -> None:
        try:
            await self._link.run(self._reader.release())
        except (re_.RedisError, OSError) as exc:
            # Unreachable or deleted: its entries come back after the lease instead.
            log.info("mqkit: redis consumer %s of %s left without releasing: %s",
                     self._reader.me, self._what, exc)


class AsyncRedisDriver(AsyncShell, AsyncDriver):
    """A pool shared by the admin verbs, topics and subscriptions of one client."""

    def __init__(self, link: AsyncLink, names: Names, capabilities: Capabilities) -> None:
        self.capabilities = capabilities
        self._link = link
        self._names = names

    async def open_topic(self, topic: str) -> AsyncRedisTopic:
        await self._run(f"open topic {topic!r}", flows.require_topic(self._names, topic))
        self._link.known.remember(self._names.stream(topic))
        return AsyncRedisTopic(self._link, self._names, topic)

    async def open_subscription(self, topic: str, group: str,
                                options: SubscriptionOptions) -> AsyncRedisSubscription:
        await self._run(f"open group {group!r} of {topic!r}",
                        flows.open_subscription(self._names, topic, group, options))
        self._link.known.remember(self._names.stream(topic), group)
        reader = _reader.make_reader(self._names, topic, group, options=self._link.options,
                                     sub=options, script_sha=self._link.script_sha)
        await self._run(f"open group {group!r} of {topic!r}", reader.discover())
        return AsyncRedisSubscription(self._link, reader)

    async def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        flows.options_check(options)
        await self._run(f"create topic {topic!r}", flows.create_topic(self._names, topic))
        self._link.known.remember(self._names.stream(topic))

    async def delete_topic(self, topic: str) -> None:
        await self._run(f"delete topic {topic!r}", flows.delete_topic(self._names, topic))
        self._link.known.forget(self._names.stream(topic))

    async def list_topics(self) -> list[str]:
        """Every stream whose key starts with ``key_prefix`` (SCAN ... TYPE stream; on
        each primary of a cluster)."""
        with mapped("list topics"):
            found = await self._link.run_each(lambda: flows.list_topics(self._names))
        return sorted({topic for topics in found for topic in topics})

    async def topic_exists(self, topic: str) -> bool:
        return await self._run(f"find topic {topic!r}", flows.is_stream(self._names, topic))

    async def create_group(self, topic: str, group: str, start: str) -> None:
        await self._run(f"create group {group!r} on {topic!r}",
                        flows.create_group(self._names, topic, group, start))
        self._link.known.remember(self._names.stream(topic), group)

    async def delete_group(self, topic: str, group: str) -> None:
        await self._run(f"delete group {group!r} of {topic!r}",
                        flows.delete_group(self._names, topic, group))
        self._link.known.forget(self._names.stream(topic), group)

    async def list_groups(self, topic: str) -> list[str]:
        return await self._run(f"list groups of {topic!r}",
                               flows.list_groups(self._names, topic))

    async def group_stats(self, topic: str, group: str) -> GroupStats:
        return await self._run(f"stats of {group!r} on {topic!r}",
                               flows.group_stats(self._names, topic, group))

    async def purge(self, topic: str, group: str) -> None:
        await self._run(f"purge {group!r} on {topic!r}",
                        flows.purge(self._names, topic, group))

    def dead_letter_topic(self, topic: str) -> str:
        return self._names.dead_letter(topic)

    async def close(self) -> None:
        with mapped("close"):
            await self._link.close()


# -- pub/sub mode (mode=pubsub) --------------------------------------------------------
#
# topic = channel ``<key_prefix><topic>``; send = ``PUBLISH`` (one buffer per batch);
# every open consumer gets every message published while it is subscribed, whatever its
# group (groups and competing consumers are unsupported); ack/reject do nothing, nack is
# unsupported; a message published while nobody listens is gone. The payload is the
# stream entry's fields joined as ``<len>:<bytes>`` (``_wire.join_fields``) so that
# headers survive; a payload that is not in that form (a plain ``PUBLISH ch hello``) is
# received as the body. Topics exist in a registry set ``<key_prefix>mqkit:channels``.

class AsyncPubSubTopic(AsyncTopicDriver):
    def __init__(self, link: AsyncLink, topic: str, channel: str) -> None:
        self._link = link
        self._topic = topic
        self._channel = channel

    async def send_batch(self, messages: Sequence[Message]) -> None:
        batch: list[flows.Command] = [("PUBLISH", self._channel, join_fields(encode(m)))
                                      for m in messages]
        with mapped(f"publish to {self._topic!r}"):
            flows.check(await self._link.run(flows.exchange(batch)))

    async def close(self) -> None:
        return None


class AsyncPubSubSubscription(AsyncSubscriptionDriver):
    def __init__(self, link: AsyncLink, topic: str, channel: str) -> None:
        self._topic = topic
        self._channel = channel
        client: Any = link.client
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        # Blocking: subscribed here, as the subscription opens; asyncio: by the first
        # receive (a constructor cannot wait for the server).
        self._subscribed = False  # unasync: self._subscribed = self._subscribe("subscribe to")

    async def _subscribe(self, what: str) -> bool:
        with mapped(f"{what} {self._topic!r}"):
            await self._pubsub.subscribe(self._channel)
        return True

    async def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        out: list[Delivery] = []
        deadline = time.monotonic() + timeout
        if not self._subscribed:
            self._subscribed = await self._subscribe("receive from")
        with mapped(f"receive from {self._topic!r}"):
            while len(out) < max_messages:
                # Block only for the first message (get_message's own timeout: never
                # its default of 0 in a loop), then drain what is already there.
                wait = max(0.0, deadline - time.monotonic()) if not out else 0.0
                item = await self._pubsub.get_message(timeout=wait)
                if item is None:
                    if out or time.monotonic() >= deadline:
                        break
                    continue
                if item.get("type") != "message":
                    continue
                msg = decode("", parse_payload(item["data"]))
                out.append(Delivery(msg, self._topic, None, 1, time.time(), None))
        return out

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        return None

    async def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        raise Unsupported("redis", "nack", "pub/sub delivers at most once")

    async def reject(self, deliveries: Sequence[Delivery]) -> None:
        return None

    async def close(self) -> None:
        try:
            await self._pubsub.aclose()
        except Exception:  # closing a dead connection: nothing to do
            pass


class AsyncPubSubDriver(AsyncShell, AsyncDriver):
    """Channels; topics are remembered in a registry set."""

    def __init__(self, link: AsyncLink, names: Names) -> None:
        self.capabilities = pubsub_capabilities()
        self._link = link
        self._names = names

    async def open_topic(self, topic: str) -> AsyncPubSubTopic:
        await self._run(f"open {topic!r}", flows.require_channel(self._names, topic))
        return AsyncPubSubTopic(self._link, topic, self._names.stream(topic))

    async def open_subscription(self, topic: str, group: str,
                                options: SubscriptionOptions) -> AsyncPubSubSubscription:
        await self._run(f"open {topic!r}", flows.require_channel(self._names, topic))
        return AsyncPubSubSubscription(self._link, topic, self._names.stream(topic))

    async def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        flows.options_check(options)
        await self._run(f"create topic {topic!r}",
                        flows.call(("SADD", flows.channels_key(self._names), topic)))

    async def delete_topic(self, topic: str) -> None:
        await self._run(f"delete topic {topic!r}",
                        flows.call(("SREM", flows.channels_key(self._names), topic)))

    async def list_topics(self) -> list[str]:
        return await self._run("list topics", flows.list_channels(self._names))

    async def topic_exists(self, topic: str) -> bool:
        return await self._run(f"find topic {topic!r}",
                               flows.is_channel(self._names, topic))

    async def create_group(self, topic: str, group: str, start: str) -> None:
        await self._run(f"open {topic!r}", flows.require_channel(self._names, topic))

    async def delete_group(self, topic: str, group: str) -> None:
        return None

    async def list_groups(self, topic: str) -> list[str]:
        await self._run(f"open {topic!r}", flows.require_channel(self._names, topic))
        return []

    async def group_stats(self, topic: str, group: str) -> GroupStats:
        raise Unsupported("redis", "admin_stats", "pub/sub keeps no backlog")

    async def purge(self, topic: str, group: str) -> None:
        raise Unsupported("redis", "purge", "pub/sub keeps no backlog")

    async def close(self) -> None:
        with mapped("close"):
            await self._link.close()
