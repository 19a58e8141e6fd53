"""Checks made before anything is sent or opened (sans-I/O, shared by both faces).

One helper per kind of value, used by every part of the public API, so that a wrong
type or value is always a typed :class:`MQError` naming the argument (never a bare
``TypeError``, never a silent replacement):

* :func:`check_seconds`: a finite, non-negative (or positive) number of seconds;
* :func:`check_int`: an ``int`` (never a ``bool``, never a float) within bounds;
* :func:`check_bool`, :func:`check_text`, :func:`check_choice`: a ``bool``, an optional
  ``str``, one of a few strings;
* :func:`check_name`: a portable topic or group name;
* :func:`check_codec`: a :class:`mqkit.Codec`;
* :func:`prepare`: a whole :class:`Message`, against the backend's capabilities.

Every message passes :func:`prepare` before it reaches a driver: it gets an id, its field
and header types are checked, its size (body, key and headers) is checked against the
backend's limit, and send options the backend cannot honour raise :class:`Unsupported`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from ._capabilities import Capabilities, Feature, Support
from ._codecs import RAW, Codec
from ._errors import ConfigurationError, InvalidMessage, MessageTooLarge, MQError
from ._expiry import stamp
from ._message import Headers, Message, new_message_id

__all__ = ["DLQ_HEADERS", "RESERVED_PREFIX", "build_message", "check_bool", "check_choice",
           "check_codec", "check_int", "check_name", "check_seconds", "check_text",
           "check_type", "chunks", "prepare", "unknown_names"]

T = TypeVar("T")

# Header names the portable layer writes on dead-lettered messages.
DLQ_HEADERS = {
    "reason": "mqkit-dead-letter-reason",
    "topic": "mqkit-dead-letter-topic",
    "group": "mqkit-dead-letter-group",
    "attempts": "mqkit-dead-letter-attempts",
}
# Header names starting with this (in any case) belong to mqkit and its adapters (dead
# letter reasons, NATS's mqkit-key, Kafka's mqkit-delivery-count...): refused from users.
RESERVED_PREFIX = "mqkit-"

# Topic and group names: portable across all five brokers (SQS allows only
# letters, digits, '-' and '_' in queue names; Kafka adds '.', Redis keys use ':').
# Adapters reject what their broker cannot take. Matched whole (fullmatch), so that a
# trailing newline is refused too.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")

_Error = type[MQError]


def check_seconds(name: str, value: object, *, positive: bool = False,
                  error: _Error = ConfigurationError) -> float:
    """``value`` as float if it is a finite number of seconds, non-negative (``positive``:
    above zero); else ``error`` (a :class:`ConfigurationError` by default) naming
    ``name``. ``bool``, text, ``None``, NaN and infinity are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            (value > 0 if positive else value >= 0) and value < math.inf):
        kind = "positive" if positive else "non-negative"
        raise error(f"{name} must be a finite, {kind} number of seconds, got {value!r}")
    return float(value)


