"""Checks made before anything is sent (sans-I/O, shared by both faces).

Every message passes :func:`prepare` before it reaches a driver: it gets an id, its
header types and count are checked, its body size is checked against the backend's
limit, and send options the backend cannot honour raise :class:`Unsupported`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

from ._capabilities import Capabilities, Feature
from ._codecs import RAW, Codec
from ._errors import ConfigurationError, InvalidMessage, MessageTooLarge
from ._message import Message, new_message_id

__all__ = ["DLQ_HEADERS", "build_message", "chunks", "check_name", "prepare"]

T = TypeVar("T")

# Header names the portable layer writes on dead-lettered messages.
DLQ_HEADERS = {
    "reason": "mqkit-dead-letter-reason",
    "topic": "mqkit-dead-letter-topic",
    "group": "mqkit-dead-letter-group",
    "attempts": "mqkit-dead-letter-attempts",
}

# Topic and group names: portable across all five brokers (SQS allows only
# letters, digits, '-' and '_' in queue names; Kafka adds '.', Redis keys use ':').
# Adapters reject what their broker cannot take.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")


def check_name(kind: str, name: str) -> str:
    """Return ``name`` if it is a valid topic or group name, else raise naming it."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigurationError(
            f"invalid {kind} name {name!r}: use 1-200 letters, digits, '.', '_', ':' or '-', "
            "starting with a letter or digit")
    return name


def build_message(value: Any, codec: Codec = RAW, **fields: Any) -> Message:
    """A :class:`Message` from a body value (encoded by ``codec``) and field overrides.

    ``value`` may itself be a :class:`Message`; then ``fields`` that are not ``None``
    replace its fields.
    """
    overrides = {k: v for k, v in fields.items() if v is not None}
    if isinstance(value, Message):
        if not overrides:
            return value
        from dataclasses import replace
        return replace(value, **overrides)
    body = codec.encode(value)
    if codec is not RAW and "content_type" not in overrides:
        overrides["content_type"] = codec.content_type
    if "id" not in overrides:
        overrides["id"] = new_message_id()
    return Message(body, **overrides)


def prepare(message: Message, caps: Capabilities) -> Message:
    """Validate ``message`` for a backend and give it an id; raise before anything is sent."""
    if not isinstance(message, Message):
        raise InvalidMessage(f"expected mqkit.Message, got {type(message).__name__}")
    raw: object = message.body
    if type(raw) is bytes:
        body = raw
    elif isinstance(raw, (bytearray, memoryview)):
        body = bytes(raw)
    else:
        raise InvalidMessage(
            f"message body must be bytes, got {type(raw).__name__}; "
            "encode it or use codec=mqkit.JSON")
    size = len(body)
    if size > caps.max_message_size:
        raise MessageTooLarge(
            f"message body is {size} bytes; {caps.backend} accepts at most "
            f"{caps.max_message_size} bytes", size=size, limit=caps.max_message_size)
    headers = message.headers
    if headers:
        if not isinstance(headers, Mapping):
            raise InvalidMessage("headers must be a mapping of str to str")
        if caps.max_headers is not None and len(headers) > caps.max_headers:
            raise InvalidMessage(
                f"message has {len(headers)} headers; {caps.backend} allows at most "
                f"{caps.max_headers}")
        for name, value in headers.items():
            if type(name) is not str or type(value) is not str:
                raise InvalidMessage(
                    f"header {name!r} must map str to str, got "
                    f"{type(name).__name__} to {type(value).__name__}")
            if not name:
                raise InvalidMessage("header names must not be empty")
    if message.key is not None and type(message.key) is not str:
        raise InvalidMessage(f"key must be str, got {type(message.key).__name__}")
    if message.priority is not None:
        caps.require(Feature.PRIORITY)
        if not 0 <= message.priority <= 9:
            raise InvalidMessage(f"priority must be 0..9, got {message.priority}")
    if message.ttl is not None:
        caps.require(Feature.TTL)
        if message.ttl <= 0:
            raise InvalidMessage(f"ttl must be positive, got {message.ttl}")
    if message.delay is not None and message.delay > 0:
        caps.require(Feature.DELAY)
        if caps.max_delay is not None and message.delay > caps.max_delay:
            raise InvalidMessage(
                f"delay {message.delay}s exceeds {caps.backend}'s maximum of {caps.max_delay}s")
    if message.id is None or body is not message.body:
        from dataclasses import replace
        return replace(message, body=body, id=message.id or new_message_id())
    return message


def chunks(items: Sequence[T], size: int) -> Iterator[tuple[int, Sequence[T]]]:
    """Yield ``(offset, slice)`` pairs of at most ``size`` items, in order."""
    if size < 1:
        raise ValueError("chunk size must be positive")
    for start in range(0, len(items), size):
        yield start, items[start:start + size]
