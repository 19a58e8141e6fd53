"""Redis: refused logins and ACL denials map to PermissionDenied (never retried)."""

from __future__ import annotations

import pytest
import redis.exceptions as re_
from mqkit_redis._errors import map_error, mapped

import mqkit


@pytest.mark.parametrize("exc", [
    re_.AuthenticationError("invalid username-password pair"),
    re_.AuthenticationWrongNumberOfArgsError("wrong number of arguments for 'auth'"),
    re_.NoPermissionError("this user has no permissions to run the 'xadd' command"),
    re_.ResponseError("WRONGPASS invalid username-password pair or user is disabled."),
    re_.ResponseError("NOPERM User u has no permissions to access the 'k' key"),
    re_.ResponseError("Command # 1 (XADD k * a b) of pipeline caused error: NOPERM no"),
    re_.ResponseError("NOAUTH Authentication required."),
])
def test_auth_errors_are_permission_denied(exc: Exception) -> None:
    err = map_error(exc, "send")
    assert type(err) is mqkit.PermissionDenied
    assert str(err).startswith("redis: send: ")


def test_cause_kept_and_other_replies_unchanged() -> None:
    native = re_.ResponseError("NOGROUP No such key")
    with pytest.raises(mqkit.NotFound) as info, mapped("receive"):
        raise native
    assert info.value.__cause__ is native
    assert type(map_error(re_.ConnectionError("down"), "x")) is mqkit.Unavailable
