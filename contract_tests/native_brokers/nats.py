"""NATS from Debian's ``nats-server`` with JetStream and a file store, with a user with a
password (clients without credentials map to a ``no_auth_user``); probe: INFO, PING/PONG,
JetStream on per INFO and per the ``/jsz`` monitor."""

from __future__ import annotations

import json
import shutil
import urllib.request

from .config import PORTS, bdir
from .ports import HOST, NATS_AUTH_CONF, auth_url
from .supervisor import Broker, spawn
from .wire import connect, recv_line


def probe(timeout: float = 3.0) -> str | None:
    """INFO line, CONNECT/PING -> PONG, then JetStream enabled per INFO and the /jsz monitor."""
    with connect(PORTS["nats"], timeout) as sock:
        line = recv_line(sock)
        if not line.startswith(b"INFO "):
            return f"expected INFO, got {line[:40]!r}"
        info = json.loads(line[5:])
        sock.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n')
        line = recv_line(sock)
        if line.strip() != b"PONG":
            return f"expected PONG, got {line[:60]!r}"
        if not info.get("jetstream"):
            return "server INFO says JetStream is off"
    monitor = f"http://{HOST}:{PORTS['nats-monitor']}/jsz"
    with urllib.request.urlopen(monitor, timeout=timeout) as r:
        jsz = json.loads(r.read())
    if jsz.get("disabled") or "config" not in jsz:
        return f"/jsz does not show JetStream enabled: {str(jsz)[:120]}"
    return None


def start() -> None:
    base = bdir("nats")
    store = base / "jetstream"
    store.mkdir(parents=True, exist_ok=True)
    conf = base / "nats.conf"
    conf.write_text(NATS_AUTH_CONF)
    spawn(
        "nats",
        [
            shutil.which("nats-server") or "nats-server",
            "-c",
            str(conf),
            "-a",
            HOST,
            "-p",
            str(PORTS["nats"]),
            "-m",
            str(PORTS["nats-monitor"]),
            "-js",
            "-sd",
            str(store),
            "-n",
            "mqkit-native",
        ],
        cwd=base,
    )


BROKER = Broker(
    name="nats",
    start=start,
    probe=probe,
    mark="nats-server",
    stop_grace=20.0,
    auth_url=lambda: auth_url("nats", PORTS),
)
