"""The in-process broker behind ``memory://``: all state and semantics, no driver API.

One :class:`Broker` per name holds topics; a topic holds a bounded log (for groups that
start at the earliest message) and its groups; a group holds its messages in three
places: ``ready`` (a heap by priority, then send order), ``delayed`` (a heap by due time)
and ``leased`` (delivered, unsettled, with a deadline). Expired leases and due delays are
moved lazily on every call, and waiting receivers sleep on one condition variable until
a send, a settle or the next deadline — never a polling loop. Every method takes the
broker's lock, so the broker is safe from any thread.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from .._errors import NotFound
from .._message import Delivery, Message

__all__ = ["Broker"]


@dataclass(eq=False, slots=True)
class _Entry:
    seq: int
    message: Message
    timestamp: float
    expires: float | None


@dataclass(eq=False, slots=True)
class _Lease:
    entry: _Entry
    deadline: float
    sub: int


@dataclass(eq=False)
class _Group:
    ready: list[tuple[int, int, _Entry]] = field(default_factory=list)
    delayed: list[tuple[float, int, _Entry]] = field(default_factory=list)
    leased: dict[int, _Lease] = field(default_factory=dict)
    deadlines: list[tuple[float, int]] = field(default_factory=list)  # lazy lease heap
    counts: dict[int, int] = field(default_factory=dict)  # seq -> deliveries so far


@dataclass(eq=False)
class _Topic:
    log: deque[_Entry]
    groups: dict[str, _Group] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)  # message id -> first send time


def _ready(group: _Group, entry: _Entry) -> None:
    heapq.heappush(group.ready, (-(entry.message.priority or 0), entry.seq, entry))


class Broker:
    """One named in-process broker."""

    def __init__(self, max_retained: int) -> None:
        self._cond = threading.Condition()
        self._topics: dict[str, _Topic] = {}
        self._seq = itertools.count(1)
        self._handles = itertools.count(1)
        self._held: dict[int, int] = {}  # subscription id -> leased messages
        self._max_retained = max_retained

    # -- topics and groups ------------------------------------------------------------

    def _topic(self, name: str) -> _Topic:
        topic = self._topics.get(name)
        if topic is None:
            raise NotFound(f"topic {name!r} does not exist")
        return topic

    def _group(self, topic: str, group: str) -> _Group:
        found = self._topic(topic).groups.get(group)
        if found is None:
            raise NotFound(f"group {group!r} does not exist on topic {topic!r}")
        return found

    def check_topic(self, name: str) -> None:
        with self._cond:
            self._topic(name)

    def create_topic(self, name: str) -> None:
        with self._cond:
            self._topics.setdefault(name, _Topic(deque(maxlen=self._max_retained)))

    def delete_topic(self, name: str) -> None:
        with self._cond:
            self._topics.pop(name, None)
            self._cond.notify_all()  # waiting receivers wake up and raise NotFound

    def topics(self) -> list[str]:
        with self._cond:
            return list(self._topics)

    def has_topic(self, name: str) -> bool:
        with self._cond:
            return name in self._topics

    def create_group(self, topic: str, group: str, start: str) -> None:
        with self._cond:
            t = self._topic(topic)
            if group in t.groups:
                return
            g = t.groups[group] = _Group()
            if start == "earliest":
                now = time.time()
                for entry in t.log:
                    if entry.expires is None or entry.expires > now:
                        _ready(g, entry)

    def has_group(self, topic: str, group: str) -> bool:
        with self._cond:
            return group in self._topic(topic).groups

    def delete_group(self, topic: str, group: str) -> None:
        with self._cond:
            t = self._topics.get(topic)
            if t is not None:
                t.groups.pop(group, None)
                self._cond.notify_all()

    def groups(self, topic: str) -> list[str]:
        with self._cond:
            return list(self._topic(topic).groups)

    def stats(self, topic: str, group: str) -> tuple[int, int]:
        """(depth, in flight): messages not yet acked, and of those the leased ones."""
        with self._cond:
            g = self._group(topic, group)
            self._tidy(g, time.time())
            return len(g.ready) + len(g.delayed) + len(g.leased), len(g.leased)

    def purge(self, topic: str, group: str) -> None:
        """Drop the group's ready and delayed messages (leased ones stay with consumers)."""
        with self._cond:
            g = self._group(topic, group)
            for _, _, entry in g.ready + [(0, 0, e) for _, _, e in g.delayed]:
                g.counts.pop(entry.seq, None)
            g.ready.clear()
            g.delayed.clear()

    # -- messages ---------------------------------------------------------------------

    def send(self, topic: str, messages: Sequence[Message], dedup_window: float) -> None:
        """Append ``messages`` to the topic and to every group; drop repeated ids."""
        with self._cond:
            t = self._topic(topic)
            now = time.time()
            seen = t.seen
            while seen:  # forget ids older than the window (dict keeps insertion order)
                oldest = next(iter(seen))
                if now - seen[oldest] < dedup_window:
                    break
                del seen[oldest]
            groups = list(t.groups.values())
            for message in messages:
                if message.id is not None:
                    if message.id in seen:
                        continue
                    seen[message.id] = now
                entry = _Entry(next(self._seq), message, now,
                               now + message.ttl if message.ttl else None)
                t.log.append(entry)
                for g in groups:
                    if message.delay and message.delay > 0:
                        heapq.heappush(g.delayed, (now + message.delay, entry.seq, entry))
                    else:
                        _ready(g, entry)
            self._cond.notify_all()

    def _tidy(self, g: _Group, now: float) -> float | None:
        """Move due delayed messages and expired leases to ready; return the next deadline."""
        while g.delayed and g.delayed[0][0] <= now:
            _ready(g, heapq.heappop(g.delayed)[2])
        while g.deadlines:
            deadline, handle = g.deadlines[0]
            lease = g.leased.get(handle)
            if lease is None or lease.deadline != deadline:
                heapq.heappop(g.deadlines)  # settled or extended: stale heap entry
                continue
            if deadline > now:
                break
            heapq.heappop(g.deadlines)
            del g.leased[handle]
            self._held[lease.sub] = self._held.get(lease.sub, 1) - 1
            _ready(g, lease.entry)
        candidates = [g.delayed[0][0]] if g.delayed else []
        if g.deadlines:
            candidates.append(g.deadlines[0][0])
        return min(candidates) if candidates else None

    def receive(self, topic: str, group: str, sub: int, max_messages: int, timeout: float,
                *, lease: float, prefetch: int) -> list[Delivery]:
        """Lease up to ``max_messages`` ready messages, waiting up to ``timeout`` for one.

        Never leases more than ``prefetch`` messages to one subscription at a time.
        """
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                g = self._group(topic, group)
                now = time.time()
                next_due = self._tidy(g, now)
                room = min(max_messages, prefetch - self._held.get(sub, 0))
                out: list[Delivery] = []
                while g.ready and len(out) < room:
                    entry = heapq.heappop(g.ready)[2]
                    if entry.expires is not None and entry.expires <= now:
                        g.counts.pop(entry.seq, None)  # TTL ran out unread
                        continue
                    count = g.counts.get(entry.seq, 0) + 1
                    g.counts[entry.seq] = count
                    handle = next(self._handles)
                    g.leased[handle] = _Lease(entry, now + lease, sub)
                    heapq.heappush(g.deadlines, (now + lease, handle))
                    out.append(Delivery(entry.message, topic, handle, count, entry.timestamp,
                                        str(entry.seq)))
                if out:
                    self._held[sub] = self._held.get(sub, 0) + len(out)
                    return out
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return []
                if next_due is not None:
                    remaining = min(remaining, max(0.001, next_due - now))
                self._cond.wait(remaining)

    def settle(self, topic: str, group: str, handles: Sequence[int], how: str,
               delay: float | None = None) -> None:
        """``ack``, ``reject`` or ``nack`` leased deliveries; unknown handles (a lease
        that already expired) are ignored: the message was handed out again."""
        with self._cond:
            g = self._group(topic, group)
            now = time.time()
            for handle in handles:
                lease = g.leased.pop(handle, None)
                if lease is None:
                    continue
                self._held[lease.sub] = self._held.get(lease.sub, 1) - 1
                entry = lease.entry
                if how != "nack":
                    g.counts.pop(entry.seq, None)
                elif delay:
                    heapq.heappush(g.delayed, (now + delay, entry.seq, entry))
                else:
                    _ready(g, entry)
            self._cond.notify_all()

    def extend(self, topic: str, group: str, handles: Sequence[int], seconds: float) -> None:
        """Push the lease deadline of each live delivery to ``now + seconds``."""
        with self._cond:
            g = self._group(topic, group)
            deadline = time.time() + seconds
            for handle in handles:
                lease = g.leased.get(handle)
                if lease is not None:
                    lease.deadline = deadline
                    heapq.heappush(g.deadlines, (deadline, handle))

    def release(self, sub: int) -> None:
        """Make every delivery leased by subscription ``sub`` ready again at once."""
        with self._cond:
            for t in self._topics.values():
                for g in t.groups.values():
                    for handle, lease in list(g.leased.items()):
                        if lease.sub == sub:
                            del g.leased[handle]
                            _ready(g, lease.entry)
            self._held.pop(sub, None)
            self._cond.notify_all()
