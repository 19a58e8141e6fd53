"""Native names and header mapping (sans-I/O): what a plain NATS client sees.

A topic is a subject; its stream is ``<stream_prefix><topic>`` with ``.`` turned into
``_`` (stream names cannot hold ``.``), capturing exactly the subject ``<topic>``. A group
is a durable pull consumer named ``<group>`` with ``.`` turned into ``_``; its
description keeps the group's real name.

Priority bands (emulated; see ``_bands``): a message with priority p in 1..9 is published
to the **band subject** ``<topic>.mqkit-p<p>``, captured by its own stream, named as a
topic of that subject would be (``<stream_prefix><topic>_mqkit-p<p>``); priority 0 or none
to the plain subject ``<topic>``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

from mqkit.driver import ConfigurationError, InvalidMessage, Message

__all__ = [
    "BANDS", "BAND_DESCRIPTION", "CONTENT_TYPE", "CORRELATION_ID", "DELIVER_AT",
    "GROUP_DESCRIPTION", "KEY", "MSG_ID", "REPLY_TO", "TOPIC_DESCRIPTION", "band_subject",
    "check_topic", "consumer_name", "due_at", "group_from_description", "is_band_subject",
    "message_headers", "split_headers", "stream_name",
]

MSG_ID = "Nats-Msg-Id"
CONTENT_TYPE = "Content-Type"
CORRELATION_ID = "mqkit-correlation-id"
REPLY_TO = "mqkit-reply-to"
KEY = "mqkit-key"
DELIVER_AT = "mqkit-deliver-at"
"""A delayed send's due time (ms since the epoch, decimal): consumers give the message
back with a ``-NAK`` delay until then (emulated delay; see ``PullSubscription``)."""
_RESERVED = (MSG_ID, CONTENT_TYPE, CORRELATION_ID, REPLY_TO, KEY, DELIVER_AT)
GROUP_DESCRIPTION = "mqkit group "
TOPIC_DESCRIPTION = "mqkit topic "
BAND_DESCRIPTION = "mqkit priority band of "
BANDS = (9, 8, 7, 6, 5, 4, 3, 2, 1)
"""The priority levels with a band of their own, highest first (0 is the plain subject)."""
_BAND_SUFFIX = ".mqkit-p"
_BAND = re.compile(r".*\.mqkit-p[1-9]", re.DOTALL)


def band_subject(topic: str, priority: int) -> str:
    """The subject of ``topic``'s band for ``priority`` (an ``int`` 1..9; anything else
    raises ``InvalidMessage`` naming ``priority``)."""
    if type(priority) is not int or not 1 <= priority <= 9:
        raise InvalidMessage(f"nats: priority {priority!r} has no band (an int 1..9)")
    return f"{topic}{_BAND_SUFFIX}{priority}"


def is_band_subject(subject: str) -> bool:
    """Whether ``subject`` reads as a priority band (``<topic>.mqkit-p1``..``p9``): such
    a name is no topic of its own."""
    return _BAND.fullmatch(subject) is not None


def check_topic(topic: str) -> None:
    """Refuse a topic name that reads as a priority band (``ConfigurationError`` naming
    ``topic``): its stream would be taken for another topic's band."""
    if is_band_subject(topic):
        raise ConfigurationError(
            f"nats: topic {topic!r} ends like a priority band ({_BAND_SUFFIX}1..9): "
            "choose another name")


def stream_name(prefix: str, topic: str) -> str:
    """The JetStream stream holding ``topic``."""
    return prefix + topic.replace(".", "_")


def consumer_name(group: str) -> str:
    """The durable consumer name of ``group``."""
    return group.replace(".", "_")


def group_from_description(durable: str, description: str | None) -> str:
    """The group name a consumer stands for (its description, else its name)."""
    if description and description.startswith(GROUP_DESCRIPTION):
        return description[len(GROUP_DESCRIPTION):]
    return durable


def message_headers(msg: Message, now: float | None = None) -> dict[str, str]:
    """NATS headers for ``msg``: the user's headers plus the standard properties, and a
    delayed message's due time (``now``: the clock, default ``time.time()``)."""
    headers = dict(msg.headers)
    if msg.delay:
        clock = time.time() if now is None else now
        headers[DELIVER_AT] = str(int((clock + msg.delay) * 1000))
    if msg.id is not None:
        headers[MSG_ID] = msg.id
    if msg.content_type is not None:
        headers[CONTENT_TYPE] = msg.content_type
    if msg.correlation_id is not None:
        headers[CORRELATION_ID] = msg.correlation_id
    if msg.reply_to is not None:
        headers[REPLY_TO] = msg.reply_to
    if msg.key is not None:
        headers[KEY] = msg.key
    return headers


def due_at(native: Mapping[str, str] | None) -> float | None:
    """A received message's due time (seconds since the epoch), or ``None`` when it
    was not sent with a delay or the header is unreadable (then it is delivered)."""
    if not native:
        return None
    raw = native.get(DELIVER_AT)
    if raw is None:
        return None
    try:
        return int(raw) / 1000.0
    except ValueError:
        return None


def split_headers(native: Mapping[str, str] | None, body: bytes,
                  fallback_id: str | None, priority: int | None = None) -> Message:
    """A :class:`Message` from received NATS headers (standard properties taken out);
    ``priority``: the band it was read from (none for the plain subject)."""
    if not native:
        return Message(body, id=fallback_id, priority=priority)
    headers = {k: v for k, v in native.items() if k not in _RESERVED}
    return Message(body, key=native.get(KEY), headers=headers,
                   id=native.get(MSG_ID) or fallback_id,
                   content_type=native.get(CONTENT_TYPE),
                   correlation_id=native.get(CORRELATION_ID),
                   reply_to=native.get(REPLY_TO), priority=priority)
