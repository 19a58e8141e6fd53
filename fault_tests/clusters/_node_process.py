"""One broker node's OS process: started detached in its own session (process group),
logged to a file, killed or stopped as a group.

The pid of the group leader is also written to ``<node dir>/node.pid``, so that a later
``down()`` (another test session, after a crash) still finds and stops a node this module
started; nothing else is ever signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from contract_tests.native_brokers.supervisor import group_alive

__all__ = ["NodeProcess"]


class NodeProcess:
    """A node's process group. ``start`` spawns ``cmd`` in ``cwd`` with ``env``;
    ``kill`` is SIGKILL, ``stop`` SIGTERM then SIGKILL after ``grace`` seconds. Both
    return once no process of the group is left and are no-ops on a stopped node."""

    def __init__(self, name: str, cwd: Path, log: Path) -> None:
        self.name = name
        self.cwd = cwd
        self.log = log
        self._pid_file = cwd / "node.pid"
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<NodeProcess {self.name} pgid={self.pgid()}>"

    def pgid(self) -> int | None:
        """The process group we started for this node, while a process of it lives."""
        try:
            pid = int(self._pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if group_alive(pid) else None

    def running(self) -> bool:
        if self._proc is not None:
            self._proc.poll()  # reap a dead child, so that it does not count as alive
        return self.pgid() is not None

    def start(self, cmd: Sequence[str], env: dict[str, str] | None = None,
              group: int | None = None) -> None:
        """Spawn ``cmd`` (a no-op when the node is running); with ``group``, its processes
        run with that group id and no supplementary groups (needs root), so that their
        packets can be told apart (``fault_tests.netcut``)."""
        if self.running():
            return
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            out.write(f"\n===== {time.strftime('%H:%M:%S')} start {self.name}\n".encode())
            out.flush()
            self._proc = subprocess.Popen(
                list(cmd), stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                cwd=self.cwd, start_new_session=True, close_fds=True, group=group,
                extra_groups=None if group is None else [])
        self._pid_file.write_text(f"{self._proc.pid}\n")

    def _signal(self, sig: signal.Signals) -> None:
        pgid = self.pgid()
        if pgid is None:
            return
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass

    def _wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                return True
            time.sleep(0.05)
        return not self.running()

    def kill(self) -> None:
        """SIGKILL the whole group, wait until it is gone."""
        self._signal(signal.SIGKILL)
        self._wait_gone(30.0)

    def terminate(self) -> None:
        """SIGTERM the group without waiting (see :meth:`reap`)."""
        self._signal(signal.SIGTERM)

    def reap(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for the group to exit, then SIGKILL what is left."""
        if not self._wait_gone(grace):
            self.kill()

    def stop(self, grace: float) -> None:
        """SIGTERM the group, SIGKILL what is left after ``grace`` seconds."""
        self.terminate()
        self.reap(grace)
