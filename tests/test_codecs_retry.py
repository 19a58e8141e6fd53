"""Codecs and retry decisions (sans-I/O)."""

from __future__ import annotations

import random

import pytest

import mqkit
from mqkit import JSON, RAW, TEXT, ConfigurationError, InvalidMessage, PermanentFailure, RetryPolicy
from mqkit._retry import Action, decide, failure_reason


def test_json_round_trip_and_content_type() -> None:
    body = JSON.encode({"id": 1, "name": "zoë"})
    assert body == '{"id":1,"name":"zoë"}'.encode()
    assert JSON.decode(body) == {"id": 1, "name": "zoë"}
    assert mqkit.codec_for("application/json; charset=utf-8") is JSON
    assert mqkit.codec_for(None) is RAW
    assert mqkit.codec_for("application/x-unknown") is RAW


def test_codec_type_errors_are_typed() -> None:
    with pytest.raises(InvalidMessage, match="raw codec sends bytes"):
        RAW.encode("text")
    with pytest.raises(InvalidMessage, match="JSON-serialisable"):
        JSON.encode({1, 2})
    with pytest.raises(InvalidMessage, match="not valid JSON"):
        JSON.decode(b"{nope")
    assert TEXT.decode(TEXT.encode("héllo")) == "héllo"


def test_backoff_grows_exponentially_and_caps() -> None:
    policy = RetryPolicy(initial_backoff=1.0, multiplier=2.0, max_backoff=5.0, jitter=0.0)
    assert [policy.backoff(n) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_backoff_jitter_stays_in_band() -> None:
    policy = RetryPolicy(initial_backoff=1.0, multiplier=2.0, max_backoff=100.0, jitter=0.2)
    rng = random.Random(7)
    values = [policy.backoff(3, rng) for _ in range(200)]
    assert all(3.2 <= v <= 4.8 for v in values)
    assert len(set(values)) > 100  # jitter really varies


def test_decide() -> None:
    policy = RetryPolicy(max_attempts=3)
    boom = RuntimeError("boom")
    assert decide(policy, None, 1) is Action.ACK
    assert decide(policy, boom, 1) is Action.RETRY
    assert decide(policy, boom, 2) is Action.RETRY
    assert decide(policy, boom, 3) is Action.DEAD_LETTER
    assert decide(policy, PermanentFailure("bad"), 1) is Action.DEAD_LETTER
    no_dlq = RetryPolicy(max_attempts=1, dead_letter=False)
    assert decide(no_dlq, boom, 1) is Action.REJECT


def test_policy_validation() -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ConfigurationError):
        RetryPolicy(jitter=2)


def test_failure_reason_is_one_bounded_line() -> None:
    reason = failure_reason(ValueError("line1\nline2" + "x" * 1000))
    assert "\n" not in reason and len(reason) == 512 and reason.startswith("ValueError: line1")
