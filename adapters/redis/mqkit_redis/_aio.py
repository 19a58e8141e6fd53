"""The asyncio-native driver: the same flows (``_flows``) run on ``redis.asyncio``.

Everything but I/O is shared with the blocking driver: each method here awaits the
flow its blocking twin runs. Cancelling a call (``asyncio`` cancellation) drops the
connection it was using (redis-py disconnects a connection whose reply was not read),
so no half-read reply is left for the next call.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import redis.asyncio as aredis
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
from ._consumer import handles
from ._delay import MOVE_DUE
from ._driver import aof_enabled, capabilities_for
from ._errors import mapped
from ._link import Known, client_kwargs, pack, redeclared
from ._names import Names
from ._options import RedisOptions
from ._pubsub import parse_payload, pubsub_capabilities
from ._wire import decode, encode, join_fields

__all__ = ["AsyncRedisDriver", "connect_async"]

T = TypeVar("T")
log = logging.getLogger("mqkit.redis")


class AsyncLink:
    """One asyncio pool for a driver, its known names, and the flow runner."""

    def __init__(self, params: ConnectParams, options: RedisOptions) -> None:
        self.options = options
        self.known = Known(options.redeclare)
        self._connect_lock = asyncio.Lock()
        self.client = aredis.Redis(redis_connect_func=self._on_connect,
                                   retry=Retry(NoBackoff(), 0),
                                   **client_kwargs(params, options))
        self.script_sha = self.client.register_script(MOVE_DUE).sha
        self._read_timeout = params.connect_timeout + options.block_slice

    async def _on_connect(self, conn: Any) -> None:
        await conn.on_connect()
        await conn.send_command("INFO", "server")
        try:
            info = await conn.read_response()
        except re_.ResponseError as exc:  # an ACL user without INFO: no restart check
            log.debug("mqkit: INFO server refused (%s); restarts go unnoticed", exc)
            return
        async with self._connect_lock:
            for command in self.known.connected(info):
                await conn.send_command(*command)
                try:
                    await conn.read_response()
                except re_.ResponseError as exc:
                    redeclared(command, exc)

    async def run(self, flow: flows.Flow[T]) -> T:
        """Drive ``flow`` on one pooled connection; its result."""
        pool: Any = self.client.connection_pool
        conn: Any = await pool.get_connection()
        try:
            commands = next(flow)
            while True:
                await conn.send_packed_command([pack(conn, commands)])
                # One deadline for the whole step, not one timer per reply (redis-py
                # arms one per read_response unless told math.inf): a silent server
                # still times out, and a batch of 1,000 replies costs 1,000 plain reads.
                try:
                    replies = await _read_within(conn, len(commands), self._read_timeout)
                except asyncio.TimeoutError as exc:  # not builtins.TimeoutError on 3.10
                    raise re_.TimeoutError("no reply within the socket timeout") from exc
                commands = flow.send(replies)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            await pool.release(conn)

    async def close(self) -> None:
        await self.client.aclose()
        await self.client.connection_pool.disconnect()


if sys.version_info >= (3, 11):
    async def _read_within(conn: Any, count: int, timeout: float) -> list[Any]:
        """``count`` replies, read within ``timeout`` seconds (``asyncio.timeout``
        in this task: no task per step, as ``wait_for`` makes before 3.12)."""
        async with asyncio.timeout(timeout):
            return await _read_replies(conn, count)
else:  # pragma: no cover - Python 3.10
    async def _read_within(conn: Any, count: int, timeout: float) -> list[Any]:
        return await asyncio.wait_for(_read_replies(conn, count), timeout)


async def _read_replies(conn: Any, count: int) -> list[Any]:
    replies: list[Any] = []
    for _ in range(count):
        try:
            replies.append(await conn.read_response(disable_decoding=True,
                                                    timeout=math.inf))
        except re_.ResponseError as exc:
            replies.append(exc)
    return replies


async def connect_async(params: ConnectParams) -> AsyncDriver:
    options = parse_options(RedisOptions, params.options)
    link = AsyncLink(params, options)
    try:
        with mapped("connect"):
            try:
                info: dict[str, str] | None = await link.run(
                    flows.server_info("persistence"))
            except re_.NoPermissionError:
                info = None  # an ACL user without INFO: persistence not declared
            except re_.TimeoutError as exc:
                raise ConnectTimeout(
                    f"redis: connect: no answer within {params.connect_timeout} s "
                    f"from {params.url}") from exc
    except BaseException:
        await link.close()
        raise
    names = Names(options.key_prefix, options.dlq_suffix)
    if options.mode == "pubsub":
        return AsyncPubSubDriver(link, names)
    return AsyncRedisDriver(link, names, capabilities_for(options, aof_enabled(info)))


class AsyncRedisTopic(AsyncTopicDriver):
    def __init__(self, link: AsyncLink, topic: str, key: str, delayed_key: str) -> None:
        self._link = link
        self._topic = topic
        self._key = key
        self._delayed = delayed_key

    async def send_batch(self, messages: Sequence[Message]) -> None:
        commands = flows.send_commands(self._key, self._delayed, self._link.options,
                                       messages, time.time())
        with mapped(f"send to {self._topic!r}"):
            replies = await self._link.run(flows.exchange(commands))
        flows.send_outcome(self._topic, self._key, replies)

    async def close(self) -> None:
        return None

    def as_(self, kind: type[T]) -> T | None:
        client = self._link.client
        return client if isinstance(client, kind) else None


class AsyncRedisSubscription(AsyncSubscriptionDriver):
    def __init__(self, link: AsyncLink, reader: flows.Reader) -> None:
        self._link = link
        self._reader = reader
        self._what = f"group {reader.group!r} of {reader.topic!r}"

    async def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        with mapped(f"receive from {self._what}"):
            return await self._link.run(self._reader.receive(max_messages, timeout))

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        with mapped(f"ack on {self._what}"):
            await self._link.run(self._reader.ack(handles(deliveries)))

    async def reject(self, deliveries: Sequence[Delivery]) -> None:
        with mapped(f"reject on {self._what}"):
            await self._link.run(self._reader.ack(handles(deliveries)))

    async def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        with mapped(f"nack on {self._what}"):
            await self._link.run(self._reader.nack(handles(deliveries), delay))

    async def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        with mapped(f"extend lease on {self._what}"):
            await self._link.run(self._reader.extend(handles(deliveries)))

    async def close(self) -> None:
        try:
            await self._link.run(self._reader.release())
        except (re_.RedisError, OSError) as exc:
            log.info("mqkit: redis consumer %s of %s left without releasing: %s",
                     self._reader.me, self._what, exc)

    def as_(self, kind: type[T]) -> T | None:
        client = self._link.client
        return client if isinstance(client, kind) else None


class AsyncRedisDriver(AsyncDriver):
    """The asyncio twin of ``RedisDriver``: the same flows, awaited."""

    def __init__(self, link: AsyncLink, names: Names, capabilities: Capabilities) -> None:
        self.capabilities = capabilities
        self._link = link
        self._names = names

    async def _run(self, what: str, flow: flows.Flow[T]) -> T:
        with mapped(what):
            return await self._link.run(flow)

    async def open_topic(self, topic: str) -> AsyncRedisTopic:
        await self._run(f"open topic {topic!r}", flows.require_topic(self._names, topic))
        key = self._names.stream(topic)
        self._link.known.remember(key)
        return AsyncRedisTopic(self._link, topic, key, self._names.delayed(topic))

    async def open_subscription(self, topic: str, group: str,
                                options: SubscriptionOptions) -> AsyncRedisSubscription:
        await self._run(f"open group {group!r} of {topic!r}",
                        flows.open_subscription(self._names, topic, group, options))
        self._link.known.remember(self._names.stream(topic), group)
        return AsyncRedisSubscription(self._link, flows.make_reader(
            self._names, topic, group, options=self._link.options, sub=options,
            script_sha=self._link.script_sha))

    async def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        flows.options_check(options)
        await self._run(f"create topic {topic!r}", flows.create_topic(self._names, topic))
        self._link.known.remember(self._names.stream(topic))

    async def delete_topic(self, topic: str) -> None:
        await self._run(f"delete topic {topic!r}", flows.delete_topic(self._names, topic))
        self._link.known.forget(self._names.stream(topic))

    async def list_topics(self) -> list[str]:
        return await self._run("list topics", flows.list_topics(self._names))

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

    def as_(self, kind: type[T]) -> T | None:
        client = self._link.client
        return client if isinstance(client, kind) else None


# -- pub/sub mode ----------------------------------------------------------------------

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
        self._subscribed = False

    async def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        out: list[Delivery] = []
        deadline = time.monotonic() + timeout
        with mapped(f"receive from {self._topic!r}"):
            if not self._subscribed:
                await self._pubsub.subscribe(self._channel)
                self._subscribed = True
            while len(out) < max_messages:
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


class AsyncPubSubDriver(AsyncDriver):
    """The asyncio twin of ``PubSubDriver`` (its registry flows are shared)."""

    def __init__(self, link: AsyncLink, names: Names) -> None:
        self.capabilities = pubsub_capabilities()
        self._link = link
        self._names = names

    async def _run(self, what: str, flow: flows.Flow[T]) -> T:
        with mapped(what):
            return await self._link.run(flow)

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

    def as_(self, kind: type[T]) -> T | None:
        client = self._link.client
        return client if isinstance(client, kind) else None
