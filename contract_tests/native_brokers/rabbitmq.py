"""RabbitMQ from Debian's ``rabbitmq-server``, as our own node ``rabbit@localhost`` with its
own data dir and Erlang cookie (never the Debian service's); probe: an AMQP 0-9-1 login."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path

from .config import PORTS, bdir, log
from .ports import HOST, auth_url
from .supervisor import Broker, spawn
from .wire import ProbeError, connect, recv_exact, unrecovered

NODE = "rabbit@localhost"
SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"


def _shortstr(s: str) -> bytes:
    b = s.encode()
    return struct.pack("!B", len(b)) + b


def _longstr(b: bytes) -> bytes:
    return struct.pack("!I", len(b)) + b


def _method_frame(class_id: int, method_id: int, args: bytes) -> bytes:
    payload = struct.pack("!HH", class_id, method_id) + args
    return struct.pack("!BHI", 1, 0, len(payload)) + payload + b"\xce"


def _read_method(sock: socket.socket) -> tuple[int, int, bytes]:
    while True:
        ftype, _channel, size = struct.unpack("!BHI", recv_exact(sock, 7))
        payload = recv_exact(sock, size)
        if recv_exact(sock, 1) != b"\xce":
            raise ProbeError("bad AMQP frame end")
        if ftype == 8:  # heartbeat
            continue
        if ftype != 1:
            raise ProbeError(f"unexpected AMQP frame type {ftype}")
        class_id, method_id = struct.unpack("!HH", payload[:4])
        return class_id, method_id, payload[4:]


def probe(timeout: float = 3.0) -> str | None:
    """AMQP 0-9-1 handshake up to connection.open-ok on vhost '/' as guest/guest."""
    with connect(PORTS["rabbitmq"], timeout) as sock:
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        cls, meth, _ = _read_method(sock)
        if (cls, meth) != (10, 10):
            return f"expected connection.start, got {cls}.{meth}"
        client_props = b""  # empty field table
        start_ok = (
            _longstr(client_props)
            + _shortstr("PLAIN")
            + _longstr(b"\x00guest\x00guest")
            + _shortstr("en_US")
        )
        sock.sendall(_method_frame(10, 11, start_ok))
        cls, meth, args = _read_method(sock)
        if (cls, meth) == (10, 50):
            return "broker closed the connection (login refused?)"
        if (cls, meth) != (10, 30):
            return f"expected connection.tune, got {cls}.{meth}"
        channel_max, frame_max, _heartbeat = struct.unpack("!HIH", args[:8])
        sock.sendall(_method_frame(10, 31, struct.pack("!HIH", channel_max, frame_max, 0)))
        sock.sendall(_method_frame(10, 40, _shortstr("/") + _shortstr("") + b"\x00"))
        cls, meth, _ = _read_method(sock)
        if (cls, meth) != (10, 41):
            return f"expected connection.open-ok, got {cls}.{meth}"
        close = struct.pack("!H", 200) + _shortstr("probe done") + struct.pack("!HH", 0, 0)
        sock.sendall(_method_frame(10, 50, close))
        try:
            _read_method(sock)  # close-ok; not worth failing over
        except (OSError, ProbeError):
            pass
    return None


def node_env(base: Path, home: Path, *, nodename: str, host: str, port: int,
             dist_port: int) -> dict[str, str]:
    """The environment of one node of ours (and of ``rabbitmqctl`` for it): everything
    under ``base``, the Erlang cookie in ``home`` (server and rabbitmqctl share it), AMQP
    on ``host:port``, distribution on ``dist_port``, logs to stdout. Shared with the
    fault suite's cluster (``fault_tests.clusters.rabbitmq``)."""
    return dict(
        os.environ,
        HOME=str(home),
        RABBITMQ_NODENAME=nodename,
        RABBITMQ_NODE_IP_ADDRESS=host,
        RABBITMQ_NODE_PORT=str(port),
        RABBITMQ_DIST_PORT=str(dist_port),
        RABBITMQ_MNESIA_BASE=str(base / "mnesia"),
        RABBITMQ_LOG_BASE=str(base / "log"),
        RABBITMQ_PID_FILE=str(base / "rabbitmq.pid"),
        RABBITMQ_ENABLED_PLUGINS_FILE=str(base / "enabled_plugins"),
        RABBITMQ_CONFIG_FILE=str(base / "rabbitmq.conf"),
        RABBITMQ_ADVANCED_CONFIG_FILE=str(base / "advanced.config"),
        RABBITMQ_CONF_ENV_FILE=str(base / "rabbitmq-env.conf"),
        # Log to stdout too, i.e. into the node's log.
        RABBITMQ_LOGS="-",
    )


