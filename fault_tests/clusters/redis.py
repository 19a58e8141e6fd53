"""Redis: a primary, one replica and three Sentinels, natively on loopback (``redis-server``
and ``redis-server --sentinel``), AOF ``everysec``.

Nodes: ``r1`` and ``r2`` (data nodes; ``r1`` starts as the primary, ``r2`` its replica; after
a failover the roles swap, so the names are not roles) and ``s1``..``s3`` (Sentinels). From
``$MQKIT_CLUSTERS_REDIS_PORT`` (default 23370: below Linux's ephemeral port range, so no
outgoing connection can hold one of them; far from the single-node 6379):

- data node *i*: real port ``base+1+i``, behind its :class:`TcpCut` proxy ``base+11+i``.
  **Every** connection to a data node goes through its proxy: clients (Sentinel hands out
  the announced address), replication (``replicaof`` the proxy; ``replica-announce-port``
  the proxy) and the Sentinels' monitoring. :meth:`RedisSentinel.cut` of a data node
  therefore cuts it off everything: Sentinel sees it down and fails over, as in a real
  partition of the primary;
- Sentinel *i*: port ``base+21+i`` (not proxied: the client's Sentinel list is the URL);
  ``down-after-milliseconds`` 1000, ``failover-timeout`` 5000, quorum 2.

The URL is ``redis+sentinel://127.0.0.1:<s1>,...:<s3>/0?service=mqkit``. Replication is
asynchronous: a write the primary acknowledged and had not yet sent to the replica when
it was SIGKILLed or cut is lost at the failover (Redis's documented trade-off); the fault
cases measure whether that happens.

The leader is the primary per the Sentinels (``SENTINEL get-master-addr-by-name``, the
majority answer), mapped from its announced proxy port to its node name.
"""

from __future__ import annotations

import collections
import shutil
from pathlib import Path

import redis

from mqkit import ConfigurationError

from ..tcpcut import TcpCut
from . import clusters_home, port_from_env
from ._proc import HOST, Node, wait_until

__all__ = ["RedisSentinel"]

SERVICE = "mqkit"
_DATA = ("r1", "r2")
_SENTINELS = ("s1", "s2", "s3")


