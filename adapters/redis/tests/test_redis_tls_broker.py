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
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import mqkit
import mqkit.aio
from fault_tests.clusters.redis_cluster import RedisCluster
from tests.pki import Pki
from tests.tls_broker import (
    assert_certificate_refused,
    broker_pki,
    round_trip,
    round_trip_async,
)

TLS_PORT = 23590
TLS_CLUSTER_PORT = 23600


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return broker_pki("redis", tmp_path_factory)


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


def test_rediss_verifies_the_server_and_carries_messages(tls_url: str) -> None:
    assert round_trip(tls_url) == [b"a", b"b"]
    assert asyncio.run(round_trip_async(tls_url)) == [b"c"]


def test_a_server_the_ca_does_not_vouch_for_is_refused(tls_url: str, pki: Pki) -> None:
    # Without ca_file the system's CAs are used, and none signed the test certificate.
    # Refused at once, as a configuration error: trying again until connect_timeout (30 s
    # here) would not change the certificate.
    system_only = tls_url.split("?", 1)[0]
    assert_certificate_refused(system_only)
    # verify=false turns the check off (documented as for tests only)
    assert round_trip(f"{system_only}?verify=false") == [b"a", b"b"]


def test_plain_redis_to_a_tls_port_is_an_error_not_a_hang(tls_url: str) -> None:
    plain = f"redis://127.0.0.1:{TLS_PORT}/0"
    with pytest.raises(mqkit.MQError):
        with mqkit.connect(plain, connect_timeout=3) as client:
            client.admin.list_topics()


def test_rediss_cluster_verifies_every_node_and_carries_messages(
        tls_cluster: RedisCluster) -> None:
    url = tls_cluster.url(seeds=1)  # the client finds the other primaries, over TLS too
    assert url.startswith("rediss+cluster://")
    assert round_trip(url) == [b"a", b"b"]
    assert asyncio.run(round_trip_async(url)) == [b"c"]
