"""mqkit's driver SPI: what an adapter implements to add a backend.

An adapter implements :class:`Driver` (blocking) or :class:`AsyncDriver` (asyncio), or
both, and registers an :class:`AdapterPlugin` under the ``mqkit.adapters`` entry-point
group. It imports only this module (which re-exports every error class a driver raises,
``Message``, ``Capabilities``, ``URL``, :class:`ErrorTable`,
:class:`DeliveryCounts`, :class:`Declared`, :class:`TLSOptions`, :func:`ssl_context` and
:func:`certificate_refusal`: a client that retries its first connect on its own reports a
refused server certificate with it) and its own client library. See ``_async.py`` for
the rules every driver keeps.
"""

from .._capabilities import Capabilities, Feature, Support
from .._errors import (
    AdapterNotInstalled,
    AlreadyExists,
    BackendError,
    Closed,
    ConfigurationError,
    ConnectTimeout,
    InvalidMessage,
    MessageStateError,
    MessageTooLarge,
    MQError,
    NotFound,
    PayloadError,
    PermissionDenied,
    SendBatchError,
    SettlementError,
    SettlementUnavailable,
    Timeout,
    Unavailable,
    Unsupported,
)
from .._message import Delivery, Message, received
from .._url import URL, Secret, parse_options
from ._async import AsyncDriver, AsyncSubscriptionDriver, AsyncTopicDriver
from ._counts import DeliveryCounts
from ._declared import Declared
from ._errortable import ErrorHook, ErrorTable
from ._plugin import AdapterPlugin, ConnectParams
from ._sync import Driver, SubscriptionDriver, TopicDriver
from ._tls import TLSOptions, certificate_refusal, ssl_context
from ._types import DEAD_LETTER_GROUP, GroupStats, StartPosition, SubscriptionOptions

__all__ = [
    "DEAD_LETTER_GROUP",
    "URL",
    "AdapterNotInstalled",
    "AlreadyExists",
    "BackendError",
    "Closed",
    "ConfigurationError",
    "ConnectTimeout",
    "Declared",
    "DeliveryCounts",
    "ErrorHook",
    "ErrorTable",
    "InvalidMessage",
    "MQError",
    "MessageStateError",
    "MessageTooLarge",
    "NotFound",
    "PayloadError",
    "PermissionDenied",
    "SendBatchError",
    "SettlementError",
    "SettlementUnavailable",
    "Timeout",
    "Unavailable",
    "Unsupported",
    "AdapterPlugin",
    "AsyncDriver",
    "AsyncSubscriptionDriver",
    "AsyncTopicDriver",
    "Capabilities",
    "ConnectParams",
    "Delivery",
    "Driver",
    "Feature",
    "GroupStats",
    "Message",
    "Secret",
    "StartPosition",
    "SubscriptionDriver",
    "SubscriptionOptions",
    "Support",
    "TLSOptions",
    "TopicDriver",
    "certificate_refusal",
    "parse_options",
    "received",
    "ssl_context",
]
