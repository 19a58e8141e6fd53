"""Redis from Debian's ``redis-server`` with AOF persistence (``appendfsync everysec``: a
clean stop or restart keeps everything; a crash may lose the last second), with an ACL
user with a password beside the open default user; probe: PING.

Persistent so that the adapter declares ``persistence`` (``persistence=auto`` reads AOF
from ``INFO``) and the contract's persistence cases (37) run on it. The non-persistent
mode stays covered: the container image runs a bare ``redis-server`` (no AOF), so the
container run exercises the adapter's recovery of an emptied server instead."""

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
        "--bind",
        HOST,
        "--port",
        str(PORTS["redis"]),
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
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
