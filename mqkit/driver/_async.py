"""The driver SPI: the classes an adapter implements to add a backend.

``mqkit/driver/_async.py`` is the source of truth for both faces: ``_sync.py`` is
generated from it by ``scripts/unasync.py``, dropping the asyncio keywords and the
``Async`` prefix of class names, and CI checks that the two never drift. A backend
implements the blocking classes, the asyncio ones, or both when its client library has
both; the portable layer bridges the face it lacks (worker threads or a loop thread).

Rules every driver keeps:

* **Batch-only.** One send method and one receive method, both on batches; a single
  message is a batch of one. Batches never exceed ``capabilities.max_batch``.
* **No policy.** A driver does not retry, back off, dead-letter, decode or validate
  portable rules: the portable layer does all of that once for every backend. A driver
  raises :class:`mqkit.Unavailable` on a lost connection and reconnects on its next call.
* **Typed errors.** Every error leaving a driver is an :class:`mqkit.MQError`, mapped
  through the adapter's error table, with the client's error as ``__cause__``.
* **Serialised calls.** The portable layer never calls one ``TopicDriver`` or
  ``SubscriptionDriver`` from two threads (or tasks) at once, but may call it from
  different threads one after the other. The ``Driver`` object's admin verbs may be
  called concurrently with its topics and subscriptions.
* **Bounded time.** Every call returns or raises within the connect timeout plus the
  call's own timeout; nothing blocks forever.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import ClassVar, TypeVar

from .._capabilities import Capabilities
from .._message import Delivery, Message
from ._types import GroupStats, SubscriptionOptions

__all__ = ["AsyncDriver", "AsyncSubscriptionDriver", "AsyncTopicDriver"]

T = TypeVar("T")


class AsyncTopicDriver(abc.ABC):
    """Sends to one topic."""

    @abc.abstractmethod
    async def send_batch(self, messages: Sequence[Message]) -> None:
        """Send every message; return only when the broker has accepted all of them.

        ``messages`` is non-empty, at most ``max_batch`` long, already validated against
        the capabilities, and every message has an ``id``. Raise
        :class:`mqkit.SendBatchError` when some entries were accepted and others were not
        (indices into ``messages``); any other error means no entry is known to be sent.
        Must not retry.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Release resources. Called once; nothing is buffered by then."""

    def as_(self, kind: type[T]) -> T | None:
        """The native object of type ``kind`` behind this topic, if there is one."""
        return None


class AsyncSubscriptionDriver(abc.ABC):
    """Receives one group's messages from one topic, and settles them.

    Settlement comes in batches. Users' ``msg.ack()``/``nack()``/``reject()`` only
    record a decision; the portable layer's settlement pipeline hands them over grouped
    by kind (and nack delay), one call of ``ack``, ``nack`` or ``reject`` per group,
    at most ``max_batch`` deliveries per call, and always between receives, never
    concurrently with another call. Three methods rather than one taking a mixed batch,
    because every broker settles each kind with its own request (basic_ack vs
    basic_nack; DeleteMessageBatch vs ChangeMessageVisibilityBatch; XACK vs a delay
    set; a commit vs a retry-topic copy): a mixed-batch method would make every driver
    split it again. Decisions on different deliveries are independent, so the
    pipeline may hand over one kind before another that was decided earlier.

    A settlement of a delivery the subscription no longer holds (its connection was
    lost, its partition revoked) must do nothing and not raise: the broker redelivers
    it. A driver raises :class:`mqkit.Unavailable` when the broker cannot be reached
    (the pipeline retries, bounded); any other error means the broker refused those
    deliveries for good (reported to the user, who gets the messages again).
    """

    @abc.abstractmethod
    async def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        """Return 1..``max_messages`` deliveries, or ``[]`` once ``timeout`` seconds pass.

        Return as soon as at least one delivery is available; do not wait to fill the
        batch. ``timeout`` may be 0 (poll). Deliveries stay leased to this subscription
        until settled or until the lease (``SubscriptionOptions.lease``) runs out.
        """

    @abc.abstractmethod
    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Mark the deliveries processed: they are never delivered again to this group."""

    combines_ack_and_receive: ClassVar[bool] = False
    """Whether :meth:`ack_and_receive` saves something here: a driver that pipelines the
    two overrides it and sets this (the portable layer's worker-thread bridge sets it
    too: one thread hop instead of two). Only then does the portable layer call it."""

    async def ack_and_receive(self, deliveries: Sequence[Delivery], max_messages: int,
                              timeout: float) -> list[Delivery]:
        """``ack(deliveries)``, then ``receive_batch(max_messages, timeout)``, in one round
        trip, for brokers that can pipeline the two (Redis: ``XACK`` ahead of
        ``XREADGROUP``): the acks that a receive hands over first cost no round trip of
        their own. The acks must be applied before the receive waits.

        Called only when :attr:`combines_ack_and_receive` is true, with acks alone (no
        nack, reject or release). When it raises, whichever part failed, the portable
        layer hands the same acks over again through :meth:`ack`, so some may be acked
        twice: the second does nothing, as for any delivery the subscription no longer
        holds (see the class docstring). Deliveries a failed call may have read stay
        leased to this subscription until their lease runs out (then come back).
        """
        await self.ack(deliveries)
        return await self.receive_batch(max_messages, timeout)

    @abc.abstractmethod
    async def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        """Make the deliveries available again, after ``delay`` seconds when given.

        The redelivered message has the same body and headers and a delivery count one
        higher. Only called with a delay when ``nack_delay`` is supported.
        """

    @abc.abstractmethod
    async def reject(self, deliveries: Sequence[Delivery]) -> None:
        """Drop the deliveries for good (no redelivery)."""

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        """Give back deliveries the consumer never started: available again at once.

        Where the broker allows, the redelivery keeps the delivery count it had (a
        release is not an attempt). The default is ``nack(deliveries, None)``, for
        brokers that count every redelivery; the portable layer then subtracts the
        releases it made itself when it decides on retries.
        """
        await self.nack(deliveries, None)

    async def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        """Keep the deliveries leased for ``seconds`` more from now.

        Only called when ``lease_extension`` is supported; the default does nothing,
        which is right for backends without leases.
        """
        return None

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop receiving. Unsettled deliveries become available to other consumers."""

    def as_(self, kind: type[T]) -> T | None:
        """The native object of type ``kind`` behind this subscription, if any."""
        return None


class AsyncDriver(abc.ABC):
    """One connection to a broker: opens topics and subscriptions, and administers."""

    capabilities: Capabilities

    @abc.abstractmethod
    async def open_topic(self, topic: str) -> AsyncTopicDriver:
        """Open ``topic`` for sending. Raise :class:`mqkit.NotFound` when missing."""

    @abc.abstractmethod
    async def open_subscription(
        self, topic: str, group: str, options: SubscriptionOptions
    ) -> AsyncSubscriptionDriver:
        """Open ``group`` on ``topic`` for receiving.

        Raise :class:`mqkit.NotFound` when the topic is missing, or when the group is
        missing and ``options.create_group`` is false; otherwise create the group,
        starting at ``options.start``.
        """

    @abc.abstractmethod
    async def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        """Create ``topic``; do nothing when it exists. ``options`` are backend-specific;
        raise :class:`mqkit.ConfigurationError` naming any option not understood."""

    @abc.abstractmethod
    async def delete_topic(self, topic: str) -> None:
        """Delete ``topic`` and its groups; do nothing when it is missing."""

    @abc.abstractmethod
    async def list_topics(self) -> list[str]:
        """Names of the topics that exist (mqkit's own internal topics excluded)."""

    @abc.abstractmethod
    async def topic_exists(self, topic: str) -> bool:
        """Whether ``topic`` exists."""

    @abc.abstractmethod
    async def create_group(self, topic: str, group: str, start: str) -> None:
        """Create ``group`` on ``topic`` retaining messages from ``start`` (``"latest"``:
        sent from now on; ``"earliest"``: everything retained). Idempotent. Raise
        :class:`mqkit.NotFound` when the topic is missing."""

    @abc.abstractmethod
    async def delete_group(self, topic: str, group: str) -> None:
        """Delete ``group``; do nothing when it is missing."""

    @abc.abstractmethod
    async def list_groups(self, topic: str) -> list[str]:
        """Names of the groups on ``topic``. Raise :class:`mqkit.NotFound` if missing."""

    @abc.abstractmethod
    async def group_stats(self, topic: str, group: str) -> GroupStats:
        """Depth (or lag) and in-flight count of ``group``."""

    @abc.abstractmethod
    async def purge(self, topic: str, group: str) -> None:
        """Drop every message waiting for ``group``."""

    def dead_letter_topic(self, topic: str) -> str:
        """The default dead-letter topic name for ``topic``."""
        return f"{topic}.dlq"

    def topic_capabilities(self, topic: str) -> Capabilities:
        """What this backend does on ``topic``, when that differs from the client's
        :attr:`capabilities` (e.g. SQS: a ``*.fifo`` topic orders per key and
        deduplicates on a client whose other topics do neither).

        Optional; the default is :attr:`capabilities`, right for every backend whose
        topics all behave alike. ``topic`` is a valid mqkit name (the portable layer
        checked it); the topic need not exist. Must be a pure function of the name and
        the connection's options: quick, no broker call, no error. The result keeps
        ``backend``; the portable layer raises :class:`mqkit.BackendError` otherwise.
        """
        return self.capabilities

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the connection. Topics and subscriptions are closed first by the caller."""

    def as_(self, kind: type[T]) -> T | None:
        """The native client object of type ``kind`` (connection, client), if any."""
        return None
