"""NATS: mqkit against raw nats-py doing the same durable work.

    python benchmarks/bench_nats.py --url nats://127.0.0.1:4222 --count 20000

Same work on both sides: a JetStream stream (file storage) capturing one subject, a
durable pull consumer (explicit acks), 100-byte messages. Prints msgs/s and the ratio
mqkit/raw:

* send: raw ``js.publish`` awaiting each PubAck (the per-message round trip), raw
  ``js.publish_async`` for a batch then awaiting all its PubAcks (the same guarantee as
  mqkit's ``send_batch``: a batch that returned is stored), and mqkit ``send_batch``
  on the asyncio face and on the blocking face (loop thread), and ``send``;
* receive + ack: raw ``fetch(batch)`` + ``ack`` each + ``flush`` per batch (what mqkit
  does), and mqkit ``receive`` + ``ack`` on both faces;
* core NATS (``mode=core``, at-most-once): raw ``publish`` + ``flush`` per batch and
  mqkit ``send_batch`` on both faces.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable

import nats
from _harness import Result, measure, report
from nats.js import api

import mqkit
import mqkit.aio

BODY = b"x" * 100


def _ensure_plugin() -> None:
    """Register the adapter in-process when the ``nats`` entry point is not installed."""
    try:
        mqkit.connect("nats://127.0.0.1:1?connect_timeout=0.01")
    except mqkit.AdapterNotInstalled:
        from mqkit_nats import plugin

        from mqkit._registry import register
        register(plugin)
    except mqkit.MQError:
        pass


async def atime(backend: str, label: str, count: int,
                work: Callable[[], Awaitable[object]]) -> Result:
    start = time.perf_counter()
    await work()
    return Result(backend, label, count, time.perf_counter() - start)


# -- raw nats-py -----------------------------------------------------------------------

async def _raw_stream(nc: nats.NATS, subject: str) -> str:
    js = nc.jetstream()
    stream = "BENCH_" + subject.replace(".", "_")
    await js.add_stream(name=stream, subjects=[subject], storage=api.StorageType.FILE)
    await js.add_consumer(stream, api.ConsumerConfig(
        durable_name="g", name="g", ack_policy=api.AckPolicy.EXPLICIT, ack_wait=30,
        deliver_policy=api.DeliverPolicy.ALL, filter_subject=subject,
        max_ack_pending=20_000))
    return stream


async def raw_jetstream(url: str, count: int, batch: int) -> list[Result]:
    nc = await nats.connect(url)
    js = nc.jetstream(publish_async_max_pending=batch)
    subject = f"bench.raw.{uuid.uuid4().hex[:8]}"
    stream = await _raw_stream(nc, subject)
    each = max(1, count // 4)
    results = []
    try:
        async def send_each() -> None:
            for _ in range(each):
                await js.publish(subject, BODY)

        async def send_window() -> None:
            for _ in range(0, count, batch):
                futures = [await js.publish_async(subject, BODY) for _ in range(batch)]
                await asyncio.gather(*futures)

        async def receive() -> None:
            sub = await js.pull_subscribe_bind("g", stream=stream)
            got = 0
            while got < count + each:
                msgs = await sub.fetch(batch, timeout=5)
                for msg in msgs:
                    await msg.ack()
                await nc.flush()
                got += len(msgs)

        results.append(await atime("nats-py", "raw publish, PubAck each", each, send_each))
        results.append(await atime("nats-py", f"raw publish_async window({batch})", count,
                                   send_window))
        results.append(await atime("nats-py", f"raw fetch({batch})+ack+flush", count + each,
                                   receive))
    finally:
        await js.delete_stream(stream)
        await nc.close()
    return results


async def raw_core(url: str, count: int, batch: int, with_id: bool) -> Result:
    """Core publish + flush per batch; no subscriber in this process (its parsing would
    be timed too). ``with_id`` adds the message-id header mqkit carries."""
    nc = await nats.connect(url)
    subject = f"bench.core.{uuid.uuid4().hex[:8]}"

    async def work() -> None:
        for _ in range(0, count, batch):
            for _ in range(batch):
                if with_id:
                    await nc.publish(subject, BODY,
                                     headers={"Nats-Msg-Id": f"{random.getrandbits(128):032x}"})
                else:
                    await nc.publish(subject, BODY)
            await nc.flush()

    label = "core publish+id hdr" if with_id else "core publish"
    try:
        return await atime("nats-py", f"{label}({batch})+flush", count, work)
    finally:
        await nc.close()


# -- mqkit -----------------------------------------------------------------------------

async def mqkit_async(url: str, count: int, batch: int) -> list[Result]:
    results = []
    async with mqkit.aio.connect(url, prefetch=batch) as client:
        topic = f"bench.mq.{uuid.uuid4().hex[:8]}"
        await client.admin.create_topic(topic)
        await client.admin.create_group(topic, "g", "earliest")
        each = max(1, count // 4)
        try:
            async with client.producer(topic) as producer:
                async def send_batch() -> None:
                    for _ in range(0, count, batch):
                        await producer.send_batch([BODY] * batch)

                async def send_each() -> None:
                    for _ in range(each):
                        await producer.send(BODY)

                results.append(await atime("mqkit", "async send (one each)", each, send_each))
                results.append(await atime("mqkit", f"async send_batch({batch})", count,
                                           send_batch))
            async with client.consumer(topic, "g") as consumer:
                async def receive() -> None:
                    got = 0
                    while got < count + each:
                        msgs = await consumer.receive(batch, timeout=5)
                        await consumer.ack(msgs)
                        got += len(msgs)
                results.append(await atime("mqkit", f"async receive({batch})+ack", count + each,
                                           receive))
        finally:
            await client.admin.delete_topic(topic)
    return results


def mqkit_sync(url: str, count: int, batch: int) -> list[Result]:
    results = []
    with mqkit.connect(url, prefetch=batch) as client:
        topic = f"bench.mqs.{uuid.uuid4().hex[:8]}"
        client.admin.create_topic(topic)
        client.admin.create_group(topic, "g", "earliest")
        try:
            with client.producer(topic) as producer:
                def send_batch() -> None:
                    for _ in range(0, count, batch):
                        producer.send_batch([BODY] * batch)
                results.append(measure("mqkit", f"sync send_batch({batch})", count, send_batch))
            with client.consumer(topic, "g") as consumer:
                def receive() -> None:
                    got = 0
                    while got < count:
                        msgs = consumer.receive(batch, timeout=5)
                        consumer.ack(msgs)
                        got += len(msgs)
                results.append(measure("mqkit", f"sync receive({batch})+ack", count, receive))
        finally:
            client.admin.delete_topic(topic)
    return results


async def mqkit_core_async(url: str, count: int, batch: int) -> Result:
    async with mqkit.aio.connect(url, mode="core") as client:
        topic = f"bench.mqc.{uuid.uuid4().hex[:8]}"
        async with client.producer(topic) as producer:
            async def work() -> None:
                for _ in range(0, count, batch):
                    await producer.send_batch([BODY] * batch)
            return await atime("mqkit", f"core async send_batch({batch})", count, work)


def mqkit_core_sync(url: str, count: int, batch: int) -> Result:
    with mqkit.connect(url, mode="core") as client:
        topic = f"bench.mqcs.{uuid.uuid4().hex[:8]}"
        with client.producer(topic) as producer:
            def work() -> None:
                for _ in range(0, count, batch):
                    producer.send_batch([BODY] * batch)
            return measure("mqkit", f"core sync send_batch({batch})", count, work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="nats://127.0.0.1:4222")
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    _ensure_plugin()
    count = max(args.batch, args.count // args.batch * args.batch)
    raw_each, raw_window, raw_recv = asyncio.run(raw_jetstream(args.url, count, args.batch))
    mq_each, mq_batch, mq_recv = asyncio.run(mqkit_async(args.url, count, args.batch))
    sync_batch, sync_recv = mqkit_sync(args.url, count, args.batch)
    report(raw_each)
    report(raw_window)
    report(mq_each, raw_each)
    report(mq_batch, raw_window)
    report(sync_batch, raw_window)
    print(f"{'':9} send_batch vs PubAck-each: async {mq_batch.rate / raw_each.rate:.1f}x, "
          f"sync {sync_batch.rate / raw_each.rate:.1f}x; sync/async "
          f"{sync_batch.rate / mq_batch.rate:.2f}")
    report(raw_recv)
    report(mq_recv, raw_recv)
    report(sync_recv, raw_recv)
    print(f"{'':9} receive+ack sync/async {sync_recv.rate / mq_recv.rate:.2f}")
    core_raw = asyncio.run(raw_core(args.url, count, args.batch, False))
    core_raw_id = asyncio.run(raw_core(args.url, count, args.batch, True))
    core_async = asyncio.run(mqkit_core_async(args.url, count, args.batch))
    core_sync = mqkit_core_sync(args.url, count, args.batch)
    report(core_raw)
    report(core_raw_id)
    report(core_async, core_raw)
    report(core_sync, core_raw)
    print(f"{'':9} core vs raw with the same id header: async "
          f"{core_async.rate / core_raw_id.rate:.2f}, sync {core_sync.rate / core_raw_id.rate:.2f}")


if __name__ == "__main__":
    main()
