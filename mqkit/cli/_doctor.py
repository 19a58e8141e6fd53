"""``mqkit doctor URL``: prove a broker works end to end, and say how fast."""

from __future__ import annotations

import time
import uuid

from .._sync._client import connect
from .._sync._received import ReceivedMessage

__all__ = ["run_doctor"]


def run_doctor(url: str | None) -> int:
    """Connect, create a scratch topic and group, round-trip one message, report, clean up.

    Returns 0 when the message came back intact, 1 otherwise.
    """
    t0 = time.perf_counter()
    with connect(url) as client:
        t_connect = time.perf_counter() - t0
        print(f"broker      {client.url}")
        print(f"backend     {client.capabilities.backend}")
        print(f"connect     {t_connect * 1000:.1f} ms")
        topic = f"mqkit-doctor-{uuid.uuid4().hex[:8]}"
        try:
            client.admin.create_topic(topic)
            client.admin.create_group(topic, "doctor")
            with client.consumer(topic, "doctor") as consumer:
                consumer.receive(1, timeout=0)  # join the group before sending
                body = uuid.uuid4().bytes + b"\x00\xff mqkit doctor"
                t1 = time.perf_counter()
                with client.producer(topic) as producer:
                    sent_id = producer.send(body, headers={"probe": "1"})
                t_send = time.perf_counter() - t1
                got: list[ReceivedMessage] = []
                deadline = time.monotonic() + 30
                while not got and time.monotonic() < deadline:
                    got = consumer.receive(1, timeout=1.0)
                t_round = time.perf_counter() - t1
                ok = bool(got) and got[0].body == body and got[0].id == sent_id and \
                    got[0].headers.get("probe") == "1"
                if got:
                    got[0].ack()
            print(f"send        {t_send * 1000:.1f} ms")
            print(f"round trip  {t_round * 1000:.1f} ms  "
                  f"({'intact' if ok else 'MISSING OR CHANGED'})")
        finally:
            client.admin.delete_topic(topic)
        print("capabilities:")
        for name, value in client.capabilities.as_dict().items():
            print(f"  {name:22} {value}")
    print("ok" if ok else "FAILED")
    return 0 if ok else 1
