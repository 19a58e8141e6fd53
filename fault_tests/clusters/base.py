"""What every cluster topology of the fault suite offers (issue #18).

A topology runs N broker nodes natively on loopback (each node its own ports, data
directory and process group under ``$MQKIT_CLUSTERS_HOME/<backend>/<node>``, default
``~/.cache/mqkit/clusters``), never on the single-node ports of ``scripts/brokers``, so both
can run at once. Clients reach each node through a :class:`TcpCut` proxy of its own, so
that a "network cut" of one node is real at the TCP level for clients (open connections
reset, new ones refused). The cut isolates the node from its peers too: NATS and Redis
route inter-node traffic through proxies as well; Kafka and RabbitMQ put each node on a
loopback address of its own and drop its packets with iptables (``fault_tests.netcut``,
root; :mod:`._isolated`), and offer ``isolation(node)``, the premise check the fault case
polls during a cut (the other nodes' evidence that they lost the node).

The fault harness (``fault_tests.workload``) only talks to this protocol; a backend adds
itself by implementing it in ``fault_tests/clusters/<backend>.py`` and registering in
``fault_tests.clusters.TOPOLOGIES``.
"""

from __future__ import annotations

from typing import Protocol


class Topology(Protocol):
    """One clustered backend. Every method is blocking and idempotent where it can be."""

    backend: str
    """``kafka``, ``rabbitmq``, ``nats``, ``redis`` or ``sqs`` (one moto server: see
    :mod:`.sqs` for what each fault means there)."""

    nodes: tuple[str, ...]
    """Node names (``n1``, ``n2``, ``n3``; for Redis ``primary``, ``replica``, ...)."""

    def install(self) -> None:
        """Fetch what is missing (apt packages, jars); a no-op when present."""

    def up(self, timeout: float = 120.0) -> None:
        """Start every node and wait until the cluster is formed and serves clients."""

    def down(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL) and remove the cluster's data."""

    def url(self) -> str:
        """The mqkit URL a client uses: every node's proxy address (seeds/bootstrap), or
        the Sentinel URL for Redis."""

    def topic_options(self) -> dict[str, object]:
        """Options given to ``admin.create_topic`` for replicated topics (replication
        factor 3 / quorum queue / replicas 3)."""

    def leader(self, topic: str) -> str:
        """The node that leads ``topic`` now (partition leader, queue leader, stream
        leader, Redis primary)."""

    def kill(self, node: str) -> None:
        """SIGKILL the node's process group (no clean shutdown)."""

    def start(self, node: str, timeout: float = 120.0) -> None:
        """Start one stopped/killed node again and wait until it rejoined the cluster."""

    def cut(self, node: str) -> None:
        """Cut the node off the network: its proxy resets open connections and refuses new
        ones, and inter-node traffic to and from it stops (proxies between the nodes, or
        iptables; stated per backend). Returns at once: the peers notice by their own
        timeouts."""

    def heal(self, node: str) -> None:
        """Undo :meth:`cut` (a topology may wait until the node rejoined)."""

    def restart_all(self, timeout: float = 180.0) -> None:
        """Stop every node (SIGTERM), then start them all and wait until formed."""
