"""Fixtures for the SQS adapter's tests: the broker URL and unique names.

The URL is ``MQKIT_TEST_SQS_URL`` (``eval "$(scripts/brokers env)"``); without it the
broker tests are skipped, except when ``MQKIT_REQUIRE_BACKENDS`` names sqs: then they fail.
"""

from __future__ import annotations

import uuid

import pytest

from contract_tests.brokers import env_url


@pytest.fixture
def url() -> str:
    return env_url("sqs")


@pytest.fixture
def name() -> str:
    return f"st-{uuid.uuid4().hex[:10]}"
