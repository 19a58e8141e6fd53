"""SQS (with SNS): one moto server behind a :class:`TcpCut` proxy, on loopback.

SQS is a managed service: there is no cluster of ours and no leader, so the topology is
one "node", ``moto`` (``python -m moto.server``), standing for the AWS endpoint. From
``$MQKIT_CLUSTERS_SQS_PORT`` (default 25000, below Linux's ephemeral port range, far from
the single-node brokers' moto on 5000/5001, which this module never touches): moto
listens on ``base+1``, its proxy on ``base+11``; the URL is the proxy's
(``sqs://testing:testing@127.0.0.1:<proxy>?region=us-east-1&tls=false``, mode ``sns``: a
topic is an SNS topic, a group an SQS queue subscribed to it).

What each fault means here:

- ``node_cut`` (:meth:`cut`): the endpoint unreachable (every open connection reset, new
  ones refused) for a while: what a client sees of a network partition from AWS. Applies.
- ``consumer_killed``: SIGKILL of a consumer process; its in-flight messages come back
  when their visibility timeout (the consumer's lease) runs out. Applies (the harness's
  business, not the topology's).
- ``leader_killed`` and ``cluster_restart``: :meth:`kill`/:meth:`start` and
  :meth:`restart_all` do kill and restart moto, but moto keeps every queue and message in
  memory and has no persistence option (5.x: its recorder logs requests for a replay, it
  does not save state), so a restart loses them all. A managed service's restart is not
  ours to test: the harness lists these two faults as not applicable to ``sqs``
  (``fault_tests.clusters.NOT_APPLICABLE``) and checks that premise instead.

:meth:`leader` is always ``moto``: the one endpoint.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from mqkit import ConfigurationError

from ..tcpcut import TcpCut
from . import clusters_home, port_from_env
from ._proc import HOST, Node, port_open, wait_until

__all__ = ["SqsMoto"]

NODE = "moto"


class SqsMoto:
    """One moto server (SQS and SNS) behind a cuttable proxy; see the module docstring."""

    backend = "sqs"
    nodes = (NODE,)

    def __init__(self, base_port: int | None = None, home: Path | None = None) -> None:
        self.base = port_from_env(base_port, "MQKIT_CLUSTERS_SQS_PORT", 25000)
        self.home = (home or clusters_home()) / "sqs"
        self.moto_port = self.base + 1
        self.proxy_port = self.base + 11
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}
        self._node = Node(NODE, self.home, [sys.executable, "-m", "moto.server", "-H", HOST,
                                            "-p", str(self.moto_port)], env=env)
        self._proxy = TcpCut(self.proxy_port, self.moto_port)
        self._proxy_started = False

    # -- Topology ---------------------------------------------------------------------

    def install(self) -> None:
        """moto[server] as ``scripts/brokers`` installs it (pip, into this interpreter)."""
        from contract_tests.native_brokers import sqs

        sqs.install()

    def url(self) -> str:
        return (f"sqs://testing:testing@{HOST}:{self.proxy_port}"
                "?region=us-east-1&tls=false")

    def topic_options(self) -> dict[str, object]:
        """None: SQS and SNS replicate inside the service."""
        return {}

    def up(self, timeout: float = 120.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self._node.stop()  # a previous run's, if a crash left it
        if not self._proxy_started:
            self._proxy.start()
            self._proxy_started = True
        self._node.start()
        self._wait_serving(timeout)

    def down(self) -> None:
        self._node.stop()
        self._proxy.close()
        self._proxy_started = False
        shutil.rmtree(self.home, ignore_errors=True)

    def leader(self, topic: str) -> str:
        """Always ``moto``: the service has no leader a client could see."""
        return NODE

    def kill(self, node: str) -> None:
        """SIGKILL moto: every queue and message is gone with it (kept in memory)."""
        self._check(node)
        self._node.kill()

    def start(self, node: str, timeout: float = 120.0) -> None:
        """Start moto again: empty (see :meth:`kill`)."""
        self._check(node)
        self._node.start()
        self._wait_serving(timeout)

    def cut(self, node: str) -> None:
        self._check(node)
        self._proxy.cut()

    def heal(self, node: str) -> None:
        self._check(node)
        self._proxy.heal()

    def restart_all(self, timeout: float = 180.0) -> None:
        """SIGTERM moto and start it again: empty, as after :meth:`kill`."""
        self._node.stop()
        self._node.start()
        self._wait_serving(timeout)

    # -- helpers ----------------------------------------------------------------------

    def _check(self, node: str) -> None:
        if node != NODE:
            raise ConfigurationError(f"node: no SQS node {node!r}; the only one is {NODE!r}")

    def _serving(self) -> bool:
        from contract_tests.native_brokers.sqs import moto_query

        if not self._node.alive() or not port_open(self.moto_port):
            return False
        status, body = moto_query(self.moto_port, "sqs",
                                  {"Action": "ListQueues", "Version": "2012-11-05"})
        return status == 200 and "ListQueuesResponse" in body

    def queue_names(self) -> list[str]:
        """The SQS queue names moto holds now (asked on moto's own port, not the proxy)."""
        from contract_tests.native_brokers.sqs import moto_query

        status, body = moto_query(self.moto_port, "sqs",
                                  {"Action": "ListQueues", "Version": "2012-11-05"})
        if status != 200:
            raise RuntimeError(f"sqs: ListQueues answered HTTP {status}: {body[:160]!r}")
        return [part.split("</QueueUrl>", 1)[0].rsplit("/", 1)[-1]
                for part in body.split("<QueueUrl>")[1:]]

    def _wait_serving(self, timeout: float) -> None:
        try:
            wait_until(self._serving, timeout, "sqs: moto answering ListQueues")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n[{NODE}] {self._node.tail(8)}") from None
