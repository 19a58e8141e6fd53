"""redis-py's exceptions mapped to mqkit's, through one table.

``mapped()`` re-raises any redis-py (or socket) error as the most specific mqkit class,
``from`` the native error. Server error replies (``ResponseError``) are told apart by
their first word (``NOGROUP``, ``BUSYGROUP``, ``WRONGTYPE``...). Texts never hold a
password: redis-py's messages name the host and port, never credentials.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis.exceptions as re_

import mqkit

__all__ = ["map_error", "mapped"]

# First word (or leading text) of a server error reply.
_REPLIES: tuple[tuple[str, type[mqkit.MQError]], ...] = (
    ("NOGROUP", mqkit.NotFound),          # stream or group missing
    ("BUSYGROUP", mqkit.AlreadyExists),   # group exists
    ("WRONGTYPE", mqkit.AlreadyExists),   # the key holds another type than a stream
    ("ERR The XGROUP subcommand requires the key to exist", mqkit.NotFound),
    ("ERR no such key", mqkit.NotFound),
    ("NOSCRIPT", mqkit.BackendError),
    ("CLUSTERDOWN", mqkit.Unavailable),
    ("TRYAGAIN", mqkit.Unavailable),
    ("MOVED", mqkit.BackendError),        # a cluster: not supported by this adapter
    ("ASK", mqkit.BackendError),
)

_PIPELINE_MARK = "of pipeline caused error: "

# Most specific first: the first matching class wins.
_TABLE: tuple[tuple[type[BaseException], type[mqkit.MQError]], ...] = (
    (re_.AuthenticationError, mqkit.Unavailable),
    (re_.AuthorizationError, mqkit.Unavailable),
    (re_.BusyLoadingError, mqkit.Unavailable),
    (re_.MasterDownError, mqkit.Unavailable),
    (re_.ReadOnlyError, mqkit.Unavailable),     # a replica after failover
    (re_.MaxConnectionsError, mqkit.Unavailable),
    (re_.TimeoutError, mqkit.Unavailable),      # redis-py drops the connection
    (re_.ConnectionError, mqkit.Unavailable),
    (re_.NoPermissionError, mqkit.BackendError),
    (re_.OutOfMemoryError, mqkit.BackendError),
    (re_.DataError, mqkit.ConfigurationError),
    (OSError, mqkit.Unavailable),
    (re_.RedisError, mqkit.BackendError),
)


def map_error(exc: BaseException, what: str) -> mqkit.MQError:
    """The mqkit error for ``exc`` (not raised), its text prefixed with ``what``."""
    if isinstance(exc, mqkit.MQError):
        return exc
    text = f"redis: {what}: {type(exc).__name__}: {exc}"
    if type(exc) is re_.ResponseError:
        # redis-py prefixes errors inside a pipeline: "Command # 2 (...) of pipeline
        # caused error: NOGROUP ..."
        message = str(exc).rpartition(_PIPELINE_MARK)[2]
        for prefix, cls in _REPLIES:
            if message.startswith(prefix):
                return cls(text)
        return mqkit.BackendError(text)
    for native, kind in _TABLE:
        if isinstance(exc, native):
            return kind(text)
    return mqkit.BackendError(text)


@contextlib.contextmanager
def mapped(what: str) -> Iterator[None]:
    """Re-raise redis-py and socket errors as mqkit errors ``from`` the native error."""
    try:
        yield
    except mqkit.MQError:
        raise
    except (re_.RedisError, OSError) as exc:
        raise map_error(exc, what) from exc
