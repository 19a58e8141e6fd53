"""A fault-injecting driver for the portable layer's unit tests: ``faulty://NAME``.

A blocking driver over the memory driver that records every subscription call and can
be told to fail: ``FAULTS.fail("ack", Unavailable("..."), times=2)`` makes the next two
``ack`` calls raise. Capabilities can be overridden per test with ``FAULTS.caps``. The
asyncio face runs it through the portable layer's worker-thread bridge.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from mqkit._registry import register
from mqkit.driver import (
    AdapterPlugin,
    ConnectParams,
    Delivery,
    Driver,
    GroupStats,
    SubscriptionDriver,
    SubscriptionOptions,
    TopicDriver,
)
from mqkit.memory._driver import connect as memory_connect

__all__ = ["FAULTS", "Faults"]


class Faults:
    """What the faulty driver does wrong, and what it was asked to do."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.calls: list[tuple[str, int]] = []  # (method, batch size)
            self.errors: dict[str, deque[BaseException]] = {}
            self.always: dict[str, BaseException] = {}
            self.caps: dict[str, Any] = {}
            self.closed_subscriptions = 0
            # A prefetch the memory driver is opened with instead of the consumer's:
            # a broker that does not bound what it hands out (Redis, Kafka, NATS).
            self.driver_prefetch: int | None = None
            # Subscriptions declare combines_ack_and_receive (a pipelining driver).
            self.combine = False

    def fail(self, method: str, error: BaseException, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` raise ``error``."""
        with self.lock:
            self.errors.setdefault(method, deque()).extend([error] * times)

    def fail_always(self, method: str, error: BaseException | None) -> None:
        with self.lock:
            if error is None:
                self.always.pop(method, None)
            else:
                self.always[method] = error

    def hit(self, method: str, size: int) -> None:
        with self.lock:
            self.calls.append((method, size))
            queued = self.errors.get(method)
            error = queued.popleft() if queued else self.always.get(method)
        if error is not None:
            raise error

    def count(self, method: str) -> int:
        with self.lock:
            return sum(1 for m, _ in self.calls if m == method)

    def settled(self, method: str) -> int:
        """Deliveries passed to ``method`` in calls that succeeded or not."""
        with self.lock:
            return sum(n for m, n in self.calls if m == method)


FAULTS = Faults()


class FaultyTopic(TopicDriver):
    def __init__(self, inner: TopicDriver) -> None:
        self._inner = inner

    def send_batch(self, messages: Sequence[Any]) -> None:
        FAULTS.hit("send_batch", len(messages))
        self._inner.send_batch(messages)

    def close(self) -> None:
        self._inner.close()


class FaultySubscription(SubscriptionDriver):
    def __init__(self, inner: SubscriptionDriver, counts_releases: bool) -> None:
        self._inner = inner
        self._counts_releases = counts_releases  # like a broker without Feature.RELEASE

    def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        FAULTS.hit("receive_batch", max_messages)
        return self._inner.receive_batch(max_messages, timeout)

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        FAULTS.hit("ack", len(deliveries))
        self._inner.ack(deliveries)

    def ack_and_receive(self, deliveries: Sequence[Delivery], max_messages: int,
                        timeout: float) -> list[Delivery]:
        """Recorded as itself, then as its two parts (either may be made to fail)."""
        FAULTS.hit("ack_and_receive", len(deliveries))
        self.ack(deliveries)
        return self.receive_batch(max_messages, timeout)

    def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        FAULTS.hit("nack", len(deliveries))
        self._inner.nack(deliveries, delay)

    def reject(self, deliveries: Sequence[Delivery]) -> None:
        FAULTS.hit("reject", len(deliveries))
        self._inner.reject(deliveries)

    def release(self, deliveries: Sequence[Delivery]) -> None:
        FAULTS.hit("release", len(deliveries))
        if self._counts_releases:
            self._inner.nack(deliveries, None)
        else:
            self._inner.release(deliveries)

    def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        FAULTS.hit("extend_lease", len(deliveries))
        self._inner.extend_lease(deliveries, seconds)

    def close(self) -> None:
        with FAULTS.lock:
            FAULTS.closed_subscriptions += 1
        self._inner.close()


class CombiningSubscription(FaultySubscription):
    """A driver that pipelines acks with the next read (``FAULTS.combine``)."""

    combines_ack_and_receive = True


class FaultyDriver(Driver):
    def __init__(self, inner: Driver) -> None:
        self._inner = inner
        self.capabilities = dataclasses.replace(inner.capabilities, **FAULTS.caps)

    def open_topic(self, topic: str) -> TopicDriver:
        FAULTS.hit("open_topic", 0)
        return FaultyTopic(self._inner.open_topic(topic))

    def open_subscription(self, topic: str, group: str,
                          options: SubscriptionOptions) -> SubscriptionDriver:
        FAULTS.hit("open_subscription", 0)
        if FAULTS.driver_prefetch is not None:
            options = dataclasses.replace(options, prefetch=FAULTS.driver_prefetch)
        cls = CombiningSubscription if FAULTS.combine else FaultySubscription
        return cls(self._inner.open_subscription(topic, group, options),
                   counts_releases=not self.capabilities.release)

    def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        FAULTS.hit("create_topic", 0)
        self._inner.create_topic(topic, options)

    def delete_topic(self, topic: str) -> None:
        self._inner.delete_topic(topic)

    def list_topics(self) -> list[str]:
        return self._inner.list_topics()

    def topic_exists(self, topic: str) -> bool:
        return self._inner.topic_exists(topic)

    def create_group(self, topic: str, group: str, start: str) -> None:
        FAULTS.hit("create_group", 0)
        self._inner.create_group(topic, group, start)

    def delete_group(self, topic: str, group: str) -> None:
        self._inner.delete_group(topic, group)

    def list_groups(self, topic: str) -> list[str]:
        return self._inner.list_groups(topic)

    def group_stats(self, topic: str, group: str) -> GroupStats:
        FAULTS.hit("group_stats", 0)
        return self._inner.group_stats(topic, group)

    def purge(self, topic: str, group: str) -> None:
        self._inner.purge(topic, group)

    def dead_letter_topic(self, topic: str) -> str:
        return self._inner.dead_letter_topic(topic)

    def close(self) -> None:
        self._inner.close()


def _connect(params: ConnectParams) -> Driver:
    return FaultyDriver(memory_connect(params))


register(AdapterPlugin(name="faulty", schemes=("faulty",), connect=_connect))
