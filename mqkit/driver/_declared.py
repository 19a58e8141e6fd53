"""What a client declared on its broker, so that a driver can declare it again.

A broker that restarts without persistence (Redis without AOF, a restarted moto) comes
back empty: the topics and groups a running client created are gone, and its producers
and consumers would fail with ``NotFound`` forever. A driver that wants to carry on
remembers here what it created or opened, and re-creates exactly that when it notices the
restart (how it notices is the backend's: Redis's ``run_id`` changed; SQS answered
``NotFound`` for a queue this client knew). What the client deleted itself is forgotten,
so it is never brought back.
"""

from __future__ import annotations

import threading

__all__ = ["Declared"]


class Declared:
    """The topics, and each topic's groups, a client created or used (thread-safe).

    Topic and group are the names the driver declares with (a backend's stream key or
    queue name, or the portable names: the driver's choice, used consistently). Every
    method takes a lock for a few dictionary operations, so either face may call it
    from any thread.
    """

    __slots__ = ("_lock", "_topics")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._topics: dict[str, set[str]] = {}

    def remember(self, topic: str, group: str | None = None) -> None:
        """Note ``topic`` (and ``group`` of it) as declared by this client."""
        with self._lock:
            groups = self._topics.setdefault(topic, set())
            if group is not None:
                groups.add(group)

    def forget(self, topic: str, group: str | None = None) -> None:
        """The client deleted ``group`` of ``topic``, or (no group) the topic and with it
        every group of it: never re-create them."""
        with self._lock:
            if group is None:
                self._topics.pop(topic, None)
            elif topic in self._topics:
                self._topics[topic].discard(group)

    def groups(self, topic: str) -> frozenset[str] | None:
        """The groups of ``topic`` this client declared; ``None`` when it never declared
        the topic (nothing to re-create)."""
        with self._lock:
            groups = self._topics.get(topic)
            return None if groups is None else frozenset(groups)

    def snapshot(self) -> dict[str, frozenset[str]]:
        """Every declared topic with its groups, as they are now (a copy)."""
        with self._lock:
            return {topic: frozenset(groups) for topic, groups in self._topics.items()}

    def __len__(self) -> int:
        with self._lock:
            return len(self._topics)

    def __repr__(self) -> str:
        with self._lock:
            groups = sum(len(g) for g in self._topics.values())
            return f"Declared({len(self._topics)} topics, {groups} groups)"
