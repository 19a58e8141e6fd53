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

    def per_message(self, before: int, count: int) -> str:
        return f"{(self.requests - before) / count:.3f} requests/msg"


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


def line(result: Result, baseline: Result | None, counter: Counter, before: int) -> None:
    report(result, baseline)
    print(f"{'':9} {'':34} {counter.per_message(before, result.count)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get(
        "MQKIT_TEST_SQS_URL", "sqs://testing:testing@127.0.0.1:5000?region=us-east-1&tls=false"))
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--single", type=int, default=200,
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
        try:
            # -- send ----------------------------------------------------------------
            before = raw.requests

            def raw_send() -> None:
                for _ in range(0, count, 10):
                    reply = sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
                        {"Id": str(i), "Message": BODY.decode(),
                         "MessageAttributes": _id_attribute()} for i in range(10)])
                    assert not reply.get("Failed"), reply["Failed"]

            raw_batch = measure("boto3", "raw publish_batch(10)", count, raw_send)
            line(raw_batch, None, raw, before)
            with client.producer(topic) as producer:
                messages = [mqkit.Message(BODY) for _ in range(count)]
                before = mine.requests

                def send_batches() -> None:
                    for i in range(0, count, 10):
                        producer.send_batch(messages[i:i + 10])

                line(measure("mqkit", "send_batch(10)", count, send_batches), raw_batch,
                     mine, before)
                before = mine.requests

                def send_nowait() -> None:
                    for _ in range(count):
                        producer.send(BODY, wait=False)
                    producer.flush()

                line(measure("mqkit", "send(wait=False)+flush", count, send_nowait),
                     raw_batch, mine, before)
            before = raw.requests

            def raw_send_each() -> None:
                for _ in range(single):
                    sns.publish(TopicArn=arn, Message=BODY.decode(),
                                MessageAttributes=_id_attribute())

            line(measure("boto3", "raw publish (naive, one each)", single, raw_send_each),
                 None, raw, before)
            # The queue now holds 3 * count + single messages.
            bench_receive(client, sqs, queue_url, topic, count=count, single=single, raw=raw,
                          mine=mine)
        finally:
            client.admin.delete_topic(topic)


def bench_receive(client: mqkit.Client, sqs: Any, queue_url: str, topic: str, *,
                  count: int, single: int, raw: Counter, mine: Counter) -> None:
    before = raw.requests

    def raw_consume() -> None:
        got = 0
        while got < count:
            msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=20, VisibilityTimeout=60,
                                       MessageAttributeNames=["All"],
                                       MessageSystemAttributeNames=[
                                           "ApproximateReceiveCount", "SentTimestamp"],
                                       ).get("Messages", [])
            if not msgs:
                raise RuntimeError(f"raw consumer stalled at {got}")
            reply = sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
            assert not reply.get("Failed"), reply["Failed"]
            got += len(msgs)

    raw_recv = measure("boto3", "raw receive(10)+delete_batch", count, raw_consume)
    line(raw_recv, None, raw, before)
    with client.consumer(topic, "g", prefetch=10) as consumer:
        before = mine.requests

        def consume() -> None:
            got = 0
            while got < count:
                msgs = consumer.receive(10, timeout=20.0)
                if not msgs:
                    raise RuntimeError(f"stalled at {got}")
                consumer.ack(msgs)
                got += len(msgs)

        line(measure("mqkit", "receive(10)+ack", count, consume), raw_recv, mine, before)
        before = mine.requests

        def handle(msg: mqkit.ReceivedMessage) -> None:
            return None

        def run() -> None:
            consumer.run(handle, stop_after=count)

        line(measure("mqkit", "run(handler) (prefetch 10)", count, run), raw_recv, mine,
             before)
    before = raw.requests

    def raw_naive() -> None:
        for _ in range(single):
            [m] = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1,
                                      WaitTimeSeconds=20)["Messages"]
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])

    line(measure("boto3", "raw receive(1)+delete (naive)", single, raw_naive), None, raw,
         before)


if __name__ == "__main__":
    main()
