"""redis+sentinel:// against a real primary, replica and three Sentinels (the fault suite's
topology, started here on its own ports and home): the client finds the primary through
Sentinel, and after the primary is SIGKILLed and Sentinel fails over, both faces follow the
new primary by themselves. Needs ``redis-server`` (fails, naming it, when missing)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import mqkit
import mqkit.aio
from fault_tests.clusters.redis import RedisSentinel


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinel]:
    home: Path = tmp_path_factory.mktemp("sentinel")
    topology = RedisSentinel(base_port=23470, home=home)
    topology.install()
    try:
        topology.up(timeout=60)
        yield topology
    finally:
        topology.down()


def test_follows_the_primary_through_a_failover(cluster: RedisSentinel) -> None:
    topic, group = f"st-{uuid.uuid4().hex[:8]}", "g"
    with mqkit.connect(cluster.url(), connect_timeout=15) as client:
        client.admin.create_topic(topic)
        client.admin.create_group(topic, group)
        with client.producer(topic) as producer:
            producer.send(b"before")
            old = cluster.leader(topic)
            cluster.kill(old)
            producer.send(b"after")  # waits for the failover, then the new primary
        assert cluster.leader(topic) != old
        with client.consumer(topic, group) as consumer:
            bodies = []
            for _ in range(10):
                for msg in consumer.receive(max_messages=10, timeout=1.0):
                    bodies.append(msg.body)
                    msg.ack()
                if len(bodies) >= 2:
                    break
        assert sorted(bodies) == [b"after", b"before"]
        cluster.start(old, timeout=60)

    async def aio_round_trip() -> list[bytes]:
        async with mqkit.aio.connect(cluster.url(), connect_timeout=15) as aclient:
            async with aclient.producer(topic) as producer:
                await producer.send(b"async")
            async with aclient.consumer(topic, group) as consumer:
                got = await consumer.receive(max_messages=10, timeout=3.0)
                for msg in got:
                    await msg.ack()
                return [m.body for m in got]

    assert asyncio.run(aio_round_trip()) == [b"async"]
