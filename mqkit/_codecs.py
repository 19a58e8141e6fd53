"""Codecs: turn values into message bodies and back, recording the content type.

The wire carries only the encoded body and a ``content_type`` property; there is no
envelope, so any plain client reads what mqkit writes. On receipt
:meth:`ReceivedMessage.decode` picks the codec from the message's content type.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ._errors import ConfigurationError, InvalidMessage

if TYPE_CHECKING:
    # PEP 696 default: a bare ``Codec`` (in users' annotations too) means ``Codec[Any]``.
    # Type checkers only: at run time the plain TypeVar is enough.
    from typing_extensions import TypeVar

    T_co = TypeVar("T_co", covariant=True, default=Any)
else:
    T_co = typing.TypeVar("T_co", covariant=True)

__all__ = ["Codec", "JSON", "RAW", "TEXT", "codec_for", "register_codec"]


class Codec(Protocol[T_co]):
    """Encodes values to bytes and back, under one content type.

    Generic in what ``decode`` returns: ``RAW`` is a ``Codec[bytes]``, ``TEXT`` a
    ``Codec[str]``, ``JSON`` a ``Codec[Any]``; ``msg.decode(mqkit.TEXT)`` is typed
    ``str``. A bare ``Codec`` means ``Codec[Any]``.
    """

    @property
    def content_type(self) -> str: ...

    def encode(self, value: Any) -> bytes: ...

    def decode(self, body: bytes) -> T_co: ...


@dataclass(frozen=True)
class RawCodec:
    """Bytes in, bytes out (the default). ``bytearray``/``memoryview`` are copied to bytes."""

    content_type: str = "application/octet-stream"

    def encode(self, value: Any) -> bytes:
        if isinstance(value, bytes):
            return value
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        raise InvalidMessage(
            f"the raw codec sends bytes, got {type(value).__name__}; "
            "pass bytes or use codec=mqkit.JSON")

    def decode(self, body: bytes) -> bytes:
        return body


@dataclass(frozen=True)
class TextCodec:
    """``str`` encoded as UTF-8."""

    content_type: str = "text/plain; charset=utf-8"

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, str):
            raise InvalidMessage(f"the text codec sends str, got {type(value).__name__}")
        return value.encode("utf-8")

    def decode(self, body: bytes) -> str:
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidMessage(f"body is not valid UTF-8 text: {exc}") from exc


@dataclass(frozen=True)
class JsonCodec:
    """JSON (UTF-8, compact separators, no NaN)."""

    content_type: str = "application/json"

    def encode(self, value: Any) -> bytes:
        try:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise InvalidMessage(f"value is not JSON-serialisable: {exc}") from exc

    def decode(self, body: bytes) -> Any:
        try:
            return json.loads(body)
        except ValueError as exc:
            raise InvalidMessage(f"body is not valid JSON: {exc}") from exc


RAW: Codec[bytes] = RawCodec()
TEXT: Codec[str] = TextCodec()
JSON: Codec[Any] = JsonCodec()

_BY_TYPE: dict[str, Codec] = {}


def register_codec(codec: Codec) -> None:
    """Make ``decode`` honour ``codec.content_type`` on received messages.

    ``codec`` must be a :class:`Codec` (a non-empty ``content_type`` and callable
    ``encode``/``decode``): anything else is a :class:`ConfigurationError` naming it.
    """
    from ._validation import check_codec  # _validation imports this module

    base = _base_type(check_codec("codec", codec).content_type)
    if not base:
        raise ConfigurationError(f"codec.content_type names no media type: "
                                 f"{codec.content_type!r}")
    _BY_TYPE[base] = codec


def codec_for(content_type: str | None) -> Codec:
    """The codec registered for ``content_type``; raw bytes when none or unknown.

    ``content_type`` is a ``str`` or ``None``: anything else is a
    :class:`ConfigurationError` naming it.
    """
    if content_type is None:
        return RAW
    if not isinstance(content_type, str):
        raise ConfigurationError(
            f"content_type must be a str or None, got {type(content_type).__name__}")
    if not content_type:
        return RAW
    return _BY_TYPE.get(_base_type(content_type), RAW)


def named_codec(name: str) -> Codec:
    """A codec by short name (``raw``, ``text``, ``json``), for the CLI and URLs."""
    table = {"raw": RAW, "text": TEXT, "json": JSON}
    try:
        return table[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown codec {name!r}; known: {', '.join(sorted(table))}") from None


def _base_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


# The built-in codecs need no check (and checking would import _validation, which
# imports this module: a cycle when _validation is imported first).
for _codec in (RAW, TEXT, JSON):
    _BY_TYPE[_base_type(_codec.content_type)] = _codec
