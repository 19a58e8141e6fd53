"""Request/reply on the asyncio face: a price service answers lookups.

    MQKIT_URL=nats://localhost:4222 python examples/request_reply_async.py
"""

from __future__ import annotations

import asyncio
import uuid

import mqkit
import mqkit.aio

PRICES = {"book": 12.5, "lamp": 30.0}


async def main() -> None:
    topic = f"example-prices-{uuid.uuid4().hex[:6]}"
    async with mqkit.aio.connect() as client:
        await client.admin.create_topic(topic)
        await client.admin.create_group(topic, "pricer")
        service = client.consumer(topic, "pricer")

        async def answer(request: mqkit.aio.ReceivedMessage) -> None:
            sku = request.decode()["sku"]
            await client.reply(request, {"price": PRICES.get(sku)}, codec=mqkit.JSON)

        task = asyncio.create_task(service.run(answer))
        try:
            for sku in ("book", "lamp"):
                reply = await client.request(topic, {"sku": sku}, codec=mqkit.JSON, timeout=10)
                print(sku, reply.decode()["price"])
                assert reply.decode()["price"] == PRICES[sku]
            try:
                await client.request(f"{topic}-nobody", b"?", timeout=0.5)
            except mqkit.NotFound:
                print("no such topic: NotFound")
        finally:
            service.stop()
            await task
            await service.close()
            await client.admin.delete_topic(topic)


if __name__ == "__main__":
    asyncio.run(main())
