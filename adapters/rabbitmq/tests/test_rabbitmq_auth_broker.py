"""RabbitMQ, real broker: a wrong password is PermissionDenied at once, not retried."""

from __future__ import annotations

import time

import pytest

import mqkit
from contract_tests.brokers import env_url


def test_wrong_password_is_permission_denied_quickly() -> None:
    url = mqkit.URL.parse(env_url("rabbitmq"))
    wrong = "wrong-" + ("x" if url.password is None else url.password.reveal()) + "-pw"
    bad = f"amqp://{url.username or 'guest'}:{wrong}@{url.host}:{url.port}/%2F"
    started = time.monotonic()
    with pytest.raises(mqkit.PermissionDenied) as info:
        with mqkit.connect(bad) as client:
            client.admin.create_topic("mqkit-auth-probe")
    assert time.monotonic() - started < 5.0
    assert not isinstance(info.value, mqkit.Unavailable)
    assert wrong not in str(info.value)
    assert info.value.__cause__ is not None
