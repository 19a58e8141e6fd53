"""Receiving from a durable JetStream pull consumer, and settling.

One inbox subscription per consumer instance; ``receive_batch`` sends a pull request
(``$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>``) for at most the batch asked, expiring
with the call's timeout, and returns as soon as one message arrived. At most one pull
request is outstanding per instance: messages that arrive after a call returned are kept
(leased to this instance) for the next call, so a consumer never holds more than one
batch beyond what it handed out. ``close`` naks everything it holds and handed out
unsettled, so another consumer gets it at once instead of after AckWait.

Settling goes through nats-py's ``Msg.ack`` / ``nak(delay)`` / ``term`` / ``in_progress``
(a publish to each message's reply subject), then flushes (one round trip per batch: the
server has them when the call returns). A message already settled for good is left alone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import nats.js.errors as je
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from mqkit.driver import (
    AsyncSubscriptionDriver,
    BackendError,
    Closed,
    Delivery,
    DeliveryCounts,
    MQError,
    NotFound,
)

from ._errors import mapped
from ._link import Link
from ._names import due_at, split_headers

__all__ = ["PullSubscription", "to_delivery"]

T = TypeVar("T")

# Shortest pull request expiry the server is sent; a shorter wait is a no_wait poll.
_MIN_EXPIRES = 0.05
# Gone requests: 404 no messages, 408 expired, 409 (max waiting, max bytes, consumer
# deleted...), 503 no responders (the consumer or stream is gone).
_GONE = frozenset({"404", "408", "409", "503"})
# A no_wait pull is answered in one round trip; one unanswered this long means the
# consumer is gone (the server ignores pulls on a missing consumer), which is checked.
_NO_WAIT_ANSWER = 1.0
# Stream sequences whose delivery count a consumer instance remembers (about 40 bytes
# each): enough for every message a busy handler loop sees come back.
_SEEN_LIMIT = 10_000
# How long past a pull request's expiry close waits for the server's 408.
_LINGER_GRACE = 0.5
log = logging.getLogger("mqkit.nats")


def to_delivery(topic: str, msg: Msg, seen: DeliveryCounts | None = None,
                deferrals: int = 0, priority: int | None = None) -> Delivery:
    """The :class:`Delivery` for a JetStream message.

    ``seen`` maps stream sequences this consumer instance handed out to the delivery
    count they had: a message coming back to the same instance counts at least one
    more, whatever the server says (nats-server 2.9 was seen, rarely and under load,
    to report ``num_delivered`` 1 for a message redelivered after ``-NAK`` with a delay,
    and the retry policy's dead-lettering counts on this number).

    ``deferrals``: how many of the server's deliveries were a delayed send given back
    before its time (they are no attempt).

    ``priority``: the band the message was read from (``None``: the plain subject); a
    band message's ``broker_id`` is ``p<priority>.<sequence>`` (each band stream counts
    its own sequences).
    """
    meta = msg.metadata
    seq = meta.sequence.stream
    served = max(1, meta.num_delivered - deferrals)
    count = served if seen is None else seen.next(seq, served)
    message = split_headers(msg.headers, msg.data, f"{meta.stream}.{seq}", priority)
    return Delivery(message=message, topic=topic, handle=msg, delivery_count=count,
                    timestamp=meta.timestamp.timestamp(),
                    broker_id=str(seq) if priority is None else f"p{priority}.{seq}")


class PullSubscription(AsyncSubscriptionDriver):
    """A durable pull consumer seen by one mqkit consumer instance: the group's on the
    topic's stream, or (``priority``) on one of its priority bands' streams."""

    def __init__(self, link: Link, topic: str, group: str, stream: str, durable: str, *,
                 priority: int | None = None) -> None:
        self._link = link
        self.priority = priority
        self.on_arrival: Callable[[], None] | None = None
        """Called when a message arrives, or a long pull request ends."""
        self._topic = topic
        self._group = group
        self._stream = stream
        self._durable = durable
        self._next_subject = f"{link.api_prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = link.nc.new_inbox()
        self._sub: Subscription | None = None
        self._buffer: deque[Msg] = deque()
        self._arrived = asyncio.Event()
        self._held: dict[int, Msg] = {}  # handed out, not settled
        self._seen = DeliveryCounts(_SEEN_LIMIT)  # by stream sequence
        # Delayed sends taken before their time, to give back; and how often this
        # instance gave each back (by stream sequence), which is no attempt.
        self._early: list[tuple[Msg, float]] = []
        self._deferred = DeliveryCounts(_SEEN_LIMIT)
        # The one outstanding pull request: messages still due and when it expires.
        self._due = 0
        self._expires = 0.0
        self._no_wait = False
        self._generation = link.generation
        self._error: MQError | None = None
        self._gone: str | None = None
        self._closing = False

    @classmethod
    async def open(cls, link: Link, topic: str, group: str, stream: str,
                   durable: str, *, priority: int | None = None) -> PullSubscription:
        self = cls(link, topic, group, stream, durable, priority=priority)
        with mapped(f"subscribe to {topic!r}/{group!r}"):
            self._sub = await link.nc.subscribe(self._inbox, cb=self._on_msg)
        link.watch_slow(self._sub, self._on_slow)
        return self

    # -- callbacks (run on the connection's loop) ------------------------------------

    async def _on_msg(self, msg: Msg) -> None:
        headers = msg.headers
        status = headers.get("Status") if headers and not msg.data else None
        if status is None:
            self._due -= 1
            if self._closing:
                # A pull request outlived close(): give the message back at once.
                await self._link.nc.publish(msg.reply, b"-NAK")
            else:
                self._buffer.append(msg)
        elif status in _GONE:
            self._due = 0
            description = headers.get("Description", "") if headers else ""
            if status == "503" or "Deleted" in description:
                self._gone = f"{status} {description}".strip()
        # 100: idle heartbeat; nothing to do.
        self._arrived.set()
        if self.on_arrival is not None and (status is None or (
                status in _GONE and not self._no_wait)):
            self.on_arrival()

    def _on_slow(self, exc: BaseException) -> None:
        error = BackendError(
            f"nats: slow consumer on {self._topic!r}/{self._group!r}: the client dropped "
            "messages (JetStream redelivers them after the lease)")
        error.__cause__ = exc
        self._error = error

    # -- receiving -------------------------------------------------------------------

    def _take(self, max_messages: int) -> list[Delivery]:
        """Hand out up to ``max_messages`` buffered messages; a delayed send not due yet
        goes to ``_early`` instead (given back by :meth:`_give_back_early`)."""
        out: list[Delivery] = []
        now = time.time()
        while self._buffer and len(out) < max_messages:
            msg = self._buffer.popleft()
            due = due_at(msg.headers)
            if due is None:
                self._held[id(msg)] = msg
                out.append(to_delivery(self._topic, msg, self._seen, 0, self.priority))
                continue
            seq = msg.metadata.sequence.stream
            if due > now:
                self._early.append((msg, due - now))
                continue
            # Its deferrals are no attempt: those this instance made, else (another
            # member deferred it, or this one forgot) one when it came back at all.
            deferred = self._deferred.get(seq) or (1 if msg.metadata.num_delivered > 1
                                                   else 0)
            self._deferred.forget(seq)
            self._held[id(msg)] = msg
            out.append(to_delivery(self._topic, msg, self._seen, deferred, self.priority))
        return out

    async def _give_back_early(self) -> None:
        """``-NAK`` each delayed send taken before its time with the time it still has
        to wait: the server delivers it again then (to any member). The cost of the
        emulation: one more delivery and one ``-NAK`` per group per delayed message."""
        early, self._early = self._early, []
        with mapped(f"give back delayed messages of {self._topic!r}/{self._group!r}"):
            for msg, wait in early:
                self._deferred.next(msg.metadata.sequence.stream)
                await msg.nak(delay=wait)
            await self._link.flush()

    async def _hand_out(self, max_messages: int) -> list[Delivery]:
        out = self._take(max_messages)
        if self._early:
            await self._give_back_early()
        return out

    async def _check(self, what: str, wait: float) -> None:
        """Raise what the subscription holds (closed, slow consumer, deleted group), or
        :class:`mqkit.Unavailable` if the connection is not back within ``wait`` seconds."""
        if self._sub is None or self._closing:
            raise Closed(f"nats: {what}: subscription closed")
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self._gone is not None:
            # A purge recreates the consumer under the same name; only a missing one is
            # an error.
            with mapped(what):
                try:
                    await self._link.js.consumer_info(self._stream, self._durable)
                except je.NotFoundError:
                    raise NotFound(
                        f"nats: group {self._group!r} on topic {self._topic!r} was deleted "
                        f"({self._gone})") from None
            self._gone = None
        await self._link.ready(what, wait)
        if self._generation != self._link.generation:
            # Pull requests die with the connection they were sent on.
            self._generation = self._link.generation
            self._due = 0

    async def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        what = f"receive from {self._topic!r}/{self._group!r}"
        deadline = time.monotonic() + timeout
        await self._check(what, timeout)
        if self._buffer:
            out = await self._hand_out(max_messages)
            if out:
                return out
        first = True
        while True:
            now = time.monotonic()
            if self._due <= 0 or now >= self._expires:
                remaining = deadline - now
                if not first and remaining < _MIN_EXPIRES:
                    return []
                # First what is there (no_wait: answered at once, the request ends),
                # then a long poll that expires with the call.
                await self._pull(max_messages, 0.0 if first else remaining)
                first = False
            # A no_wait request is waited for to its answer (one round trip).
            limit = self._expires if self._no_wait else deadline
            self._arrived.clear()
            if not self._buffer and self._due > 0 and now < limit:
                try:
                    await asyncio.wait_for(self._arrived.wait(), limit - now)
                except asyncio.TimeoutError:
                    pass
            if self._buffer:
                await asyncio.sleep(0)  # the rest of a batch already read off the socket
                out = await self._hand_out(max_messages)
                if out:
                    return out
                continue  # only delayed sends, given back: wait on
            if self._no_wait and self._due > 0 and time.monotonic() >= self._expires:
                # The JetStream API ignores pulls on a missing consumer: no answer.
                self._gone = "no answer to a pull request"
                self._due = 0
            await self._check(what, deadline - time.monotonic())
            if time.monotonic() >= deadline and not (self._no_wait and self._due > 0):
                return []

    async def fetch_now(self, max_messages: int) -> list[Delivery]:
        """Up to ``max_messages`` of what this consumer has now: the buffered messages,
        else one ``no_wait`` pull waited for to its end (every message it brings, or its
        closing status), so nothing it brings is left for later while a lower lane is
        read (priority bands: strict order across lanes). No round trip while a long
        pull request is outstanding (nothing arrived for it)."""
        out = await self.receive_batch(max_messages, 0.0)
        while len(out) < max_messages and self._no_wait and self._due > 0:
            self._arrived.clear()
            if not self._buffer:
                left = self._expires - time.monotonic()
                if left <= 0:
                    break
                try:
                    await asyncio.wait_for(self._arrived.wait(), left)
                except asyncio.TimeoutError:
                    break
            out += await self._hand_out(max_messages - len(out))
        return out

    async def pull_one(self, wait: float) -> None:
        """Unless a pull request is outstanding, ask for one message, waiting up to
        ``wait`` seconds on the server (what arrives is kept for the next receive)."""
        if self._due <= 0 or time.monotonic() >= self._expires:
            await self._pull(1, wait)

    async def _pull(self, batch: int, wait: float) -> None:
        request: dict[str, object] = {"batch": batch}
        self._no_wait = wait < _MIN_EXPIRES
        if self._no_wait:
            request["no_wait"] = True
            self._expires = time.monotonic() + _NO_WAIT_ANSWER
        else:
            request["expires"] = int(wait * 1e9)
            self._expires = time.monotonic() + wait
        self._due = batch
        with mapped(f"pull from {self._topic!r}/{self._group!r}"):
            await self._link.nc.publish(self._next_subject, json.dumps(request).encode(),
                                        reply=self._inbox)

    # -- settling --------------------------------------------------------------------

    def forget_held(self, msg: Msg) -> bool:
        """Forget ``msg`` as held (a final decision was taken); whether it was held."""
        return self._held.pop(id(msg), None) is not None

    async def _settle(self, deliveries: Sequence[Delivery], what: str,
                      settle: Callable[[Msg], Awaitable[None]], final: bool = True) -> None:
        """``settle`` each delivery's message (nats-py's ``Msg.ack``/``nak``/``term``/
        ``in_progress``: a publish to its reply subject), then one flush. A ``final``
        decision lets the message go from what this instance holds; a message that had
        one already is skipped (nats-py would raise MsgAlreadyAckdError)."""
        self._link.check(what)
        with mapped(f"{what} on {self._topic!r}/{self._group!r}"):
            for d in deliveries:
                msg = d.handle
                assert isinstance(msg, Msg)
                if final:
                    self._held.pop(id(msg), None)
                if not msg.is_acked:
                    await settle(msg)
            await self._link.flush()

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        await self._settle(deliveries, "ack", Msg.ack)

    async def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        # nats-py sends a delay (in ns) only when it is positive, as the SPI means it.
        await self._settle(deliveries, "nack", lambda msg: msg.nak(delay))

    async def reject(self, deliveries: Sequence[Delivery]) -> None:
        await self._settle(deliveries, "reject", Msg.term)

    async def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        """``+WPI`` (in progress): AckWait starts again, whatever ``seconds`` asks."""
        await self._settle(deliveries, "extend lease", Msg.in_progress, final=False)

    async def close(self) -> None:
        """Give back (nak) what this instance holds, so others get it at once.

        A pull request still outstanding on the server would take the naked messages
        again, into an inbox nobody listens to once closed (they would wait out
        AckWait): so close first waits for it to end (at most the last receive's
        timeout), naking what arrives, and naks what it holds after that.
        """
        if self._sub is None or self._closing:
            return
        self._closing = True
        nc = self._link.nc
        if not nc.is_connected:
            self._held.clear()
            self._buffer.clear()
            await self._unsubscribe()
            return  # the server's AckWait gives them back
        deadline = self._expires + _LINGER_GRACE
        while (self._due > 0 and self._generation == self._link.generation
               and time.monotonic() < deadline):
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), deadline - time.monotonic())
            except asyncio.TimeoutError:
                break
        held = [m for m in (*self._held.values(), *self._buffer) if not m.is_acked]
        self._held.clear()
        self._buffer.clear()
        try:
            with mapped(f"close {self._topic!r}/{self._group!r}"):
                for msg in held:
                    await nc.publish(msg.reply, b"-NAK")
                await self._link.flush()
        finally:
            await self._unsubscribe()

    async def _unsubscribe(self) -> None:
        sub, self._sub = self._sub, None
        if sub is None:
            return
        self._link.unwatch(sub)
        try:
            await sub.unsubscribe()
        except Exception:  # the connection may be closed by now: nothing to undo
            log.debug("nats: unsubscribe after close failed", exc_info=True)

    def as_(self, kind: type[T]) -> T | None:
        for native in (self._link.nc, self._link.js, self._sub):
            if isinstance(native, kind):
                return native
        return None
