"""RabbitMQ, three nodes of Debian's ``rabbitmq-server`` on loopback, clustered, with quorum
queues (three members each).

Node ``n<i>`` is the Erlang node ``mqkit-c<i>@127.0.26.<i>`` (long names): it listens on
its own address ``127.0.26.<i>`` only (see :mod:`._isolated`), AMQP on ``AMQP_PORTS[i]``
and the Erlang distribution on ``DIST_PORTS[i]``, with its data (``mnesia``), log and
configuration under ``$MQKIT_CLUSTERS_HOME/rabbitmq/n<i>`` and its own group id
(``62600+i``, when iptables works). The three share one Erlang cookie (in
``$MQKIT_CLUSTERS_HOME/rabbitmq/home``, also ``rabbitmqctl``'s ``HOME``) and an ``epmd`` of
the cluster's own (port :data:`EPMD_PORT`, listening on 127.0.0.1 and the three node
addresses, so that a node's name is looked up at its own address; the host's epmd on 4369
is not used). They run as ``scripts/brokers``' node does (the scripts of
``/usr/lib/rabbitmq/bin``, no plugin, no management; one writer of the configuration,
:func:`contract_tests.native_brokers.rabbitmq.write_config`), each on one Erlang scheduler
and with a 512 MB memory watermark. ``up`` starts n1, then joins n2 and n3 to it
(``stop_app``, ``join_cluster``, ``start_app``); later starts rejoin by themselves.

Clients reach each node through its :class:`TcpCut` proxy (``PROXY_PORTS``); the URL lists
the three, and the adapter fails over to the next host when a node is gone.
:meth:`RabbitCluster.cut` isolates the node fully: the proxy resets its clients and
iptables drops every packet to and from it (distribution, epmd lookups). The others notice
by the distribution's tick (``net_ticktime`` :data:`NET_TICKTIME` s, so within about 1.25 x
that), see it down, and the quorum queues it led elect a leader among them; the cut node,
in the minority, pauses itself (``cluster_partition_handling = pause_minority``) and
resumes once it sees the majority again after :meth:`RabbitCluster.heal`.
:meth:`RabbitCluster.isolation` checks that both others see it not running.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from contract_tests.native_brokers.rabbitmq import CTL, SERVER, node_env, write_config
from fault_tests import netcut

from ._isolated import NODES, IsolatedCluster
from ._node_process import NodeProcess

__all__ = ["RabbitCluster"]

SUBNET = "127.0.26"
PROXY_PORTS = {"n1": 26671, "n2": 26672, "n3": 26673}
AMQP_PORTS = {"n1": 26771, "n2": 26772, "n3": 26773}
DIST_PORTS = {"n1": 26871, "n2": 26872, "n3": 26873}
EPMD_PORT = 26869
NET_TICKTIME = 6
"""Seconds: a silent peer is seen down after 1..1.25 x this (Erlang's default is 60)."""
QUORUM_SIZE = 3
STOP_GRACE = 60.0
"""How long a node may take to stop on SIGTERM before SIGKILL."""


def _address(node: str) -> str:
    return f"{SUBNET}.{node[1:]}"


def erlang_name(node: str) -> str:
    """``n2`` -> ``mqkit-c2@127.0.26.2``."""
    return f"mqkit-c{node[1:]}@{_address(node)}"


class RabbitCluster(IsolatedCluster):
    """Three RabbitMQ nodes behind one :class:`TcpCut` proxy each (see the module)."""

    backend = "rabbitmq"
    subnet = SUBNET
    gid_base = 62600
    proxy_ports = PROXY_PORTS
    client_ports = AMQP_PORTS
    stop_grace = STOP_GRACE

    def __init__(self) -> None:
        super().__init__()
        self._epmd = NodeProcess("rabbitmq-epmd", self.home / "epmd",
                                 self.home / "epmd" / "epmd.log")

    # -- processes -------------------------------------------------------------------

    def _env(self, node: str) -> dict[str, str]:
        ip = _address(node).replace(".", ",")
        tick = f"-kernel net_ticktime {NET_TICKTIME}"
        return dict(
            node_env(self.home / node, self.home / "home", nodename=erlang_name(node),
                     host=_address(node), port=AMQP_PORTS[node], dist_port=DIST_PORTS[node]),
            RABBITMQ_USE_LONGNAME="true",
            # One scheduler, no busy waiting: three nodes share two cores with the tests;
            # the distribution on the node's address only; a short tick (see the module).
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=(
                "+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none "
                f"-kernel inet_dist_use_interface {{{ip}}} {tick}"),
            RABBITMQ_CTL_ERL_ARGS=tick,
            ERL_EPMD_PORT=str(EPMD_PORT),
        )

    def _prepare(self, node: str) -> None:
        write_config(self.home / node, self.home / "home", writer="fault_tests.clusters.rabbitmq",
                     listener=f"{_address(node)}:{AMQP_PORTS[node]}",
                     settings=["vm_memory_high_watermark.absolute = 512MB",
                               # A node that loses the majority stops serving rather than
                               # diverging.
                               "cluster_partition_handling = pause_minority"])

    def _spawn(self, node: str) -> None:
        self._prepare(node)
        self._start_epmd()
        self._spawn_process(node, [SERVER], env=self._env(node))

    def _start_epmd(self) -> None:
        """The cluster's epmd (not in any node's group: a cut of a node leaves it alone;
        the rules drop lookups at the cut node's address)."""
        if self._epmd.running():
            return
        addresses = ",".join(["127.0.0.1", *(_address(n) for n in NODES)])
        self._epmd.start(["epmd", "-port", str(EPMD_PORT), "-address", addresses])
        deadline = time.monotonic() + 10
        while not _listening(EPMD_PORT, _address(NODES[-1])):
            if time.monotonic() > deadline or not self._epmd.running():
                raise RuntimeError(f"rabbitmq: epmd did not listen on {EPMD_PORT}; see "
                                   f"{self.home / 'epmd' / 'epmd.log'}")
            time.sleep(0.1)

    def ctl(self, node: str, *args: str, timeout: float = 60.0) -> str:
        """``rabbitmqctl -n <node> args`` (stdout); RuntimeError with its output when it
        fails."""
        proc = subprocess.run(
            [CTL, "-q", "-n", erlang_name(node), *args], env=self._env(node),
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
            check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"rabbitmqctl -n {erlang_name(node)} {' '.join(args)}: exit "
                               f"{proc.returncode}: {(proc.stderr or proc.stdout).strip()}")
        return proc.stdout

    def _await_node(self, node: str, timeout: float) -> None:
        """Wait until the node's app runs (``await_startup``), failing early if its
        process exits."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if not self._procs[node].running():
                raise RuntimeError(f"rabbitmq {node} exited while starting; see "
                                   f"{self.home / node / 'node.log'}")
            try:
                self.ctl(node, "await_startup", "--timeout", "10", timeout=20)
                return
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                last = str(exc)
                time.sleep(0.5)
        raise TimeoutError(f"rabbitmq {node}: not started within {timeout:.0f}s ({last})")

    def _members(self, via: str, timeout: float = 60.0) -> set[str]:
        """The running nodes of the cluster, as ``via`` sees them."""
        out = self.ctl(via, "eval", "rabbit_nodes:all_running().", timeout=timeout)
        return {n for n in NODES if erlang_name(n) in out}

    def _await_formed(self, wanted: set[str], timeout: float, via: str | None = None) -> None:
        """Wait until ``via`` (default: the first of ``wanted``) sees ``wanted`` running."""
        deadline = time.monotonic() + timeout
        seen: set[str] = set()
        via = via or min(wanted)
        while time.monotonic() < deadline:
            try:
                seen = self._members(via)
            except (RuntimeError, subprocess.TimeoutExpired):
                seen = set()
            if wanted <= seen:
                return
            time.sleep(0.5)
        raise TimeoutError(f"rabbitmq cluster: running nodes {sorted(seen)}, wanted "
                           f"{sorted(wanted)} within {timeout:.0f}s")

    def _joined(self, node: str) -> bool:
        """Whether ``node``'s data says it is clustered with n1 already."""
        try:
            status = self.ctl(node, "cluster_status", "--formatter", "erlang")
        except RuntimeError:
            return False
        return erlang_name("n1") in status

    def _running(self) -> str:
        for node in self._reachable():
            return node
        raise RuntimeError("rabbitmq cluster: no node is running (and not cut)")

    # -- the protocol ----------------------------------------------------------------

    def install(self) -> None:
        """Debian's rabbitmq-server must be installed (``scripts/brokers`` installs it);
        iptables is installed if missing (as root)."""
        netcut.install()
        if not Path(SERVER).exists():
            raise RuntimeError(f"rabbitmq: {SERVER} is missing; run scripts/brokers install "
                               "rabbitmq (Debian's rabbitmq-server)")

    def up(self, timeout: float = 120.0) -> None:
        """Start n1, then n2 and n3 joined to it; wait until all three run as one."""
        deadline = time.monotonic() + timeout
        self.install()
        self._clear_cuts()
        self._ensure_proxies()
        for node in NODES:
            self._spawn(node)
        for node in NODES:
            self._await_node(node, deadline - time.monotonic())
        for node in NODES[1:]:
            if not self._joined(node):
                self.ctl(node, "stop_app")
                self.ctl(node, "join_cluster", erlang_name("n1"))
                self.ctl(node, "start_app")
        self._await_formed(set(NODES), max(1.0, deadline - time.monotonic()))

    def _stop_others(self) -> None:
        """The cluster's epmd, after the nodes (:meth:`IsolatedCluster.down`)."""
        self._epmd.stop(10.0)

    def url(self) -> str:
        return f"amqp://guest:guest@{self._client_hosts()}/%2F?queue_type=quorum&quorum_size={QUORUM_SIZE}"

    def topic_options(self) -> dict[str, object]:
        """None: a RabbitMQ topic is an exchange; its group queues are quorum queues of
        :data:`QUORUM_SIZE` members through the URL's ``queue_type``/``quorum_size``."""
        return {}

    def leader(self, topic: str) -> str:
        """The node leading the quorum queue of ``topic``'s first group (by name)."""
        out = self.ctl(self._running(), "list_queues", "name", "leader",
                       "--no-table-headers")
        rows = sorted(line.split() for line in out.splitlines() if line.strip())
        for row in rows:
            if len(row) >= 2 and row[0].startswith(f"{topic}."):
                for node in NODES:
                    if row[1] == erlang_name(node):
                        return node
        raise KeyError(f"rabbitmq: no queue of topic {topic!r} has a leader now")

    def kill(self, node: str) -> None:
        self._procs[self._check(node)].kill()

    def start(self, node: str, timeout: float = 120.0) -> None:
        """Start ``node`` again; wait until it runs in the cluster."""
        deadline = time.monotonic() + timeout
        self._spawn(self._check(node))
        self._await_node(node, timeout)
        self._await_formed(set(NODES), max(1.0, deadline - time.monotonic()))

    def _await_rejoined(self, node: str, timeout: float) -> None:
        """After a heal: the node (paused in the minority) resumes and runs in the cluster
        again, as every node sees it."""
        deadline = time.monotonic() + timeout
        self._await_node(node, timeout)
        for via in NODES:
            self._await_formed(set(NODES), max(1.0, deadline - time.monotonic()), via=via)

    def isolation(self, node: str) -> str | None:
        """Both other nodes see ``node`` not running (``rabbit_nodes:all_running()``)."""
        others = [n for n in NODES if n != self._check(node)]
        seen = {}
        for via in others:
            try:
                seen[via] = self._members(via, timeout=10)
            except (RuntimeError, subprocess.TimeoutExpired):
                return None
            if node in seen[via]:
                return None
        return f"{node} down as the others see it: " + "; ".join(
            f"{via} runs with {'+'.join(sorted(members))}" for via, members in seen.items())

    def restart_all(self, timeout: float = 180.0) -> None:
        """SIGTERM every node at once, start them again and wait until all three run
        as one cluster (each waits for its peers' tables as it boots)."""
        deadline = time.monotonic() + timeout
        self._stop_nodes()
        for node in NODES:
            self._spawn(node)
        for node in NODES:
            self._await_node(node, max(1.0, deadline - time.monotonic()))
        self._await_formed(set(NODES), max(1.0, deadline - time.monotonic()))


def _listening(port: int, host: str) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
