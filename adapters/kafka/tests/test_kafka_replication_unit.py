"""Topic options for clusters: ``replication`` and ``min_insync_replicas`` reach the
broker's CreateTopics request (replication factor, ``min.insync.replicas``); bad values
are ConfigurationError naming the option."""

from __future__ import annotations

from typing import Any

import pytest
from mqkit_kafka._admin import Admin
from mqkit_kafka._driver import client_config
from mqkit_kafka._names import Names
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
