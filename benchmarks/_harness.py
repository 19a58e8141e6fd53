"""Shared benchmark helpers: timing, and printing figures and ratios.

Every benchmark prints one line per measurement::

    memory   send_batch(100)          100000 msgs   0.512 s   195,312 msgs/s
    memory   raw driver send_batch    100000 msgs   0.301 s   332,225 msgs/s   mqkit/raw 0.59

Speed is shown by these printed figures, never asserted by timed unit tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FirstBatchClock", "Result", "measure", "ratio", "report"]


@dataclass(frozen=True)
class Result:
    """One measurement: ``count`` messages in ``seconds``."""

    backend: str
    label: str
    count: int
    seconds: float

    @property
    def rate(self) -> float:
        """Messages per second."""
        return self.count / self.seconds if self.seconds > 0 else float("inf")


def measure(backend: str, label: str, count: int, work: Callable[[], object]) -> Result:
    """Time ``work()``, which must process ``count`` messages."""
    start = time.perf_counter()
    work()
    return Result(backend, label, count, time.perf_counter() - start)


class FirstBatchClock:
    """Times a drain from its first batch in hand, on every side alike: opening the
    subscription, a group join (Kafka: 0.1 to 3 s, as long as the drain itself at tens
    of thousands of messages a second) and the first fetch are left out, and so is the
    first batch's count. Call :meth:`got` with each batch's size, then :meth:`result`.
    """

    def __init__(self) -> None:
        self.opened = time.perf_counter()
        self.start: float | None = None
        self.skipped = 0

    def got(self, n: int) -> None:
        """``n`` messages arrived; the clock starts at the first that are not none."""
        if self.start is None and n:
            self.start = time.perf_counter()
            self.skipped = n

    def result(self, backend: str, label: str, count: int) -> Result:
        """The drain of ``count`` messages in all (the first batch among them)."""
        end = time.perf_counter()
        if self.start is None or count - self.skipped <= 0:  # one batch in all: time it all
            return Result(backend, label, count, end - self.opened)
        return Result(backend, label, count - self.skipped, end - self.start)


def ratio(mine: Result, baseline: Result) -> float:
    """``mine``'s throughput as a fraction of ``baseline``'s."""
    return mine.rate / baseline.rate


def report(result: Result, baseline: Result | None = None) -> None:
    """Print ``result`` (and its ratio to ``baseline``) on one line."""
    line = (f"{result.backend:9} {result.label:34} {result.count:>8} msgs "
            f"{result.seconds:8.3f} s {result.rate:>12,.0f} msgs/s")
    if baseline is not None:
        line += f"   mqkit/raw {ratio(result, baseline):.2f}"
    print(line, flush=True)
