"""The adapter's logic as sans-I/O flows, shared by the blocking and asyncio drivers.

A flow is a generator: it yields a list of Redis commands (tuples of arguments),
receives their raw RESP2 replies in order (an error reply as the exception object in
its place, not raised), and returns its result. ``Link.run`` and ``AsyncLink.run`` drive
a flow on one pooled connection of redis-py's blocking or asyncio client; the two
faces differ by nothing else (both are one source: ``_driver`` is generated from ``_aio``).
Each flow's docstring names the commands it sends.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.exceptions as re_

from mqkit.driver import (
    AlreadyExists,
    ConfigurationError,
    Delivery,
    GroupStats,
    Message,
    MQError,
    NotFound,
    SendBatchError,
    SubscriptionOptions,
)

from ._delay import MOVE_DUE
from ._names import Names
from ._options import RedisOptions
from ._wire import deliveries, encode, join_fields

__all__ = ["RELEASED", "Command", "Flow", "Reader", "call", "handles"]

T = TypeVar("T")
Command = tuple[Any, ...]
Flow = Generator[list[Command], list[Any], T]

# The consumer that holds entries given back by a closed consumer until someone takes
# them (a consumer deleted from a group would drop its pending entries).
RELEASED = "mqkit-released"
# 50 ms: how stale a busy consumer's view of reclaimable and due entries may get; 20
# extra round trips per second at most, instead of one per batch.
_CHECK_EVERY = 0.05
# Delayed messages moved into the stream per look: bounds the script's run time.
_MOVE_MAX = 1000
# Entries handled per call when a consumer releases, purge acks, or lag is counted.
_PAGE = 1000


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def check(replies: list[Any]) -> list[Any]:
    """``replies``, or raise the first error reply among them."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def call(*commands: Command) -> Flow[list[Any]]:
    """Send ``commands``; their replies, raising the first error reply."""
    replies = yield list(commands)
    return check(replies)


def exchange(commands: list[Command]) -> Flow[list[Any]]:
    """Send ``commands``; their replies, errors in place."""
    replies = yield commands
    return replies


def handles(deliveries: Sequence[Delivery]) -> list[Any]:
    """The entry ids of ``deliveries`` (what ``XACK``, ``ZADD`` and ``XCLAIM`` take)."""
    return [d.handle for d in deliveries]


def _pairs(flat: Sequence[Any]) -> dict[str, Any]:
    return {_s(k): v for k, v in zip(flat[::2], flat[1::2], strict=True)}


# -- sending -------------------------------------------------------------------------

def trim_args(options: RedisOptions, now: float) -> list[bytes | str]:
    """The trimming arguments of XADD (``MAXLEN``/``MINID``), empty when retention is
    unbounded. ``now`` is seconds since the epoch."""
    how = "=" if options.trim_exact else "~"
    if options.maxlen:
        return ["MAXLEN", how, str(options.maxlen)]
    if options.max_age:
        return ["MINID", how, str(int((now - options.max_age) * 1000))]
    return []


def send_commands(key: str, delayed_key: str, options: RedisOptions,
                  messages: Sequence[Message], now: float) -> list[Command]:
    """One ``XADD NOMKSTREAM`` per message (a send never creates a stream), or a
    ``ZADD`` into the delayed set for a delayed one."""
    head: list[bytes | str] = ["XADD", key, "NOMKSTREAM", *trim_args(options, now), "*"]
    if not any(m.delay for m in messages):
        return [(*head, *encode(m)) for m in messages]
    out: list[Command] = []
    for m in messages:
        if m.delay:
            due = str(int((now + m.delay) * 1000))
            out.append(("ZADD", delayed_key, due, join_fields(encode(m))))
        else:
            out.append((*head, *encode(m)))
    return out


def send_outcome(topic: str, key: str, replies: list[Any]) -> None:
    """Raise for the entries that were not written (``SendBatchError`` when others
    were), the native error as ``__cause__``."""
    from ._errors import map_error

    failures: dict[int, MQError] = {}
    for i, reply in enumerate(replies):
        if reply is None:
            failures[i] = NotFound(f"redis: topic {topic!r} (stream {key!r}) "
                                   "does not exist")
        elif isinstance(reply, Exception):
            failures[i] = map_error(reply, f"send to {topic!r}")
    if not failures:
        return
    if len(failures) == len(replies):
        cause = replies[0] if isinstance(replies[0], Exception) else None
        raise failures[0] from cause
    raise SendBatchError(failures, len(replies))


# -- receiving -----------------------------------------------------------------------

