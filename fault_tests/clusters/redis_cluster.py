"""Redis Cluster: three primaries, no replicas, natively on loopback (``redis-server
--cluster-enabled yes``, formed with ``redis-cli --cluster create``), AOF ``everysec``.

Nodes ``c1``..``c3`` on ports ``base``..``base+2`` (``$MQKIT_CLUSTERS_REDIS_CLUSTER_PORT``,
default 23570: below Linux's ephemeral port range, clear of the Sentinel topology's 23370+
and the Sentinel adapter test's 23470+). Each node's cluster bus is set to its port + 10
(``cluster-port``, Redis 7): Redis's default, port + 10000, falls in the ephemeral range,
where a client's outgoing connection can hold it when the node starts (seen in CI with
every backend's tests side by side: no node answered). No proxies: cluster
nodes announce their own address to clients (a ``MOVED`` names it), so a proxy in front
would need ``cluster-announce-*`` per node; :meth:`cut` is not offered.

The URL is ``redis+cluster://127.0.0.1:<c1>,127.0.0.1:<c2>,127.0.0.1:<c3>`` (seeds).
With ``tls=`` (a CA, a certificate for 127.0.0.1 and its key), every node listens with TLS
only (``port 0``, ``tls-port``), the cluster bus too (``tls-cluster``), and the URL is
``rediss+cluster://...?ca_file=<the CA>``.
Used by the Redis adapter's cluster tests (``adapters/redis/tests``); not registered in
``TOPOLOGIES`` (the fault suite's Redis topology is the Sentinel one): with no replicas,
a killed primary takes its slots down until it is back, which is what Redis Cluster
does and no fault case of the suite would learn more from.
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any, Protocol

import redis

from mqkit import ConfigurationError

from . import clusters_home, port_from_env
from ._proc import HOST, Node, wait_until

__all__ = ["RedisCluster"]

_NODES = ("c1", "c2", "c3")


class TLSFiles(Protocol):
    """The server side of a TLS set-up (``tests.pki.Pki`` is one): PEM files."""

    @property
    def ca(self) -> Path: ...
    @property
    def cert(self) -> Path: ...
    @property
    def key(self) -> Path: ...
    @property
    def key_password(self) -> str: ...

_BUS_OFFSET = 10
"""A node's cluster bus port is its port + this (below the ephemeral range)."""


