"""kafka-python's exceptions mapped to mqkit's, declared as one :class:`ErrorTable`.

``mapped()`` re-raises any kafka-python (or socket) error as the most specific mqkit
class, ``from`` the native error. SASL failures and authorization errors are
:class:`PermissionDenied` (never retried). kafka-python's texts hold broker error names
and request summaries, never SASL passwords; URLs are rendered through ``URL``.
"""

from __future__ import annotations

import kafka.errors as ke

from mqkit.driver import (
    AlreadyExists,
    BackendError,
    ConfigurationError,
    ErrorTable,
    MessageTooLarge,
    NotFound,
    PermissionDenied,
    Unavailable,
)

__all__ = ["TABLE", "map_error", "mapped"]

TABLE = ErrorTable(
    "kafka",
    (  # most specific first: the first matching class wins
        (ke.UnknownTopicOrPartitionError, NotFound),
        (ke.GroupIdNotFoundError, NotFound),
        (ke.TopicAlreadyExistsError, AlreadyExists),
        (ke.MessageSizeTooLargeError, MessageTooLarge),
        (ke.RecordListTooLargeError, MessageTooLarge),
        (ke.InvalidTopicError, ConfigurationError),
        (ke.InvalidPartitionsError, ConfigurationError),
        (ke.InvalidReplicationFactorError, ConfigurationError),
        (ke.InvalidConfigurationError, ConfigurationError),
        (ke.KafkaConfigurationError, ConfigurationError),
        (ke.SaslAuthenticationFailedError, PermissionDenied),
        # The broker does not enable sasl_mechanism: no retry cures that.
        (ke.UnsupportedSaslMechanismError, ConfigurationError),
        # Topic/Group/Cluster/TransactionalId authorization failures all subclass it.
        (ke.AuthorizationError, PermissionDenied),
        (ke.DelegationTokenAuthorizationFailedError, PermissionDenied),
        (ke.KafkaConnectionError, Unavailable),
        (ke.NodeNotReadyError, Unavailable),
        (ke.KafkaTimeoutError, Unavailable),
        (ke.RequestTimedOutError, Unavailable),
        (ke.CoordinatorNotAvailableError, Unavailable),
        (ke.CoordinatorLoadInProgressError, Unavailable),
        (ke.NotCoordinatorError, Unavailable),
        (ke.RetriableError, Unavailable),
        (ke.NonEmptyGroupError, BackendError),
        (ke.CommitFailedError, BackendError),
        (TimeoutError, Unavailable),
        (OSError, Unavailable),
        (ke.KafkaError, BackendError),
    ),
    catch=(ke.KafkaError, OSError),
)

map_error = TABLE.map
mapped = TABLE.mapped
