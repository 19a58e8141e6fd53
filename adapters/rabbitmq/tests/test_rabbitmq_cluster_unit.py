"""RabbitMQ options for clusters, without a broker: several hosts become pika's list of
connection parameters (tried in order), and ``quorum_size`` becomes the group queue's
``x-quorum-initial-group-size``; a publisher nack (a quorum queue changing leader) is
``Unavailable`` on a fresh channel."""

from __future__ import annotations

import pytest
from mqkit_rabbitmq._admin import group_arguments
from mqkit_rabbitmq._driver import connection_parameters
from mqkit_rabbitmq._names import Names
from mqkit_rabbitmq._options import RabbitOptions
from mqkit_rabbitmq._producer import RabbitTopic

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


class _FakeLink:
    """The part of ``Link`` a topic's confirm wait uses."""

    def __init__(self) -> None:
        self.setup: object = None
        self.channel_resets = 0

    def reset_channel(self) -> None:
        self.channel_resets += 1

    def reset(self) -> None:
        raise AssertionError("a nack is not a connection failure")


class _FakeChannel:
    class connection:  # pika's attribute name
        @staticmethod
        def process_data_events(time_limit: float = 0) -> None:
            return None


def _nacked_wait(nacked: set[int], count: int) -> tuple[BaseException, _FakeLink]:
    link = _FakeLink()
    topic = RabbitTopic(link, Names("", "{topic}.{group}"), "t",  # type: ignore[arg-type]
                        persistent=True, confirm=True, send_timeout=1.0)
    topic._confirms.next_tag = count + 1
    topic._confirms.nacked = set(nacked)
    with pytest.raises(mqkit.MQError) as info:
        topic._wait(_FakeChannel(), 1, count)
    return info.value, link


def test_a_batch_nacked_whole_is_unavailable_on_a_fresh_channel() -> None:
    """A quorum queue nacks while its leader changes: the portable layer resends the
    batch (nothing of it was stored) on a new channel."""
    error, link = _nacked_wait({1, 2}, 2)
    assert isinstance(error, mqkit.Unavailable) and "nacked" in str(error)
    assert link.channel_resets == 1


def test_a_batch_nacked_in_part_names_the_nacked_ones() -> None:
    error, link = _nacked_wait({2}, 2)
    assert isinstance(error, mqkit.SendBatchError)
    assert set(error.failures) == {1}
    assert isinstance(error.failures[1], mqkit.Unavailable)
    assert link.channel_resets == 1
