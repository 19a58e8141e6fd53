"""NATS: refused logins and permissions violations map to PermissionDenied."""

from __future__ import annotations

import nats.errors as ne
import pytest
from mqkit_nats._errors import map_error, mapped

import mqkit


class _ServerError(ne.Error):
    """What nats-py builds from a server -ERR line it has no class for."""


@pytest.mark.parametrize("exc", [
    ne.AuthorizationError(),
    _ServerError("nats: 'Authorization Violation'"),
    _ServerError("nats: permissions violation for publish to \"orders\""),
])
def test_auth_errors_are_permission_denied(exc: Exception) -> None:
    err = map_error(exc, "connect")
    assert type(err) is mqkit.PermissionDenied
    assert str(err).startswith("nats: connect: ")


def test_cause_kept_and_others_unchanged() -> None:
    native = ne.NoServersError()
    with pytest.raises(mqkit.Unavailable) as info, mapped("connect"):
        raise native
    assert info.value.__cause__ is native
