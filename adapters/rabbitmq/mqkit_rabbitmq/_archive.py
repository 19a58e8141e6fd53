"""Replay on RabbitMQ: the archive stream of a ``*.stream`` topic, and its copy into a
new group's queue.

Classic and quorum queues delete what was acked, and a queue declared now holds nothing
from before; a RabbitMQ *stream* keeps what it is given, whoever read it. A topic whose
name ends with ``.stream`` (:data:`._names.STREAM_SUFFIX`) therefore gets, when
``create_topic`` declares it, a durable stream queue ``mqkit.archive.<exchange>`` bound
to its exchange with ``#``: every message sent to the topic is also appended there,
whether or not a group exists. Its retention is bounded (``x-max-age``,
``x-max-length-bytes``: the ``archive_max_age`` / ``archive_max_bytes`` options).

Groups stay ordinary queues (quorum by default), so ack, nack, reject, delivery counts,
leases and competing consumers mean exactly what they mean on any other topic. A group
created at ``earliest`` is given the history by copying it, once, from the archive into
its queue (:func:`copy_history`); a group created at ``latest`` is a plain group. Nobody
consumes the archive otherwise: acks on it (the copy's) are only flow control, nothing
is removed from it but by retention, and nack/reject do not apply.

The race between binding the new group and copying is closed at-least-once:

1. the group's queue is declared and bound first: from then on every message sent
   reaches it directly;
2. after :data:`GRACE` seconds a marker is appended to the archive (confirmed), so every
   message routed before the binding took effect is in the archive before the marker;
3. the archive is copied from its first entry up to the marker.

Nothing is lost: a message is routed before the binding (it is in the archive, before
the marker) or after it (it is in the queue). A message sent within the grace window,
between the binding and the marker, is in both and is delivered twice (same message
id): the duplicates are the messages sent during about ``GRACE`` plus one round trip.
The copies are queued behind the messages sent while the copy runs, so the group sees
history and live messages interleaved around that moment, not in send order. Two clients
creating the same new group at once may both copy: the history then arrives twice.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

import pika
import pika.exceptions as pe
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from ._admin import scratch
from ._names import MARKER_HEADER
from ._private import underlying
from ._producer import KEY_HEADER, Confirms

__all__ = ["GRACE", "archive_arguments", "copy_history", "copied_properties",
           "segment_bytes"]

# Seconds between binding a new group and marking the archive's end: a message routed
# just before the binding is on its way to the stream for well under a millisecond on
# one node and a few on a cluster; 0.1 s covers scheduling hiccups, and bounds the
# duplicates to what is sent in that window.
GRACE = 0.1
# Archive entries handed to the copy before it acks (flow control only): one publisher
# confirm wait per 1000 copies, as the producer's batches.
COPY_PREFETCH = 1000
# RabbitMQ's default segment size (x-stream-max-segment-size-bytes), the upper bound.
_DEFAULT_SEGMENT = 500_000_000
_MIN_SEGMENT = 1 << 20
# Headers a stream adds to what it delivers, not part of the message.
_STREAM_HEADERS = ("x-stream-offset",)


def _nothing() -> None:
    return None


def segment_bytes(max_bytes: int) -> int:
    """The archive's segment size for a ``max_bytes`` limit: a quarter of it, within
    1 MiB .. 500 MB. Retention drops whole segments, never the one being written, so the
    archive may hold up to one segment (a quarter) beyond ``max_bytes``; at least 1 MiB
    so a small limit does not make a file per few messages."""
    return min(_DEFAULT_SEGMENT, max(_MIN_SEGMENT, max_bytes // 4))


def archive_arguments(max_age: int, max_bytes: int) -> dict[str, Any]:
    """The stream queue arguments of an archive kept ``max_age`` seconds and at most
    ``max_bytes`` bytes (give or take a segment)."""
    return {
        "x-queue-type": "stream",
        "x-max-age": f"{max_age}s",
        "x-max-length-bytes": max_bytes,
        "x-stream-max-segment-size-bytes": segment_bytes(max_bytes),
    }


def declare_archive(channel: BlockingChannel, archive: str, exchange: str, max_age: int,
                    max_bytes: int) -> None:
    """Declare the archive stream and bind it to the topic's exchange (every key)."""
    channel.queue_declare(archive, durable=True,
                          arguments=archive_arguments(max_age, max_bytes))
    channel.queue_bind(archive, exchange, "#")


