"""The one place mqkit_rabbitmq uses pika's private API, pinned to the pika it runs.

pika's blocking adapter wraps the asynchronous ``pika.channel.Channel`` (public API,
the channel of ``SelectConnection``) in a ``BlockingChannel`` and keeps it in the
private attribute ``BlockingChannel._impl``; no public call returns it. The driver
needs four things that only that underlying channel does, so :func:`underlying`
reaches it here and nowhere else (the methods then called on it are public
``pika.channel.Channel`` API):

``confirm_delivery(ack_nack_callback)`` (the producer)
    ``BlockingChannel.confirm_delivery()`` takes no callback: once it is on,
    ``BlockingChannel.basic_publish`` waits for each message's confirm, one round trip
    per message. With a callback a batch is published at once and confirmed by the
    broker's (usually ``multiple``) acks, one wait per batch.
``add_on_close_callback(callback)`` (the producer)
    ``BlockingChannel`` keeps why the broker closed it private and raises it only from
    its own calls, not from ``BlockingConnection.process_data_events``, which the
    confirm wait runs: the callback hands the producer that reason, so a batch whose
    channel the broker closed fails at once with it instead of waiting out its timeout.
``basic_publish`` (the producer)
    ``BlockingChannel.basic_publish`` runs the I/O loop until the socket's output
    buffer is empty after *every* message (``_flush_output``): a write per message.
    The underlying channel's only queues the frames; the batch goes out in one write.
``basic_consume`` (the admin's replay of the ``mqkit.registry`` stream)
    A consumer made by ``BlockingChannel.basic_consume`` is cancelled by
    ``BlockingChannel.close()``, which rejects with ``requeue`` every delivery
    received but not yet dispatched; a stream queue answers that by closing the whole
    connection (the admin's). The underlying channel's close only sends
    ``Basic.Cancel`` and ``Channel.Close``.

:data:`REQUIRED` lists what is relied on; ``tests/test_rabbitmq_private.py`` fails naming
the attribute or parameter when a pika other than :data:`PINNED` (pyproject's pin)
changes one, and when the installed version moves.
"""

from __future__ import annotations

import pika.channel
from pika.adapters.blocking_connection import BlockingChannel

__all__ = ["CHANNEL_METHODS", "PINNED", "REQUIRED", "underlying"]

PINNED = "1.4.4"
"""The pika version this module was checked against (pyproject's ``pika==``)."""

REQUIRED = "_impl"
"""The private attribute of ``BlockingChannel`` used here: its ``pika.channel.Channel``."""

CHANNEL_METHODS: dict[str, tuple[str, ...]] = {
    "confirm_delivery": ("ack_nack_callback",),
    "add_on_close_callback": ("callback",),
    "basic_publish": ("exchange", "routing_key", "body", "properties"),
    "basic_consume": ("queue", "on_message_callback", "auto_ack", "arguments"),
}
"""The (public) ``pika.channel.Channel`` methods called on it, with the parameters used."""


def underlying(channel: BlockingChannel) -> pika.channel.Channel:
    """The ``pika.channel.Channel`` that ``channel`` drives (same connection, same
    channel number). Call it only under the lock that serialises ``channel``'s use."""
    impl = channel._impl
    assert isinstance(impl, pika.channel.Channel), type(impl)
    return impl
