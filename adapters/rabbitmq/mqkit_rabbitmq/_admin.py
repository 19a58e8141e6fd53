"""Declarations, and the admin's short-lived channels and passive checks.

Listing reads the registry (``._registry``), then confirms each name with a passive
declare (:func:`exists`), so names deleted by other tools are not listed. Exchanges and
queues made by other tools are not listed (``topic_exists`` and ``open_*`` still see them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pika.exceptions as pe
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from ._names import Names
from ._options import RabbitOptions

__all__ = ["declare_group", "exists", "scratch"]


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
