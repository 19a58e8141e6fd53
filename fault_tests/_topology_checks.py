"""Checks shared by ``test_topology_kafka`` and ``test_topology_rabbitmq``: a topology forms,
a replicated topic round-trips with mqkit, sends and receives go on across a killed
leader, a rejoin, a cut and a whole-cluster restart, and no confirmed message is lost.

Each check returns what it measured (seconds) so the tests can print it; the bounds are
the callers'. Messages are numbered bodies ``b"<tag>-<n>"``; a check counts distinct
bodies received against the ones whose send returned (confirmed).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

import mqkit

from .clusters import make
from .clusters.base import Topology

__all__ = ["Tally", "TopologyChecks", "connect", "drain", "fresh_topic", "send_numbered",
           "timed"]


@contextmanager
def timed() -> Iterator[list[float]]:
    """``with timed() as t: ...``; afterwards ``t[0]`` is the block's duration."""
    out: list[float] = []
    start = time.monotonic()
    try:
        yield out
    finally:
        out.append(time.monotonic() - start)


def connect(topology: Topology) -> mqkit.Client:
    """A client on the topology's URL (every node's proxy)."""
    return mqkit.connect(topology.url(), connect_timeout=10.0)


def fresh_topic(client: mqkit.Client, topology: Topology, group: str = "g") -> str:
    """A new replicated topic (the topology's topic options) with group ``group``."""
    topic = f"ft-{uuid.uuid4().hex[:8]}"
    client.admin.create_topic(topic, **topology.topic_options())
    client.admin.create_group(topic, group)  # before any send: it retains them all
    return topic


@dataclass
class Tally:
    """Bodies confirmed by ``send`` and bodies received (with repeats)."""

    confirmed: set[bytes] = field(default_factory=set)
    failed: int = 0
    received: list[bytes] = field(default_factory=list)

    @property
    def lost(self) -> set[bytes]:
        return self.confirmed - set(self.received)

    @property
    def duplicates(self) -> int:
        return len(self.received) - len(set(self.received))


def send_numbered(producer: mqkit.Producer, tally: Tally, tag: str, count: int,
                  deadline: float) -> float:
    """Send ``<tag>-0`` .. ``<tag>-<count-1>`` one by one; a failed send is retried until
    ``deadline`` (monotonic) and counted in ``tally.failed``. Returns the longest time
    one message took from its first try to its confirmation (the outage seen)."""
    worst = 0.0
    for n in range(count):
        body = f"{tag}-{n}".encode()
        first = time.monotonic()
        while True:
            try:
                producer.send(body)
            except mqkit.MQError:
                tally.failed += 1
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
                continue
            tally.confirmed.add(body)
            worst = max(worst, time.monotonic() - first)
            break
    return worst


def drain(consumer: mqkit.Consumer, tally: Tally, want: set[bytes], deadline: float) -> None:
    """Receive and ack until every body of ``want`` was received or ``deadline`` passes;
    receive errors (a node going away) are retried."""
    while not want <= set(tally.received) and time.monotonic() < deadline:
        try:
            batch = consumer.receive(max_messages=100, timeout=1.0)
        except mqkit.MQError:
            time.sleep(0.2)
            continue
        for msg in batch:
            tally.received.append(msg.body)
            try:
                msg.ack()
            except mqkit.MQError:
                pass  # redelivered later: counted as a duplicate, not lost


def _log(backend: str, what: str, seconds: float) -> None:
    print(f"\n[topology {backend}] {what}: {seconds:.1f}s", flush=True)


