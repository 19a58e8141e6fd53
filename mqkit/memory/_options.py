"""``memory://`` options and the capabilities they imply."""

from __future__ import annotations

from dataclasses import dataclass

from .._capabilities import Capabilities, Support
from .._validation import check_int, check_seconds

__all__ = ["MemoryOptions", "capabilities"]

_NATIVE = Support.NATIVE


@dataclass(frozen=True, slots=True)
class MemoryOptions:
    """The ``memory://`` query parameters, validated.

    ``max_message_size`` (bytes) and ``max_batch`` (messages per send) are only declared in
    the capabilities, for the portable layer to enforce: they default to common broker
    limits (1 MiB, like SQS's and Kafka's defaults) so that code tested on memory:// is not
    surprised elsewhere. ``dedup_window``: seconds during which a message id already sent to
    a topic is dropped (120 s is the window of NATS JetStream's and SQS FIFO's dedup).
    ``max_retained``: the most messages a topic keeps for groups created with
    ``start="earliest"``; ``None`` (the default) keeps every message since the topic was
    created, for the whole life of the process.
    """

    max_message_size: int = 1_048_576
    max_batch: int = 10_000
    dedup_window: float = 120.0
    max_retained: int | None = None

    def __post_init__(self) -> None:
        check_int("memory:// max_message_size", self.max_message_size, 1)
        check_int("memory:// max_batch", self.max_batch, 1)
        check_seconds("memory:// dedup_window", self.dedup_window)
        if self.max_retained is not None:
            check_int("memory:// max_retained", self.max_retained, 0)


def capabilities(options: MemoryOptions) -> Capabilities:
    """What memory:// does: everything natively but dead letters and request/reply (the
    portable layer builds both from sends), and nothing survives the process."""
    return Capabilities(
        backend="memory", nack=_NATIVE, nack_delay=_NATIVE, delay=_NATIVE,
        dead_letter=Support.EMULATED, ordering=_NATIVE, groups=_NATIVE,
        competing_consumers=_NATIVE, replay=_NATIVE, priority=_NATIVE, ttl=_NATIVE,
        dedup=_NATIVE, request_reply=Support.EMULATED, lease_extension=_NATIVE,
        persistence=Support.UNSUPPORTED, redelivery_on_close=_NATIVE, admin_stats=_NATIVE,
        purge=_NATIVE, release=_NATIVE, timestamp=_NATIVE,
        max_message_size=options.max_message_size, max_headers=None,
        max_batch=options.max_batch, max_delay=None, delivery="at-least-once")
