"""Kafka hardening (issue 14), against the shared broker: the broker's MESSAGE_TOO_LARGE
is a ``MessageTooLarge`` with the measured record size (it was ``size=-1, limit=-1``), and
the broker's limit left ``None`` because the broker does not report it; and the producer
keeps working after it (kafka-python left it failing every later send).
"""

from __future__ import annotations

import pytest

import mqkit


def test_broker_refusal_reports_the_record_size_and_leaves_the_producer_working(
        url: str, name: str) -> None:
    with mqkit.connect(url) as client:
        # The topic takes 2000 bytes; the portable check (1 MB) lets 5000 through.
        client.admin.create_topic(name, configs={"max.message.bytes": "2000"})
        try:
            with client.producer(name) as producer:
                with pytest.raises(mqkit.MessageTooLarge) as info:
                    producer.send(b"x" * 5000)
                # kafka-python's idempotent producer turns that refusal into a fatal
                # state failing every later send: the driver replaces the producer.
                producer.send(b"small")
                producer.send_batch([b"a", b"b"])
        finally:
            client.admin.delete_topic(name)
    exc = info.value
    assert exc.size is not None and 5000 < exc.size < 5400, exc.size
    assert exc.limit is None
    assert f"{exc.size} bytes" in str(exc)
