"""redis-py's exceptions mapped to mqkit's, declared as one :class:`ErrorTable`.

``mapped()`` re-raises any redis-py (or socket) error as the most specific mqkit class,
``from`` the native error. Server error replies (``ResponseError``) are told apart by
their first word (``NOGROUP``, ``BUSYGROUP``, ``WRONGPASS``...). A refused login or ACL
(``WRONGPASS``, ``NOAUTH``, ``NOPERM``) is :class:`PermissionDenied`, never retried.
Texts never hold a password: redis-py's messages name host and port, never credentials.
"""

from __future__ import annotations

import redis.exceptions as re_

from mqkit.driver import (
    AlreadyExists,
    BackendError,
    ConfigurationError,
    ErrorTable,
    MQError,
    NotFound,
    PermissionDenied,
    Unavailable,
)

__all__ = ["TABLE", "map_error", "mapped"]

# First word (or leading text) of a server error reply.
_REPLIES: tuple[tuple[str, type[MQError]], ...] = (
    ("NOGROUP", NotFound),          # stream or group missing
    # a blocked XREADGROUP whose stream or group was deleted meanwhile (Redis >= 7)
    ("UNBLOCKED the stream key no longer exists", NotFound),
    ("UNBLOCKED the consumer group this client was blocked on no longer exists", NotFound),
    ("BUSYGROUP", AlreadyExists),   # group exists
    ("WRONGTYPE", AlreadyExists),   # the key holds another type than a stream
    ("ERR The XGROUP subcommand requires the key to exist", NotFound),
    ("ERR no such key", NotFound),
    ("WRONGPASS", PermissionDenied),  # bad user name or password
    ("NOAUTH", PermissionDenied),     # the server wants AUTH first
    ("NOPERM", PermissionDenied),     # the ACL user may not run this command or key
    ("NOSCRIPT", BackendError),
    ("CLUSTERDOWN", Unavailable),
    ("TRYAGAIN", Unavailable),
    # a cluster's slot moved: the step was sent again to the new owner (``_cluster``);
    # still moving after that: unavailable for now, retried
    ("MOVED", Unavailable),
    ("ASK", Unavailable),
    ("CROSSSLOT", BackendError),    # keys of two slots in one command: a bug
)

_PIPELINE_MARK = "of pipeline caused error: "


_REFUSED = (re_.AuthenticationError, re_.AuthorizationError, re_.NoPermissionError)


def _reply(exc: BaseException) -> tuple[type[MQError], str] | None:
    """A plain ``ResponseError`` decided by its reply's first word; a cluster client
    that reached no seed because its login was refused (redis-py raises a plain
    ``RedisClusterException`` from the refusal) is ``PermissionDenied``, never retried."""
    if type(exc) is re_.RedisClusterException and isinstance(exc.__cause__, _REFUSED):
        return PermissionDenied, f"{type(exc).__name__}: {exc}"
    if type(exc) is not re_.ResponseError:
        return None
    # redis-py prefixes errors inside a pipeline: "Command # 2 (...) of pipeline
    # caused error: NOGROUP ..."
    message = str(exc).rpartition(_PIPELINE_MARK)[2]
    detail = f"{type(exc).__name__}: {exc}"
    for prefix, cls in _REPLIES:
        if message.startswith(prefix):
            return cls, detail
    return BackendError, detail


TABLE = ErrorTable(
    "redis",
    (  # most specific first: the first matching class wins
        (re_.AuthenticationError, PermissionDenied),
        (re_.AuthenticationWrongNumberOfArgsError, PermissionDenied),
        (re_.NoPermissionError, PermissionDenied),
        (re_.AuthorizationError, PermissionDenied),
        (re_.BusyLoadingError, Unavailable),
        (re_.MasterDownError, Unavailable),
        (re_.ReadOnlyError, Unavailable),     # a replica after failover
        (re_.MaxConnectionsError, Unavailable),
        (re_.ClusterDownError, Unavailable),  # CLUSTERDOWN: slots not served for now
        (re_.TryAgainError, Unavailable),     # a slot migrating (TRYAGAIN)
        (re_.AskError, Unavailable),          # MOVED/ASK still after the re-routes
        (re_.ClusterCrossSlotError, BackendError),
        # no seed answers, or a slot nobody serves (redis-py's own, not RedisErrors)
        (re_.SlotNotCoveredError, Unavailable),
        (re_.RedisClusterException, Unavailable),
        (re_.TimeoutError, Unavailable),      # redis-py drops the connection
        (re_.ConnectionError, Unavailable),
        (re_.OutOfMemoryError, BackendError),
        (re_.DataError, ConfigurationError),
        (OSError, Unavailable),
        (re_.RedisError, BackendError),
    ),
    hook=_reply,
    catch=(re_.RedisError, re_.RedisClusterException, OSError),
)

map_error = TABLE.map
mapped = TABLE.mapped
