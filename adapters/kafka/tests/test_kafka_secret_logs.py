"""kafka-python at DEBUG logs its whole configuration: the SASL password must not show."""

from __future__ import annotations

from mqkit import PermissionDenied, Unavailable
from tests.secret_logs import (
    assert_absent,
    assert_hidden,
    auth_url,
    password_of,
    round_trip_at_debug,
    with_password,
)

WRONG = "ZQkfk1/ZQkfk2 é?#'\"\\"


def _configuration(lines: list[str]) -> str:
    found = [line for line in lines if "with configuration" in line]
    assert found, lines[:5]
    return found[0]


def test_sasl_password_never_in_kafka_python_logs() -> None:
    url = auth_url("kafka")
    logs, error = round_trip_at_debug(url)
    assert error is None, error
    assert "'sasl_plain_password': ***" in _configuration(logs.lines)
    assert any(name.startswith("kafka.") for name in logs.names)
    assert_absent(logs.lines, password_of(url))


def test_refused_sasl_password_never_in_kafka_python_logs() -> None:
    logs, error = round_trip_at_debug(with_password(auth_url("kafka"), WRONG))
    assert isinstance(error, (PermissionDenied, Unavailable)), error
    assert "'sasl_plain_password': ***" in _configuration(logs.lines)
    assert_hidden(logs.lines, WRONG)
    assert_absent(logs.lines, WRONG)


def test_sasl_password_to_a_plaintext_listener_never_in_logs(url: str) -> None:
    logs, error = round_trip_at_debug(with_password(url, WRONG))
    assert error is not None
    assert "'sasl_plain_password': ***" in _configuration(logs.lines)
    assert_hidden(logs.lines, WRONG)
