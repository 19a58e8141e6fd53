"""redis+cluster:// against a real three-primary Redis Cluster (``conftest.redis_cluster``):
topics spread over every node, each topic's keys on one slot (``{topic}``), both faces
round trip with priority bands, delayed sends and nacks (multi-key scripts
and pipelines), admin verbs that scan every primary, a dead first seed, and a killed
node's topics coming back with it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
import redis.cluster
from mqkit_redis._cluster import slot

import mqkit
import mqkit.aio
from fault_tests.clusters.redis_cluster import RedisCluster
from tests.secret_logs import assert_absent, assert_hidden, round_trip_at_debug, with_password

DEAD_SEED = "127.0.0.1:23579"  # in the cluster tests' range; nothing listens there


def _topic() -> str:
    return f"rc-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client(cluster_url: str) -> Iterator[mqkit.Client]:
    with mqkit.connect(cluster_url, connect_timeout=10) as c:
        yield c


def _drain(consumer: mqkit.Consumer, want: int,
           seconds: float = 10.0) -> list[mqkit.ReceivedMessage]:
    got: list[mqkit.ReceivedMessage] = []
    deadline = time.monotonic() + seconds
    while len(got) < want and time.monotonic() < deadline:
        got += consumer.receive(max_messages=50, timeout=0.5)
    return got


def test_topics_spread_over_nodes_and_keys_share_a_slot(client: mqkit.Client,
                                                         cluster_url: str) -> None:
    topics = [_topic() for _ in range(12)]
    for t in topics:
        client.admin.create_topic(t)
        client.admin.create_group(t, "g")
        with client.producer(t) as producer:
            producer.send(b"p", priority=5)
            producer.send(b"d", delay=60)  # stays in the delayed set
        with client.consumer(t, "g") as consumer:
            for msg in _drain(consumer, 1):
                msg.nack(delay=60)  # into the retry schedule
    host, port = cluster_url.split("//", 1)[1].split(",", maxsplit=1)[0].split(":")
    plain = redis.cluster.RedisCluster(host=host, port=int(port), decode_responses=True)
    owners = set()
    for t in topics:
        keys = [str(k) for k in plain.keys(f"{{{t}}}*", target_nodes=plain.PRIMARIES)]
        assert f"{{{t}}}" in keys and f"{{{t}}}:mqkit-p5" in keys
        assert any(":mqkit-retry:" in k for k in keys) and any("delayed" in k for k in keys)
        assert len({slot(k) for k in keys}) == 1, keys
        owners.add(plain.nodes_manager.get_node_from_slot(slot(f"{{{t}}}")).name)
    plain.close()
    assert len(owners) > 1  # the topics did not all land on one node
    assert set(topics) <= set(client.admin.list_topics())  # SCAN on every primary
    for t in topics:
        client.admin.delete_topic(t)
    assert not set(topics) & set(client.admin.list_topics())


def test_blocking_round_trip_with_bands_delay_and_nack(
        client: mqkit.Client) -> None:
    t = _topic()
    client.admin.create_topic(t)
    client.admin.create_group(t, "g")
    with client.producer(t) as producer:
        producer.send_batch([mqkit.Message(f"m{i}".encode()) for i in range(20)])
        producer.send(b"high", priority=9)
        producer.send(b"later", delay=0.3)
    with client.consumer(t, "g") as consumer:
        first = consumer.receive(max_messages=1, timeout=2.0)
        assert [m.body for m in first] == [b"high"]  # strict priority over the bands
        first[0].ack()
        got = _drain(consumer, 21)
        bodies = sorted(m.body for m in got)
        assert bodies == sorted([f"m{i}".encode() for i in range(20)] + [b"later"])
        got[0].nack()
        again = _drain(consumer, 1)
        assert [m.body for m in again] == [got[0].body] and again[0].delivery_count == 2
        for m in [*got[1:], *again]:
            m.ack()
    stats = client.admin.stats(t, "g")  # the consumer flushed its acks as it closed
    assert (stats.depth, stats.in_flight) == (0, 0)
    client.admin.delete_topic(t)


def test_asyncio_round_trip(cluster_url: str) -> None:
    async def go() -> list[bytes]:
        async with mqkit.aio.connect(cluster_url, connect_timeout=10) as c:
            t = _topic()
            await c.admin.create_topic(t)
            await c.admin.create_group(t, "g")
            async with c.producer(t) as producer:
                await producer.send(b"a", priority=2)
                await producer.send(b"b")
                await producer.send(b"c", delay=0.2)
            out: list[bytes] = []
            async with c.consumer(t, "g") as consumer:
                deadline = time.monotonic() + 10
                while len(out) < 3 and time.monotonic() < deadline:
                    for m in await consumer.receive(max_messages=10, timeout=0.5):
                        out.append(m.body)
                        await m.ack()
            assert t in await c.admin.list_topics()
            await c.admin.delete_topic(t)
            return out

    assert asyncio.run(go()) == [b"a", b"b", b"c"]


def test_persistence_declared_from_every_primary(client: mqkit.Client) -> None:
    assert client.capabilities.persistence  # the topology runs AOF on every primary


def test_a_dead_first_seed_is_skipped(cluster_url: str) -> None:
    url = cluster_url.replace("//", f"//{DEAD_SEED},", 1)
    with mqkit.connect(url, connect_timeout=5) as c:
        t = _topic()
        c.admin.create_topic(t)
        assert c.admin.topic_exists(t)
        c.admin.delete_topic(t)


def test_no_seed_answers_is_unavailable_without_the_password() -> None:
    with pytest.raises(mqkit.Unavailable) as info:
        mqkit.connect(f"redis+cluster://app:hunter2-Secret@{DEAD_SEED}",
                      connect_timeout=2)
    assert "hunter2-Secret" not in str(info.value)
    assert "hunter2-Secret" not in repr(info.value)


def test_a_killed_node_takes_its_topics_and_brings_them_back(
        redis_cluster: RedisCluster | str, client: mqkit.Client) -> None:
    if isinstance(redis_cluster, str):
        pytest.skip("a cluster given by URL: not ours to kill")
    t = _topic()
    client.admin.create_topic(t)
    client.admin.create_group(t, "g")
    with client.producer(t) as producer:
        producer.send(b"before")
    time.sleep(1.5)  # appendfsync everysec: what the last second wrote may die with it
    node = redis_cluster.leader(t)
    redis_cluster.kill(node)
    with pytest.raises(mqkit.MQError):
        with mqkit.connect(redis_cluster.url(), connect_timeout=2,
                           send_timeout=3) as other, other.producer(t) as p:
            p.send(b"lost?")
    redis_cluster.start(node, timeout=60)
    with client.producer(t) as producer:
        producer.send(b"after")  # the slot map is fetched again
    with client.consumer(t, "g") as consumer:
        got = _drain(consumer, 2)
        assert sorted(m.body for m in got) == [b"after", b"before"]  # AOF kept "before"
        for m in got:
            m.ack()
    client.admin.delete_topic(t)


def test_a_node_back_empty_gets_the_topics_and_groups_of_its_slots_again(
        redis_cluster: RedisCluster | str, client: mqkit.Client) -> None:
    """redeclare in cluster mode: the restarted node's new run_id is noticed on the first
    new connection to it, which re-creates the streams and groups this client uses that
    live in that node's slots (groups from 0), so producer and consumer go on."""
    if isinstance(redis_cluster, str):
        pytest.skip("a cluster given by URL: not ours to kill")
    t = _topic()
    client.admin.create_topic(t)
    client.admin.create_group(t, "g")
    with client.producer(t) as producer, client.consumer(t, "g") as consumer:
        producer.send(b"before")
        got = _drain(consumer, 1)
        assert [m.body for m in got] == [b"before"]
        got[0].ack()
        node = redis_cluster.leader(t)
        redis_cluster.kill(node)
        redis_cluster.lose_data(node)
        redis_cluster.start(node, timeout=60)
        producer.send(b"after")  # Unavailable until the node is back, retried
        got = _drain(consumer, 1, seconds=20)
        assert [m.body for m in got] == [b"after"]
        got[0].ack()
    client.admin.delete_topic(t)


def test_a_refused_password_is_denied_and_never_shows_in_errors_or_logs(cluster_url: str) -> None:
    # The test cluster has no password: AUTH is refused by whichever node is asked.
    wrong = "ZQclu1/ZQclu2 é?#'\"\\"
    url = with_password(cluster_url.replace("//", "//app:x@", 1), wrong)
    logs, error = round_trip_at_debug(url)
    assert isinstance(error, mqkit.PermissionDenied), error  # at once, not retried
    assert_hidden([str(error), repr(error)], wrong)
    assert_hidden(logs.lines, wrong)
    assert_absent(logs.lines, wrong)
