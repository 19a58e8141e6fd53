"""The memory broker's semantics as a pure state machine: no locks, no clock, no I/O.

Every method takes ``now`` (``time.monotonic()`` seconds) from its caller, which holds
the broker's lock. A :class:`Topic` numbers, deduplicates and logs what is sent to it;
each of its :class:`Group` objects keeps its own copy of the queue:

* ``fresh``: never-delivered messages of priority 0 that are due, in send order (a
  deque: the hot path is ``extend`` on send and ``popleft`` on receive);
* ``ready``: every other deliverable message (prioritised, due after a delay, or
  redelivered), a heap by (-priority, send sequence); ``take`` merges it with ``fresh``,
  so ready messages always go out by priority, then in send order: a redelivered
  message takes its original place, ahead of messages sent after it;
* ``delayed``: a heap by due time (delayed sends and nacks with a delay);
* ``leases``: a heap of lease batches by deadline, one batch per receive (or per
  ``extend_lease`` call), so lease bookkeeping costs one heap push per batch; an expired
  lease returns its message to ``ready`` the next time the group is touched.

A :class:`Lease` is the delivery's handle: settling it needs no lookup, and a lease that
was settled or has expired ignores later settles and extensions, so a stale handle never
touches the message's next delivery. Expiry is applied when the group is next read
(``take``, ``depth``) after the deadline, which a waiting receiver does at the deadline;
until then a late settle still counts, as a late DeleteMessage does on SQS.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Iterable, Sequence

from .._message import Delivery, Message

__all__ = ["Entry", "Group", "Lease", "Member", "Topic"]

_INF = float("inf")
# A new lease-batch heap is rebuilt without its settled batches when it grows past
# twice the live ones plus this slack: amortised O(1), and memory bounded by live leases.
_COMPACT_SLACK = 64


class Entry:
    """A message as the topic accepted it; shared by every group."""

    __slots__ = ("broker_id", "due", "expires", "message", "rank", "seq", "timestamp")

    def __init__(self, seq: int, message: Message, timestamp: float, now: float) -> None:
        self.seq = seq
        self.message = message
        self.timestamp = timestamp
        self.broker_id = str(seq)
        self.rank = -(message.priority or 0)
        self.due = now + message.delay if message.delay else 0.0
        self.expires = now + message.ttl if message.ttl else None


class Member:
    """One subscription's state in its group: its limits and how many leases it holds."""

    __slots__ = ("closed", "group", "held", "lease", "prefetch")

    def __init__(self, group: Group, prefetch: int, lease: float) -> None:
        self.group = group
        self.prefetch = prefetch
        self.lease = lease
        self.held = 0
        self.closed = False


class _Batch:
    __slots__ = ("leases", "live")

    def __init__(self) -> None:
        self.leases: list[Lease] = []
        self.live = 0


class Lease:
    """One delivery of one message to one member: the delivery's handle."""

    __slots__ = ("batch", "count", "entry", "live", "member")

    def __init__(self, entry: Entry, count: int, member: Member, batch: _Batch) -> None:
        self.entry = entry
        self.count = count
        self.member = member
        self.batch = batch
        self.live = True

    def __repr__(self) -> str:
        state = "leased" if self.live else "settled or expired"
        return f"<memory lease of #{self.entry.seq}, delivery {self.count}, {state}>"


