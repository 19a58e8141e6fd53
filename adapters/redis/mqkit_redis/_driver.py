"""The Driver: connection pool, capabilities, topics, subscriptions, admin verbs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import redis.exceptions as re_

import mqkit
from mqkit.driver import (
    Capabilities,
    ConnectParams,
    Driver,
    GroupStats,
    SubscriptionOptions,
    Support,
    parse_options,
)

from ._consumer import RELEASED, RedisSubscription
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
# Entries counted per XRANGE when XINFO GROUPS cannot tell a group's lag.
_COUNT_PAGE = 1000
# Groups' pending entries acked per call by purge.
_PURGE_PAGE = 1000


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


def connect(params: ConnectParams) -> Driver:
    options = parse_options(RedisOptions, params.options)
    link = Link(params, options)
    try:
        with mapped("connect"):
            try:
                info = link.client.info("persistence")
            except re_.TimeoutError as exc:
                raise mqkit.ConnectTimeout(
                    f"redis: connect: no answer within {params.connect_timeout} s "
                    f"from {params.url}") from exc
            except re_.NoPermissionError:
                info = {}  # an ACL user without INFO: persistence unknown, not declared
    except BaseException:
        link.close()
        raise
    if options.mode == "pubsub":
        return PubSubDriver(link, Names(options.key_prefix, options.dlq_suffix))
    return RedisDriver(link, options, aof=bool(info.get("aof_enabled")))


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisDriver(Driver):
    """A pool shared by the admin verbs, topics and subscriptions of one client."""

    def __init__(self, link: Link, options: RedisOptions, *, aof: bool) -> None:
        self.capabilities = capabilities_for(options, aof)
        self._link = link
        self._r = link.client
        self._options = options
        self._names = Names(options.key_prefix, options.dlq_suffix)

    # -- topics and subscriptions ----------------------------------------------------

    def open_topic(self, topic: str) -> RedisTopic:
        if not self.topic_exists(topic):
            raise mqkit.NotFound(f"redis: topic {topic!r} (stream "
                                 f"{self._names.stream(topic)!r}) does not exist")
        key = self._names.stream(topic)
        self._link.remember(key)
        return RedisTopic(self._link, topic, key, self._names.delayed(topic), self._options)

    def open_subscription(self, topic: str, group: str,
                          options: SubscriptionOptions) -> RedisSubscription:
        if not self.topic_exists(topic):
            raise mqkit.NotFound(f"redis: topic {topic!r} does not exist")
        if group not in self._groups(topic):
            if not options.create_group:
                raise mqkit.NotFound(f"redis: group {group!r} of topic {topic!r} "
                                     "does not exist")
            self.create_group(topic, group, options.start)
        key = self._names.stream(topic)
        self._link.remember(key, group)
        return RedisSubscription(self._link, topic, key, group,
                                 retry_key=self._names.retry(topic, group),
                                 delayed_key=self._names.delayed(topic), options=options)

    # -- admin -----------------------------------------------------------------------

    def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        if options:
            raise mqkit.ConfigurationError(
                f"redis: unknown topic option(s) {', '.join(map(repr, options))} "
                "(retention is set on the client: maxlen, max_age)")
        key = self._names.stream(topic)
        with mapped(f"create topic {topic!r}"):
            kind = _s(self._r.type(key))
            if kind == "none":
                # An empty stream: a throwaway group creates it with no entry.
                pipe = self._r.pipeline(transaction=True)
                pipe.xgroup_create(key, "mqkit-init", "$", mkstream=True)
                pipe.xgroup_destroy(key, "mqkit-init")
                pipe.execute()
            elif kind != "stream":
                raise mqkit.AlreadyExists(f"redis: key {key!r} exists and holds a {kind}, "
                                          "not a stream")
        self._link.remember(key)

    def delete_topic(self, topic: str) -> None:
        key = self._names.stream(topic)
        with mapped(f"delete topic {topic!r}"):
            groups = self._groups(topic) if self.topic_exists(topic) else []
            self._r.delete(key, self._names.delayed(topic),
                           *[self._names.retry(topic, g) for g in groups])
        self._link.forget(key)

    def list_topics(self) -> list[str]:
        """Every stream whose key starts with ``key_prefix`` (SCAN ... TYPE stream)."""
        out = set()
        with mapped("list topics"):
            for raw in self._r.scan_iter(match=_glob(self._options.key_prefix) + "*",
                                         count=1000, _type="stream"):
                topic = self._names.topic(_s(raw))
                if topic:
                    out.add(topic)
        return sorted(out)

    def topic_exists(self, topic: str) -> bool:
        with mapped(f"find topic {topic!r}"):
            return _s(self._r.type(self._names.stream(topic))) == "stream"

    def _groups(self, topic: str) -> list[str]:
        with mapped(f"list groups of {topic!r}"):
            return [_s(g["name"]) for g in self._r.xinfo_groups(self._names.stream(topic))]

    def create_group(self, topic: str, group: str, start: str) -> None:
        key = self._names.stream(topic)
        if not self.topic_exists(topic):
            raise mqkit.NotFound(f"redis: topic {topic!r} does not exist")
        with mapped(f"create group {group!r} on {topic!r}"):
            try:
                self._r.xgroup_create(key, group, "0" if start == "earliest" else "$")
            except Exception as exc:
                if not str(exc).startswith("BUSYGROUP"):
                    raise
        self._link.remember(key, group)

    def delete_group(self, topic: str, group: str) -> None:
        key = self._names.stream(topic)
        if not self.topic_exists(topic):
            return
        with mapped(f"delete group {group!r} of {topic!r}"):
            pipe = self._r.pipeline(transaction=False)
            pipe.xgroup_destroy(key, group)
            pipe.delete(self._names.retry(topic, group))
            pipe.execute()
        self._link.forget(key, group)

    def list_groups(self, topic: str) -> list[str]:
        if not self.topic_exists(topic):
            raise mqkit.NotFound(f"redis: topic {topic!r} does not exist")
        return sorted(self._groups(topic))

    def _group_info(self, topic: str, group: str) -> dict[str, Any]:
        for info in self._r.xinfo_groups(self._names.stream(topic)):
            if _s(info["name"]) == group:
                return dict(info)
        raise mqkit.NotFound(f"redis: group {group!r} of topic {topic!r} does not exist")

    def group_stats(self, topic: str, group: str) -> GroupStats:
        """Depth = entries not yet delivered to the group (``lag`` of XINFO GROUPS,
        counted with XRANGE when Redis cannot tell) + its pending entries (delivered,
        not acked, including those nacked and waiting for their delay). In flight =
        pending minus those waiting in the retry schedule."""
        key = self._names.stream(topic)
        if not self.topic_exists(topic):
            raise mqkit.NotFound(f"redis: topic {topic!r} does not exist")
        with mapped(f"stats of {group!r} on {topic!r}"):
            info = self._group_info(topic, group)
            lag = info.get("lag")
            if lag is None:
                lag = self._count_after(key, _s(info["last-delivered-id"]))
            pending = int(info["pending"])
            waiting = int(self._r.zcard(self._names.retry(topic, group)))
        return GroupStats(topic=topic, group=group, depth=int(lag) + pending,
                          in_flight=max(0, pending - waiting))

    def _count_after(self, key: str, last_id: str) -> int:
        count, start = 0, f"({last_id}"
        while True:
            page: Any = self._r.xrange(key, min=start, max="+", count=_COUNT_PAGE)
            count += len(page)
            if len(page) < _COUNT_PAGE:
                return count
            start = f"({_s(page[-1][0])}"

    def purge(self, topic: str, group: str) -> None:
        """Skip the group past every entry (``XGROUP SETID $``) and ack its pending."""
        key = self._names.stream(topic)
        if not self.topic_exists(topic):
            raise mqkit.NotFound(f"redis: topic {topic!r} does not exist")
        with mapped(f"purge {group!r} on {topic!r}"):
            length = int(self._r.xlen(key))
            run: Any = self._r.execute_command
            run("XGROUP", "SETID", key, group, "$",
                                    "ENTRIESREAD", length)
            while True:
                rows = self._r.xpending_range(key, group, min="-", max="+",
                                              count=_PURGE_PAGE)
                if not rows:
                    break
                self._r.xack(key, group, *[row["message_id"] for row in rows])
            self._r.delete(self._names.retry(topic, group))
            self._r.xgroup_delconsumer(key, group, RELEASED)

    def dead_letter_topic(self, topic: str) -> str:
        return self._names.dead_letter(topic)

    def close(self) -> None:
        with mapped("close"):
            self._link.close()

    def as_(self, kind: type[T]) -> T | None:
        return self._r if isinstance(self._r, kind) else None


def _glob(prefix: str) -> str:
    """``prefix`` with SCAN's glob characters escaped."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in prefix)
