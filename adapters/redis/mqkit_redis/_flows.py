"""The adapter's logic as sans-I/O flows, shared by the blocking and asyncio drivers.

A flow is a generator: it yields a list of Redis commands (tuples of arguments),
receives their raw RESP2 replies in order (an error reply as the exception object in
its place, not raised), and returns its result. ``Link.run`` and ``AsyncLink.run`` drive
a flow on one pooled connection of redis-py's blocking or asyncio client; the two
faces differ by nothing else (both are one source: ``_driver`` is generated from ``_aio``).
Each flow's docstring names the commands it sends.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
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

from ._bands import ENSURE_BAND, ENSURE_BAND_SHA
from ._names import Names
from ._options import RedisOptions
from ._wire import encode, join_fields

__all__ = ["RELEASED", "Command", "Flow", "ahead", "call", "handles", "send_banded", "text"]

T = TypeVar("T")
Command = tuple[Any, ...]
Flow = Generator[list[Command], list[Any], T]

# The consumer that holds entries given back by a closed consumer until someone takes
# them (a consumer deleted from a group would drop its pending entries).
RELEASED = "mqkit-released"
# Entries handled per call when purge acks, or lag is counted.
_PAGE = 1000


def text(value: Any) -> str:
    """A raw reply (bytes) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


_s = text


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


def ahead(first: list[Command], flow: Flow[T]) -> Flow[T]:
    """``flow``, with ``first`` sent ahead of its first step in the same round trip
    (the server runs them in order, so ``first`` is applied before that step, a blocking
    read included). Raises the first error reply among ``first``'s once that step's
    replies are in, leaving the flow there; else the flow goes on as it would alone."""
    try:
        commands = next(flow)
    except StopIteration as stop:  # a flow that sends nothing
        check((yield first))
        result: T = stop.value
        return result
    replies = yield [*first, *commands]
    check(replies[:len(first)])
    replies = replies[len(first):]
    try:
        while True:
            commands = flow.send(replies)
            replies = yield commands
    except StopIteration as stop:
        done: T = stop.value
        return done


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


def send_banded(names: Names, topic: str, options: RedisOptions,
                messages: Sequence[Message], now: float, *,
                ensured: set[str]) -> Flow[list[Any]]:
    """Send messages some of which have a priority: each to its band's stream (or its
    band's delayed set), made first with :func:`ensure_bands` unless in ``ensured``
    (the band streams this topic object made or saw, updated). A band that vanished
    meanwhile (its ``XADD NOMKSTREAM`` answers nil) is made again and its messages sent
    once more; the replies, as :func:`send_outcome` reads them."""
    plain = names.stream(topic)
    keys = [names.band(topic, m.priority or 0) for m in messages]
    yield from ensure_bands(names, topic, {k for k in keys if k != plain} - ensured, ensured)
    commands = [send_commands(k, names.delayed_of(k), options, [m], now)[0]
                for k, m in zip(keys, messages, strict=True)]
    replies = yield commands
    again = [i for i, r in enumerate(replies) if r is None and keys[i] != plain]
    if again:
        lost = {keys[i] for i in again}
        ensured -= lost
        yield from ensure_bands(names, topic, lost, ensured)
        more = yield [commands[i] for i in again]
        for i, reply in zip(again, more, strict=True):
            replies[i] = reply
    return replies


def ensure_bands(names: Names, topic: str, bands: set[str],
                 ensured: set[str]) -> Flow[None]:
    """Make the band streams ``bands`` of ``topic`` (``ENSURE_BAND``: each with the plain
    stream's groups) and add those that exist to ``ensured``; none is made when the
    topic does not exist (its sends then fail ``NotFound``)."""
    if not bands:
        return
    order = sorted(bands)
    plain = names.stream(topic)
    commands: list[Command] = [("EVALSHA", ENSURE_BAND_SHA, 2, plain, b) for b in order]
    replies = yield commands
    if any(isinstance(r, re_.NoScriptError) for r in replies):  # a restarted server
        yield from call(("SCRIPT", "LOAD", ENSURE_BAND))
        replies = yield commands
    for band, made in zip(order, check(replies), strict=True):
        if made:
            ensured.add(band)


def existing_bands(names: Names, topic: str) -> Flow[list[str]]:
    """The band streams of ``topic`` that exist, highest priority first."""
    bands = names.bands(topic)
    found = yield from call(*[("EXISTS", b) for b in bands])
    return [b for b, n in zip(bands, found, strict=True) if n]


