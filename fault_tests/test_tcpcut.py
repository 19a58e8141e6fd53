"""TcpCut against a local echo server: forwarding, cut (reset, refused), heal; no broker."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from fault_tests.tcpcut import HOST, TcpCut
from mqkit import ConfigurationError


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def echo() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer((HOST, 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(echo: int) -> Iterator[TcpCut]:
    with TcpCut(_free_port(), echo) as p:
        yield p


def _connect(p: TcpCut) -> socket.socket:
    return socket.create_connection((HOST, p.listen_port), timeout=2.0)


def _roundtrip(sock: socket.socket, data: bytes = b"ping") -> bytes:
    sock.sendall(data)
    return sock.recv(4096)


def _refused(p: TcpCut) -> bool:
    """True when a new connection is reset (at connect or at once) or ended: no echo."""
    try:
        with _connect(p) as sock:
            sock.sendall(b"x")
            return sock.recv(16) == b""
    except OSError:
        return True


def test_forwards_both_ways(proxy: TcpCut) -> None:
    with _connect(proxy) as s:
        assert _roundtrip(s, b"hello") == b"hello"
        assert _roundtrip(s, b"again") == b"again"


def test_cut_resets_open_connections(proxy: TcpCut) -> None:
    with _connect(proxy) as s:
        assert _roundtrip(s) == b"ping"
        proxy.cut()
        assert proxy.is_cut
        with pytest.raises(OSError):  # ConnectionResetError: a reset, not a clean end
            s.sendall(b"x")
            if not s.recv(16):
                raise AssertionError("clean end of stream instead of a reset")
        assert proxy.open_connections == 0


def test_cut_wakes_an_idle_client(proxy: TcpCut) -> None:
    """A client blocked reading (a long poll) notices the cut at once, not at its timeout."""
    with _connect(proxy) as s:
        assert _roundtrip(s) == b"ping"
        s.settimeout(5.0)
        threading.Timer(0.2, proxy.cut).start()
        started = time.monotonic()
        try:
            assert s.recv(16) == b""  # end of stream, or
        except ConnectionResetError:  # a reset
            pass
        assert time.monotonic() - started < 2.0


def test_cut_refuses_new_connections_until_healed(proxy: TcpCut) -> None:
    proxy.cut()
    assert _refused(proxy)
    proxy.heal()
    assert not proxy.is_cut
    with _connect(proxy) as s:
        assert _roundtrip(s) == b"ping"


def test_target_down_is_reset() -> None:
    with TcpCut(_free_port(), _free_port()) as p:
        assert _refused(p)


def test_clean_close_is_forwarded(proxy: TcpCut) -> None:
    s = _connect(proxy)
    assert _roundtrip(s) == b"ping"
    s.close()
    for _ in range(100):
        if proxy.open_connections == 0:
            break
        threading.Event().wait(0.02)
    assert proxy.open_connections == 0


def test_close_is_idempotent_and_frees_the_port(echo: int) -> None:
    port = _free_port()
    p = TcpCut(port, echo).start()
    p.close()
    p.close()
    p.start()  # a closed proxy starts again
    with _connect(p) as s:
        assert _roundtrip(s) == b"ping"
    p.close()
    with TcpCut(port, echo) as again, _connect(again) as s:
        assert _roundtrip(s) == b"ping"


@pytest.mark.parametrize("ports", [(0, 1), (1, 70000), (5, 5)])
def test_bad_ports_name_the_argument(ports: tuple[int, int]) -> None:
    with pytest.raises(ConfigurationError, match="port"):
        TcpCut(*ports)
