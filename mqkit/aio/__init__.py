"""mqkit's asyncio face: the same names as :mod:`mqkit`, awaited.

    async with mqkit.aio.connect("nats://localhost:4222") as client:
        async with client.producer("orders") as producer:
            await producer.send(b"...")

``Client``, ``Admin``, ``Producer``, ``Consumer``, ``ReceivedMessage``, ``Middleware``,
``HandlerContext`` and ``connect`` are the asyncio classes (the shipped middlewares are in
:mod:`mqkit.aio.middleware`); every other name (errors, codecs, ``Message``, ``RetryPolicy``,
``Capabilities``, ...) is the very object :mod:`mqkit` exports, so code written against
either face catches the same exceptions and passes the same values.
"""

from .._capabilities import Capabilities, Feature, Support
from .._codecs import JSON, RAW, TEXT, Codec, codec_for, register_codec
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
from .._message import Message
from .._options import ClientOptions
from .._outcome import Outcome, OutcomeKind, ReleaseMessage
from .._registry import installed_schemes
from .._retry import PermanentFailure, RetryPolicy
from .._run import RunStats
from .._url import URL, Secret
from .._validation import DLQ_HEADERS
from ..driver import GroupStats
from ._admin import AsyncAdmin as Admin
from ._client import DEAD_LETTER_GROUP, connect
from ._client import AsyncClient as Client
from ._consumer import AsyncConsumer as Consumer
from ._middleware import AsyncHandlerContext as HandlerContext
from ._middleware import AsyncMiddleware as Middleware
from ._producer import AsyncProducer as Producer
from ._received import AsyncReceivedMessage as ReceivedMessage

__all__ = [
    "DEAD_LETTER_GROUP",
    "DLQ_HEADERS",
    "JSON",
    "RAW",
    "TEXT",
    "URL",
    "AdapterNotInstalled",
    "Admin",
    "AlreadyExists",
    "BackendError",
    "Capabilities",
    "ClientOptions",
    "Client",
    "Closed",
    "Codec",
    "ConfigurationError",
    "ConnectTimeout",
    "Consumer",
    "Feature",
    "GroupStats",
    "HandlerContext",
    "InvalidMessage",
    "MQError",
    "Message",
    "MessageStateError",
    "MessageTooLarge",
    "Middleware",
    "NotFound",
    "Outcome",
    "OutcomeKind",
    "PayloadError",
    "PermanentFailure",
    "PermissionDenied",
    "Producer",
    "ReceivedMessage",
    "ReleaseMessage",
    "RetryPolicy",
    "RunStats",
    "Secret",
    "SendBatchError",
    "SettlementError",
    "SettlementUnavailable",
    "Support",
    "Timeout",
    "Unavailable",
    "Unsupported",
    "codec_for",
    "connect",
    "installed_schemes",
    "register_codec",
]
