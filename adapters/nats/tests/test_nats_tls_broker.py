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
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import mqkit
import mqkit.aio
from contract_tests.brokers import env_url, required_backends
from tests.pki import Pki, make_pki

TLS_PORT = 24290


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    env_url("nats")  # a NATS installed and running here, else skipped (failed in CI)
    made = make_pki(tmp_path_factory.mktemp("nats-pki"))
    if made is None:
        if "nats" in required_backends():
            pytest.fail("MQKIT_REQUIRE_BACKENDS names nats: no cryptography or openssl "
                        "to make the TLS tests' certificates")
        pytest.skip("neither the cryptography package nor the openssl command")
    return made


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


def _round_trip(url: str) -> list[bytes]:
    topic = f"tls-{uuid.uuid4().hex[:10]}"
    with mqkit.connect(url) as client:
        client.admin.create_topic(topic)
        try:
            client.admin.create_group(topic, "g")
            with client.producer(topic) as producer:
                producer.send_batch([mqkit.Message(b"a"), mqkit.Message(b"b")])
            got: list[bytes] = []
            with client.consumer(topic, "g") as consumer:
                deadline = time.monotonic() + 10
                while len(got) < 2 and time.monotonic() < deadline:
                    for msg in consumer.receive(10, 0.5):
                        got.append(msg.body)
                        msg.ack()
            return got
        finally:
            client.admin.delete_topic(topic)


async def _round_trip_async(url: str) -> list[bytes]:
    topic = f"tls-{uuid.uuid4().hex[:10]}"
    async with mqkit.aio.connect(url) as client:
        await client.admin.create_topic(topic)
        try:
            await client.admin.create_group(topic, "g")
            async with client.producer(topic) as producer:
                await producer.send(b"c")
            async with client.consumer(topic, "g") as consumer:
                batch = await consumer.receive(10, 5.0)
                for msg in batch:
                    await msg.ack()
                return [m.body for m in batch]
        finally:
            await client.admin.delete_topic(topic)


def test_tls_verifies_the_server_and_carries_messages(tls_url: str) -> None:
    assert _round_trip(tls_url) == [b"a", b"b"]
    assert asyncio.run(_round_trip_async(tls_url)) == [b"c"]


def test_a_server_the_ca_does_not_vouch_for_is_refused_at_once(tls_url: str) -> None:
    # Without ca_file the system's CAs are used, and none signed the test certificate:
    # a ConfigurationError naming ca_file, not ConnectTimeout after retrying 30 s.
    system_only = tls_url.split("&", 1)[0]  # tls=true, no ca_file
    with pytest.raises(mqkit.ConfigurationError, match=r"certificate was refused .*ca_file"):
        mqkit.connect(system_only, connect_timeout=30)
    with pytest.raises(mqkit.ConfigurationError, match="certificate was refused"):
        asyncio.run(mqkit.aio.connect(system_only, connect_timeout=30).admin.list_topics())
