"""mqkit: one Producer/Consumer/Admin API over many message brokers."""

from ._capabilities import Capabilities, Feature, Support
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
    SendBatchError,
    Timeout,
    Unavailable,
    Unsupported,
)
from ._message import Message
from ._url import URL, Secret
