"""Admin: create, inspect and delete topics and groups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._capabilities import Feature
from .._errors import ConfigurationError
from .._validation import check_choice, check_name
from ..driver import GroupStats, StartPosition

if TYPE_CHECKING:
    from ._connection import AsyncConnection

__all__ = ["AsyncAdmin"]


class AsyncAdmin:
    """Topic and group administration. Reached as ``client.admin``.

    Creates are idempotent; deletes of something missing do nothing. A group created
    before anything is sent retains every message sent from then on, whether or not a
    consumer is running. Every topic and group argument must be a valid name (see
    :func:`mqkit._validation.check_name`): anything else raises
    :class:`ConfigurationError` naming it, before any call to the broker.
    """

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def create_topic(self, topic: str, **options: Any) -> None:
        """Create ``topic``; backend options (partitions, fifo...) as keywords."""
        check_name("topic", topic)
        bad = [name for name in options if not isinstance(name, str)]
        if bad:
            raise ConfigurationError(f"topic options are keywords, got {bad!r}")
        await self._connection.create_topic(topic, options)

    async def delete_topic(self, topic: str) -> None:
        """Delete ``topic`` and its groups."""
        check_name("topic", topic)
        await self._connection.delete_topic(topic)

    async def list_topics(self) -> list[str]:
        """Names of the existing topics, sorted."""
        return sorted(await self._connection.list_topics())

    async def topic_exists(self, topic: str) -> bool:
        """Whether ``topic`` exists."""
        check_name("topic", topic)
        return await self._connection.topic_exists(topic)

    async def create_group(self, topic: str, group: str,
                           start: StartPosition | None = None) -> None:
        """Create ``group`` on ``topic``, retaining messages from ``start``
        (``"latest"``, the default: from now; ``"earliest"``: all retained).

        ``"earliest"`` raises :class:`Unsupported` where the topic keeps no history:
        ``client.capabilities_for(topic)`` declares no ``replay``."""
        check_name("topic", topic)
        check_name("group", group)
        chosen: str = self._connection.options.start if start is None else check_choice(
            "start", start, ("latest", "earliest"))
        if chosen == "earliest":  # the topic's own declaration (RabbitMQ: *.stream)
            await self._connection.ready()
            self._connection.capabilities_for(topic).require(Feature.REPLAY)
        await self._connection.create_group(topic, group, chosen)

    async def delete_group(self, topic: str, group: str) -> None:
        """Delete ``group`` from ``topic``."""
        check_name("topic", topic)
        check_name("group", group)
        await self._connection.delete_group(topic, group)

    async def list_groups(self, topic: str) -> list[str]:
        """Names of the groups on ``topic``, sorted."""
        check_name("topic", topic)
        return sorted(await self._connection.list_groups(topic))

    async def group_exists(self, topic: str, group: str) -> bool:
        """Whether ``group`` exists on ``topic`` (false when the topic is missing)."""
        check_name("group", group)
        if not await self.topic_exists(topic):
            return False
        return group in await self.list_groups(topic)

    async def stats(self, topic: str, group: str) -> GroupStats:
        """Depth (or lag) and in-flight count of ``group``."""
        check_name("topic", topic)
        check_name("group", group)
        (await self._connection.ready()).capabilities.require(Feature.ADMIN_STATS)
        return await self._connection.group_stats(topic, group)

    async def depth(self, topic: str, group: str) -> int:
        """Messages ``group`` has not acked yet (the lag, on log backends)."""
        return (await self.stats(topic, group)).depth

    async def purge(self, topic: str, group: str) -> None:
        """Drop every message waiting for ``group``."""
        check_name("topic", topic)
        check_name("group", group)
        (await self._connection.ready()).capabilities.require(Feature.PURGE)
        await self._connection.purge(topic, group)
