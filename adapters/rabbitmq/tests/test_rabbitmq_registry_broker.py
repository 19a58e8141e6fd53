"""The registry's snapshot against a real broker (``MQKIT_TEST_RABBITMQ_URL``).

A reader starts from the newest snapshot only when the registry entry at the snapshot's
offset is the snapshot's own marker; any other snapshot (another stream's, garbage) costs
a full replay and changes no answer. Skipped without a broker, except when
``MQKIT_REQUIRE_BACKENDS`` names rabbitmq: then a missing URL fails.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pika
import pytest
from mqkit_rabbitmq import _registry
from mqkit_rabbitmq._names import SNAPSHOT_QUEUE, Names

import mqkit
from contract_tests.brokers import env_url


@pytest.fixture
def url() -> str:
    return env_url("rabbitmq")


@pytest.fixture
def channel(url: str) -> Iterator[Any]:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        yield conn.channel()
    finally:
        conn.close()


def _newest_snapshot(channel: Any) -> dict[str, Any]:
    method, _, body = channel.basic_get(SNAPSHOT_QUEUE, auto_ack=False)
    assert method is not None, "no snapshot was written"
    channel.basic_reject(method.delivery_tag, requeue=True)
    data: dict[str, Any] = json.loads(body)
    return data


def _publish_snapshot(channel: Any, body: bytes) -> None:
    channel.confirm_delivery()
    channel.basic_publish("", SNAPSHOT_QUEUE, body, pika.BasicProperties(delivery_mode=2))


def test_a_reader_trusts_a_snapshot_only_at_its_own_marker(
        url: str, channel: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    topic = f"rt-{uuid.uuid4().hex[:10]}"
    monkeypatch.setattr(_registry, "SNAPSHOT_EVERY", 1)  # every read writes one
    client = mqkit.connect(url)
    try:
        client.admin.create_topic(topic)
        client.admin.create_group(topic, "g")
        assert client.admin.list_groups(topic) == ["g"]
        snapshot = _newest_snapshot(channel)
        assert [topic, "g"] in snapshot["groups"] and topic in snapshot["topics"]
        assert isinstance(snapshot["offset"], int) and snapshot["marker"]

        # A queue named like a group of the topic, which the registry never recorded:
        # only a snapshot listing it can make list_groups show it.
        channel.queue_declare(Names().queue(topic, "ghost"), durable=True)
        monkeypatch.setattr(_registry, "SNAPSHOT_EVERY", 10**9)  # keep the forged ones
        forged = {**snapshot, "groups": [*snapshot["groups"], [topic, "ghost"]]}

        _publish_snapshot(channel, json.dumps({**forged, "marker": "not-the-marker"}).encode())
        assert client.admin.list_groups(topic) == ["g"]  # replayed from the start

        _publish_snapshot(channel, b"\xffnot json")
        assert client.admin.list_groups(topic) == ["g"]

        _publish_snapshot(channel, json.dumps(forged).encode())
        assert client.admin.list_groups(topic) == ["g", "ghost"]  # started at the snapshot

        # entries after the snapshot still apply on top of it
        client.admin.delete_group(topic, "g")
        assert client.admin.list_groups(topic) == ["ghost"]
    finally:
        channel.queue_delete(Names().queue(topic, "ghost"))
        client.admin.delete_topic(topic)  # (its registry entry drops the forged pair)
        client.close()


def test_a_reader_replays_only_what_follows_the_snapshot(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """However long the registry, a listing after a snapshot reads only the entries
    recorded since (a full replay would read every entry ever recorded)."""
    reads: list[int] = []
    replay = _registry._replay

    def counted(*args: Any) -> Any:
        state = replay(*args)
        if state is not None:
            reads.append(state.read)
        return state

    monkeypatch.setattr(_registry, "_replay", counted)
    conn = pika.BlockingConnection(pika.URLParameters(url))
    client = mqkit.connect(url)
    try:
        for n in range(_registry.SNAPSHOT_EVERY):  # two entries each: a long history
            _registry.record(conn, "create", f"rt-gone-{n}")
            _registry.record(conn, "delete", f"rt-gone-{n}")
        client.admin.list_topics()
        assert reads[-1] > _registry.SNAPSHOT_EVERY  # (at least these entries: a snapshot)
        client.admin.list_topics()
        assert reads[-1] < 20, f"replayed {reads[-1]} entries after a snapshot"
    finally:
        client.close()
        conn.close()
