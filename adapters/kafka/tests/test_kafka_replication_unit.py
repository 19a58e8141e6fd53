"""Topic options for clusters: ``replication`` and ``min_insync_replicas`` reach the
broker's CreateTopics request (replication factor, ``min.insync.replicas``); bad values
are ConfigurationError naming the option."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import kafka.errors as ke
import pytest
from kafka.net.manager import KafkaConnectionManager
from mqkit_kafka._admin import Admin
from mqkit_kafka._driver import client_config
from mqkit_kafka._names import Names
from mqkit_kafka._net import known_everywhere
from mqkit_kafka._options import KafkaOptions

from mqkit.driver import URL, ConfigurationError, ConnectParams, parse_options


class RecordingAdminClient:
    """A ``KafkaAdminClient`` stand-in that records CreateTopics; a topic exists (one
    partition, led by broker 1) once created."""

    def __init__(self) -> None:
        self.created: dict[str, dict[str, Any]] = {}

    def describe_topics(self, topics: list[str]) -> list[dict[str, Any]]:
        return [{"name": t, "error_code": 0, "partitions": [
                    {"partition_index": 0, "error_code": 0, "leader_id": 1}]}
                if t in self.created else {"name": t, "error_code": 3, "partitions": []}
                for t in topics]

    def describe_cluster(self) -> dict[str, Any]:
        return {"brokers": []}  # no broker to ask one by one: known_everywhere is True

    def create_topics(self, specs: dict[str, dict[str, Any]],
                      wait_for_metadata: bool = False) -> None:
        self.created.update(specs)


def _admin(**options: object) -> tuple[Admin, RecordingAdminClient]:
    native = RecordingAdminClient()
    opts = parse_options(KafkaOptions, options)
    return Admin(native, Names(opts.group_format, opts.retry_prefix), opts, 5.0), native


def test_replication_and_min_insync_are_topic_options() -> None:
    admin, native = _admin()
    admin.create_topic("t", {"replication": 3, "min_insync_replicas": 2})
    assert native.created["t"] == {"num_partitions": 3, "replication_factor": 3,
                                   "configs": {"min.insync.replicas": "2"}}


def test_without_them_the_broker_defaults_apply() -> None:
    admin, native = _admin()
    admin.create_topic("t", {})
    assert native.created["t"] == {"num_partitions": 3, "replication_factor": -1}


def test_connection_options_are_the_defaults_and_configs_merge() -> None:
    admin, native = _admin(replication="3", min_insync_replicas="2")
    admin.create_topic("t", {"configs": {"retention.ms": 1000}})
    assert native.created["t"] == {"num_partitions": 3, "replication_factor": 3, "configs": {
        "retention.ms": "1000", "min.insync.replicas": "2"}}


@pytest.mark.parametrize("options, named", [
    ({"replication": 2, "min_insync_replicas": 3}, "min_insync_replicas"),
    ({"min_insync_replicas": 0}, "min_insync_replicas"),
    ({"min_insync_replicas": "two"}, "min_insync_replicas"),
    ({"replication": 0}, "replication"),
    ({"replication": True}, "replication"),
    ({"partitions": 0}, "partitions"),
])
def test_bad_topic_options_are_named(options: dict[str, object], named: str) -> None:
    admin, native = _admin()
    with pytest.raises(ConfigurationError, match=named):
        admin.create_topic("t", options)
    assert native.created == {}


def test_bad_connection_options_are_named() -> None:
    with pytest.raises(ConfigurationError, match="min_insync_replicas"):
        parse_options(KafkaOptions, {"replication": "1", "min_insync_replicas": "2"})
    with pytest.raises(ConfigurationError, match="min_insync_replicas"):
        parse_options(KafkaOptions, {"min_insync_replicas": "0"})


def test_several_bootstrap_servers_and_acks_all() -> None:
    """A cluster URL names every node; sends wait for every in-sync replica."""
    params = ConnectParams(url=URL.parse("kafka://127.0.0.1:29091,127.0.0.1:29092,"
                                         "127.0.0.1:29093"), options={}, connect_timeout=5.0)
    opts = parse_options(KafkaOptions, {})
    assert client_config(params, opts)["bootstrap_servers"] == [
        "127.0.0.1:29091", "127.0.0.1:29092", "127.0.0.1:29093"]
    assert (opts.acks, opts.idempotence) == ("all", True)


class _Response:
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def to_dict(self) -> dict[str, Any]:
        return self._data


class _Manager:
    """A connection manager stand-in: each broker id answers Metadata from ``views``
    (a topic it knows has one partition led by broker 1); a broker in ``down`` fails."""

    def __init__(self, views: dict[int, set[str]], down: set[int]) -> None:
        self.views = views
        self.down = down
        self.asked: list[int] = []

    async def send(self, request: Any, node_id: int, request_timeout_ms: int) -> _Response:
        self.asked.append(node_id)
        if node_id in self.down:
            raise ke.KafkaConnectionError(f"broker {node_id} is down")
        names = [t.name for t in request.topics]
        return _Response({"topics": [
            {"name": n, "error_code": 0,
             "partitions": [{"partition_index": 0, "error_code": 0, "leader_id": 1}]}
            if n in self.views[node_id] else {"name": n, "error_code": 3, "partitions": []}
            for n in names]})

    def run(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> Any:
        return asyncio.run(fn(*args))


class _ClusterAdmin:
    def __init__(self, manager: _Manager) -> None:
        self._manager = manager

    def describe_cluster(self) -> dict[str, Any]:
        return {"brokers": [{"broker_id": b} for b in self._manager.views]}


def test_a_new_topic_is_waited_for_on_every_broker() -> None:
    """Right after CreateTopics a broker that has not caught up says the topic does not
    exist; create_topic returns once every reachable broker knows it."""
    manager = _Manager({1: {"t"}, 2: set(), 3: {"t"}}, down=set())
    assert known_everywhere(_ClusterAdmin(manager), ["t"]) is False
    manager.views[2].add("t")
    assert known_everywhere(_ClusterAdmin(manager), ["t"]) is True
    assert sorted(set(manager.asked)) == [1, 2, 3]


def test_a_broker_that_does_not_answer_is_not_waited_for() -> None:
    manager = _Manager({1: {"t"}, 2: set(), 3: {"t"}}, down={2})
    assert known_everywhere(_ClusterAdmin(manager), ["t"]) is True


def test_the_private_api_it_uses_is_there() -> None:
    """known_everywhere sends through an admin client's ``_manager`` (mqkit_kafka._net)."""
    for name in ("send", "run"):
        assert callable(getattr(KafkaConnectionManager, name)), name