@dataclass
class Reader:
    """One consumer of one group: its state and its flows.

    ``receive``: first a look for what is due again, then ``XREADGROUP ... >``. The look
    (before blocking, after a nack of ours, else at most every 50 ms) sends in one round
    trip: the delayed-send mover script, the due ids of the group's retry schedule, and
    ``XAUTOCLAIM ... JUSTID`` of entries idle longer than the lease (its cursor kept, so
    a long pending list is walked, not its head rescanned). A claimed entry still
    scheduled for later is left alone; a due entry is taken by whoever ``ZREM``s it
    first; the taken entries are ``XCLAIM``ed (one more delivery) and their counts read
    with ``XPENDING`` in the same round trip.
    """

    topic: str
    key: str
    group: str
    retry: str
    delayed: str
    me: str
    lease_ms: int
    options: RedisOptions
    script_sha: str
    nacked: bool = False
    next_check: float = 0.0
    cursor: str = "0-0"

    def receive(self, max_messages: int, timeout: float) -> Flow[list[Delivery]]:
        deadline = time.monotonic() + timeout
        slice_s = self.options.block_slice
        while True:
            now = time.monotonic()
            if self.nacked or now >= self.next_check:
                self.nacked = False
                self.next_check = now + _CHECK_EVERY
                got = yield from self._due_again(max_messages)
                if got:
                    return got
            remaining = deadline - time.monotonic()
            block = int(min(remaining, slice_s) * 1000)
            command: list[Any] = ["XREADGROUP", "GROUP", self.group, self.me,
                                  "COUNT", max_messages]
            if block >= 1:
                command += ["BLOCK", block]
            command += ["STREAMS", self.key, ">"]
            [reply] = yield from call(tuple(command))
            got = self.deliveries(reply, None)
            if not got:
                self.next_check = 0.0  # idle: look again before the next block
            if got or block < 1 or time.monotonic() >= deadline:
                return got

    def deliveries(self, reply: Any, counts: dict[str, int] | None) -> list[Delivery]:
        """Deliveries from an XREADGROUP or XCLAIM reply (RESP2 lists, or RESP3 maps)."""
        out: list[Delivery] = []
        if not reply:
            return out
        if counts is not None:  # XCLAIM: a list of entries
            reply = [(self.key, reply)]
        for _stream, entries in (reply.items() if isinstance(reply, dict) else reply):
            deliveries(self.topic, entries, counts, out)
        return out

    def _due_again(self, limit: int) -> Flow[list[Delivery]]:
        wall = time.time()
        now = int(wall * 1000)
        moved, due, claimed = yield [
            ("EVALSHA", self.script_sha, 2, self.key, self.delayed, now, _MOVE_MAX,
             *trim_args(self.options, wall)),
            ("ZRANGE", self.retry, "-inf", now, "BYSCORE", "LIMIT", 0, limit),
            ("XAUTOCLAIM", self.key, self.group, self.me, self.lease_ms, self.cursor,
             "COUNT", limit, "JUSTID")]
        if isinstance(moved, re_.NoScriptError):  # a restarted or flushed server
            yield from call(("SCRIPT", "LOAD", MOVE_DUE))
            moved = 0
        check([moved, due, claimed])
        self.cursor = _s(claimed[0])
        due_ids = [_s(i) for i in due]
        idle = [_s(i) for i in claimed[1]]
        if not due_ids and not idle:
            return []
        step: list[Command] = [("ZREM", self.retry, e) for e in due_ids]
        if idle:
            step.append(("ZMSCORE", self.retry, *idle))
        replies = yield from call(*step)
        taken = [e for e, removed in zip(due_ids, replies, strict=False) if removed]
        if idle:
            scores = [None if s is None else float(s) for s in replies[len(due_ids)]]
            later = {e for e, s in zip(idle, scores, strict=True) if s is not None and s > now}
            stale = [e for e, s in zip(idle, scores, strict=True) if s is not None and s <= now]
            if stale:
                yield from call(("ZREM", self.retry, *stale))
            seen = set(taken)
            taken += [e for e in idle if e not in later and e not in seen]
        if not taken:
            return []
        extra, taken = taken[limit:], taken[:limit]
        step = []  # a new step: the one above was sent
        if extra:  # more than asked for: due again at once, for anyone
            step.append(("ZADD", self.retry, *[x for e in extra for x in (now, e)]))
        step.append(("XCLAIM", self.key, self.group, self.me, 0, *taken))
        step += [("XPENDING", self.key, self.group, e, e, 1) for e in taken]
        replies = yield from call(*step)
        replies = replies[1:] if extra else replies
        counts = {_s(row[0]): int(row[3]) for rows in replies[1:] for row in rows}
        return self.deliveries(replies[0], counts)

    def ack(self, handles: Sequence[Any]) -> Flow[list[Any]]:
        """``XACK`` (ack and reject alike: the entry is done for this group)."""
        return call(("XACK", self.key, self.group, *handles))

    def nack(self, handles: Sequence[Any], delay: float | None) -> Flow[list[Any]]:
        """Schedule the entries in the group's retry schedule at now (+ delay)."""
        due = int((time.time() + (delay or 0.0)) * 1000)
        self.nacked = True
        return call(("ZADD", self.retry, *[x for h in handles for x in (due, h)]))

    def extend(self, handles: Sequence[Any]) -> Flow[list[Any]]:
        """``XCLAIM ... JUSTID``: resets the idle time, counts no delivery."""
        return call(("XCLAIM", self.key, self.group, self.me, 0, *handles, "JUSTID"))

    def release(self) -> Flow[None]:
        """Schedule this consumer's pending entries at once (``ZADD NX``: one waiting
        for a delayed nack keeps its time), hand them to ``mqkit-released``, and leave
        the group (``XGROUP DELCONSUMER``)."""
        while True:
            [rows] = yield from call(("XPENDING", self.key, self.group, "-", "+", _PAGE,
                                      self.me))
            ids = [_s(row[0]) for row in rows]
            if not ids:
                break
            now = int(time.time() * 1000)
            yield from call(("ZADD", self.retry, "NX", *[x for e in ids for x in (now, e)]),
                            ("XCLAIM", self.key, self.group, RELEASED, 0, *ids, "JUSTID"))
        yield from call(("XGROUP", "DELCONSUMER", self.key, self.group, self.me))