class TopologyChecks:
    """The checks as a test class body: a test module subclasses it as ``Test...`` and
    sets ``backend`` and the bounds (seconds). One cluster per class (``up`` once, ``down``
    at the end, also when a check fails)."""

    backend: str = ""
    up_bound: float = 120.0
    failover_bound: float = 30.0
    restart_bound: float = 180.0
    cut_seconds: float = 8.0
    """How long the leader stays cut in :meth:`test_cut_and_heal_of_the_leader`."""

    @pytest.fixture(scope="class")
    @classmethod
    def topology(cls) -> Iterator[Topology]:
        topology = make(cls.backend)
        topology.install()
        try:
            with timed() as took:
                topology.up(timeout=cls.up_bound)
            _log(cls.backend, "up()", took[0])
            yield topology
        finally:
            topology.down()

    @pytest.fixture
    def client(self, topology: Topology) -> Iterator[mqkit.Client]:
        with connect(topology) as client:
            yield client

    def test_a_replicated_topic_round_trips(self, topology: Topology,
                                            client: mqkit.Client) -> None:
        topic = fresh_topic(client, topology)
        assert topology.leader(topic) in topology.nodes
        tally = Tally()
        with client.producer(topic) as producer:
            send_numbered(producer, tally, "rt", 100, time.monotonic() + 30)
        with client.consumer(topic, "g") as consumer:
            drain(consumer, tally, tally.confirmed, time.monotonic() + 60)
        assert len(tally.confirmed) == 100 and tally.failed == 0
        assert not tally.lost and tally.duplicates == 0

    def test_killed_leader_fails_over_and_rejoins(self, topology: Topology,
                                                  client: mqkit.Client) -> None:
        topic = fresh_topic(client, topology)
        tally = Tally()
        with client.producer(topic) as producer, client.consumer(topic, "g") as consumer:
            send_numbered(producer, tally, "before", 50, time.monotonic() + 30)
            drain(consumer, tally, set(list(tally.confirmed)[:10]), time.monotonic() + 30)
            victim = topology.leader(topic)
            topology.kill(victim)
            with timed() as took:
                worst = send_numbered(producer, tally, "after", 50,
                                      time.monotonic() + self.failover_bound)
            drain(consumer, tally, tally.confirmed, time.monotonic() + 90)
            _log(self.backend, f"kill({victim}): sends blocked at most", worst)
            _log(self.backend, "kill: 50 sends after the kill took", took[0])
            assert topology.leader(topic) != victim
            with timed() as rejoin:
                topology.start(victim)
            _log(self.backend, f"start({victim}) (rejoin)", rejoin[0])
            send_numbered(producer, tally, "rejoined", 20, time.monotonic() + 30)
            drain(consumer, tally, tally.confirmed, time.monotonic() + 60)
        print(f"[topology {self.backend}] kill: confirmed {len(tally.confirmed)} lost "
              f"{len(tally.lost)} duplicates {tally.duplicates} send errors {tally.failed}")
        assert worst < self.failover_bound
        assert not tally.lost, sorted(tally.lost)[:10]

    def test_cut_and_heal_of_the_leader(self, topology: Topology,
                                        client: mqkit.Client) -> None:
        topic = fresh_topic(client, topology)
        tally = Tally()
        with client.producer(topic) as producer, client.consumer(topic, "g") as consumer:
            send_numbered(producer, tally, "before", 20, time.monotonic() + 30)
            victim = topology.leader(topic)
            topology.cut(victim)
            healer = threading.Timer(self.cut_seconds, topology.heal, args=(victim,))
            healer.start()
            try:
                worst = send_numbered(producer, tally, "cut", 50,
                                      time.monotonic() + self.cut_seconds + self.failover_bound)
                drain(consumer, tally, tally.confirmed, time.monotonic() + 90)
            finally:
                healer.join()
                topology.heal(victim)
        _log(self.backend, f"cut({victim}) for {self.cut_seconds:.0f}s: sends blocked at most",
             worst)
        print(f"[topology {self.backend}] cut: confirmed {len(tally.confirmed)} lost "
              f"{len(tally.lost)} duplicates {tally.duplicates} send errors {tally.failed}")
        assert not tally.lost, sorted(tally.lost)[:10]

    def test_restart_all(self, topology: Topology, client: mqkit.Client) -> None:
        topic = fresh_topic(client, topology)
        tally = Tally()
        with client.producer(topic) as producer, client.consumer(topic, "g") as consumer:
            send_numbered(producer, tally, "before", 50, time.monotonic() + 30)
            with timed() as took:
                topology.restart_all(timeout=self.restart_bound)
            _log(self.backend, "restart_all()", took[0])
            with timed() as resumed:
                send_numbered(producer, tally, "after", 50, time.monotonic() + 60)
            _log(self.backend, "restart_all: 50 sends after it took", resumed[0])
            drain(consumer, tally, tally.confirmed, time.monotonic() + 120)
        print(f"[topology {self.backend}] restart_all: confirmed {len(tally.confirmed)} lost "
              f"{len(tally.lost)} duplicates {tally.duplicates} send errors {tally.failed}")
        assert not tally.lost, sorted(tally.lost)[:10]
