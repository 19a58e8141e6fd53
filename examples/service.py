"""A small service as an App: typed handlers, an output topic, a bad payload dead-lettered.

    MQKIT_URL=memory:// python examples/service.py
    MQKIT_URL=redis://localhost:6379 python examples/service.py

``bill`` decodes each order into the ``Order`` dataclass and returns an ``Invoice``,
which the app publishes to the invoices topic, where ``mail`` reads it. One order's
``qty`` is not a number: it never decodes, so it is dead-lettered at once (no retries)
with the reason. A real service runs until SIGTERM (``app.run_sync()``, or
``mqkit run module:app``); this one stops once the work it sent was handled, so it runs
to completion on every backend (fresh topics, deleted at the end).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

import mqkit
import mqkit.aio
from mqkit.service import App

RUN = uuid.uuid4().hex[:6]
ORDERS, INVOICES = f"example-svc-orders-{RUN}", f"example-svc-invoices-{RUN}"


@dataclass
class Order:
    id: int
    qty: int


@dataclass
class Invoice:
    order: int
    amount: float


def build(client: mqkit.aio.Client, mailed: list[Invoice]) -> App:
    app = App(client=client, graceful_timeout=10)

    @app.handler(ORDERS, group="billing", output=INVOICES,
                 retry=mqkit.RetryPolicy(max_attempts=2, initial_backoff=0.1))
    async def bill(order: Order) -> Invoice:
        return Invoice(order=order.id, amount=9.5 * order.qty)

    @app.handler(INVOICES, group="mail")
    def mail(invoice: Invoice) -> None:  # a plain function: runs on the app's threads
        mailed.append(invoice)

    return app


async def main() -> None:
    async with mqkit.aio.connect() as client:  # $MQKIT_URL, else memory://
        mailed: list[Invoice] = []
        app = build(client, mailed)
        dlq = client.dead_letter_topic(ORDERS)
        run = asyncio.create_task(app.run())
        try:
            while not app.ready:  # topics and groups declared, every handler running
                if run.done():
                    await run  # raises the start's error
                await asyncio.sleep(0.01)
            for n in (1, 2, 3):
                await app.publish(ORDERS, Order(id=n, qty=n))
            await app.publish(ORDERS, {"id": 4, "qty": "two"})  # a bad payload

            deadline = time.monotonic() + 60  # a bound on every backend
            billing = app.stats(ORDERS)
            while (len(mailed) < 3 or billing.payload_errors < 1) and not run.done():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"not done in 60 s: {len(mailed)} mailed, "
                                       f"{billing.payload_errors} payload errors")
                await asyncio.sleep(0.02)
        finally:
            app.stop()
            await run  # drained: every message settled, consumers closed

        try:
            for invoice in sorted(mailed, key=lambda i: i.order):
                print(f"mailed invoice for order {invoice.order}: {invoice.amount:.2f}")
            assert sorted(i.order for i in mailed) == [1, 2, 3], mailed

            async with client.consumer(dlq, mqkit.aio.DEAD_LETTER_GROUP) as letters:
                dead: list[mqkit.aio.ReceivedMessage] = []
                while not dead and time.monotonic() < deadline:
                    dead = await letters.receive(10, timeout=1.0)
                for msg in dead:
                    await msg.ack()
                    print("dead letter:", msg.body.decode(),
                          msg.headers[mqkit.DLQ_HEADERS["reason"]])
            assert len(dead) == 1, dead
            assert dead[0].headers[mqkit.DLQ_HEADERS["attempts"]] == "1", dead[0].headers
            assert billing.handled == 3 and billing.payload_errors == 1, billing
        finally:
            for topic in (ORDERS, INVOICES, dlq, client.dead_letter_topic(INVOICES)):
                await client.admin.delete_topic(topic)


if __name__ == "__main__":
    asyncio.run(main())
