"""The Kafka admin tries every call once (the SPI's "a driver does not retry").

A transient failure (kafka-python's ``RetriableError``, a socket error) leaves at once as
:class:`mqkit.Unavailable`, its cause kept, for the portable layer to wait out; anything
no retry cures is not an ``Unavailable``.
"""

from __future__ import annotations

import time
from typing import Any

import kafka.errors as ke
import pytest
from mqkit_kafka._admin import Admin
from mqkit_kafka._errors import map_error
from mqkit_kafka._names import Names
from mqkit_kafka._options import KafkaOptions

from mqkit.driver import ConfigurationError, Unavailable, parse_options


class _Failing:
    """A KafkaAdminClient stand-in whose every call raises ``error`` (and counts)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        def call(*args: object, **kwargs: object) -> None:
            self.calls += 1
            raise self.error
        return call


@pytest.mark.parametrize("error", [ke.CoordinatorNotAvailableError(),
                                   ke.CoordinatorLoadInProgressError(),
                                   ke.NodeNotReadyError(), ke.KafkaConnectionError(),
                                   ConnectionRefusedError(111, "refused")])
def test_a_transient_failure_is_unavailable_at_once(error: BaseException) -> None:
    options = parse_options(KafkaOptions, {})
    native = _Failing(error)
    names = Names(options.group_format, options.retry_prefix)
    admin = Admin(native, names, options, connect_timeout=5.0)
    start = time.monotonic()
    with pytest.raises(Unavailable) as info:
        admin.list_topics()
    assert native.calls == 1 and time.monotonic() - start < 1.0
    assert info.value.__cause__ is error
    assert "list topics" in str(info.value)


def test_a_mechanism_the_broker_does_not_enable_is_not_retryable() -> None:
    error = map_error(ke.UnsupportedSaslMechanismError("SCRAM-SHA-512"), "connect")
    assert isinstance(error, ConfigurationError) and not isinstance(error, Unavailable)


class _LeaderlessAtFirst:
    """A KafkaAdminClient stand-in whose topics get a leader on the ``after``-th ask."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.asks = 0

    def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]:
        self.asks += 1
        leader = 1 if self.asks >= self.after else -1
        return [{"name": t, "error_code": 0, "partitions": [
            {"partition_index": i, "error_code": 0, "leader_id": leader} for i in (0, 1)]}
            for t in topics]


@pytest.mark.parametrize("after, timeout, expected", [(3, 5.0, True), (10**6, 0.3, False)])
def test_await_leaders_waits_for_every_partition_to_have_a_leader(
        after: int, timeout: float, expected: bool) -> None:
    """Opening a subscription waits for this before the consumer joins (a member joining
    while a new topic has no leader gets none of its partitions)."""
    options = parse_options(KafkaOptions, {})
    native = _LeaderlessAtFirst(after)
    admin = Admin(native, Names(options.group_format, options.retry_prefix), options,
                  connect_timeout=5.0)
    start = time.monotonic()
    assert admin.await_leaders(["t", "mqkit.retry.t.g"], timeout) is expected
    if expected:
        assert native.asks == 3 and time.monotonic() - start < 1.0
    else:
        assert native.asks > 2 and 0.25 <= time.monotonic() - start < 1.5
