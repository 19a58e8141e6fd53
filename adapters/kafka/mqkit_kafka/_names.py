"""Native names and the header mapping (sans-I/O): what a plain Kafka client sees.

A topic is a Kafka topic of the same name. A group is the consumer group
``group_format`` (default ``<topic>.<group>``: Kafka group ids are cluster-wide, mqkit
groups are per topic). Its retry topic, where nacked messages wait, is
``<retry_prefix><group id>``. Standard properties travel in headers next to the user's:
``mqkit-id``, ``content-type``, ``mqkit-correlation-id``, ``mqkit-reply-to``; the key is
the record key. A retried copy also carries ``mqkit-delivery-count`` and, when delayed,
``mqkit-retry-at`` (epoch milliseconds); both are removed on receipt.
"""

from __future__ import annotations

from collections.abc import Sequence

from mqkit.driver import Message

__all__ = ["COUNT", "MSG_ID", "RETRY_AT", "Names", "record_headers", "split_record"]

MSG_ID = "mqkit-id"
CONTENT_TYPE = "content-type"
CORRELATION_ID = "mqkit-correlation-id"
REPLY_TO = "mqkit-reply-to"
COUNT = "mqkit-delivery-count"
RETRY_AT = "mqkit-retry-at"
_RESERVED = frozenset((MSG_ID, CONTENT_TYPE, CORRELATION_ID, REPLY_TO, COUNT, RETRY_AT))


class Names:
    """Group ids and retry topics for one configuration."""

    def __init__(self, group_format: str, retry_prefix: str) -> None:
        self.group_format = group_format
        self.retry_prefix = retry_prefix

    def group_id(self, topic: str, group: str) -> str:
        return self.group_format.format(topic=topic, group=group)

    def retry_topic(self, topic: str, group: str) -> str:
        return self.retry_prefix + self.group_id(topic, group)

    def internal(self, topic: str) -> bool:
        """Whether ``topic`` is mqkit's own (a retry topic) or Kafka's (``__...``)."""
        return topic.startswith(self.retry_prefix) or topic.startswith("__")

    def group_of(self, topic: str, group_id: str) -> str | None:
        """The mqkit group name ``group_id`` stands for on ``topic``, if it matches."""
        head, _, tail = self.group_format.partition("{group}")
        head = head.format(topic=topic)
        tail = tail.format(topic=topic)
        if group_id.startswith(head) and group_id.endswith(tail) \
                and len(group_id) > len(head) + len(tail):
            return group_id[len(head):len(group_id) - len(tail)]
        return None


def record_headers(msg: Message, extra: Sequence[tuple[str, str]] = ()) -> list[tuple[str, bytes]]:
    """Kafka record headers for ``msg``: the user's plus the standard properties."""
    if msg.id is not None and not msg.headers and not extra and msg.content_type is None \
            and msg.correlation_id is None and msg.reply_to is None:
        return [(MSG_ID, msg.id.encode())]  # a plain message (the common case), in one go
    out = [(k, v.encode()) for k, v in msg.headers.items()]
    if msg.id is not None:
        out.append((MSG_ID, msg.id.encode()))
    if msg.content_type is not None:
        out.append((CONTENT_TYPE, msg.content_type.encode()))
    if msg.correlation_id is not None:
        out.append((CORRELATION_ID, msg.correlation_id.encode()))
    if msg.reply_to is not None:
        out.append((REPLY_TO, msg.reply_to.encode()))
    out.extend((k, v.encode()) for k, v in extra)
    return out


def _text(value: bytes | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", errors="replace")


def split_record(text_key: str | None, body: bytes,
                 headers: Sequence[tuple[str, bytes | None]],
                 fallback_id: str) -> tuple[Message, int, float | None]:
    """The message of a record (key decoded, value never None), its delivery count (1
    unless retried) and its retry time."""
    user: dict[str, str] = {}
    native: dict[str, str] = {}
    for name, raw in headers:
        if name in _RESERVED:
            native[name] = _text(raw)
        else:
            user[name] = _text(raw)
    count = 1
    if COUNT in native:
        try:
            count = max(1, int(native[COUNT]))
        except ValueError:
            count = 1
    retry_at = None
    if RETRY_AT in native:
        try:
            retry_at = int(native[RETRY_AT]) / 1000.0
        except ValueError:
            retry_at = None
    msg = Message(body, key=text_key, headers=user, id=native.get(MSG_ID) or fallback_id,
                  content_type=native.get(CONTENT_TYPE),
                  correlation_id=native.get(CORRELATION_ID),
                  reply_to=native.get(REPLY_TO))
    return msg, count, retry_at


def record_size(key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> int:
    """An upper bound of the record's size in a batch (varint lengths at 5 bytes)."""
    size = 21 + len(value) + (len(key) if key else 0)  # attributes, deltas, lengths
    for name, data in headers:
        size += 10 + len(name.encode()) + len(data)
    return size + 61  # the record batch header, for a batch of one
