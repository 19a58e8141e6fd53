"""pika's exceptions mapped to mqkit's, declared as one :class:`ErrorTable`.

``mapped()`` re-raises any pika (or socket) error as the most specific mqkit class,
``from`` the native error. A refused login or vhost (pika's authentication errors, reply
code 403 ACCESS_REFUSED) is :class:`PermissionDenied`, never retried. Texts never hold a
password: pika's messages carry reply codes and texts, never credentials.
"""

from __future__ import annotations

import socket

import pika.exceptions as pe

from mqkit.driver import (
    AlreadyExists,
    BackendError,
    ErrorTable,
    MQError,
    NotFound,
    PermissionDenied,
    Timeout,
    Unavailable,
)

__all__ = ["TABLE", "is_connection_error", "map_error", "mapped"]

# AMQP reply codes of a channel or connection closed by the broker.
_REPLY_CODES: dict[int, type[MQError]] = {
    404: NotFound,          # NOT_FOUND: exchange or queue missing
    406: AlreadyExists,     # PRECONDITION_FAILED: declared with other arguments
    405: BackendError,      # RESOURCE_LOCKED: exclusive queue of another connection
    403: PermissionDenied,  # ACCESS_REFUSED: the broker refuses this user
    530: PermissionDenied,  # NOT_ALLOWED: e.g. no access to the vhost
    320: Unavailable,       # CONNECTION_FORCED: broker shutting down
}


def _reply_code(exc: BaseException) -> tuple[type[MQError], str] | None:
    """A closed-by-broker error decided by its reply code."""
    if not isinstance(exc, pe.ChannelClosedByBroker | pe.ConnectionClosedByBroker):
        return None
    cls = _REPLY_CODES.get(exc.reply_code)
    if exc.reply_code == 404 and "down or inaccessible" in str(exc.reply_text):
        cls = Unavailable  # the queue exists; its leader is not up (yet)
    if cls is None:
        cls = Unavailable if isinstance(exc, pe.ConnectionClosedByBroker) else BackendError
    return cls, f"{exc.reply_code} {exc.reply_text}"


TABLE = ErrorTable(
    "rabbitmq",
    (  # most specific first: the first matching class wins
        (pe.AuthenticationError, PermissionDenied),
        (pe.ProbableAuthenticationError, PermissionDenied),
        (pe.ProbableAccessDeniedError, PermissionDenied),
        (pe.IncompatibleProtocolError, Unavailable),
        (pe.AMQPHeartbeatTimeout, Unavailable),
        (pe.ConnectionBlockedTimeout, Unavailable),
        (pe.StreamLostError, Unavailable),
        (pe.ConnectionWrongStateError, Unavailable),
        (pe.AMQPConnectionError, Unavailable),
        (pe.ChannelWrongStateError, Unavailable),
        (pe.UnroutableError, BackendError),
        (pe.NackError, BackendError),
        (pe.AMQPChannelError, BackendError),
        (socket.timeout, Timeout),
        (OSError, Unavailable),
        (pe.AMQPError, BackendError),
    ),
    hook=_reply_code,
    catch=(pe.AMQPError, OSError),
)


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` means the connection (not just a channel) is unusable."""
    return isinstance(exc, (pe.AMQPConnectionError, pe.ConnectionWrongStateError,
                            pe.ChannelWrongStateError, OSError))


map_error = TABLE.map
mapped = TABLE.mapped
