"""Throughput of the portable layer on ``memory://``, and its cost per message.

    python benchmarks/bench_memory.py [--count 100000] [--batch 100]

Prints msgs/s for ``send_batch`` and for ``receive`` + batched ``ack`` through mqkit's
blocking and asyncio faces, the same work straight on the memory driver (no portable
layer), and the portable layer's cost per message in microseconds. Target on a 2-core
machine: 100,000 msgs/s send and 100,000 msgs/s receive+ack in batches of 100.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid

from _harness import Result, measure, report

import mqkit
import mqkit.aio
from mqkit.driver import ConnectParams, Message, SubscriptionOptions
from mqkit.memory import plugin


def _bodies(count: int) -> list[bytes]:
    return [b"x" * 100 for _ in range(count)]


def bench_sync(count: int, batch: int) -> tuple[Result, Result]:
    url = f"memory://bench-{uuid.uuid4().hex[:8]}?max_batch={max(batch, 1000)}"
    with mqkit.connect(url) as client:
        client.admin.create_topic("bench")
        client.admin.create_group("bench", "g")
        bodies = _bodies(count)
        with client.producer("bench") as producer:
            def send() -> None:
                for i in range(0, count, batch):
                    producer.send_batch(bodies[i:i + batch])
            sent = measure("memory", f"sync send_batch({batch})", count, send)
        with client.consumer("bench", "g", prefetch=batch) as consumer:
            def consume() -> None:
                got = 0
                while got < count:
                    msgs = consumer.receive(batch, timeout=1.0)
                    consumer.ack(msgs)
                    got += len(msgs)
            received = measure("memory", f"sync receive({batch})+ack", count, consume)
    return sent, received


async def bench_async(count: int, batch: int) -> tuple[Result, Result]:
    url = f"memory://bench-{uuid.uuid4().hex[:8]}?max_batch={max(batch, 1000)}"
    async with mqkit.aio.connect(url) as client:
        await client.admin.create_topic("bench")
        await client.admin.create_group("bench", "g")
        bodies = _bodies(count)
        async with client.producer("bench") as producer:
            import time
            start = time.perf_counter()
            for i in range(0, count, batch):
                await producer.send_batch(bodies[i:i + batch])
            sent = Result("memory", f"async send_batch({batch})", count,
                          time.perf_counter() - start)
        async with client.consumer("bench", "g", prefetch=batch) as consumer:
            start = time.perf_counter()
            got = 0
            while got < count:
                msgs = await consumer.receive(batch, timeout=1.0)
                await consumer.ack(msgs)
                got += len(msgs)
            received = Result("memory", f"async receive({batch})+ack", count,
                              time.perf_counter() - start)
    return sent, received


def bench_raw(count: int, batch: int) -> tuple[Result, Result]:
    """The same work on the memory driver itself: the floor under the portable layer."""
    name = f"bench-{uuid.uuid4().hex[:8]}"
    assert plugin.connect is not None
    driver = plugin.connect(ConnectParams(url=mqkit.URL.parse(f"memory://{name}"),
                                          options={"max_batch": max(batch, 1000)}))
    driver.create_topic("bench", {})
    driver.create_group("bench", "g", "latest")
    topic = driver.open_topic("bench")
    messages = [Message(b"x" * 100, id=uuid.uuid4().hex) for _ in range(count)]

    def send() -> None:
        for i in range(0, count, batch):
            topic.send_batch(messages[i:i + batch])
    sent = measure("memory", f"raw driver send_batch({batch})", count, send)
    sub = driver.open_subscription("bench", "g", SubscriptionOptions(prefetch=batch))

    def consume() -> None:
        got = 0
        while got < count:
            deliveries = sub.receive_batch(batch, 1.0)
            sub.ack(deliveries)
            got += len(deliveries)
    received = measure("memory", f"raw driver receive({batch})+ack", count, consume)
    driver.close()
    return sent, received


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    raw_send, raw_recv = bench_raw(args.count, args.batch)
    sync_send, sync_recv = bench_sync(args.count, args.batch)
    async_send, async_recv = asyncio.run(bench_async(args.count, args.batch))
    for result in (raw_send, raw_recv):
        report(result)
    for result, base in ((sync_send, raw_send), (sync_recv, raw_recv),
                         (async_send, raw_send), (async_recv, raw_recv)):
        report(result, base)
    for label, mine, base in (("send", sync_send, raw_send), ("receive+ack", sync_recv, raw_recv)):
        cost = (mine.seconds - base.seconds) / mine.count * 1e6
        print(f"portable layer cost per message ({label}, sync): {cost:.2f} µs")


if __name__ == "__main__":
    main()
