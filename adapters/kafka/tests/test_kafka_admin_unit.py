"""The Kafka admin tries every call once (the SPI's "a driver does not retry").

A transient failure (kafka-python's ``RetriableError``, a socket error) leaves at once as
:class:`mqkit.Unavailable`, its cause kept, for the portable layer to wait out; anything
no retry cures is not an ``Unavailable``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import kafka.errors as ke
import pytest
from mqkit_kafka._admin import Admin
from mqkit_kafka._errors import map_error

from mqkit.driver import ConfigurationError, Unavailable

if TYPE_CHECKING:
    from conftest import FakeAdminClient


@pytest.mark.parametrize("error", [ke.CoordinatorNotAvailableError(),
                                   ke.CoordinatorLoadInProgressError(),
                                   ke.NodeNotReadyError(), ke.KafkaConnectionError(),
                                   ConnectionRefusedError(111, "refused")])
def test_a_transient_failure_is_unavailable_at_once(
        error: BaseException, admin: Admin, admin_client: FakeAdminClient) -> None:
    admin_client.error = error
    start = time.monotonic()
    with pytest.raises(Unavailable) as info:
        admin.list_topics()
    assert admin_client.calls == 1 and time.monotonic() - start < 1.0
    assert info.value.__cause__ is error
    assert "list topics" in str(info.value)


def test_a_mechanism_the_broker_does_not_enable_is_not_retryable() -> None:
    error = map_error(ke.UnsupportedSaslMechanismError("SCRAM-SHA-512"), "connect")
    assert isinstance(error, ConfigurationError) and not isinstance(error, Unavailable)


@pytest.mark.parametrize("after, timeout, expected", [(3, 5.0, True), (10**6, 0.3, False)])
def test_await_leaders_waits_for_every_partition_to_have_a_leader(
        after: int, timeout: float, expected: bool, admin: Admin,
        admin_client: FakeAdminClient) -> None:
    """Opening a subscription waits for this before the consumer joins (a member joining
    while a new topic has no leader gets none of its partitions)."""
    admin_client.leader_after = after
    start = time.monotonic()
    assert admin.await_leaders(["t", "mqkit.retry.t.g"], timeout) is expected
    if expected:
        assert admin_client.calls == 3 and time.monotonic() - start < 1.0
    else:
        assert admin_client.calls > 2 and 0.25 <= time.monotonic() - start < 1.5


def test_delete_topic_waits_until_the_metadata_drops_the_topic(
        admin: Admin, monkeypatch: pytest.MonkeyPatch) -> None:
    """The controller takes a deletion before the metadata forgets the topic: the wait
    asks until it is gone (bounded), so topic_exists right after says no."""
    shown = iter([["p0"], ["p0"], None])
    asked: list[str] = []

    def partitions(topic: str) -> object:
        asked.append(topic)
        return next(shown)

    monkeypatch.setattr(admin, "_partitions", partitions)
    assert admin._await_gone("t", 5.0) is True
    assert asked == ["t", "t", "t"]
    monkeypatch.setattr(admin, "_partitions", lambda topic: ["p0"])
    start = time.monotonic()
    assert admin._await_gone("t", 0.2) is False  # bounded: never forever
    assert time.monotonic() - start < 2.0

    def down(topic: str) -> object:
        raise Unavailable("broker gone")

    monkeypatch.setattr(admin, "_partitions", down)
    assert admin._await_gone("t", 5.0) is False  # the deletion was taken: no error
