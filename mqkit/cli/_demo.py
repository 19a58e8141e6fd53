"""``mqkit demo [URL]``: the order pipeline, the README's main job.

Orders go to one topic read by two groups, ``billing`` and ``shipping``: every group
gets every order. Billing prices each order through a request/reply call to a price
service; one order is poison (an unknown product), fails every attempt, and ends in the
dead-letter topic with the reason. Runs on ``memory://`` by default, or on any URL.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from .._codecs import JSON
from .._retry import RetryPolicy
from .._sync._client import DEAD_LETTER_GROUP, Client, connect
from .._sync._received import ReceivedMessage

__all__ = ["run_demo"]

PRICES = {"book": 12.5, "lamp": 30.0, "mug": 7.25}
ORDERS = [
    {"order": 1, "sku": "book", "qty": 2},
    {"order": 2, "sku": "lamp", "qty": 1},
    {"order": 3, "sku": "unicorn", "qty": 1},  # poison: no such product
    {"order": 4, "sku": "mug", "qty": 4},
]


def run_demo(url: str | None) -> int:
    """Run the pipeline and print what happened; 0 when every order ended as expected."""
    suffix = uuid.uuid4().hex[:6]
    orders, prices = f"demo-orders-{suffix}", f"demo-prices-{suffix}"
    with connect(url) as client:
        print(f"broker: {client.url} ({client.capabilities.backend})")
        dlq = client.dead_letter_topic(orders)
        try:
            return _pipeline(client, orders, prices, dlq)
        finally:
            for topic in (orders, prices, dlq):
                client.admin.delete_topic(topic)


def _pipeline(client: Client, orders: str, prices: str, dlq: str) -> int:
    admin = client.admin
    admin.create_topic(orders)
    admin.create_topic(prices)
    admin.create_group(orders, "billing")
    admin.create_group(orders, "shipping")
    admin.create_group(prices, "pricer")
    print(f"topics: {orders} (groups billing, shipping), {prices} (group pricer)")

    pricer = client.consumer(prices, "pricer")

    def price(request: ReceivedMessage) -> None:
        sku = request.decode()["sku"]
        client.reply(request, {"sku": sku, "price": PRICES.get(sku)}, codec=JSON)

    service = threading.Thread(target=pricer.run, args=(price,), daemon=True)
    service.start()

    with client.producer(orders, codec=JSON) as producer:
        for order in ORDERS:
            producer.send(order, key=f"order-{order['order']}")
    print(f"sent {len(ORDERS)} orders")

    billed: list[str] = []

    def bill(msg: ReceivedMessage) -> None:
        order: dict[str, Any] = msg.decode()
        reply = client.request(prices, {"sku": order["sku"]}, codec=JSON, timeout=10).decode()
        if reply["price"] is None:
            print(f"  billing: order {order['order']} attempt {msg.delivery_count} failed: "
                  f"unknown product {order['sku']!r}")
            raise LookupError(f"unknown product {order['sku']!r}")
        total = reply["price"] * order["qty"]
        billed.append(f"order {order['order']}: {order['qty']} x {order['sku']} = {total:.2f}")
        print(f"  billing: {billed[-1]}")

    retry = RetryPolicy(max_attempts=3, initial_backoff=0.1, max_backoff=0.5)
    with client.consumer(orders, "billing") as billing:
        stats = billing.run(bill, retry=retry, idle_timeout=_idle(client))
    print(f"billing: {stats.acked} acked, {stats.retried} retried, "
          f"{stats.dead_lettered} dead-lettered")

    shipped: list[int] = []
    with client.consumer(orders, "shipping") as shipping:
        shipping.run(lambda m: shipped.append(m.decode()["order"]), idle_timeout=_idle(client))
    print(f"shipping: packed orders {sorted(shipped)}")

    dead: list[tuple[Any, str]] = []
    with client.consumer(dlq, DEAD_LETTER_GROUP) as letters:
        deadline = time.monotonic() + 10
        while not dead and time.monotonic() < deadline:
            for msg in letters.receive(10, timeout=1.0):
                dead.append((json.loads(msg.body)["order"],
                             msg.headers.get("mqkit-dead-letter-reason", "?")))
                msg.ack()
    for order_no, reason in dead:
        print(f"dead letter: order {order_no} after {retry.max_attempts} attempts: {reason}")

    pricer.stop()
    service.join(timeout=10)
    pricer.close()

    ok = (len(billed) == 3 and sorted(shipped) == [1, 2, 3, 4]
          and [d[0] for d in dead] == [3])
    print("demo " + ("ok" if ok else "FAILED: unexpected outcome"))
    return 0 if ok else 1


def _idle(client: Client) -> float:
    """Idle time after which a demo consumer stops: retries must fit inside it."""
    return 3.0 if client.capabilities.backend == "memory" else 8.0
