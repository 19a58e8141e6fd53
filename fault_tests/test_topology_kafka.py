"""The Kafka cluster topology (three KRaft nodes, replication 3, min ISR 2) under mqkit:
see :class:`fault_tests._topology_checks.TopologyChecks` for the checks. Run with ``-s`` to
see the measured times."""

from __future__ import annotations

from ._topology_checks import TopologyChecks


class TestKafkaTopology(TopologyChecks):
    backend = "kafka"
    up_bound = 120.0
    # A killed leader is fenced 6 s after its last heartbeat, then the producer's
    # metadata refresh finds the new leader: well under kafka's 30 s delivery timeout.
    failover_bound = 30.0
    restart_bound = 180.0
    # The cut isolates the node (see fault_tests.clusters.kafka): fenced after 6 s, its
    # leaderships move to the others; 8 s stays inside one delivery timeout and one
    # consumer session.
    cut_seconds = 8.0
