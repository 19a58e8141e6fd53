"""Cutting a node off the loopback network with iptables: :class:`NetCut`.

A topology that uses it gives each node an address of its own in ``127.0.0.0/8`` (all
loopback on Linux), binds every listener of the node to it, and runs the node's processes
with a group id of their own. :meth:`NetCut.cut` then inserts three rules at the head of
the ``OUTPUT`` chain (every loopback packet passes it once):

- ``-d <address> -j DROP``: nothing reaches the node (peers, clients' proxy, lookups);
- ``-s <address> -j DROP``: nothing leaves the node's listening sockets;
- ``-m owner --gid-owner <gid> -j DROP``: nothing leaves the node's own outgoing
  connections either (an unbound socket connecting to another ``127.x`` address gets the
  source ``127.0.0.1``, so the address alone would let them through).

Packets are dropped, not rejected: to its peers the node falls silent, as behind a pulled
cable (``docker network disconnect``), and they notice by their own timeouts. Each rule
carries the comment ``mqkit-fault-<backend>-<node>``; :meth:`NetCut.heal` deletes the
node's, :meth:`NetCut.clear` every rule of the backend (a crashed run's leftovers). No
other rule is touched, and no chain is ever flushed.

iptables needs root (CAP_NET_ADMIN): :func:`unavailable` says why it cannot be used.
"""

from __future__ import annotations

import functools
import logging
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable

__all__ = ["NetCut", "TAG", "install", "unavailable"]

log = logging.getLogger("fault_tests.netcut")

TAG = "mqkit-fault-"
"""The prefix of every rule's comment: ``mqkit-fault-<backend>-<node>``."""
CHAIN = "OUTPUT"


def _iptables(*args: str) -> subprocess.CompletedProcess[str]:
    # -w: wait for the xtables lock rather than fail when another iptables runs.
    return subprocess.run(["iptables", "-w", "5", *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=30, check=False)


def install() -> None:
    """apt-get install Debian's ``iptables`` when it is missing and we are root (as
    ``scripts/brokers`` installs the servers); otherwise a no-op."""
    if shutil.which("iptables") or os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    from contract_tests.native_brokers.install import run, services_forbidden

    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    with services_forbidden():
        run(["apt-get", "update", "-q"], env=env, what="apt-get update")
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "iptables"],
            env=env, what="apt-get install iptables")
    unavailable.cache_clear()


@functools.cache
def unavailable() -> str | None:
    """Why iptables cannot cut here (not installed, not root, no CAP_NET_ADMIN), or None."""
    if shutil.which("iptables") is None:
        return "iptables is not installed (Debian: apt-get install iptables)"
    if os.geteuid() != 0:
        return "iptables needs root (CAP_NET_ADMIN); running as uid " + str(os.geteuid())
    try:
        proc = _iptables("-S", CHAIN)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"iptables -S {CHAIN}: {exc}"
    if proc.returncode != 0:
        return f"iptables -S {CHAIN}: exit {proc.returncode}: {proc.stderr.strip()}"
    return None


class NetCut:
    """The iptables rules of one backend's cuts (see the module)."""

    def __init__(self, backend: str) -> None:
        self.tag = f"{TAG}{backend}"

    def __repr__(self) -> str:
        return f"NetCut({self.tag!r})"

    def rules(self, node: str, address: str, gid: int) -> list[list[str]]:
        """The rule specifications that cut ``node`` (without the chain)."""
        comment = ["-m", "comment", "--comment", f"{self.tag}-{node}"]
        return [["-d", address, *comment, "-j", "DROP"],
                ["-s", address, *comment, "-j", "DROP"],
                ["-m", "owner", "--gid-owner", str(gid), *comment, "-j", "DROP"]]

    def cut(self, node: str, address: str, gid: int) -> None:
        """Drop every packet to and from ``node`` (its ``address``, its processes' ``gid``).
        RuntimeError with iptables' message when a rule cannot be inserted (the rules
        inserted before it are removed)."""
        self.heal(node)  # idempotent: never two copies of a rule
        for spec in self.rules(node, address, gid):
            proc = _iptables("-I", CHAIN, "1", *spec)
            if proc.returncode != 0:
                self.heal(node)
                raise RuntimeError(f"iptables -I {CHAIN} 1 {shlex.join(spec)}: exit "
                                   f"{proc.returncode}: {proc.stderr.strip()}")
        log.info("%s: %s cut (%s, gid %d)", self.tag, node, address, gid)

    def heal(self, node: str) -> int:
        """Delete ``node``'s rules; returns how many there were."""
        return self._delete(lambda comment: comment == f"{self.tag}-{node}")

    def clear(self) -> int:
        """Delete every rule of this backend (any node); returns how many there were."""
        return self._delete(lambda comment: comment.startswith(f"{self.tag}-"))

    def active(self) -> list[str]:
        """The ``iptables -S`` lines of this backend's rules now."""
        return [" ".join(spec) for spec, _ in self._listed()]

    def _listed(self) -> list[tuple[list[str], str]]:
        if unavailable() is not None:
            return []
        proc = _iptables("-S", CHAIN)
        found = []
        for line in proc.stdout.splitlines():
            words = shlex.split(line)
            if words[:2] != ["-A", CHAIN] or "--comment" not in words:
                continue
            comment = words[words.index("--comment") + 1]
            if comment.startswith(f"{self.tag}-"):
                found.append((words[2:], comment))
        return found

    def _delete(self, wanted: Callable[[str], bool]) -> int:
        count = 0
        for spec, comment in self._listed():
            if wanted(comment):
                proc = _iptables("-D", CHAIN, *spec)
                if proc.returncode != 0:
                    raise RuntimeError(f"iptables -D {CHAIN} {shlex.join(spec)}: exit "
                                       f"{proc.returncode}: {proc.stderr.strip()}")
                count += 1
        return count
