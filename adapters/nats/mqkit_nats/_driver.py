"""The NATS drivers: one connection, JetStream admin verbs, topics and subscriptions.

The ``mode`` option picks one class once, at connect: :class:`JetStreamDriver` (streams
and durable consumers) or :class:`CoreDriver` (plain subjects and queue groups: nothing
to administer). What both share lives in :class:`NatsDriver`.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Mapping
from typing import Any, TypeVar

import nats.js.errors as je
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext, api

from mqkit.driver import (
    AlreadyExists,
    AsyncDriver,
    AsyncSubscriptionDriver,
    AsyncTopicDriver,
    Capabilities,
    ConfigurationError,
    ConnectParams,
    GroupStats,
    NotFound,
    SubscriptionOptions,
    Support,
    Unsupported,
    parse_options,
)

from ._bands import band_streams, delete_band_consumers, delete_bands, ensure_group_bands
from ._errors import mapped
from ._link import Link, open_link
from ._names import (
    GROUP_DESCRIPTION,
    TOPIC_DESCRIPTION,
    check_topic,
    consumer_name,
    group_from_description,
    is_band_subject,
    stream_name,
)
from ._options import NatsOptions

__all__ = ["CoreDriver", "JetStreamDriver", "NatsDriver", "connect"]

T = TypeVar("T")
log = logging.getLogger("mqkit.nats")

# Bytes of a body's max_payload kept for mqkit's own headers (Nats-Msg-Id with a 32-digit
# id takes 61): a body of exactly max_message_size always fits with its id.
_HEADER_RESERVE = 256
_NATIVE, _EMULATED, _NO = Support.NATIVE, Support.EMULATED, Support.UNSUPPORTED
_TOPIC_OPTIONS = frozenset({"max_age", "max_bytes", "max_msgs", "storage", "replicas",
                            "duplicate_window"})


def capabilities(o: NatsOptions, max_payload: int) -> Capabilities:
    """What the driver of ``o.mode`` does, for the server's ``max_payload``."""
    return _driver_class(o).capabilities_for(o, max(1, max_payload - _HEADER_RESERVE))


def _driver_class(o: NatsOptions) -> type[NatsDriver]:
    return CoreDriver if o.mode == "core" else JetStreamDriver


async def connect(params: ConnectParams) -> NatsDriver:
    """Open a driver for ``params`` (called by the plugin)."""
    options = parse_options(NatsOptions, params.options)
    link = await open_link(params, options)
    return _driver_class(options)(link, options)


class NatsDriver(AsyncDriver):
    """What both modes share over one nats-py connection: closing, native objects and
    the check of topic options."""

    def __init__(self, link: Link, options: NatsOptions) -> None:
        self._link = link
        self._options = options
        self.max_payload = link.nc.max_payload
        self.capabilities = capabilities(options, self.max_payload)

    @staticmethod
    @abc.abstractmethod
    def capabilities_for(o: NatsOptions, size: int) -> Capabilities:
        """What this mode does, messages up to ``size`` bytes."""

    def _check_topic_options(self, options: Mapping[str, object]) -> None:
        unknown = sorted(set(options) - _TOPIC_OPTIONS)
        if unknown:
            raise ConfigurationError(
                f"nats: unknown topic option {', '.join(map(repr, unknown))}; valid: "
                f"{', '.join(sorted(_TOPIC_OPTIONS))}")

    async def close(self) -> None:
        with mapped("close"):
            if not self._link.nc.is_closed:
                await self._link.nc.close()

    def as_(self, kind: type[T]) -> T | None:
        native: dict[type[Any], object] = {NATS: self._link.nc,
                                           JetStreamContext: self._link.js}
        value = native.get(kind)
        return value if isinstance(value, kind) else None


