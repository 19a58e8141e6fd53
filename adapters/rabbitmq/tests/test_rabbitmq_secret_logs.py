"""The pika client at DEBUG: the password must not show in any log record."""

from __future__ import annotations

from mqkit import PermissionDenied
from tests.secret_logs import (
    assert_absent,
    assert_hidden,
    auth_url,
    round_trip_at_debug,
    with_password,
)

WRONG = "ZQrab1/ZQrab2 é?#'\"\\"


def test_refused_password_never_in_pika_logs() -> None:
    logs, error = round_trip_at_debug(with_password(auth_url("rabbitmq"), WRONG))
    assert isinstance(error, PermissionDenied), error
    assert logs.lines  # at least the failure, logged with its traceback
    assert_hidden(logs.lines, WRONG)
    assert_absent(logs.lines, WRONG)
