"""SNS fan-out with a plain boto3 peer: mqkit sends, mqkit and raw boto3 both read.

    MQKIT_URL='sqs://testing:testing@127.0.0.1:5000?region=us-east-1&tls=false' \\
        python examples/sqs_fanout_interop.py

The topic is an SNS topic; each group is an SQS queue (``<topic>-<group>``) subscribed
with raw delivery. The ``audit`` group is read by plain boto3 through the native client
mqkit already holds (``client.as_(mqkit_sqs.AwsClients)``): text bodies arrive as is and
headers as message attributes. On any other backend it says so and exits 0 (CI runs
every example on every backend).
"""

from __future__ import annotations

import json
import uuid

import mqkit


def main() -> None:
    topic = f"example-events-{uuid.uuid4().hex[:6]}"
    with mqkit.connect() as client:
        if client.capabilities.backend != "sqs":
            print(f"skipped: {client.url} is not an sqs:// URL")
            return
        from mqkit_sqs import AwsClients

        client.admin.create_topic(topic)
        client.admin.create_group(topic, "billing")
        client.admin.create_group(topic, "audit")
        try:
            with client.producer(topic, codec=mqkit.JSON) as producer:
                producer.send_batch([mqkit.Message(json.dumps({"n": n}).encode(),
                                                   headers={"tenant": "a"},
                                                   content_type="application/json")
                                     for n in range(3)])
            with client.consumer(topic, "billing") as billing:
                seen = billing.receive(10, timeout=5)
                billing.ack(seen)
                print("billing (mqkit):", sorted(m.decode()["n"] for m in seen))
            native = client.as_(AwsClients)
            assert native is not None
            url = native.sqs.get_queue_url(QueueName=f"{topic}-audit")["QueueUrl"]
            reply = native.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=5,
                                               MessageAttributeNames=["All"])
            for m in reply.get("Messages", []):
                tenant = m["MessageAttributes"]["tenant"]["StringValue"]
                print(f"audit (boto3): {m['Body']} tenant={tenant}")
                native.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        finally:
            client.admin.delete_topic(topic)


if __name__ == "__main__":
    main()
