"""Options every client has, whatever the backend (URL query or keyword arguments)."""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import ConfigurationError
from .driver._types import StartPosition

__all__ = ["ClientOptions"]


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Portable client settings; each may be set as a URL query parameter or keyword.

    ``connect_timeout``: seconds before an unreachable broker raises
    :class:`ConnectTimeout`. ``auto_create``: create missing topics on first use instead
    of raising :class:`NotFound`. ``send_timeout``: total seconds a send keeps retrying
    after the broker became unavailable. ``prefetch``: default in-flight limit per
    consumer. ``lease``: default seconds a received message stays invisible to other
    consumers. ``start``: where a new group begins, ``latest`` or ``earliest``.
    """

    connect_timeout: float = 10.0
    auto_create: bool = False
    send_timeout: float = 30.0
    prefetch: int = 100
    lease: float = 30.0
    start: StartPosition = "latest"

    def __post_init__(self) -> None:
        if self.connect_timeout <= 0:
            raise ConfigurationError("connect_timeout must be positive")
        if self.send_timeout < 0:
            raise ConfigurationError("send_timeout must not be negative")
        if self.prefetch < 1:
            raise ConfigurationError("prefetch must be at least 1")
        if self.lease <= 0:
            raise ConfigurationError("lease must be positive")
