"""Messages to and from SQS/SNS entries (sans-I/O).

Body: a body that is valid UTF-8 made only of characters SQS accepts (tab, newline,
carriage return, U+0020 and above, no surrogates or U+FFFE/U+FFFF) goes as is, so plain
peers read it. Any other body goes as standard base64, and an empty body as ``-``
(SQS and SNS refuse empty bodies); either is flagged in mqkit's attribute.

Attributes: each header is a ``String`` message attribute of the same name. mqkit's own
fields travel in **one** ``String`` attribute named ``mqkit``, a compact JSON object
with the keys that apply: ``id``, ``key``, ``content-type``, ``correlation-id``,
``reply-to``, ``body`` (``"base64"`` or ``"empty"``) and ``headers`` (headers that cannot
be SQS attributes: empty values, names SQS refuses; headers past the 9 attributes left
beside ``mqkit``, the user's first, mqkit's own ``mqkit-*`` last). So a message uses at
most 10 attributes whatever its header count (``max_headers`` is unbounded: only the
size counts), and a plain peer sees the first 9 of the user's headers as attributes.

On receipt, a message without the ``mqkit`` attribute (from a plain peer) gets the SQS
``MessageId`` as its id, and every attribute as a header (``Binary`` ones in base64).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from mqkit.driver import Delivery, Message, MessageTooLarge

__all__ = [
    "ATTRIBUTE_LIMIT",
    "MAX_SIZE",
    "META",
    "Encoded",
    "decode",
    "encode",
]

META = "mqkit"
# SQS and SNS: 256 KiB per message, body and attributes (names, types, values) together.
MAX_SIZE = 262_144
# SQS: at most 10 message attributes per message.
ATTRIBUTE_LIMIT = 10
_EMPTY_BODY = "-"
# Characters SQS refuses in bodies and attribute values (its XML 1.0 character range).
_REFUSED = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Attribute names SQS accepts: letters, digits, '_', '-', '.'; no leading/trailing or
# doubled '.', no AWS./Amazon. prefix, at most 256 characters.
_NAME = re.compile(r"[A-Za-z0-9_-](?:[A-Za-z0-9_.-]{0,254}[A-Za-z0-9_-])?")
_DEDUP = re.compile(r"[!-~]{1,128}")


class Encoded:
    """One message as SQS/SNS take it: body text, attributes and its billed size."""

    __slots__ = ("attributes", "body", "size")

    def __init__(self, body: str, attributes: dict[str, dict[str, str]], size: int) -> None:
        self.body = body
        self.attributes = attributes
        self.size = size


def _is_attribute_name(name: str) -> bool:
    lowered = name.lower()
    return (bool(_NAME.fullmatch(name)) and ".." not in name and name != META
            and not lowered.startswith(("aws.", "amazon.")))


def encode(message: Message, *, limit: int = MAX_SIZE) -> Encoded:
    """Encode ``message``; raise :class:`mqkit.MessageTooLarge` over ``limit`` bytes."""
    meta: dict[str, Any] = {"id": message.id}
    for field, value in (("key", message.key), ("content-type", message.content_type),
                         ("correlation-id", message.correlation_id),
                         ("reply-to", message.reply_to)):
        if value is not None:
            meta[field] = value
    raw = message.body
    if not raw:
        body, meta["body"] = _EMPTY_BODY, "empty"
    else:
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            body = ""
        if not body or _REFUSED.search(body):
            body, meta["body"] = base64.b64encode(raw).decode("ascii"), "base64"
    attributes: dict[str, dict[str, str]] = {}
    extra: dict[str, str] = {}
    room = ATTRIBUTE_LIMIT - 1  # one is mqkit's own
    # The user's headers first; mqkit's own (mqkit-*) take what attributes are left.
    ordered = sorted(message.headers.items(), key=lambda item: item[0][:6] == "mqkit-")
    for name, value in ordered:
        if (len(attributes) < room and value and not _REFUSED.search(value)
                and (name[:6] == "mqkit-" or _is_attribute_name(name))):
            attributes[name] = {"DataType": "String", "StringValue": value}
        else:
            extra[name] = value
    if extra:
        meta["headers"] = extra
    text = json.dumps(meta, ensure_ascii=False, separators=(",", ":"))
    if _REFUSED.search(text):
        # Unpaired surrogates or refused controls in a field: JSON escapes keep it legal.
        text = json.dumps(meta, ensure_ascii=True, separators=(",", ":"))
    attributes[META] = {"DataType": "String", "StringValue": text}
    size = len(body.encode("utf-8")) + sum(
        len(name.encode()) + len(a["DataType"]) + len(a["StringValue"].encode())
        for name, a in attributes.items())
    if size > limit:
        raise MessageTooLarge(
            f"sqs: message is {size} bytes on the wire (body {len(raw)} bytes"
            f"{', base64' if meta.get('body') == 'base64' else ''}, plus attributes); "
            f"SQS and SNS accept at most {limit}", size=size, limit=limit)
    return Encoded(body, attributes, size)


def dedup_id(message: Message) -> str:
    """A FIFO deduplication id from the message id (hashed when SQS would refuse it)."""
    mid = message.id or ""
    if _DEDUP.fullmatch(mid):
        return mid
    return hashlib.sha256(mid.encode()).hexdigest()


def delay_seconds(delay: float | None) -> int:
    """Whole seconds of ``delay``, rounded up so a message never comes early."""
    if not delay or delay <= 0:
        return 0
    return math.ceil(delay - 1e-9)


def _attribute_text(attr: Mapping[str, Any]) -> str:
    if "StringValue" in attr:
        return str(attr["StringValue"])
    blob = attr.get("BinaryValue", b"")
    return base64.b64encode(blob if isinstance(blob, bytes) else bytes(blob)).decode()


def decode(raw: Mapping[str, Any], topic: str, *, priority: int | None = None,
           url: str | None = None) -> Delivery:
    """The :class:`Delivery` of one message of a ReceiveMessage response; from a
    priority band's queue (``url``), its handle is ``(url, receipt handle)`` and its
    message has the band's ``priority``."""
    attrs = dict(raw.get("MessageAttributes") or {})
    meta: dict[str, Any] = {}
    meta_attr = attrs.get(META)
    if meta_attr is not None:
        try:
            loaded = json.loads(_attribute_text(meta_attr))
        except ValueError:
            loaded = None
        if isinstance(loaded, dict):
            meta = loaded
            del attrs[META]
    headers = {name: _attribute_text(a) for name, a in attrs.items()}
    extra = meta.get("headers")
    if isinstance(extra, dict):
        headers.update({str(k): str(v) for k, v in extra.items()})
    text: str = raw.get("Body", "")
    flag = meta.get("body")
    if flag == "empty":
        body = b""
    elif flag == "base64":
        try:
            body = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            body = text.encode("utf-8", "surrogatepass")
    else:
        body = text.encode("utf-8", "surrogatepass")
    system = raw.get("Attributes") or {}
    count = int(system.get("ApproximateReceiveCount", "1") or 1)
    sent = system.get("SentTimestamp")
    message = Message(
        body, key=_opt(meta.get("key")), headers=headers,
        id=_opt(meta.get("id")) or raw.get("MessageId"),
        content_type=_opt(meta.get("content-type")),
        correlation_id=_opt(meta.get("correlation-id")),
        reply_to=_opt(meta.get("reply-to")), priority=priority)
    receipt = raw["ReceiptHandle"]
    return Delivery(message=message, topic=topic,
                    handle=receipt if url is None else (url, receipt),
                    delivery_count=max(1, count),
                    timestamp=int(sent) / 1000 if sent else None,
                    broker_id=raw.get("MessageId"))


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
