# GENERATED from adapters/redis/mqkit_redis/_aio.py by scripts/unasync.py:
# do not edit; edit the source.
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

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import redis
import redis.cluster
import redis.exceptions as re_
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

from mqkit.driver import (
    Capabilities,
    ConnectParams,
    ConnectTimeout,
    Delivery,
    Driver,
    GroupStats,
    Message,
    SubscriptionDriver,
    SubscriptionOptions,
    TopicDriver,
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
)
from ._names import Names
from ._options import RedisOptions
from ._wire import decode, encode, join_fields, parse_payload

__all__ = ["Link", "PubSubDriver", "RedisDriver", "Shell", "connect",
           "read_replies"]

T = TypeVar("T")
log = logging.getLogger("mqkit.redis")


class Link:
    """One pool for a driver (in cluster mode: one per node), its known names, and the
    flow runner."""

    def __init__(self, params: ConnectParams, options: RedisOptions) -> None:
        self.options = options
        self.known = Known(options.redeclare)
        # The lock keeps two new connections from re-creating at once.
        self._connect_lock = threading.Lock()
        hook: Any = self._on_connect  # redis-py types it as taking no argument; it gets one
        kwargs = client_kwargs(params, options)
        sentinel = sentinel_args(params, options)
        self._cluster = cluster_args(params, options, kwargs)
        self._stale = False  # cluster: fetch the slot map again before the next step
        self.client: Any = None
        if self._cluster is not None:
            pass  # made by open(): redis-py's blocking cluster client connects at once
        elif sentinel is None:
            self.client = redis.Redis(
                redis_connect_func=hook, retry=Retry(NoBackoff(), 0), **kwargs)
        else:
            # Each new connection asks a Sentinel for the primary's address first; one to
            # a demoted primary (READONLY) is dropped, so the next one finds the new one.
            del kwargs["host"], kwargs["port"]
            self.client = redis.sentinel.Sentinel(
                sentinel.hosts, sentinel_kwargs=sentinel.kwargs,
            ).master_for(sentinel.service, redis_connect_func=hook,
                         retry=Retry(NoBackoff(), 0), **kwargs)
        self.script_sha = MOVE_DUE_SHA

    def open(self) -> None:
        """Cluster mode: make the cluster client, which fetches the slot map from the
        first seed that answers. Nothing to do otherwise (connections open lazily)."""
        if self._cluster is None:
            return
        # Every new connection to a node runs the restart check (_on_connect), as on a
        # single server: per node, re-creating the keys of the slots that node serves.
        hook: Any = self._on_connect
        seed: Any = redis.cluster.ClusterNode  # untyped on the blocking face
        self.client = redis.cluster.RedisCluster(
            startup_nodes=[seed(host, port) for host, port in self._cluster.hosts],
            **self._cluster.kwargs, redis_connect_func=hook)
        # asyncio: no such argument; the nodes' connection arguments take it instead

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

    def _on_connect(self, conn: Any) -> None:
        conn.on_connect()
        conn.send_command("INFO", "server")
        try:
            info = conn.read_response()
        except re_.ResponseError as exc:  # an ACL user without INFO: no restart check
            log.debug("mqkit: INFO server refused (%s); restarts go unnoticed", exc)
            return
        node, serves = self._node_of(conn)
        with self._connect_lock:
            for command in self.known.connected(info, node, serves):
                conn.send_command(*command)
                try:
                    conn.read_response()
                except (re_.ClusterDownError, re_.TryAgainError, re_.BusyLoadingError):
                    # a cluster node back before its cluster: this connection fails
                    # (Unavailable, retried) and the next one re-creates again
                    self.known.reset(node)
                    raise
                except re_.ResponseError as exc:
                    redeclared(command, exc)

    def run(self, flow: flows.Flow[T]) -> T:
        """Drive ``flow`` on one pooled connection; its result."""
        if self._cluster is not None:
            return self._run_cluster(flow, None)
        pool: Any = self.client.connection_pool
        conn: Any = pool.get_connection()
        try:
            commands = next(flow)
            while True:
                conn.send_packed_command([pack(conn, commands)])
                # asyncio: one deadline for the whole step, not one timer per reply
                # (redis-py arms one per read_response unless told math.inf): a silent
                # server still times out, and a batch of 1,000 replies costs 1,000 plain
                # reads. Blocking: each read within the socket timeout, the same value.
                replies = read_replies(conn, len(commands))
                commands = flow.send(replies)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            pool.release(conn)

    def run_each(self, make: Callable[[], flows.Flow[T]]) -> list[T]:
        """The results of a flow (``make()``) run on each primary of the cluster, in
        turn; of one run on the server otherwise. For keyless flows (``SCAN``, ``INFO``)."""
        if self._cluster is None:
            return [self.run(make())]
        self._refresh()
        return [self._run_cluster(make(), node)
                for node in self.client.get_primaries()]

    def _refresh(self) -> None:
        if self._stale:
            self._stale = False
            self.client.nodes_manager.initialize()

    def _run_cluster(self, flow: flows.Flow[T], node: Any) -> T:
        """Drive ``flow`` in cluster mode: each step on a connection to its slot's
        primary (a keyless step: to ``node``, then the previous step's node)."""
        try:
            commands = next(flow)
            while True:
                replies, node = self._cluster_step(commands, node)
                commands = flow.send(replies)
        except StopIteration as stop:
            result: T = stop.value
            return result

    def _cluster_step(
            self, commands: list[flows.Command], node: Any) -> tuple[list[Any], Any]:
        """One step's replies and the node that gave them. A step whose slot moved
        (``MOVED``/``ASK``: nothing of it ran) is sent again, the slot map fetched anew
        first, up to ``MOVED_TRIES`` times; then the redirections are its replies."""
        key = step_key(commands)
        replies: list[Any] = []
        for _ in range(MOVED_TRIES):
            self._refresh()
            if key is not None:
                node = self.client.nodes_manager.get_node_from_slot(slot(key))
            elif node is None:
                node = self.client.get_default_node()
            conn: Any = node.redis_connection.connection_pool.get_connection()
            try:
                conn.send_packed_command([pack(conn, commands)])
                replies = read_replies(conn, len(commands))
            except (re_.ConnectionError, re_.TimeoutError, OSError):
                self._stale = True  # a node died or was cut: ask the seeds again
                raise
            finally:
                node.redis_connection.connection_pool.release(conn)
            if not any(isinstance(r, re_.AskError) for r in replies):  # MOVED is an ASK
                return replies, node
            self._stale = True
        return replies, node

    def close(self) -> None:
        if self.client is None:
            return
        self.client.close()
        if self._cluster is None:
            self.client.connection_pool.disconnect()


