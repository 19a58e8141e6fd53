"""``mqkit demo [URL]``: the order pipeline, the README's main job, written as an App.

Orders go to one topic read by two groups, ``billing`` and ``shipping``: every group
gets every order. Billing prices each order through a request/reply call to a price
service (another handler of the same app, replying to the request) and publishes an
invoice, which a ``ledger`` handler records. One order is poison (an unknown product): it
fails every attempt and ends in the dead-letter topic with the reason. Every payload is a
typed dataclass. Runs on ``memory://`` by default, or on any URL (fresh topics named
``demo-*-<random>``, deleted at the end).

The app runs until the expected work was seen (3 invoices, 4 shipments, 3 failed
attempts of the poison order) or a deadline passes, then stops gracefully; the summary
is printed after it stopped, so its lines come in the same order on every backend. The
last line is ``demo ok``, or ``demo FAILED: <why>`` (exit status 1).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from dataclasses import dataclass

from .._errors import MQError
from .._payloads import decoder_for, encode_value
from .._retry import RetryPolicy
from .._validation import DLQ_HEADERS
from ..aio import connect as aio_connect
from ..aio._client import AsyncClient
from ..aio._received import AsyncReceivedMessage
from ..driver import DEAD_LETTER_GROUP
from ..service import App

__all__ = ["run_demo"]


@dataclass(frozen=True)
class Order:
    """An order, as the shop sends it."""

    order: int
    sku: str
    qty: int


@dataclass(frozen=True)
class PriceQuery:
    """A request to the price service."""

    sku: str


@dataclass(frozen=True)
class Price:
    """The price service's reply: ``price`` is ``None`` for an unknown product."""

    sku: str
    price: float | None


@dataclass(frozen=True)
class Invoice:
    """What billing publishes for each priced order."""

    order: int
    sku: str
    qty: int
    total: float


PRICES = {"book": 12.5, "lamp": 30.0, "mug": 7.25}
ORDERS = [
    Order(1, "book", 2),
    Order(2, "lamp", 1),
    Order(3, "unicorn", 1),  # poison: no such product
    Order(4, "mug", 4),
]
RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.1, max_backoff=0.5)

_decode_query = decoder_for(PriceQuery)
_decode_price = decoder_for(Price)
_decode_order = decoder_for(Order)


@dataclass
class _Seen:
    """What the handlers saw, for the summary (the app's loop is one thread)."""

    failures: list[str] = dataclasses.field(default_factory=list)
    invoices: list[Invoice] = dataclasses.field(default_factory=list)
    shipped: list[int] = dataclasses.field(default_factory=list)
    finished: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    def done(self) -> bool:
        return (len({i.order for i in self.invoices}) == 3 and len(set(self.shipped)) == 4
                and len(self.failures) >= RETRY.max_attempts)

    def check(self) -> None:
        """Set :attr:`finished` once everything expected was seen (on the loop)."""
        if self.done():
            self.finished.set()


def build_app(client: AsyncClient, orders: str, prices: str, invoices: str,
              seen: _Seen) -> App:
    """The pipeline as an App on ``client`` (call it on the running loop): its startup
    hook sends :data:`ORDERS`; the handlers record what they saw in ``seen``."""
    app = App(client=client, graceful_timeout=10)
    loop = asyncio.get_running_loop()

    @app.on_startup
    async def send_orders() -> None:
        for order in ORDERS:
            await app.publish(orders, order, key=f"order-{order.order}")

    @app.handler(prices, group="pricer")
    async def price(request: AsyncReceivedMessage) -> None:
        # request/reply: the handler asks for the message itself, to reply to it
        query = _decode_query(request.body, request.content_type)
        body, content_type = encode_value(Price(query.sku, PRICES.get(query.sku)))
        await client.reply(request, body, content_type=content_type)

    @app.handler(orders, group="billing", output=invoices, retry=RETRY)
    async def bill(order: Order) -> Invoice:
        body, content_type = encode_value(PriceQuery(order.sku))
        reply = await client.request(prices, body, content_type=content_type, timeout=10)
        quote = _decode_price(reply.body, reply.content_type)
        if quote.price is None:
            seen.failures.append(f"order {order.order} attempt "
                                 f"{len(seen.failures) + 1} failed: unknown product "
                                 f"{order.sku!r}")
            seen.check()
            raise LookupError(f"unknown product {order.sku!r}")
        return Invoice(order.order, order.sku, order.qty, quote.price * order.qty)

    @app.handler(invoices, group="ledger")
    async def record(invoice: Invoice) -> None:
        seen.invoices.append(invoice)
        seen.check()

    @app.handler(orders, group="shipping")
    def ship(order: Order) -> None:  # a plain function: runs on the app's threads
        seen.shipped.append(order.order)
        loop.call_soon_threadsafe(seen.check)

    return app


