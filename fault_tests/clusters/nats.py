"""NATS: three ``nats-server`` nodes with JetStream, clustered by routes, on loopback.

Nodes ``n1``..``n3``; node *i* (0-based index) has, from ``$MQKIT_CLUSTERS_NATS_PORT``
(default 22210: below Linux's ephemeral port range, 32768-60999, so no client's
outgoing connection can hold one of them; far from the single-node brokers' 4222/8222):

- client port ``base+1+i`` (real) behind its :class:`TcpCut` proxy ``base+11+i``; the
  client URL lists the three proxies;
- cluster (route) port ``base+21+i``; node *a* dials node *b* through a proxy of its own
  (``base+30+3a+b``), so :meth:`NatsCluster.cut` cuts a node's routes to and from the
  others as well as its clients (a full partition of that node);
- monitor port ``base+41+i``; store ``<home>/nats/n<i>/js``.

Every proxy lives in the process holding the :class:`NatsCluster` (the harness, or the
``scripts/clusters`` holder). ``no_advertise`` keeps the servers from telling clients
their real client ports (nats-py would add them to its pool and bypass the proxies).

Topics are streams with 3 replicas (``replicas=3``, a NATS topic option); a stream's
leader is its Raft leader per JetStream's stream info (``cluster.leader``), asked over
the real client ports so that a cut does not hide it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.request
from pathlib import Path
from typing import Any

from mqkit import ConfigurationError

from ..tcpcut import TcpCut
from . import clusters_home, port_from_env
from ._proc import HOST, Node, port_open, wait_until

__all__ = ["NatsCluster"]

_NODES = ("n1", "n2", "n3")


class NatsCluster:
    """Three JetStream nodes (R3 streams); see the module docstring."""

    backend = "nats"
    nodes = _NODES

    def __init__(self, base_port: int | None = None, home: Path | None = None) -> None:
        self.base = port_from_env(base_port, "MQKIT_CLUSTERS_NATS_PORT", 22210)
        self.home = (home or clusters_home()) / "nats"
        self._nodes = {name: Node(name, self.home, self._argv(i))
                       for i, name in enumerate(_NODES)}
        self._client_proxies = {name: TcpCut(self._proxy_port(i), self._client_port(i))
                                for i, name in enumerate(_NODES)}
        self._route_proxies = {(a, b): TcpCut(self._route_proxy(ia, ib), self._route_port(ib))
                               for ia, a in enumerate(_NODES)
                               for ib, b in enumerate(_NODES) if a != b}
        self._proxies_started = False

    # -- ports and configuration ------------------------------------------------------

    def _client_port(self, i: int) -> int:
        return self.base + 1 + i

    def _proxy_port(self, i: int) -> int:
        return self.base + 11 + i

    def _route_port(self, i: int) -> int:
        return self.base + 21 + i

    def _route_proxy(self, a: int, b: int) -> int:
        return self.base + 30 + 3 * a + b

    def _monitor_port(self, i: int) -> int:
        return self.base + 41 + i

    def _argv(self, i: int) -> list[str]:
        return [shutil.which("nats-server") or "nats-server", "-c", str(self._conf(i))]

    def _conf(self, i: int) -> Path:
        return self.home / f"n{i + 1}.conf"

    def _write_conf(self, i: int) -> None:
        routes = ", ".join(f'"nats-route://{HOST}:{self._route_proxy(i, j)}"'
                           for j in range(3) if j != i)
        store = self.home / f"n{i + 1}" / "js"
        self._conf(i).write_text(
            f'server_name: "n{i + 1}"\n'
            f"listen: {HOST}:{self._client_port(i)}\n"
            f"http: {HOST}:{self._monitor_port(i)}\n"
            # 64 MiB of memory store, 1 GiB of file store: bounded on a shared machine
            f'jetstream {{ store_dir: "{store}", max_memory_store: 64MB, '
            f"max_file_store: 1GB }}\n"
            "cluster {\n"
            '  name: "mqkit-faults"\n'
            f"  listen: {HOST}:{self._route_port(i)}\n"
            "  no_advertise: true\n"
            f"  routes: [{routes}]\n"
            "}\n")

    # -- Topology ---------------------------------------------------------------------

    def install(self) -> None:
        if shutil.which("nats-server") is None:
            raise RuntimeError("nats-server is not installed (Debian: apt-get install "
                               "nats-server); the NATS fault cases need it")

    def url(self) -> str:
        return "nats://" + ",".join(f"{HOST}:{self._proxy_port(i)}" for i in range(3))

    def topic_options(self) -> dict[str, object]:
        return {"replicas": 3}

    def up(self, timeout: float = 120.0) -> None:
        self.install()
        self.home.mkdir(parents=True, exist_ok=True)
        for node in self._nodes.values():
            node.stop()  # a previous run's, if a crash left it
        self._start_proxies()
        for i, node in enumerate(self._nodes.values()):
            self._write_conf(i)
            node.start()
        self._wait_formed(timeout)

    def down(self) -> None:
        for node in self._nodes.values():
            node.stop()
        for proxy in self._all_proxies():
            proxy.close()
        self._proxies_started = False
        shutil.rmtree(self.home, ignore_errors=True)

    def leader(self, topic: str) -> str:
        from mqkit_nats._names import stream_name

        stream = stream_name("MQKIT_", topic)
        leader = asyncio.run(self._stream_leader(stream))
        if leader not in self._nodes:
            raise RuntimeError(f"nats: stream {stream} has no leader now ({leader!r})")
        return leader

    def kill(self, node: str) -> None:
        self._node(node).kill()

    def start(self, node: str, timeout: float = 120.0) -> None:
        n = self._node(node)
        self._write_conf(_NODES.index(node))
        n.start()
        self._wait_formed(timeout)

    def cut(self, node: str) -> None:
        self._node(node)
        for proxy in self._proxies_of(node):
            proxy.cut()

    def heal(self, node: str, timeout: float = 60.0) -> None:
        """Heal the node's proxies and wait until its routes are back (every node routed
        to both others, a meta leader): JetStream places no new R3 stream before."""
        self._node(node)
        for proxy in self._proxies_of(node):
            proxy.heal()
        self._wait_formed(timeout)

    def restart_all(self, timeout: float = 180.0) -> None:
        for node in self._nodes.values():
            node.stop()
        for node in self._nodes.values():
            node.start()
        self._wait_formed(timeout)

    # -- helpers ----------------------------------------------------------------------

    def _node(self, name: str) -> Node:
        try:
            return self._nodes[name]
        except KeyError:
            raise ConfigurationError(f"node: no NATS node {name!r}; nodes: "
                                     f"{', '.join(_NODES)}") from None

    def _all_proxies(self) -> list[TcpCut]:
        return [*self._client_proxies.values(), *self._route_proxies.values()]

    def _proxies_of(self, node: str) -> list[TcpCut]:
        return [self._client_proxies[node],
                *(p for (a, b), p in self._route_proxies.items() if node in (a, b))]

    def _start_proxies(self) -> None:
        if not self._proxies_started:
            for proxy in self._all_proxies():
                proxy.start()
            self._proxies_started = True

    def _monitor(self, i: int, path: str) -> dict[str, Any]:
        url = f"http://{HOST}:{self._monitor_port(i)}/{path}"
        with urllib.request.urlopen(url, timeout=2.0) as reply:
            data: dict[str, Any] = json.loads(reply.read())
            return data

    def _formed(self) -> bool:
        for i, node in enumerate(self._nodes.values()):
            if not node.alive() or not port_open(self._client_port(i)):
                return False
            if self._monitor(i, "routez").get("num_routes", 0) < 2:
                return False
            meta = self._monitor(i, "jsz").get("meta_cluster") or {}
            if not meta.get("leader") or meta.get("cluster_size", 0) < 3:
                return False
        return True

    def _wait_formed(self, timeout: float) -> None:
        try:
            wait_until(self._formed, timeout, "nats: three routed nodes with a JetStream "
                                              "meta leader")
        except TimeoutError as exc:
            logs = "\n".join(f"[{n.name}] {n.tail(8)}" for n in self._nodes.values())
            raise TimeoutError(f"{exc}\n{logs}") from None

    async def _stream_leader(self, stream: str) -> str | None:
        import nats

        servers = [f"nats://{HOST}:{self._client_port(i)}"
                   for i, n in enumerate(self._nodes.values()) if n.alive()]
        nc = await nats.connect(servers=servers, connect_timeout=2, allow_reconnect=False,
                                max_reconnect_attempts=0)
        try:
            info = await nc.jetstream(timeout=3.0).stream_info(stream)
            return info.cluster.leader if info.cluster else None
        finally:
            await nc.close()
