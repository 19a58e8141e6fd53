"""The registry of topics and groups, and its snapshot.

AMQP 0-9-1 cannot list exchanges, queues or bindings, and the management plugin may not
be enabled. mqkit therefore records every topic and group it creates or deletes in a
durable *stream* queue, ``mqkit.registry`` (append-only, read non-destructively by any
number of readers). Reading it replays the stream up to a marker the reader publishes just
before, so every entry recorded before the call is seen.

Replaying from the stream's start would cost one delivery per entry ever recorded: admin
calls would slow down as a broker's history grows (3.4 s per call at 19,000 entries). So
a reader that replayed :data:`SNAPSHOT_EVERY` entries or more publishes the state it
reached, with the offset and id of its own marker, to ``mqkit.registry.snapshot`` (a
quorum queue keeping its newest message). The next reader takes that snapshot (and puts it
back), replays the stream from the snapshot's offset, and trusts it only if the entry
found there is that very marker. Otherwise (no snapshot, an unreadable one, a registry
stream deleted and made again) it replays from the start. The snapshot only saves time:
the broker refusing to give or keep it (a channel error) is never raised, and a missing
one costs one full replay; a connection lost meanwhile is raised, as by any admin call.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions as pe
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from ._admin import scratch
from ._names import REGISTRY_QUEUE, SNAPSHOT_QUEUE
from ._private import underlying

__all__ = ["SNAPSHOT_EVERY", "read_registry", "record"]

SNAPSHOT_EVERY = 500
"""Entries a replay reads before its reader publishes a new snapshot."""
_ACK_EVERY = 200
"""Stream deliveries acknowledged at once (one ``multiple`` ack instead of one each)."""
_PREFETCH = 1000
_OFFSET_HEADER = "x-stream-offset"


def _ensure_registry(channel: BlockingChannel) -> None:
    channel.queue_declare(REGISTRY_QUEUE, durable=True,
                          arguments={"x-queue-type": "stream"})


def record(connection: BlockingConnection, op: str, topic: str,
           group: str | None = None) -> None:
    """Append ``op`` (create/delete) of a topic or group to the registry, confirmed."""
    with scratch(connection) as channel:
        _ensure_registry(channel)
        channel.confirm_delivery()
        headers = {"op": op, "topic": topic, "group": group or ""}
        channel.basic_publish("", REGISTRY_QUEUE, b"",
                              pika.BasicProperties(headers=headers, delivery_mode=2))


@dataclass(slots=True)
class _State:
    """The registry as of the entry at ``offset``, the marker ``marker``."""

    topics: set[str] = field(default_factory=set)
    groups: set[tuple[str, str]] = field(default_factory=set)
    offset: int = -1
    marker: str = ""
    read: int = 0
    """Entries this replay read (a snapshot's own are not counted)."""

    def apply(self, op: str, topic: str, group: str) -> None:
        if group:
            (self.groups.add if op == "create" else self.groups.discard)((topic, group))
        elif op == "create":
            self.topics.add(topic)
        elif op == "delete":
            self.topics.discard(topic)
            self.groups.difference_update([p for p in self.groups if p[0] == topic])


def read_registry(connection: BlockingConnection,
                  timeout: float) -> tuple[set[str], set[tuple[str, str]]]:
    """The topics and (topic, group) pairs created and not deleted, as of this call.

    Raises ``pika.exceptions.AMQPChannelError`` when the replay takes over ``timeout``
    seconds, and pika's errors when the broker fails (the caller maps them).
    """
    marker = uuid.uuid4().hex
    record(connection, "marker", marker)
    deadline = time.monotonic() + timeout
    snapshot = _fetch_snapshot(connection)
    state = _replay(connection, marker, deadline, snapshot) if snapshot else None
    if state is None:
        state = _replay(connection, marker, deadline, None)
        assert state is not None  # a replay from the start has nothing to verify
    if state.read >= SNAPSHOT_EVERY:
        _store_snapshot(connection, state)
    return state.topics, state.groups


def _replay(connection: BlockingConnection, marker: str, deadline: float,
            base: _State | None) -> _State | None:
    """Replay the stream from ``base`` (None: its start) up to ``marker``; None when the
    entry at ``base.offset`` is not ``base``'s marker (the snapshot does not belong to
    this stream)."""
    state = _State() if base is None else _State(set(base.topics), set(base.groups))
    start: Any = "first" if base is None else base.offset
    done = False
    mismatch = False
    unacked = 0
    last_tag = 0

    def on_entry(ch: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
        nonlocal done, mismatch, unacked, last_tag
        last_tag = method.delivery_tag
        unacked += 1
        if unacked >= _ACK_EVERY:
            ch.basic_ack(last_tag, multiple=True)
            unacked = 0
        if done:
            return
        h = props.headers or {}
        op, topic, group = str(h.get("op")), str(h.get("topic")), str(h.get("group") or "")
        if base is not None and state.offset < 0:
            # the first entry must be the snapshot's own marker
            if h.get(_OFFSET_HEADER) != base.offset or op != "marker" or topic != base.marker:
                mismatch = done = True
                connection.add_callback_threadsafe(lambda: None)  # end the wait now
                return
            state.offset = base.offset
            return
        state.read += 1
        if op == "marker":
            if topic == marker:
                state.offset, state.marker = int(h.get(_OFFSET_HEADER, -1)), marker
                done = True
                connection.add_callback_threadsafe(lambda: None)
        else:
            state.apply(op, topic, group)

    with scratch(connection) as channel:
        # Streams need a prefetch and manual acks. The consumer is registered on the
        # underlying channel (see ._private): BlockingChannel would nack undispatched
        # deliveries when the channel closes, which a stream refuses by closing the whole
        # connection.
        channel.basic_qos(prefetch_count=_PREFETCH)
        underlying(channel).basic_consume(REGISTRY_QUEUE, on_entry, auto_ack=False,
                                          arguments={_OFFSET_HEADER: start})
        while not done:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise pe.AMQPChannelError("registry replay timed out")
            connection.process_data_events(time_limit=remaining)
        if unacked:
            channel.basic_ack(last_tag, multiple=True)
    return None if mismatch else state


def _fetch_snapshot(connection: BlockingConnection) -> _State | None:
    """The newest snapshot, put back for the next reader; None if there is none usable."""
    try:
        with scratch(connection) as channel:
            method, _, body = channel.basic_get(SNAPSHOT_QUEUE, auto_ack=False)
            if method is None:
                return None
            channel.basic_reject(method.delivery_tag, requeue=True)
    except pe.AMQPChannelError:
        return None  # no snapshot queue yet (404), or it was just deleted
    return _decode(body)


def _decode(body: bytes) -> _State | None:
    """The snapshot in ``body``, or None unless it has exactly the shape written."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    topics, groups = data.get("topics"), data.get("groups")
    offset, marker = data.get("offset"), data.get("marker")
    if (not isinstance(topics, list) or not all(isinstance(t, str) for t in topics)
            or not isinstance(groups, list)
            or not all(isinstance(p, list) and len(p) == 2
                       and all(isinstance(x, str) for x in p) for p in groups)
            or type(offset) is not int or offset < 0
            or not isinstance(marker, str) or not marker):
        return None
    return _State(set(topics), {(t, g) for t, g in groups}, offset=offset, marker=marker)


def _store_snapshot(connection: BlockingConnection, state: _State) -> None:
    """Publish ``state`` as the newest snapshot; a failure only leaves the older one."""
    body = json.dumps({"offset": state.offset, "marker": state.marker,
                       "topics": sorted(state.topics),
                       "groups": sorted([t, g] for t, g in state.groups)}).encode()
    try:
        with scratch(connection) as channel:
            channel.queue_declare(SNAPSHOT_QUEUE, durable=True, arguments={
                "x-queue-type": "quorum", "x-max-length": 1, "x-overflow": "drop-head"})
            channel.confirm_delivery()
            channel.basic_publish("", SNAPSHOT_QUEUE, body, pika.BasicProperties(
                delivery_mode=2, content_type="application/json"))
    except pe.AMQPChannelError:
        pass  # e.g. another tool declared the queue otherwise: readers replay more
