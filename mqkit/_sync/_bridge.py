"""An asyncio driver behind the blocking face: one event-loop thread per client.

Used for asyncio-native adapters (nats-py). The driver is created and always used on
its own loop thread; each blocking call submits a coroutine there and waits for it. An
interrupted wait (KeyboardInterrupt) cancels the coroutine.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

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

__all__ = ["LoopThreadDriver"]

T = TypeVar("T")


class _Loop:
    """An event loop running on a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="mqkit-loop",
                                        daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
        if not self.loop.is_running():
            self.loop.close()


class LoopTopic(TopicDriver):
    def __init__(self, inner: AsyncTopicDriver, loop: _Loop) -> None:
        self._inner = inner
        self._loop = loop

    def send_batch(self, messages: Sequence[Message]) -> None:
        self._loop.run(self._inner.send_batch(messages))

    def close(self) -> None:
        self._loop.run(self._inner.close())

    def as_(self, kind: type[T]) -> T | None:
        return self._inner.as_(kind)


class LoopSubscription(SubscriptionDriver):
    def __init__(self, inner: AsyncSubscriptionDriver, loop: _Loop) -> None:
        self._inner = inner
        self._loop = loop

    def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        return self._loop.run(self._inner.receive_batch(max_messages, timeout))

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        self._loop.run(self._inner.ack(deliveries))

    def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        self._loop.run(self._inner.nack(deliveries, delay))

    def reject(self, deliveries: Sequence[Delivery]) -> None:
        self._loop.run(self._inner.reject(deliveries))

    def release(self, deliveries: Sequence[Delivery]) -> None:
        self._loop.run(self._inner.release(deliveries))

    def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        self._loop.run(self._inner.extend_lease(deliveries, seconds))

    def close(self) -> None:
        self._loop.run(self._inner.close())

    def as_(self, kind: type[T]) -> T | None:
        return self._inner.as_(kind)


class LoopThreadDriver(Driver):
    """A :class:`Driver` running an :class:`AsyncDriver` on its own loop thread."""

    def __init__(self, inner: AsyncDriver, loop: _Loop) -> None:
        self._inner = inner
        self._loop = loop
        self.capabilities = inner.capabilities

    @classmethod
    def open(cls, connect: Callable[[ConnectParams], Awaitable[AsyncDriver]],
             params: ConnectParams) -> LoopThreadDriver:
        loop = _Loop()

        async def make() -> AsyncDriver:
            return await connect(params)

        try:
            return cls(loop.run(make()), loop)
        except BaseException:
            loop.stop()
            raise

    def open_topic(self, topic: str) -> TopicDriver:
        return LoopTopic(self._loop.run(self._inner.open_topic(topic)), self._loop)

    def open_subscription(self, topic: str, group: str,
                          options: SubscriptionOptions) -> SubscriptionDriver:
        inner = self._loop.run(self._inner.open_subscription(topic, group, options))
        return LoopSubscription(inner, self._loop)

    def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        self._loop.run(self._inner.create_topic(topic, options))

    def delete_topic(self, topic: str) -> None:
        self._loop.run(self._inner.delete_topic(topic))

    def list_topics(self) -> list[str]:
        return self._loop.run(self._inner.list_topics())

    def topic_exists(self, topic: str) -> bool:
        return self._loop.run(self._inner.topic_exists(topic))

    def create_group(self, topic: str, group: str, start: str) -> None:
        self._loop.run(self._inner.create_group(topic, group, start))

    def delete_group(self, topic: str, group: str) -> None:
        self._loop.run(self._inner.delete_group(topic, group))

    def list_groups(self, topic: str) -> list[str]:
        return self._loop.run(self._inner.list_groups(topic))

    def group_stats(self, topic: str, group: str) -> GroupStats:
        return self._loop.run(self._inner.group_stats(topic, group))

    def purge(self, topic: str, group: str) -> None:
        self._loop.run(self._inner.purge(topic, group))

    def dead_letter_topic(self, topic: str) -> str:
        return self._inner.dead_letter_topic(topic)

    def topic_capabilities(self, topic: str) -> Capabilities:
        return self._inner.topic_capabilities(topic)

    def close(self) -> None:
        try:
            self._loop.run(self._inner.close())
        finally:
            self._loop.stop()

    def as_(self, kind: type[T]) -> T | None:
        return self._inner.as_(kind)
