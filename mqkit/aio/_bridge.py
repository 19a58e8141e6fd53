"""A blocking driver behind the asyncio face: each call runs on a worker thread.

Used for adapters whose client library blocks (pika, kafka-python, boto3). Calls on one
topic or subscription are already serialised by the portable layer, so a worker thread
per call is safe. A receive cancelled while its thread is still waiting gives back
whatever that thread then receives (nack without delay), so cancellation loses nothing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from .._capabilities import Capabilities
from .._message import Delivery, Message
from ..driver import (
    AsyncDriver,
    AsyncSubscriptionDriver,
    AsyncTopicDriver,
    ConnectParams,
    Driver,
    GroupStats,
    SubscriptionDriver,
    SubscriptionOptions,
    TopicDriver,
)

__all__ = ["ThreadedDriver"]

T = TypeVar("T")


class ThreadedTopic(AsyncTopicDriver):
    def __init__(self, inner: TopicDriver) -> None:
        self._inner = inner

    async def send_batch(self, messages: Sequence[Message]) -> None:
        await asyncio.to_thread(self._inner.send_batch, messages)

    async def close(self) -> None:
        await asyncio.to_thread(self._inner.close)

    def as_(self, kind: type[T]) -> T | None:
        return self._inner.as_(kind)


class ThreadedSubscription(AsyncSubscriptionDriver):
    # Acks and the read that follows them go in one thread hop instead of two (the
    # inner driver's own ack_and_receive: one round trip where it pipelines them).
    combines_ack_and_receive = True

    def __init__(self, inner: SubscriptionDriver) -> None:
        self._inner = inner

    async def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        return await self._read(self._inner.receive_batch, max_messages, timeout)

    async def ack_and_receive(self, deliveries: Sequence[Delivery], max_messages: int,
                              timeout: float) -> list[Delivery]:
        inner = self._inner
        return await self._read(lambda n, t: inner.ack_and_receive(deliveries, n, t),
                                max_messages, timeout)

    async def _read(self, call: Callable[[int, float], list[Delivery]], max_messages: int,
                    timeout: float) -> list[Delivery]:
        """``call(max_messages, timeout)`` on a worker thread; when the caller is
        cancelled meanwhile, what it read is given back (nacked), not lost."""
        guard = threading.Lock()
        state = {"cancelled": False, "done": False}

        def work() -> list[Delivery]:
            got = call(max_messages, timeout)
            with guard:
                if state["cancelled"]:
                    if got:
                        self._inner.nack(got, None)
                    return []
                state["done"] = True
            return got

        future = asyncio.get_running_loop().run_in_executor(None, work)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            with guard:
                state["cancelled"] = True
                finished = state["done"]
            if finished and future.done() and not future.cancelled():
                got = future.result()
                if got:
                    await asyncio.shield(asyncio.to_thread(self._inner.nack, got, None))
            raise

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        await asyncio.to_thread(self._inner.ack, deliveries)

    async def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        await asyncio.to_thread(self._inner.nack, deliveries, delay)

    async def reject(self, deliveries: Sequence[Delivery]) -> None:
        await asyncio.to_thread(self._inner.reject, deliveries)

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        await asyncio.to_thread(self._inner.release, deliveries)

    async def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        await asyncio.to_thread(self._inner.extend_lease, deliveries, seconds)

    async def close(self) -> None:
        await asyncio.to_thread(self._inner.close)

    def as_(self, kind: type[T]) -> T | None:
        return self._inner.as_(kind)


class ThreadedDriver(AsyncDriver):
    """An :class:`AsyncDriver` running a blocking :class:`Driver` on worker threads."""

    def __init__(self, inner: Driver) -> None:
        self._inner = inner
        self.capabilities = inner.capabilities

    @classmethod
    async def open(cls, connect: Callable[[ConnectParams], Driver],
                   params: ConnectParams) -> ThreadedDriver:
        return cls(await asyncio.to_thread(connect, params))

    async def open_topic(self, topic: str) -> AsyncTopicDriver:
        return ThreadedTopic(await asyncio.to_thread(self._inner.open_topic, topic))

    async def open_subscription(self, topic: str, group: str,
                                options: SubscriptionOptions) -> AsyncSubscriptionDriver:
        inner = await asyncio.to_thread(self._inner.open_subscription, topic, group, options)
        return ThreadedSubscription(inner)

    async def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        await asyncio.to_thread(self._inner.create_topic, topic, options)

    async def delete_topic(self, topic: str) -> None:
        await asyncio.to_thread(self._inner.delete_topic, topic)

    async def list_topics(self) -> list[str]:
        return await asyncio.to_thread(self._inner.list_topics)

    async def topic_exists(self, topic: str) -> bool:
        return await asyncio.to_thread(self._inner.topic_exists, topic)

    async def create_group(self, topic: str, group: str, start: str) -> None:
        await asyncio.to_thread(self._inner.create_group, topic, group, start)

    async def delete_group(self, topic: str, group: str) -> None:
        await asyncio.to_thread(self._inner.delete_group, topic, group)

    async def list_groups(self, topic: str) -> list[str]:
        return await asyncio.to_thread(self._inner.list_groups, topic)

    async def group_stats(self, topic: str, group: str) -> GroupStats:
        return await asyncio.to_thread(self._inner.group_stats, topic, group)

    async def purge(self, topic: str, group: str) -> None:
        await asyncio.to_thread(self._inner.purge, topic, group)

    def dead_letter_topic(self, topic: str) -> str:
        return self._inner.dead_letter_topic(topic)

    def topic_capabilities(self, topic: str) -> Capabilities:
        return self._inner.topic_capabilities(topic)

    async def close(self) -> None:
        await asyncio.to_thread(self._inner.close)

    def as_(self, kind: type[T]) -> T | None:
        return self._inner.as_(kind)
