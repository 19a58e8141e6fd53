"""Test doubles: memory:// offered only as a blocking driver, or only as an asyncio one.

They force the portable layer's bridges (worker threads; a loop thread) to run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mqkit.driver import (
    AdapterPlugin,
    AsyncDriver,
    AsyncSubscriptionDriver,
    AsyncTopicDriver,
    ConnectParams,
    Delivery,
    Driver,
    GroupStats,
    Message,
    SubscriptionDriver,
    SubscriptionOptions,
    TopicDriver,
)
from mqkit.memory import plugin as memory_plugin


class _Topic(AsyncTopicDriver):
    def __init__(self, inner: TopicDriver) -> None:
        self.inner = inner

    async def send_batch(self, messages: Sequence[Message]) -> None:
        self.inner.send_batch(messages)

    async def close(self) -> None:
        self.inner.close()


class _Subscription(AsyncSubscriptionDriver):
    def __init__(self, inner: SubscriptionDriver) -> None:
        self.inner = inner

    async def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        return self.inner.receive_batch(max_messages, timeout)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        self.inner.ack(deliveries)

    async def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        self.inner.nack(deliveries, delay)

    async def reject(self, deliveries: Sequence[Delivery]) -> None:
        self.inner.reject(deliveries)

    async def close(self) -> None:
        self.inner.close()


class AsyncOnlyMemory(AsyncDriver):
    """memory:// as an asyncio driver (calls block its loop: it runs on its own thread)."""

    def __init__(self, inner: Driver) -> None:
        self.inner = inner
        self.capabilities = inner.capabilities

    async def open_topic(self, topic: str) -> AsyncTopicDriver:
        return _Topic(self.inner.open_topic(topic))

    async def open_subscription(self, topic: str, group: str,
                                options: SubscriptionOptions) -> AsyncSubscriptionDriver:
        return _Subscription(self.inner.open_subscription(topic, group, options))

    async def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        self.inner.create_topic(topic, options)

    async def delete_topic(self, topic: str) -> None:
        self.inner.delete_topic(topic)

    async def list_topics(self) -> list[str]:
        return self.inner.list_topics()

    async def topic_exists(self, topic: str) -> bool:
        return self.inner.topic_exists(topic)

    async def create_group(self, topic: str, group: str, start: str) -> None:
        self.inner.create_group(topic, group, start)

    async def delete_group(self, topic: str, group: str) -> None:
        self.inner.delete_group(topic, group)

    async def list_groups(self, topic: str) -> list[str]:
        return self.inner.list_groups(topic)

    async def group_stats(self, topic: str, group: str) -> GroupStats:
        return self.inner.group_stats(topic, group)

    async def purge(self, topic: str, group: str) -> None:
        self.inner.purge(topic, group)

    async def close(self) -> None:
        self.inner.close()


def _connect(params: ConnectParams) -> Driver:
    assert memory_plugin.connect is not None
    return memory_plugin.connect(params)


async def _connect_async(params: ConnectParams) -> AsyncDriver:
    return AsyncOnlyMemory(_connect(params))


sync_only_plugin = AdapterPlugin(name="memory", schemes=("memory+sync",), connect=_connect)
async_only_plugin = AdapterPlugin(name="memory", schemes=("memory+async",),
                                  connect_async=_connect_async)
