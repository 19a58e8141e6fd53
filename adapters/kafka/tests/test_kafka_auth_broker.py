"""Kafka adapter against a real SASL/PLAIN listener (``MQKIT_TEST_KAFKA_AUTH_URL``).

``scripts/brokers`` gives its Kafka a second listener with SASL/PLAIN and prints its URL
from ``env``. Skipped without it, except under ``MQKIT_REQUIRE_BACKENDS`` naming kafka,
where a missing URL fails.
"""

from __future__ import annotations

import os
import time
import urllib.parse
import uuid

import pytest

import mqkit
from contract_tests.brokers import required_backends


@pytest.fixture
def auth_url() -> str:
    url = os.environ.get("MQKIT_TEST_KAFKA_AUTH_URL", "")
    if not url:
        if "kafka" in required_backends():
            pytest.fail("MQKIT_TEST_KAFKA_AUTH_URL is not set (eval \"$(scripts/brokers env)\")")
        pytest.skip("no MQKIT_TEST_KAFKA_AUTH_URL (a Kafka with a SASL listener)")
    return url


def _with_password(url: str, password: str) -> str:
    parts = urllib.parse.urlsplit(url)
    assert parts.password, "the AUTH URL carries a password"
    netloc = parts.netloc.replace(f":{parts.password}@", f":{password}@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def test_right_password_sends_and_receives_over_sasl(auth_url: str) -> None:
    """Admin, producer and consumer all log in (each kafka-python client of the driver)."""
    topic = f"kt-auth-{uuid.uuid4().hex[:8]}"
    with mqkit.connect(auth_url) as client:
        client.admin.create_topic(topic)
        try:
            client.admin.create_group(topic, "g")
            with client.producer(topic) as producer:
                producer.send(b"over sasl")
            with client.consumer(topic, "g") as consumer:
                got: list[mqkit.ReceivedMessage] = []
                deadline = time.monotonic() + 20
                while not got and time.monotonic() < deadline:
                    got = consumer.receive(10, 0.5)
                consumer.ack(got)
            assert [m.body for m in got] == [b"over sasl"]
        finally:
            client.admin.delete_topic(topic)


def test_wrong_password_is_permission_denied_at_once_every_time(auth_url: str) -> None:
    wrong = f"wrong-{uuid.uuid4().hex[:6]}"
    bad = _with_password(auth_url, wrong)
    took = []
    for _ in range(8):
        start = time.monotonic()
        with pytest.raises(mqkit.PermissionDenied) as info:
            mqkit.connect(bad, connect_timeout=10)
        took.append(time.monotonic() - start)
        assert wrong not in str(info.value) and wrong not in repr(info.value)
    assert max(took) < 2.0, f"PermissionDenied took {[round(t, 2) for t in took]} s"


def test_unknown_user_is_permission_denied(auth_url: str) -> None:
    parts = urllib.parse.urlsplit(auth_url)
    assert parts.username
    bad = urllib.parse.urlunsplit(parts._replace(
        netloc=parts.netloc.replace(f"{parts.username}:", "nobody:", 1)))
    with pytest.raises(mqkit.PermissionDenied):
        mqkit.connect(bad, connect_timeout=10)
