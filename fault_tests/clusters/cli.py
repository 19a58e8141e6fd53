"""``scripts/clusters``: start a fault-suite topology by hand (up, down, status, env).

    scripts/clusters up nats        # start it; prints its URL once formed
    scripts/clusters env nats       # export MQKIT_CLUSTER_NATS_URL=...
    scripts/clusters status         # every backend: up (holder pid, URL) or down
    scripts/clusters down nats      # stop every node and remove its data

A topology's TCP proxies live in the process holding it, so ``up`` starts a detached
*holder* process (``python -m fault_tests.clusters.cli hold BACKEND``, its own session)
that brings the topology up, writes ``<home>/<backend>.json`` (pid, URL) and waits;
``down`` sends it SIGTERM, on which it stops every node and removes the data. When the
holder is gone (crashed, killed), ``down`` still stops the nodes from their pid files.
Homes are under ``$MQKIT_CLUSTERS_HOME`` (default ``~/.cache/mqkit/clusters``); ports are
the topologies' own (see each module), never the single-node brokers' of
``scripts/brokers``, which this script never touches.

Exit status: 0 done, 1 failed (message on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import TOPOLOGIES, clusters_home, make

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[2]


def _state_file(backend: str) -> Path:
    return clusters_home() / f"{backend}.json"


def _holder(backend: str) -> dict[str, object] | None:
    """The running holder's state (pid, url), None when it is not running."""
    try:
        state: dict[str, object] = json.loads(_state_file(backend).read_text())
        pid = int(str(state["pid"]))
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError):
        return None
    return state


def hold(backend: str) -> int:
    """Bring ``backend`` up, write its state file, wait for SIGTERM/SIGINT, bring it down."""
    topology = make(backend)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        topology.up()
        _state_file(backend).write_text(json.dumps(
            {"pid": os.getpid(), "url": topology.url(), "nodes": list(topology.nodes)}))
        while not stop.wait(1.0):
            pass
    finally:
        topology.down()
        _state_file(backend).unlink(missing_ok=True)
    return 0


def up(backend: str, timeout: float = 180.0) -> int:
    state = _holder(backend)
    if state is not None:
        print(f"{backend}: already up (holder {state['pid']}): {state['url']}")
        return 0
    home = clusters_home()
    home.mkdir(parents=True, exist_ok=True)
    _state_file(backend).unlink(missing_ok=True)
    with open(home / f"{backend}-holder.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fault_tests.clusters.cli", "hold", backend], cwd=ROOT,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _holder(backend)
        if state is not None:
            print(f"{backend}: up (holder {proc.pid}): {state['url']}")
            return 0
        if proc.poll() is not None:
            print(f"{backend}: the holder exited ({proc.returncode}); see "
                  f"{home / f'{backend}-holder.log'}", file=sys.stderr)
            return 1
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    print(f"{backend}: not formed within {timeout:g} s; stopped", file=sys.stderr)
    return 1


def down(backend: str) -> int:
    state = _holder(backend)
    if state is not None:
        pid = int(str(state["pid"]))
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _holder(backend) is not None:
            time.sleep(0.3)
        if _holder(backend) is not None:
            os.kill(pid, signal.SIGKILL)
    make(backend).down()  # nodes a dead holder left behind (from their pid files)
    _state_file(backend).unlink(missing_ok=True)
    print(f"{backend}: down")
    return 0


def status(backends: list[str]) -> int:
    for backend in backends:
        state = _holder(backend)
        if state is None:
            print(f"{backend}: down")
        else:
            print(f"{backend}: up (holder {state['pid']}): {state['url']}")
    return 0


def env(backend: str) -> int:
    state = _holder(backend)
    if state is None:
        print(f"{backend}: not up (scripts/clusters up {backend})", file=sys.stderr)
        return 1
    print(f"export MQKIT_CLUSTER_{backend.upper()}_URL='{state['url']}'")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/clusters", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("up", "down", "status", "env", "hold"))
    parser.add_argument("backend", nargs="?", choices=sorted(TOPOLOGIES))
    args = parser.parse_args(argv)
    if args.command == "status":
        return status([args.backend] if args.backend else sorted(TOPOLOGIES))
    if args.backend is None:
        parser.error(f"{args.command} needs a BACKEND ({', '.join(sorted(TOPOLOGIES))})")
    command = {"up": up, "down": down, "env": env, "hold": hold}[args.command]
    try:
        return command(args.backend)
    except Exception as exc:
        print(f"{args.backend}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
