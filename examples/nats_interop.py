"""mqkit and a plain nats-py client on the same JetStream stream, both ways.

    MQKIT_URL=nats://127.0.0.1:4222 python examples/nats_interop.py

A topic is a subject captured by the stream ``MQKIT_<topic>``; an mqkit group is a
durable pull consumer of that name. A plain client's publish (``Nats-Msg-Id`` and its own
headers) is read by mqkit; mqkit's message is read by a plain pull consumer, the id in
``Nats-Msg-Id`` and user headers as NATS headers (docs/backends/nats.md). On any other
backend it says so and exits 0 (CI runs every example on every backend).
"""

from __future__ import annotations

import asyncio
import os
import uuid

import mqkit.aio


async def main() -> None:
    url = os.environ.get("MQKIT_URL", "nats://127.0.0.1:4222")
    if not url.startswith("nats://") or "mode=core" in url:
        print(f"skipped: {url.split('?', 1)[0]} is not a JetStream nats:// URL")
        return
    import nats

    topic = f"example-interop-{uuid.uuid4().hex[:6]}"
    plain = await nats.connect(url.split("?", 1)[0])
    js = plain.jetstream()
    async with mqkit.aio.connect(url) as client:
        await client.admin.create_topic(topic)
        await client.admin.create_group(topic, "billing")
        await client.admin.create_group(topic, "audit")
        try:
            # plain nats-py -> mqkit
            await js.publish(topic, b"from nats-py", headers={"Nats-Msg-Id": "plain-1",
                                                              "tenant": "a"})
            async with client.consumer(topic, "billing") as consumer:
                [msg] = await consumer.receive(1, timeout=10)
                print(f"mqkit read: {msg.body!r} id={msg.id} headers={dict(msg.headers)}")
                assert msg.id == "plain-1" and dict(msg.headers) == {"tenant": "a"}
                await msg.ack()
            # mqkit -> plain nats-py, through the durable consumer of group "audit"
            async with client.producer(topic) as producer:
                sent = await producer.send(b"from mqkit", headers={"tenant": "b"})
            sub = await js.pull_subscribe(topic, durable="audit", stream=f"MQKIT_{topic}")
            records = await sub.fetch(2, timeout=10)
            mine = [r for r in records if r.data == b"from mqkit"]
            for record in records:
                await record.ack()
            assert mine, "the plain consumer did not get mqkit's message"
            headers = dict(mine[0].headers or {})
            print(f"nats-py read: {mine[0].data!r} headers={headers}")
            assert headers == {"Nats-Msg-Id": sent, "tenant": "b"}
        finally:
            await client.admin.delete_topic(topic)
            await plain.close()


if __name__ == "__main__":
    asyncio.run(main())
