"""Retry policy and handler-outcome decisions (sans-I/O, shared by both faces).

A handler that returns acks its message. One that raises is retried: the message is
nacked with an exponential backoff delay (with jitter) until it has been delivered
``max_attempts`` times; then it goes to the dead-letter topic with the failure reason in
its headers. Raising :class:`PermanentFailure` skips the remaining attempts.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from ._errors import ConfigurationError

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
        if self.max_attempts < 1:
            raise ConfigurationError("max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0:
            raise ConfigurationError("backoff must not be negative")
        if self.multiplier < 1:
            raise ConfigurationError("multiplier must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ConfigurationError("jitter must be between 0 and 1")

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before redelivering after failed attempt ``attempt``."""
        base = min(self.max_backoff, self.initial_backoff * self.multiplier ** max(0, attempt - 1))
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