def read_replies(conn: Any, count: int) -> list[Any]:
    """``count`` raw replies in order, an error reply in its place (not raised)."""
    replies: list[Any] = []
    for _ in range(count):  # plain method calls: faster than bound ones held in locals
        try:
            replies.append(conn.read_response(disable_decoding=True))
        except re_.ResponseError as exc:
            replies.append(exc)
    return replies


def connect(params: ConnectParams) -> Driver:
    options = parse_options(RedisOptions, params.options)
    names = Names(options.key_prefix, options.dlq_suffix,
                  cluster=is_cluster(params.url.scheme))
    link = Link(params, options)
    try:
        with mapped("connect"):
            try:
                link.open()
                # Cluster: every primary's; persistence only when all keep AOF.
                infos = link.run_each(lambda: flows.server_info("persistence"))
                aof = all(aof_enabled(info) for info in infos)
            except re_.NoPermissionError:
                aof = False  # an ACL user without INFO: persistence not declared
            except re_.TimeoutError as exc:
                raise ConnectTimeout(
                    f"redis: connect: no answer within {params.connect_timeout} s "
                    f"from {params.url}") from exc
    except BaseException:
        link.close()
        raise
    if options.mode == "pubsub":
        return PubSubDriver(link, names)
    return RedisDriver(link, names, capabilities_for(options, aof))


class Shell:
    """What the driver, topic and subscription objects of a face share: a flow run on
    the link with its errors mapped, and the native client (``as_``)."""

    _link: Link

    def _run(self, what: str, flow: flows.Flow[T]) -> T:
        with mapped(what):
            return self._link.run(flow)

    def as_(self, kind: type[T]) -> T | None:
        client = self._link.client
        return client if isinstance(client, kind) else None


# -- streams mode ----------------------------------------------------------------------

class RedisTopic(Shell, TopicDriver):
    """A stream key; ``send_batch`` is one pipeline without MULTI/EXEC. Messages with a
    priority go to their band's stream (``flows.send_banded``); the bands this object
    made or saw are remembered, so a band costs one more round trip on first use."""

    def __init__(self, link: Link, names: Names, topic: str) -> None:
        self._link = link
        self._names = names
        self._topic = topic
        self._key = names.stream(topic)
        self._delayed = names.delayed(topic)
        self._bands: set[str] = set()

    def send_batch(self, messages: Sequence[Message]) -> None:
        flow: flows.Flow[list[Any]]
        if any(m.priority for m in messages):
            flow = flows.send_banded(self._names, self._topic, self._link.options,
                                     messages, time.time(), ensured=self._bands)
        else:
            flow = flows.exchange(flows.send_commands(
                self._key, self._delayed, self._link.options, messages, time.time()))
        with mapped(f"send to {self._topic!r}"):
            replies = self._link.run(flow)
        flows.send_outcome(self._topic, self._key, replies)

    def close(self) -> None:
        return None


