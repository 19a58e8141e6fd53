"""Receiving from a consumer group (the logic is ``_flows.Reader``; this runs it).

``receive`` reads new entries with ``XREADGROUP ... >`` after a look for what is due
again (nacked entries whose time came, entries whose consumer's lease ran out,
delayed sends); ``ack`` and ``reject`` are ``XACK``; ``nack`` schedules in the group's
retry schedule; ``extend_lease`` is ``XCLAIM ... JUSTID``; ``close`` gives the
consumer's pending entries back at once and leaves the group.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, TypeVar

import redis.exceptions as re_

from mqkit.driver import Delivery, SubscriptionDriver

from ._errors import mapped
from ._flows import Reader
from ._link import Link

__all__ = ["RedisSubscription", "handles"]

T = TypeVar("T")
log = logging.getLogger("mqkit.redis")


def handles(deliveries: Sequence[Delivery]) -> list[Any]:
    return [d.handle for d in deliveries]


class RedisSubscription(SubscriptionDriver):
    """One consumer (``options.consumer_name``) of one group of one stream."""

    def __init__(self, link: Link, reader: Reader) -> None:
        self._link = link
        self._reader = reader
        self._what = f"group {reader.group!r} of {reader.topic!r}"

    def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        with mapped(f"receive from {self._what}"):
            return self._link.run(self._reader.receive(max_messages, timeout))

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        with mapped(f"ack on {self._what}"):
            self._link.run(self._reader.ack(handles(deliveries)))

    def reject(self, deliveries: Sequence[Delivery]) -> None:
        with mapped(f"reject on {self._what}"):
            self._link.run(self._reader.ack(handles(deliveries)))

    def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        with mapped(f"nack on {self._what}"):
            self._link.run(self._reader.nack(handles(deliveries), delay))

    def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        # Resetting the idle time buys one whole lease of this consumer's; ``seconds``
        # is the portable layer's lease, the same value.
        with mapped(f"extend lease on {self._what}"):
            self._link.run(self._reader.extend(handles(deliveries)))

    def close(self) -> None:
        try:
            self._link.run(self._reader.release())
        except (re_.RedisError, OSError) as exc:
            # Unreachable or deleted: its entries come back after the lease instead.
            log.info("mqkit: redis consumer %s of %s left without releasing: %s",
                     self._reader.me, self._what, exc)

    def as_(self, kind: type[T]) -> T | None:
        client = self._link.client
        return client if isinstance(client, kind) else None
