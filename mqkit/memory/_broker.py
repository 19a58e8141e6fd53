"""The shared in-process broker: :mod:`._state` behind one lock, plus waiting receivers.

A :class:`Broker` is safe to call from any thread and from any event loop: every method
takes its ``threading.Lock`` for a bounded time (one batch's worth of work) and never
blocks inside it. Waiting is left to the drivers, through *wake functions*: a receive
that finds nothing registers its wake function on the group under the same lock, and the
broker calls every wake function of a group when a message may have become available
there (a send, a nack, a consumer leaving) or when the group goes away. A blocking
driver's wake function sets a ``threading.Event``; an asyncio driver's resolves a future
through ``loop.call_soon_threadsafe``. A woken receiver takes messages itself, by calling
:meth:`Broker.receive` again, so a receiver that was cancelled never takes anything.
Lease expiry and delayed messages need no timer: receivers wait at most until
:meth:`Broker.receive`'s returned due time, and expiry is applied on access.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence

from .._errors import Closed, ConfigurationError, NotFound
from .._message import Delivery, Message
from ..driver import GroupStats, SubscriptionOptions
from ._state import Group, Member, Topic

__all__ = ["Broker", "Wake", "broker_named", "reset"]

Wake = Callable[[], None]
# The longest a receiver is told to sleep before looking again, even with nothing due:
# bounds an infinite receive timeout (``threading`` waits overflow on ``inf``).
_MAX_SLEEP = 3600.0


class Broker:
    """One named in-process broker: topics, their groups, and the receivers waiting."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._topics: dict[str, Topic] = {}
        self._waiters: dict[Group, set[Wake]] = {}

    def __repr__(self) -> str:
        return f"<memory Broker {self.name!r}: {len(self._topics)} topics>"

    # -- lookups (lock held) ------------------------------------------------------------

    def _topic(self, name: str) -> Topic:
        topic = self._topics.get(name)
        if topic is None:
            raise NotFound(f"topic {name!r} does not exist on memory://{self.name}")
        return topic

    def _group(self, topic: str, group: str) -> Group:
        found = self._topic(topic).groups.get(group)
        if found is None:
            raise NotFound(f"group {group!r} does not exist on topic {topic!r}")
        return found

    def _wake(self, group: Group) -> None:
        waiters = self._waiters.pop(group, None)
        if waiters:
            for wake in waiters:
                wake()

    @staticmethod
    def _check(member: Member) -> Group:
        if member.closed:
            raise Closed("memory subscription is closed")
        group = member.group
        if group.deleted:
            raise NotFound(f"group {group.name!r} on topic {group.topic!r} was deleted")
        return group

    # -- topics -------------------------------------------------------------------------

    def create_topic(self, name: str, options: Mapping[str, object],
                     max_retained: int | None) -> None:
        """Create topic ``name`` unless it exists. memory:// takes no topic options."""
        if options:
            raise ConfigurationError(
                f"unknown topic option {', '.join(map(repr, sorted(options)))} for "
                "memory://; it takes none")
        with self._lock:
            if name not in self._topics:
                self._topics[name] = Topic(name, max_retained)

    def delete_topic(self, name: str) -> None:
        """Delete the topic and its groups; their subscriptions get NotFound next call."""
        with self._lock:
            topic = self._topics.pop(name, None)
            for group in topic.groups.values() if topic else ():
                group.deleted = True
                self._wake(group)

    def topics(self) -> list[str]:
        with self._lock:
            return list(self._topics)

    def has_topic(self, name: str) -> bool:
        with self._lock:
            return name in self._topics

    def check_topic(self, name: str) -> None:
        """Raise NotFound unless topic ``name`` exists."""
        with self._lock:
            self._topic(name)

    def send(self, topic: str, messages: Sequence[Message], dedup_window: float) -> None:
        """Append ``messages`` to ``topic`` and queue them in each of its groups."""
        timestamp = time.time()
        with self._lock:
            now = time.monotonic()
            t = self._topic(topic)
            entries, plain = t.append(messages, now, timestamp, dedup_window)
            if entries:
                for group in t.groups.values():
                    group.add(entries, now, plain)
                    if group in self._waiters:
                        self._wake(group)

    # -- groups -------------------------------------------------------------------------

    def create_group(self, topic: str, group: str, start: str) -> None:
        """Create ``group`` unless it exists: fed from now on (``"latest"``) or from
        every message the topic retains (``"earliest"``). NotFound if no topic."""
        if start not in ("latest", "earliest"):
            raise ConfigurationError(f"start must be 'latest' or 'earliest', not {start!r}")
        with self._lock:
            t = self._topic(topic)
            if group not in t.groups:
                t.groups[group] = t.new_group(group, start == "earliest", time.monotonic())

    def delete_group(self, topic: str, group: str) -> None:
        with self._lock:
            t = self._topics.get(topic)
            found = t.groups.pop(group, None) if t else None
            if found is not None:
                found.deleted = True
                self._wake(found)

    def groups(self, topic: str) -> list[str]:
        with self._lock:
            return list(self._topic(topic).groups)

    def stats(self, topic: str, group: str) -> GroupStats:
        with self._lock:
            g = self._group(topic, group)
            depth = g.depth(time.monotonic())
            return GroupStats(topic, group, depth, g.in_flight)

    def purge(self, topic: str, group: str) -> None:
        with self._lock:
            self._group(topic, group).purge()

    # -- subscriptions ------------------------------------------------------------------

    def join(self, topic: str, group: str, options: SubscriptionOptions) -> Member:
        """A new member of ``group``, creating the group when allowed by ``options``."""
        if options.start not in ("latest", "earliest"):
            raise ConfigurationError(
                f"start must be 'latest' or 'earliest', not {options.start!r}")
        with self._lock:
            t = self._topic(topic)
            g = t.groups.get(group)
            if g is None:
                if not options.create_group:
                    raise NotFound(f"group {group!r} does not exist on topic {topic!r}")
                g = t.groups[group] = t.new_group(group, options.start == "earliest",
                                                  time.monotonic())
            return Member(g, options.prefetch, options.lease)

    def receive(self, member: Member, max_messages: int,
                wake: Wake | None) -> tuple[list[Delivery], float]:
        """Lease up to ``max_messages`` messages to ``member`` without waiting.

        When there are none and ``wake`` is given, register it: it is called once when
        messages may have arrived. Return the deliveries and the monotonic time of the
        group's next delayed message or lease expiry (at most an hour away): a receiver
        waits no longer than that before calling again. Raise Closed or NotFound.
        """
        with self._lock:
            group = self._check(member)
            now = time.monotonic()
            out = group.take(member, max_messages, now)
            if not out and wake is not None:
                self._waiters.setdefault(group, set()).add(wake)
            return out, min(group.next_due(), now + _MAX_SLEEP)

    def unwait(self, member: Member, wake: Wake) -> None:
        """Forget ``wake`` (its receiver stopped waiting)."""
        with self._lock:
            waiters = self._waiters.get(member.group)
            if waiters is not None:
                waiters.discard(wake)
                if not waiters:
                    del self._waiters[member.group]

    def settle(self, member: Member, deliveries: Sequence[Delivery], requeue: bool,
               delay: float | None = None, *, release: bool = False) -> None:
        """Ack or reject (``requeue`` false), or nack after ``delay``, ``deliveries``;
        ``release``: give them back without counting a delivery.

        Deliveries no longer leased (their lease ran out) are ignored.
        """
        with self._lock:
            group = self._check(member)
            if group.settle(deliveries, requeue, delay, time.monotonic(), release=release):
                self._wake(group)  # a nack may make a message ready sooner than due

    def extend(self, member: Member, deliveries: Sequence[Delivery], seconds: float) -> None:
        """Keep the live ``deliveries`` leased until ``seconds`` from now."""
        with self._lock:
            self._check(member).extend(deliveries, seconds, time.monotonic())

    def leave(self, member: Member) -> None:
        """Close ``member``: its leased messages are ready again at once. Idempotent."""
        with self._lock:
            if member.closed:
                return
            member.closed = True
            group = member.group
            if group.release(member, time.monotonic()) or group in self._waiters:
                self._wake(group)  # its own waiter, if any, then raises Closed


_brokers: dict[str, Broker] = {}
_brokers_lock = threading.Lock()


def broker_named(name: str) -> Broker:
    """The process-wide broker called ``name``, created on first use."""
    with _brokers_lock:
        broker = _brokers.get(name)
        if broker is None:
            broker = _brokers[name] = Broker(name)
        return broker


def reset(name: str | None = None) -> None:
    """Forget the broker called ``name``, or every broker when ``None`` (for unit tests).

    Connections already open keep the broker they had; new ones get an empty broker.
    """
    with _brokers_lock:
        if name is None:
            _brokers.clear()
        else:
            _brokers.pop(name, None)
