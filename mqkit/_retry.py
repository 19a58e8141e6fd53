"""Retry policy and handler-outcome decisions (sans-I/O, shared by both faces).

A handler that returns acks its message. One that raises is retried: the message is
nacked with an exponential backoff delay (with jitter) until it has been delivered
``max_attempts`` times; then it goes to the dead-letter topic with the failure reason in
its headers. Raising :class:`PermanentFailure` skips the remaining attempts.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass

from ._errors import ConfigurationError
from ._validation import check_bool, check_int, check_name, check_seconds

__all__ = ["Action", "PermanentFailure", "RetryPolicy", "decide", "failure_reason"]


class PermanentFailure(Exception):
    """Raise from a handler when retrying cannot help (bad input, schema mismatch).

    The message is dead-lettered at once (or rejected when dead-lettering is off).
    """


class Action(enum.Enum):
    """What the run loop does with a message after its handler finished."""

    ACK = "ack"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How handler failures are retried.

    Attempt ``n`` (1-based delivery count) that fails is retried after
    ``min(max_backoff, initial_backoff * multiplier ** (n - 1))`` seconds, scaled by a
    random factor in ``[1 - jitter, 1 + jitter]`` so that a burst of failures does not
    come back in lockstep. After ``max_attempts`` deliveries the message is
    dead-lettered (``dead_letter=True``, to ``dead_letter_topic`` or the backend's
    default name) or rejected.
    """

    max_attempts: int = 5
    initial_backoff: float = 1.0
    max_backoff: float = 60.0
    multiplier: float = 2.0
    jitter: float = 0.2
    dead_letter: bool = True
    dead_letter_topic: str | None = None

    def __post_init__(self) -> None:
        """Refuse, naming it, a field of the wrong type or out of range (a
        :class:`ConfigurationError`)."""
        check_int("max_attempts", self.max_attempts, 1)
        check_seconds("initial_backoff", self.initial_backoff)
        check_seconds("max_backoff", self.max_backoff)
        multiplier, jitter = self.multiplier, self.jitter
        if isinstance(multiplier, bool) or not isinstance(multiplier, int | float) or not (
                1 <= multiplier < math.inf):
            raise ConfigurationError(
                f"multiplier must be a finite number of at least 1, got {multiplier!r}")
        if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not (
                0 <= jitter <= 1):
            raise ConfigurationError(f"jitter must be a number in 0..1, got {jitter!r}")
        check_bool("dead_letter", self.dead_letter)
        if self.dead_letter_topic is not None:
            check_name("dead_letter_topic", self.dead_letter_topic)

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before redelivering after failed attempt ``attempt``: at most
        ``max_backoff``, whatever the multiplier (a growth past the float range is
        capped there, not raised)."""
        try:
            grown = self.initial_backoff * self.multiplier ** max(0, attempt - 1)
        except OverflowError:
            grown = math.inf
        base = min(self.max_backoff, grown)
        if not self.jitter or not base:
            return base
        r = (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
        return min(self.max_backoff, base * r)


def decide(policy: RetryPolicy, error: BaseException | None, delivery_count: int) -> Action:
    """The action for a message whose handler returned (``error=None``) or raised."""
    if error is None:
        return Action.ACK
    if not isinstance(error, PermanentFailure) and delivery_count < policy.max_attempts:
        return Action.RETRY
    return Action.DEAD_LETTER if policy.dead_letter else Action.REJECT


def failure_reason(error: BaseException, limit: int = 512) -> str:
    """A one-line description of ``error`` for the dead-letter header."""
    text = f"{type(error).__name__}: {error}".replace("\r", " ").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."
