"""A group's subscription over its topic's plain stream and priority bands.

Each **lane** is a :class:`PullSubscription`: one per band stream that exists (highest
priority first), then the plain stream. While the topic has no band, a receive is the
plain lane's own receive (no extra request); bands are looked for when the subscription
opens and then every ``LOOK_EVERY`` seconds in a background task (``_bands``), never in a
receive's path.

With bands, ordering and fairness (see ``docs/backends/nats.md``):

* **strict priority**: a receive asks each lane in turn, highest band first, for what is
  still missing (a ``no_wait`` pull, waited for to its end: one round trip per lane), so
  a lower band is read only when the higher ones have nothing waiting, and starves while
  they always have;
* a band found empty is left a pull request for one message, waiting on the server up
  to ``_SENTINEL_WAIT``: until it ends, a message stored in the band comes to this
  instance at once and the band costs a receive no round trip (at most one message per
  band is so leased ahead, kept for the next receive);
* within a lane, the stream's order (FIFO), redeliveries included as on a plain stream;
* when no lane has anything, the wait is one pull request of **one** message per lane,
  expiring with the call: the first arrival ends it (at most one message per lane is
  leased beyond what was asked, kept for the next receive, handed out highest lane
  first);
* priority orders what waits: messages already handed out or kept are not recalled when
  a higher one arrives.

Settling goes straight to each message (``Msg.ack``/``nak``/``term``/``in_progress`` to its
reply subject, whatever its lane) with one flush per call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import nats.js.errors as je
from nats.aio.msg import Msg

from mqkit.driver import AsyncSubscriptionDriver, Delivery, NotFound

from ._bands import LOOK_EVERY, band_streams, ensure_band_consumer
from ._consumer import PullSubscription
from ._errors import mapped
from ._link import Link
from ._names import band_subject, stream_name

__all__ = ["BandedSubscription"]

T = TypeVar("T")
log = logging.getLogger("mqkit.nats")

# A receive with less than this left does not start a wait on every lane.
_MIN_WAIT = 0.05
# How long a band found empty keeps a pull request for one message waiting on the server
# (its "sentinel"): while it waits, a message stored in the band comes straight to this
# instance, so receives skip the band at no round trip; an idle band costs one no_wait
# pull per second instead of one per receive. Closing waits for it to end (at most this
# long, all lanes at once).
_SENTINEL_WAIT = 1.0


class BandedSubscription(AsyncSubscriptionDriver):
    """The lanes of one group seen by one mqkit consumer instance."""

    def __init__(self, link: Link, prefix: str, topic: str, group: str, *,
                 plain: PullSubscription, durable: str, lease: float) -> None:
        self._link = link
        self._prefix = prefix
        self._topic = topic
        self._group = group
        self._plain = plain
        self._durable = durable
        self._lease = lease
        self._bands: dict[int, PullSubscription] = {}
        self._lanes: tuple[PullSubscription, ...] = (plain,)  # highest band first
        self._next_look = 0.0
        self._looking: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closing: set[asyncio.Future[None]] = set()  # lanes of bands gone
        self._closed = False

    @classmethod
    async def open(cls, link: Link, prefix: str, topic: str, group: str, *,
                   plain: PullSubscription, durable: str, lease: float) -> BandedSubscription:
        self = cls(link, prefix, topic, group, plain=plain, durable=durable, lease=lease)
        try:
            await self._look()
        except BaseException:
            await self.close()
            raise
        return self

    # -- bands -----------------------------------------------------------------------

    async def _look(self) -> None:
        """Find the bands that exist: open a lane on each new one (its consumer made if
        the group has none there yet, its lease set), drop the lanes of those gone."""
        self._next_look = time.monotonic() + LOOK_EVERY
        what = f"look for priority bands of {self._topic!r}"
        with mapped(what):
            found = await band_streams(self._link, self._prefix, self._topic)
            new = {p: band for p, band in found.items() if p not in self._bands}
            if new:
                js = self._link.js
                plain = await js.consumer_info(stream_name(self._prefix, self._topic),
                                               self._durable)
                for priority, band in new.items():
                    info = await ensure_band_consumer(
                        js, band, band_subject(self._topic, priority), plain)
                    if abs((info.config.ack_wait or 0) - self._lease) > 0.001:
                        try:
                            await js.add_consumer(band,
                                                  info.config.evolve(ack_wait=self._lease))
                        except je.APIError as exc:  # as on the plain stream: read on
                            log.warning("nats: could not change ack_wait of %s/%s to %s s: "
                                        "%s", band, self._durable, self._lease,
                                        exc.description)
        if self._closed:
            return
        gone = [self._bands.pop(p) for p in list(self._bands) if p not in found]
        for priority, band in new.items():
            lane = await PullSubscription.open(self._link, self._topic, self._group, band,
                                               self._durable, priority=priority)
            lane.on_arrival = self._wake.set
            self._bands[priority] = lane
        self._lanes = (*(self._bands[p] for p in sorted(self._bands, reverse=True)),
                       self._plain)
        for lane in gone:
            await lane.close()

    def _maybe_look(self) -> None:
        if time.monotonic() < self._next_look or self._looking is not None:
            return
        self._next_look = time.monotonic() + LOOK_EVERY
        self._looking = asyncio.ensure_future(self._look_in_background())

    async def _look_in_background(self) -> None:
        try:
            await self._look()
        except Exception as exc:  # looked for again later; a receive reports the link
            log.debug("nats: looking for priority bands of %r failed: %s", self._topic, exc)
        finally:
            self._looking = None

    def _drop(self, lane: PullSubscription) -> None:
        """A band whose stream or consumer went away: read without it, look again."""
        if lane.priority is not None and self._bands.get(lane.priority) is lane:
            del self._bands[lane.priority]
            self._lanes = tuple(x for x in self._lanes if x is not lane)
            self._next_look = 0.0
            closing = asyncio.ensure_future(lane.close())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    # -- receiving -------------------------------------------------------------------

    async def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        if time.monotonic() >= self._next_look:
            self._maybe_look()
        lanes = self._lanes
        if len(lanes) == 1:
            return await self._plain.receive_batch(max_messages, timeout)
        deadline = time.monotonic() + timeout
        await self._link.ready(f"receive from {self._topic!r}/{self._group!r}", timeout)
        while True:
            self._wake.clear()
            out: list[Delivery] = []
            for lane in lanes:
                try:
                    # No round trip for a band whose sentinel waits (nothing arrived).
                    got = await lane.fetch_now(max_messages - len(out))
                    if not got and lane is not self._plain:
                        await lane.pull_one(_SENTINEL_WAIT)
                except NotFound:
                    if lane is self._plain:
                        raise
                    self._drop(lane)
                    continue
                out += got
                if len(out) >= max_messages:
                    break
            if out:
                return out
            remaining = deadline - time.monotonic()
            if remaining < _MIN_WAIT:
                return []
            if not self._wake.is_set():
                with mapped(f"receive from {self._topic!r}/{self._group!r}"):
                    await self._plain.pull_one(remaining)  # bands: their sentinels
                try:
                    await asyncio.wait_for(self._wake.wait(), remaining)
                except asyncio.TimeoutError:
                    pass
            lanes = self._lanes

    # -- settling --------------------------------------------------------------------

    async def _settle(self, deliveries: Sequence[Delivery], what: str,
                      settle: Callable[[Msg], Awaitable[None]], final: bool = True) -> None:
        """As ``PullSubscription._settle``, over the lanes: one flush in all."""
        self._link.check(what)
        lanes = self._lanes
        with mapped(f"{what} on {self._topic!r}/{self._group!r}"):
            for d in deliveries:
                msg = d.handle
                assert isinstance(msg, Msg)
                if final:
                    for lane in lanes:
                        if lane.forget_held(msg):
                            break
                if not msg.is_acked:
                    await settle(msg)
            await self._link.flush()

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if not self._bands:
            return await self._plain.ack(deliveries)
        await self._settle(deliveries, "ack", Msg.ack)

    async def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        if not self._bands:
            return await self._plain.nack(deliveries, delay)
        await self._settle(deliveries, "nack", lambda msg: msg.nak(delay))

    async def reject(self, deliveries: Sequence[Delivery]) -> None:
        if not self._bands:
            return await self._plain.reject(deliveries)
        await self._settle(deliveries, "reject", Msg.term)

    async def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        if not self._bands:
            return await self._plain.extend_lease(deliveries, seconds)
        await self._settle(deliveries, "extend lease", Msg.in_progress, final=False)

    async def close(self) -> None:
        """Close every lane (each gives back what it holds), at once."""
        if self._closed:
            return
        self._closed = True
        looking, self._looking = self._looking, None
        if looking is not None:
            looking.cancel()
            await asyncio.gather(looking, return_exceptions=True)
        lanes = (*self._bands.values(), self._plain)
        self._bands.clear()
        results = await asyncio.gather(*(lane.close() for lane in lanes),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def as_(self, kind: type[T]) -> T | None:
        return self._plain.as_(kind)
