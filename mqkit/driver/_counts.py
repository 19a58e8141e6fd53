"""Delivery counts a driver keeps itself, for brokers whose own count falls short."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

__all__ = ["DeliveryCounts"]


class DeliveryCounts:
    """How many times one subscription instance handed out each message, bounded.

    For a broker that keeps no delivery count, or one that is sometimes low (a requeue
    it does not count, a server seen to report 1 for a redelivery): a message that comes
    back to the same instance counts at least one more than last time, so the retry
    policy's dead-lettering, which relies on the count, always makes progress. Keyed by
    whatever identifies a message across redeliveries (a message id, a stream sequence).
    Holds at most ``limit`` keys, forgetting the least recently seen first (about
    100 bytes each), so memory stays bounded on an endless stream; a forgotten message
    falls back to the broker's count. Not thread-safe: one per subscription, used under
    its lock.
    """

    __slots__ = ("_limit", "_seen")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self._limit = limit
        self._seen: OrderedDict[Hashable, int] = OrderedDict()

    def next(self, key: Hashable, at_least: int = 1) -> int:
        """The count of a delivery of ``key`` now: one more than the last one seen here,
        and no less than ``at_least`` (the broker's own count, where it has one)."""
        count = max(at_least, self._seen.pop(key, 0) + 1)
        self._seen[key] = count
        if len(self._seen) > self._limit:
            self._seen.popitem(last=False)
        return count

    def get(self, key: Hashable) -> int:
        """The last count of ``key`` seen here (0: none), without counting one more."""
        return self._seen.get(key, 0)

    def forget(self, key: Hashable) -> None:
        """``key`` is settled for good: stop counting it."""
        self._seen.pop(key, None)

    def __len__(self) -> int:
        return len(self._seen)
