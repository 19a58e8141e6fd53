"""Options every client has, whatever the backend (URL query or keyword arguments)."""

from __future__ import annotations

from dataclasses import dataclass

from ._validation import check_bool, check_choice, check_int, check_seconds
from .driver._types import StartPosition

__all__ = ["ClientOptions", "check_seconds"]


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Portable client settings; each may be set as a URL query parameter or keyword.

    ``connect_timeout``: seconds before an unreachable broker raises
    :class:`ConnectTimeout`. ``auto_create``: create missing topics on first use instead
    of raising :class:`NotFound`. ``send_timeout``: total seconds a send keeps retrying
    after the broker became unavailable. ``prefetch``: default in-flight limit per
    consumer. ``lease``: default seconds a received message stays invisible to other
    consumers. ``start``: where a new group begins, ``latest`` or ``earliest``.

    Consumers (each may also be set per consumer): ``settle_interval``: the longest an
    ack, nack or reject waits to be batched with others before it is handed to the
    broker (it goes sooner when a batch is full, before the next receive, on
    ``flush_settlements`` and on close); 0 hands every decision over at once, in the
    background. ``settle_timeout``: how long a settlement the broker refused as
    unavailable is retried, and how long ``close`` waits for pending settlements, before
    a :class:`SettlementError`. ``unavailable_timeout``: how long ``run`` and iteration
    keep retrying a broker that stays unavailable (backing off, logging a warning)
    before they raise :class:`Unavailable`.
    """

    connect_timeout: float = 10.0
    auto_create: bool = False
    send_timeout: float = 30.0
    prefetch: int = 100
    lease: float = 30.0
    start: StartPosition = "latest"
    # 5 ms: long enough that a consumer acking message by message in a tight loop hands
    # the broker one batch per receive (or per max_batch), short enough that a slow
    # handler's ack reaches the broker well before any lease (seconds) runs out.
    settle_interval: float = 0.005
    # A broker restart takes seconds; half a minute rides one out without giving up.
    settle_timeout: float = 30.0
    # A minute of a broker answering "unavailable" is no restart any more: tell the caller.
    unavailable_timeout: float = 60.0

    def __post_init__(self) -> None:
        """Refuse, naming it, any value of the wrong type or out of range (a
        :class:`ConfigurationError`): zero is never taken to mean "the default"."""
        check_seconds("connect_timeout", self.connect_timeout, positive=True)
        check_seconds("lease", self.lease, positive=True)
        check_int("prefetch", self.prefetch, 1)
        check_bool("auto_create", self.auto_create)
        check_choice("start", self.start, ("latest", "earliest"))
        for name in ("send_timeout", "settle_interval", "settle_timeout",
                     "unavailable_timeout"):
            check_seconds(name, getattr(self, name))
