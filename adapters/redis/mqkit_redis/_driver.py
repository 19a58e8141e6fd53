"""The blocking Driver: capabilities, topics, subscriptions, admin verbs (as flows)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import redis.exceptions as re_

from mqkit.driver import (
    Capabilities,
    ConnectParams,
    ConnectTimeout,
    Driver,
    GroupStats,
    SubscriptionOptions,
    Support,
    parse_options,
)

from . import _flows as flows
from ._consumer import RedisSubscription
from ._errors import mapped
from ._link import Link
from ._names import Names
from ._options import RedisOptions
from ._producer import RedisTopic
from ._pubsub import PubSubDriver

__all__ = ["RedisDriver", "capabilities_for", "connect"]

T = TypeVar("T")

# 16 MiB: Redis accepts bulk strings up to proto-max-bulk-len (512 MB), but every entry
# sits in memory and one large reply stalls the single-threaded server for everyone.
MAX_MESSAGE_SIZE = 16 * 1024 * 1024
# 1,000 XADDs per pipeline: one round trip, and a reply buffer of a few hundred KB.
MAX_BATCH = 1000


def capabilities_for(options: RedisOptions, aof: bool) -> Capabilities:
    persistent = options.persistence == "on" or (options.persistence == "auto" and aof)
    return Capabilities(
        backend="redis",
        nack=Support.NATIVE,
        nack_delay=Support.EMULATED,
        delay=Support.EMULATED,
        dead_letter=Support.EMULATED,
        ordering=Support.NATIVE,
        groups=Support.NATIVE,
        competing_consumers=Support.NATIVE,
        replay=Support.NATIVE,
        priority=Support.UNSUPPORTED,
        ttl=Support.UNSUPPORTED,
        dedup=Support.UNSUPPORTED,
        request_reply=Support.EMULATED,
        lease_extension=Support.EMULATED,
        persistence=Support.NATIVE if persistent else Support.UNSUPPORTED,
        redelivery_on_close=Support.NATIVE,
        admin_stats=Support.NATIVE,
        purge=Support.NATIVE,
        max_message_size=MAX_MESSAGE_SIZE,
        max_headers=None,
        max_batch=MAX_BATCH,
        max_delay=None,
        delivery="at-least-once",
    )


def aof_enabled(info: dict[str, str] | None) -> bool:
    """Whether ``INFO persistence`` reports AOF on (``None``: INFO refused)."""
    return info is not None and info.get("aof_enabled") == "1"


def connect(params: ConnectParams) -> Driver:
    options = parse_options(RedisOptions, params.options)
    link = Link(params, options)
    try:
        with mapped("connect"):
            try:
                info: dict[str, str] | None = link.run(flows.server_info("persistence"))
            except re_.NoPermissionError:
                info = None  # an ACL user without INFO: persistence not declared
            except re_.TimeoutError as exc:
                raise ConnectTimeout(
                    f"redis: connect: no answer within {params.connect_timeout} s "
                    f"from {params.url}") from exc
    except BaseException:
        link.close()
        raise
    names = Names(options.key_prefix, options.dlq_suffix)
    if options.mode == "pubsub":
        return PubSubDriver(link, names)
    return RedisDriver(link, names, capabilities_for(options, aof_enabled(info)))


class RedisDriver(Driver):
    """A pool shared by the admin verbs, topics and subscriptions of one client."""

    def __init__(self, link: Link, names: Names, capabilities: Capabilities) -> None:
        self.capabilities = capabilities
        self._link = link
        self._names = names

    def _run(self, what: str, flow: flows.Flow[T]) -> T:
        with mapped(what):
            return self._link.run(flow)

    # -- topics and subscriptions ----------------------------------------------------

    def open_topic(self, topic: str) -> RedisTopic:
        self._run(f"open topic {topic!r}", flows.require_topic(self._names, topic))
        key = self._names.stream(topic)
        self._link.known.remember(key)
        return RedisTopic(self._link, topic, key, self._names.delayed(topic))

    def open_subscription(self, topic: str, group: str,
                          options: SubscriptionOptions) -> RedisSubscription:
        self._run(f"open group {group!r} of {topic!r}",
                  flows.open_subscription(self._names, topic, group, options))
        self._link.known.remember(self._names.stream(topic), group)
        return RedisSubscription(self._link, flows.make_reader(
            self._names, topic, group, options=self._link.options, sub=options,
            script_sha=self._link.script_sha))

    # -- admin -----------------------------------------------------------------------

    def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        flows.options_check(options)
        self._run(f"create topic {topic!r}", flows.create_topic(self._names, topic))
        self._link.known.remember(self._names.stream(topic))

    def delete_topic(self, topic: str) -> None:
        self._run(f"delete topic {topic!r}", flows.delete_topic(self._names, topic))
        self._link.known.forget(self._names.stream(topic))

    def list_topics(self) -> list[str]:
        """Every stream whose key starts with ``key_prefix`` (SCAN ... TYPE stream)."""
        return self._run("list topics", flows.list_topics(self._names))

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
        return self._run(f"list groups of {topic!r}", flows.list_groups(self._names, topic))

    def group_stats(self, topic: str, group: str) -> GroupStats:
        return self._run(f"stats of {group!r} on {topic!r}",
                         flows.group_stats(self._names, topic, group))

    def purge(self, topic: str, group: str) -> None:
        self._run(f"purge {group!r} on {topic!r}", flows.purge(self._names, topic, group))

    def dead_letter_topic(self, topic: str) -> str:
        return self._names.dead_letter(topic)

    def close(self) -> None:
        with mapped("close"):
            self._link.close()

    def as_(self, kind: type[T]) -> T | None:
        client = self._link.client
        return client if isinstance(client, kind) else None