class RedisSubscription(Shell, SubscriptionDriver):
    """One consumer (``options.consumer_name``) of one group of one stream: runs the
    flows of its ``_reader.Reader``."""

    def __init__(self, link: Link, reader: _reader.Reader) -> None:
        self._link = link
        self._reader = reader
        self._what = f"group {reader.group!r} of {reader.topic!r}"

    def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        return self._run(f"receive from {self._what}",
                               self._reader.receive(max_messages, timeout))

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        self._run(f"ack on {self._what}", self._reader.ack(flows.handles(deliveries)))

    # The acks a receive hands over ride ahead of its read: XACK ... XREADGROUP in one
    # round trip instead of two.
    combines_ack_and_receive = True

    def ack_and_receive(self, deliveries: Sequence[Delivery], max_messages: int,
                              timeout: float) -> list[Delivery]:
        return self._run(f"receive from {self._what}", flows.ahead(
            self._reader.ack_commands(flows.handles(deliveries)),
            self._reader.receive(max_messages, timeout)))

    def reject(self, deliveries: Sequence[Delivery]) -> None:
        self._run(f"reject on {self._what}", self._reader.ack(flows.handles(deliveries)))

    def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        self._run(f"nack on {self._what}",
                        self._reader.nack(flows.handles(deliveries), delay))

    def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        # Resetting the idle time buys one whole lease of this consumer's; ``seconds``
        # is the portable layer's lease, the same value.
        self._run(f"extend lease on {self._what}",
                        self._reader.extend(flows.handles(deliveries)))

    def close(self) -> None:
        try:
            self._link.run(self._reader.release())
        except (re_.RedisError, OSError) as exc:
            # Unreachable or deleted: its entries come back after the lease instead.
            log.info("mqkit: redis consumer %s of %s left without releasing: %s",
                     self._reader.me, self._what, exc)


class RedisDriver(Shell, Driver):
    """A pool shared by the admin verbs, topics and subscriptions of one client."""

    def __init__(self, link: Link, names: Names, capabilities: Capabilities) -> None:
        self.capabilities = capabilities
        self._link = link
        self._names = names

    def open_topic(self, topic: str) -> RedisTopic:
        self._run(f"open topic {topic!r}", flows.require_topic(self._names, topic))
        self._link.known.remember(self._names.stream(topic))
        return RedisTopic(self._link, self._names, topic)

    def open_subscription(self, topic: str, group: str,
                                options: SubscriptionOptions) -> RedisSubscription:
        self._run(f"open group {group!r} of {topic!r}",
                        flows.open_subscription(self._names, topic, group, options))
        self._link.known.remember(self._names.stream(topic), group)
        reader = _reader.make_reader(self._names, topic, group, options=self._link.options,
                                     sub=options, script_sha=self._link.script_sha)
        self._run(f"open group {group!r} of {topic!r}", reader.discover())
        return RedisSubscription(self._link, reader)

    def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        flows.options_check(options)
        self._run(f"create topic {topic!r}", flows.create_topic(self._names, topic))
        self._link.known.remember(self._names.stream(topic))

    def delete_topic(self, topic: str) -> None:
        self._run(f"delete topic {topic!r}", flows.delete_topic(self._names, topic))
        self._link.known.forget(self._names.stream(topic))

    def list_topics(self) -> list[str]:
        """Every stream whose key starts with ``key_prefix`` (SCAN ... TYPE stream; on
        each primary of a cluster)."""
        with mapped("list topics"):
            found = self._link.run_each(lambda: flows.list_topics(self._names))
        return sorted({topic for topics in found for topic in topics})

    def topic_exists(self, topic: str) -> bool:
        return self._run(f"find topic {topic!r}", flows.is_stream(self._names, topic))

    def create_group(self, topic: str, group: str, start: str) -> None:
        self._run(f"create group {group!r} on {topic!r}",
                        flows.create_group(self._names, topic, group, start))
        self._link.known.remember(self._names.stream(topic), group)

    def delete_group(self, topic: str, group: str) -> None:
        self._run(f"delete group {group!r} of {topic!r}",
                        flows.delete_group(self._names, topic, group))
        self._link.known.forget(self._names.stream(topic), group)

    def list_groups(self, topic: str) -> list[str]:
        return self._run(f"list groups of {topic!r}",
                               flows.list_groups(self._names, topic))

    def group_stats(self, topic: str, group: str) -> GroupStats:
        return self._run(f"stats of {group!r} on {topic!r}",
                               flows.group_stats(self._names, topic, group))

    def purge(self, topic: str, group: str) -> None:
        self._run(f"purge {group!r} on {topic!r}",
                        flows.purge(self._names, topic, group))

    def dead_letter_topic(self, topic: str) -> str:
        return self._names.dead_letter(topic)

    def close(self) -> None:
        with mapped("close"):
            self._link.close()


