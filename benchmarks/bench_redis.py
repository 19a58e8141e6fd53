"""Redis: mqkit against raw redis-py doing the same durable work.

    python benchmarks/bench_redis.py --url redis://127.0.0.1:6379/0 --count 50000

Same work on both sides: one stream, one consumer group, 100-byte messages, batches of
``--batch`` (500). Prints msgs/s and the ratio mqkit/raw:

* send: raw redis-py ``pipeline(transaction=False)`` with one ``xadd`` per message,
  executed per batch (a batch that returned is in the stream), against mqkit
  ``send_batch`` on the blocking and the asyncio face (the asyncio-native driver);
* receive + ack: raw ``xreadgroup(count=batch, block=...)`` then one ``xack`` of the
  batch's ids, against mqkit ``receive(batch)`` + ``ack`` (prefetch = batch) on both
  faces, and ``run(handler)``. redis-py already turns each entry's fields into a dict;
  a second raw figure also takes the body and decodes the other fields to str, the
  least a consumer does to use a message, and mqkit is shown against both.

Raw writes the same entries as mqkit: the body and a 32-hex message id field (made
with mqkit's own ``new_message_id``, as the producer does).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

import redis
from _harness import Result, measure, report

import mqkit
import mqkit.aio
from mqkit._message import new_message_id

BODY = b"x" * 100


def _ensure_plugin() -> None:
    """Register the adapter in-process when the ``redis`` entry point is not installed."""
    try:
        mqkit.connect("redis://127.0.0.1:1?connect_timeout=0.01")
    except mqkit.AdapterNotInstalled:
        from mqkit_redis import plugin

        from mqkit._registry import register
        register(plugin)
    except mqkit.MQError:
        pass


def raw_send(r: redis.Redis, key: str, count: int, batch: int,
             body: bytes = BODY) -> Result:
    def work() -> None:
        for start in range(0, count, batch):
            pipe = r.pipeline(transaction=False)
            for _ in range(min(batch, count - start)):
                # The entry mqkit writes: the body and a 32-hex message id.
                pipe.xadd(key, {"body": body, "id": new_message_id()})
            pipe.execute()
    return measure("redis-py", f"raw pipelined xadd ({batch})", count, work)


def raw_receive(r: redis.Redis, key: str, count: int, batch: int,
                extract: bool = False) -> Result:
    """``extract``: also take each entry's body and decode its other fields to str
    (the least a consumer does to get a message out; mqkit does that and more: id,
    timestamp, delivery count, settle bookkeeping). Without: only the ids for XACK."""
    def work() -> None:
        got = 0
        while got < count:
            reply = r.xreadgroup("g", "raw", {key: ">"}, count=batch, block=5000)
            if not reply:
                raise RuntimeError(f"stalled at {got}")
            entries = reply[0][1]
            if extract:
                for _entry_id, fields in entries:
                    _body = fields[b"body"]
                    _headers = {k.decode(): v.decode() for k, v in fields.items()
                                if k != b"body"}
            ids = [entry_id for entry_id, _ in entries]
            r.xack(key, "g", *ids)
            got += len(ids)
    label = "raw xreadgroup+xack+fields" if extract else "raw xreadgroup+xack"
    return measure("redis-py", f"{label} ({batch})", count, work)


def mqkit_send(client: mqkit.Client, topic: str, count: int, batch: int) -> Result:
    messages = [mqkit.Message(BODY) for _ in range(count)]
    with client.producer(topic) as producer:
        def work() -> None:
            for i in range(0, count, batch):
                producer.send_batch(messages[i:i + batch])
        return measure("mqkit", f"send_batch({batch})", count, work)


def mqkit_receive(client: mqkit.Client, topic: str, count: int, batch: int) -> Result:
    with client.consumer(topic, "g", prefetch=batch) as consumer:
        def work() -> None:
            got = 0
            while got < count:
                msgs = consumer.receive(batch, timeout=5.0)
                if not msgs:
                    raise RuntimeError(f"stalled at {got}")
                consumer.ack(msgs)
                got += len(msgs)
        return measure("mqkit", f"receive({batch})+ack", count, work)


def mqkit_run(client: mqkit.Client, topic: str, count: int, batch: int) -> Result:
    with client.consumer(topic, "g", prefetch=batch) as consumer:
        return measure("mqkit", f"run(handler) (prefetch {batch})", count,
                       lambda: consumer.run(lambda msg: None, stop_after=count))


async def aio_side(url: str, topic: str, count: int, batch: int) -> tuple[Result, Result]:
    async with mqkit.aio.connect(url) as client:
        messages = [mqkit.Message(BODY) for _ in range(count)]
        async with client.producer(topic) as producer:
            start = time.perf_counter()
            for i in range(0, count, batch):
                await producer.send_batch(messages[i:i + batch])
            sent = Result("mqkit", f"aio send_batch({batch})", count,
                          time.perf_counter() - start)
        async with client.consumer(topic, "g", prefetch=batch) as consumer:
            start = time.perf_counter()
            got = 0
            while got < count:
                msgs = await consumer.receive(batch, timeout=5.0)
                if not msgs:
                    raise RuntimeError(f"stalled at {got}")
                await consumer.ack(msgs)
                got += len(msgs)
            received = Result("mqkit", f"aio receive({batch})+ack", count,
                              time.perf_counter() - start)
    return sent, received


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("MQKIT_TEST_REDIS_URL",
                                                        "redis://127.0.0.1:6379/0"))
    parser.add_argument("--count", type=int, default=50000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of measurements (every side in each); the best is shown "
                             "(the machine is shared: the best round is the least disturbed)")
    args = parser.parse_args()
    _ensure_plugin()
    count, batch = args.count, args.batch
    raw_key = f"bench-raw-{uuid.uuid4().hex[:8]}"
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    r = redis.Redis.from_url(args.url)
    with mqkit.connect(args.url) as client:
        client.admin.create_topic(topic)
        client.admin.create_group(topic, "g")
        r.xgroup_create(raw_key, "g", "$", mkstream=True)
        try:
            rounds: list[tuple[Result, ...]] = []
            for _ in range(max(1, args.repeat)):  # interleaved, so drift hits every side
                rounds.append((raw_send(r, raw_key, count, batch),
                               mqkit_send(client, topic, count, batch),
                               raw_receive(r, raw_key, count, batch),
                               mqkit_receive(client, topic, count, batch),
                               raw_send(r, raw_key, count, batch),
                               raw_receive(r, raw_key, count, batch, extract=True),
                               *asyncio.run(aio_side(args.url, topic, count, batch))))
            (raw_sent, mq_sent, raw_got, mq_got, _, raw_fields, aio_sent, aio_got) = (
                max((rnd[i] for rnd in rounds), key=lambda res: res.rate) for i in range(8))
            report(raw_sent)
            report(mq_sent, raw_sent)
            report(aio_sent, raw_sent)
            report(raw_got)
            report(raw_fields)
            for got in (mq_got, aio_got):
                report(got, raw_got)
                report(Result("", "  (vs raw with fields)", count, got.seconds), raw_fields)
            with client.producer(topic) as producer:  # fresh messages for run()
                for _ in range(0, count, batch):
                    producer.send_batch([mqkit.Message(BODY) for _ in range(batch)])
            report(mqkit_run(client, topic, count, batch), raw_got)
        finally:
            client.admin.delete_topic(topic)
            r.delete(raw_key)
            r.close()


if __name__ == "__main__":
    main()