def run_demo(url: str | None) -> int:
    """Run the pipeline and print what happened; 0 when every order ended as expected."""
    return asyncio.run(_demo(url))


async def _demo(url: str | None) -> int:
    suffix = uuid.uuid4().hex[:6]
    orders, prices = f"demo-orders-{suffix}", f"demo-prices-{suffix}"
    invoices = f"demo-invoices-{suffix}"
    async with aio_connect(url) as client:
        backend = client.capabilities.backend
        print(f"broker: {client.url} ({backend})")
        topics = (orders, prices, invoices)
        try:
            return await _pipeline(client, orders, prices, invoices)
        finally:
            for topic in (*topics, *(client.dead_letter_topic(t) for t in topics)):
                try:
                    await client.admin.delete_topic(topic)
                except MQError:  # cleanup only: never hide the outcome
                    pass


async def _pipeline(client: AsyncClient, orders: str, prices: str, invoices: str) -> int:
    seen = _Seen()
    app = build_app(client, orders, prices, invoices, seen)
    for spec in app.handlers:
        output = f" -> {spec.output}" if spec.output else ""
        print(f"handler {spec.func.__name__}: {spec.topic} (group {spec.group}){output}")
    # Brokers deliver and redeliver with latency (a retry's delay, a poll): a deadline
    # bounds the run everywhere, and a broken pipeline fails instead of hanging.
    deadline = 10.0 if client.capabilities.backend == "memory" else 60.0
    run = asyncio.ensure_future(app.run())
    waiter = asyncio.ensure_future(seen.finished.wait())
    try:
        await asyncio.wait([run, waiter], timeout=deadline,
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    finished = seen.done()
    app.stop()
    try:
        await run
    except MQError as exc:
        print(f"demo FAILED: the app stopped with {type(exc).__name__}: {exc}")
        return 1
    print(f"sent {len(ORDERS)} orders")
    for invoice in sorted(seen.invoices, key=lambda i: i.order):
        print(f"  billing: order {invoice.order}: {invoice.qty} x {invoice.sku} = "
              f"{invoice.total:.2f}")
    for failure in seen.failures:
        print(f"  billing: {failure}")
    billing = app.stats(orders, "billing").run
    if billing is not None:
        print(f"billing: {billing.acked} acked, {billing.retried} retried, "
              f"{billing.dead_lettered} dead-lettered; ledger: "
              f"{len(seen.invoices)} invoices recorded")
    print(f"shipping: packed orders {sorted(seen.shipped)}")

    dead = await _dead_letters(client, client.dead_letter_topic(orders))
    for order_no, attempts, reason in dead:
        print(f"dead letter: order {order_no} after {attempts} attempts: {reason}")

    if not finished:
        print(f"demo FAILED: the pipeline did not finish within {deadline:g} s")
        return 1
    ok = (sorted(i.order for i in seen.invoices) == [1, 2, 4]
          and sorted(seen.shipped) == [1, 2, 3, 4] and [d[0] for d in dead] == [3])
    print("demo " + ("ok" if ok else "FAILED: unexpected outcome"))
    return 0 if ok else 1


async def _dead_letters(client: AsyncClient, dlq: str) -> list[tuple[int, str, str]]:
    """The dead letters of the order topic: ``(order, attempts, reason)``, read until the
    first arrives or 10 s passed (a broker may make it visible a moment later)."""
    dead: list[tuple[int, str, str]] = []
    async with client.consumer(dlq, DEAD_LETTER_GROUP) as letters:
        deadline = time.monotonic() + 10
        while not dead and time.monotonic() < deadline:
            for msg in await letters.receive(10, timeout=1.0):
                order = _decode_order(msg.body, msg.content_type)
                dead.append((order.order, msg.headers.get(DLQ_HEADERS["attempts"], "?"),
                             msg.headers.get(DLQ_HEADERS["reason"], "?")))
                await msg.ack()
    return dead