# -- pub/sub mode (mode=pubsub) --------------------------------------------------------
#
# topic = channel ``<key_prefix><topic>``; send = ``PUBLISH`` (one buffer per batch);
# every open consumer gets every message published while it is subscribed, whatever its
# group (groups and competing consumers are unsupported); ack/reject do nothing, nack is
# unsupported; a message published while nobody listens is gone. The payload is the
# stream entry's fields joined as ``<len>:<bytes>`` (``_wire.join_fields``) so that
# headers survive; a payload that is not in that form (a plain ``PUBLISH ch hello``) is
# received as the body. Topics exist in a registry set ``<key_prefix>mqkit:channels``.

class PubSubTopic(TopicDriver):
    def __init__(self, link: Link, topic: str, channel: str) -> None:
        self._link = link
        self._topic = topic
        self._channel = channel

    def send_batch(self, messages: Sequence[Message]) -> None:
        batch: list[flows.Command] = [("PUBLISH", self._channel, join_fields(encode(m)))
                                      for m in messages]
        with mapped(f"publish to {self._topic!r}"):
            flows.check(self._link.run(flows.exchange(batch)))

    def close(self) -> None:
        return None


class PubSubSubscription(SubscriptionDriver):
    def __init__(self, link: Link, topic: str, channel: str) -> None:
        self._topic = topic
        self._channel = channel
        client: Any = link.client
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        # Blocking: subscribed here, as the subscription opens; asyncio: by the first
        # receive (a constructor cannot wait for the server).
        self._subscribed = self._subscribe("subscribe to")

    def _subscribe(self, what: str) -> bool:
        with mapped(f"{what} {self._topic!r}"):
            self._pubsub.subscribe(self._channel)
        return True

    def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        out: list[Delivery] = []
        deadline = time.monotonic() + timeout
        if not self._subscribed:
            self._subscribed = self._subscribe("receive from")
        with mapped(f"receive from {self._topic!r}"):
            while len(out) < max_messages:
                # Block only for the first message (get_message's own timeout: never
                # its default of 0 in a loop), then drain what is already there.
                wait = max(0.0, deadline - time.monotonic()) if not out else 0.0
                item = self._pubsub.get_message(timeout=wait)
                if item is None:
                    if out or time.monotonic() >= deadline:
                        break
                    continue
                if item.get("type") != "message":
                    continue
                msg = decode("", parse_payload(item["data"]))
                out.append(Delivery(msg, self._topic, None, 1, time.time(), None))
        return out

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        return None

    def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        raise Unsupported("redis", "nack", "pub/sub delivers at most once")

    def reject(self, deliveries: Sequence[Delivery]) -> None:
        return None

    def close(self) -> None:
        try:
            self._pubsub.close()
        except Exception:  # closing a dead connection: nothing to do
            pass


class PubSubDriver(Shell, Driver):
    """Channels; topics are remembered in a registry set."""

    def __init__(self, link: Link, names: Names) -> None:
        self.capabilities = pubsub_capabilities()
        self._link = link
        self._names = names

    def open_topic(self, topic: str) -> PubSubTopic:
        self._run(f"open {topic!r}", flows.require_channel(self._names, topic))
        return PubSubTopic(self._link, topic, self._names.stream(topic))

    def open_subscription(self, topic: str, group: str,
                                options: SubscriptionOptions) -> PubSubSubscription:
        self._run(f"open {topic!r}", flows.require_channel(self._names, topic))
        return PubSubSubscription(self._link, topic, self._names.stream(topic))

    def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        flows.options_check(options)
        self._run(f"create topic {topic!r}",
                        flows.call(("SADD", flows.channels_key(self._names), topic)))

    def delete_topic(self, topic: str) -> None:
        self._run(f"delete topic {topic!r}",
                        flows.call(("SREM", flows.channels_key(self._names), topic)))

    def list_topics(self) -> list[str]:
        return self._run("list topics", flows.list_channels(self._names))

    def topic_exists(self, topic: str) -> bool:
        return self._run(f"find topic {topic!r}",
                               flows.is_channel(self._names, topic))

    def create_group(self, topic: str, group: str, start: str) -> None:
        self._run(f"open {topic!r}", flows.require_channel(self._names, topic))

    def delete_group(self, topic: str, group: str) -> None:
        return None

    def list_groups(self, topic: str) -> list[str]:
        self._run(f"open {topic!r}", flows.require_channel(self._names, topic))
        return []

    def group_stats(self, topic: str, group: str) -> GroupStats:
        raise Unsupported("redis", "admin_stats", "pub/sub keeps no backlog")

    def purge(self, topic: str, group: str) -> None:
        raise Unsupported("redis", "purge", "pub/sub keeps no backlog")

    def close(self) -> None:
        with mapped("close"):
            self._link.close()