class CoreDriver(NatsDriver):
    """Core NATS: a topic is a subject, a group a queue group; nothing is kept, so the
    admin verbs have nothing to create, delete or list (stats and purge: Unsupported)."""

    @staticmethod
    def capabilities_for(o: NatsOptions, size: int) -> Capabilities:
        return Capabilities(
            backend="nats", nack=_NO, nack_delay=_NO, delay=_NO, dead_letter=_NO,
            ordering=_NO, groups=_NATIVE, competing_consumers=_NATIVE, replay=_NO,
            dedup=_NO, request_reply=_EMULATED, lease_extension=_NO, persistence=_NO,
            retention=_NO,
            redelivery_on_close=_NO, admin_stats=_NO, purge=_NO, max_message_size=size,
            max_batch=o.max_batch, delivery="at-most-once")

    async def open_topic(self, topic: str) -> AsyncTopicDriver:
        from ._core import CoreTopic
        return CoreTopic(self._link, topic, self.max_payload)

    async def open_subscription(self, topic: str, group: str,
                                options: SubscriptionOptions) -> AsyncSubscriptionDriver:
        from ._core import CoreSubscription
        return await CoreSubscription.open(self._link, topic, group, options)

    async def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        self._check_topic_options(options)

    async def delete_topic(self, topic: str) -> None:
        return None

    async def list_topics(self) -> list[str]:
        return []

    async def topic_exists(self, topic: str) -> bool:
        return True

    async def create_group(self, topic: str, group: str, start: str) -> None:
        return None

    async def delete_group(self, topic: str, group: str) -> None:
        return None

    async def list_groups(self, topic: str) -> list[str]:
        return []

    async def group_stats(self, topic: str, group: str) -> GroupStats:
        raise Unsupported("nats", "admin_stats", "core NATS keeps no backlog")

    async def purge(self, topic: str, group: str) -> None:
        raise Unsupported("nats", "purge", "core NATS keeps no backlog")


