"""Pub/sub mode (``mode=pubsub``): channels, at-most-once, nothing persisted.

topic = channel ``<key_prefix><topic>``; send = ``PUBLISH`` (one buffer per batch);
every open consumer gets every message published while it is subscribed, whatever its
group (groups and competing consumers are unsupported); ack/reject do nothing, nack is
unsupported; a message published while nobody listens is gone. The payload is the
stream entry's fields joined as ``<len>:<bytes>`` (``_wire.join_fields``) so that
headers survive; a payload that is not in that form (a plain ``PUBLISH ch hello``) is
received as the body. Topics exist in a registry set ``<key_prefix>mqkit:channels``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from mqkit.driver import (
    Capabilities,
    Delivery,
    Driver,
    GroupStats,
    Message,
    SubscriptionDriver,
    SubscriptionOptions,
    Support,
    TopicDriver,
    Unsupported,
)

from . import _flows as flows
from ._errors import mapped
from ._link import Link
from ._names import Names
from ._wire import decode, encode, join_fields, split_fields

__all__ = ["PubSubDriver", "parse_payload", "pubsub_capabilities"]

T = TypeVar("T")
# 1 MiB: Redis buffers a slow subscriber's output up to client-output-buffer-limit
# pubsub (32 MB hard by default) and then drops the subscriber; 1 MiB bodies keep
# dozens in flight below that.
MAX_MESSAGE_SIZE = 1024 * 1024
MAX_BATCH = 1000


def pubsub_capabilities() -> Capabilities:
    no = Support.UNSUPPORTED
    return Capabilities(
        backend="redis", nack=no, nack_delay=no, delay=no, dead_letter=no,
        ordering=Support.NATIVE, groups=no, competing_consumers=no, replay=no,
        priority=no, ttl=no, dedup=no, request_reply=no, lease_extension=no,
        persistence=no, retention=no, redelivery_on_close=no, admin_stats=no, purge=no,
        max_message_size=MAX_MESSAGE_SIZE, max_headers=None, max_batch=MAX_BATCH,
        max_delay=None, delivery="at-most-once")


def parse_payload(payload: bytes) -> list[bytes]:
    """The fields of a payload, or ``[body, payload]`` when it is not joined fields."""
    try:
        parts = split_fields(payload)
    except ValueError:
        parts = []
    if len(parts) % 2 or parts[:1] != [b"body"]:
        return [b"body", payload]
    return parts


class PubSubTopic(TopicDriver):
    def __init__(self, link: Link, topic: str, channel: str) -> None:
        self._link = link
        self._topic = topic
        self._channel = channel

    def send_batch(self, messages: Sequence[Message]) -> None:
        batch: list[tuple[Any, ...]] = [("PUBLISH", self._channel, join_fields(encode(m)))
                                        for m in messages]
        with mapped(f"publish to {self._topic!r}"):
            flows.check(self._link.run(flows.exchange(batch)))

    def close(self) -> None:
        return None


class PubSubSubscription(SubscriptionDriver):
    def __init__(self, link: Link, topic: str, channel: str) -> None:
        self._topic = topic
        client: Any = link.client
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        with mapped(f"subscribe to {topic!r}"):
            self._pubsub.subscribe(channel)

    def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        out: list[Delivery] = []
        deadline = time.monotonic() + timeout
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


class PubSubDriver(Driver):
    """Channels; topics are remembered in a registry set (flows shared with asyncio)."""

    def __init__(self, link: Link, names: Names) -> None:
        self.capabilities = pubsub_capabilities()
        self._link = link
        self._names = names

    def _run(self, what: str, flow: flows.Flow[T]) -> T:
        with mapped(what):
            return self._link.run(flow)

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
        return self._run(f"find topic {topic!r}", flows.is_channel(self._names, topic))

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

    def as_(self, kind: type[T]) -> T | None:
        client = self._link.client
        return client if isinstance(client, kind) else None
