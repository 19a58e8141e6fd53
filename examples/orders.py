"""An order pipeline that runs unchanged on every backend: set MQKIT_URL to switch.

    MQKIT_URL=memory:// python examples/orders.py
    MQKIT_URL=kafka://localhost:9092 python examples/orders.py

Two groups read one topic (each gets every order); billing's handler fails on one
order, which is retried and then dead-lettered with the reason.
"""

from __future__ import annotations

import uuid

import mqkit


def main() -> None:
    topic = f"example-orders-{uuid.uuid4().hex[:6]}"
    with mqkit.connect() as client:
        dlq = client.dead_letter_topic(topic)
        client.admin.create_topic(topic)
        client.admin.create_group(topic, "billing")
        client.admin.create_group(topic, "shipping")
        try:
            with client.producer(topic, codec=mqkit.JSON) as producer:
                producer.send_batch([{"order": n, "qty": n % 3} for n in range(1, 7)])

            def bill(msg: mqkit.ReceivedMessage) -> None:
                order = msg.decode()
                if order["qty"] == 0:
                    raise ValueError(f"order {order['order']} has no items")

            retry = mqkit.RetryPolicy(max_attempts=2, initial_backoff=0.1, max_backoff=0.2)
            with client.consumer(topic, "billing") as billing:
                stats = billing.run(bill, retry=retry, idle_timeout=5.0)
            print(f"billing: {stats.acked} acked, {stats.dead_lettered} dead-lettered")
            assert stats.acked == 4 and stats.dead_lettered == 2, stats

            with client.consumer(topic, "shipping") as shipping:
                shipped = shipping.run(lambda m: None, idle_timeout=3.0)
            print(f"shipping: {shipped.acked} acked")
            assert shipped.acked == 6, shipped

            with client.consumer(dlq, mqkit.DEAD_LETTER_GROUP) as letters:
                dead = letters.run(
                    lambda m: print("dead letter:", m.decode(),
                                    m.headers[mqkit.DLQ_HEADERS["reason"]]),
                    idle_timeout=3.0)
            assert dead.acked == 2, dead
        finally:
            client.admin.delete_topic(topic)
            client.admin.delete_topic(dlq)


if __name__ == "__main__":
    main()
