"""Declarations and the registry of topics and groups.

AMQP 0-9-1 cannot list exchanges, queues or bindings, and the management plugin may not
be enabled. mqkit therefore records every topic and group it creates or deletes in a
durable *stream* queue, ``mqkit.registry`` (append-only, read non-destructively by any
number of readers). Listing replays the stream up to a marker published just before,
then confirms each name with a passive declare, so names deleted by other tools are not
listed. Exchanges and queues made by other tools are not listed (``topic_exists`` and
``open_*`` still see them).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pika
import pika.exceptions as pe
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from ._names import REGISTRY_QUEUE, Names
from ._options import RabbitOptions
from ._private import underlying

__all__ = ["declare_group", "exists", "read_registry", "record"]


def group_arguments(options: RabbitOptions) -> dict[str, Any]:
    """The arguments of a group's queue: its type, and what that type takes."""
    args: dict[str, Any] = {"x-queue-type": options.queue_type}
    if options.quorum_size is not None:
        args["x-quorum-initial-group-size"] = options.quorum_size
    if options.max_priority:
        args["x-max-priority"] = options.max_priority
    return args


def declare_group(channel: BlockingChannel, names: Names, options: RabbitOptions,
                  topic: str, group: str) -> None:
    """Declare the group's durable queue and bind it to the topic exchange."""
    queue = names.queue(topic, group)
    channel.queue_declare(queue, durable=True, arguments=group_arguments(options))
    channel.queue_bind(queue, names.exchange(topic), options.binding_key)


@contextlib.contextmanager
def scratch(connection: BlockingConnection) -> Iterator[BlockingChannel]:
    """A short-lived channel, for operations whose failure closes their channel."""
    channel = connection.channel()
    try:
        yield channel
    finally:
        if channel.is_open:
            with contextlib.suppress(pe.AMQPError):
                channel.close()


def exists(connection: BlockingConnection, kind: str, name: str) -> bool:
    """Whether an exchange (``kind="exchange"``) or queue exists: a passive declare."""
    try:
        with scratch(connection) as channel:
            if kind == "exchange":
                channel.exchange_declare(name, passive=True)
            else:
                channel.queue_declare(name, passive=True)
    except pe.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return False
        raise
    return True


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


def read_registry(connection: BlockingConnection,
                  timeout: float) -> tuple[set[str], set[tuple[str, str]]]:
    """Replay the registry: the topics and (topic, group) pairs created and not deleted."""
    marker = uuid.uuid4().hex
    record(connection, "marker", marker)
    topics: set[str] = set()
    groups: set[tuple[str, str]] = set()
    done = False

    def on_entry(ch: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
        nonlocal done
        ch.basic_ack(method.delivery_tag)  # every entry, even after the marker
        h = props.headers or {}
        op, topic, group = str(h.get("op")), str(h.get("topic")), str(h.get("group") or "")
        if done:
            return
        if op == "marker" and topic == marker:
            done = True
            connection.add_callback_threadsafe(lambda: None)  # end the wait below now
        elif group:
            (groups.add if op == "create" else groups.discard)((topic, group))
        elif op == "create":
            topics.add(topic)
        elif op == "delete":
            topics.discard(topic)
            for pair in [p for p in groups if p[0] == topic]:
                groups.discard(pair)

    with scratch(connection) as channel:
        # Streams need a prefetch and manual acks; 1000 entries per round trip. The
        # consumer is registered on the underlying channel (see ._private): BlockingChannel
        # would nack undispatched deliveries when the channel closes, which a stream
        # refuses by closing the whole connection.
        channel.basic_qos(prefetch_count=1000)
        underlying(channel).basic_consume(REGISTRY_QUEUE, on_entry, auto_ack=False,
                                          arguments={"x-stream-offset": "first"})
        deadline = time.monotonic() + timeout
        while not done:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise pe.AMQPChannelError("registry replay timed out")
            connection.process_data_events(time_limit=remaining)
    return topics, groups
