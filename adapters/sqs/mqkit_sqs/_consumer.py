"""SubscriptionDriver: ReceiveMessage (long polling, 10 at a time), DeleteMessageBatch,
ChangeMessageVisibilityBatch.

Each receive asks for ``VisibilityTimeout = lease`` (rounded up to whole seconds), so a
message stays leased to this consumer for the lease; ``extend_lease`` and ``nack``
change the visibility of the messages held. The receipt handles of unsettled messages
are kept, so that ``close`` makes them visible again at once (redelivery on close).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from mqkit.driver import (
    BackendError,
    Delivery,
    Message,
    MQError,
    NotFound,
    SubscriptionDriver,
    SubscriptionOptions,
    Unavailable,
)

from ._admin import Resources
from ._errors import mapped
from ._options import MAX_VISIBILITY
from ._wire import decode

__all__ = ["SqsSubscription"]

T = TypeVar("T")

# SQS returns at most 10 messages per ReceiveMessage and settles 10 per batch call.
_BATCH = 10
# Pause between short polls when less than half a second of the timeout is left (a long
# poll counts whole seconds); short enough to return within the timeout's precision.
_SHORT_POLL_PAUSE = 0.1


# Entry errors that mean the delivery is no longer this subscription's to settle: its
# receipt handle is from before the service lost its state (a restart of a test service)
# or the message is no longer in flight. The SPI says such a settlement does nothing: SQS
# hands the message out again if it still exists.
_STALE = frozenset({"ReceiptHandleIsInvalid", "MessageNotInflight"})


def _visibility(seconds: float) -> int:
    return max(0, min(MAX_VISIBILITY, math.ceil(seconds - 1e-9)))


def _raise_failed(what: str, failed: list[str], total: int) -> None:
    """BackendError naming how many entries of a batch request SQS refused, and why."""
    if failed:
        raise BackendError(f"sqs: {what}: {len(failed)} of {total} entries failed: "
                           f"{failed[0]}")


class SqsSubscription(SubscriptionDriver):
    def __init__(self, resources: Resources, topic: str, group: str,
                 options: SubscriptionOptions, *, recreate_group: bool) -> None:
        self._res = resources
        self.topic = topic
        self.group = group
        self.queue = resources.group_queue(topic, group)
        self._lease = _visibility(options.lease) or 1
        self._recreate_group = recreate_group
        # Receipt handles received and not settled (released to the queue on close).
        self._held: dict[str, None] = {}
        self._held_lock = threading.Lock()

    def _url(self) -> str:
        return self._res.queue_url(self.queue)

    def _lost(self, exc: NotFound) -> MQError:
        """The error for a vanished queue: Unavailable when recreated, else NotFound."""
        self._res.forget(self.queue)
        if self._recreate_group and self._res.recover(self.topic):
            return Unavailable(
                f"sqs: queue {self.queue!r} vanished (the service lost its state); "
                "recreated it")
        return exc

    def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            # A long poll counts whole seconds: round to the nearest, never above 20.
            wait = max(0, min(self._res.options.wait_time, int(remaining + 0.5)))
            try:
                with mapped(f"receive from {self.queue!r}"):
                    reply = self._res.sqs.receive_message(
                        QueueUrl=self._url(), MaxNumberOfMessages=min(_BATCH, max_messages),
                        WaitTimeSeconds=wait, VisibilityTimeout=self._lease,
                        MessageAttributeNames=["All"],
                        MessageSystemAttributeNames=["ApproximateReceiveCount",
                                                     "SentTimestamp"])
            except NotFound as exc:
                raise self._lost(exc) from exc.__cause__
            raw = reply.get("Messages", [])
            if raw:
                got = [decode(m, self.topic) for m in raw]
                with self._held_lock:
                    for d in got:
                        self._held[str(d.handle)] = None
                return got
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            if wait == 0:
                time.sleep(min(remaining, _SHORT_POLL_PAUSE))

    def _release(self, deliveries: Sequence[Delivery]) -> None:
        with self._held_lock:
            for d in deliveries:
                self._held.pop(str(d.handle), None)

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        self._delete(deliveries, "ack")

    def reject(self, deliveries: Sequence[Delivery]) -> None:
        self._delete(deliveries, "reject")

    def _delete(self, deliveries: Sequence[Delivery], what: str) -> None:
        sqs, url = self._res.sqs, self._url()
        failed = self._per_entry(
            deliveries, what, lambda entries: sqs.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": i, "ReceiptHandle": h} for i, h in entries]))
        self._release(deliveries)
        _raise_failed(what, failed, len(deliveries))

    def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        self._change(deliveries, _visibility(delay or 0), "nack")
        self._release(deliveries)

    def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        self._change(deliveries, _visibility(seconds) or 1, "extend lease")

    def _change(self, deliveries: Sequence[Delivery], seconds: int, what: str,
                strict: bool = True) -> None:
        sqs, url = self._res.sqs, self._url()
        failed = self._per_entry(
            deliveries, what, lambda entries: sqs.change_message_visibility_batch(
                QueueUrl=url, Entries=[{"Id": i, "ReceiptHandle": h, "VisibilityTimeout": seconds}
                                       for i, h in entries]), strict=strict)
        if strict:
            _raise_failed(what, failed, len(deliveries))

    def _per_entry(self, deliveries: Sequence[Delivery], what: str,
                   send: Callable[[list[tuple[str, str]]], Any],
                   strict: bool = True) -> list[str]:
        """``send`` (one batch request) for every 10 receipt handles, as (entry id, handle)
        pairs; the failed entries, described. A missing queue is recreated (``_lost``)
        unless not ``strict`` (closing: never recreate anything)."""
        handles = [str(d.handle) for d in deliveries]
        failed: list[str] = []
        try:
            for start in range(0, len(handles), _BATCH):
                chunk = handles[start:start + _BATCH]
                with mapped(f"{what} on {self.queue!r}"):
                    reply = send([(str(i), h) for i, h in enumerate(chunk)])
                failed += [f"{f.get('Code', '')}: {f.get('Message', '')}"
                           for f in reply.get("Failed", []) if f.get("Code") not in _STALE]
        except NotFound as exc:
            if not strict:
                raise
            raise self._lost(exc) from exc.__cause__
        return failed

    def close(self) -> None:
        """Make every unsettled message visible again (best effort: a message whose
        lease already ran out may have gone to another consumer)."""
        with self._held_lock:
            handles, self._held = list(self._held), {}
        if not handles:
            return
        fake = [Delivery(message=_EMPTY, topic=self.topic, handle=h) for h in handles]
        try:
            self._change(fake, 0, "release on close", strict=False)
        except MQError:
            pass  # the lease runs out on its own

    def as_(self, kind: type[T]) -> T | None:
        client: Any = self._res.sqs
        return client if isinstance(client, kind) else None


_EMPTY = Message(b"")
