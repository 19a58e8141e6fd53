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

from collections.abc import Iterable, Sequence
from typing import Any

from mqkit.driver import Delivery, Message, received

__all__ = ["HEADER_PREFIX", "decode", "deliveries", "encode", "entry_time", "join_fields",
           "parse_payload", "split_fields", "unpack"]

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


Fields = tuple[bytes, "str | None", "dict[str, str]", "str | None", "str | None",
               "str | None", "str | None"]


def unpack(entry_id: str, fields: Sequence[bytes]) -> Fields:
    """``(body, key, headers, id, content_type, correlation_id, reply_to)`` of an
    entry, from its flat field/value list (the raw reply); see the module docstring."""
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
    return (body, key, headers, mid.decode("utf-8", "replace") if mid else (entry_id or None),
            ct, corr, reply)


def decode(entry_id: str, fields: Sequence[bytes]) -> Message:
    """The message stored in an entry, from its flat field/value list."""
    return Message(*unpack(entry_id, fields))


def deliveries(topic: str, entries: Iterable[Any], counts: dict[str, int] | None,
               out: list[Delivery], band: tuple[str, int] | None = None) -> None:
    """Append to ``out`` the delivery of each entry of an XREADGROUP or XCLAIM reply
    (``[id, fields]`` pairs; ``None`` or ``[id, None]`` for an entry deleted
    meanwhile, skipped). The entry id is the handle and the broker id, its
    milliseconds the timestamp; the delivery count is 1, or ``counts[id]`` (2 when
    missing) for claimed entries. ``band``: ``(band stream key, priority)`` of entries
    read from a priority band's stream; their handle is ``(band key, entry id)`` and
    their message's priority the band's (entries of the plain stream: the entry id, and
    no priority). The hot path of receiving: one call per message, to the SPI's fast
    builder, for what mqkit itself writes (a body, an id and maybe a key)."""
    append = out.append
    last_ms = ""
    timestamp: float | None = None
    count = 1
    band_key, priority = band if band is not None else (None, None)
    for entry in entries:
        if entry is None or entry[1] is None:
            continue
        raw_id, fields = entry
        if type(fields) is dict:  # RESP3
            fields = [x for pair in fields.items() for x in pair]
        entry_id = raw_id.decode() if type(raw_id) is bytes else str(raw_id)
        ms = entry_id.partition("-")[0]
        if ms != last_ms:  # entries of one batch mostly share their millisecond
            last_ms = ms
            timestamp = int(ms) / 1000 if ms.isdigit() else None
        if counts is not None:
            count = counts.get(entry_id, 2)
        handle: Any = entry_id if band_key is None else (band_key, entry_id)
        size = len(fields)
        if (size == 4 or (size == 6 and fields[4] == _KEY)) and fields[0] == BODY \
                and fields[2] == _ID and fields[3]:  # what encode() writes, in its order
            append(received(fields[1], fields[5].decode("utf-8", "replace") if size == 6
                            else None, {}, fields[3].decode("utf-8", "replace"),
                            None, None, None, topic, handle, count, timestamp, entry_id,
                            priority=priority))
        else:
            append(received(*unpack(entry_id, fields), topic, handle, count, timestamp,
                            entry_id, priority=priority))


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


def parse_payload(payload: bytes) -> list[bytes]:
    """The fields of a pub/sub payload, or ``[body, payload]`` when it is not joined
    fields (a plain ``PUBLISH ch hello``)."""
    try:
        parts = split_fields(payload)
    except ValueError:
        parts = []
    if len(parts) % 2 or parts[:1] != [b"body"]:
        return [b"body", payload]
    return parts
