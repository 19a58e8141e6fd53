"""Fixtures for the NATS adapter's tests.

Registers the adapter in-process (so the tests run before the ``nats`` entry point is
installed) and gives the broker URL: skipped without ``MQKIT_TEST_NATS_URL``, except
when ``MQKIT_REQUIRE_BACKENDS`` names nats, where a missing URL fails.
"""

from __future__ import annotations

import os
import uuid

import pytest
from mqkit_nats import plugin

from mqkit._registry import register

register(plugin)


def nats_url() -> str:
    url = os.environ.get("MQKIT_TEST_NATS_URL")
    required = {b.strip() for b in os.environ.get("MQKIT_REQUIRE_BACKENDS", "").split(",")}
    if not url:
        if "nats" in required or "all" in required:
            pytest.fail("MQKIT_REQUIRE_BACKENDS names nats but MQKIT_TEST_NATS_URL is not set")
        pytest.skip("no NATS: set MQKIT_TEST_NATS_URL (scripts/brokers env)")
    return url


@pytest.fixture
def url() -> str:
    return nats_url()


@pytest.fixture
def name() -> str:
    return f"nt-{uuid.uuid4().hex[:10]}"
