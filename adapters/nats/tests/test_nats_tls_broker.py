"""NATS over TLS against a real ``nats-server`` with JetStream.

A throwaway CA (``tests.pki``) signs a certificate for 127.0.0.1; a ``nats-server`` on
:data:`TLS_PORT` requires TLS from every client. Started here (``nats-server`` from
Debian's package); skipped without ``MQKIT_TEST_NATS_URL`` like the other broker tests,
and failed instead when ``MQKIT_REQUIRE_BACKENDS`` names nats (CI).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pki import Pki
from tests.tls_broker import (
    assert_certificate_refused,
    broker_pki,
    round_trip,
    round_trip_async,
)

TLS_PORT = 24290


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return broker_pki("nats", tmp_path_factory)


def _info_line(port: int) -> bytes:
    """The server's first line (``INFO {...}``, sent in clear before the handshake)."""
    with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
        return sock.recv(4096)


@pytest.fixture(scope="module")
def tls_url(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A TLS-only nats-server with JetStream; its URL (``tls=true``) verifying the test
    CA."""
    home: Path = tmp_path_factory.mktemp("nats-tls")
    server = shutil.which("nats-server") or "nats-server"
    proc = subprocess.Popen(
        [server, "-a", "127.0.0.1", "-p", str(TLS_PORT), "--tls", "--tlscert", str(pki.cert),
         "--tlskey", str(pki.plain_key), "-js", "-sd", str(home / "js"), "-n", "mqkit-tls"],
        stdout=(home / "nats.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _info_line(TLS_PORT).startswith(b"INFO"):
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (home / "nats.log").read_text(errors="replace")[-800:]
                raise RuntimeError(f"TLS nats-server did not come up: {log}")
            time.sleep(0.1)
        yield (f"nats://127.0.0.1:{TLS_PORT}?tls=true"
               f"&ca_file={urllib.parse.quote(str(pki.ca))}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_tls_verifies_the_server_and_carries_messages(tls_url: str) -> None:
    assert round_trip(tls_url) == [b"a", b"b"]
    assert asyncio.run(round_trip_async(tls_url)) == [b"c"]


def test_a_server_the_ca_does_not_vouch_for_is_refused_at_once(tls_url: str) -> None:
    # Without ca_file the system's CAs are used, and none signed the test certificate:
    # a ConfigurationError naming ca_file, not ConnectTimeout after retrying 30 s.
    system_only = tls_url.split("&", 1)[0]  # tls=true, no ca_file
    assert_certificate_refused(system_only)
