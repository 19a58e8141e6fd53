"""The layout of a message in a stream entry (sans-I/O), readable by plain clients.

One entry per message, its fields::

    body            the body, byte-exact (always present, possibly empty)
    id              mqkit's message id
    key             the message key, when there is one
    content-type    Message.content_type, when set
    correlation-id  Message.correlation_id, when set
    reply-to        Message.reply_to, when set
    h:<name>        one field per header, value as UTF-8

On receipt, a field outside this list (a plain client's ``XADD s * body hi tenant a``)
is a header under its own name; an entry without ``id`` takes the entry id as its
message id; an entry without ``body`` has an empty body.
"""

from __future__ import annotations

from collections.abc import Sequence

from mqkit.driver import Message

__all__ = ["HEADER_PREFIX", "decode", "encode", "entry_time", "join_fields", "split_fields"]

BODY = b"body"
HEADER_PREFIX = "h:"
_PREFIX_B = HEADER_PREFIX.encode()
_PREFIX_LEN = len(_PREFIX_B)
_ID, _KEY, _CT, _CORR, _REPLY = b"id", b"key", b"content-type", b"correlation-id", b"reply-to"


def encode(message: Message) -> list[bytes | str]:
    """The flat field/value list of XADD for ``message`` (it has an id)."""
    out: list[bytes | str] = [BODY, message.body, _ID, message.id or ""]
    if message.key is not None:
        out += [_KEY, message.key]
    if message.content_type is not None:
        out += [_CT, message.content_type]
    if message.correlation_id is not None:
        out += [_CORR, message.correlation_id]
    if message.reply_to is not None:
        out += [_REPLY, message.reply_to]
    for name, value in message.headers.items():
        out += [HEADER_PREFIX + name, value]
    return out


def decode(entry_id: str, fields: Sequence[bytes]) -> Message:
    """The message stored in an entry, from its flat field/value list (the raw reply);
    see the module docstring for the layout."""
    body = b""
    mid = key = ct = corr = reply = None
    headers: dict[str, str] = {}
    it = iter(fields)
    for name, value in zip(it, it, strict=True):
        if name == BODY:
            body = value
        elif name == _ID:
            mid = value
        elif name.startswith(_PREFIX_B):
            headers[name[_PREFIX_LEN:].decode("utf-8", "replace")] = value.decode(
                "utf-8", "replace")
        elif name == _KEY:
            key = value.decode("utf-8", "replace")
        elif name == _CT:
            ct = value.decode("utf-8", "replace")
        elif name == _CORR:
            corr = value.decode("utf-8", "replace")
        elif name == _REPLY:
            reply = value.decode("utf-8", "replace")
        else:
            headers[name.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return Message(body, key, headers, mid.decode("utf-8", "replace") if mid else
                   (entry_id or None), ct, corr, reply)


def entry_time(entry_id: str) -> float | None:
    """The broker's acceptance time of an entry, from the milliseconds in its id."""
    ms, _, _ = entry_id.partition("-")
    return int(ms) / 1000 if ms.isdigit() else None


def join_fields(fields: list[bytes | str]) -> bytes:
    """The fields of an entry as one string, ``<len>:<bytes>`` each: how a delayed
    message waits in its sorted set (binary-safe, and split by a short Lua loop)."""
    out = []
    for item in fields:
        raw = item.encode() if isinstance(item, str) else item
        out += [str(len(raw)).encode(), b":", raw]
    return b"".join(out)


def split_fields(packed: bytes) -> list[bytes]:
    """The inverse of :func:`join_fields` (what the mover script does in Lua)."""
    out, pos = [], 0
    while pos < len(packed):
        colon = packed.index(b":", pos)
        size = int(packed[pos:colon])
        out.append(packed[colon + 1:colon + 1 + size])
        pos = colon + 1 + size
    return out
