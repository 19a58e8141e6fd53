"""Processes: start a broker detached with a pid file, find ours, stop them, wait for ready.

Every broker runs in its own session (its pid file holds the process group), with its
working directory in ``$MQKIT_BROKERS_HOME/<backend>``: that is how a process without a
pid file is still recognised as ours, and another home's brokers are never touched.
"""

from __future__ import annotations

import functools
import os
import signal
import struct
import subprocess
import sys
import time
import urllib.error
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .config import BROKERS_HOME, PORTS, TIMEOUT, bdir, log, log_path, pid_path
from .ports import BACKENDS, HOST, port_var, url_for
from .wire import ProbeError, port_open


class StartError(Exception):
    """A broker could not be started (the message says why)."""


@dataclass(frozen=True)
class Broker:
    """How the supervisor runs one process (a backend, or a companion such as sqs-auth)."""

    name: str
    start: Callable[[], None]
    """Write its configuration and spawn it (raises StartError or OSError)."""
    probe: Callable[[], str | None]
    """None when it answers its protocol properly, else why not."""
    mark: str
    """A string of its command line (with its cwd, how a process is recognised as ours)."""
    stop_grace: float
    """How long it may take to exit on SIGTERM before SIGKILL."""
    install: Callable[[], None] | None = None
    """Fetch what apt does not bring (Kafka's jars, moto)."""
    companions: tuple[str, ...] = ()
    """Processes started with it (``sqs`` brings ``sqs-auth``); stop leaves them alone."""
    prepare: Callable[[], str | None] | None = None
    """Run before each probe while waiting (sqs-auth's IAM provisioning): None when done."""
    settle: Callable[[], str | None] | None = None
    """After a good probe: why it is not fully usable yet (waited for until the deadline,
    then gone on with), or None."""
    before_stop: Callable[[], None] | None = None
    """A graceful stop tried before SIGTERM (rabbitmqctl stop)."""
    after_stop: Callable[[], None] | None = None
    """Tidying once it is gone."""
    auth_url: Callable[[], str | None] | None = None
    """A URL whose credentials it checks, when it has one now."""
    status_note: Callable[[], str] | None = None
    """Extra detail for ``status`` when it is up."""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def pids_in_group(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return any(alive(pid) for pid in pids_in_group(pgid)) or alive(pgid)


def read_pid(backend: str) -> int | None:
    try:
        return int(pid_path(backend).read_text().strip())
    except (OSError, ValueError):
        return None


def running_pid(backend: str) -> int | None:
    """The process group we started for `backend`, if any process of it is still alive."""
    pid = read_pid(backend)
    if pid is not None and group_alive(pid):
        return pid
    return None


def matching_processes(broker: Broker) -> list[int]:
    """Fallback when the pid file is gone or stale: our processes for `broker`.

    A process counts as ours when its cwd is ``$MQKIT_BROKERS_HOME/<name>`` and its command
    line contains the broker's mark; another MQKIT_BROKERS_HOME's brokers are never touched.
    """
    home = bdir(broker.name).resolve()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) != home:
                continue
            cmdline = (
                (entry / "cmdline").read_bytes().replace(b"\x00", b" ").decode(errors="replace")
            )
        except OSError:
            continue
        if broker.mark in cmdline and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def spawn(
    backend: str, cmd: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> int:
    """Start `cmd` detached (own session, survives this script), log to the backend's log."""
    log_file = log_path(backend)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_path(backend).parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        out.write(f"\n===== {stamp} scripts/brokers start {backend}: {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    pid_path(backend).write_text(f"{proc.pid}\n")
    return proc.pid


def log_tail(backend: str, lines: int = 40) -> str:
    try:
        text = log_path(backend).read_text(errors="replace")
    except OSError:
        return f"(no log at {log_path(backend)})"
    return "\n".join(text.splitlines()[-lines:])


def probe(broker: Broker) -> str | None:
    """The broker's probe, with a failure to talk to it as the reason."""
    try:
        return broker.probe()
    except (OSError, ProbeError, ValueError, struct.error, urllib.error.URLError) as exc:
        return f"{type(exc).__name__}: {exc}"


def where(name: str) -> str:
    """How ``start`` names a ready process: a backend's URL, else host:port."""
    return url_for(name, PORTS) if name in BACKENDS else f"{HOST}:{PORTS[name]}"


def start_backends(registry: Mapping[str, Broker], backends: Sequence[str]) -> bool:
    """Start whatever is not running (with its companions: ``sqs`` brings ``sqs-auth``),
    then wait until each answers its protocol probe (``sqs-auth``: once provisioned)."""
    names = [p for b in backends for p in (b, *registry[b].companions)]
    BROKERS_HOME.mkdir(parents=True, exist_ok=True)
    started_at = time.monotonic()
    failures: dict[str, str] = {}
    pending: list[str] = []
    for name in names:
        broker = registry[name]
        if running_pid(name) is None:
            strays = matching_processes(broker)
            if strays:
                log(f"{name}: adopting a running process without pid file ({strays[0]})")
                pid_path(name).parent.mkdir(parents=True, exist_ok=True)
                pid_path(name).write_text(f"{os.getpgid(strays[0])}\n")
        if running_pid(name) is not None:
            pending.append(name)
            continue
        if port_open(PORTS[name]):
            failures[name] = (
                f"port {PORTS[name]} is taken by a process this script did not start; stop "
                f"it or choose another port with {port_var(name)}"
            )
            continue
        try:
            broker.start()
        except (StartError, OSError) as exc:
            failures[name] = str(exc)
            continue
        pending.append(name)

    deadline = {b: time.monotonic() + TIMEOUT for b in pending}
    while pending:
        for name in list(pending):
            broker = registry[name]
            reason = broker.prepare() if broker.prepare is not None else None
            reason = reason or probe(broker)
            if reason is None and broker.settle is not None:
                reason = broker.settle()
                if reason is not None and time.monotonic() > deadline[name]:
                    log(f"{name}: going on although {reason}")
                    reason = None
            if reason is None:
                log(f"{name} ready at {where(name)} ({time.monotonic() - started_at:.1f}s)")
                pending.remove(name)
                continue
            if running_pid(name) is None:
                failures[name] = f"process exited before answering ({reason})"
                pending.remove(name)
            elif time.monotonic() > deadline[name]:
                failures[name] = f"no answer within {TIMEOUT:.0f}s ({reason})"
                pending.remove(name)
        if pending:
            time.sleep(0.5)

    for name, reason in failures.items():
        print(
            f"brokers: {name} FAILED: {reason}\n--- last 40 lines of {log_path(name)} "
            f"---\n{log_tail(name)}\n---",
            file=sys.stderr,
            flush=True,
        )
    return not failures


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_gone(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not check():
            return True
        time.sleep(0.2)
    return not check()


def stop_backend(broker: Broker) -> None:
    """Stop ``broker`` (graceful hook, SIGTERM to its group, SIGKILL after its grace, then
    any stray of ours) and wait until its port is free; idempotent."""
    name = broker.name
    pgid = running_pid(name)
    strays = matching_processes(broker)
    if pgid is None and not strays:
        pid_path(name).unlink(missing_ok=True)
        return
    log(f"stopping {name}")
    if broker.before_stop is not None and pgid is not None:
        broker.before_stop()
    grace = broker.stop_grace
    if pgid is not None:
        group = pgid
        _signal_group(group, signal.SIGTERM)
        if not _wait_gone(lambda: group_alive(group), grace):
            log(f"{name} ignored SIGTERM for {grace:.0f}s: SIGKILL")
            _signal_group(group, signal.SIGKILL)
            _wait_gone(lambda: group_alive(group), 10)
    for pid in matching_processes(broker):  # anything that escaped the group or the pid file
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        if not _wait_gone(functools.partial(alive, pid), grace):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    # The port must be free before a restart re-binds it.
    _wait_gone(lambda: port_open(PORTS[name]), 10)
    pid_path(name).unlink(missing_ok=True)
    if broker.after_stop is not None:
        broker.after_stop()
