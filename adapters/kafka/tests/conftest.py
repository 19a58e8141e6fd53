"""Fixtures for the Kafka adapter's tests: the broker URL and unique names.

The URL is ``MQKIT_TEST_KAFKA_URL`` (``eval "$(scripts/brokers env)"``); without it the
broker tests are skipped, except when ``MQKIT_REQUIRE_BACKENDS`` names kafka: then they fail.
"""

from __future__ import annotations

import uuid

import pytest

from contract_tests.brokers import env_url


@pytest.fixture
def url() -> str:
    return env_url("kafka")


@pytest.fixture
def name() -> str:
    return f"kt-{uuid.uuid4().hex[:10]}"
