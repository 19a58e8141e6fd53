"""SubscriptionDriver: ReceiveMessage (long polling, 10 at a time), DeleteMessageBatch,
ChangeMessageVisibilityBatch.

Each receive asks for ``VisibilityTimeout = lease`` (rounded up to whole seconds), so a
message stays leased to this consumer for the lease; ``extend_lease`` and ``nack``
change the visibility of the messages held. The receipt handles of unsettled messages
are kept, so that ``close`` makes them visible again at once (redelivery on close).

Priority bands (``docs/backends/sqs.md``, "Priority"): a subscription reads the band
queues of its group that exist, highest first, then its plain queue. It finds them when
it opens (one GetQueueUrl per band level, 9 at most) and looks again for the levels it
has not found every ``BAND_REFRESH`` seconds, at the start of a receive; with no band, a
receive sends exactly the requests it sent before bands existed. With bands, a receive
short-polls each band, highest first, asking each only for what is still missing, then
the plain queue (a long poll of at most ``BAND_WAIT`` seconds when no band had any).
A band delivery's handle is ``(queue URL, receipt handle)`` and its message carries the
band's priority; a plain one's handle is the receipt handle, as before.
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
# 30 s: how long a reader may take to notice a band made after it opened (a producer's
# first send at a new level; the messages wait in the band meanwhile, none is lost).
# Each look is at most 9 GetQueueUrl (only levels not found yet): 0.3 request/s at most.
BAND_REFRESH = 30.0
# 2 s: the longest plain-queue long poll while bands exist and are all empty, so a band
# message that arrives meanwhile waits at most this long; an idle reader with n bands
# then sends (n + 1) requests every 2 s instead of 1 every wait_time.
BAND_WAIT = 2
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
        # Handles received and not settled (released to the queue on close).
        self._held: dict[object, None] = {}
        self._held_lock = threading.Lock()
        # The band queues read, highest first: (priority, queue name); looked at again
        # after _bands_due (monotonic), sooner when one went away.
        self._lanes: list[tuple[int, str]] = []
        self._banded = False  # a band was ever read: handles may be tuples
        self._bands_due = 0.0
        self._discover()

    def _discover(self) -> None:
        """Find the band queues of this group that exist (GetQueueUrl for each level
        whose URL is not cached), and read them from now on."""
        self._bands_due = time.monotonic() + BAND_REFRESH
        try:
            self._lanes = self._res.band_queues(self.topic, self.group)
        except MQError:
            self._bands_due = 0.0  # a failed look is repeated at the next receive
            if not self._lanes:
                raise
            return
        self._banded = self._banded or bool(self._lanes)

    def _band_gone(self, queue: str) -> None:
        """A band queue went away (deleted with its topic or group): stop reading it."""
        self._res.forget(queue)
        self._lanes = [lane for lane in self._lanes if lane[1] != queue]

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
        if time.monotonic() >= self._bands_due:
            self._discover()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            # A long poll counts whole seconds: round to the nearest, never above 20.
            wait = max(0, min(self._res.options.wait_time, int(remaining + 0.5)))
            got = self._read_bands(max_messages) if self._lanes else []
            if len(got) < max_messages:
                if self._lanes:  # bands first: a short poll after a band gave some
                    wait = 0 if got else min(wait, BAND_WAIT)
                try:
                    got += self._poll(None, self.queue, max_messages - len(got), wait)
                except MQError:
                    if not got:
                        raise  # else hand out what the bands gave; the next receive fails

            if got:
                with self._held_lock:
                    for d in got:
                        self._held[d.handle] = None
                return got
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            if wait == 0:
                time.sleep(min(remaining, _SHORT_POLL_PAUSE))

    def _read_bands(self, max_messages: int) -> list[Delivery]:
        """Strict priority: a short poll of each band, highest first, each asked only
        for what is still missing."""
        got: list[Delivery] = []
        for priority, queue in list(self._lanes):
            if len(got) >= max_messages:
                break
            try:
                got += self._poll(priority, queue, max_messages - len(got), 0)
            except NotFound:
                self._band_gone(queue)
            except MQError:
                if not got:
                    raise
                break  # hand out what higher bands gave (leased: never drop them)
        return got

    def _poll(self, priority: int | None, queue: str, count: int,
              wait: int) -> list[Delivery]:
        """One ReceiveMessage on the plain queue (``priority`` None) or a band's."""
        try:
            url = self._res.queue_url(queue) if priority is not None else self._url()
            with mapped(f"receive from {queue!r}"):
                reply = self._res.sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=min(_BATCH, count),
                    WaitTimeSeconds=wait, VisibilityTimeout=self._lease,
                    MessageAttributeNames=["All"],
                    MessageSystemAttributeNames=["ApproximateReceiveCount",
                                                 "SentTimestamp"])
        except NotFound as exc:
            if priority is not None:
                raise
            raise self._lost(exc) from exc.__cause__
        raw = reply.get("Messages", [])
        if priority is None:
            return [decode(m, self.topic) for m in raw]
        return [decode(m, self.topic, priority=priority, url=url) for m in raw]

    def _release(self, deliveries: Sequence[Delivery]) -> None:
        with self._held_lock:
            for d in deliveries:
                self._held.pop(d.handle, None)

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        self._delete(deliveries, "ack")

    def reject(self, deliveries: Sequence[Delivery]) -> None:
        self._delete(deliveries, "reject")

    def _delete(self, deliveries: Sequence[Delivery], what: str) -> None:
        sqs = self._res.sqs
        failed = self._per_entry(
            deliveries, what, lambda url, entries: sqs.delete_message_batch(
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
        sqs = self._res.sqs
        failed = self._per_entry(
            deliveries, what, lambda url, entries: sqs.change_message_visibility_batch(
                QueueUrl=url, Entries=[{"Id": i, "ReceiptHandle": h, "VisibilityTimeout": seconds}
                                       for i, h in entries]), strict=strict)
        if strict:
            _raise_failed(what, failed, len(deliveries))

    def _per_entry(self, deliveries: Sequence[Delivery], what: str,
                   send: Callable[[str, list[tuple[str, str]]], Any],
                   strict: bool = True) -> list[str]:
        """``send`` (one batch request to a queue URL) for every 10 receipt handles of
        one queue, as (entry id, handle) pairs; the failed entries, described. A missing
        plain queue is recreated (``_lost``) unless not ``strict`` (closing: never
        recreate anything); the entries of a band queue that went away are stale."""
        failed: list[str] = []
        for queue_url, handles in self._by_queue(deliveries):
            try:
                url = queue_url or self._url()
                for start in range(0, len(handles), _BATCH):
                    chunk = handles[start:start + _BATCH]
                    with mapped(f"{what} on {self.queue!r}"):
                        reply = send(url, [(str(i), h) for i, h in enumerate(chunk)])
                    failed += [f"{f.get('Code', '')}: {f.get('Message', '')}"
                               for f in reply.get("Failed", [])
                               if f.get("Code") not in _STALE]
            except NotFound as exc:
                if queue_url is not None:
                    self._bands_due = 0.0  # a band went: look at the bands again
                    continue
                if not strict:
                    raise
                raise self._lost(exc) from exc.__cause__
        return failed

    def _by_queue(self, deliveries: Sequence[Delivery]) -> list[tuple[str | None,
                                                                      list[str]]]:
        """The receipt handles of ``deliveries`` by queue URL (``None``: the plain
        queue, whose handles are plain strings)."""
        if not self._banded:
            return [(None, [str(d.handle) for d in deliveries])]
        queues: dict[str | None, list[str]] = {}
        for d in deliveries:
            handle = d.handle
            if isinstance(handle, tuple):
                queues.setdefault(str(handle[0]), []).append(str(handle[1]))
            else:
                queues.setdefault(None, []).append(str(handle))
        return list(queues.items())

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
