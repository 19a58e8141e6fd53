"""botocore at DEBUG logs every request's headers and canonical request: neither the
session token nor the secret key may show, whether mqkit or the environment gave them."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.secret_logs import assert_absent, assert_hidden, round_trip_at_debug

KEY = "ZQsk01/ZQsk02+é"
TOKEN = "ZQst01/ZQst02+ZQst03=="


def _without_credentials(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


def test_session_token_and_key_never_in_botocore_logs(url: str) -> None:
    scheme, _, host = _without_credentials(url).partition("://")
    given = f"{scheme}://AKIDTEST:{quote(KEY, safe='')}@{host}&session_token={quote(TOKEN)}"
    logs, error = round_trip_at_debug(given)
    assert error is None, error
    assert any("x-amz-security-token:***" in line for line in logs.lines)
    for secret in (KEY, TOKEN):
        assert_hidden(logs.lines, secret)
        assert_absent(logs.lines, secret)


def test_credentials_from_the_environment_never_in_botocore_logs(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env_token = "ZQev01ZQev02/ZQev03+ZQev04=="
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ZQek01ZQek02")
    monkeypatch.setenv("AWS_SESSION_TOKEN", env_token)
    logs, error = round_trip_at_debug(_without_credentials(url))
    assert error is None, error
    assert any("X-Amz-Security-Token': ***" in line for line in logs.lines)
    assert_hidden(logs.lines, env_token)
    assert_hidden(logs.lines, "ZQek01ZQek02")
