"""kafka-python's exceptions mapped to mqkit's, through one table.

``mapped()`` re-raises any kafka-python (or socket) error as the most specific mqkit
class, ``from`` the native error. kafka-python's texts hold broker error names and
request summaries, never SASL passwords; URLs are rendered through :class:`mqkit.URL`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import kafka.errors as ke

import mqkit

__all__ = ["map_error", "mapped"]

# Most specific first: the first matching class wins.
_TABLE: tuple[tuple[type[BaseException], type[mqkit.MQError]], ...] = (
    (ke.UnknownTopicOrPartitionError, mqkit.NotFound),
    (ke.GroupIdNotFoundError, mqkit.NotFound),
    (ke.TopicAlreadyExistsError, mqkit.AlreadyExists),
    (ke.MessageSizeTooLargeError, mqkit.MessageTooLarge),
    (ke.RecordListTooLargeError, mqkit.MessageTooLarge),
    (ke.InvalidTopicError, mqkit.ConfigurationError),
    (ke.InvalidPartitionsError, mqkit.ConfigurationError),
    (ke.InvalidReplicationFactorError, mqkit.ConfigurationError),
    (ke.InvalidConfigurationError, mqkit.ConfigurationError),
    (ke.KafkaConfigurationError, mqkit.ConfigurationError),
    (ke.SaslAuthenticationFailedError, mqkit.Unavailable),
    (ke.UnsupportedSaslMechanismError, mqkit.Unavailable),
    (ke.AuthorizationError, mqkit.Unavailable),
    (ke.KafkaConnectionError, mqkit.Unavailable),
    (ke.NodeNotReadyError, mqkit.Unavailable),
    (ke.KafkaTimeoutError, mqkit.Unavailable),
    (ke.RequestTimedOutError, mqkit.Unavailable),
    (ke.CoordinatorNotAvailableError, mqkit.Unavailable),
    (ke.CoordinatorLoadInProgressError, mqkit.Unavailable),
    (ke.NotCoordinatorError, mqkit.Unavailable),
    (ke.RetriableError, mqkit.Unavailable),
    (ke.NonEmptyGroupError, mqkit.BackendError),
    (ke.CommitFailedError, mqkit.BackendError),
    (TimeoutError, mqkit.Unavailable),
    (OSError, mqkit.Unavailable),
    (ke.KafkaError, mqkit.BackendError),
)


def map_error(exc: BaseException, what: str) -> mqkit.MQError:
    """The mqkit error for ``exc`` (not raised), its text prefixed with ``what``."""
    if isinstance(exc, mqkit.MQError):
        return exc
    for native, cls in _TABLE:
        if isinstance(exc, native):
            text = f"kafka: {what}: {type(exc).__name__}: {exc}"
            if cls is mqkit.MessageTooLarge:
                return mqkit.MessageTooLarge(text, size=-1, limit=-1)
            return cls(text)
    return mqkit.BackendError(f"kafka: {what}: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def mapped(what: str) -> Iterator[None]:
    """Re-raise kafka-python and socket errors as mqkit errors ``from`` the native one."""
    try:
        yield
    except mqkit.MQError:
        raise
    except (ke.KafkaError, OSError) as exc:
        raise map_error(exc, what) from exc