class RedisSentinel:
    """A primary, a replica and three Sentinels; see the module docstring."""

    backend = "redis"
    nodes = (*_DATA, *_SENTINELS)

    def __init__(self, base_port: int | None = None, home: Path | None = None) -> None:
        self.base = port_from_env(base_port, "MQKIT_CLUSTERS_REDIS_PORT", 23370)
        self.home = (home or clusters_home()) / "redis"
        server = shutil.which("redis-server") or "redis-server"
        self._nodes: dict[str, Node] = {}
        for name in _DATA:
            self._nodes[name] = Node(name, self.home, [server, str(self._conf(name))])
        for name in _SENTINELS:
            self._nodes[name] = Node(name, self.home, [server, str(self._conf(name)),
                                                       "--sentinel"])
        self._proxies = {name: TcpCut(self._proxy_port(i), self._data_port(i))
                         for i, name in enumerate(_DATA)}
        self._proxies_started = False

    # -- ports and configuration ------------------------------------------------------

    def _data_port(self, i: int) -> int:
        return self.base + 1 + i

    def _proxy_port(self, i: int) -> int:
        return self.base + 11 + i

    def _sentinel_port(self, i: int) -> int:
        return self.base + 21 + i

    def _conf(self, name: str) -> Path:
        return self.home / f"{name}.conf"

    def _write_confs(self) -> None:
        for i, name in enumerate(_DATA):
            lines = [
                f"port {self._data_port(i)}", f"bind {HOST}", "protected-mode no",
                f'dir "{self.home / name}"', "appendonly yes", "appendfsync everysec",
                'save ""', f"replica-announce-ip {HOST}",
                f"replica-announce-port {self._proxy_port(i)}",
                "maxmemory 256mb", "loglevel notice",
            ]
            if i > 0:
                lines.append(f"replicaof {HOST} {self._proxy_port(0)}")
            self._conf(name).write_text("\n".join(lines) + "\n")
        for i, name in enumerate(_SENTINELS):
            self._conf(name).write_text("\n".join([
                f"port {self._sentinel_port(i)}", f"bind {HOST}", "protected-mode no",
                f'dir "{self.home / name}"',
                f"sentinel monitor {SERVICE} {HOST} {self._proxy_port(0)} 2",
                f"sentinel down-after-milliseconds {SERVICE} 1000",
                f"sentinel failover-timeout {SERVICE} 5000",
                f"sentinel parallel-syncs {SERVICE} 1",
            ]) + "\n")

    # -- Topology ---------------------------------------------------------------------

    def install(self) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (Debian: apt-get install "
                               "redis-server; Sentinel is redis-server --sentinel); the "
                               "Redis fault cases need it")

    def url(self) -> str:
        sentinels = ",".join(f"{HOST}:{self._sentinel_port(i)}" for i in range(3))
        return f"redis+sentinel://{sentinels}/0?service={SERVICE}"

    def topic_options(self) -> dict[str, object]:
        return {}  # a stream is replicated with the whole data set

    def up(self, timeout: float = 120.0) -> None:
        self.install()
        for node in self._nodes.values():
            node.stop()  # a previous run's, if a crash left it
        shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(parents=True)
        self._write_confs()
        self._start_proxies()
        for node in self._nodes.values():
            node.start()
        self._wait_formed(timeout)

    def down(self) -> None:
        for node in self._nodes.values():
            node.stop()
        for proxy in self._proxies.values():
            proxy.close()
        self._proxies_started = False
        shutil.rmtree(self.home, ignore_errors=True)

    def leader(self, topic: str) -> str:
        """The primary per the Sentinels' majority (the same for every topic)."""
        answers = []
        for i in range(3):
            try:
                with redis.Redis(host=HOST, port=self._sentinel_port(i),
                                 socket_timeout=1.0, socket_connect_timeout=1.0) as s:
                    addr = s.execute_command("SENTINEL", "get-master-addr-by-name", SERVICE)
                answers.append(int(addr[1]))
            except (redis.RedisError, TypeError, IndexError):
                continue
        if not answers:
            raise RuntimeError("redis: no Sentinel answers with a primary")
        port, _ = collections.Counter(answers).most_common(1)[0]
        for i, name in enumerate(_DATA):
            if port in (self._proxy_port(i), self._data_port(i)):
                return name
        raise RuntimeError(f"redis: the Sentinels name an unknown primary port {port}")

    def kill(self, node: str) -> None:
        self._node(node).kill()

    def start(self, node: str, timeout: float = 120.0) -> None:
        # the configuration stays as the node (or Sentinel) rewrote it: a former primary
        # comes back as it was and Sentinel turns it into a replica of the new one
        self._node(node).start()
        self._wait_formed(timeout)

    def cut(self, node: str) -> None:
        self._cuttable(node).cut()

    def heal(self, node: str) -> None:
        self._cuttable(node).heal()

    def restart_all(self, timeout: float = 180.0) -> None:
        for node in self._nodes.values():
            node.stop()
        for name in (*_DATA, *_SENTINELS):
            self._nodes[name].start()
        self._wait_formed(timeout)

    # -- helpers ----------------------------------------------------------------------

    def _node(self, name: str) -> Node:
        try:
            return self._nodes[name]
        except KeyError:
            raise ConfigurationError(f"node: no Redis node {name!r}; nodes: "
                                     f"{', '.join(self.nodes)}") from None

    def _cuttable(self, name: str) -> TcpCut:
        self._node(name)
        try:
            return self._proxies[name]
        except KeyError:
            raise ConfigurationError(f"node: only the data nodes ({', '.join(_DATA)}) are "
                                     f"behind proxies; Sentinel {name!r} cannot be cut") from None

    def _start_proxies(self) -> None:
        if not self._proxies_started:
            for proxy in self._proxies.values():
                proxy.start()
            self._proxies_started = True

    def _formed(self) -> bool:
        """Every process up, the Sentinels agree on a primary that has its replica online,
        and each Sentinel knows the two others and the replica."""
        if not all(node.alive() for node in self._nodes.values()):
            return False
        primary = self.leader("")
        i = _DATA.index(primary)
        with redis.Redis(host=HOST, port=self._data_port(i), socket_timeout=1.0) as r:
            info = r.info("replication")
        if info.get("role") != "master" or info.get("connected_slaves", 0) < 1:
            return False
        if info.get("slave0", {}).get("state") != "online":
            return False
        for s in range(3):
            with redis.Redis(host=HOST, port=self._sentinel_port(s), socket_timeout=1.0,
                             decode_responses=True) as sentinel:
                master = sentinel.execute_command("SENTINEL", "master", SERVICE)
            fields = dict(zip(master[::2], master[1::2], strict=True)) if isinstance(master, list) \
                else dict(master)
            if int(fields.get("num-other-sentinels", 0)) < 2 \
                    or int(fields.get("num-slaves", 0)) < 1 \
                    or "down" in str(fields.get("flags", "")):
                return False
        return True

    def _wait_formed(self, timeout: float) -> None:
        try:
            wait_until(self._formed, timeout, "redis: a primary with its replica online and "
                                              "three Sentinels agreeing")
        except TimeoutError as exc:
            logs = "\n".join(f"[{n.name}] {n.tail(6)}" for n in self._nodes.values())
            raise TimeoutError(f"{exc}\n{logs}") from None
