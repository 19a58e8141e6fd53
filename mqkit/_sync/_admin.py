# GENERATED from mqkit/aio/_admin.py by scripts/unasync.py: do not edit; edit the source.
"""Admin: create, inspect and delete topics and groups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._capabilities import Feature
from .._validation import check_name
from ..driver import GroupStats, StartPosition

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["Admin"]


class Admin:
    """Topic and group administration. Reached as ``client.admin``.

    Creates are idempotent; deletes of something missing do nothing. A group created
    before anything is sent retains every message sent from then on, whether or not a
    consumer is running.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    def create_topic(self, topic: str, **options: Any) -> None:
        """Create ``topic``; backend options (partitions, fifo...) as keywords."""
        driver = self._client._driver_ready()
        with self._client._errors():
            driver.create_topic(check_name("topic", topic), options)

    def delete_topic(self, topic: str) -> None:
        """Delete ``topic`` and its groups."""
        driver = self._client._driver_ready()
        with self._client._errors():
            driver.delete_topic(topic)

    def list_topics(self) -> list[str]:
        """Names of the existing topics, sorted."""
        driver = self._client._driver_ready()
        with self._client._errors():
            return sorted(driver.list_topics())

    def topic_exists(self, topic: str) -> bool:
        """Whether ``topic`` exists."""
        driver = self._client._driver_ready()
        with self._client._errors():
            return driver.topic_exists(topic)

    def create_group(self, topic: str, group: str,
                           start: StartPosition | None = None) -> None:
        """Create ``group`` on ``topic``, retaining messages from ``start``
        (``"latest"``, the default: from now; ``"earliest"``: all retained)."""
        start = start or self._client.options.start
        if start == "earliest":
            self._client.capabilities.require(Feature.REPLAY)
        driver = self._client._driver_ready()
        with self._client._errors():
            driver.create_group(topic, check_name("group", group), start)

    def delete_group(self, topic: str, group: str) -> None:
        """Delete ``group`` from ``topic``."""
        driver = self._client._driver_ready()
        with self._client._errors():
            driver.delete_group(topic, group)

    def list_groups(self, topic: str) -> list[str]:
        """Names of the groups on ``topic``, sorted."""
        driver = self._client._driver_ready()
        with self._client._errors():
            return sorted(driver.list_groups(topic))

    def group_exists(self, topic: str, group: str) -> bool:
        """Whether ``group`` exists on ``topic`` (false when the topic is missing)."""
        if not self.topic_exists(topic):
            return False
        return group in self.list_groups(topic)

    def stats(self, topic: str, group: str) -> GroupStats:
        """Depth (or lag) and in-flight count of ``group``."""
        self._client.capabilities.require(Feature.ADMIN_STATS)
        driver = self._client._driver_ready()
        with self._client._errors():
            return driver.group_stats(topic, group)

    def depth(self, topic: str, group: str) -> int:
        """Messages ``group`` has not acked yet (the lag, on log backends)."""
        return (self.stats(topic, group)).depth

    def purge(self, topic: str, group: str) -> None:
        """Drop every message waiting for ``group``."""
        self._client.capabilities.require(Feature.PURGE)
        driver = self._client._driver_ready()
        with self._client._errors():
            driver.purge(topic, group)
