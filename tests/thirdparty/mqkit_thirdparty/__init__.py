"""``thirdparty://NAME``: a third party's adapter, written only against ``mqkit.driver``.

It stands for an adapter that lives outside mqkit's repository: its own distribution
registers it under the ``mqkit.adapters`` entry points, and it imports nothing of mqkit
but the driver SPI. Its "broker" is the adapter registered for ``memory://`` (loaded
through the same entry-point group, as a plugin, never imported by module), each call
passed on unchanged; the capabilities are memory's, under this backend's name. The
contract suite must pass on it with no case knowing its name.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
from collections.abc import Mapping, Sequence
from typing import TypeVar

from mqkit.driver import (
    URL,
    AdapterPlugin,
    AsyncDriver,
    AsyncSubscriptionDriver,
    AsyncTopicDriver,
    Capabilities,
    ConfigurationError,
    ConnectParams,
    Delivery,
    Driver,
    GroupStats,
    Message,
    SubscriptionDriver,
    SubscriptionOptions,
    TopicDriver,
)

__all__ = ["plugin"]

T = TypeVar("T")
BACKEND = "thirdparty"


def _inner_plugin() -> AdapterPlugin:
    """The plugin registered for ``memory://``, found like any adapter is."""
    for ep in importlib.metadata.entry_points(group="mqkit.adapters", name="memory"):
        found = ep.load()
        if isinstance(found, AdapterPlugin):
            return found
    raise ConfigurationError("thirdparty:// needs the memory:// adapter registered")


def _inner_params(params: ConnectParams) -> ConnectParams:
    name = params.url.host or "default"
    return ConnectParams(url=URL.parse(f"memory://{BACKEND}-{name}"), options=params.options,
                         connect_timeout=params.connect_timeout)


def _capabilities(inner: Capabilities) -> Capabilities:
    return dataclasses.replace(inner, backend=BACKEND)


class _Topic(TopicDriver):
    def __init__(self, inner: TopicDriver) -> None:
        self._inner = inner

    def send_batch(self, messages: Sequence[Message]) -> None:
        self._inner.send_batch(messages)

    def close(self) -> None:
        self._inner.close()


class _Subscription(SubscriptionDriver):
    def __init__(self, inner: SubscriptionDriver) -> None:
        self._inner = inner

    def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        return self._inner.receive_batch(max_messages, timeout)

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        self._inner.ack(deliveries)

    def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        self._inner.nack(deliveries, delay)

    def reject(self, deliveries: Sequence[Delivery]) -> None:
        self._inner.reject(deliveries)

    def release(self, deliveries: Sequence[Delivery]) -> None:
        self._inner.release(deliveries)

    def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        self._inner.extend_lease(deliveries, seconds)

    def close(self) -> None:
        self._inner.close()


class ThirdPartyDriver(Driver):
    """The blocking face: every call passed to the memory adapter's driver."""

    def __init__(self, inner: Driver) -> None:
        self._inner = inner
        self.capabilities = _capabilities(inner.capabilities)

    def open_topic(self, topic: str) -> TopicDriver:
        return _Topic(self._inner.open_topic(topic))

    def open_subscription(self, topic: str, group: str,
                          options: SubscriptionOptions) -> SubscriptionDriver:
        return _Subscription(self._inner.open_subscription(topic, group, options))

    def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        self._inner.create_topic(topic, options)

    def delete_topic(self, topic: str) -> None:
        self._inner.delete_topic(topic)

    def list_topics(self) -> list[str]:
        return self._inner.list_topics()

    def topic_exists(self, topic: str) -> bool:
        return self._inner.topic_exists(topic)

    def create_group(self, topic: str, group: str, start: str) -> None:
        self._inner.create_group(topic, group, start)

    def delete_group(self, topic: str, group: str) -> None:
        self._inner.delete_group(topic, group)

    def list_groups(self, topic: str) -> list[str]:
        return self._inner.list_groups(topic)

    def group_stats(self, topic: str, group: str) -> GroupStats:
        return self._inner.group_stats(topic, group)

    def purge(self, topic: str, group: str) -> None:
        self._inner.purge(topic, group)

    def dead_letter_topic(self, topic: str) -> str:
        return self._inner.dead_letter_topic(topic)

    def close(self) -> None:
        self._inner.close()


class _AsyncTopic(AsyncTopicDriver):
    def __init__(self, inner: AsyncTopicDriver) -> None:
        self._inner = inner

    async def send_batch(self, messages: Sequence[Message]) -> None:
        await self._inner.send_batch(messages)

    async def close(self) -> None:
        await self._inner.close()


class _AsyncSubscription(AsyncSubscriptionDriver):
    def __init__(self, inner: AsyncSubscriptionDriver) -> None:
        self._inner = inner

    async def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        return await self._inner.receive_batch(max_messages, timeout)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        await self._inner.ack(deliveries)

    async def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        await self._inner.nack(deliveries, delay)

    async def reject(self, deliveries: Sequence[Delivery]) -> None:
        await self._inner.reject(deliveries)

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        await self._inner.release(deliveries)

    async def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        await self._inner.extend_lease(deliveries, seconds)

    async def close(self) -> None:
        await self._inner.close()


class AsyncThirdPartyDriver(AsyncDriver):
    """The asyncio face: every call passed to the memory adapter's asyncio driver."""

    def __init__(self, inner: AsyncDriver) -> None:
        self._inner = inner
        self.capabilities = _capabilities(inner.capabilities)

    async def open_topic(self, topic: str) -> AsyncTopicDriver:
        return _AsyncTopic(await self._inner.open_topic(topic))

    async def open_subscription(self, topic: str, group: str,
                                options: SubscriptionOptions) -> AsyncSubscriptionDriver:
        return _AsyncSubscription(await self._inner.open_subscription(topic, group, options))

    async def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        await self._inner.create_topic(topic, options)

    async def delete_topic(self, topic: str) -> None:
        await self._inner.delete_topic(topic)

    async def list_topics(self) -> list[str]:
        return await self._inner.list_topics()

    async def topic_exists(self, topic: str) -> bool:
        return await self._inner.topic_exists(topic)

    async def create_group(self, topic: str, group: str, start: str) -> None:
        await self._inner.create_group(topic, group, start)

    async def delete_group(self, topic: str, group: str) -> None:
        await self._inner.delete_group(topic, group)

    async def list_groups(self, topic: str) -> list[str]:
        return await self._inner.list_groups(topic)

    async def group_stats(self, topic: str, group: str) -> GroupStats:
        return await self._inner.group_stats(topic, group)

    async def purge(self, topic: str, group: str) -> None:
        await self._inner.purge(topic, group)

    def dead_letter_topic(self, topic: str) -> str:
        return self._inner.dead_letter_topic(topic)

    async def close(self) -> None:
        await self._inner.close()


def connect(params: ConnectParams) -> Driver:
    """Open the blocking driver."""
    inner = _inner_plugin().connect
    if inner is None:
        raise ConfigurationError("the memory:// adapter has no blocking driver")
    return ThirdPartyDriver(inner(_inner_params(params)))


async def connect_async(params: ConnectParams) -> AsyncDriver:
    """Open the asyncio driver."""
    inner = _inner_plugin().connect_async
    if inner is None:
        raise ConfigurationError("the memory:// adapter has no asyncio driver")
    return AsyncThirdPartyDriver(await inner(_inner_params(params)))


plugin = AdapterPlugin(name=BACKEND, schemes=(BACKEND,), extra=None, connect=connect,
                       connect_async=connect_async)
