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
