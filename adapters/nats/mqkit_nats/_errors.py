"""nats-py's exceptions mapped to mqkit's, through one table.

``mapped()`` re-raises any nats-py (or socket/TLS) error as the most specific mqkit class,
``from`` the native error. Texts never hold a secret: credentials are passed to nats-py
as separate arguments, never inside the server URLs it may quote.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import nats.errors as ne
import nats.js.errors as je

import mqkit

__all__ = ["map_error", "mapped"]

# JetStream API error codes (err_code) with a more specific meaning than their HTTP-like
# status code.
_ERR_CODES: dict[int, type[mqkit.MQError]] = {
    10058: mqkit.AlreadyExists,   # stream name already in use with a different config
    10065: mqkit.AlreadyExists,   # subjects overlap with an existing stream
    10013: mqkit.AlreadyExists,   # consumer name already in use
    10059: mqkit.NotFound,        # stream not found
    10014: mqkit.NotFound,        # consumer not found
    10039: mqkit.Unavailable,     # JetStream not enabled for account
    10076: mqkit.Unavailable,     # JetStream not enabled
    10077: mqkit.BackendError,    # stream full: maximum messages exceeded (discard new)
    10047: mqkit.BackendError,    # stream full: insufficient storage resources
    10054: mqkit.InvalidMessage,  # message size exceeds the stream's max_msg_size
}

# Most specific first: the first matching class wins.
_TABLE: tuple[tuple[type[BaseException], type[mqkit.MQError]], ...] = (
    (je.NotFoundError, mqkit.NotFound),
    (je.ServiceUnavailableError, mqkit.Unavailable),
    (je.NoStreamResponseError, mqkit.NotFound),
    (je.TooManyStalledMsgsError, mqkit.Timeout),
    (je.BadRequestError, mqkit.BackendError),
    (je.APIError, mqkit.BackendError),
    (ne.NoServersError, mqkit.Unavailable),
    (ne.AuthorizationError, mqkit.Unavailable),
    (ne.InvalidUserCredentialsError, mqkit.ConfigurationError),
    (ne.SecureConnRequiredError, mqkit.Unavailable),
    (ne.SecureConnWantedError, mqkit.Unavailable),
    (ne.SecureConnFailedError, mqkit.Unavailable),
    (ne.ConnectionClosedError, mqkit.Unavailable),
    (ne.ConnectionReconnectingError, mqkit.Unavailable),
    (ne.ConnectionDrainingError, mqkit.Unavailable),
    (ne.StaleConnectionError, mqkit.Unavailable),
    (ne.OutboundBufferLimitError, mqkit.Unavailable),
    (ne.NoRespondersError, mqkit.Unavailable),
    (ne.MaxPayloadError, mqkit.InvalidMessage),
    (ne.BadSubjectError, mqkit.ConfigurationError),
    (ne.BadHeaderError, mqkit.InvalidMessage),
    (ne.SlowConsumerError, mqkit.BackendError),
    (ne.TimeoutError, mqkit.Timeout),
    (asyncio.TimeoutError, mqkit.Timeout),
    (OSError, mqkit.Unavailable),            # includes ssl.SSLError, ConnectionError
    (ne.Error, mqkit.BackendError),
)


def map_error(exc: BaseException, what: str) -> mqkit.MQError:
    """The mqkit error for ``exc`` (not raised), its text prefixed with ``what``."""
    if isinstance(exc, mqkit.MQError):
        return exc
    if isinstance(exc, je.APIError):
        code = exc.err_code or 0
        cls = _ERR_CODES.get(code)
        if cls is not None:
            return cls(f"nats: {what}: {exc.description} (err_code {code})")
    if isinstance(exc, je.APIError) and exc.description:
        text = f"{exc.description} (code {exc.code}, err_code {exc.err_code})"
    else:
        text = str(exc).removeprefix("nats: ") or type(exc).__name__
    for native, mq in _TABLE:
        if isinstance(exc, native):
            return mq(f"nats: {what}: {type(exc).__name__}: {text}")
    return mqkit.BackendError(f"nats: {what}: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def mapped(what: str) -> Iterator[None]:
    """Re-raise nats-py, socket and timeout errors as mqkit errors ``from`` the native."""
    try:
        yield
    except mqkit.MQError:
        raise
    except (ne.Error, OSError, asyncio.TimeoutError) as exc:
        raise map_error(exc, what) from exc
