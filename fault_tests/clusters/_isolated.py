"""What the Kafka and RabbitMQ topologies share: three nodes ``n1``..``n3`` on loopback, each
on an address of its own (``<subnet>.<i>`` in ``127.0.0.0/8``, every listener of the node
bound to it) and run with a group id of its own, each behind a :class:`TcpCut` proxy on
``127.0.0.1`` for clients; and a cut that isolates the node fully.

:meth:`IsolatedCluster.cut` resets the node's client proxy (clients see the reset at once)
and black-holes every packet to and from the node with iptables (:mod:`fault_tests.netcut`):
its peers lose it as behind a pulled cable, notice by their own timeouts, and move on
without it. :meth:`IsolatedCluster.isolation` is the premise check: the evidence that the
other nodes really lost it (the backend's own view), None while they have not.

Without iptables (not root, no CAP_NET_ADMIN) a cut falls back to the client proxy only,
loudly: under CI (``CI=true``) it raises instead; otherwise it logs a warning and
:attr:`IsolatedCluster.cut_scope` says ``inter-node: not cut``, which the fault case
records.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping

from fault_tests import netcut
from fault_tests.tcpcut import TcpCut

from . import clusters_home
from ._node_process import NodeProcess

__all__ = ["NODES", "IsolatedCluster"]

log = logging.getLogger("fault_tests.clusters")

NODES = ("n1", "n2", "n3")
PROXY_HOST = "127.0.0.1"


class IsolatedCluster:
    """The shared part; a subclass sets the class attributes and the backend's hooks."""

    backend: str = ""
    nodes: tuple[str, ...] = NODES
    subnet: str = ""
    """Node ``n<i>`` listens on ``<subnet>.<i>`` only (e.g. ``127.0.29`` -> 127.0.29.2)."""
    gid_base: int = 0
    """Node ``n<i>``'s processes run with group id ``gid_base + i`` (when iptables works)."""
    proxy_ports: Mapping[str, int] = {}
    """The client proxy of each node, on 127.0.0.1."""
    client_ports: Mapping[str, int] = {}
    """The node's own client port (on its address), the proxy's target."""
    stop_grace: float = 60.0
    """How long a node may take to exit on SIGTERM before SIGKILL."""

    def __init__(self) -> None:
        self.home = clusters_home() / self.backend
        self._procs = {n: NodeProcess(f"{self.backend}-{n}", self.home / n,
                                      self.home / n / "node.log") for n in NODES}
        self._proxies: dict[str, TcpCut] = {}
        self._netcut = netcut.NetCut(self.backend)
        self._cut: set[str] = set()
        self.cut_scope = ""
        """What the last :meth:`cut` cut: ``full isolation (...)`` or ``clients only
        (inter-node: not cut: <why>)``."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.home}>"

    # -- per node ----------------------------------------------------------------------

    def address(self, node: str) -> str:
        """``n2`` -> ``<subnet>.2``: the only address the node listens on."""
        return f"{self.subnet}.{self._check(node)[1:]}"

    def gid(self, node: str) -> int:
        return self.gid_base + int(self._check(node)[1:])

    def _spawn_process(self, node: str, cmd: list[str], env: dict[str, str] | None) -> None:
        """Start the node's process group, with its own group id when cuts use iptables."""
        group = self.gid(node) if netcut.unavailable() is None else None
        self._procs[node].start(cmd, env=env, group=group)

    def _check(self, node: str) -> str:
        if node not in NODES:
            from mqkit import ConfigurationError

            raise ConfigurationError(f"node: {self.backend} has {', '.join(NODES)}, "
                                     f"not {node!r}")
        return node

    def _reachable(self) -> tuple[str, ...]:
        """The nodes that run and are not cut (for the topology's own admin calls)."""
        return tuple(n for n in NODES if n not in self._cut and self._procs[n].running())

    def _ensure_proxies(self) -> None:
        for node in NODES:
            if node not in self._proxies:
                self._proxies[node] = TcpCut(self.proxy_ports[node], self.client_ports[node],
                                             self.address(node)).start()

    def _client_hosts(self) -> str:
        """``127.0.0.1:<proxy n1>,...``: every node's proxy, for the URL."""
        return ",".join(f"{PROXY_HOST}:{self.proxy_ports[n]}" for n in NODES)

    # -- lifecycle ---------------------------------------------------------------------

    def _stop_nodes(self) -> None:
        """SIGTERM every node at once, SIGKILL what is left after :attr:`stop_grace`."""
        for proc in self._procs.values():
            proc.terminate()
        for proc in self._procs.values():
            proc.reap(self.stop_grace)

    def _stop_others(self) -> None:
        """Stop the cluster's processes other than the nodes (for :meth:`down`)."""

    def _clear_cuts(self) -> None:
        """Remove the iptables rules of this backend (a crashed run's too)."""
        self._cut.clear()
        if netcut.unavailable() is None:
            removed = self._netcut.clear()
            if removed:
                log.warning("%s: removed %d leftover iptables rule(s)", self.backend, removed)

    def down(self) -> None:
        """Stop every node, close the proxies, remove the cut rules and the data."""
        self._stop_nodes()
        self._stop_others()
        for proxy in self._proxies.values():
            proxy.close()
        self._proxies.clear()
        self._clear_cuts()
        shutil.rmtree(self.home, ignore_errors=True)

    # -- the cut -----------------------------------------------------------------------

    def cut(self, node: str) -> None:
        """Cut ``node`` off: every packet to and from it dropped (iptables) and its client
        proxy reset. Without iptables: clients only, loudly (see the module)."""
        self._check(node)
        self._ensure_proxies()
        why = netcut.unavailable()
        if why is None:
            self._netcut.cut(node, self.address(node), self.gid(node))
            self.cut_scope = (f"full isolation (iptables drops every packet to and from "
                              f"{self.address(node)} and gid {self.gid(node)})")
        elif os.environ.get("CI", "").lower() == "true":
            raise RuntimeError(f"{self.backend}: cannot cut {node} off its peers: {why}; "
                               "the fault suite needs root with CAP_NET_ADMIN in CI")
        else:
            self.cut_scope = f"clients only (inter-node: not cut: {why})"
            log.warning("%s: cut of %s is of CLIENTS ONLY, inter-node traffic goes on: %s",
                        self.backend, node, why)
        self._cut.add(node)
        self._proxies[node].cut()

    def heal(self, node: str, timeout: float = 90.0) -> None:
        """Undo :meth:`cut` and wait until the node is back in the cluster."""
        self._check(node)
        self._ensure_proxies()
        if netcut.unavailable() is None:
            self._netcut.heal(node)
        self._proxies[node].heal()
        self._cut.discard(node)
        self._await_rejoined(node, timeout)

    def _await_rejoined(self, node: str, timeout: float) -> None:
        raise NotImplementedError

    def isolation(self, node: str) -> str | None:
        """The evidence that the other nodes lost ``node`` (after :meth:`cut`), or None
        while they have not (yet)."""
        raise NotImplementedError