def copied_properties(routing_key: str, props: pika.BasicProperties,
                      now: float) -> pika.BasicProperties | None:
    """The properties of the copy of an archive entry, or None when it is not copied
    (a marker, or a message whose TTL ran out while archived).

    The copy goes to the group's queue through the default exchange, so its routing key
    is the queue's name: the message's key travels in ``x-mqkit-key`` (the consumer
    restores it and removes the header). The stream's own headers are removed; a TTL
    (``expiration``) is shortened by the time spent since the send (``timestamp``,
    whole seconds), so the copy does not live longer than the original would have.
    """
    headers = dict(props.headers or {})
    if MARKER_HEADER in headers:
        return None
    for name in _STREAM_HEADERS:
        headers.pop(name, None)
    headers[KEY_HEADER] = routing_key
    expiration = props.expiration
    if expiration is not None and props.timestamp is not None:
        left = int(expiration) - math.floor((now - props.timestamp) * 1000)
        if left <= 0:
            return None
        expiration = str(left)
    return pika.BasicProperties(
        content_type=props.content_type, content_encoding=props.content_encoding,
        headers=headers, delivery_mode=props.delivery_mode, priority=props.priority,
        correlation_id=props.correlation_id, reply_to=props.reply_to,
        expiration=expiration, message_id=props.message_id, timestamp=props.timestamp,
        type=props.type, user_id=props.user_id, app_id=props.app_id)


def _append_marker(connection: BlockingConnection, archive: str, marker: str) -> None:
    with scratch(connection) as channel:
        channel.confirm_delivery()
        channel.basic_publish("", archive, b"", pika.BasicProperties(
            headers={MARKER_HEADER: marker}, delivery_mode=2))


def copy_history(connection: BlockingConnection, archive: str, queue: str, *,
                 stall: float, grace: float = GRACE) -> int:
    """Copy the archive, from its first entry up to a marker appended now, into
    ``queue`` (already bound: see the module docstring), confirmed; the number copied.

    Blocks for ``grace`` plus the copy: one confirm round trip per
    :data:`COPY_PREFETCH` entries. Raises ``pika.exceptions.AMQPChannelError`` when no
    entry arrives for ``stall`` seconds before the marker, and the channel's error when
    the broker refuses a copy (nothing is retried: the caller deletes the half-filled
    queue). Not thread-safe: call under the admin link's lock.
    """
    time.sleep(grace)
    marker = uuid.uuid4().hex
    _append_marker(connection, archive, marker)
    entries: list[tuple[int, str, pika.BasicProperties, bytes]] = []

    def on_entry(ch: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
        if not entries:  # process_data_events waits out its time limit unless woken
            connection.add_callback_threadsafe(_nothing)
        entries.append((method.delivery_tag, method.routing_key, props, body))

    with scratch(connection) as reader, scratch(connection) as writer:
        confirms = Confirms(lambda: connection.add_callback_threadsafe(_nothing))
        underlying(writer).confirm_delivery(confirms.on_confirm)
        reader.basic_qos(prefetch_count=COPY_PREFETCH)
        # On the underlying channel, as the registry's replay (see ._private): closing a
        # BlockingChannel's consumer would requeue undispatched deliveries, which a
        # stream answers by closing the connection.
        underlying(reader).basic_consume(archive, on_entry, auto_ack=False,
                                         arguments={"x-stream-offset": "first"})
        copied = 0
        done = False
        progress = time.monotonic()
        while not done:
            if not entries:
                remaining = progress + stall - time.monotonic()
                if remaining <= 0:
                    raise pe.AMQPChannelError(
                        f"copy of {archive!r} into {queue!r}: no entry for {stall}s")
                connection.process_data_events(time_limit=remaining)
                continue
            progress = time.monotonic()
            batch = entries[:]
            del entries[:]
            first = confirms.next_tag
            now = time.time()
            publish = underlying(writer).basic_publish
            for _, routing_key, props, body in batch:
                headers = props.headers or {}
                if headers.get(MARKER_HEADER) in (marker, marker.encode()):
                    done = True
                    break
                copy = copied_properties(routing_key, props, now)
                if copy is None:
                    continue
                publish("", queue, body, copy)
                confirms.pending.add(confirms.next_tag)
                confirms.next_tag += 1
            _wait_confirms(connection, confirms, first, stall)
            copied += confirms.next_tag - first
            # Flow control only: a stream removes nothing acked.
            underlying(reader).basic_ack(batch[-1][0], multiple=True)
        return copied


def _wait_confirms(connection: BlockingConnection, confirms: Confirms, first: int,
                   timeout: float) -> None:
    last = confirms.next_tag - 1
    deadline = time.monotonic() + timeout
    while any(first <= t <= last for t in confirms.pending):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise pe.AMQPChannelError(f"no publisher confirm within {timeout}s")
        connection.process_data_events(time_limit=remaining)
    if any(first <= t <= last for t in confirms.nacked):
        raise pe.AMQPChannelError("the broker nacked a copy (not stored)")
