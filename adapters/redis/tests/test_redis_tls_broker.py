"""``rediss://`` and ``rediss+cluster://`` against real TLS servers.

A throwaway CA (``tests.pki``) signs a certificate for 127.0.0.1; a redis-server on
:data:`TLS_PORT` listens with TLS only, and a three-primary cluster on
:data:`TLS_CLUSTER_PORT`.. (bus ports + 10) talks TLS to clients and between its nodes.
Both are started here (``redis-server`` from Debian's package); skipped without
``MQKIT_TEST_REDIS_URL`` like the other broker tests, and failed instead when
``MQKIT_REQUIRE_BACKENDS`` names redis (CI).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import mqkit
import mqkit.aio
from contract_tests.brokers import env_url, required_backends
from fault_tests.clusters.redis_cluster import RedisCluster
from tests.pki import Pki, make_pki

TLS_PORT = 23590
TLS_CLUSTER_PORT = 23600


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    env_url("redis")  # a Redis installed and running here, else skipped (failed in CI)
    made = make_pki(tmp_path_factory.mktemp("redis-pki"))
    if made is None:
        if "redis" in required_backends():
            pytest.fail("MQKIT_REQUIRE_BACKENDS names redis: no cryptography or openssl "
                        "to make the TLS tests' certificates")
        pytest.skip("neither the cryptography package nor the openssl command")
    return made


def _ca(pki: Pki) -> str:
    return urllib.parse.quote(str(pki.ca))


@pytest.fixture(scope="module")
def tls_url(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A TLS-only redis-server; its ``rediss://`` URL verifying the test CA."""
    home: Path = tmp_path_factory.mktemp("redis-tls")
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(TLS_PORT), "--bind", "127.0.0.1",
         "--tls-cert-file", str(pki.cert), "--tls-key-file", str(pki.key),
         "--tls-key-file-pass", pki.key_password, "--tls-ca-cert-file", str(pki.ca),
         "--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", str(home)],
        stdout=(home / "redis.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with redis.Redis(host="127.0.0.1", port=TLS_PORT, ssl=True,
                                 ssl_ca_certs=str(pki.ca), socket_timeout=1.0) as r:
                    r.ping()
                break
            except redis.RedisError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = (home / "redis.log").read_text(errors="replace")[-800:]
                    raise RuntimeError(f"TLS redis-server did not come up: {log}") from None
                time.sleep(0.2)
        yield f"rediss://127.0.0.1:{TLS_PORT}/0?ca_file={_ca(pki)}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def tls_cluster(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    cluster = RedisCluster(TLS_CLUSTER_PORT, tmp_path_factory.mktemp("redis-tls-cluster"),
                           tls=pki)
    cluster.install()
    try:
        cluster.up(timeout=60)
        yield cluster
    finally:
        cluster.down()


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


def test_rediss_verifies_the_server_and_carries_messages(tls_url: str) -> None:
    assert _round_trip(tls_url) == [b"a", b"b"]
    assert asyncio.run(_round_trip_async(tls_url)) == [b"c"]


def test_a_server_the_ca_does_not_vouch_for_is_refused(tls_url: str, pki: Pki) -> None:
    # Without ca_file the system's CAs are used, and none signed the test certificate.
    # Refused at once, as a configuration error: trying again until connect_timeout (30 s
    # here) would not change the certificate.
    system_only = tls_url.split("?", 1)[0]
    with pytest.raises(mqkit.ConfigurationError, match=r"certificate was refused .*ca_file"):
        mqkit.connect(system_only, connect_timeout=30)
    with pytest.raises(mqkit.ConfigurationError, match="certificate was refused"):
        asyncio.run(mqkit.aio.connect(system_only, connect_timeout=30).admin.list_topics())
    # verify=false turns the check off (documented as for tests only)
    assert _round_trip(f"{system_only}?verify=false") == [b"a", b"b"]


def test_plain_redis_to_a_tls_port_is_an_error_not_a_hang(tls_url: str) -> None:
    plain = f"redis://127.0.0.1:{TLS_PORT}/0"
    with pytest.raises(mqkit.MQError):
        with mqkit.connect(plain, connect_timeout=3) as client:
            client.admin.list_topics()


def test_rediss_cluster_verifies_every_node_and_carries_messages(
        tls_cluster: RedisCluster) -> None:
    url = tls_cluster.url(seeds=1)  # the client finds the other primaries, over TLS too
    assert url.startswith("rediss+cluster://")
    assert _round_trip(url) == [b"a", b"b"]
    assert asyncio.run(_round_trip_async(url)) == [b"c"]
