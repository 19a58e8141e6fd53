"""What a TLS broker test checks on any adapter (``adapters/*/tests/test_*_tls_broker.py``):
the throwaway PKI for a backend's test server, a message round trip on each face, and the
refusal of a server whose certificate the client's CAs do not vouch for."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

import mqkit
import mqkit.aio
from contract_tests.brokers import env_url, required_backends

from .pki import Pki, make_pki

__all__ = ["assert_certificate_refused", "broker_pki", "round_trip", "round_trip_async"]


def broker_pki(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A fresh PKI for ``backend``'s TLS test server. Skipped like the backend's other
    broker tests without its ``MQKIT_TEST_<BACKEND>_URL``, failed instead when
    ``MQKIT_REQUIRE_BACKENDS`` names it (CI), also when no certificate can be made."""
    env_url(backend)  # the backend's server installed and running here
    made = make_pki(tmp_path_factory.mktemp(f"{backend}-pki"))
    if made is None:
        if backend in required_backends():
            pytest.fail(f"MQKIT_REQUIRE_BACKENDS names {backend}: no cryptography or "
                        "openssl to make the TLS tests' certificates")
        pytest.skip("neither the cryptography package nor the openssl command")
    return made


def round_trip(url: str) -> list[bytes]:
    """Blocking face: a fresh topic and group, a batch of b"a", b"b" sent, received and
    acked (what arrived within 10 s, in order), the topic deleted."""
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


async def round_trip_async(url: str) -> list[bytes]:
    """Asyncio face: a fresh topic and group, b"c" sent, received and acked, the topic
    deleted."""
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


def assert_certificate_refused(url: str) -> None:
    """``url`` (no ``ca_file``: the system's CAs, which signed no test certificate) is
    refused at once on both faces: a ConfigurationError naming ``ca_file``, not
    ConnectTimeout after retrying the 30 s given."""
    with pytest.raises(mqkit.ConfigurationError, match=r"certificate was refused .*ca_file"):
        mqkit.connect(url, connect_timeout=30)
    with pytest.raises(mqkit.ConfigurationError, match="certificate was refused"):
        asyncio.run(mqkit.aio.connect(url, connect_timeout=30).admin.list_topics())