# -- receiving -----------------------------------------------------------------------

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
    one MULTI/EXEC. A name that reads as a band stream is refused (``Names.check_topic``)."""
    names.check_topic(topic)
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
    """``DEL`` of the stream, its delayed set and its groups' retry schedules, and the
    same for each of its priority bands."""
    groups = (yield from group_names(names, topic)) if (
        yield from is_stream(names, topic)) else []
    keys = [names.stream(topic), *names.bands(topic)]
    yield from call(("DEL", *[x for k in keys for x in (
        k, names.delayed_of(k), *[names.retry_of(k, g) for g in groups])]))


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
    """``XGROUP CREATE`` from ``0`` (earliest) or ``$`` (latest) on the stream and on
    each priority band stream that exists; an existing group (``BUSYGROUP``) is left
    as it is. A band made later gets the group from its ``ENSURE_BAND`` (from ``0``)."""
    yield from require_topic(names, topic)
    keys = [names.stream(topic), *(yield from existing_bands(names, topic))]
    position = "0" if start == "earliest" else "$"
    replies = yield [("XGROUP", "CREATE", k, group, position) for k in keys]
    for reply in replies:
        if isinstance(reply, Exception) and not str(reply).startswith("BUSYGROUP"):
            raise reply


def delete_group(names: Names, topic: str, group: str) -> Flow[None]:
    """``XGROUP DESTROY`` on the stream and its bands, their retry schedules deleted."""
    if not (yield from is_stream(names, topic)):
        return
    bands = yield from existing_bands(names, topic)
    yield from exchange([("XGROUP", "DESTROY", k, group) for k in bands])
    yield from call(("XGROUP", "DESTROY", names.stream(topic), group),
                    ("DEL", *[names.retry_of(k, group)
                              for k in (names.stream(topic), *names.bands(topic))]))


def _group_info(names: Names, key: str, group: str) -> Flow[dict[str, Any] | None]:
    [rows] = yield from call(("XINFO", "GROUPS", key))
    infos = [row if isinstance(row, dict) else _pairs(row) for row in rows]
    return next((i for i in infos if _s(i["name"]) == group), None)


def _stream_stats(names: Names, key: str, group: str,
                  info: dict[str, Any]) -> Flow[tuple[int, int]]:
    """``(depth, in flight)`` of ``group`` on one stream (plain or band)."""
    lag = info.get("lag")
    if lag is None:
        lag = 0
        start = "(" + _s(info["last-delivered-id"])
        while True:
            [page] = yield from call(("XRANGE", key, start, "+", "COUNT", _PAGE))
            lag += len(page)
            if len(page) < _PAGE:
                break
            start = "(" + _s(page[-1][0])
    pending = int(info["pending"])
    [waiting] = yield from call(("ZCARD", names.retry_of(key, group)))
    return int(lag) + pending, max(0, pending - int(waiting))


def group_stats(names: Names, topic: str, group: str) -> Flow[GroupStats]:
    """depth = lag (``XINFO GROUPS``; counted with ``XRANGE`` when Redis cannot tell)
    + pending; in flight = pending minus the entries waiting in the retry schedule;
    summed over the stream and its priority bands."""
    yield from require_topic(names, topic)
    key = names.stream(topic)
    info = yield from _group_info(names, key, group)
    if info is None:
        raise NotFound(f"redis: group {group!r} of topic {topic!r} does not exist")
    depth, in_flight = yield from _stream_stats(names, key, group, info)
    for band in (yield from existing_bands(names, topic)):
        band_info = yield from _group_info(names, band, group)
        if band_info is not None:
            d, f = yield from _stream_stats(names, band, group, band_info)
            depth, in_flight = depth + d, in_flight + f
    return GroupStats(topic=topic, group=group, depth=depth, in_flight=in_flight)


def _purge_stream(names: Names, key: str, group: str) -> Flow[None]:
    [length] = yield from call(("XLEN", key))
    yield from call(("XGROUP", "SETID", key, group, "$", "ENTRIESREAD", length))
    while True:
        [rows] = yield from call(("XPENDING", key, group, "-", "+", _PAGE))
        if not rows:
            break
        yield from call(("XACK", key, group, *[row[0] for row in rows]))
    yield from call(("DEL", names.retry_of(key, group)),
                    ("XGROUP", "DELCONSUMER", key, group, RELEASED))


def purge(names: Names, topic: str, group: str) -> Flow[None]:
    """``XGROUP SETID <g> $``, ``XACK`` of every pending entry, the schedule deleted;
    on the stream and on each priority band that has the group."""
    yield from require_topic(names, topic)
    yield from _purge_stream(names, names.stream(topic), group)
    for band in (yield from existing_bands(names, topic)):
        if (yield from _group_info(names, band, group)) is not None:
            yield from _purge_stream(names, band, group)


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
