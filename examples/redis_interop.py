"""mqkit and plain redis-py on the same Redis stream, both ways.

    MQKIT_URL=redis://127.0.0.1:6379/0 python examples/redis_interop.py

A plain client appends an entry (``body`` field, ``h:<name>`` header fields) that an
mqkit consumer reads; mqkit sends a message that a plain consumer group reads, fields
as documented in docs/backends/redis.md.
"""

from __future__ import annotations

import os
import uuid

import redis

import mqkit


def main() -> None:
    url = os.environ.get("MQKIT_URL", "redis://127.0.0.1:6379/0")
    if not url.startswith(("redis://", "rediss://")):
        # CI runs every example on every backend's URL.
        print(f"skipped: {url.split('://', 1)[0]}:// is not a redis:// URL")
        return
    topic = f"example-interop-{uuid.uuid4().hex[:6]}"
    plain = redis.Redis.from_url(url.split("?", 1)[0])
    with mqkit.connect(url) as client:
        client.admin.create_topic(topic)
        client.admin.create_group(topic, "mqkit-side")
        plain.xgroup_create(topic, "plain-side", "$")
        try:
            # plain redis-py -> mqkit
            plain.xadd(topic, {"body": b"from redis-py", "h:tenant": "a"})
            with client.consumer(topic, "mqkit-side") as consumer:
                [msg] = consumer.receive(1, timeout=5)
                print(f"mqkit read: {msg.body!r} headers={dict(msg.headers)} id={msg.id}")
                msg.ack()
            # mqkit -> plain redis-py
            sent = client.producer(topic).send(b"from mqkit", headers={"tenant": "b"})
            reply = plain.xreadgroup("plain-side", "me", {topic: ">"}, count=10, block=5000)
            entries = reply[topic.encode()] if isinstance(reply, dict) else reply[0][1]
            for entry_id, fields in entries:
                print(f"redis-py read {entry_id!r}: {fields}")
                plain.xack(topic, "plain-side", entry_id)
            mine = [f for _, f in entries if f.get(b"id") == sent.encode()]
            assert mine and mine[0][b"body"] == b"from mqkit" and mine[0][b"h:tenant"] == b"b"
        finally:
            client.admin.delete_topic(topic)
            plain.close()


if __name__ == "__main__":
    main()
