"""Kafka: SASL and authorization failures map to PermissionDenied (never retried)."""

from __future__ import annotations

import kafka.errors as ke
import pytest
from mqkit_kafka._errors import map_error, mapped

import mqkit


@pytest.mark.parametrize("cls", [
    ke.SaslAuthenticationFailedError,
    ke.AuthorizationError,
    ke.TopicAuthorizationFailedError,
    ke.GroupAuthorizationFailedError,
    ke.ClusterAuthorizationFailedError,
    ke.TransactionalIdAuthorizationFailedError,
])
def test_auth_errors_are_permission_denied(cls: type[Exception]) -> None:
    err = map_error(cls("refused"), "connect")
    assert type(err) is mqkit.PermissionDenied
    assert str(err).startswith("kafka: connect: ")


def test_cause_kept_and_connection_errors_unchanged() -> None:
    native = ke.KafkaConnectionError("down")
    with pytest.raises(mqkit.Unavailable) as info, mapped("send"):
        raise native
    assert info.value.__cause__ is native