class Group:
    """One group's queue over its topic (see the module docstring)."""

    def __init__(self, topic: str, name: str) -> None:
        self.topic = topic
        self.name = name
        self.fresh: deque[Entry] = deque()
        self.ready: list[tuple[int, int, Entry, int]] = []  # (rank, seq, entry, count)
        self.delayed: list[tuple[float, int, Entry, int]] = []  # (due, seq, entry, count)
        self.leases: list[tuple[float, int, _Batch]] = []  # (deadline, tiebreak, batch)
        self.in_flight = 0
        self.deleted = False
        self.has_ttl = False
        self._live_batches = 0
        self._tiebreak = itertools.count()

    # -- arrivals -----------------------------------------------------------------------

    def add(self, entries: Sequence[Entry], now: float, plain: bool) -> None:
        """Queue newly sent ``entries`` (``plain``: none has a delay, TTL or priority)."""
        if plain:
            self.fresh.extend(entries)
            return
        for entry in entries:
            self._requeue(entry, 0, now, entry.due)
            if entry.expires is not None:
                self.has_ttl = True

    def _requeue(self, entry: Entry, count: int, now: float, due: float) -> None:
        if due > now:
            heapq.heappush(self.delayed, (due, entry.seq, entry, count))
        elif count or entry.rank:
            heapq.heappush(self.ready, (entry.rank, entry.seq, entry, count))
        else:
            self.fresh.append(entry)

    # -- receiving ----------------------------------------------------------------------

    def take(self, member: Member, max_messages: int, now: float) -> list[Delivery]:
        """Lease up to ``max_messages`` ready messages to ``member`` (never more than its
        prefetch room), by priority then send order; drop those whose TTL ran out."""
        self.tidy(now)
        room = min(max_messages, member.prefetch - member.held)
        fresh, ready, topic = self.fresh, self.ready, self.topic
        if room <= 0 or not (fresh or ready):
            return []
        batch = _Batch()
        leases = batch.leases
        out: list[Delivery] = []
        while len(out) < room:
            if ready and (not fresh or (ready[0][0], ready[0][1]) < (0, fresh[0].seq)):
                _, _, entry, count = heapq.heappop(ready)
            elif fresh:
                entry, count = fresh.popleft(), 0
            else:
                break
            if entry.expires is not None and entry.expires <= now:
                continue  # TTL ran out unread: dropped
            lease = Lease(entry, count + 1, member, batch)
            leases.append(lease)
            out.append(Delivery(entry.message, topic, lease, count + 1, entry.timestamp,
                                entry.broker_id))
        if out:
            taken = len(out)
            batch.live = taken
            member.held += taken
            self.in_flight += taken
            self._push_batch(now + member.lease, batch)
        return out

    def next_due(self) -> float:
        """When the next delayed message is due or the next lease expires (after
        :meth:`tidy`); ``inf`` when neither is pending."""
        due = self.delayed[0][0] if self.delayed else _INF
        return min(due, self.leases[0][0]) if self.leases else due

    def tidy(self, now: float) -> None:
        """Make due delayed messages ready, and expired leases' messages ready again."""
        delayed, ready = self.delayed, self.ready
        while delayed and delayed[0][0] <= now:
            _, seq, entry, count = heapq.heappop(delayed)
            heapq.heappush(ready, (entry.rank, seq, entry, count))
        leases = self.leases
        while leases:
            deadline, _, batch = leases[0]
            if batch.live and deadline > now:
                break
            heapq.heappop(leases)
            for lease in batch.leases if batch.live else ():
                if lease.live and lease.batch is batch:
                    self._drop(lease)
                    heapq.heappush(ready, (lease.entry.rank, lease.entry.seq, lease.entry,
                                           lease.count))

    # -- settling -----------------------------------------------------------------------

    def settle(self, deliveries: Iterable[Delivery], requeue: bool, delay: float | None,
               now: float, *, release: bool = False) -> bool:
        """Ack or reject (``requeue`` false), or nack, the deliveries still leased from
        this group; ignore the others (expired, already settled, foreign). Return whether
        a message was queued again. ``release`` (with ``requeue``): the next delivery
        keeps this one's count, and comes in send order (before later messages)."""
        self.tidy(now)  # a lease past its deadline is no longer held: settling it is a no-op
        queued = False
        for delivery in deliveries:
            lease = delivery.handle
            if type(lease) is not Lease or not lease.live or lease.member.group is not self:
                continue
            self._drop(lease)
            if release:
                entry = lease.entry
                heapq.heappush(self.ready, (entry.rank, entry.seq, entry, lease.count - 1))
                queued = True
            elif requeue:
                self._requeue(lease.entry, lease.count, now, now + delay if delay else 0.0)
                queued = True
        return queued

    def extend(self, deliveries: Iterable[Delivery], seconds: float, now: float) -> None:
        """Move the live leases among ``deliveries`` to a deadline of ``now + seconds``."""
        batch = _Batch()
        for delivery in deliveries:
            lease = delivery.handle
            if type(lease) is not Lease or not lease.live or lease.member.group is not self:
                continue
            self._unbatch(lease)
            lease.batch = batch
            batch.leases.append(lease)
        if batch.leases:
            batch.live = len(batch.leases)
            self._push_batch(now + seconds, batch)

    def release(self, member: Member, now: float) -> bool:
        """Queue again, at once, every message leased to ``member``; return whether any."""
        released = False
        for _, _, batch in self.leases:
            for lease in batch.leases:
                if lease.live and lease.batch is batch and lease.member is member:
                    self._drop(lease)
                    self._requeue(lease.entry, lease.count, now, 0.0)
                    released = True
        return released

    def _drop(self, lease: Lease) -> None:
        lease.live = False
        lease.member.held -= 1
        self.in_flight -= 1
        self._unbatch(lease)

    def _unbatch(self, lease: Lease) -> None:
        batch = lease.batch
        batch.live -= 1
        if batch.live == 0:
            self._live_batches -= 1

    def _push_batch(self, deadline: float, batch: _Batch) -> None:
        heapq.heappush(self.leases, (deadline, next(self._tiebreak), batch))
        self._live_batches += 1
        if len(self.leases) > 2 * self._live_batches + _COMPACT_SLACK:
            self.leases = [item for item in self.leases if item[2].live]
            heapq.heapify(self.leases)

    # -- admin --------------------------------------------------------------------------

    def depth(self, now: float) -> int:
        """Messages not acked yet: ready, delayed and leased (expired TTLs excluded)."""
        self.tidy(now)
        if self.has_ttl:
            self._prune_expired(now)
        return len(self.fresh) + len(self.ready) + len(self.delayed) + self.in_flight

    def _prune_expired(self, now: float) -> None:
        # O(queue length); only groups that ever held a message with a TTL pay it.
        def alive(entry: Entry) -> bool:
            return entry.expires is None or entry.expires > now

        self.fresh = deque(e for e in self.fresh if alive(e))
        self.ready = [item for item in self.ready if alive(item[2])]
        self.delayed = [item for item in self.delayed if alive(item[2])]
        heapq.heapify(self.ready)
        heapq.heapify(self.delayed)

    def purge(self) -> None:
        """Drop the ready and delayed messages; leased ones stay with their consumers."""
        self.fresh.clear()
        self.ready.clear()
        self.delayed.clear()