class RedisCluster:
    """Three primaries of a Redis Cluster; see the module docstring."""

    backend = "redis"
    nodes = _NODES

    def __init__(self, base_port: int | None = None, home: Path | None = None, *,
                 tls: TLSFiles | None = None) -> None:
        self.base = port_from_env(base_port, "MQKIT_CLUSTERS_REDIS_CLUSTER_PORT", 23570)
        self.home = (home or clusters_home()) / "redis-cluster"
        self.tls = tls
        server = shutil.which("redis-server") or "redis-server"
        self._nodes = {name: Node(name, self.home, [server, str(self._conf(name))])
                       for name in _NODES}

    def port(self, name: str) -> int:
        return self.base + _NODES.index(self._node(name).name)

    def _conf(self, name: str) -> Path:
        return self.home / f"{name}.conf"

    def _listeners(self, name: str) -> list[str]:
        port, bus = self.port(name), self.port(name) + _BUS_OFFSET
        if self.tls is None:
            return [f"port {port}", f"cluster-port {bus}"]
        t = self.tls
        return ["port 0", f"tls-port {port}", f"cluster-port {bus}", "tls-cluster yes",
                "tls-replication yes", f"tls-cert-file {t.cert}", f"tls-key-file {t.key}",
                f"tls-key-file-pass {t.key_password}", f"tls-ca-cert-file {t.ca}",
                "tls-auth-clients no"]

    def _write_confs(self) -> None:
        for name in _NODES:
            self._conf(name).write_text("\n".join([
                *self._listeners(name),
                f"bind {HOST}", "protected-mode no",
                f'dir "{self.home / name}"', "cluster-enabled yes",
                "cluster-config-file nodes.conf", "cluster-node-timeout 2000",
                "appendonly yes", "appendfsync everysec", 'save ""',
                "maxmemory 256mb", "loglevel notice",
            ]) + "\n")

    # -- Topology ---------------------------------------------------------------------

    def install(self) -> None:
        for tool in ("redis-server", "redis-cli"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is not installed (Debian: apt-get install "
                                   "redis-server redis-tools); the Redis Cluster tests "
                                   "need it")

    def url(self, seeds: int = 3) -> str:
        """The cluster's URL; with TLS, ``rediss+cluster://`` verifying the test CA."""
        hosts = ",".join(f"{HOST}:{self.base + i}" for i in range(seeds))
        if self.tls is None:
            return f"redis+cluster://{hosts}"
        return f"rediss+cluster://{hosts}?ca_file={urllib.parse.quote(str(self.tls.ca))}"

    def _redis(self, port: int, **kwargs: Any) -> redis.Redis:
        """A plain redis-py client of one node (TLS with the test CA when the cluster
        has it)."""
        if self.tls is not None:
            kwargs.update(ssl=True, ssl_ca_certs=str(self.tls.ca))
        return redis.Redis(host=HOST, port=port, **kwargs)

    def topic_options(self) -> dict[str, object]:
        return {}

    def up(self, timeout: float = 60.0) -> None:
        self.install()
        for node in self._nodes.values():
            node.stop()  # a previous run's, if a crash left it
        shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(parents=True)
        self._write_confs()
        for node in self._nodes.values():
            node.start()
        try:
            wait_until(lambda: all(self._answers(n) for n in _NODES), timeout,
                       "redis cluster: every node answering PING")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self._log_tails()}") from None
        tls = [] if self.tls is None else ["--tls", "--cacert", str(self.tls.ca)]
        subprocess.run(["redis-cli", *tls, "--cluster", "create",
                        *[f"{HOST}:{self.port(n)}" for n in _NODES],
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=timeout)
        self._wait_formed(timeout)

    def _log_tails(self) -> str:
        """The last lines of each node's log (why a node did not come up)."""
        return "\n".join(f"[{n.name}] {n.tail(6)}" for n in self._nodes.values())

    def down(self) -> None:
        for node in self._nodes.values():
            node.stop()
        shutil.rmtree(self.home, ignore_errors=True)

    def leader(self, topic: str) -> str:
        """The primary serving ``topic``'s slot (its stream key is ``{topic}``)."""
        with self._redis(self.base, socket_timeout=2.0) as r:
            slot = int(r.execute_command("CLUSTER", "KEYSLOT", f"{{{topic}}}"))
            for start, end, primary, *_ in r.execute_command("CLUSTER", "SLOTS"):
                if int(start) <= slot <= int(end):
                    return _NODES[int(primary[1]) - self.base]
        raise RuntimeError(f"redis cluster: no node serves slot {slot}")

    def kill(self, node: str) -> None:
        self._node(node).kill()

    def start(self, node: str, timeout: float = 60.0) -> None:
        self._node(node).start()  # nodes.conf brings it back into the cluster
        self._wait_formed(timeout)

    def lose_data(self, node: str) -> None:
        """Delete a stopped node's data (its AOF), keeping its cluster configuration
        (``nodes.conf``): started again, it serves its slots empty, as a node without
        persistence does after a restart."""
        if self._node(node).alive():
            raise RuntimeError(f"redis cluster: {node} runs; kill it first")
        shutil.rmtree(self.home / node / "appendonlydir", ignore_errors=True)

    def cut(self, node: str) -> None:
        raise ConfigurationError("node: the Redis Cluster topology has no proxies; "
                                 "a node cannot be cut (kill it instead)")

    heal = cut

    def restart_all(self, timeout: float = 60.0) -> None:
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
            raise ConfigurationError(f"node: no Redis Cluster node {name!r}; nodes: "
                                     f"{', '.join(_NODES)}") from None

    def _answers(self, name: str) -> bool:
        with self._redis(self.port(name), socket_timeout=1.0) as r:
            return bool(r.ping())

    def _formed(self) -> bool:
        """Every node alive and reporting ``cluster_state:ok`` with all 16384 slots."""
        for name in _NODES:
            if not self._nodes[name].alive():
                return False
            with self._redis(self.port(name), socket_timeout=1.0,
                             decode_responses=True) as r:
                info = r.execute_command("CLUSTER", "INFO")
            fields = info if isinstance(info, dict) else dict(
                line.split(":", 1) for line in str(info).splitlines() if ":" in line)
            if str(fields.get("cluster_state")) != "ok" \
                    or int(fields.get("cluster_slots_ok", 0)) != 16384:
                return False
        return True

    def _wait_formed(self, timeout: float) -> None:
        try:
            wait_until(self._formed, timeout, "redis cluster: state ok on every node")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self._log_tails()}") from None
