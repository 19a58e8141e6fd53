"""What the run loop decided for a message, as middleware sees it (sans-I/O, both faces).

``mqkit.Outcome is mqkit.aio.Outcome``: the run loop of either face builds one per
message it took from the broker, once the message's fate is decided, and passes it to
every middleware's ``outcome`` hook (see :class:`mqkit.Middleware`).
"""

from __future__ import annotations

import enum
from typing import NamedTuple

__all__ = ["Outcome", "OutcomeKind", "ReleaseMessage"]


class OutcomeKind(enum.Enum):
    """How the run loop settled a message.

    - ``ACKED``: the handler returned (or a middleware decided the message was done
      without calling it); acked.
    - ``RETRIED``: the handler failed; nacked, to come back after ``Outcome.delay``
      seconds (``None``: at once, where the backend has no delayed nack). Also a
      dead-letter copy the dead-letter topic refused: the message is retried instead.
    - ``DEAD_LETTERED``: failed for good (last attempt, or :class:`~mqkit.PermanentFailure`);
      copied to the dead-letter topic and acked.
    - ``REJECTED``: failed for good with dead-lettering off; rejected.
    - ``DROPPED``: failed on an at-most-once backend (no nack): logged and dropped.
    - ``RELEASED``: not handled (the loop stopped before its turn, or a middleware raised
      :class:`ReleaseMessage`); given back to the broker without using an attempt.
    - ``SETTLED``: the handler settled the message itself; the loop left it alone.
    """

    ACKED = "acked"
    RETRIED = "retried"
    DEAD_LETTERED = "dead_lettered"
    REJECTED = "rejected"
    DROPPED = "dropped"
    RELEASED = "released"
    SETTLED = "settled"


class Outcome(NamedTuple):
    """One message's fate: ``kind``; the retry ``delay`` in seconds (``RETRIED`` only,
    ``None`` when redelivered at once); the handler's ``error`` (``None`` when it
    returned, or for ``RELEASED``); ``attempts``: the delivery this was, counted as the
    retry policy counts it (deliveries minus releases, at least 1).

    Immutable (a named tuple: built per message, it must be cheap).
    """

    kind: OutcomeKind
    delay: float | None = None
    error: BaseException | None = None
    attempts: int = 1


class ReleaseMessage(Exception):
    """Raise from a middleware's ``handle`` (or a handler) to give the message back to
    the broker without using an attempt: the loop releases it (``OutcomeKind.RELEASED``)
    instead of counting a failure. On an at-most-once backend (nothing can be given back)
    the message is dropped (``OutcomeKind.DROPPED``) and logged.

    The circuit breaker raises it while open, for the messages already received.
    """
