"""Fixtures for the Redis adapter's tests.

Registers the adapter in-process (so the tests run before the ``redis`` entry point is
installed) and gives the broker URL: skipped without ``MQKIT_TEST_REDIS_URL``, except
when ``MQKIT_REQUIRE_BACKENDS`` names redis, where a missing URL fails.
"""

from __future__ import annotations

import os
import uuid

import pytest
from mqkit_redis import plugin

from mqkit._registry import register

register(plugin)


def redis_url() -> str:
    url = os.environ.get("MQKIT_TEST_REDIS_URL")
    required = {b.strip() for b in os.environ.get("MQKIT_REQUIRE_BACKENDS", "").split(",")}
    if not url:
        if "redis" in required or "all" in required:
            pytest.fail("MQKIT_REQUIRE_BACKENDS names redis but MQKIT_TEST_REDIS_URL is not set")
        pytest.skip("no Redis: set MQKIT_TEST_REDIS_URL (scripts/brokers env)")
    return url


@pytest.fixture
def url() -> str:
    return redis_url()


@pytest.fixture
def name() -> str:
    return f"rd-{uuid.uuid4().hex[:10]}"
