"""Fixtures for the Kafka adapter's tests: the broker URL, unique names, and the stand-ins
for kafka-python's clients that the unit tests drive the adapter with.

The URL is ``MQKIT_TEST_KAFKA_URL`` (``eval "$(scripts/brokers env)"``); without it the
broker tests are skipped, except when ``MQKIT_REQUIRE_BACKENDS`` names kafka: then they fail.

The stand-ins are defined here once and handed out by fixtures (``admin_client``,
``admin``, ``consumers``); a test names their classes in annotations only, imported under
``TYPE_CHECKING`` (``from conftest import FakeAdminClient``): at run time pytest finds
this module, no test imports it.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from mqkit_kafka._admin import Admin
from mqkit_kafka._names import Names
from mqkit_kafka._options import KafkaOptions

from contract_tests.brokers import env_url
from mqkit.driver import parse_options


@pytest.fixture
def url() -> str:
    return env_url("kafka")


@pytest.fixture
def name() -> str:
    return f"kt-{uuid.uuid4().hex[:10]}"


# -- stand-ins for kafka-python's clients ---------------------------------------------------

class FakeAdminClient:
    """A ``KafkaAdminClient`` stand-in: every call (any method name) counts in ``calls``.

    With ``error`` set, every call raises it. Otherwise ``describe_topics`` reports two
    partitions for each topic asked about, each with a leader (``leader_id`` 1) from the
    ``leader_after``-th call on and without one (-1) before; any other call returns
    ``None``.
    """

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.leader_after = 1
        self.calls = 0

    def _called(self) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error

    def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]:
        self._called()
        leader = 1 if self.calls >= self.leader_after else -1
        return [{"name": t, "error_code": 0, "partitions": [
            {"partition_index": i, "error_code": 0, "leader_id": leader} for i in (0, 1)]}
            for t in topics]

    def __getattr__(self, name: str) -> Any:
        def call(*args: object, **kwargs: object) -> None:
            self._called()
        return call


class FakeConsumer:
    """A ``KafkaConsumer`` stand-in that joined its group (the coordinator's state is
    ``state``, as ``mqkit_kafka._net.group_state`` reads it) with no partition at all;
    ``closed`` once closed."""

    def __init__(self, state: str) -> None:
        self._coordinator = type("Coordinator", (), {"state": state})()
        self.closed = False
        self._paused: set[object] = set()
        self.up = True  # whether its one broker is connected (see _client)
        broker = type("Broker", (), {"node_id": 1})()
        cluster = type("Cluster", (), {"brokers": staticmethod(lambda: [broker])})()
        self._client = type("Client", (), {
            "cluster": cluster, "connected": lambda _c, node: self.up})()
        self.seeks: list[tuple[object, int]] = []

    def subscribe(self, topics: list[str], listener: object) -> None:
        pass

    def pause(self, *partitions: object) -> None:
        self._paused.update(partitions)

    def resume(self, *partitions: object) -> None:
        self._paused.difference_update(partitions)

    def paused(self) -> set[object]:
        return set(self._paused)

    def commit(self, offsets: object = None) -> None:
        pass

    def seek(self, partition: object, offset: int) -> None:
        self.seeks.append((partition, offset))

    def assignment(self) -> set[object]:
        return set()

    def close(self, autocommit: bool = True) -> None:
        self.closed = True


class FakeConsumers:
    """A subscription's ``make_consumer``: each call makes a :class:`FakeConsumer` in
    ``state`` and keeps it in ``made``, oldest first."""

    def __init__(self) -> None:
        self.state = "<stable>"
        self.made: list[FakeConsumer] = []

    def __call__(self) -> FakeConsumer:
        self.made.append(FakeConsumer(self.state))
        return self.made[-1]


@pytest.fixture
def admin_client() -> FakeAdminClient:
    """A fresh :class:`FakeAdminClient` (set ``error`` or ``leader_after`` on it)."""
    return FakeAdminClient()


@pytest.fixture
def admin(admin_client: FakeAdminClient) -> Admin:
    """The adapter's :class:`Admin` over ``admin_client``, default options, 5 s timeout."""
    options = parse_options(KafkaOptions, {})
    names = Names(options.group_format, options.retry_prefix)
    return Admin(admin_client, names, options, connect_timeout=5.0)


@pytest.fixture
def consumers() -> FakeConsumers:
    """A fresh :class:`FakeConsumers` factory (set ``state`` before the first call)."""
    return FakeConsumers()
