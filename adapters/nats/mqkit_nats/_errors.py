"""nats-py's exceptions mapped to mqkit's, declared as one :class:`ErrorTable`.

``mapped()`` re-raises any nats-py (or socket/TLS) error as the most specific mqkit class,
``from`` the native error. A refused login (``AuthorizationError``, the server's
``Authorization Violation``) or a ``Permissions Violation`` is :class:`PermissionDenied`,
never retried. Texts never hold a secret: credentials are passed to nats-py as separate
arguments, never inside the server URLs it may quote.
"""

from __future__ import annotations

import asyncio

import nats.errors as ne
import nats.js.errors as je

from mqkit.driver import (
    AlreadyExists,
    BackendError,
    ConfigurationError,
    ErrorTable,
    InvalidMessage,
    MQError,
    NotFound,
    PermissionDenied,
    Timeout,
    Unavailable,
)

__all__ = ["TABLE", "map_error", "mapped"]

# JetStream API error codes (err_code) with a more specific meaning than their HTTP-like
# status code.
_ERR_CODES: dict[int, type[MQError]] = {
    10058: AlreadyExists,   # stream name already in use with a different config
    10065: AlreadyExists,   # subjects overlap with an existing stream
    10013: AlreadyExists,   # consumer name already in use
    10059: NotFound,        # stream not found
    10014: NotFound,        # consumer not found
    10039: Unavailable,     # JetStream not enabled for account
    10076: Unavailable,     # JetStream not enabled
    10077: BackendError,    # stream full: maximum messages exceeded (discard new)
    10047: BackendError,    # stream full: insufficient storage resources
    10054: InvalidMessage,  # message size exceeds the stream's max_msg_size
}

# Server -ERR texts (lower case) that mean the credentials or the user's permissions.
_DENIED_TEXTS = ("authorization violation", "permissions violation",
                 "user authentication expired", "authentication timeout")

# Most specific first: the first matching class wins.
_ROWS: tuple[tuple[type[BaseException], type[MQError]], ...] = (
    (je.NotFoundError, NotFound),
    (je.ServiceUnavailableError, Unavailable),
    (je.NoStreamResponseError, NotFound),
    (je.TooManyStalledMsgsError, Timeout),
    (je.BadRequestError, BackendError),
    (je.APIError, BackendError),
    (ne.NoServersError, Unavailable),
    (ne.AuthorizationError, PermissionDenied),
    (ne.InvalidUserCredentialsError, ConfigurationError),
    (ne.SecureConnRequiredError, Unavailable),
    (ne.SecureConnWantedError, Unavailable),
    (ne.SecureConnFailedError, Unavailable),
    (ne.ConnectionClosedError, Unavailable),
    (ne.ConnectionReconnectingError, Unavailable),
    (ne.ConnectionDrainingError, Unavailable),
    (ne.StaleConnectionError, Unavailable),
    (ne.OutboundBufferLimitError, Unavailable),
    (ne.NoRespondersError, Unavailable),
    (ne.MaxPayloadError, InvalidMessage),
    (ne.BadSubjectError, ConfigurationError),
    (ne.BadHeaderError, InvalidMessage),
    (ne.SlowConsumerError, BackendError),
    (ne.TimeoutError, Timeout),
    (asyncio.TimeoutError, Timeout),
    (OSError, Unavailable),            # includes ssl.SSLError, ConnectionError
    (ne.Error, BackendError),
)


def _decide(exc: BaseException) -> tuple[type[MQError], str] | None:
    """JetStream err_codes, server auth texts, and nats-py's own text style."""
    if isinstance(exc, je.APIError):
        code = exc.err_code or 0
        cls = _ERR_CODES.get(code)
        if cls is not None:
            return cls, f"{exc.description} (err_code {code})"
    if isinstance(exc, je.APIError) and exc.description:
        text = f"{exc.description} (code {exc.code}, err_code {exc.err_code})"
    else:
        text = str(exc).removeprefix("nats: ") or type(exc).__name__
    if isinstance(exc, ne.Error) and any(t in text.lower() for t in _DENIED_TEXTS):
        return PermissionDenied, f"{type(exc).__name__}: {text}"
    for native, mq in _ROWS:
        if isinstance(exc, native):
            return mq, f"{type(exc).__name__}: {text}"
    return None


TABLE = ErrorTable(
    "nats",
    _ROWS,
    hook=_decide,
    catch=(ne.Error, OSError, asyncio.TimeoutError),
)

map_error = TABLE.map
mapped = TABLE.mapped
