"""Receiving: one KafkaConsumer per subscription, in the group, with a ledger of offsets.

The consumer subscribes to the topic and the group's retry topic. ``ack`` and
``reject`` settle offsets and commit the contiguous settled prefix at once. ``nack``
republishes a copy to the retry topic (delivery count + 1, retry time when delayed),
then settles the original. A retried record whose time has not come pauses its
retry-topic partition until then (the records behind it wait too). On a rebalance the
settled prefix of revoked partitions is committed first; a partition that comes back
to this member keeps its state, so its unsettled deliveries stay valid.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import kafka.errors as ke
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from mqkit.driver import (
    BackendError,
    Delivery,
    MQError,
    NotFound,
    SubscriptionDriver,
    Unavailable,
    received,
)

from ._errors import mapped
from ._ledger import Ledger, _Partition
from ._names import COUNT, MSG_ID, RETRY_AT, record_headers, split_record
from ._net import broker_connected, group_state
from ._producer import send_records

__all__ = ["KafkaSubscription"]

log = logging.getLogger("mqkit.kafka")
T = TypeVar("T")

# How often an idle receive asks the broker whether the topic still exists: a deleted
# topic shows up as an error within a second, at one metadata request per second.
_EXISTS_EVERY = 1.0
# Seconds between seeing a stalled member's backlog and acting on it: a record that
# just arrived is fetched well within this.
_RECHECK = 3.0
# A member that joined (stable) with no partition at all while some partition of its
# topic has no owner is checked after this many seconds instead of stuck_after: it was
# assigned with metadata that lacked a just-created topic (kafka-python's range
# assignor logs "No partition metadata for topic") and may never fetch anything.
_EMPTY_AFTER = 2.0
# A member with no connection to any broker for this long is unavailable: kafka-python's
# poll keeps returning nothing (it reconnects in the background), and a metadata call can
# take its whole request timeout to fail.
_UNREACHABLE_AFTER = 3.0
_EMPTY_RECHECK = 1.0


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, sub: KafkaSubscription) -> None:
        self._sub = sub

    def on_partitions_revoked(self, revoked: Any) -> None:
        self._sub._on_revoked(list(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._sub._on_assigned(list(assigned))


class KafkaSubscription(SubscriptionDriver):
    """One group member on a topic and its retry topic."""

    def __init__(self, make_consumer: Callable[[], KafkaConsumer],
                 producer: Callable[[], KafkaProducer], topic: str, retry_topic: str, *,
                 max_request_size: int, send_timeout: float, stuck_after: float,
                 end_offsets: Callable[[list[TopicPartition]], dict[TopicPartition, int]],
                 unowned: Callable[[], int]) -> None:
        self._make_consumer = make_consumer
        self._stuck_after = stuck_after
        self._end_offsets = end_offsets
        self._unowned = unowned
        self._progress = time.monotonic()
        self._suspect = False
        self._producer = producer
        self._topic = topic
        self._retry = retry_topic
        self._max = max_request_size
        self._send_timeout = send_timeout
        self._ledger = Ledger()
        self._revoked: dict[TopicPartition, _Partition] = {}
        self._paused: dict[TopicPartition, float] = {}
        self._last_exists = time.monotonic()
        self._unreachable_since: float | None = None
        self._consumer = self._subscribe()

    def _subscribe(self) -> KafkaConsumer:
        with mapped(f"open consumer of {self._topic!r}"):
            consumer = self._make_consumer()
        try:
            with mapped(f"subscribe to {self._topic!r}"):
                consumer.subscribe([self._topic, self._retry], listener=_Listener(self))
        except BaseException:
            consumer.close(autocommit=False)
            raise
        return consumer

    def _watch_membership(self) -> None:
        """Replace a member that stopped making progress with a fresh one.

        kafka-python can lose a group join or its fetches when the broker restarts at
        the wrong moment: the member then never gets partitions again, or keeps them
        while fetching nothing. After ``stuck_after`` seconds without a record, a
        member with no partitions while some partition of the topic has no owner in
        the group, or whose partitions have records past its fetch position (asked
        through the admin client, not through the member's own connection; seen
        twice, ``_RECHECK`` seconds apart), is closed and a new one joins. Its settled
        prefix is committed first; its unsettled deliveries come back (at-least-once).
        A member that joined with no partition at all is looked at after
        ``_EMPTY_AFTER`` seconds (``_EMPTY_RECHECK`` apart) instead: right after a
        topic was created, a join can happen before its partitions have a leader.
        """
        now = time.monotonic()
        if now - self._progress < _EMPTY_AFTER:
            return
        assigned = [tp for tp in self._consumer.assignment() if tp not in self._paused]
        state = group_state(self._consumer)
        # Joined with nothing at all: no need to wait a whole stuck_after (a member
        # still joining is not "<stable>" and waits the full time).
        empty = not self._consumer.assignment() and state == "<stable>"
        limit, recheck = ((_EMPTY_AFTER, _EMPTY_RECHECK) if empty
                          else (self._stuck_after, _RECHECK))
        if now - self._progress < limit:
            return
        self._progress = now  # look again after another limit at the earliest
        try:
            if assigned:
                ends = self._end_offsets(assigned)
                behind = sum(1 for tp in assigned if ends.get(tp, 0) > self._position(tp))
                reason = f"{behind} partition(s) have records it does not fetch"
            else:
                # No partitions: fine when other members hold them all (more members
                # than partitions); stuck when some partition has no owner.
                behind = self._unowned()
                reason = f"no partitions while {behind} have no owner ({state})"
        except MQError as exc:
            log.info("kafka: progress check of %s failed: %s", self._topic, exc)
            return
        if not behind:
            self._suspect = False
            return
        if not self._suspect:
            # Records or members may be just arriving: look again in _RECHECK seconds.
            self._suspect = True
            self._progress = now - limit + recheck
            return
        self._suspect = False
        log.warning("kafka: member of %s idle for %.0fs and %s; joining again with a new "
                    "consumer", self._topic, limit, reason)
        try:
            self._commit(None)
        except MQError as exc:
            log.info("kafka: commit before replacing the member failed: %s", exc)
        old, self._consumer = self._consumer, self._subscribe()
        for tp in self._ledger.partitions():
            self._ledger.detach(tp)
        self._revoked.clear()
        self._paused.clear()
        try:
            old.close(autocommit=False)
        except Exception as exc:  # the old member is gone either way
            log.info("kafka: closing the stuck consumer failed: %s", exc)

    def _position(self, tp: TopicPartition) -> int:
        """The member's fetch position in ``tp`` (past transaction markers); -1 when it
        cannot tell within a second (a stuck member)."""
        try:
            position = self._consumer.position(tp, timeout_ms=1000)
        except Exception:  # the member's own connection is what is being checked
            return -1
        return -1 if position is None else int(position)

    # -- rebalance -----------------------------------------------------------------

    def _on_revoked(self, revoked: list[TopicPartition]) -> None:
        try:
            self._commit(revoked)
        except MQError as exc:
            log.warning("kafka: commit before revocation of %s failed: %s", revoked, exc)
        for tp in revoked:
            state = self._ledger.detach(tp)
            if state is not None:
                self._revoked[tp] = state
            self._paused.pop(tp, None)

    def _on_assigned(self, assigned: list[TopicPartition]) -> None:
        for tp in assigned:
            state = self._revoked.pop(tp, None)
            if state is not None and state.position is not None:
                # Ours again, and nobody owned it in between (eager rebalance): keep its
                # unsettled deliveries valid and go on after the last one delivered.
                self._ledger.attach(tp, state)
                self._consumer.seek(tp, state.position)
            else:
                self._ledger.assign(tp)
        self._revoked.clear()
        # A retry partition we paused and got back keeps kafka-python's pause across the
        # rebalance, but _on_revoked forgot it: resume it, or nothing would. Its not-due
        # record is read again and paused again with its own due time.
        stale = [tp for tp in assigned if tp not in self._paused
                 and tp in self._consumer.paused()]
        if stale:
            self._consumer.resume(*stale)

    # -- receive -------------------------------------------------------------------

    def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while True:
            self._resume_due()
            remaining = max(0.0, deadline - time.monotonic())
            wait = remaining
            if self._paused:
                wait = min(wait, max(0.0, min(self._paused.values()) - time.time()))
            with mapped(f"receive from {self._topic!r}"):
                batches = self._consumer.poll(timeout_ms=int(wait * 1000),
                                              max_records=max_messages)
            out = self._deliveries(batches)
            if out:
                self._progress = time.monotonic()
                self._suspect = False
                return out
            self._check_reachable()
            self._watch_membership()
            if time.monotonic() >= deadline:
                self._check_exists()
                return []

    def _deliveries(self, batches: dict[TopicPartition, list[Any]]) -> list[Delivery]:
        out: list[Delivery] = []
        append = out.append
        deferred: dict[TopicPartition, list[Any]] = {}
        delivered: dict[TopicPartition, list[int]] = {}
        now = time.time()
        topic = self._topic
        for tp, records in batches.items():
            retry = tp.topic == self._retry
            prefix = f"{tp.topic}:{tp.partition}:"
            epoch = self._ledger.epoch(tp)
            offsets: list[int] = []
            keep = offsets.append
            for r in records:
                offset = r.offset
                broker_id = prefix + str(offset)
                headers = r.headers
                value = r.value
                body = value if value is not None else b""
                raw_key = r.key
                key = None if raw_key is None else raw_key.decode("utf-8", "replace")
                ts = r.timestamp
                if len(headers) == 1 and headers[0][0] == MSG_ID and headers[0][1]:
                    # The common case, a plain mqkit send: only the id (built in one go).
                    keep(offset)
                    append(received(body, key, {},
                                    headers[0][1].decode("utf-8", "replace"), None, None,
                                    None, topic, (tp, offset, epoch), 1,
                                    ts / 1000.0 if ts > 0 else None, broker_id))
                    continue
                msg, count, retry_at = split_record(key, body, headers or (), broker_id)
                if retry_at is not None and retry_at > now:
                    if not retry:  # a delayed send: to the group's retry topic
                        deferred.setdefault(tp, []).append(r)
                        continue
                    # Not due yet: read it again from here once it is.
                    with mapped("pause a retry partition"):
                        self._consumer.seek(tp, offset)
                        self._consumer.pause(tp)
                    self._paused[tp] = retry_at
                    break
                keep(offset)
                append(Delivery(msg, topic, (tp, offset, epoch), delivery_count=count,
                                timestamp=ts / 1000.0 if ts > 0 else None,
                                broker_id=broker_id))
            delivered[tp] = offsets
        if deferred:
            out = self._defer(deferred, delivered, out)
        for tp, offsets in delivered.items():
            self._ledger.deliver_many(tp, offsets)
        return out

    def _defer(self, deferred: dict[TopicPartition, list[Any]],
               delivered: dict[TopicPartition, list[int]],
               out: list[Delivery]) -> list[Delivery]:
        """Move records of delayed sends that are not due to the group's retry topic,
        which holds them (a paused partition) until they are; settle them here once the
        retry topic took them. If it did not, each such partition is read again from
        its first deferred record (the deliveries after it are not handed out), and
        the failure is logged: nothing is lost, the next receive tries again.

        The emulation's cost: one more record written and read per group per delayed
        message; the main partitions are never paused, so a delayed message holds
        nothing else back.
        """
        records = [(r.key, r.value if r.value is not None else b"", list(r.headers))
                   for rs in deferred.values() for r in rs]
        try:
            send_records(self._producer(), self._retry, records, self._max,
                         self._send_timeout)
        except MQError as exc:
            log.warning("kafka: could not move %d delayed message(s) of %s to %s (%s); "
                        "reading them again", len(records), self._topic, self._retry, exc)
            cuts = {tp: min(r.offset for r in rs) for tp, rs in deferred.items()}
            for tp, cut in cuts.items():
                delivered[tp] = [o for o in delivered.get(tp, []) if o < cut]
                with mapped("seek back to a delayed message"):
                    self._consumer.seek(tp, cut)
            return [d for d in out if d.handle[0] not in cuts  # type: ignore[index]
                    or d.handle[1] < cuts[d.handle[0]]]  # type: ignore[index]
        for tp, rs in deferred.items():
            merged = sorted([*delivered.get(tp, []), *(r.offset for r in rs)])
            delivered[tp] = []
            self._ledger.deliver_many(tp, merged)
            epoch = self._ledger.epoch(tp)
            for r in rs:
                self._ledger.settle(tp, r.offset, epoch)
        return out

    def _resume_due(self) -> None:
        if not self._paused:
            return
        now = time.time()
        due = [tp for tp, at in self._paused.items() if at <= now]
        for tp in due:
            del self._paused[tp]
        if due:
            with mapped("resume a retry partition"):
                self._consumer.resume(*due)

    def _check_reachable(self) -> None:
        """Raise :class:`Unavailable` once this member has had no connection to any
        broker for ``_UNREACHABLE_AFTER`` seconds (looked at after a poll that returned
        nothing; a connection is back as soon as a broker is)."""
        if broker_connected(self._consumer):
            self._unreachable_since = None
            return
        now = time.monotonic()
        if self._unreachable_since is None:
            self._unreachable_since = now
        elif now - self._unreachable_since >= _UNREACHABLE_AFTER:
            raise Unavailable(
                f"kafka: no broker reachable from the consumer of {self._topic!r} for "
                f"{now - self._unreachable_since:.0f} s")

    def _check_exists(self) -> None:
        if time.monotonic() - self._last_exists < _EXISTS_EVERY:
            return
        self._last_exists = time.monotonic()
        with mapped(f"look up topic {self._topic!r}"):
            topics = self._consumer.topics()
        if self._topic not in topics:
            raise NotFound(f"kafka: topic {self._topic!r} does not exist (deleted?)")

    # -- settle --------------------------------------------------------------------

    def _settle(self, deliveries: Sequence[Delivery]) -> None:
        settle = self._ledger.settle
        for d in deliveries:
            handle: tuple[TopicPartition, int, int] = d.handle  # type: ignore[assignment]
            if not settle(*handle):
                log.debug("kafka: %s settled after its partition was revoked; the new "
                          "owner redelivers it", d.broker_id)
        self._commit(None)

    def _commit(self, tps: list[TopicPartition] | None) -> None:
        offsets = self._ledger.to_commit(tps)
        if not offsets:
            return
        native = {tp: OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()}
        try:
            with mapped(f"commit on {self._topic!r}"):
                self._consumer.commit(native)
        except BackendError as exc:
            if isinstance(exc.__cause__, (ke.CommitFailedError, ke.RebalanceInProgressError,
                                          ke.IllegalGenerationError, ke.UnknownMemberIdError)):
                # A rebalance is under way: the partitions' next owner redelivers what
                # was not committed (at-least-once). Nothing is lost.
                log.info("kafka: commit on %s skipped by a rebalance: %s", self._topic, exc)
                return
            raise
        self._ledger.committed(offsets)

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        self._settle(deliveries)

    def reject(self, deliveries: Sequence[Delivery]) -> None:
        self._settle(deliveries)

    def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        extra: list[tuple[str, str]] = []
        if delay:
            extra.append((RETRY_AT, str(int((time.time() + delay) * 1000))))
        records = []
        for d in deliveries:
            m = d.message
            headers = record_headers(m, [(COUNT, str(d.delivery_count + 1)), *extra])
            records.append((None if m.key is None else m.key.encode(), m.body, headers))
        send_records(self._producer(), self._retry, records, self._max, self._send_timeout)
        self._settle(deliveries)

    def close(self) -> None:
        try:
            self._commit(None)
        finally:
            with mapped(f"close consumer of {self._topic!r}"):
                self._consumer.close(autocommit=False)

    def as_(self, kind: type[T]) -> T | None:
        return self._consumer if isinstance(self._consumer, kind) else None
