"""Broker node processes of a topology: start in a process group of their own, SIGKILL or
SIGTERM the group, pid files so that a crashed harness's nodes are found and stopped.

Each node runs with its working directory ``<home>/<node>`` and logs to ``<home>/<node>.log``;
its pid (= its process group id) is in ``<home>/<node>.pid``. Only a process whose working
directory is that node's directory is ever signalled, so a stale pid file cannot make us
kill someone else's process (the single-node brokers of ``scripts/brokers`` live under
another home and are never touched).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["Node", "port_open", "wait_until"]

HOST = "127.0.0.1"


def port_open(port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``127.0.0.1:port``."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout: float, what: str,
               interval: float = 0.2) -> None:
    """Poll ``check`` until true; TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:  # a probe failing means "not yet"
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(interval)


class Node:
    """One broker process (``argv``) of a topology, in its own session/process group."""

    def __init__(self, name: str, home: Path, argv: Sequence[str],
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.dir = home / name
        self.argv = list(argv)
        self.env = env
        self.log = home / f"{name}.log"
        self.pid_file = home / f"{name}.pid"
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"Node({self.name!r}, pid={self.pid()})"

    def start(self) -> None:
        """Start the process unless it runs; returns at once (see the topology's waits)."""
        if self.alive():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            log.write(f"--- start {time.strftime('%H:%M:%S')}: {' '.join(self.argv)}\n"
                      .encode())
            log.flush()
            self._proc = subprocess.Popen(
                self.argv, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, **(self.env or {})})
        self.pid_file.write_text(str(self._proc.pid))

    def pid(self) -> int | None:
        """The node's pid when it runs (and is ours: its cwd is the node's directory)."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        try:
            pid = int(self.pid_file.read_text())
            if Path(f"/proc/{pid}/cwd").resolve() == self.dir.resolve():
                return pid
        except (OSError, ValueError):
            pass
        return None

    def alive(self) -> bool:
        return self.pid() is not None

    def kill(self) -> None:
        """SIGKILL the process group; returns once the process is gone."""
        self._signal(signal.SIGKILL, wait=5.0)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL after ``grace`` seconds."""
        if not self._signal(signal.SIGTERM, wait=grace):
            self._signal(signal.SIGKILL, wait=5.0)

    def _signal(self, sig: int, wait: float) -> bool:
        pid = self.pid()
        if pid is None:
            return True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.pid == pid:
                if self._proc.poll() is not None:
                    break
            elif not Path(f"/proc/{pid}").exists() or _zombie(pid):
                break
            time.sleep(0.05)
        else:
            return False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # children left in the group, if any
        self.pid_file.unlink(missing_ok=True)
        return True

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True
