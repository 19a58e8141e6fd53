"""The SQS adapter against a moto that enforces IAM (``MQKIT_TEST_SQS_AUTH_URL``).

``scripts/brokers`` runs that second moto (``sqs-auth``) with an IAM user and access key
made at start, and prints the URL with that key from ``env``. Skipped without it, except
under ``MQKIT_REQUIRE_BACKENDS`` naming sqs, where a missing URL fails.
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
    url = os.environ.get("MQKIT_TEST_SQS_AUTH_URL", "")
    if not url:
        if "sqs" in required_backends():
            pytest.fail("MQKIT_TEST_SQS_AUTH_URL is not set (eval \"$(scripts/brokers env)\")")
        pytest.skip("no MQKIT_TEST_SQS_AUTH_URL (a moto that enforces IAM)")
    return url


def _with(url: str, *, key: str | None = None, secret: str | None = None) -> str:
    parts = urllib.parse.urlsplit(url)
    assert parts.username and parts.password, "the AUTH URL carries a key and a secret"
    netloc = parts.netloc.replace(f"{parts.username}:{parts.password}@",
                                  f"{key or parts.username}:{secret or parts.password}@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def test_right_key_sends_and_receives(auth_url: str) -> None:
    topic = f"st-auth-{uuid.uuid4().hex[:8]}"
    with mqkit.connect(auth_url) as client:
        client.admin.create_topic(topic)
        try:
            client.admin.create_group(topic, "g")
            with client.producer(topic) as producer:
                producer.send(b"signed")
            with client.consumer(topic, "g") as consumer:
                got: list[mqkit.ReceivedMessage] = []
                deadline = time.monotonic() + 10
                while not got and time.monotonic() < deadline:
                    got = consumer.receive(10, 1.0)
                consumer.ack(got)
            assert [m.body for m in got] == [b"signed"]
        finally:
            client.admin.delete_topic(topic)


@pytest.mark.parametrize("mode", ["sns", "queue"])
def test_wrong_secret_is_permission_denied_at_once(auth_url: str, mode: str) -> None:
    wrong = f"wrong{uuid.uuid4().hex[:8]}"
    start = time.monotonic()
    with pytest.raises(mqkit.PermissionDenied) as info:
        mqkit.connect(_with(auth_url, secret=wrong), mode=mode, connect_timeout=10)
    assert time.monotonic() - start < 2.0
    assert "SignatureDoesNotMatch" in str(info.value)
    assert wrong not in str(info.value) and wrong not in repr(info.value)


def test_unknown_key_is_permission_denied(auth_url: str) -> None:
    with pytest.raises(mqkit.PermissionDenied) as info:
        mqkit.connect(_with(auth_url, key="AKIAUNKNOWNUNKNOWN00"), connect_timeout=10)
    assert "InvalidClientTokenId" in str(info.value)
