"""Plain data passed across the driver SPI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["DEAD_LETTER_GROUP", "GroupStats", "StartPosition", "SubscriptionOptions"]

StartPosition = Literal["latest", "earliest"]

DEAD_LETTER_GROUP = "dead-letters"
"""The group mqkit creates on every dead-letter topic (and reads dead letters from), so
dead letters are retained even on backends that drop what nobody subscribed to; a
driver whose broker dead-letters natively (SQS redrive) delivers into it."""


@dataclass(frozen=True, slots=True)
class SubscriptionOptions:
    """How the portable layer asks a driver to subscribe.

    ``prefetch``: the most unsettled deliveries this subscription may hold at once.
    ``lease``: seconds a delivery stays invisible to other consumers before it is handed
    out again (visibility timeout, ack wait, reclaim idle time). ``start``: where a newly
    created group begins. ``create_group``: create the group when missing.
    ``consumer_name``: unique per consumer instance, for backends that name members.
    """

    prefetch: int = 100
    lease: float = 30.0
    start: StartPosition = "latest"
    create_group: bool = True
    consumer_name: str = "mqkit"


@dataclass(frozen=True, slots=True)
class GroupStats:
    """A group's backlog.

    ``depth``: messages the group has not acked yet (for log backends this is the lag:
    end offset minus committed offset). ``in_flight``: of those, how many are delivered
    and unsettled, when the backend can tell (``None`` otherwise). Each adapter's docs say
    what its figure covers (RabbitMQ without the management plugin cannot see deliveries
    held by other clients' consumers).
    """

    topic: str
    group: str
    depth: int
    in_flight: int | None = None
