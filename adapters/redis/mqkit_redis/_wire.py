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


def decode(entry_id: str, fields: dict[bytes, bytes]) -> Message:
    """The message stored in an entry (see the module docstring for the layout).

    Consumes ``fields`` (the reply's own dict): known fields are popped from it.
    """
    pop = fields.pop
    body = pop(BODY, b"")
    mid, key, ct = pop(_ID, None), pop(_KEY, None), pop(_CT, None)
    corr, reply = pop(_CORR, None), pop(_REPLY, None)
    headers: dict[str, str] = {}
    for name, value in fields.items():
        plain = name[_PREFIX_LEN:] if name.startswith(_PREFIX_B) else name
        headers[plain.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return Message(
        body=body,
        key=None if key is None else key.decode("utf-8", "replace"),
        headers=headers,
        id=mid.decode("utf-8", "replace") if mid else (entry_id or None),
        content_type=None if ct is None else ct.decode("utf-8", "replace"),
        correlation_id=None if corr is None else corr.decode("utf-8", "replace"),
        reply_to=None if reply is None else reply.decode("utf-8", "replace"),
    )


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
