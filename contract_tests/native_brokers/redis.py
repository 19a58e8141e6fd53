"""Redis from Debian's ``redis-server``, without persistence (a restart empties it), with an
ACL user with a password beside the open default user; probe: PING."""

from __future__ import annotations

import shutil

from .config import PORTS, bdir
from .ports import AUTH_PASSWORD, AUTH_USER, HOST, auth_url
from .supervisor import Broker, spawn
from .wire import connect, recv_line


def probe(timeout: float = 3.0) -> str | None:
    with connect(PORTS["redis"], timeout) as sock:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        line = recv_line(sock)
        if line != b"+PONG\r\n":
            return f"PING answered {line.decode(errors='replace').strip()!r}"
    return None


def command() -> list[str]:
    """The server's command line."""
    return [
        shutil.which("redis-server") or "redis-server",
        # no persistence by design: a restart empties it
        "--bind",
        HOST,
        "--port",
        str(PORTS["redis"]),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(bdir("redis")),
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
        # an extra user with a password (see AUTH_USER); the default user stays open
        "--user",
        AUTH_USER,
        "on",
        f">{AUTH_PASSWORD}",
        "~*",
        "&*",
        "+@all",
    ]


def start() -> None:
    base = bdir("redis")
    base.mkdir(parents=True, exist_ok=True)
    spawn("redis", command(), cwd=base)


BROKER = Broker(
    name="redis",
    start=start,
    probe=probe,
    mark="redis-server",
    stop_grace=15.0,
    auth_url=lambda: auth_url("redis", PORTS),
)
