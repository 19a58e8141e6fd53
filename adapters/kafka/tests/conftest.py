"""Fixtures for the Kafka adapter's tests.

Registers the adapter in-process (so the tests run before the ``kafka`` entry point is
installed) and gives the broker URL: skipped without ``MQKIT_TEST_KAFKA_URL``, except
when ``MQKIT_REQUIRE_BACKENDS`` names kafka, where a missing URL fails.
"""

from __future__ import annotations

import os
import uuid

import pytest
from mqkit_kafka import plugin

from mqkit._registry import register

register(plugin)


def kafka_url() -> str:
    url = os.environ.get("MQKIT_TEST_KAFKA_URL")
    required = {b.strip() for b in os.environ.get("MQKIT_REQUIRE_BACKENDS", "").split(",")}
    if not url:
        if "kafka" in required or "all" in required:
            pytest.fail("MQKIT_REQUIRE_BACKENDS names kafka but MQKIT_TEST_KAFKA_URL is not set")
        pytest.skip("no Kafka: set MQKIT_TEST_KAFKA_URL (scripts/brokers env)")
    return url


@pytest.fixture
def url() -> str:
    return kafka_url()


@pytest.fixture
def name() -> str:
    return f"kt-{uuid.uuid4().hex[:10]}"
