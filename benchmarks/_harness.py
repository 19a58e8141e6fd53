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

__all__ = ["Result", "measure", "report", "ratio"]


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