def write_config(base: Path, home: Path, *, writer: str, listener: str,
                 settings: Sequence[str] = (), advanced: str = "[].") -> None:
    """Write one node's files under ``base`` (made with ``mnesia`` and ``log``): no plugin,
    ``rabbitmq.conf`` with the AMQP ``listener`` (``host:port``), console logging, a low
    disk limit and ``settings`` (lines), ``advanced.config``, an empty env file; and the
    Erlang cookie in ``home`` once. Shared with the fault suite's cluster."""
    for sub in ("mnesia", "log"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    cookie = home / ".erlang.cookie"
    if not cookie.exists():
        cookie.write_text(uuid.uuid4().hex.upper())
        cookie.chmod(0o400)
    (base / "enabled_plugins").write_text("[].\n")  # no management or other plugins
    (base / "rabbitmq.conf").write_text(
        f"# written by {writer}\n"
        f"listeners.tcp.default = {listener}\n"
        "loopback_users.guest = true\n"
        "log.console = true\n"
        "log.console.level = info\n"
        "log.file = false\n"
        # A development machine's disk may be fuller than RabbitMQ's 50 MB default likes.
        "disk_free_limit.absolute = 10MB\n"
        + "".join(f"{line}\n" for line in settings)
    )
    (base / "advanced.config").write_text(f"{advanced}\n")
    (base / "rabbitmq-env.conf").write_text(f"# intentionally empty: {writer} sets env\n")


def env() -> dict[str, str]:
    """The environment of the server and of rabbitmqctl (they share the cookie in HOME)."""
    base = bdir("rabbitmq")
    return dict(node_env(base, base / "home", nodename=NODE, host=HOST, port=PORTS["rabbitmq"],
                         dist_port=PORTS["rabbitmq-dist"]), ERL_EPMD_ADDRESS=HOST)


def start() -> None:
    base = bdir("rabbitmq")
    write_config(base, base / "home", writer="mqkit scripts/brokers",
                 listener=f"{HOST}:{PORTS['rabbitmq']}",
                 settings=["vm_memory_high_watermark.relative = 0.6"])
    # The Debian wrapper in /usr/sbin re-runs itself via `su rabbitmq`, which resets HOME (and
    # with it the cookie); the real scripts in /usr/lib/rabbitmq/bin keep our environment.
    spawn("rabbitmq", [SERVER], env=env(), cwd=base)


def queues_unready() -> str | None:
    """Why RabbitMQ's queues are not all serving yet, or None.

    After a restart the broker answers AMQP before its quorum and stream queues have
    recovered; a client then gets 404 "home node ... is down or inaccessible". Best
    effort: when rabbitmqctl itself fails, nothing is waited for.
    """
    try:
        proc = subprocess.run(
            [CTL, "-q", "-n", NODE, "list_queues", "name", "state", "--no-table-headers"],
            env=env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=30, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log(f"rabbitmq: cannot list queues ({exc}); not waiting for their recovery")
        return None
    if proc.returncode != 0:
        return None
    waiting = unrecovered(proc.stdout)
    if not waiting:
        return None
    return f"{len(waiting)} queue(s) not recovered yet ({', '.join(waiting[:3])})"


def stop_gracefully() -> None:
    """``rabbitmqctl stop`` (the supervisor signals the group afterwards anyway)."""
    try:
        subprocess.run(
            [CTL, "-q", "-n", NODE, "stop", str(bdir("rabbitmq") / "rabbitmq.pid")],
            env=env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=90,
            check=False,
        )
    except subprocess.TimeoutExpired:
        log("rabbitmqctl stop timed out")


BROKER = Broker(
    name="rabbitmq",
    start=start,
    probe=probe,
    mark="beam",
    stop_grace=60.0,
    settle=queues_unready,
    before_stop=stop_gracefully,
    auth_url=lambda: auth_url("rabbitmq", PORTS),
)
