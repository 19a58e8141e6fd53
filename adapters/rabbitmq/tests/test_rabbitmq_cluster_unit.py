"""RabbitMQ options for clusters, without a broker: several hosts become pika's list of
connection parameters (tried in order), and ``quorum_size`` becomes the group queue's
``x-quorum-initial-group-size``."""

from __future__ import annotations

import pytest
from mqkit_rabbitmq._admin import group_arguments
from mqkit_rabbitmq._driver import connection_parameters
from mqkit_rabbitmq._options import RabbitOptions

import mqkit
from mqkit.driver import URL, ConnectParams, parse_options


def test_every_host_of_the_url_is_a_connection_parameter_in_order() -> None:
    url = "amqp://u:secret@127.0.0.1:26671,127.0.0.1:26672,node3/v%2Fh"
    params = ConnectParams(url=URL.parse(url), options={}, connect_timeout=3.0)
    out = connection_parameters(params, parse_options(RabbitOptions, {}))
    assert [(p.host, p.port) for p in out] == [
        ("127.0.0.1", 26671), ("127.0.0.1", 26672), ("node3", 5672)]
    assert {p.virtual_host for p in out} == {"v/h"}
    assert all(p.connection_attempts == 1 for p in out)  # the next host at once


def test_quorum_queues_by_default_and_their_size() -> None:
    assert group_arguments(parse_options(RabbitOptions, {})) == {"x-queue-type": "quorum"}
    sized = parse_options(RabbitOptions, {"quorum_size": "3"})
    assert group_arguments(sized) == {"x-queue-type": "quorum",
                                      "x-quorum-initial-group-size": 3}


@pytest.mark.parametrize("options", [{"quorum_size": "0"},
                                     {"quorum_size": "3", "queue_type": "classic"},
                                     {"quorum_size": "three"}])
def test_a_bad_quorum_size_is_named(options: dict[str, object]) -> None:
    with pytest.raises(mqkit.ConfigurationError, match="quorum_size"):
        parse_options(RabbitOptions, options)
