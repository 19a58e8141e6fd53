"""What a consumer's ``run`` loop reports, and how long it rides out an outage.

Sans-I/O and shared by both faces: ``mqkit.RunStats is mqkit.aio.RunStats``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ._settlement import retry_pause

__all__ = ["Outage", "RunStats"]


@dataclass
class RunStats:
    """What a ``run`` did: messages handled and how each ended.

    ``dead_lettered`` counts only copies the dead-letter topic accepted;
    ``dead_letter_failed`` those it refused (the message was nacked with backoff
    instead). ``dropped`` counts failed messages on an at-most-once backend, which
    cannot redeliver (each is logged). ``released``: received but not started when the
    loop stopped, given back without using up an attempt. ``settle_failed``: decisions
    the broker did not take (the broker redelivers those messages).
    """

    handled: int = 0
    acked: int = 0
    retried: int = 0
    dead_lettered: int = 0
    dead_letter_failed: int = 0
    rejected: int = 0
    released: int = 0
    dropped: int = 0
    settle_failed: int = 0


class Outage:
    """Tracks how long the broker has been unavailable to a loop, bounded."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.since: float | None = None
        self.failures = 0

    def failed(self) -> float:
        """Note one more failure; the pause before the next try, or -1 when out of time."""
        now = time.monotonic()
        if self.since is None:
            self.since = now
        self.failures += 1
        if now - self.since >= self.limit:
            return -1.0
        return min(retry_pause(self.failures), self.limit - (now - self.since))

    def ok(self) -> None:
        self.since = None
        self.failures = 0