def check_int(name: str, value: object, minimum: int, maximum: int | None = None, *,
              error: _Error = ConfigurationError) -> int:
    """``value`` if it is an ``int`` (not a ``bool``) in ``minimum..maximum``; else
    ``error`` naming ``name``."""
    if type(value) is not int or value < minimum or (maximum is not None and value > maximum):
        bounds = f"at least {minimum}" if maximum is None else f"{minimum}..{maximum}"
        raise error(f"{name} must be an integer {bounds}, got {value!r}")
    return value


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is ``True`` or ``False``; else a :class:`ConfigurationError`."""
    if type(value) is not bool:
        raise ConfigurationError(f"{name} must be True or False, got {value!r}")
    return value


def check_text(name: str, value: object, *, error: _Error = InvalidMessage) -> str | None:
    """``value`` if it is ``None`` or a non-empty ``str`` that UTF-8 can encode (no lone
    surrogates); else ``error`` naming ``name``."""
    if value is None:
        return None
    if type(value) is not str or not value:
        raise error(f"{name} must be a non-empty str, got {_show(value)}")
    if not value.isascii():
        _utf8_size(name, value, error)
    return value


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``; else a :class:`ConfigurationError`."""
    if not isinstance(value, str) or value not in choices:
        raise ConfigurationError(
            f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_name(kind: str, name: object) -> str:
    """Return ``name`` if it is a valid topic or group name, else raise naming it."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"invalid {kind} name {name!r}: use 1-200 letters, digits, '.', '_', ':' or '-', "
            "starting with a letter or digit")
    return name


def check_codec(name: str, codec: object) -> Codec:
    """``codec`` if it looks like a :class:`mqkit.Codec` (a str ``content_type``,
    callable ``encode`` and ``decode``); else a :class:`ConfigurationError`."""
    if not (isinstance(getattr(codec, "content_type", None), str)
            and callable(getattr(codec, "encode", None))
            and callable(getattr(codec, "decode", None))):
        hint = " (pass mqkit.JSON, not 'json')" if isinstance(codec, str) else ""
        raise ConfigurationError(
            f"{name} must be a mqkit.Codec such as mqkit.RAW, mqkit.TEXT or mqkit.JSON"
            f"{hint}, got {_show(codec)}")
    return codec  # type: ignore[return-value]  # checked structurally above


def unknown_names(source: str, unknown: Sequence[str], valid: Iterable[str]) -> ConfigurationError:
    """The error for parameters nobody knows: names each with a "did you mean" when a
    known name is close (:func:`difflib.get_close_matches`), and lists the valid ones:
    ``valid`` (an adapter's own) and the portable :class:`mqkit.ClientOptions` every
    backend takes (``prefetch``, ``connect_timeout``, ...)."""
    import dataclasses
    import difflib

    from ._options import ClientOptions
    own = sorted(set(valid))
    portable = sorted(f.name for f in dataclasses.fields(ClientOptions) if f.name not in own)
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(str(name), own + portable, n=1)
        parts.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
    text = f"unknown {source} {', '.join(parts)}; valid: {', '.join(own) or '(none)'}"
    if portable and own != portable:
        text += f"; portable (every backend): {', '.join(portable)}"
    return ConfigurationError(text)


def check_type(name: str, kind: object) -> type[Any]:
    """``kind`` if it is a class (what ``as_`` and ``isinstance`` take); else a
    :class:`ConfigurationError` naming ``name``."""
    if not isinstance(kind, type):
        raise ConfigurationError(f"{name} must be a class, such as pika.BlockingConnection, "
                                 f"got {_show(kind)}")
    return kind


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{type(value).__name__} of {len(text)} characters"


def _utf8_size(name: str, text: str, error: _Error = InvalidMessage) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise error(f"{name} is not valid Unicode text (UTF-8 cannot encode it: "
                    f"{exc.reason} at {exc.start})") from None


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
    try:
        body = codec.encode(value)
    except MQError:
        raise
    except Exception as exc:  # a user's codec: its failure is still mqkit's typed error
        raise InvalidMessage(f"codec {codec.content_type!r} could not encode the "
                             f"{type(value).__name__} body: {type(exc).__name__}: "
                             f"{exc}") from exc
    if codec is not RAW and "content_type" not in overrides:
        overrides["content_type"] = codec.content_type
    if "id" not in overrides:
        overrides["id"] = new_message_id()
    return Message(body, **overrides)


def prepare(message: Message, caps: Capabilities, *, internal: bool = False) -> Message:
    """Validate ``message`` for a backend and give it an id; raise before anything is sent.

    Raises :class:`InvalidMessage` naming the field for a wrong type or value (``key``,
    ``id``, ``content_type``, ``correlation_id`` and ``reply_to`` are non-empty ``str``
    or ``None``; ``priority`` an ``int`` 0..9, where 0 needs no priority support; ``ttl``
    positive and ``delay`` non-negative finite seconds; headers a mapping of non-empty
    ``str`` to ``str`` whose names do not start with ``mqkit-``, unless ``internal``:
    mqkit's own sends),
    :class:`MessageTooLarge` when body, key and headers together (UTF-8 bytes) exceed
    ``caps.max_message_size``, and :class:`Unsupported` for an option the backend lacks.
    """
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
    key = message.key
    if key is not None:
        if type(key) is not str:
            raise InvalidMessage(f"key must be str, got {type(key).__name__}")
        size += len(key) if key.isascii() else _utf8_size("key", key)
    headers = message.headers
    if headers:
        size += _check_headers(headers, caps, internal)
    if size > caps.max_message_size:
        raise MessageTooLarge(
            f"message is {size} bytes (body {len(body)}, key and headers {size - len(body)}); "
            f"{caps.backend} accepts at most {caps.max_message_size} bytes",
            size=size, limit=caps.max_message_size)
    mid = message.id
    if mid is not None and (type(mid) is not str or not mid.isascii()):
        check_text("id", mid)
    elif mid == "":
        raise InvalidMessage("id must be a non-empty str, got ''")
    if message.content_type is not None:
        check_text("content_type", message.content_type)
    if message.correlation_id is not None:
        check_text("correlation_id", message.correlation_id)
    if message.reply_to is not None:
        check_text("reply_to", message.reply_to)
    if message.priority is not None:
        message = _checked_priority(message, caps)
    emulate_ttl = False
    if message.ttl is not None:
        check_seconds("ttl", message.ttl, positive=True, error=InvalidMessage)
        caps.require(Feature.TTL)
        emulate_ttl = caps.ttl is Support.EMULATED
    delay = message.delay
    if delay is not None:
        check_seconds("delay", delay, error=InvalidMessage)
        if delay > 0:
            caps.require(Feature.DELAY)
            if caps.max_delay is not None and delay > caps.max_delay:
                raise InvalidMessage(
                    f"delay {delay}s exceeds {caps.backend}'s maximum of {caps.max_delay}s")
    if emulate_ttl:
        return _with_deadline(message, body, mid)
    if mid is None or body is not raw:
        return message._rebuilt(body, mid or new_message_id())
    return message


def _checked_priority(message: Message, caps: Capabilities) -> Message:
    """``message``, whose priority is set, checked: 1..9 need priority support; 0, the
    lowest, is every message's priority, so (as with delay 0) a backend without
    priorities sends it as any message and its driver never sees one."""
    priority = check_int("priority", message.priority, 0, 9, error=InvalidMessage)
    if priority > 0:
        caps.require(Feature.PRIORITY)
        return message
    if caps.support(Feature.PRIORITY):
        return message
    from dataclasses import replace
    return replace(message, priority=None)


def _with_deadline(message: Message, body: bytes, mid: str | None) -> Message:
    """The message for a driver that emulates TTL: its deadline in a header, no ttl."""
    from dataclasses import replace

    headers = dict(message.headers) if message.headers else {}
    stamp(message, headers)
    return replace(message, body=body, id=mid or new_message_id(), ttl=None,
                   headers=headers)


def _check_headers(headers: Mapping[str, str], caps: Capabilities, internal: bool) -> int:
    """Check header types, names and count; return their size in UTF-8 bytes."""
    if type(headers) is not Headers and not isinstance(headers, Mapping):
        raise InvalidMessage("headers must be a mapping of str to str")
    if caps.max_headers is not None and len(headers) > caps.max_headers:
        raise InvalidMessage(
            f"message has {len(headers)} headers; {caps.backend} allows at most "
            f"{caps.max_headers}")
    size = 0
    for name, value in headers.items():
        if type(name) is not str or type(value) is not str:
            raise InvalidMessage(
                f"header {_show(name)} must map str to str, got "
                f"{type(name).__name__} to {type(value).__name__}")
        if not name:
            raise InvalidMessage("header names must not be empty")
        if name[0] in "mM" and name[:6].lower() == RESERVED_PREFIX and not internal:
            raise InvalidMessage(
                f"header {name!r}: names starting with {RESERVED_PREFIX!r} are reserved for "
                "mqkit; rename it (to forward a received message, drop those headers: "
                f"{{k: v for k, v in msg.headers.items() if not k.startswith('mqkit-')}})")
        if name.isascii() and value.isascii():
            size += len(name) + len(value)
        else:
            size += _utf8_size(f"header name {name!r}", name) + _utf8_size(
                f"header {name!r}", value)
    return size


def chunks(items: Sequence[T], size: int) -> Iterator[tuple[int, Sequence[T]]]:
    """Yield ``(offset, slice)`` pairs of at most ``size`` items, in order."""
    if size < 1:
        raise ValueError("chunk size must be positive")
    for start in range(0, len(items), size):
        yield start, items[start:start + size]
