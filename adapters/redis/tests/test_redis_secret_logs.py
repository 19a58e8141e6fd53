"""The redis client at DEBUG: the password must not show in any log record."""

from __future__ import annotations

from mqkit import PermissionDenied
from tests.secret_logs import (
    assert_absent,
    assert_hidden,
    auth_url,
    password_of,
    round_trip_at_debug,
    with_password,
)

WRONG = "ZQred1/ZQred2 é?#'\"\\"


def test_password_never_in_redis_logs() -> None:
    url = auth_url("redis")
    logs, error = round_trip_at_debug(url)
    assert error is None, error
    assert_absent(logs.lines, password_of(url))


def test_refused_password_never_in_redis_logs() -> None:
    logs, error = round_trip_at_debug(with_password(auth_url("redis"), WRONG))
    assert isinstance(error, PermissionDenied), error
    assert logs.lines  # at least the failure, logged with its traceback
    assert_hidden(logs.lines, WRONG)
    assert_absent(logs.lines, WRONG)
