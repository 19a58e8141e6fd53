"""Native resource names: documented and configurable, so plain clients interoperate."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["REGISTRY_QUEUE", "Names"]

# The durable stream where mqkit records the topics and groups it creates, because
# AMQP 0-9-1 cannot list exchanges or queues (see the package docstring).
REGISTRY_QUEUE = "mqkit.registry"
_INTERNAL = "mqkit."


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

    @staticmethod
    def internal(name: str) -> bool:
        return name.startswith(_INTERNAL) or name.startswith("amq.")
