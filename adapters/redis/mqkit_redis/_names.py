"""Native key names of topics, groups and mqkit's helper keys (sans-I/O).

=====================  ===============================================================
what                   key
=====================  ===============================================================
topic                  ``<key_prefix><topic>``: a stream
dead-letter topic      ``<topic><dlq_suffix>`` (default ``<topic>:dlq``): a stream
group                  a consumer group of the topic's stream, named as the group
nack retry schedule    ``<stream key>:mqkit-retry:<group>``: a sorted set, score = due
                       time (ms since the epoch), member = entry id
delayed sends          ``<stream key>:mqkit-delayed``: a sorted set, score = due time
                       (ms), member = the entry's fields (``_wire.join_fields``)
priority band p        ``<stream key>:mqkit-p<p>`` (p = 1..9): a stream holding the
                       topic's messages sent with priority p; it has the topic's groups
                       and its own retry schedule and delayed set (the names above with
                       the band's key as stream key). Priority 0 or none: the plain stream
=====================  ===============================================================

In cluster mode (``redis+cluster://``, ``cluster=True``) the topic part of every key is a
hash tag: the stream of topic ``t`` is ``<key_prefix>{t}``, and every key above is built
from it (``<key_prefix>{t}:mqkit-retry:<group>``, ``<key_prefix>{t}:mqkit-p3``...), so
all of a topic's keys hash to one slot and every multi-key command, script and pipeline
of a topic stays on one node. A topic or ``key_prefix`` holding a brace is refused there
(``ConfigurationError`` naming it): it would move the tag. Single-node and Sentinel key
names are unchanged.

Helper keys are not streams, so listing topics (``SCAN ... TYPE stream``) never shows them;
band streams are, and ``list_topics`` leaves them out (:meth:`Names.is_band`). A topic
whose name ends like a band (``...:mqkit-p3``) is refused (``ConfigurationError`` naming
``topic``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mqkit.driver import ConfigurationError, InvalidMessage

__all__ = ["BANDS", "Names"]

BANDS = tuple(range(9, 0, -1))
"""The priority levels that have a band stream, highest first (0 is the plain stream)."""
_BAND_MARK = ":mqkit-p"
_BAND_RE = re.compile(re.escape(_BAND_MARK) + "[1-9]$")
_BRACES = re.compile("[{}]")


@dataclass(frozen=True, slots=True)
class Names:
    key_prefix: str = ""
    dlq_suffix: str = ":dlq"
    cluster: bool = False

    def __post_init__(self) -> None:
        if self.cluster and _BRACES.search(self.key_prefix):
            raise ConfigurationError(
                f"redis: key_prefix {self.key_prefix!r} holds a brace; on redis+cluster:// "
                "the topic is the key's hash tag ({topic}), so the prefix must not have one")

    def stream(self, topic: str) -> str:
        if not self.cluster:
            return self.key_prefix + topic
        if not topic or _BRACES.search(topic):
            raise ConfigurationError(
                f"redis: topic {topic!r} cannot be a hash tag on redis+cluster:// (it is "
                "empty or holds a brace); choose a name without { or }")
        return f"{self.key_prefix}{{{topic}}}"

    def topic(self, key: str) -> str | None:
        """The topic of a stream key, or ``None`` when it lacks the prefix (in cluster
        mode: the braces) or is a priority band's stream."""
        if not key.startswith(self.key_prefix) or self.is_band(key):
            return None
        rest = key[len(self.key_prefix):]
        if not self.cluster:
            return rest
        if len(rest) > 2 and rest[0] == "{" and rest[-1] == "}" \
                and not _BRACES.search(rest[1:-1]):
            return rest[1:-1]
        return None

    def band(self, topic: str, priority: int) -> str:
        """The stream of ``topic``'s messages of ``priority`` (1..9); the plain stream
        for 0. Raises ``InvalidMessage`` naming ``priority`` outside 0..9."""
        if type(priority) is not int or not 0 <= priority <= 9:
            raise InvalidMessage(f"redis: priority must be an int 0..9, got {priority!r}")
        key = self.stream(topic)
        return key if priority == 0 else f"{key}{_BAND_MARK}{priority}"

    def bands(self, topic: str) -> list[str]:
        """The nine band streams of ``topic``, highest priority first (most may not
        exist)."""
        key = self.stream(topic)
        return [f"{key}{_BAND_MARK}{p}" for p in BANDS]

    @staticmethod
    def is_band(key: str) -> bool:
        """Whether ``key`` names a priority band's stream."""
        return _BAND_RE.search(key) is not None

    @staticmethod
    def check_topic(topic: str) -> None:
        """Refuse a topic name that would read as a band stream (``ConfigurationError``
        naming ``topic``)."""
        if _BAND_RE.search(topic):
            raise ConfigurationError(f"redis: topic {topic!r} ends like a priority band "
                                     f"stream ({_BAND_MARK}1..9): choose another name")

    def retry(self, topic: str, group: str) -> str:
        return self.retry_of(self.stream(topic), group)

    def delayed(self, topic: str) -> str:
        return self.delayed_of(self.stream(topic))

    @staticmethod
    def retry_of(key: str, group: str) -> str:
        """The retry schedule of ``group`` on the stream ``key`` (plain or band)."""
        return f"{key}:mqkit-retry:{group}"

    @staticmethod
    def delayed_of(key: str) -> str:
        """The delayed set of the stream ``key`` (plain or band)."""
        return f"{key}:mqkit-delayed"

    def dead_letter(self, topic: str) -> str:
        return topic + self.dlq_suffix
