"""Fixtures for the SQS adapter's tests.

Registers the adapter in-process (so the tests run before the ``sqs`` entry point is
installed) and gives the broker URL: skipped without ``MQKIT_TEST_SQS_URL``, except
when ``MQKIT_REQUIRE_BACKENDS`` names sqs, where a missing URL fails.
"""

from __future__ import annotations

import os
import uuid

import pytest
from mqkit_sqs import plugin

from mqkit._registry import register

register(plugin)


def sqs_url() -> str:
    url = os.environ.get("MQKIT_TEST_SQS_URL")
    required = {b.strip() for b in os.environ.get("MQKIT_REQUIRE_BACKENDS", "").split(",")}
    if not url:
        if "sqs" in required or "all" in required:
            pytest.fail("MQKIT_REQUIRE_BACKENDS names sqs but MQKIT_TEST_SQS_URL is not set")
        pytest.skip("no SQS: set MQKIT_TEST_SQS_URL (scripts/brokers env)")
    return url


@pytest.fixture
def url() -> str:
    return sqs_url()


@pytest.fixture
def name() -> str:
    return f"st-{uuid.uuid4().hex[:10]}"