# -- admin ---------------------------------------------------------------------------

def server_info(section: str) -> Flow[dict[str, str]]:
    """``INFO <section>`` as a mapping."""
    [raw] = yield from call(("INFO", section))
    return parse_info(raw)


def parse_info(raw: Any) -> dict[str, str]:
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    out = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and not name.startswith("#"):
            out[name.strip()] = value.strip()
    return out


def redeclare_commands(declared: Mapping[str, frozenset[str]]) -> list[Command]:
    """What re-creates these streams (keys) and their groups on a server that lost them
    (``0``: a group sees whatever reached the stream before)."""
    out: list[Command] = [("XGROUP", "CREATE", k, g, "0", "MKSTREAM")
                          for k in sorted(declared) for g in sorted(declared[k])]
    for key in sorted(k for k, groups in declared.items() if not groups):
        out += [("XGROUP", "CREATE", key, "mqkit-init", "$", "MKSTREAM"),
                ("XGROUP", "DESTROY", key, "mqkit-init")]
    return out


def is_stream(names: Names, topic: str) -> Flow[bool]:
    [kind] = yield from call(("TYPE", names.stream(topic)))
    return _s(kind) == "stream"


def require_topic(names: Names, topic: str) -> Flow[None]:
    if not (yield from is_stream(names, topic)):
        raise NotFound(f"redis: topic {topic!r} (stream {names.stream(topic)!r}) "
                       "does not exist")


def groups_info(names: Names, topic: str) -> Flow[list[dict[str, Any]]]:
    """``XINFO GROUPS``: one mapping per group."""
    [rows] = yield from call(("XINFO", "GROUPS", names.stream(topic)))
    return [row if isinstance(row, dict) else _pairs(row) for row in rows]


def group_names(names: Names, topic: str) -> Flow[list[str]]:
    infos = yield from groups_info(names, topic)
    return [_s(info["name"]) for info in infos]


def create_topic(names: Names, topic: str) -> Flow[None]:
    """An empty stream: a throwaway group created with ``MKSTREAM`` and destroyed, in
    one MULTI/EXEC."""
    key = names.stream(topic)
    [kind] = yield from call(("TYPE", key))
    kind = _s(kind)
    if kind == "none":
        yield from call(("MULTI",), ("XGROUP", "CREATE", key, "mqkit-init", "$", "MKSTREAM"),
                        ("XGROUP", "DESTROY", key, "mqkit-init"), ("EXEC",))
    elif kind != "stream":
        raise AlreadyExists(f"redis: key {key!r} exists and holds a {kind}, "
                            "not a stream")


def delete_topic(names: Names, topic: str) -> Flow[None]:
    """``DEL`` of the stream, its delayed set and its groups' retry schedules."""
    groups = (yield from group_names(names, topic)) if (
        yield from is_stream(names, topic)) else []
    yield from call(("DEL", names.stream(topic), names.delayed(topic),
                     *[names.retry(topic, g) for g in groups]))


def list_topics(names: Names) -> Flow[list[str]]:
    """``SCAN ... MATCH <key_prefix>* TYPE stream``."""
    pattern = "".join("\\" + c if c in "*?[]\\" else c for c in names.key_prefix) + "*"
    out: set[str] = set()
    cursor = "0"
    while True:
        [(cursor_raw, keys)] = yield from call(("SCAN", cursor, "MATCH", pattern,
                                                "COUNT", _PAGE, "TYPE", "stream"))
        for raw in keys:
            topic = names.topic(_s(raw))
            if topic:
                out.add(topic)
        cursor = _s(cursor_raw)
        if cursor == "0":
            return sorted(out)


