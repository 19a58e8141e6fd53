"""mqkit: one Producer/Consumer/Admin API over RabbitMQ, Kafka, SQS/SNS, Redis and NATS.

    import mqkit

    with mqkit.connect("kafka://localhost:9092") as client:   # no URL: $MQKIT_URL or memory://
        client.admin.create_topic("orders")
        client.admin.create_group("orders", "billing")
        with client.producer("orders") as producer:
            producer.send(b'{"id": 1}', key="user-1", headers={"tenant": "a"})
        with client.consumer("orders", group="billing") as consumer:
            for msg in consumer.receive(max_messages=10, timeout=1.0):
                msg.ack()

The asyncio face, :mod:`mqkit.aio`, has the same names, awaited.

``import mqkit`` is cheap: each public name is imported on first use (PEP 562), so a
program that never connects never pays for asyncio, ssl or the adapter registry. Type
checkers and IDEs see every name through the ``TYPE_CHECKING`` imports below; ``dir()``
lists them. Library log records go to the ``mqkit`` logger, which has a
:class:`logging.NullHandler`: nothing reaches stderr unless the application configures
logging.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

logging.getLogger("mqkit").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from ._capabilities import Capabilities, Feature, Support
    from ._codecs import JSON, RAW, TEXT, Codec, codec_for, register_codec
    from ._errors import (
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
    from ._message import Message
    from ._options import ClientOptions
    from ._outcome import Outcome, OutcomeKind, ReleaseMessage
    from ._registry import installed_schemes
    from ._retry import PermanentFailure, RetryPolicy
    from ._run import RunStats
    from ._sync._admin import Admin
    from ._sync._client import DEAD_LETTER_GROUP, Client, connect
    from ._sync._consumer import Consumer
    from ._sync._middleware import HandlerContext, Middleware
    from ._sync._producer import Producer
    from ._sync._received import ReceivedMessage
    from ._url import URL, Secret
    from ._validation import DLQ_HEADERS
    from .driver import GroupStats

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

# Where each public name lives (the TYPE_CHECKING imports above, as data: a unit test
# checks that the two and __all__ agree).
_ERRORS = ("AdapterNotInstalled", "AlreadyExists", "BackendError", "Closed",
           "ConfigurationError", "ConnectTimeout", "InvalidMessage", "MessageStateError",
           "MessageTooLarge", "MQError", "NotFound", "PayloadError", "PermissionDenied",
           "SendBatchError", "SettlementError", "SettlementUnavailable", "Timeout",
           "Unavailable", "Unsupported")
_LAZY: dict[str, str] = {
    **dict.fromkeys(("Capabilities", "Feature", "Support"), "._capabilities"),
    **dict.fromkeys(("JSON", "RAW", "TEXT", "Codec", "codec_for", "register_codec"),
                    "._codecs"),
    **dict.fromkeys(_ERRORS, "._errors"),
    "Message": "._message",
    "ClientOptions": "._options",
    **dict.fromkeys(("Outcome", "OutcomeKind", "ReleaseMessage"), "._outcome"),
    "installed_schemes": "._registry",
    **dict.fromkeys(("PermanentFailure", "RetryPolicy"), "._retry"),
    "Admin": "._sync._admin",
    **dict.fromkeys(("DEAD_LETTER_GROUP", "Client", "connect"), "._sync._client"),
    "RunStats": "._run",
    "Consumer": "._sync._consumer",
    **dict.fromkeys(("HandlerContext", "Middleware"), "._sync._middleware"),
    "Producer": "._sync._producer",
    "ReceivedMessage": "._sync._received",
    **dict.fromkeys(("URL", "Secret"), "._url"),
    "DLQ_HEADERS": "._validation",
    "GroupStats": ".driver",
}
# Subpackages reachable as attributes after a bare ``import mqkit`` (as before the lazy
# imports, when importing the blocking face happened to import them).
_SUBPACKAGES = frozenset({"aio", "cli", "driver", "memory", "middleware"})


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if not TYPE_CHECKING:  # hidden from type checkers, so `mqkit.typo` stays an error for them

    def __getattr__(name: str) -> Any:
        """Import a public name (or subpackage) on first use, then keep it as a global."""
        import importlib

        module = _LAZY.get(name)
        if module is not None:
            value = getattr(importlib.import_module(module, __name__), name)
        elif name in _SUBPACKAGES:
            value = importlib.import_module(f"{__name__}.{name}")
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()[name] = value
        return value
