"""Apache Kafka, three KRaft nodes on loopback (each a combined broker and controller; the
three form the controller quorum), from the jars ``scripts/brokers`` uses for its single
node (:func:`contract_tests.native_brokers.kafka.install`).

Each node ``n<i>`` (node id ``i``) has its own address ``127.0.29.<i>`` (see
:mod:`._isolated`), data and log under ``$MQKIT_CLUSTERS_HOME/kafka/n<i>``, a bounded heap
(:data:`HEAP`), its own group id (``62900+i``, when iptables works), and three listeners,
all bound to its address:

- ``CLIENT`` on ``CLIENT_PORTS[i]``, *advertised* as its proxy's ``127.0.0.1:PROXY_PORTS[i]``:
  clients bootstrap through the proxies (:meth:`KafkaCluster.url`) and the metadata sends
  them back through the proxies;
- ``INTERNAL`` on ``INTERNAL_PORTS[i]`` (replication between brokers, and this module's own
  admin client that finds leaders and readiness);
- ``CONTROLLER`` on ``CONTROLLER_PORTS[i]`` (the KRaft quorum).

:meth:`KafkaCluster.cut` isolates the node fully: its proxy resets the clients, and
iptables drops every packet to and from it (replication, the quorum, heartbeats). The node
no longer reaches the controller, so after ``broker.session.timeout.ms`` (6 s) the others
fence it: it leaves every ISR and its partitions get new leaders among the others
(:meth:`KafkaCluster.isolation` checks exactly that). If it was the active controller, the
other two elect another first. :meth:`KafkaCluster.heal` removes the rules and waits until
the node is registered again and back in every ISR.

Defaults of the brokers: replication factor 3, ``min.insync.replicas=2`` (so one node may
be down and ``acks=all`` sends still succeed), internal topics replicated 3 ways,
``unclean.leader.election.enable=false``, a broker fenced 6 s after its last heartbeat.
The ports (below) are under Linux's ephemeral range and none of ``scripts/brokers``', so
the single-node broker runs beside the cluster.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient

from contract_tests.native_brokers import kafka as single
from fault_tests import netcut

from ._isolated import NODES, IsolatedCluster

__all__ = ["KafkaCluster"]

log = logging.getLogger("fault_tests.clusters.kafka")

SUBNET = "127.0.29"
PROXY_PORTS = {"n1": 29091, "n2": 29092, "n3": 29093}
CLIENT_PORTS = {"n1": 29191, "n2": 29192, "n3": 29193}
INTERNAL_PORTS = {"n1": 29291, "n2": 29292, "n3": 29293}
CONTROLLER_PORTS = {"n1": 29391, "n2": 29392, "n3": 29393}
HEAP = "384m"
"""Each node's maximum Java heap (three nodes: about 1.5 GiB resident in all)."""
STOP_GRACE = 45.0
"""How long a node may take to exit on SIGTERM (controlled shutdown) before SIGKILL."""


def _node_id(node: str) -> int:
    return NODES.index(node) + 1


def _address(node: str) -> str:
    return f"{SUBNET}.{_node_id(node)}"


def _properties(node: str, data: Path) -> str:
    host = _address(node)
    voters = ",".join(f"{_node_id(n)}@{_address(n)}:{CONTROLLER_PORTS[n]}" for n in NODES)
    return (
        "# written by fault_tests.clusters.kafka: one node of a three-node KRaft cluster\n"
        "process.roles=broker,controller\n"
        f"node.id={_node_id(node)}\n"
        f"controller.quorum.voters={voters}\n"
        f"listeners=CLIENT://{host}:{CLIENT_PORTS[node]},"
        f"INTERNAL://{host}:{INTERNAL_PORTS[node]},"
        f"CONTROLLER://{host}:{CONTROLLER_PORTS[node]}\n"
        f"advertised.listeners=CLIENT://127.0.0.1:{PROXY_PORTS[node]},"
        f"INTERNAL://{host}:{INTERNAL_PORTS[node]}\n"
        "listener.security.protocol.map=CLIENT:PLAINTEXT,INTERNAL:PLAINTEXT,"
        "CONTROLLER:PLAINTEXT\n"
        "inter.broker.listener.name=INTERNAL\n"
        "controller.listener.names=CONTROLLER\n"
        f"log.dirs={data}\n"
        "num.partitions=1\n"
        "default.replication.factor=3\n"
        "min.insync.replicas=2\n"
        "unclean.leader.election.enable=false\n"
        "offsets.topic.replication.factor=3\n"
        "offsets.topic.num.partitions=6\n"
        "transaction.state.log.replication.factor=3\n"
        "transaction.state.log.min.isr=2\n"
        "transaction.state.log.num.partitions=6\n"
        "group.initial.rebalance.delay.ms=0\n"
        "auto.create.topics.enable=false\n"
        "delete.topic.enable=true\n"
        # A killed node is fenced (its leaderships move) 6 s after its last heartbeat.
        "broker.session.timeout.ms=6000\n"
        "broker.heartbeat.interval.ms=1000\n"
        "replica.lag.time.max.ms=10000\n"
        # Small: three JVMs share two cores and the tests.
        "num.network.threads=2\n"
        "num.io.threads=2\n"
        "background.threads=2\n"
        "num.replica.fetchers=1\n"
        "num.recovery.threads.per.data.dir=1\n"
        "log.cleaner.threads=1\n"
        "log.cleaner.dedupe.buffer.size=8388608\n"
        "log.retention.hours=24\n"
    )


