"""RabbitMQ: refused logins and ACCESS_REFUSED map to PermissionDenied (never retried)."""

from __future__ import annotations

import pika.exceptions as pe
import pytest
from mqkit_rabbitmq._errors import map_error, mapped

import mqkit


@pytest.mark.parametrize("exc", [
    pe.AuthenticationError("PLAIN"),
    pe.ProbableAuthenticationError("auth"),
    pe.ProbableAccessDeniedError("vhost"),
    pe.ConnectionClosedByBroker(403, "ACCESS_REFUSED - Login was refused"),
    pe.ChannelClosedByBroker(403, "ACCESS_REFUSED - access to queue q refused"),
])
def test_auth_errors_are_permission_denied(exc: Exception) -> None:
    err = map_error(exc, "connect")
    assert type(err) is mqkit.PermissionDenied
    assert not isinstance(err, mqkit.Unavailable)
    assert str(err).startswith("rabbitmq: connect: ")


def test_cause_kept_and_other_codes_unchanged() -> None:
    native = pe.ConnectionClosedByBroker(320, "CONNECTION_FORCED")
    with pytest.raises(mqkit.Unavailable) as info, mapped("receive"):
        raise native
    assert info.value.__cause__ is native
    assert str(info.value) == "rabbitmq: receive: 320 CONNECTION_FORCED"
