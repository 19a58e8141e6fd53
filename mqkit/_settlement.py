"""Settlement bookkeeping: decisions recorded at once, handed to the driver in batches.

Sans-I/O and shared by both faces. ``msg.ack()``, ``nack()`` and ``reject()`` only
record a :class:`Decision` here; the consumer hands the queue to the driver in batches
(when a batch is full, after ``settle_interval``, before its next receive, on
``flush_settlements`` and on ``close``). Decisions on different messages are independent
on every backend (each settles one delivery), so a batch is grouped by kind and delay,
one driver call per group, in the order each group first appeared.

A group the broker refuses because it is unavailable goes back to the front of the queue
and is retried with backoff until ``settle_timeout`` has passed since its first failure;
any other refusal, or running out of time, is a failure: the messages are named in a
:class:`mqkit.SettlementError` that the consumer's next receive (or the waiter) raises.
The broker redelivers those messages in any case (at-least-once): a failed settlement
never loses a message, it may only duplicate one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ACK", "NACK", "REJECT", "Decision", "Releases", "SettleQueue", "retry_pause"]

ACK = "ack"
NACK = "nack"
REJECT = "reject"

# First pause after the broker refused a settlement as unavailable, doubled per failure up
# to _MAX_PAUSE: a restarting broker is back within seconds, and retrying faster than
# every 50 ms only adds reconnect attempts.
_FIRST_PAUSE = 0.05
_MAX_PAUSE = 2.0


def retry_pause(failures: int) -> float:
    """Seconds to wait before the ``failures``-th retry of an unavailable broker."""
    return min(_MAX_PAUSE, _FIRST_PAUSE * 2.0 ** min(30, max(0, failures - 1)))


@dataclass(slots=True)
class Decision:
    """One message's decision, waiting to be handed to the driver.

    ``message`` is a received message of either face; ``release`` marks a nack that
    gives back a message its consumer never started (it must not use up an attempt).
    ``since`` is when the broker first refused it as unavailable (monotonic seconds).
    """

    message: Any
    kind: str
    delay: float | None = None
    release: bool = False
    since: float | None = None


@dataclass(slots=True)
class SettleQueue:
    """The consumer's queue of decisions not yet taken by the broker, and its failures.

    Not thread-safe: the consumer guards it with its state lock.
    """

    max_batch: int
    pending: deque[Decision] = field(default_factory=deque)
    failed: list[Decision] = field(default_factory=list)
    causes: list[BaseException] = field(default_factory=list)
    in_driver: int = 0
    unavailable: int = 0
    last_unavailable: BaseException | None = None

    def add(self, decisions: Iterable[Decision]) -> bool:
        """Queue ``decisions``; True when a full batch is waiting (flush now)."""
        self.pending.extend(decisions)
        return len(self.pending) >= self.max_batch

    @property
    def idle(self) -> bool:
        """Nothing pending and nothing being handed to the driver."""
        return not self.pending and not self.in_driver

    def take(self) -> list[list[Decision]]:
        """Up to ``max_batch`` pending decisions, grouped by (kind, delay, release)."""
        groups: dict[tuple[str, float | None, bool], list[Decision]] = {}
        pending = self.pending
        for _ in range(min(self.max_batch, len(pending))):
            d = pending.popleft()
            groups.setdefault((d.kind, d.delay, d.release), []).append(d)
        out = list(groups.values())
        self.in_driver += sum(map(len, out))
        return out

    def take_acks(self) -> list[Decision] | None:
        """Every pending decision, when they are all plain acks that fit one batch (what
        a receive may hand over together with its read); None, taking nothing,
        otherwise."""
        pending = self.pending
        if not pending or len(pending) > self.max_batch or self.failed:
            return None
        for d in pending:
            if d.kind != ACK or d.release:
                return None
        group = list(pending)
        pending.clear()
        self.in_driver += len(group)
        return group

    def give_back(self, group: Sequence[Decision]) -> None:
        """``group``, taken, was not handed over after all: pending again, first."""
        self.in_driver -= len(group)
        self.pending.extendleft(reversed(group))

    def done(self, group: Sequence[Decision]) -> None:
        """The broker took ``group``."""
        self.in_driver -= len(group)
        self.unavailable = 0
        self.last_unavailable = None

    def refused(self, group: Sequence[Decision], cause: BaseException) -> None:
        """The broker refused ``group`` for good: record it as failed."""
        self.in_driver -= len(group)
        self.failed.extend(group)
        self.causes.append(cause)

    def put_back(self, groups: Sequence[Sequence[Decision]], cause: BaseException,
                 now: float, timeout: float) -> None:
        """The broker was unavailable: retry ``groups`` later, or fail those whose first
        refusal is more than ``timeout`` seconds old."""
        retry: list[Decision] = []
        for group in groups:
            self.in_driver -= len(group)
            for d in group:
                if d.since is None:
                    d.since = now
                if now - d.since >= timeout:
                    self.failed.append(d)
                else:
                    retry.append(d)
        if len(retry) < sum(map(len, groups)):
            self.causes.append(cause)
        self.pending.extendleft(reversed(retry))
        self.unavailable += 1
        self.last_unavailable = cause

    def fail_pending(self, cause: BaseException) -> None:
        """Fail every pending decision (out of time to retry)."""
        if self.pending:
            self.failed.extend(self.pending)
            self.pending.clear()
            self.causes.append(cause)

    def take_failures(self) -> tuple[list[Decision], list[BaseException]]:
        """The failures recorded since the last call, and their causes; clears both."""
        failed, causes = self.failed, self.causes
        self.failed, self.causes = [], []
        return failed, causes


# Releases remembered per client: a message given back unstarted (stop) is counted here so
# that the retry policy does not count that redelivery as a failed attempt. Bounded so a
# long-lived client's memory stays flat: the oldest entries are forgotten first (then a
# release far back in time counts as an attempt again, which only retries less).
_RELEASES_MAX = 100_000


class Releases:
    """How often each message was released (given back unstarted), per client.

    Keyed by (topic, group, message id). Brokers count every redelivery, releases
    included; the run loop's retry decision uses ``delivery_count - released`` instead.
    Thread-safe.
    """

    def __init__(self, limit: int = _RELEASES_MAX) -> None:
        self._limit = limit
        self._counts: OrderedDict[tuple[str, str, str], int] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: tuple[str, str, str]) -> None:
        with self._lock:
            self._counts[key] = self._counts.pop(key, 0) + 1
            if len(self._counts) > self._limit:
                self._counts.popitem(last=False)

    def __bool__(self) -> bool:
        """Whether any release is remembered (a lock-free hint: the fast path)."""
        return bool(self._counts)

    def count(self, key: tuple[str, str, str]) -> int:
        if not self._counts:
            return 0
        with self._lock:
            return self._counts.get(key, 0)

    def forget(self, key: tuple[str, str, str]) -> None:
        if self._counts:
            with self._lock:
                self._counts.pop(key, None)