class JetStreamDriver(NatsDriver):
    """JetStream (the default mode): a topic is a stream capturing its subject, a group
    a durable pull consumer. A priority band is a stream of its own, with a consumer
    per group (``_bands``): the admin verbs span the bands."""

    @staticmethod
    def capabilities_for(o: NatsOptions, size: int) -> Capabilities:
        return Capabilities(
            backend="nats", nack=_NATIVE, nack_delay=_NATIVE, delay=_EMULATED,
            dead_letter=_EMULATED, ordering=_NATIVE, groups=_NATIVE,
            competing_consumers=_NATIVE, replay=_NATIVE, dedup=_NATIVE, ttl=_EMULATED,
            request_reply=_EMULATED, lease_extension=_NATIVE, priority=_EMULATED,
            persistence=_NATIVE if o.storage == "file" else _NO, redelivery_on_close=_NATIVE,
            admin_stats=_NATIVE, purge=_NATIVE, timestamp=_NATIVE, max_message_size=size,
            max_batch=o.max_batch, delivery="at-least-once")

    @property
    def _js(self) -> JetStreamContext:
        return self._link.js

    def _stream(self, topic: str) -> str:
        return stream_name(self._options.stream_prefix, topic)

    # -- topics and subscriptions ----------------------------------------------------

    async def open_topic(self, topic: str) -> AsyncTopicDriver:
        await self._stream_info(topic, "open topic")
        from ._producer import StreamTopic
        return StreamTopic(self._link, topic, self._stream(topic), self.max_payload,
                           self._options.stream_prefix)

    async def open_subscription(self, topic: str, group: str,
                                options: SubscriptionOptions) -> AsyncSubscriptionDriver:
        await self._stream_info(topic, "open subscription")
        stream, durable = self._stream(topic), consumer_name(group)
        with mapped(f"open group {group!r} on {topic!r}"):
            try:
                info = await self._js.consumer_info(stream, durable)
            except je.NotFoundError:
                if not options.create_group:
                    raise NotFound(
                        f"nats: group {group!r} on topic {topic!r} does not exist "
                        f"(consumer {durable!r} of stream {stream!r})") from None
                await self._add_consumer(topic, group, options.start, options.lease)
            else:
                if abs((info.config.ack_wait or 0) - options.lease) > 0.001:
                    await self._update_lease(stream, info.config, options.lease)
        from ._banded import BandedSubscription
        from ._consumer import PullSubscription
        plain = await PullSubscription.open(self._link, topic, group, stream, durable)
        return await BandedSubscription.open(self._link, self._options.stream_prefix, topic,
                                             group, plain=plain, durable=durable,
                                             lease=options.lease)

    async def _update_lease(self, stream: str, config: api.ConsumerConfig,
                            lease: float) -> None:
        try:
            await self._js.add_consumer(stream, config.evolve(ack_wait=lease))
        except je.APIError as exc:
            log.warning("nats: could not change ack_wait of %s/%s to %s s: %s", stream,
                        config.durable_name, lease, exc.description)

    # -- admin -----------------------------------------------------------------------

    async def _stream_info(self, topic: str, what: str) -> api.StreamInfo:
        await self._link.ready(what)
        name = self._stream(topic)
        with mapped(f"{what} {topic!r}"):
            try:
                info = await self._js.stream_info(name)
            except je.NotFoundError:
                raise NotFound(
                    f"nats: topic {topic!r} does not exist (no stream {name!r})") from None
        if topic not in (info.config.subjects or []):
            raise NotFound(
                f"nats: stream {name!r} does not capture subject {topic!r} (its subjects: "
                f"{info.config.subjects}); another topic maps to the same stream name")
        return info

    async def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        check_topic(topic)
        self._check_topic_options(options)
        o = parse_options(NatsOptions, {k: v for k, v in options.items()}, source="topic option")
        merged = {name: getattr(o, name) if name in options else getattr(self._options, name)
                  for name in _TOPIC_OPTIONS}
        await self._link.ready("create topic")
        name = self._stream(topic)
        config = api.StreamConfig(
            name=name, description=TOPIC_DESCRIPTION + topic, subjects=[topic],
            retention=api.RetentionPolicy.LIMITS, storage=api.StorageType(merged["storage"]),
            num_replicas=merged["replicas"], max_age=merged["max_age"] or None,
            max_bytes=merged["max_bytes"], max_msgs=merged["max_msgs"],
            duplicate_window=merged["duplicate_window"])
        with mapped(f"create topic {topic!r}"):
            try:
                info = await self._js.stream_info(name)
            except je.NotFoundError:
                await self._js.add_stream(config)
                return
        if info.config.subjects != [topic]:
            raise AlreadyExists(
                f"nats: stream {name!r} exists with subjects {info.config.subjects}, not "
                f"[{topic!r}] (topics differing only in '.' vs '_' share a stream name)")

    async def delete_topic(self, topic: str) -> None:
        await self._link.ready("delete topic")
        with mapped(f"delete topic {topic!r}"):
            try:
                await self._js.delete_stream(self._stream(topic))
            except je.NotFoundError:
                pass
            await delete_bands(self._link, self._options.stream_prefix, topic)

    async def list_topics(self) -> list[str]:
        await self._link.ready("list topics")
        topics: list[str] = []
        offset = 0
        with mapped("list topics"):
            while True:
                page = await self._js.streams_info(offset)
                if not page:
                    break
                offset += len(page)
                for info in page:
                    subjects = info.config.subjects or []
                    if len(subjects) == 1 and info.config.name == self._stream(
                            subjects[0]) and not is_band_subject(subjects[0]):
                        topics.append(subjects[0])
        return sorted(topics)

    async def topic_exists(self, topic: str) -> bool:
        try:
            await self._stream_info(topic, "topic exists")
        except NotFound:
            return False
        return True

    async def _add_consumer(self, topic: str, group: str, start: str, lease: float) -> None:
        o = self._options
        config = api.ConsumerConfig(
            name=consumer_name(group), durable_name=consumer_name(group),
            description=GROUP_DESCRIPTION + group,
            deliver_policy=api.DeliverPolicy.ALL if start == "earliest" else api.DeliverPolicy.NEW,
            ack_policy=api.AckPolicy.EXPLICIT, ack_wait=lease, max_deliver=o.max_deliver,
            filter_subject=topic, max_ack_pending=o.max_ack_pending)
        await self._js.add_consumer(self._stream(topic), config)
        # Then its consumer on each band that exists (see _bands: the order matters).
        await ensure_group_bands(self._link, o.stream_prefix, topic, consumer_name(group))

    async def create_group(self, topic: str, group: str, start: str) -> None:
        await self._stream_info(topic, "create group")
        with mapped(f"create group {group!r} on {topic!r}"):
            try:
                await self._js.consumer_info(self._stream(topic), consumer_name(group))
            except je.NotFoundError:
                # 30 s: mqkit's default lease; a subscription sets its own on open.
                await self._add_consumer(topic, group, start, 30.0)

    async def delete_group(self, topic: str, group: str) -> None:
        await self._link.ready("delete group")
        with mapped(f"delete group {group!r} on {topic!r}"):
            try:
                await self._js.delete_consumer(self._stream(topic), consumer_name(group))
            except je.NotFoundError:
                pass
            await delete_band_consumers(self._link, self._options.stream_prefix, topic,
                                        consumer_name(group))

    async def list_groups(self, topic: str) -> list[str]:
        await self._stream_info(topic, "list groups")
        with mapped(f"list groups of {topic!r}"):
            infos = await self._js.consumers_info(self._stream(topic))
        return sorted(group_from_description(i.name, i.config.description) for i in infos)

    async def group_stats(self, topic: str, group: str) -> GroupStats:
        info = await self._consumer_info(topic, group, "group stats")
        infos = [info]
        with mapped(f"group stats {group!r} on {topic!r}"):
            for band in (await band_streams(self._link, self._options.stream_prefix,
                                            topic)).values():
                try:
                    infos.append(await self._js.consumer_info(band, info.name))
                except je.NotFoundError:
                    continue
        ack_pending = sum(i.num_ack_pending or 0 for i in infos)
        pending = sum(i.num_pending or 0 for i in infos)
        return GroupStats(topic=topic, group=group, depth=pending + ack_pending,
                          in_flight=ack_pending)

    async def _consumer_info(self, topic: str, group: str, what: str) -> api.ConsumerInfo:
        await self._stream_info(topic, what)
        with mapped(f"{what} {group!r} on {topic!r}"):
            try:
                info: api.ConsumerInfo = await self._js.consumer_info(
                    self._stream(topic), consumer_name(group))
                return info
            except je.NotFoundError:
                raise NotFound(
                    f"nats: group {group!r} on topic {topic!r} does not exist") from None

    async def purge(self, topic: str, group: str) -> None:
        """Recreate the group's consumer starting after the stream's last message.

        JetStream cannot purge one consumer's backlog; purging the stream would empty
        every group. The new consumer keeps the old one's settings. The group's consumer
        on each priority band is recreated the same way.
        """
        info = await self._consumer_info(topic, group, "purge")
        with mapped(f"purge {group!r} on {topic!r}"):
            await self._restart_after_last(self._stream(topic), info)
            for band in (await band_streams(self._link, self._options.stream_prefix,
                                            topic)).values():
                try:
                    band_info = await self._js.consumer_info(band, info.name)
                except je.NotFoundError:
                    continue
                await self._restart_after_last(band, band_info)

    async def _restart_after_last(self, stream: str, info: api.ConsumerInfo) -> None:
        last = (await self._js.stream_info(stream)).state.last_seq
        config = info.config.evolve(deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                                    opt_start_seq=last + 1, opt_start_time=None)
        await self._js.delete_consumer(stream, info.name)
        await self._js.add_consumer(stream, config)
