"""The RabbitMQ cluster topology (three nodes, quorum queues of three members) under mqkit:
see :class:`fault_tests._topology_checks.TopologyChecks` for the checks. Run with ``-s`` to
see the measured times."""

from __future__ import annotations

from ._topology_checks import TopologyChecks


class TestRabbitTopology(TopologyChecks):
    backend = "rabbitmq"
    up_bound = 120.0
    # A killed node's connections fail at once and the client connects to the next host;
    # a quorum queue elects a new leader within seconds.
    failover_bound = 30.0
    restart_bound = 180.0
    # The cut isolates the node (see fault_tests.clusters.rabbitmq): clients move to the
    # other nodes, which see it down within about 7.5 s and elect new queue leaders.
    cut_seconds = 8.0
