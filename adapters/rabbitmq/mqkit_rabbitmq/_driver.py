"""The Driver: connection parameters, capabilities, topics, subscriptions, admin verbs."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Mapping
from typing import TypeVar

import pika
from pika.adapters.blocking_connection import BlockingChannel

from mqkit.driver import (
    Capabilities,
    ConfigurationError,
    ConnectParams,
    Driver,
    Feature,
    GroupStats,
    MQError,
    NotFound,
    SubscriptionOptions,
    Support,
    Unsupported,
    parse_options,
    ssl_context,
)

from ._admin import declare_group, exists, scratch
from ._archive import copy_history, declare_archive
from ._consumer import RabbitSubscription
from ._errors import mapped
from ._link import Link
from ._names import STREAM_SUFFIX, Names
from ._options import ArchiveRetention, RabbitOptions
from ._producer import RabbitTopic
from ._registry import read_registry, record

__all__ = ["RabbitDriver", "capabilities_for", "connect", "stream_capabilities"]

T = TypeVar("T")

# 16 MiB: a body every default broker accepts (RabbitMQ's max_message_size is 128 MiB)
# that still round-trips quickly; larger bodies belong in object storage.
MAX_MESSAGE_SIZE = 16 * 1024 * 1024
# x-message-ttl is an unsigned 32-bit count of milliseconds.
MAX_DELAY = (2**32 - 1) / 1000
# Depth readings while this client consumes the group, and the pause between them:
# deliveries in transit settle within a few milliseconds on a healthy broker.
_STATS_READINGS = 5
_STATS_PAUSE = 0.02
# Messages per driver send: one confirm wait per 1000 keeps latency low and memory flat.
MAX_BATCH = 1000


def capabilities_for(options: RabbitOptions) -> Capabilities:
    """The client's capabilities: those of its plain topics.

    ``replay`` is a dash here: classic and quorum queues delete what was acked. It is
    emulated on ``*.stream`` topics only (:func:`stream_capabilities`, see ._archive):
    their archive stream is copied into a group created at ``earliest``. As SQS's
    ``*.fifo`` features, that is the per-topic view, ``client.capabilities_for(topic)``,
    which the portable layer checks when a group is created at ``earliest``.
    """
    return Capabilities(
        backend="rabbitmq",
        nack=Support.NATIVE,
        nack_delay=Support.EMULATED,
        delay=Support.EMULATED,
        dead_letter=Support.EMULATED,
        ordering=Support.NATIVE,
        groups=Support.NATIVE,
        competing_consumers=Support.NATIVE,
        replay=Support.UNSUPPORTED,
        priority=Support.NATIVE if options.max_priority else Support.UNSUPPORTED,
        ttl=Support.NATIVE,
        dedup=Support.UNSUPPORTED,
        request_reply=Support.EMULATED,
        lease_extension=Support.EMULATED,
        persistence=Support.NATIVE if options.persistent else Support.UNSUPPORTED,
        redelivery_on_close=Support.NATIVE,
        admin_stats=Support.NATIVE,
        purge=Support.NATIVE,
        timestamp=Support.EMULATED,  # the producer stamps it (whole seconds)
        max_message_size=MAX_MESSAGE_SIZE,
        max_headers=None,
        max_batch=MAX_BATCH,
        max_delay=MAX_DELAY,
        delivery="at-least-once",
    )


def stream_capabilities(options: RabbitOptions) -> Capabilities:
    """A topic named ``*.stream``: its archive stream makes ``replay`` emulated."""
    return dataclasses.replace(capabilities_for(options), replay=Support.EMULATED)


def connection_parameters(params: ConnectParams,
                          options: RabbitOptions) -> list[pika.ConnectionParameters]:
    url = params.url
    use_tls = options.tls_enabled(default=url.scheme == "amqps")
    context = ssl_context(options) if use_tls else None
    username = url.username or "guest"
    password = url.password.reveal() if url.password is not None else "guest"
    credentials = pika.PlainCredentials(username, password)
    out = []
    for host, port in url.hosts or (("localhost", None),):
        ssl_options = None
        if context is not None:
            ssl_options = pika.SSLOptions(context, options.server_hostname or host)
        out.append(pika.ConnectionParameters(
            host=host, port=port or (5671 if use_tls else 5672),
            virtual_host=url.path or "/", credentials=credentials,
            heartbeat=options.heartbeat, ssl_options=ssl_options,
            socket_timeout=params.connect_timeout, stack_timeout=params.connect_timeout,
            blocked_connection_timeout=options.blocked_timeout,
            connection_attempts=1, client_properties={"connection_name": "mqkit"}))
    return out


def connect(params: ConnectParams) -> RabbitDriver:
    options = parse_options(RabbitOptions, params.options)
    driver = RabbitDriver(params, options)
    with driver._admin.use("connect"):
        pass
    return driver


class RabbitDriver(Driver):
    """A connection for admin verbs; each topic and subscription gets its own."""

    def __init__(self, params: ConnectParams, options: RabbitOptions) -> None:
        self.capabilities = capabilities_for(options)
        self._stream_capabilities = stream_capabilities(options)
        self._params = params
        self._options = options
        self._pika = connection_parameters(params, options)
        self._names = Names(options.exchange_prefix, options.queue_format)
        self._admin = self._link("admin")
        # Open subscriptions per queue: their unacked deliveries count in the depth.
        self._subs: dict[str, set[RabbitSubscription]] = {}
        self._subs_lock = threading.Lock()

    def _link(self, name: str, probe: bool = True) -> Link:
        return Link(self._pika, self._params.connect_timeout, self._options.heartbeat, name,
                    probe=probe)

    def topic_capabilities(self, topic: str) -> Capabilities:
        """The client's capabilities, with ``replay`` emulated on ``*.stream`` topics."""
        return self._stream_capabilities if Names.is_stream(topic) else self.capabilities

    # -- topics and subscriptions ----------------------------------------------------

    def open_topic(self, topic: str) -> RabbitTopic:
        if not self.topic_exists(topic):
            raise NotFound(f"rabbitmq: topic {topic!r} (exchange "
                           f"{self._names.exchange(topic)!r}) does not exist")
        # No liveness probe before each send: a send on a dead connection fails with
        # Unavailable at once and the portable layer retries it on a new connection.
        link = self._link(f"topic {topic}", probe=False)
        # Send timeouts are the portable layer's; a confirm wait is bounded on its own.
        driver = RabbitTopic(link, self._names, topic, persistent=self._options.persistent,
                             confirm=self._options.confirm, send_timeout=30.0)
        try:
            with link.use(f"open topic {topic!r}"):
                pass
        except BaseException:
            link.close()
            raise
        return driver

    def open_subscription(self, topic: str, group: str,
                          options: SubscriptionOptions) -> RabbitSubscription:
        if not self.topic_exists(topic):
            raise NotFound(f"rabbitmq: topic {topic!r} does not exist")
        queue = self._names.queue(topic, group)
        created = False
        if not self._group_exists(topic, group):
            if not options.create_group:
                raise NotFound(f"rabbitmq: group {group!r} (queue {queue!r}) "
                               f"of topic {topic!r} does not exist")
            self.create_group(topic, group, options.start)
            created = True

        def declare(channel: BlockingChannel, passive: bool) -> None:
            # On every new connection: the queue and its binding, as created (a broker
            # that lost them gets them back); after the broker cancelled the consumer
            # (queue deleted) only a passive check, so a deleted group stays deleted.
            if (created or options.create_group) and not passive:
                declare_group(channel, self._names, self._options, topic, group)
            else:
                channel.queue_declare(queue, passive=True)

        link = self._link(f"group {queue}")
        driver = RabbitSubscription(link, self._names, topic, group, options=options,
                                    persistent=self._options.persistent, declare=declare)
        try:
            with link.use(f"open group {queue!r}"):
                pass
        except BaseException:
            link.close()
            raise
        with self._subs_lock:
            self._subs.setdefault(queue, set()).add(driver)
        driver.on_close = lambda: self._forget(queue, driver)
        return driver

    def _forget(self, queue: str, driver: RabbitSubscription) -> None:
        with self._subs_lock:
            self._subs.get(queue, set()).discard(driver)

    # -- admin -----------------------------------------------------------------------

    def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        """The topic exchange; for a ``*.stream`` topic also its archive stream, whose
        retention the options ``archive_max_age`` (seconds) and ``archive_max_bytes``
        set (default: the client's). Idempotent: an existing archive keeps its
        retention (a stream's arguments cannot change)."""
        stream = Names.is_stream(topic)
        if options and not stream:
            raise ConfigurationError(
                f"rabbitmq: unknown topic option(s) {', '.join(map(repr, options))} "
                f"(archive_max_age and archive_max_bytes are options of *{STREAM_SUFFIX} "
                f"topics only)")
        archive = self._archive_options(options) if stream else None
        exchange = self._names.exchange(topic)
        with self._admin.use(f"create topic {topic!r}") as channel:
            connection = channel.connection
            found = exists(connection, "exchange", exchange)
            if archive is not None and not exists(connection, "queue",
                                                  self._names.archive(topic)):
                # Before the exchange: once the topic exists, nothing sent to it misses
                # the archive.
                channel.exchange_declare(exchange, "topic", durable=True)
                declare_archive(channel, self._names.archive(topic), exchange,
                                archive.archive_max_age, archive.archive_max_bytes)
            if found:
                return
            channel.exchange_declare(exchange, "topic", durable=True)
            record(connection, "create", topic)

    def _archive_options(self, options: Mapping[str, object]) -> ArchiveRetention:
        values: dict[str, object] = {"archive_max_age": self._options.archive_max_age,
                                     "archive_max_bytes": self._options.archive_max_bytes}
        values.update(options)
        return parse_options(ArchiveRetention, values, source="topic option")

    def delete_topic(self, topic: str) -> None:
        with self._admin.use(f"delete topic {topic!r}") as channel:
            _, groups = read_registry(channel.connection, self._params.connect_timeout)
            for t, g in groups:
                if t == topic:
                    channel.queue_delete(self._names.queue(t, g))
            if Names.is_stream(topic):
                channel.queue_delete(self._names.archive(topic))
            channel.exchange_delete(self._names.exchange(topic))
            record(channel.connection, "delete", topic)

    def list_topics(self) -> list[str]:
        with self._admin.use("list topics") as channel:
            topics, _ = read_registry(channel.connection, self._params.connect_timeout)
            return sorted(t for t in topics if not Names.internal(t)
                          and exists(channel.connection, "exchange",
                                     self._names.exchange(t)))

    def topic_exists(self, topic: str) -> bool:
        with self._admin.use(f"find topic {topic!r}") as channel:
            return exists(channel.connection, "exchange", self._names.exchange(topic))

    def _group_exists(self, topic: str, group: str) -> bool:
        with self._admin.use(f"find group {group!r}") as channel:
            return exists(channel.connection, "queue", self._names.queue(topic, group))

    def create_group(self, topic: str, group: str, start: str) -> None:
        """Declare and bind the group's queue. At ``earliest`` on a ``*.stream`` topic a
        new group is first given the topic's archived history (see ._archive: copied
        at-least-once, a few duplicates around the moment of creation); an existing
        group is left as it is, whatever ``start``. ``earliest`` on any other topic
        raises :class:`Unsupported` (nothing is kept to replay)."""
        queue = self._names.queue(topic, group)
        replay = start == "earliest"
        if replay and not Names.is_stream(topic):
            raise Unsupported("rabbitmq", Feature.REPLAY.value,
                              f"topic {topic!r} keeps no history: only topics named "
                              f"*{STREAM_SUFFIX} have an archive to replay")
        copying = False
        try:
            with self._admin.use(f"create group {group!r} on {topic!r}") as channel:
                connection = channel.connection
                if not exists(connection, "exchange", self._names.exchange(topic)):
                    raise NotFound(f"rabbitmq: topic {topic!r} does not exist")
                known = exists(connection, "queue", queue)
                if replay and not known and not exists(connection, "queue",
                                                       self._names.archive(topic)):
                    raise Unsupported("rabbitmq", Feature.REPLAY.value,
                                      f"topic {topic!r} has no archive stream "
                                      f"{self._names.archive(topic)!r} (made by another "
                                      f"tool or an older mqkit): create_topic adds it")
                declare_group(channel, self._names, self._options, topic, group)
                if known:
                    return
                if replay:
                    copying = True
                    copy_history(connection, self._names.archive(topic), queue,
                                 stall=self._params.connect_timeout)
                    copying = False
                record(connection, "create", topic, group)
        except BaseException:
            if copying:
                self._forget_half_made(queue)
            raise

    def _forget_half_made(self, queue: str) -> None:
        """Delete a group whose history copy failed, so that creating it again copies
        afresh instead of finding it and keeping half the history. Best effort: if the
        broker is gone too, the queue stays and ``delete_group`` removes it."""
        with contextlib.suppress(MQError), self._admin.use(f"delete {queue!r}") as channel:
            channel.queue_delete(queue)

    def delete_group(self, topic: str, group: str) -> None:
        with self._admin.use(f"delete group {group!r}") as channel:
            channel.queue_delete(self._names.queue(topic, group))
            record(channel.connection, "delete", topic, group)

    def list_groups(self, topic: str) -> list[str]:
        with self._admin.use(f"list groups of {topic!r}") as channel:
            if not exists(channel.connection, "exchange", self._names.exchange(topic)):
                raise NotFound(f"rabbitmq: topic {topic!r} does not exist")
            _, groups = read_registry(channel.connection, self._params.connect_timeout)
            return sorted(g for t, g in groups if t == topic and exists(
                channel.connection, "queue", self._names.queue(t, g)))

    def group_stats(self, topic: str, group: str) -> GroupStats:
        """Ready messages (the broker's count) + deliveries held by this client's
        consumers of the group, not settled. Other clients' unacked deliveries are not
        known (no management API). Messages on their way to a consumer of this client
        move from ready to held without a common clock, so the reading is repeated
        until two agree (at most ``_STATS_READINGS`` times)."""
        queue = self._names.queue(topic, group)
        with self._subs_lock:
            subs = list(self._subs.get(queue, ()))
        previous = -1
        depth = 0
        with self._admin.use(f"stats of {queue!r}") as channel, \
                scratch(channel.connection) as ch:
            for _ in range(_STATS_READINGS if subs else 1):
                for sub in subs:
                    sub.sync()
                ok = ch.queue_declare(queue, passive=True)
                depth = int(ok.method.message_count) + sum(sub.unacked for sub in subs)
                if depth == previous:
                    break
                previous = depth
                time.sleep(_STATS_PAUSE)
        return GroupStats(topic=topic, group=group, depth=depth, in_flight=None)

    def purge(self, topic: str, group: str) -> None:
        queue = self._names.queue(topic, group)
        with self._admin.use(f"purge {queue!r}") as channel, \
                scratch(channel.connection) as ch:
            ch.queue_purge(queue)

    def close(self) -> None:
        with mapped("close"):
            self._admin.close()

    def as_(self, kind: type[T]) -> T | None:
        connection = self._admin.connection
        return connection if isinstance(connection, kind) else None
