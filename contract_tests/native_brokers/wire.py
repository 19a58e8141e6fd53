"""What the readiness probes share: reading a broker's answer off a socket.

Each probe speaks the broker's own protocol (an open port is not enough) and returns None
when the broker answered properly, else a short reason; a malformed answer raises
ProbeError.
"""

from __future__ import annotations

import socket

from .ports import HOST


class ProbeError(Exception):
    """The broker's answer is not what its protocol says (the message says how)."""


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ProbeError("connection closed by the broker")
        buf += chunk
    return bytes(buf)


def recv_line(sock: socket.socket, limit: int = 65536) -> bytes:
    buf = bytearray()
    while not buf.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise ProbeError("connection closed by the broker")
        buf += chunk
        if len(buf) > limit:
            raise ProbeError("line too long")
    return bytes(buf)


def connect(port: int, timeout: float) -> socket.socket:
    return socket.create_connection((HOST, port), timeout=timeout)


def port_open(port: int) -> bool:
    """Whether anything accepts a TCP connection on loopback ``port``."""
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def unrecovered(listing: str) -> list[str]:
    """The queues of a RabbitMQ ``list_queues name state`` listing that are neither
    ``running`` nor ``idle`` (not serving yet after a restart); natively and in containers."""
    rows = (line.split() for line in listing.splitlines())
    return [r[0] for r in rows if len(r) >= 2 and r[-1] not in ("running", "idle")]
