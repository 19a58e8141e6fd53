"""A TCP proxy that can cut a node off the network: :class:`TcpCut`.

``TcpCut(listen_port, target_port)`` listens on ``127.0.0.1:listen_port`` and forwards each
connection to ``127.0.0.1:target_port`` (or ``target_host:target_port``: a node bound to an
address of its own in ``127.0.0.0/8``) (one thread accepting, two pumping per connection:
the few connections of a fault run need nothing faster). :meth:`TcpCut.cut` resets every open
connection (``SO_LINGER`` 0, so both peers see a reset, not a clean end of stream) and, until
:meth:`TcpCut.heal`, resets every new connection as soon as it is accepted, before any byte
is forwarded: to a client the node is gone. This is a real fault at the TCP level without
root, iptables or Docker; it is not a silent black hole (a client notices at once rather than
after its keepalive or ping timeout). Cutting a node off its peers as well is
:mod:`fault_tests.netcut`'s (iptables) or per-pair proxies' (NATS, Redis).

A connection to a target that is down is reset the same way (as a client connecting to a
stopped node is refused).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading

from mqkit import ConfigurationError

__all__ = ["TcpCut", "reset"]

log = logging.getLogger("fault_tests.tcpcut")

HOST = "127.0.0.1"
_CHUNK = 65536


def reset(sock: socket.socket) -> None:
    """Abort ``sock``: the peer gets a RST at once. Never raises.

    ``SO_LINGER`` 0 makes the final close a reset; ``shutdown`` first wakes a pump thread
    blocked in ``recv`` on it (a plain ``close`` from another thread does not: Linux keeps
    the socket until that ``recv`` returns, so an idle peer, such as a consumer blocked in
    a long poll, would notice nothing until its own timeout). Only the reading side is
    shut down: ``SHUT_RDWR`` sends a FIN first, and a peer reading between that FIN and
    the RST saw a clean end of stream instead of a reset (test_cut_resets_open_connections
    failed about 1 run in 3 under load)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()


class TcpCut:
    """A loopback TCP proxy ``listen_port`` -> ``target_port`` that can be cut and healed.

    :meth:`start` binds and returns at once (the port is listening when it returns);
    :meth:`close` stops it and resets every connection. Thread-safe; :meth:`cut`,
    :meth:`heal` and :meth:`close` are idempotent. Usable as a context manager.
    """

    def __init__(self, listen_port: int, target_port: int, target_host: str = HOST) -> None:
        for name, port in (("listen_port", listen_port), ("target_port", target_port)):
            if not isinstance(port, int) or not 0 < port < 65536:
                raise ConfigurationError(f"TcpCut: {name} must be a port in 1..65535, "
                                         f"got {port!r}")
        if listen_port == target_port:
            raise ConfigurationError("TcpCut: listen_port and target_port must differ")
        self.listen_port = listen_port
        self.target_port = target_port
        self.target_host = target_host
        self._lock = threading.Lock()
        self._open: set[_Pair] = set()
        self._cut = False
        self._closed = False
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "cut" if self._cut else "open"
        return f"TcpCut({self.listen_port} -> {self.target_port}, {state})"

    @property
    def is_cut(self) -> bool:
        return self._cut

    @property
    def open_connections(self) -> int:
        """How many proxied connections are open now."""
        with self._lock:
            return len(self._open)

    def start(self) -> TcpCut:
        """Listen on ``listen_port`` (``SO_REUSEADDR``); raises OSError if it is taken.
        A closed proxy can be started again (healed)."""
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            server.bind((HOST, self.listen_port))
            server.listen(128)
        except OSError:
            server.close()
            raise
        with self._lock:
            self._server = server
            self._closed = False
            self._cut = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name=f"tcpcut-{self.listen_port}")
        self._thread.start()
        return self

    def cut(self) -> None:
        """Reset every open connection; reset new ones until :meth:`heal`."""
        with self._lock:
            self._cut = True
            victims, self._open = self._open, set()
        for pair in victims:
            pair.reset()

    def heal(self) -> None:
        """Forward new connections again (the ones reset stay gone)."""
        with self._lock:
            self._cut = False

    def close(self) -> None:
        """Stop listening and reset every connection."""
        with self._lock:
            self._closed = True
            server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
        self.cut()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def __enter__(self) -> TcpCut:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- threads -------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        server = self._server
        assert server is not None
        while not self._closed:
            try:
                client, _ = server.accept()
            except OSError:
                return  # closed
            if self._refusing():
                reset(client)
                continue
            try:
                upstream = socket.create_connection((self.target_host, self.target_port),
                                                    timeout=2.0)
                upstream.settimeout(None)
            except OSError:
                reset(client)  # the node is down: as if refused
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(client, upstream)
            with self._lock:
                if self._refusing():  # cut while connecting upstream
                    pair.reset()
                    continue
                self._open.add(pair)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(pair, src, dst), daemon=True,
                                 name=f"tcpcut-{self.listen_port}-pump").start()

    def _refusing(self) -> bool:
        return self._cut or self._closed

    def _pump(self, pair: _Pair, src: socket.socket, dst: socket.socket) -> None:
        """Copy ``src`` to ``dst`` until ``src`` ends. A clean end half-closes ``dst`` (the
        pair is closed when both directions ended); an error resets both sockets."""
        try:
            while True:
                data = src.recv(_CHUNK)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            self._drop(pair, abort=True)
            return
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
        with self._lock:
            pair.ended += 1
            finished = pair.ended == 2
        if finished:
            self._drop(pair, abort=False)

    def _drop(self, pair: _Pair, abort: bool) -> None:
        with self._lock:
            if pair not in self._open:
                return  # the other pump, cut() or close() ended it already
            self._open.discard(pair)
        if abort:
            pair.reset()
        else:
            pair.client.close()
            pair.upstream.close()


class _Pair:
    """One proxied connection: the client's socket and the one to the target."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.ended = 0

    def reset(self) -> None:
        reset(self.client)
        reset(self.upstream)
