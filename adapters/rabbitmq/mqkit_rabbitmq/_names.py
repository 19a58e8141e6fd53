"""Native resource names: documented and configurable, so plain clients interoperate."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MARKER_HEADER", "REGISTRY_QUEUE", "SNAPSHOT_QUEUE", "STREAM_SUFFIX", "Names"]

# The durable stream where mqkit records the topics and groups it creates, because
# AMQP 0-9-1 cannot list exchanges or queues (see the package docstring).
REGISTRY_QUEUE = "mqkit.registry"
# The registry's newest snapshot, so readers replay only what follows it (see ._registry).
SNAPSHOT_QUEUE = "mqkit.registry.snapshot"
_INTERNAL = "mqkit."
# Topics named ``*<STREAM_SUFFIX>`` keep their history in an archive stream, so a group
# created at ``earliest`` gets it (see ._archive). A naming convention, like SQS's
# ``*.fifo``: capabilities must follow from a topic's name alone, without a broker call.
STREAM_SUFFIX = ".stream"
# Header of the markers the admin appends to an archive stream to find its end (copies
# skip them; a plain reader of the stream sees them as empty messages with this header).
MARKER_HEADER = "x-mqkit-marker"


@dataclass(frozen=True, slots=True)
class Names:
    """Exchange and queue names for topics and groups."""

    exchange_prefix: str = ""
    queue_format: str = "{topic}.{group}"

    def exchange(self, topic: str) -> str:
        return self.exchange_prefix + topic

    def queue(self, topic: str, group: str) -> str:
        return self.queue_format.format(topic=topic, group=group)

    def delay_send(self, topic: str, ms: int) -> str:
        """Fanout exchange and TTL queue delaying sends to ``topic`` by ``ms``."""
        return f"{_INTERNAL}delay.{self.exchange(topic)}.{ms}"

    def delay_retry(self, queue: str, ms: int) -> str:
        """TTL queue delaying nacked messages of ``queue`` by ``ms``."""
        return f"{_INTERNAL}retry.{queue}.{ms}"

    def archive(self, topic: str) -> str:
        """Stream queue bound to the topic's exchange, keeping its history (``*.stream``
        topics only)."""
        return f"{_INTERNAL}archive.{self.exchange(topic)}"

    @staticmethod
    def is_stream(topic: str) -> bool:
        """Whether ``topic`` is of the stream kind (its name ends with ``.stream``)."""
        return topic.endswith(STREAM_SUFFIX) and len(topic) > len(STREAM_SUFFIX)

    @staticmethod
    def internal(name: str) -> bool:
        return name.startswith(_INTERNAL) or name.startswith("amq.")
