"""A server certificate that fails verification ends connecting at once, per adapter.

No broker: a local TLS server (the certificate of ``tests.pki``, whose CA the client is not
given) answers the handshake and nothing else, which is all a refusal needs. The core
raises ``ConfigurationError`` naming ``ca_file`` instead of retrying until
``connect_timeout`` wherever the client library keeps the TLS error as the cause or context
of its own (pika, redis-py); a retried refusal would end as ``ConnectTimeout`` instead.
NATS speaks in clear before its handshake, so its refusal is checked against a real
``nats-server`` (``adapters/nats/tests/test_nats_tls_broker.py``); kafka-python retries
the handshake on its own and still ends in ``ConnectTimeout`` (docs/backends/kafka.md).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import mqkit

from .pki import make_pki


@pytest.fixture(scope="module")
def tls_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    pki = make_pki(Path(tmp_path_factory.mktemp("refusal-pki")))
    if pki is None:
        pytest.skip("neither the cryptography package nor the openssl command")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert, pki.plain_key)
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def handshake(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5)
            context.wrap_socket(conn, server_side=True).recv(1)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=handshake, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


@pytest.mark.parametrize("url", ["amqps://guest:ZQsecret@127.0.0.1:{port}/%2F",
                                 "rediss://:ZQsecret@127.0.0.1:{port}/0"])
def test_a_refused_certificate_is_a_configuration_error_not_a_timeout(
        tls_port: int, url: str) -> None:
    with pytest.raises(mqkit.ConfigurationError) as info:
        mqkit.connect(url.format(port=tls_port), connect_timeout=20)
    message = str(info.value)
    assert "certificate was refused" in message and "ca_file" in message
    assert "ZQsecret" not in message
