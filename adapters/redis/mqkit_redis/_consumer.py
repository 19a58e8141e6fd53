"""Receiving from a consumer group: XREADGROUP, leases by XAUTOCLAIM, nacks by schedule.

One ``receive_batch``:

1. one round trip asks for what is due again: the entries of the group's retry schedule
   (sorted set ``<stream>:mqkit-retry:<group>``) whose time came, and (``XAUTOCLAIM ...
   JUSTID``) the pending entries idle longer than this consumer's lease (their consumer
   died or was too slow). A claimed entry still scheduled for later is left alone; a
   due entry is taken by whoever removes it from the schedule first (``ZREM`` is the
   lock). The taken entries are claimed with ``XCLAIM`` (which counts a delivery) and
   their delivery counts read from the pending entries list in the same pipeline;
2. otherwise ``XREADGROUP ... COUNT n BLOCK`` for new entries, blocking at most
   ``block_slice`` at a time (then step 1 again): no busy polling.

``nack`` schedules entries at now (+ delay); ``ack`` and ``reject`` are ``XACK``;
``extend_lease`` is ``XCLAIM ... JUSTID`` (resets the idle time, counts nothing);
``close`` schedules this consumer's pending entries at once, hands them to the
consumer ``mqkit-released`` and deletes this consumer from the group.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, TypeVar

import redis.exceptions as re_

from mqkit.driver import Delivery, SubscriptionDriver, SubscriptionOptions

from ._delay import MOVE_DUE
from ._errors import mapped
from ._link import Link
from ._producer import trim_args
from ._wire import decode

__all__ = ["RELEASED", "RedisSubscription"]

T = TypeVar("T")
log = logging.getLogger("mqkit.redis")

# The consumer that holds entries given back by a closed consumer until someone takes
# them (a consumer deleted from a group would drop its pending entries).
RELEASED = "mqkit-released"
# 50 ms: how stale a busy consumer's view of reclaimable and due entries may get; 20
# extra round trips per second at most, instead of one per batch.
_CHECK_EVERY = 0.05
# Delayed messages moved into the stream per look: bounds the script's run time.
_MOVE_MAX = 1000
# Entries of this consumer's pending list released per call on close.
_RELEASE_PAGE = 1000


def _handles(deliveries: Sequence[Delivery]) -> list[Any]:
    return [d.handle for d in deliveries]


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisSubscription(SubscriptionDriver):
    """One consumer (``options.consumer_name``) of one group of one stream."""

    def __init__(self, link: Link, topic: str, key: str, group: str, *, retry_key: str,
                 delayed_key: str, options: SubscriptionOptions) -> None:
        self._link = link
        self._r = link.client
        self._topic = topic
        self._key = key
        self._group = group
        self._retry = retry_key
        self._me = options.consumer_name
        self._lease_ms = max(1, int(options.lease * 1000))
        self._slice = link.options.block_slice
        self._delayed = delayed_key
        self._what = f"group {group!r} of {topic!r}"
        self._nacked = False
        self._next_check = 0.0
        self._cursor = "0-0"

    # -- receiving -------------------------------------------------------------------

    def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        with mapped(f"receive from {self._what}"):
            while True:
                now = time.monotonic()
                if self._nacked or now >= self._next_check:
                    # Reclaim and the retry schedule are looked at before blocking, after
                    # a nack of ours, and otherwise at most every _CHECK_EVERY seconds:
                    # a busy consumer does not pay that round trip on every batch.
                    self._nacked = False
                    self._next_check = now + _CHECK_EVERY
                    got = self._due_again(max_messages)
                    if got:
                        return got
                remaining = deadline - time.monotonic()
                block = int(min(remaining, self._slice) * 1000)
                reply = self._read_new(max_messages, block if block >= 1 else None)
                got = self._deliveries(reply, None)
                if not got:
                    self._next_check = 0.0  # idle: look again before the next block
                if got or block < 1 or time.monotonic() >= deadline:
                    return got

    def _read_new(self, count: int, block: int | None) -> Any:
        """XREADGROUP ... > on a pooled connection, the reply left raw (flat field
        lists, no per-entry dicts): the hot path of a busy consumer."""
        args: list[str | int] = ["XREADGROUP", "GROUP", self._group, self._me,
                                 "COUNT", count]
        if block is not None:
            args += ["BLOCK", block]
        args += ["STREAMS", self._key, ">"]
        pool = self._r.connection_pool
        conn: Any = pool.get_connection()
        try:
            conn.send_command(*args)
            return conn.read_response(disable_decoding=True)
        finally:
            pool.release(conn)

    def _raw(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Send ``commands`` in one write and read their raw replies (an error reply
        is returned in its place, not raised)."""
        pool = self._r.connection_pool
        conn: Any = pool.get_connection()
        try:
            conn.send_packed_command(conn.pack_commands(commands))
            out: list[Any] = []
            for _ in commands:
                try:
                    out.append(conn.read_response(disable_decoding=True))
                except re_.ResponseError as exc:
                    out.append(exc)
            return out
        finally:
            pool.release(conn)

    def _deliveries(self, reply: Any, counts: dict[str, int] | None) -> list[Delivery]:
        out: list[Delivery] = []
        if not reply:
            return out
        topic = self._topic
        append = out.append
        # RESP3 (redis-py's default with Redis 6+) replies a map, RESP2 a list of pairs.
        for _stream, entries in (reply.items() if isinstance(reply, dict) else reply):
            for raw_id, raw_fields in entries:
                if raw_fields is None:  # deleted from the stream meanwhile
                    continue
                fields = (raw_fields if not isinstance(raw_fields, dict) else
                          [x for pair in raw_fields.items() for x in pair])
                entry_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                ms = entry_id.partition("-")[0]
                append(Delivery(
                    decode(entry_id, fields), topic, entry_id,
                    1 if counts is None else counts.get(entry_id, 2),
                    int(ms) / 1000 if ms.isdigit() else None, entry_id))
        return out

    def _due_again(self, limit: int) -> list[Delivery]:
        wall = time.time()
        now = int(wall * 1000)
        # Raw replies on one connection: EVALSHA, not redis-py's Script in a pipeline
        # (which asks SCRIPT EXISTS on every execute; a server that lost the script
        # gets it back below), and XAUTOCLAIM's cursor kept (redis-py's parser drops
        # it with JUSTID), so a long pending list is walked, not its head rescanned.
        moved, due, claimed = self._raw(
            ("EVALSHA", self._link.move_due.sha, 2, self._key, self._delayed, now,
             _MOVE_MAX, *trim_args(self._link.options, wall)),
            ("ZRANGE", self._retry, "-inf", now, "BYSCORE", "LIMIT", 0, limit),
            ("XAUTOCLAIM", self._key, self._group, self._me, self._lease_ms,
             self._cursor, "COUNT", limit, "JUSTID"))
        for reply in (moved, due, claimed):
            if isinstance(reply, re_.NoScriptError):
                self._r.script_load(MOVE_DUE)
            elif isinstance(reply, Exception):
                raise reply
        self._cursor = _s(claimed[0])
        if not due and not claimed[1]:
            return []
        due = [_s(i) for i in due]
        idle = [_s(i) for i in claimed[1]]
        pipe = self._r.pipeline(transaction=False)
        for entry_id in due:
            pipe.zrem(self._retry, entry_id)
        if idle:
            pipe.zmscore(self._retry, idle)
        replies = pipe.execute()
        taken: list[Any] = [e for e, removed in zip(due, replies, strict=False) if removed]
        if idle:
            scores = replies[len(due)]
            later = {e for e, score in zip(idle, scores, strict=True)
                     if score is not None and score > now}
            stale = [e for e, score in zip(idle, scores, strict=True)
                     if score is not None and score <= now]
            if stale:
                self._r.zrem(self._retry, *stale)
            seen = set(taken)
            taken += [e for e in idle if e not in later and e not in seen]
        if not taken:
            return []
        extra, taken = taken[limit:], taken[:limit]
        pipe = self._r.pipeline(transaction=False)
        if extra:  # more than asked for: due again at once, for anyone
            pipe.zadd(self._retry, dict.fromkeys(extra, now))
        pipe.xclaim(self._key, self._group, self._me, 0, taken)
        for entry_id in taken:
            pipe.xpending_range(self._key, self._group, min=entry_id, max=entry_id,
                                count=1)
        replies = pipe.execute()
        replies = replies[1:] if extra else replies
        counts: dict[str, int] = {}
        for rows in replies[1:]:
            for row in rows:
                counts[_s(row["message_id"])] = int(row["times_delivered"])
        return self._deliveries([(self._key, replies[0])], counts)

    # -- settling --------------------------------------------------------------------

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        with mapped(f"ack on {self._what}"):
            self._r.xack(self._key, self._group, *_handles(deliveries))

    def reject(self, deliveries: Sequence[Delivery]) -> None:
        with mapped(f"reject on {self._what}"):
            self._r.xack(self._key, self._group, *_handles(deliveries))

    def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        due = int((time.time() + (delay or 0.0)) * 1000)
        with mapped(f"nack on {self._what}"):
            self._r.zadd(self._retry, {str(d.handle): due for d in deliveries})
        self._nacked = True

    def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        # XCLAIM resets the idle time to 0, which buys one whole lease of this
        # consumer's; ``seconds`` is the portable layer's lease, the same value.
        with mapped(f"extend lease on {self._what}"):
            self._r.xclaim(self._key, self._group, self._me, 0,
                           _handles(deliveries), justid=True)

    def close(self) -> None:
        """Give this consumer's pending entries back at once, then leave the group."""
        try:
            while True:
                rows = self._r.xpending_range(self._key, self._group, min="-", max="+",
                                              count=_RELEASE_PAGE, consumername=self._me)
                ids: list[Any] = [_s(row["message_id"]) for row in rows]
                if not ids:
                    break
                now = int(time.time() * 1000)
                pipe = self._r.pipeline(transaction=False)
                # NX: an entry it holds only because it reclaimed it while it waits
                # for a delayed nack keeps its due time.
                pipe.zadd(self._retry, dict.fromkeys(ids, now), nx=True)
                pipe.xclaim(self._key, self._group, RELEASED, 0, list(ids), justid=True)
                pipe.execute()
            self._r.xgroup_delconsumer(self._key, self._group, self._me)
        except (re_.RedisError, OSError) as exc:
            # Unreachable or deleted: its entries come back after the lease instead.
            log.info("mqkit: redis consumer %s of %s left without releasing: %s",
                     self._me, self._what, exc)

    def as_(self, kind: type[T]) -> T | None:
        client = self._link.client
        return client if isinstance(client, kind) else None
