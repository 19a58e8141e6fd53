"""fault_tests.netcut on loopback: a cut drops connections to a node's address and from a
process of its group id (a silent black hole: the connect times out), heal and clear remove
exactly the rules they tagged. Needs root (iptables); skipped without it, except in CI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fault_tests import netcut

ADDRESS = "127.0.99.7"
GID = 62999
PROBE = """
import socket, sys
s = socket.socket()
s.settimeout(1.0)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("open")
except OSError:
    print("dropped")
"""

netcut.install()  # Debian's iptables when missing and root (as the topologies do); else no-op
_why = netcut.unavailable()
pytestmark = pytest.mark.skipif(
    _why is not None and os.environ.get("CI", "").lower() != "true",
    reason=f"iptables unusable here: {_why}")


@pytest.fixture
def cut() -> Iterator[netcut.NetCut]:
    tool = netcut.NetCut("selftest")
    tool.clear()
    yield tool
    tool.clear()


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A listener on the node's address and one on 127.0.0.1 (another node's)."""
    node, other = socket.socket(), socket.socket()
    node.bind((ADDRESS, 0))
    other.bind(("127.0.0.1", 0))
    for s in (node, other):
        s.listen(16)
    yield node, other
    node.close()
    other.close()


def _probe(host: str, port: int, gid: int | None = None) -> str:
    proc = subprocess.run([sys.executable, "-c", PROBE, host, str(port)], group=gid,
                          extra_groups=None if gid is None else [], capture_output=True,
                          text=True, timeout=30, check=True)
    return proc.stdout.strip()


def test_cut_drops_to_and_from_the_node_and_heal_restores(
        cut: netcut.NetCut, listener: tuple[socket.socket, socket.socket]) -> None:
    node, other = listener
    node_port, other_port = node.getsockname()[1], other.getsockname()[1]
    assert _probe(ADDRESS, node_port) == "open"
    assert _probe("127.0.0.1", other_port, gid=GID) == "open"
    cut.cut("n1", ADDRESS, GID)
    assert len(cut.active()) == 3
    assert _probe(ADDRESS, node_port) == "dropped"  # to the node
    assert _probe("127.0.0.1", other_port, gid=GID) == "dropped"  # from the node's processes
    assert _probe("127.0.0.1", other_port) == "open"  # everyone else is untouched
    cut.cut("n1", ADDRESS, GID)  # idempotent
    assert len(cut.active()) == 3
    assert cut.heal("n1") == 3
    assert cut.active() == []
    assert _probe(ADDRESS, node_port) == "open"
    assert _probe("127.0.0.1", other_port, gid=GID) == "open"


def test_clear_removes_every_rule_of_the_backend_only(cut: netcut.NetCut) -> None:
    other = netcut.NetCut("selftest2")
    try:
        cut.cut("n1", ADDRESS, GID)
        cut.cut("n2", "127.0.99.8", GID + 1)
        other.cut("n1", "127.0.99.9", GID + 2)
        assert cut.clear() == 6
        assert cut.active() == []
        assert len(other.active()) == 3
    finally:
        other.clear()


@pytest.mark.parametrize("ci", ["true", ""])
def test_without_iptables_a_cut_is_of_clients_only_and_says_so(
        ci: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No iptables (here: pretended): under CI the cut raises; elsewhere it cuts the
    client proxy only and ``cut_scope`` says "inter-node: not cut" (the case records it).
    No node is started: the cut of a stopped node's proxy is enough to see it."""
    from fault_tests.clusters._isolated import IsolatedCluster
    from fault_tests.clusters.kafka import KafkaCluster

    monkeypatch.setenv("MQKIT_CLUSTERS_HOME", str(tmp_path))
    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(netcut, "unavailable", lambda: "pretended: no CAP_NET_ADMIN")
    cluster: IsolatedCluster = KafkaCluster()
    try:
        if ci:
            with pytest.raises(RuntimeError, match="CAP_NET_ADMIN"):
                cluster.cut("n2")
        else:
            cluster.cut("n2")
            assert cluster.cut_scope.startswith("clients only (inter-node: not cut")
            assert cluster._proxies["n2"].is_cut
    finally:
        for proxy in cluster._proxies.values():
            proxy.close()
