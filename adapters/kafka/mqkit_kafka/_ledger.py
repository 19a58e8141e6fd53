"""Which offsets a subscription may commit: the contiguous settled prefix (sans-I/O).

Kafka commits one offset per partition: "everything before this is processed". mqkit
settles messages one by one and out of order, so each partition keeps the offsets it
delivered, in order, and the set of those settled; the commit point is the offset after
the longest settled prefix. An unsettled message holds back every commit after it, so
a crash or a rebalance redelivers it (and any settled ones behind it: at-least-once).

Each assignment of a partition gets an epoch; a delivery of an older epoch (its
partition was revoked in between) is ignored when settled, because the partition's new
owner redelivers it from the committed offset.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

__all__ = ["Ledger"]


@dataclass
class _Partition:
    epoch: int
    pending: deque[int] = field(default_factory=deque)
    settled: set[int] = field(default_factory=set)
    next_commit: int | None = None   # the offset to commit, once it moved
    committed: int | None = None     # the last offset committed
    position: int | None = None      # after the last delivered offset


class Ledger:
    """Delivered and settled offsets of every assigned partition."""

    def __init__(self) -> None:
        self._parts: dict[Hashable, _Partition] = {}
        self._epoch = 0

    def assign(self, tp: Hashable) -> int:
        """Start a fresh epoch for ``tp``; return it."""
        self._epoch += 1
        self._parts[tp] = _Partition(self._epoch)
        return self._epoch

    def epoch(self, tp: Hashable) -> int:
        part = self._parts.get(tp)
        if part is None:
            return self.assign(tp)
        return part.epoch

    def deliver(self, tp: Hashable, offset: int) -> int:
        """Record ``offset`` as handed out; return the epoch to keep with it."""
        part = self._parts.get(tp)
        if part is None:
            self.assign(tp)
            part = self._parts[tp]
        part.pending.append(offset)
        part.position = offset + 1
        return part.epoch

    def deliver_many(self, tp: Hashable, offsets: list[int]) -> None:
        """Record ``offsets`` (ascending) as handed out in ``tp``'s current epoch."""
        if not offsets:
            return
        part = self._parts.get(tp)
        if part is None:
            self.assign(tp)
            part = self._parts[tp]
        part.pending.extend(offsets)
        part.position = offsets[-1] + 1

    def settle(self, tp: Hashable, offset: int, epoch: int) -> bool:
        """Mark ``offset`` settled; False (and nothing done) when its epoch is stale."""
        part = self._parts.get(tp)
        if part is None or part.epoch != epoch:
            return False
        pending = part.pending
        if pending and pending[0] == offset and not part.settled:
            # In order, nothing settled ahead of it (the common case): the prefix grows
            # by this one offset.
            pending.popleft()
            part.next_commit = offset + 1
            return True
        part.settled.add(offset)
        while part.pending and part.pending[0] in part.settled:
            done = part.pending.popleft()
            part.settled.discard(done)
            part.next_commit = done + 1
        return True

    def to_commit(self, tps: Iterable[Hashable] | None = None) -> dict[Hashable, int]:
        """Offsets to commit: partitions whose settled prefix moved since last commit."""
        out = {}
        for tp in self._parts if tps is None else tps:
            part = self._parts.get(tp)
            if part is not None and part.next_commit is not None \
                    and part.next_commit != part.committed:
                out[tp] = part.next_commit
        return out

    def committed(self, offsets: dict[Hashable, int]) -> None:
        for tp, offset in offsets.items():
            part = self._parts.get(tp)
            if part is not None:
                part.committed = offset

    def position(self, tp: Hashable) -> int | None:
        """The offset after the last one delivered from ``tp`` (None: none delivered)."""
        part = self._parts.get(tp)
        return None if part is None else part.position

    def unsettled(self) -> int:
        return sum(len(p.pending) for p in self._parts.values())

    def detach(self, tp: Hashable) -> _Partition | None:
        """Take ``tp``'s state out (revoked): its outstanding deliveries become stale,
        unless :meth:`attach` puts the state back (the partition came back to us)."""
        return self._parts.pop(tp, None)

    def attach(self, tp: Hashable, state: _Partition) -> None:
        self._parts[tp] = state

    def partitions(self) -> list[Hashable]:
        return list(self._parts)
