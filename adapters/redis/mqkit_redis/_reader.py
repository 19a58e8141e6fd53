"""One consumer of one group: its state and its flows (sans-I/O; see ``_flows``).

A reader reads one or more **lanes**: the topic's plain stream, and each priority band
stream (``Names.band``) that exists, highest priority first. A topic never sent a
priority has one lane, and a reader of it sends exactly the commands it would without
priority support, plus one ``EXISTS`` of the nine band keys in each look (same round
trip) that notices a band appearing.

Ordering and fairness with bands (see ``docs/backends/redis.md``):

* fresh entries go out by **strict priority**: a receive takes from the highest band
  that has entries first, then the next (one ``READ_BANDS`` script call, so nothing is
  read that is not handed out); lower bands starve while higher ones always have entries;
* within a band, entries go out in id order (FIFO, as a plain stream);
* entries due again (nacked, or reclaimed after their lease) are handed out before fresh
  ones, highest band first, as on a plain stream;
* while all lanes are empty, a receive blocks on all of them at once (``XREADGROUP ...
  BLOCK`` over every lane); entries beyond ``max_messages`` in its reply (several lanes
  woken at once) are given back: handed to ``mqkit-released`` with their delivery
  counter set to 0 and scheduled at once, so the next look takes them back, counted once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.exceptions as re_

from mqkit.driver import Delivery, SubscriptionOptions

from ._bands import READ_BANDS, READ_BANDS_SHA
from ._delay import MOVE_DUE
from ._flows import RELEASED, Command, Flow, call, check, exchange, trim_args
from ._flows import text as s_
from ._names import BANDS, Names
from ._options import RedisOptions
from ._wire import deliveries

__all__ = ["Lane", "Reader", "make_reader"]

# 50 ms: how stale a busy consumer's view of reclaimable and due entries may get; 20
# extra round trips per second at most, instead of one per batch.
_CHECK_EVERY = 0.05
# Delayed messages moved into the stream per look: bounds the script's run time.
_MOVE_MAX = 1000
# Entries handled per call when a consumer releases.
_PAGE = 1000


@dataclass
class Lane:
    """One stream a reader reads: the plain stream (``priority`` None) or a band's."""

    key: str
    retry: str
    delayed: str
    priority: int | None
    cursor: str = "0-0"  # XAUTOCLAIM's, kept between looks

    @property
    def band(self) -> tuple[str, int] | None:
        return None if self.priority is None else (self.key, self.priority)