class Topic:
    """A named log: numbers, timestamps and deduplicates messages, feeds its groups."""

    def __init__(self, name: str, max_retained: int | None) -> None:
        self.name = name
        self.groups: dict[str, Group] = {}
        self.log: deque[Entry] = deque(maxlen=max_retained)
        self._seq = itertools.count(1)
        self._seen: set[str] = set()
        self._seen_at: deque[tuple[float, list[str]]] = deque()  # (send time, ids)

    def append(self, messages: Sequence[Message], now: float, timestamp: float,
               dedup_window: float) -> tuple[list[Entry], bool]:
        """Accept ``messages``, dropping any whose id was accepted within
        ``dedup_window`` seconds; return the new entries and whether all are plain (no
        delay, TTL or priority)."""
        seen, seen_at = self._seen, self._seen_at
        while seen_at and seen_at[0][0] <= now - dedup_window:
            seen.difference_update(seen_at.popleft()[1])
        ids: list[str] = []
        entries: list[Entry] = []
        plain = True
        seq = self._seq
        for message in messages:
            mid = message.id
            if mid is not None and dedup_window > 0:
                if mid in seen:
                    continue
                seen.add(mid)
                ids.append(mid)
            entry = Entry(next(seq), message, timestamp, now)
            if plain and (entry.rank or entry.due or entry.expires is not None):
                plain = False
            entries.append(entry)
        if ids:
            seen_at.append((now, ids))
        if self.log.maxlen != 0:
            self.log.extend(entries)
        return entries, plain

    def new_group(self, name: str, earliest: bool, now: float) -> Group:
        """A group fed from now on, or from every retained message when ``earliest``."""
        group = Group(self.name, name)
        if earliest:
            kept = [e for e in self.log if e.expires is None or e.expires > now]
            group.add(kept, now, all(not (e.rank or e.due or e.expires) for e in kept))
        return group
