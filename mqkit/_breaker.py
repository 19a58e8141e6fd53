"""The circuit breaker's state machine (sans-I/O, thread-safe, shared by both faces).

::

    closed ──N consecutive failures──► open ──cool-down over──► half-open
      ▲                                  ▲                         │ one probe admitted
      └──────────── probe succeeded ─────┼─────────────────────────┤
                                         └──── probe failed ───────┘

The middleware (``mqkit.middleware.CircuitBreaker`` and its asyncio twin) asks
:meth:`BreakerState.admit` before each message and reports how the handler did.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ._validation import check_int, check_seconds

__all__ = ["BreakerState"]

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"


class BreakerState:
    """Opens after ``threshold`` consecutive failures; stays open ``cooldown`` seconds;
    then admits one probe (half-open): its success closes the circuit, its failure opens
    it again for another cool-down."""

    def __init__(self, threshold: int, cooldown: float, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = check_int("threshold", threshold, 1)
        self.cooldown = check_seconds("cooldown", cooldown, positive=True)
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False  # half-open: the probe is running

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` (cool-down running) or ``"half-open"``."""
        with self._lock:
            if self._state == OPEN and self._clock() - self._opened_at >= self.cooldown:
                return HALF_OPEN
            return self._state

    def admit(self) -> bool:
        """Whether a message may be handled now: always when closed; never while open;
        once the cool-down is over, one probe at a time (half-open)."""
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._state == OPEN:
                if self._clock() - self._opened_at < self.cooldown:
                    return False
                self._state = HALF_OPEN
            if self._probing:
                return False
            self._probing = True
            return True

    def success(self) -> None:
        """The admitted message's handler returned: close (a probe's success closes)."""
        with self._lock:
            self._state = CLOSED
            self._failures = 0
            self._probing = False

    def failure(self) -> None:
        """The admitted message's handler failed: one more consecutive failure; open
        at ``threshold``, or at once when it was the half-open probe."""
        with self._lock:
            self._failures += 1
            if self._state == HALF_OPEN or self._failures >= self.threshold:
                self._state = OPEN
                self._opened_at = self._clock()
                self._failures = 0
            self._probing = False

    def neutral(self) -> None:
        """The admitted message was neither a success nor a failure (released, or a
        failure that says nothing about the downstream): the probe slot is free again."""
        with self._lock:
            self._probing = False

    def remaining(self) -> float:
        """Seconds left of the cool-down (0 unless open)."""
        with self._lock:
            if self._state != OPEN:
                return 0.0
            return max(0.0, self.cooldown - (self._clock() - self._opened_at))
