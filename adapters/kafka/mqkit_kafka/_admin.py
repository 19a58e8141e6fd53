"""Admin verbs through kafka-python's KafkaAdminClient.

A group exists when its consumer group has committed offsets on the topic: creating
one commits the topic's end (``latest``) or beginning (``earliest``) offsets, and the
beginning of its retry topic, without joining the group. Lag is end offset minus
committed offset, per partition, over the topic and the retry topic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import kafka.errors as ke
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.structs import OffsetAndMetadata

from mqkit.driver import (
    AlreadyExists,
    BackendError,
    ConfigurationError,
    GroupStats,
    MQError,
    NotFound,
)

from ._errors import mapped
from ._names import Names
from ._net import known_everywhere
from ._options import KafkaOptions, check_min_insync

__all__ = ["Admin"]

T = TypeVar("T")

# How long delete_topic waits for the broker's metadata to drop the topic.
_GONE_WAIT = 10.0
_TOPIC_OPTIONS = ("partitions", "replication", "min_insync_replicas", "configs")


def _count(options: Mapping[str, object], name: str, default: int | None) -> int | None:
    """Topic option ``name`` as an int (None stays None); ConfigurationError naming it
    when it is not a whole number."""
    value = options.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigurationError(f"kafka: topic option {name} must be an integer, "
                                 f"got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ConfigurationError(f"kafka: topic option {name} must be an integer, "
                                 f"got {value!r}") from None


class Admin:
    """Serialised access to one KafkaAdminClient.

    Every call is tried once (the SPI's rule: a driver does not retry). A transient
    failure — no connection yet, the offsets topic being created or loaded right after a
    broker (re)start or a first group, no leader yet — leaves as :class:`Unavailable`
    (kafka-python's ``RetriableError`` or a socket error as ``__cause__``); waiting it
    out is the portable layer's business, like connecting.
    """

    def __init__(self, native: KafkaAdminClient, names: Names, options: KafkaOptions,
                 connect_timeout: float) -> None:
        self.native = native
        self._names = names
        self._options = options
        self._timeout = connect_timeout
        self._lock = threading.Lock()

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        with self._lock, mapped(what):
            return fn()

    # -- topics ----------------------------------------------------------------------

    def _create(self, topic: str, partitions: int, replication: int | None,
                configs: Mapping[str, str]) -> bool:
        spec: dict[str, Any] = {"num_partitions": partitions,
                                "replication_factor": replication or -1}
        if configs:
            spec["configs"] = dict(configs)
        try:
            self._call(f"create topic {topic!r}", lambda: self.native.create_topics(
                {topic: spec}, wait_for_metadata=True))
        except AlreadyExists:
            return False
        return True

    def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        unknown = [k for k in options if k not in _TOPIC_OPTIONS]
        if unknown:
            raise ConfigurationError(
                f"kafka: unknown topic option(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(_TOPIC_OPTIONS)}")
        partitions = _count(options, "partitions", self._options.partitions)
        if partitions is None or partitions < 1:
            raise ConfigurationError("kafka: topic option partitions must be at least 1")
        replication = _count(options, "replication", self._options.replication)
        if replication is not None and replication < 1:
            raise ConfigurationError("kafka: topic option replication must be at least 1")
        min_insync = _count(options, "min_insync_replicas", self._options.min_insync_replicas)
        check_min_insync(min_insync, replication)
        configs = options.get("configs") or {}
        if not isinstance(configs, Mapping):
            raise ConfigurationError("kafka: topic option configs must be a mapping")
        settings = {str(k): str(v) for k, v in configs.items()}
        if min_insync is not None:
            settings["min.insync.replicas"] = str(min_insync)
        if self.topic_exists(topic):
            return
        if self._create(topic, partitions, replication, settings):
            # On a cluster the controller knows the topic before the other brokers do:
            # wait (bounded) until every broker shows it with leaders, so that the next
            # call, on any broker, finds it.
            self.await_everywhere([topic], self._timeout)

    def _topics(self) -> list[str]:
        return list(self._call("list topics", self.native.list_topics))

    def list_topics(self) -> list[str]:
        return sorted(t for t in self._topics() if not self._names.internal(t))

    def topic_exists(self, topic: str) -> bool:
        return self._partitions(topic) is not None

    def await_leaders(self, topics: Sequence[str], timeout: float) -> bool:
        """Whether every partition of ``topics`` has a leader in the broker's metadata,
        asked every 50 ms for up to ``timeout`` seconds.

        A topic just created (or just recreated after a restart) is known to the
        controller before every broker's metadata shows its partitions with a leader. A
        consumer that joins its group in that window is assigned none of them
        (kafka-python's range assignor: "No partition metadata for topic") and fetches
        nothing until a rebalance: seen in CI under load, where a live message then
        waited past its test's 10 s. This is a wait for a state to appear, not a retry
        of a failed call: each ask that fails leaves at once as its mqkit error.
        """
        deadline = time.monotonic() + timeout
        wanted = set(topics)
        while True:
            described = self._call(f"describe topics {sorted(wanted)!r}",
                                   lambda: self.native.describe_topics(list(wanted)))
            led = {entry["name"] for entry in described
                   if entry["error_code"] == 0 and entry["partitions"]
                   and all(part["error_code"] == 0 and part["leader_id"] >= 0
                           for part in entry["partitions"])}
            if led >= wanted:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def await_everywhere(self, topics: Sequence[str], timeout: float) -> bool:
        """Whether every broker of the cluster reports ``topics`` with a leader for each
        partition (:func:`._net.known_everywhere`), asked every 50 ms for up to
        ``timeout`` seconds. A wait for a state to appear, like :meth:`await_leaders`:
        each ask that fails leaves at once as its mqkit error."""
        deadline = time.monotonic() + timeout
        while True:
            if self._call(f"describe topics {list(topics)!r} on every broker",
                          lambda: known_everywhere(self.native, topics)):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def _partitions(self, topic: str) -> list[TopicPartition] | None:
        described = self._call(f"describe topic {topic!r}",
                               lambda: self.native.describe_topics([topic]))
        for entry in described:
            if entry["name"] == topic and entry["error_code"] == 0:
                return [TopicPartition(topic, p["partition_index"])
                        for p in entry["partitions"]]
        return None

    def delete_topic(self, topic: str) -> None:
        if self._partitions(topic) is None:
            return
        group_ids = self._group_ids(topic)
        doomed = [topic] + [self._names.retry_prefix + g for g in group_ids
                            if self._names.retry_prefix + g in self._topics()]
        if group_ids:
            self._delete_groups(group_ids, strict=False)
        try:
            self._call(f"delete topic {topic!r}",
                       lambda: self.native.delete_topics(doomed))
        except NotFound:
            pass
        self._await_gone(topic, _GONE_WAIT)

    def _await_gone(self, topic: str, timeout: float) -> bool:
        """Whether ``topic`` no longer shows in the broker's metadata, asked every 50 ms
        for up to ``timeout`` seconds. The controller accepts a deletion before every
        broker's metadata drops the topic: without this, ``topic_exists`` right after
        ``delete_topic`` could still say yes (seen in CI under load). A wait for a state
        to appear, like :meth:`await_leaders`; past ``timeout``, or when an ask fails
        (the deletion itself was taken), it returns False."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self._partitions(topic) is None:
                    return True
            except MQError:
                return False
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    # -- groups ----------------------------------------------------------------------

    def _offsets(self, group_id: str) -> dict[TopicPartition, int]:
        got = self._call(f"offsets of group {group_id!r}",
                         lambda: self.native.list_group_offsets(group_id))
        return {tp: om.offset for tp, om in got.get(group_id, {}).items() if om.offset >= 0}

    def _group_ids(self, topic: str) -> list[str]:
        """The consumer groups with committed offsets on ``topic`` (mqkit's or not)."""
        groups = self._call("list groups", self.native.list_groups)
        out = []
        for g in groups:
            gid = g["group_id"]
            if self._names.group_of(topic, gid) is None:
                continue
            if any(tp.topic == topic for tp in self._offsets(gid)):
                out.append(gid)
        return out

    def group_exists(self, topic: str, group: str) -> bool:
        gid = self._names.group_id(topic, group)
        return any(tp.topic == topic for tp in self._offsets(gid))

    def create_group(self, topic: str, group: str, start: str) -> None:
        parts = self._partitions(topic)
        if parts is None:
            raise NotFound(f"kafka: topic {topic!r} does not exist")
        gid = self._names.group_id(topic, group)
        retry = self._names.retry_topic(topic, group)
        min_insync = self._options.min_insync_replicas
        if self._create(retry, len(parts), self._options.replication,
                        {} if min_insync is None else {"min.insync.replicas": str(min_insync)}):
            self.await_everywhere([retry], self._timeout)  # as create_topic does
        if any(tp.topic == topic for tp in self._offsets(gid)):
            return
        spec = OffsetSpec.LATEST if start == "latest" else OffsetSpec.EARLIEST
        ends = self._call(f"offsets of {topic!r}", lambda: self.native.list_partition_offsets(
            {tp: spec for tp in parts}))
        offsets = {tp: OffsetAndMetadata(o.offset, "", -1) for tp, o in ends.items()}
        retry_parts = self._partitions(retry) or []
        offsets.update({tp: OffsetAndMetadata(0, "", -1) for tp in retry_parts})
        self._commit(gid, offsets)

    def _commit(self, gid: str, offsets: dict[TopicPartition, Any]) -> None:
        result = self._call(f"commit offsets of group {gid!r}",
                            lambda: self.native.alter_group_offsets(gid, offsets))
        for tp, err in result.items():
            if err is not ke.NoError and err is not None:
                native = err() if isinstance(err, type) else err
                with mapped(f"commit offsets of group {gid!r} on {tp.topic}"):
                    raise native

    def _delete_groups(self, group_ids: list[str], strict: bool = True) -> None:
        result = self._call("delete groups", lambda: self.native.delete_groups(group_ids))
        for gid, status in result.items():
            if not strict and status == "NonEmptyGroupError":
                continue  # live members: the broker drops the deleted topic's offsets
            if status not in ("OK", "GroupIdNotFoundError"):
                raise BackendError(f"kafka: delete group {gid!r}: {status} "
                                         "(a member is still connected?)")

    def delete_group(self, topic: str, group: str) -> None:
        gid = self._names.group_id(topic, group)
        self._delete_groups([gid])
        retry = self._names.retry_topic(topic, group)
        if self._partitions(retry) is not None:
            try:
                self._call(f"delete topic {retry!r}",
                           lambda: self.native.delete_topics([retry]))
            except NotFound:
                pass

    def list_groups(self, topic: str) -> list[str]:
        if self._partitions(topic) is None:
            raise NotFound(f"kafka: topic {topic!r} does not exist")
        out = []
        for gid in self._group_ids(topic):
            name = self._names.group_of(topic, gid)
            if name is not None:
                out.append(name)
        return sorted(out)

    def _lag(self, topic: str, group: str) -> dict[TopicPartition, tuple[int, int]]:
        gid = self._names.group_id(topic, group)
        parts = self._partitions(topic)
        if parts is None:
            raise NotFound(f"kafka: topic {topic!r} does not exist")
        parts += self._partitions(self._names.retry_topic(topic, group)) or []
        ends = self._call(f"end offsets of {topic!r}", lambda: self.native.list_partition_offsets(
            {tp: OffsetSpec.LATEST for tp in parts}))
        committed = self._offsets(gid)
        if not any(tp.topic == topic for tp in committed):
            raise NotFound(f"kafka: group {group!r} ({gid!r}) of topic {topic!r} "
                                 "does not exist")
        return {tp: (committed.get(tp, 0), o.offset) for tp, o in ends.items()}

    def unowned(self, group_id: str, topic: str) -> int:
        """Partitions of ``topic`` no member of ``group_id`` holds, as the broker sees it."""
        parts = self._partitions(topic) or []
        described = self._call(f"describe group {group_id!r}",
                               lambda: self.native.describe_groups([group_id]))
        owned: set[int] = set()
        for member in described.get(group_id, {}).get("members", []):
            assignment = member.get("member_assignment") or {}
            for entry in assignment.get("assigned_partitions", []):
                if entry.get("topic") == topic:
                    owned.update(entry.get("partitions", []))
        return sum(1 for tp in parts if tp.partition not in owned)

    def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The offset after the last record of each of ``tps``."""
        ends = self._call("end offsets", lambda: self.native.list_partition_offsets(
            {tp: OffsetSpec.LATEST for tp in tps}))
        return {tp: o.offset for tp, o in ends.items()}

    def group_stats(self, topic: str, group: str) -> GroupStats:
        lag = self._lag(topic, group)
        depth = sum(max(0, end - done) for done, end in lag.values())
        return GroupStats(topic=topic, group=group, depth=depth, in_flight=None)

    def lag(self, topic: str, group: str) -> dict[tuple[str, int], int]:
        """End offset minus committed offset per (topic, partition), retry topic included."""
        return {(tp.topic, tp.partition): max(0, end - done)
                for tp, (done, end) in self._lag(topic, group).items()}

    def purge(self, topic: str, group: str) -> None:
        gid = self._names.group_id(topic, group)
        lag = self._lag(topic, group)
        self._commit(gid, {tp: OffsetAndMetadata(end, "", -1) for tp, (_, end) in lag.items()})

    def close(self) -> None:
        with mapped("close admin client"):
            self.native.close()
