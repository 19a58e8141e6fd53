"""SQS/SNS: mqkit against raw boto3 doing the same durable work, and requests per message.

    python benchmarks/bench_sqs.py \\
        --url 'sqs://testing:testing@127.0.0.1:5000?region=us-east-1&tls=false' --count 2000

Same work on both sides: an SNS topic fanning out to one SQS queue (raw message delivery),
100-byte messages, sends that return once SNS accepted them, receives of up to 10 with
long polling, deletes after processing. Prints msgs/s for each and the ratio mqkit/raw:

* send: raw ``publish_batch`` of 10, mqkit ``send_batch`` (10 per request) and
  ``send(wait=False)`` + ``flush`` (the producer batches by 10); raw ``publish`` one at a
  time (the naive baseline) on ``--single`` messages;
* receive + ack: raw ``receive_message(10)`` + ``delete_message_batch``, mqkit
  ``receive(10)`` + ``ack`` and ``run(handler)``; the naive raw loop (receive 1, delete 1)
  on ``--single`` messages.

Requests per message are counted through botocore's ``before-send`` event on the very
clients used (mqkit's through ``client.as_(mqkit_sqs.AwsClients)``): the floor for send +
receive + delete is 0.3; one call per action costs 3.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
from _harness import Result, measure, report

import mqkit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "adapters" / "sqs"))
from mqkit_sqs import AwsClients, plugin

from mqkit._registry import register

register(plugin)  # until the sqs entry point is installed

BODY = b"x" * 100


class Counter:
    """Counts HTTP requests of the clients it is attached to."""

    def __init__(self) -> None:
        self.requests = 0

    def attach(self, *clients: Any) -> Counter:
        for client in clients:
            if client is not None:
                client.meta.events.register("before-send", self._count)
        return self

    def _count(self, **_: Any) -> None:
        self.requests += 1


def raw_clients(url: mqkit.URL) -> tuple[Any, Any]:
    host, port = url.hosts[0] if url.hosts else (None, None)
    tls = url.query.get("tls", "true").lower() not in ("false", "0", "no", "off")
    endpoint = f"{'https' if tls else 'http'}://{host}:{port}" if host else None
    session = boto3.session.Session(
        aws_access_key_id=url.username,
        aws_secret_access_key=url.password.reveal() if url.password else None,
        region_name=url.query.get("region"))
    return (session.client("sqs", endpoint_url=endpoint),
            session.client("sns", endpoint_url=endpoint))


def _id_attribute() -> dict[str, Any]:
    """What mqkit sends with every message: its id (in one JSON attribute)."""
    return {"id": {"DataType": "String", "StringValue": uuid.uuid4().hex}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get(
        "MQKIT_TEST_SQS_URL", "sqs://testing:testing@127.0.0.1:5000?region=us-east-1&tls=false"))
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--single", type=int, default=100,
                        help="messages for the one-call-per-action baselines")
    args = parser.parse_args()
    count, single = args.count - args.count % 10, args.single
    url = mqkit.URL.parse(args.url)
    sqs, sns = raw_clients(url)
    raw = Counter().attach(sqs, sns)
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    with mqkit.connect(args.url) as client:
        native = client.as_(AwsClients)
        assert native is not None
        mine = Counter().attach(native.sqs, native.sns)
        client.admin.create_topic(topic)
        client.admin.create_group(topic, "g")
        arn = sns.create_topic(Name=topic)["TopicArn"]  # idempotent: the same topic
        queue_url = sqs.get_queue_url(QueueName=f"{topic}-g")["QueueUrl"]
        bench = Bench(client, topic, sqs=sqs, sns=sns, arn=arn, queue_url=queue_url,
                      raw=raw, mine=mine)
        try:
            # Each side sends, then drains the queue: moto's receive slows down with the
            # queue's depth, so both sides read the same depth.
            raw_send, raw_recv = bench.raw_batched(count)
            mine_send, mine_recv = bench.mqkit_batched(count)
            total = mine_send[2] + mine_recv[2]
            print("-- mqkit/raw ratios and requests per message")
            line(mine_send[0], raw_send[0], mine, mine_send[1], mine_send[2])
            line(mine_recv[0], raw_recv[0], mine, mine_recv[1], mine_recv[2])
            print(f"{'mqkit':9} {'send + receive + ack':34} "
                  f"{total / count:.3f} requests/msg (floor 0.300, naive 3)", flush=True)
            bench.mqkit_buffered(count, raw_send[0], raw_recv[0])
            bench.raw_naive(single)
        finally:
            client.admin.delete_topic(topic)


Measured = tuple[Result, int, int]  # result, counter before, requests made


def line(result: Result, baseline: Result | None, counter: Counter, before: int,
         made: int | None = None) -> None:
    report(result, baseline)
    used = made if made is not None else counter.requests - before
    print(f"{'':9} {'':34} {used / result.count:.3f} requests/msg", flush=True)


class Bench:
    def __init__(self, client: mqkit.Client, topic: str, *, sqs: Any, sns: Any, arn: str,
                 queue_url: str, raw: Counter, mine: Counter) -> None:
        self.client, self.topic, self.sqs, self.sns = client, topic, sqs, sns
        self.arn, self.queue_url, self.raw, self.mine = arn, queue_url, raw, mine

    def _measure(self, counter: Counter, backend: str, label: str, count: int,
                 work: Any) -> Measured:
        before = counter.requests
        result = measure(backend, label, count, work)
        made = counter.requests - before
        line(result, None, counter, before, made)
        return result, before, made

    def raw_batched(self, count: int) -> tuple[Measured, Measured]:
        def send() -> None:
            for _ in range(0, count, 10):
                reply = self.sns.publish_batch(TopicArn=self.arn, PublishBatchRequestEntries=[
                    {"Id": str(i), "Message": BODY.decode(),
                     "MessageAttributes": _id_attribute()} for i in range(10)])
                assert not reply.get("Failed"), reply["Failed"]

        def consume() -> None:
            got = 0
            while got < count:
                msgs = self.sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=20,
                    VisibilityTimeout=30, MessageAttributeNames=["All"],
                    MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                ).get("Messages", [])
                if not msgs:
                    raise RuntimeError(f"raw consumer stalled at {got}")
                reply = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(msgs)])
                assert not reply.get("Failed"), reply["Failed"]
                got += len(msgs)

        return (self._measure(self.raw, "boto3", "raw publish_batch(10)", count, send),
                self._measure(self.raw, "boto3", "raw receive(10)+delete_batch", count,
                              consume))

    def mqkit_batched(self, count: int) -> tuple[Measured, Measured]:
        messages = [mqkit.Message(BODY) for _ in range(count)]
        with self.client.producer(self.topic) as producer, \
                self.client.consumer(self.topic, "g", prefetch=10) as consumer:
            def send() -> None:
                for i in range(0, count, 10):
                    producer.send_batch(messages[i:i + 10])

            def consume() -> None:
                got = 0
                while got < count:
                    msgs = consumer.receive(10, timeout=20.0)
                    if not msgs:
                        raise RuntimeError(f"stalled at {got}")
                    consumer.ack(msgs)
                    got += len(msgs)

            return (self._measure(self.mine, "mqkit", "send_batch(10)", count, send),
                    self._measure(self.mine, "mqkit", "receive(10)+ack", count, consume))

    def mqkit_buffered(self, count: int, raw_send: Result, raw_recv: Result) -> None:
        with self.client.producer(self.topic) as producer, \
                self.client.consumer(self.topic, "g", prefetch=10) as consumer:
            before = self.mine.requests

            def send() -> None:
                for _ in range(count):
                    producer.send(BODY, wait=False)
                producer.flush()

            line(measure("mqkit", "send(wait=False)+flush", count, send), raw_send,
                 self.mine, before)
            before = self.mine.requests

            def handle(msg: mqkit.ReceivedMessage) -> None:
                return None

            def run() -> None:
                consumer.run(handle, stop_after=count)

            line(measure("mqkit", "run(handler) (prefetch 10)", count, run), raw_recv,
                 self.mine, before)

    def raw_naive(self, single: int) -> None:
        def send() -> None:
            for _ in range(single):
                self.sns.publish(TopicArn=self.arn, Message=BODY.decode(),
                                 MessageAttributes=_id_attribute())

        def consume() -> None:
            for _ in range(single):
                [m] = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=1,
                                               WaitTimeSeconds=20)["Messages"]
                self.sqs.delete_message(QueueUrl=self.queue_url,
                                        ReceiptHandle=m["ReceiptHandle"])

        self._measure(self.raw, "boto3", "raw publish (naive, one each)", single, send)
        self._measure(self.raw, "boto3", "raw receive(1)+delete (naive)", single, consume)


if __name__ == "__main__":
    main()
