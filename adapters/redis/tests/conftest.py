"""Fixtures for the Redis adapter's tests: the broker URL, a Redis Cluster, unique names.

The URL is ``MQKIT_TEST_REDIS_URL`` (``eval "$(scripts/brokers env)"``); without it the
broker tests are skipped, except when ``MQKIT_REQUIRE_BACKENDS`` names redis: then they fail.

The cluster (``redis_cluster``: three primaries, ``fault_tests.clusters.redis_cluster``,
started once per session on ports 23570-23572, or from
``$MQKIT_CLUSTERS_REDIS_CLUSTER_PORT``) runs when ``MQKIT_TEST_REDIS_CLUSTER`` is
set (``1``: start it here; a ``redis+cluster://`` URL: use that running cluster) or when
``MQKIT_REQUIRE_BACKENDS`` names redis (CI: started here, and a failure to start fails the
tests); otherwise its tests are skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract_tests.brokers import env_url, required_backends
from fault_tests.clusters.redis_cluster import RedisCluster


@pytest.fixture
def url() -> str:
    return env_url("redis")


@pytest.fixture
def name() -> str:
    return f"rd-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster | str]:
    """A running cluster: the topology started here, or the URL of
    ``MQKIT_TEST_REDIS_CLUSTER`` when it names one."""
    given = os.environ.get("MQKIT_TEST_REDIS_CLUSTER", "").strip()
    if given.startswith(("redis+cluster://", "rediss+cluster://")):
        yield given
        return
    if not given and "redis" not in required_backends():
        pytest.skip("no Redis Cluster: set MQKIT_TEST_REDIS_CLUSTER=1 to start one on "
                    "ports 23570-23572 (or to a redis+cluster:// URL)")
    home: Path = tmp_path_factory.mktemp("redis-cluster")
    topology = RedisCluster(home=home)  # $MQKIT_CLUSTERS_REDIS_CLUSTER_PORT, else 23570
    topology.install()
    try:
        topology.up(timeout=60)
        yield topology
    finally:
        topology.down()


@pytest.fixture
def cluster_url(redis_cluster: RedisCluster | str) -> str:
    return redis_cluster if isinstance(redis_cluster, str) else redis_cluster.url()
