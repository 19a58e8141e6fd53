"""pika's exceptions mapped to mqkit's, through one table.

``mapped()`` re-raises any pika (or socket) error as the most specific mqkit class,
``from`` the native error. Texts never hold a password: pika's messages carry reply
codes and texts, never credentials, and URLs are rendered through :class:`mqkit.URL`.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pika.exceptions as pe

import mqkit

__all__ = ["is_connection_error", "map_error", "mapped"]

# AMQP reply codes of a channel closed by the broker.
_REPLY_CODES: dict[int, type[mqkit.MQError]] = {
    404: mqkit.NotFound,          # NOT_FOUND: exchange or queue missing
    406: mqkit.AlreadyExists,     # PRECONDITION_FAILED: declared with other arguments
    405: mqkit.BackendError,      # RESOURCE_LOCKED: exclusive queue of another connection
    403: mqkit.Unavailable,       # ACCESS_REFUSED: the broker refuses this user
    320: mqkit.Unavailable,       # CONNECTION_FORCED: broker shutting down
}

# Most specific first: the first matching class wins.
_TABLE: tuple[tuple[type[BaseException], type[mqkit.MQError]], ...] = (
    (pe.AuthenticationError, mqkit.Unavailable),
    (pe.ProbableAuthenticationError, mqkit.Unavailable),
    (pe.ProbableAccessDeniedError, mqkit.Unavailable),
    (pe.IncompatibleProtocolError, mqkit.Unavailable),
    (pe.AMQPHeartbeatTimeout, mqkit.Unavailable),
    (pe.ConnectionBlockedTimeout, mqkit.Unavailable),
    (pe.StreamLostError, mqkit.Unavailable),
    (pe.ConnectionWrongStateError, mqkit.Unavailable),
    (pe.AMQPConnectionError, mqkit.Unavailable),
    (pe.ChannelWrongStateError, mqkit.Unavailable),
    (pe.UnroutableError, mqkit.BackendError),
    (pe.NackError, mqkit.BackendError),
    (pe.AMQPChannelError, mqkit.BackendError),
    (socket.timeout, mqkit.Timeout),
    (OSError, mqkit.Unavailable),
    (pe.AMQPError, mqkit.BackendError),
)


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` means the connection (not just a channel) is unusable."""
    return isinstance(exc, (pe.AMQPConnectionError, pe.ConnectionWrongStateError,
                            pe.ChannelWrongStateError, OSError))


def map_error(exc: BaseException, what: str) -> mqkit.MQError:
    """The mqkit error for ``exc`` (not raised), its text prefixed with ``what``."""
    if isinstance(exc, mqkit.MQError):
        return exc
    if isinstance(exc, pe.ChannelClosedByBroker | pe.ConnectionClosedByBroker):
        cls = _REPLY_CODES.get(exc.reply_code)
        if exc.reply_code == 404 and "down or inaccessible" in str(exc.reply_text):
            cls = mqkit.Unavailable  # the queue exists; its leader is not up (yet)
        if cls is None:
            cls = (mqkit.Unavailable if isinstance(exc, pe.ConnectionClosedByBroker)
                   else mqkit.BackendError)
        return cls(f"rabbitmq: {what}: {exc.reply_code} {exc.reply_text}")
    for native, cls in _TABLE:
        if isinstance(exc, native):
            return cls(f"rabbitmq: {what}: {type(exc).__name__}: {exc}")
    return mqkit.BackendError(f"rabbitmq: {what}: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def mapped(what: str) -> Iterator[None]:
    """Re-raise pika and socket errors as mqkit errors ``from`` the native error."""
    try:
        yield
    except mqkit.MQError:
        raise
    except (pe.AMQPError, OSError) as exc:
        raise map_error(exc, what) from exc