def create_group(names: Names, topic: str, group: str, start: str) -> Flow[None]:
    """``XGROUP CREATE`` from ``0`` (earliest) or ``$`` (latest); an existing group
    (``BUSYGROUP``) is left as it is."""
    yield from require_topic(names, topic)
    [reply] = yield [("XGROUP", "CREATE", names.stream(topic), group,
                      "0" if start == "earliest" else "$")]
    if isinstance(reply, Exception) and not str(reply).startswith("BUSYGROUP"):
        raise reply


def delete_group(names: Names, topic: str, group: str) -> Flow[None]:
    if not (yield from is_stream(names, topic)):
        return
    yield from call(("XGROUP", "DESTROY", names.stream(topic), group),
                    ("DEL", names.retry(topic, group)))


def group_stats(names: Names, topic: str, group: str) -> Flow[GroupStats]:
    """depth = lag (``XINFO GROUPS``; counted with ``XRANGE`` when Redis cannot tell)
    + pending; in flight = pending minus the entries waiting in the retry schedule."""
    yield from require_topic(names, topic)
    infos = yield from groups_info(names, topic)
    info = next((i for i in infos if _s(i["name"]) == group), None)
    if info is None:
        raise NotFound(f"redis: group {group!r} of topic {topic!r} does not exist")
    lag = info.get("lag")
    if lag is None:
        lag = 0
        start = "(" + _s(info["last-delivered-id"])
        while True:
            [page] = yield from call(("XRANGE", names.stream(topic), start, "+",
                                      "COUNT", _PAGE))
            lag += len(page)
            if len(page) < _PAGE:
                break
            start = "(" + _s(page[-1][0])
    pending = int(info["pending"])
    [waiting] = yield from call(("ZCARD", names.retry(topic, group)))
    return GroupStats(topic=topic, group=group, depth=int(lag) + pending,
                      in_flight=max(0, pending - int(waiting)))


def purge(names: Names, topic: str, group: str) -> Flow[None]:
    """``XGROUP SETID <g> $``, ``XACK`` of every pending entry, the schedule deleted."""
    yield from require_topic(names, topic)
    key = names.stream(topic)
    [length] = yield from call(("XLEN", key))
    yield from call(("XGROUP", "SETID", key, group, "$", "ENTRIESREAD", length))
    while True:
        [rows] = yield from call(("XPENDING", key, group, "-", "+", _PAGE))
        if not rows:
            break
        yield from call(("XACK", key, group, *[row[0] for row in rows]))
    yield from call(("DEL", names.retry(topic, group)),
                    ("XGROUP", "DELCONSUMER", key, group, RELEASED))


def make_reader(names: Names, topic: str, group: str, *, options: RedisOptions,
                sub: SubscriptionOptions, script_sha: str) -> Reader:
    return Reader(topic=topic, key=names.stream(topic), group=group,
                  retry=names.retry(topic, group), delayed=names.delayed(topic),
                  me=sub.consumer_name, lease_ms=max(1, int(sub.lease * 1000)),
                  options=options, script_sha=script_sha)


def open_subscription(names: Names, topic: str, group: str,
                      sub: SubscriptionOptions) -> Flow[None]:
    """Check the topic, and the group (created at ``sub.start`` when missing and
    ``sub.create_group``)."""
    yield from require_topic(names, topic)
    if group not in (yield from group_names(names, topic)):
        if not sub.create_group:
            raise NotFound(f"redis: group {group!r} of topic {topic!r} "
                           "does not exist")
        yield from create_group(names, topic, group, sub.start)


def options_check(options: Mapping[str, object]) -> None:
    if options:
        raise ConfigurationError(
            f"redis: unknown topic option(s) {', '.join(map(repr, options))} "
            "(retention is set on the client: maxlen, max_age)")


def list_groups(names: Names, topic: str) -> Flow[list[str]]:
    yield from require_topic(names, topic)
    return sorted((yield from group_names(names, topic)))


# -- pub/sub mode's registry of channels -----------------------------------------------

def channels_key(names: Names) -> str:
    """The set of known channel topics: ``<key_prefix>mqkit:channels``."""
    return names.stream("mqkit:channels")


def is_channel(names: Names, topic: str) -> Flow[bool]:
    [found] = yield from call(("SISMEMBER", channels_key(names), topic))
    return bool(found)


def require_channel(names: Names, topic: str) -> Flow[None]:
    if not (yield from is_channel(names, topic)):
        raise NotFound(f"redis: channel topic {topic!r} does not exist")


def list_channels(names: Names) -> Flow[list[str]]:
    [members] = yield from call(("SMEMBERS", channels_key(names)))
    return sorted(_s(m) for m in members)
