"""Emulated message TTL: an expiry header stamped at send, honoured at receive.

A backend whose broker has no per-message expiry (Kafka, NATS JetStream, Redis streams,
SQS) declares ``ttl`` as :attr:`~mqkit.Support.EMULATED`; the portable layer then does
the rest, the same way for every such backend and both faces:

- **send** (:func:`stamp`): a message with ``ttl`` gets the header ``mqkit-expires``
  (the wall-clock deadline, milliseconds since the Unix epoch, as decimal text) and goes
  to the driver without ``ttl``;
- **receive** (:func:`split_expired`): a delivery whose deadline has passed is never
  handed to the caller; the consumer acks it away (so it is not redelivered and leaves
  the group's depth once settled) and counts it in ``consumer.expired``.

What differs from a native TTL: the message occupies the broker (and counts in depth)
until a consumer of each group reads and drops it; a consumer that never reads never
drops it. The deadline is the sender's clock plus ``ttl``, compared with the receiver's
clock: keep the hosts' clocks in sync (NTP) to within what your TTLs can tolerate. A
dead-lettered copy drops the header (a dead letter is kept, not expired).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TypeVar

from ._message import Delivery, Message

__all__ = ["EXPIRES", "split_expired", "stamp"]

EXPIRES = "mqkit-expires"
"""The header carrying an emulated TTL's deadline (ms since the epoch, decimal)."""

D = TypeVar("D", bound=Delivery)


def stamp(message: Message, headers: dict[str, str], now: float | None = None) -> None:
    """Add ``message.ttl``'s deadline to ``headers`` (a copy the caller owns)."""
    assert message.ttl is not None
    clock = time.time() if now is None else now
    headers[EXPIRES] = str(int((clock + message.ttl) * 1000))


def split_expired(deliveries: Sequence[D], now: float | None = None
                  ) -> tuple[list[D], list[D]]:
    """``(live, expired)``: the deliveries whose ``mqkit-expires`` deadline is still
    ahead (or that have none, or an unreadable one: never drop what we cannot read)
    and those whose deadline has passed."""
    live: list[D] = []
    expired: list[D] = []
    now_ms: float | None = None
    for delivery in deliveries:
        deadline = delivery.message.headers.get(EXPIRES)
        if deadline is not None:
            if now_ms is None:
                now_ms = (time.time() if now is None else now) * 1000
            try:
                passed = int(deadline) <= now_ms
            except ValueError:
                passed = False
            if passed:
                expired.append(delivery)
                continue
        live.append(delivery)
    return live, expired
