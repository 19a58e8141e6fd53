# GENERATED from mqkit/aio/_admin.py by scripts/unasync.py: do not edit; edit the source.
"""Admin: create, inspect and delete topics and groups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._capabilities import Feature
from .._errors import ConfigurationError
from .._validation import check_choice, check_name
from ..driver import GroupStats, StartPosition

if TYPE_CHECKING:
    from ._connection import Connection

__all__ = ["Admin"]


class Admin:
    """Topic and group administration. Reached as ``client.admin``.

    Creates are idempotent; deletes of something missing do nothing. A group created
    before anything is sent retains every message sent from then on, whether or not a
    consumer is running. Every topic and group argument must be a valid name (see
    :func:`mqkit._validation.check_name`): anything else raises
    :class:`ConfigurationError` naming it, before any call to the broker.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def create_topic(self, topic: str, **options: Any) -> None:
        """Create ``topic``; backend options (partitions, fifo...) as keywords."""
        check_name("topic", topic)
        bad = [name for name in options if not isinstance(name, str)]
        if bad:
            raise ConfigurationError(f"topic options are keywords, got {bad!r}")
        self._connection.create_topic(topic, options)

    def delete_topic(self, topic: str) -> None:
        """Delete ``topic`` and its groups."""
        check_name("topic", topic)
        self._connection.delete_topic(topic)

    def list_topics(self) -> list[str]:
        """Names of the existing topics, sorted."""
        return sorted(self._connection.list_topics())

    def topic_exists(self, topic: str) -> bool:
        """Whether ``topic`` exists."""
        check_name("topic", topic)
        return self._connection.topic_exists(topic)

    def create_group(self, topic: str, group: str,
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
            self._connection.ready()
            self._connection.capabilities_for(topic).require(Feature.REPLAY)
        self._connection.create_group(topic, group, chosen)

    def delete_group(self, topic: str, group: str) -> None:
        """Delete ``group`` from ``topic``."""
        check_name("topic", topic)
        check_name("group", group)
        self._connection.delete_group(topic, group)

    def list_groups(self, topic: str) -> list[str]:
        """Names of the groups on ``topic``, sorted."""
        check_name("topic", topic)
        return sorted(self._connection.list_groups(topic))

    def group_exists(self, topic: str, group: str) -> bool:
        """Whether ``group`` exists on ``topic`` (false when the topic is missing)."""
        check_name("group", group)
        if not self.topic_exists(topic):
            return False
        return group in self.list_groups(topic)

    def stats(self, topic: str, group: str) -> GroupStats:
        """Depth (or lag) and in-flight count of ``group``."""
        check_name("topic", topic)
        check_name("group", group)
        (self._connection.ready()).capabilities.require(Feature.ADMIN_STATS)
        return self._connection.group_stats(topic, group)

    def depth(self, topic: str, group: str) -> int:
        """Messages ``group`` has not acked yet (the lag, on log backends)."""
        return (self.stats(topic, group)).depth

    def purge(self, topic: str, group: str) -> None:
        """Drop every message waiting for ``group``."""
        check_name("topic", topic)
        check_name("group", group)
        (self._connection.ready()).capabilities.require(Feature.PURGE)
        self._connection.purge(topic, group)
