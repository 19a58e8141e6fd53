"""RabbitMQ, three nodes of Debian's ``rabbitmq-server`` on loopback, clustered, with quorum
queues (three members each).

Node ``n<i>`` is the Erlang node ``mqkit-c<i>@localhost`` with its own AMQP port
(``AMQP_PORTS``), distribution port (``DIST_PORTS``), data (``mnesia``), log and
configuration under ``$MQKIT_CLUSTERS_HOME/rabbitmq/n<i>``; the three share one Erlang
cookie (in ``$MQKIT_CLUSTERS_HOME/rabbitmq/home``, also ``rabbitmqctl``'s ``HOME``) and
the host's ``epmd``. They run as ``scripts/brokers``' node does (the scripts of
``/usr/lib/rabbitmq/bin``, no plugin, no management), each on one Erlang scheduler and
with a 512 MB memory watermark. ``up`` starts n1, then joins n2 and n3 to it
(``stop_app``, ``join_cluster``, ``start_app``); later starts rejoin by themselves.

Clients reach each node through its :class:`TcpCut` proxy (``PROXY_PORTS``); the URL lists
the three, and the adapter fails over to the next host when a node is gone. Inter-node
traffic (Erlang distribution) is direct, not proxied: :meth:`RabbitCluster.cut` cuts
*clients* off the node; the node stays in the cluster and may keep leading quorum queues,
which clients connected to the other nodes still reach through them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from contract_tests.native_brokers.rabbitmq import CTL, SERVER
from fault_tests.tcpcut import TcpCut

from . import clusters_home
from ._node_process import NodeProcess

__all__ = ["RabbitCluster"]

HOST = "127.0.0.1"
NODES = ("n1", "n2", "n3")
PROXY_PORTS = {"n1": 26671, "n2": 26672, "n3": 26673}
AMQP_PORTS = {"n1": 26771, "n2": 26772, "n3": 26773}
DIST_PORTS = {"n1": 26871, "n2": 26872, "n3": 26873}
QUORUM_SIZE = 3
STOP_GRACE = 60.0
"""How long a node may take to stop on SIGTERM before SIGKILL."""


def erlang_name(node: str) -> str:
    """``n2`` -> ``mqkit-c2@localhost``."""
    return f"mqkit-c{node[1:]}@localhost"


class RabbitCluster:
    """Three RabbitMQ nodes behind one :class:`TcpCut` proxy each (see the module)."""

    backend = "rabbitmq"
    nodes: tuple[str, ...] = NODES

    def __init__(self) -> None:
        self.home = clusters_home() / "rabbitmq"
        self._procs = {n: NodeProcess(f"rabbitmq-{n}", self.home / n,
                                      self.home / n / "node.log") for n in NODES}
        self._proxies: dict[str, TcpCut] = {}

    def __repr__(self) -> str:
        return f"<RabbitCluster {self.home}>"

    # -- processes -------------------------------------------------------------------

    def _env(self, node: str) -> dict[str, str]:
        base = self.home / node
        return dict(
            os.environ,
            HOME=str(self.home / "home"),
            RABBITMQ_NODENAME=erlang_name(node),
            RABBITMQ_NODE_IP_ADDRESS=HOST,
            RABBITMQ_NODE_PORT=str(AMQP_PORTS[node]),
            RABBITMQ_DIST_PORT=str(DIST_PORTS[node]),
            RABBITMQ_MNESIA_BASE=str(base / "mnesia"),
            RABBITMQ_LOG_BASE=str(base / "log"),
            RABBITMQ_PID_FILE=str(base / "rabbitmq.pid"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(base / "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=str(base / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(base / "advanced.config"),
            RABBITMQ_CONF_ENV_FILE=str(base / "rabbitmq-env.conf"),
            RABBITMQ_LOGS="-",
            # One scheduler, no busy waiting: three nodes share two cores with the tests;
            # the distribution port on loopback only.
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=(
                "+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none "
                "-kernel inet_dist_use_interface {127,0,0,1}"),
            ERL_EPMD_ADDRESS=HOST,
        )

    def _prepare(self, node: str) -> None:
        base = self.home / node
        for sub in ("mnesia", "log"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        home = self.home / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(uuid.uuid4().hex.upper())
            cookie.chmod(0o400)
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq.conf").write_text(
            "# written by fault_tests.clusters.rabbitmq\n"
            f"listeners.tcp.default = {HOST}:{AMQP_PORTS[node]}\n"
            "loopback_users.guest = true\n"
            "log.console = true\n"
            "log.console.level = info\n"
            "log.file = false\n"
            "disk_free_limit.absolute = 10MB\n"
            "vm_memory_high_watermark.absolute = 512MB\n"
            # A node that loses the majority stops serving rather than diverging.
            "cluster_partition_handling = pause_minority\n"
        )
        (base / "advanced.config").write_text("[].\n")
        (base / "rabbitmq-env.conf").write_text("# empty: fault_tests sets the environment\n")

    def _spawn(self, node: str) -> None:
        self._prepare(node)
        self._procs[node].start([SERVER], env=self._env(node))

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

    def _members(self, via: str) -> set[str]:
        """The running nodes of the cluster, as ``via`` sees them."""
        out = self.ctl(via, "eval", "rabbit_nodes:all_running().")
        return {n for n in NODES if erlang_name(n) in out}

    def _await_formed(self, wanted: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        seen: set[str] = set()
        while time.monotonic() < deadline:
            via = next(iter(sorted(wanted)))
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

    def _ensure_proxies(self) -> None:
        for node in NODES:
            if node not in self._proxies:
                self._proxies[node] = TcpCut(PROXY_PORTS[node], AMQP_PORTS[node]).start()

    def _running(self) -> str:
        for node in NODES:
            if self._procs[node].running():
                return node
        raise RuntimeError("rabbitmq cluster: no node is running")

    # -- the protocol ----------------------------------------------------------------

    def install(self) -> None:
        """Debian's rabbitmq-server must be installed (``scripts/brokers`` installs it)."""
        if not Path(SERVER).exists():
            raise RuntimeError(f"rabbitmq: {SERVER} is missing; run scripts/brokers install "
                               "rabbitmq (Debian's rabbitmq-server)")

    def up(self, timeout: float = 120.0) -> None:
        """Start n1, then n2 and n3 joined to it; wait until all three run as one."""
        deadline = time.monotonic() + timeout
        self.install()
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

    def down(self) -> None:
        """Stop every node, close the proxies, remove the cluster's data."""
        for proc in self._procs.values():
            proc.terminate()
        for proc in self._procs.values():
            proc.reap(STOP_GRACE)
        for proxy in self._proxies.values():
            proxy.close()
        self._proxies.clear()
        shutil.rmtree(self.home, ignore_errors=True)

    def url(self) -> str:
        hosts = ",".join(f"{HOST}:{PROXY_PORTS[n]}" for n in NODES)
        return f"amqp://guest:guest@{hosts}/%2F?queue_type=quorum&quorum_size={QUORUM_SIZE}"

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

    def cut(self, node: str) -> None:
        """Cut clients off ``node`` (its proxy); the Erlang distribution goes on."""
        self._ensure_proxies()
        self._proxies[self._check(node)].cut()

    def heal(self, node: str) -> None:
        self._ensure_proxies()
        self._proxies[self._check(node)].heal()

    def restart_all(self, timeout: float = 180.0) -> None:
        """SIGTERM every node at once, start them again and wait until all three run
        as one cluster (each waits for its peers' tables as it boots)."""
        deadline = time.monotonic() + timeout
        for proc in self._procs.values():
            proc.terminate()
        for proc in self._procs.values():
            proc.reap(STOP_GRACE)
        for node in NODES:
            self._spawn(node)
        for node in NODES:
            self._await_node(node, max(1.0, deadline - time.monotonic()))
        self._await_formed(set(NODES), max(1.0, deadline - time.monotonic()))

    def _check(self, node: str) -> str:
        if node not in NODES:
            from mqkit import ConfigurationError

            raise ConfigurationError(f"node: rabbitmq has {', '.join(NODES)}, not {node!r}")
        return node