@dataclass
class Reader:
    """One consumer of one group: its lanes and flows.

    ``receive``: first a look for what is due again, then a read of fresh entries. The
    look (before blocking, after a nack of ours, else at most every 50 ms) sends in one
    round trip, per lane: the delayed-send mover script, the due ids of the group's
    retry schedule, and ``XAUTOCLAIM ... JUSTID`` of entries idle longer than the lease
    (its cursor kept, so a long pending list is walked, not its head rescanned); and one
    ``EXISTS`` of the band keys. A claimed entry still scheduled for later is left
    alone; a due entry is taken by whoever ``ZREM``s it first; the taken entries are
    ``XCLAIM``ed (one more delivery) and their counts read with ``XPENDING`` in the same
    round trip. Handles: the entry id (plain stream) or ``(band key, entry id)``.
    """

    topic: str
    key: str
    group: str
    retry: str
    delayed: str
    me: str
    lease_ms: int
    options: RedisOptions
    script_sha: str
    names: Names = field(default_factory=Names)
    nacked: bool = False
    next_check: float = 0.0
    banded: bool = False  # a band lane was ever read: handles may be tuples
    lanes: list[Lane] = field(default_factory=list)
    band_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.plain = Lane(self.key, self.retry, self.delayed, None)
        self.lanes = [self.plain]
        self.band_keys = tuple(self.names.bands(self.topic))

    @property
    def cursor(self) -> str:
        return self.plain.cursor

    # -- bands ---------------------------------------------------------------------

    def discover(self) -> Flow[None]:
        """Find the band streams that exist (one ``EXISTS`` each, one round trip) and
        read them from now on; the group is created (from ``0``) on a band found
        without it (one a plain client made; ``BUSYGROUP`` ignored)."""
        present = yield from call(*[("EXISTS", k) for k in self.band_keys])
        found = [k for k, n in zip(self.band_keys, present, strict=True) if n]
        known = {lane.key for lane in self.lanes}
        new = [k for k in found if k not in known]
        if new:
            replies = yield from exchange([("XGROUP", "CREATE", k, self.group, "0")
                                           for k in new])
            for key, reply in zip(new, replies, strict=True):
                if isinstance(reply, Exception) and not str(reply).startswith("BUSYGROUP"):
                    found.remove(key)  # gone meanwhile: the next look tells
        self._set_bands(found)

    def _set_bands(self, found: list[str]) -> None:
        old = {lane.key: lane for lane in self.lanes}
        lanes = []
        for key in found:  # band_keys order: highest first
            lane = old.get(key)
            if lane is None:
                priority = BANDS[self.band_keys.index(key)]
                lane = Lane(key, self.names.retry_of(key, self.group),
                            self.names.delayed_of(key), priority)
            lanes.append(lane)
        self.lanes = [*lanes, self.plain]
        self.banded = self.banded or bool(lanes)

    # -- receiving -------------------------------------------------------------------

    def receive(self, max_messages: int, timeout: float) -> Flow[list[Delivery]]:
        deadline = time.monotonic() + timeout
        slice_s = self.options.block_slice
        while True:
            now = time.monotonic()
            if self.nacked or now >= self.next_check:
                self.nacked = False
                self.next_check = now + _CHECK_EVERY
                got = yield from self._due_again(max_messages)
                if got:
                    return got
            remaining = deadline - time.monotonic()
            block = int(min(remaining, slice_s) * 1000)
            if len(self.lanes) == 1:
                command: list[Any] = ["XREADGROUP", "GROUP", self.group, self.me,
                                      "COUNT", max_messages]
                if block >= 1:
                    command += ["BLOCK", block]
                command += ["STREAMS", self.key, ">"]
                [reply] = yield from call(tuple(command))
                got = self.deliveries(reply)
            else:
                got = yield from self._read_lanes(max_messages, block)
            if not got:
                self.next_check = 0.0  # idle: look again before the next block
            if got or block < 1 or time.monotonic() >= deadline:
                return got

    def _read_lanes(self, limit: int, block: int) -> Flow[list[Delivery]]:
        """Strict priority over the lanes: ``READ_BANDS`` (no block); when all are
        empty, one ``XREADGROUP ... BLOCK`` over them all, the surplus given back."""
        keys = [lane.key for lane in self.lanes]
        [reply] = yield from exchange([("EVALSHA", READ_BANDS_SHA, len(keys), *keys,
                                        self.group, self.me, limit)])
        if isinstance(reply, re_.NoScriptError):
            yield from call(("SCRIPT", "LOAD", READ_BANDS))
            return []
        [(pairs, failed)] = check([reply])
        got = self.deliveries(pairs)
        failed = [s_(k) for k in failed]
        if self.key in failed:  # the topic or the group is gone
            raise re_.ResponseError(f"NOGROUP No such key '{self.key}' or consumer group "
                                    f"'{self.group}' in XREADGROUP with GROUP option")
        if failed:  # a band went away or lacks the group: look at the bands again
            yield from self.discover()
            return got
        if got or block < 1:
            return got
        [reply] = yield from exchange([("XREADGROUP", "GROUP", self.group, self.me,
                                        "COUNT", limit, "BLOCK", block,
                                        "STREAMS", *keys, *[">"] * len(keys))])
        if isinstance(reply, re_.ResponseError) and str(reply).startswith("NOGROUP"):
            before = [lane.key for lane in self.lanes]
            yield from self.discover()  # a band went away: read again without it
            if [lane.key for lane in self.lanes] != before:
                return []
        check([reply])
        got = self.deliveries(reply)
        if len(got) > limit:
            yield from self._give_back(got[limit:])
            got = got[:limit]
        return got

    def _give_back(self, surplus: list[Delivery]) -> Flow[None]:
        """Entries read but not handed out: to ``mqkit-released`` with their delivery
        counter reset, scheduled at once (the next look takes them, counted once)."""
        now = int(time.time() * 1000)
        step: list[Command] = []
        for key, ids in self._by_key(d.handle for d in surplus).items():
            step += [("XCLAIM", key, self.group, RELEASED, 0, *ids, "RETRYCOUNT", 0,
                      "JUSTID"),
                     ("ZADD", self.names.retry_of(key, self.group), "NX",
                      *[x for e in ids for x in (now, e)])]
        yield from call(*step)
        self.nacked = True

    def deliveries(self, reply: Any, lane: Lane | None = None,
                   counts: dict[str, int] | None = None) -> list[Delivery]:
        """Deliveries from an XREADGROUP or READ_BANDS reply (RESP2 lists, or RESP3
        maps), highest band first; or, with ``lane``, from its XCLAIM reply."""
        out: list[Delivery] = []
        if not reply:
            return out
        if lane is not None:  # XCLAIM: a list of entries
            deliveries(self.topic, reply, counts, out, lane.band)
            return out
        pairs = list(reply.items() if isinstance(reply, dict) else reply)
        if len(self.lanes) == 1 and len(pairs) == 1:
            deliveries(self.topic, pairs[0][1], None, out)
            return out
        by_key = {s_(key): entries for key, entries in pairs}
        for each in self.lanes:
            entries = by_key.get(each.key)
            if entries:
                deliveries(self.topic, entries, None, out, each.band)
        return out

    def _due_again(self, limit: int) -> Flow[list[Delivery]]:
        wall = time.time()
        now = int(wall * 1000)
        trim = trim_args(self.options, wall)
        step: list[Command] = []
        for lane in self.lanes:
            step += [("EVALSHA", self.script_sha, 2, lane.key, lane.delayed, now, _MOVE_MAX,
                      *trim),
                     ("ZRANGE", lane.retry, "-inf", now, "BYSCORE", "LIMIT", 0, limit),
                     ("XAUTOCLAIM", lane.key, self.group, self.me, self.lease_ms,
                      lane.cursor, "COUNT", limit, "JUSTID")]
        step.append(("EXISTS", *self.band_keys))
        replies = yield step
        out: list[Delivery] = []
        lanes = self.lanes
        stale = False
        for i, lane in enumerate(lanes):
            moved, due, claimed = replies[3 * i:3 * i + 3]
            if isinstance(moved, re_.NoScriptError):  # a restarted or flushed server
                yield from call(("SCRIPT", "LOAD", MOVE_DUE))
                moved = 0
            if lane is not self.plain and isinstance(claimed, re_.ResponseError):
                stale = True  # the band is gone (or lacks the group): look at them again
                continue
            check([moved, due, claimed])
            lane.cursor = s_(claimed[0])
            got = yield from self._take(lane, [s_(e) for e in due],
                                        [s_(e) for e in claimed[1]], limit - len(out), now)
            out += got
        [bands] = check(replies[-1:])
        if stale or int(bands) != len(lanes) - 1:  # a band appeared or went
            yield from self.discover()
        return out

    def _take(self, lane: Lane, due_ids: list[str], idle: list[str], limit: int,
              now: int) -> Flow[list[Delivery]]:
        """Take (``XCLAIM``) up to ``limit`` of ``lane``'s due and idle entries; idle
        ones beyond it are scheduled at once, for anyone."""
        due_ids = due_ids[:max(limit, 0)]
        if not due_ids and not idle:
            return []
        step: list[Command] = [("ZREM", lane.retry, e) for e in due_ids]
        if idle:
            step.append(("ZMSCORE", lane.retry, *idle))
        replies = yield from call(*step)
        taken = [e for e, removed in zip(due_ids, replies, strict=False) if removed]
        if idle:
            scores = [None if s is None else float(s) for s in replies[-1]]
            later = {e for e, s in zip(idle, scores, strict=True) if s is not None and s > now}
            stale = [e for e, s in zip(idle, scores, strict=True) if s is not None and s <= now]
            if stale:
                yield from call(("ZREM", lane.retry, *stale))
            seen = set(taken)
            taken += [e for e in idle if e not in later and e not in seen]
        extra, taken = taken[max(limit, 0):], taken[:max(limit, 0)]
        step = []  # a new step: the one above was sent
        if extra:  # more than asked for: due again at once, for anyone
            step.append(("ZADD", lane.retry, *[x for e in extra for x in (now, e)]))
        if taken:
            step.append(("XCLAIM", lane.key, self.group, self.me, 0, *taken))
            step += [("XPENDING", lane.key, self.group, e, e, 1) for e in taken]
        if not step:
            return []
        replies = yield from call(*step)
        replies = replies[1:] if extra else replies
        if not taken:
            return []
        counts = {s_(row[0]): int(row[3]) for rows in replies[1:] for row in rows}
        return self.deliveries(replies[0], lane, counts)

    # -- settling --------------------------------------------------------------------

    def _by_key(self, handles: Any) -> dict[str, list[Any]]:
        """Entry ids grouped by the stream they belong to."""
        out: dict[str, list[Any]] = {}
        for h in handles:
            key, entry = h if type(h) is tuple else (self.key, h)
            out.setdefault(key, []).append(entry)
        return out

    def ack(self, handles: Sequence[Any]) -> Flow[list[Any]]:
        """``XACK`` (ack and reject alike: the entry is done for this group), one per
        stream the entries belong to."""
        return call(*self.ack_commands(handles))

    def ack_commands(self, handles: Sequence[Any]) -> list[Command]:
        """The ``XACK`` commands of :meth:`ack`: what a receive may send ahead of its
        read (``flows.ahead``). Acking an entry twice does nothing (``XACK`` counts 0)."""
        if not self.banded:
            return [("XACK", self.key, self.group, *handles)]
        return [("XACK", key, self.group, *ids) for key, ids in self._by_key(handles).items()]

    def nack(self, handles: Sequence[Any], delay: float | None) -> Flow[list[Any]]:
        """Schedule the entries in their stream's retry schedule at now (+ delay)."""
        due = int((time.time() + (delay or 0.0)) * 1000)
        self.nacked = True
        if not self.banded:
            return call(("ZADD", self.retry, *[x for h in handles for x in (due, h)]))
        return call(*[("ZADD", self.names.retry_of(key, self.group),
                       *[x for e in ids for x in (due, e)])
                      for key, ids in self._by_key(handles).items()])

    def extend(self, handles: Sequence[Any]) -> Flow[list[Any]]:
        """``XCLAIM ... JUSTID``: resets the idle time, counts no delivery."""
        if not self.banded:
            return call(("XCLAIM", self.key, self.group, self.me, 0, *handles, "JUSTID"))
        return call(*[("XCLAIM", key, self.group, self.me, 0, *ids, "JUSTID")
                      for key, ids in self._by_key(handles).items()])

    def release(self) -> Flow[None]:
        """Schedule this consumer's pending entries at once (``ZADD NX``: one waiting
        for a delayed nack keeps its time), hand them to ``mqkit-released``, and leave
        the group (``XGROUP DELCONSUMER``), on every lane."""
        for lane in self.lanes:
            while True:
                [rows] = yield from call(("XPENDING", lane.key, self.group, "-", "+",
                                          _PAGE, self.me))
                ids = [s_(row[0]) for row in rows]
                if not ids:
                    break
                now = int(time.time() * 1000)
                yield from call(("ZADD", lane.retry, "NX", *[x for e in ids for x in (now, e)]),
                                ("XCLAIM", lane.key, self.group, RELEASED, 0, *ids, "JUSTID"))
            yield from call(("XGROUP", "DELCONSUMER", lane.key, self.group, self.me))


def make_reader(names: Names, topic: str, group: str, *, options: RedisOptions,
                sub: SubscriptionOptions, script_sha: str) -> Reader:
    return Reader(topic=topic, key=names.stream(topic), group=group,
                  retry=names.retry(topic, group), delayed=names.delayed(topic),
                  me=sub.consumer_name, lease_ms=max(1, int(sub.lease * 1000)),
                  options=options, script_sha=script_sha, names=names)
