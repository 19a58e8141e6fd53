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
"""

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
from ._registry import installed_schemes
from ._retry import PermanentFailure, RetryPolicy
from ._sync._admin import Admin
from ._sync._client import DEAD_LETTER_GROUP, Client, connect
from ._sync._consumer import Consumer, RunStats
from ._sync._producer import Producer
from ._sync._received import ReceivedMessage
from ._url import URL, Secret
from ._validation import DLQ_HEADERS
from .driver import GroupStats

__version__ = "0.1.0"

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
    "InvalidMessage",
    "MQError",
    "Message",
    "MessageStateError",
    "MessageTooLarge",
    "NotFound",
    "PermanentFailure",
    "PermissionDenied",
    "Producer",
    "ReceivedMessage",
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
