"""Native resource names: documented and configurable, so plain clients interoperate.

An SNS topic is ``<prefix><topic>``; a group's SQS queue is ``<prefix>`` +
``queue_format`` (default ``{topic}-{group}``). SQS and SNS names take ASCII letters,
digits, ``-`` and ``_`` (80 characters for a queue, 256 for a topic) and a final
``.fifo``; mqkit names may also hold ``.`` and ``:``, which become ``_``. A queue name
longer than 80 characters is cut and ends in 8 hex digits of its hash.

Priority bands (standard topics only; see ``_bands``): the band of priority p (1..9) of
``topic`` is named as the topic ``<topic>-mqkit-p<p>`` would be: an SNS topic (sns mode,
each group's band queue ``queue(<topic>-mqkit-p<p>, group)`` subscribed to it) or an
SQS queue (queue mode). A topic whose name ends like a band is refused
(``ConfigurationError`` naming ``topic``), and ``list_topics`` leaves bands out.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from mqkit.driver import ConfigurationError, InvalidMessage

__all__ = ["BANDS", "FIFO", "Names"]

BANDS = tuple(range(9, 0, -1))
"""The priority levels that have a band, highest first (0 is the plain topic)."""
_BAND_MARK = "-mqkit-p"
_BAND_RE = re.compile(re.escape(_BAND_MARK) + "[1-9](?:" + re.escape(".fifo") + ")?$")

FIFO = ".fifo"
_QUEUE_MAX = 80
_TOPIC_MAX = 256


def _clean(name: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in name)


def _fit(name: str, limit: int) -> str:
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return name[: limit - 9] + "-" + digest


@dataclass(frozen=True, slots=True)
class Names:
    """Topic and queue names for topics and groups."""

    prefix: str = ""
    queue_format: str = "{topic}-{group}"
    fifo: bool = False  # every topic FIFO (``fifo=true``), not only ``*.fifo`` names

    def is_fifo(self, topic: str) -> bool:
        return self.fifo or topic.endswith(FIFO)

    def _split(self, topic: str) -> tuple[str, str]:
        if topic.endswith(FIFO):
            return topic[: -len(FIFO)], FIFO
        return topic, FIFO if self.fifo else ""

    def topic(self, topic: str) -> str:
        """The SNS topic (sns mode) or SQS queue (queue mode) of ``topic``."""
        base, fifo = self._split(topic)
        return _fit(self.prefix + _clean(base), _TOPIC_MAX - len(fifo)) + fifo

    def topic_queue(self, topic: str) -> str:
        """The SQS queue of ``topic`` in queue mode."""
        base, fifo = self._split(topic)
        return _fit(self.prefix + _clean(base), _QUEUE_MAX - len(fifo)) + fifo

    def queue(self, topic: str, group: str) -> str:
        """The SQS queue of ``group`` on ``topic`` (sns mode)."""
        base, fifo = self._split(topic)
        name = self.queue_format.format(topic=_clean(base), group=_clean(group))
        return _fit(self.prefix + name, _QUEUE_MAX - len(fifo)) + fifo

    def group_of(self, topic: str, queue: str) -> str | None:
        """The group whose queue is ``queue`` on ``topic``, or ``None``."""
        base, fifo = self._split(topic)
        head, _, tail = self.queue_format.partition("{group}")
        start = self.prefix + head.format(topic=_clean(base))
        end = tail.format(topic=_clean(base)) + fifo
        if queue.startswith(start) and queue.endswith(end) and len(queue) > len(start) + len(end):
            return queue[len(start): len(queue) - len(end)]
        return None

    def band(self, topic: str, priority: int) -> str:
        """The mqkit name of ``topic``'s band of ``priority`` (1..9); ``topic`` itself
        for 0. Raises ``InvalidMessage`` naming ``priority`` outside 0..9."""
        if type(priority) is not int or not 0 <= priority <= 9:
            raise InvalidMessage(f"sqs: priority must be an int 0..9, got {priority!r}")
        return topic if priority == 0 else f"{topic}{_BAND_MARK}{priority}"

    def band_queue(self, topic: str, group: str, priority: int) -> str:
        """The SQS queue of ``group``'s band ``priority`` on ``topic``: the group queue
        of the band's SNS topic (sns mode) or the band's own queue (queue mode, where
        ``group`` is the topic's one group and does not show in the name)."""
        return self.queue(self.band(topic, priority), group)

    @staticmethod
    def is_band(name: str) -> bool:
        """Whether the mqkit (or native) topic name ``name`` names a priority band."""
        return _BAND_RE.search(name) is not None

    def check_topic(self, topic: str) -> None:
        """Refuse a topic name that would read as a band (``ConfigurationError`` naming
        ``topic``)."""
        if self.is_band(topic):
            raise ConfigurationError(f"sqs: topic {topic!r} ends like a priority band "
                                     f"({_BAND_MARK}1..9): choose another name")

    def dead_letter(self, topic: str) -> str:
        """The default dead-letter topic of ``topic``: ``<topic>-dlq`` (FIFO kept)."""
        if topic.endswith(FIFO):
            return f"{topic[: -len(FIFO)]}-dlq{FIFO}"
        return f"{topic}-dlq"

    def from_native(self, name: str) -> str | None:
        """The mqkit topic of a native topic or queue name, if it has this prefix."""
        if not name.startswith(self.prefix):
            return None
        if self.fifo:
            if not name.endswith(FIFO):
                return None  # a standard topic is none of a fifo=true client's
            name = name[: -len(FIFO)]
        return name[len(self.prefix):]

