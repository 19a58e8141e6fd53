"""What the blocking and asyncio drivers share: one connection's state and bookkeeping."""

from __future__ import annotations

import threading

from .._errors import Closed
from ..driver import ConnectParams, parse_options
from ._broker import Broker, broker_named
from ._options import MemoryOptions, capabilities
from ._state import Member

__all__ = ["Session"]


class Session:
    """One connection to a named broker: its options, whether it is closed, and the
    members (subscriptions) to close with it."""

    def __init__(self, params: ConnectParams) -> None:
        self.options = parse_options(MemoryOptions, params.options)
        self.name = params.url.host or "default"
        self.broker = broker_named(self.name)
        self.capabilities = capabilities(self.options)
        self.closed = False
        self._members: dict[Member, None] = {}
        self._lock = threading.Lock()

    def live(self) -> Broker:
        """The broker; raise :class:`mqkit.Closed` once this connection is closed."""
        if self.closed:
            raise Closed(f"memory://{self.name} connection is closed")
        return self.broker

    def adopt(self, member: Member) -> Member:
        """Track ``member`` so that :meth:`close` closes it."""
        with self._lock:
            if self.closed:
                self.broker.leave(member)
                raise Closed(f"memory://{self.name} connection is closed")
            self._members[member] = None
        return member

    def leave(self, member: Member) -> None:
        """Close ``member``: its leased messages are ready again at once."""
        self.broker.leave(member)
        with self._lock:
            self._members.pop(member, None)

    def close(self) -> None:
        """Close every member still open, then the connection. Idempotent."""
        with self._lock:
            self.closed = True
            members, self._members = list(self._members), {}
        for member in members:
            self.broker.leave(member)