def _java(base: Path, main: str, *args: str, heap: str) -> list[str]:
    """A JVM on the single-node broker's jars (``single.lib()``), with its own heap and
    log4j configuration (``single.java_cmd`` has the single node's, fixed)."""
    return ["java", f"-Xmx{heap}", "-Xms64m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-XX:ParallelGCThreads=1", "-XX:ConcGCThreads=1", "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{base / 'log4j.properties'}",
            f"-Dkafka.logs.dir={base / 'logs'}",
            "-cp", f"{single.lib()}/*", main, *args]


class KafkaCluster(IsolatedCluster):
    """Three KRaft nodes behind one :class:`TcpCut` proxy each (see the module)."""

    backend = "kafka"
    subnet = SUBNET
    gid_base = 62900
    proxy_ports = PROXY_PORTS
    client_ports = CLIENT_PORTS
    stop_grace = STOP_GRACE

    # -- setup -----------------------------------------------------------------------

    def install(self) -> None:
        single.install()
        netcut.install()

    def _prepare(self, node: str, cluster_id: str) -> None:
        """Write the node's configuration and format its storage once."""
        base = self.home / node
        data = base / "data"
        data.mkdir(parents=True, exist_ok=True)
        (base / "logs").mkdir(exist_ok=True)
        props = base / "server.properties"
        props.write_text(_properties(node, data))
        (base / "log4j.properties").write_text(single.LOG4J)
        if (data / "meta.properties").exists():
            return
        proc = subprocess.run(
            _java(base, *single.format_args(cluster_id, props), heap="256m"),
            stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        with (base / "node.log").open("a") as out:
            out.write(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise RuntimeError(f"kafka {node}: storage format failed (exit {proc.returncode}); "
                               f"see {base / 'node.log'}")

    def _cluster_id(self) -> str:
        return single.cluster_id(self.home / "cluster.id")

    def _spawn(self, node: str) -> None:
        base = self.home / node
        self._prepare(node, self._cluster_id())
        self._spawn_process(node, _java(base, "kafka.Kafka", str(base / "server.properties"),
                                        heap=HEAP), env=None)

    # -- state -----------------------------------------------------------------------

    def _admin(self, nodes: tuple[str, ...] | None = None) -> KafkaAdminClient:
        """An admin client on the INTERNAL listeners of ``nodes`` (default: the running
        ones not cut)."""
        alive = nodes or self._reachable() or NODES
        return KafkaAdminClient(
            bootstrap_servers=[f"{_address(n)}:{INTERNAL_PORTS[n]}" for n in alive],
            client_id="mqkit-fault-topology", request_timeout_ms=5_000,
            bootstrap_timeout_ms=5_000, reconnect_backoff_max_ms=500)

    def _ask(self, what: Callable[[KafkaAdminClient], Any]) -> Any:
        admin = self._admin()
        try:
            return what(admin)
        finally:
            admin.close()

    def _brokers(self) -> set[int]:
        """The ids of the brokers registered (unfenced) with the controller now."""
        cluster = self._ask(lambda a: a.describe_cluster())
        if cluster.get("controller_id", -1) < 0:
            return set()
        return {int(b["broker_id"]) for b in cluster.get("brokers", [])}

    def _unsettled(self, wanted: set[int]) -> str | None:
        """Why the cluster is not fully formed with brokers ``wanted``, or None: each must
        be registered, and every partition must have a leader and, among ``wanted``, every
        replica in sync."""
        try:
            brokers = self._brokers()
            if not wanted <= brokers:
                return f"brokers registered: {sorted(brokers)}"
            described = self._ask(lambda a: a.describe_topics())
        except Exception as exc:  # not up yet: any client error means "wait"
            return f"{type(exc).__name__}: {exc}"
        for topic in described:
            for part in topic.get("partitions", []):
                if part.get("leader_id", -1) < 0:
                    return f"{topic['name']}[{part['partition_index']}] has no leader"
                missing = (set(part.get("replica_nodes", [])) & wanted) - set(
                    part.get("isr_nodes", []))
                if missing:
                    return f"{topic['name']}[{part['partition_index']}] lacks {sorted(missing)}"
        return None

    def _wait(self, wanted: set[int], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        reason: str | None = "not asked yet"
        while time.monotonic() < deadline:
            reason = self._unsettled(wanted)
            if reason is None:
                return
            for node in NODES:
                if _node_id(node) in wanted and not self._procs[node].running():
                    raise RuntimeError(f"kafka {node} exited during {what}; see "
                                       f"{self.home / node / 'node.log'}")
            time.sleep(0.5)
        raise TimeoutError(f"kafka cluster: {what} not done within {timeout:.0f}s ({reason})")

    # -- the protocol ----------------------------------------------------------------

    def up(self, timeout: float = 120.0) -> None:
        """Start the proxies and every node; wait until all three are registered and every
        partition is led and fully in sync."""
        self.install()
        self._clear_cuts()
        self._ensure_proxies()
        for node in NODES:
            self._spawn(node)
        self._wait({_node_id(n) for n in NODES}, timeout, "up")

    def url(self) -> str:
        return "kafka://" + self._client_hosts()

    def topic_options(self) -> dict[str, object]:
        return {"replication": 3, "min_insync_replicas": 2}

    def leader(self, topic: str) -> str:
        """The node that leads partition 0 of ``topic`` (KeyError if it has none now)."""
        described = self._ask(lambda a: a.describe_topics([topic]))
        for entry in described:
            if entry["name"] == topic:
                for part in entry["partitions"]:
                    if part["partition_index"] == 0 and part["leader_id"] >= 1:
                        return NODES[int(part["leader_id"]) - 1]
        raise KeyError(f"kafka: partition 0 of {topic!r} has no leader now")

    def kill(self, node: str) -> None:
        self._procs[self._check(node)].kill()

    def start(self, node: str, timeout: float = 120.0) -> None:
        """Start ``node`` again; wait until it is registered and back in the ISR of every
        partition it replicates."""
        self._spawn(self._check(node))
        self._wait({_node_id(node)}, timeout, f"rejoin of {node}")

    def _await_rejoined(self, node: str, timeout: float) -> None:
        """After a heal: registered (unfenced) again and back in every ISR."""
        self._wait({_node_id(node)}, timeout, f"rejoin of {node} after the heal")

    def isolation(self, node: str) -> str | None:
        """Asked of the other nodes: ``node`` is fenced (not among the registered brokers),
        leads no partition and is in no ISR; None while any of it is not so."""
        others = tuple(n for n in NODES if n != self._check(node))
        me = _node_id(node)
        try:
            admin = self._admin(others)
            try:
                brokers = {int(b["broker_id"]) for b in admin.describe_cluster()["brokers"]}
                described = admin.describe_topics()
            finally:
                admin.close()
        except Exception:  # an answer that does not come means "not yet"
            return None
        if me in brokers:
            return None
        parts = [p for t in described for p in t.get("partitions", [])]
        if any(p.get("leader_id") == me or me in p.get("isr_nodes", []) for p in parts):
            return None
        return (f"{node} fenced: brokers registered per {'+'.join(others)}: "
                f"{sorted(brokers)}; it leads none of {len(parts)} partitions and is in no ISR")

    def restart_all(self, timeout: float = 180.0) -> None:
        """SIGTERM every node at once (SIGKILL after STOP_GRACE), start them again and wait
        as :meth:`up` does."""
        self._stop_nodes()
        for node in NODES:
            self._spawn(node)
        self._wait({_node_id(n) for n in NODES}, timeout, "restart_all")
