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
=====================  ===============================================================

Helper keys are not streams, so listing topics (``SCAN ... TYPE stream``) never shows them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Names"]


@dataclass(frozen=True, slots=True)
class Names:
    key_prefix: str = ""
    dlq_suffix: str = ":dlq"

    def stream(self, topic: str) -> str:
        return self.key_prefix + topic

    def topic(self, key: str) -> str | None:
        """The topic of a stream key, or ``None`` when it lacks the prefix."""
        return key[len(self.key_prefix):] if key.startswith(self.key_prefix) else None

    def retry(self, topic: str, group: str) -> str:
        return f"{self.stream(topic)}:mqkit-retry:{group}"

    def delayed(self, topic: str) -> str:
        return f"{self.stream(topic)}:mqkit-delayed"

    def dead_letter(self, topic: str) -> str:
        return topic + self.dlq_suffix
