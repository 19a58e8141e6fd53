"""Sending: one shared KafkaProducer per driver, flushed once per batch."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from kafka import KafkaProducer

from mqkit.driver import (
    Message,
    MessageTooLarge,
    MQError,
    SendBatchError,
    TopicDriver,
    Unavailable,
)

from ._errors import map_error, mapped
from ._names import RETRY_AT, record_headers, record_size

__all__ = ["KafkaTopic", "send_records"]

T = TypeVar("T")


def send_records(producer: KafkaProducer, topic: str,
                 records: Sequence[tuple[bytes | None, bytes, list[tuple[str, bytes]]]],
                 max_request_size: int, timeout: float) -> None:
    """Send every record and wait for the broker's acks; SendBatchError names failures.

    Sizes are checked first, so a record over ``max_request_size`` raises
    MessageTooLarge before anything is sent.
    """
    # Cheap bound first: a body 8 KiB under the limit with at most 4 short headers and
    # a short key is under it with everything (4 x (10 + 4 x 128 + 512) + 1024 + 82).
    quick = max_request_size - 8192
    for key, value, headers in records:
        if len(value) < quick and (key is None or len(key) < 1024):
            if len(headers) == 1:  # the common case: only the id
                name, text = headers[0]
                if len(name) < 128 and len(text) < 512:
                    continue
            elif len(headers) <= 4 and all(len(k) < 128 and len(v) < 512 for k, v in headers):
                continue
        size = record_size(key, value, headers)
        if size > max_request_size:
            raise MessageTooLarge(
                f"kafka: record of {size} bytes with key and headers exceeds "
                f"max_request_size {max_request_size}", size=size, limit=max_request_size)
    futures: list[Any] = []
    send = producer.send
    with mapped(f"send to {topic!r}"):
        for key, value, headers in records:
            futures.append(send(topic, value=value, key=key, headers=headers))
        # flush() sends what lingers at once and waits for every ack of this batch.
        producer.flush(timeout=timeout)
    failures: dict[int, MQError] = {}
    for i, future in enumerate(futures):
        if not future.is_done:
            failures[i] = Unavailable(f"kafka: send to {topic!r}: no ack within "
                                            f"{timeout:.0f}s")
        elif future.failed():
            exc = future.exception
            err = map_error(exc, f"send to {topic!r}")
            if isinstance(err, MessageTooLarge) and err.size is None:
                # The broker's MESSAGE_TOO_LARGE names no sizes: measure the record; its
                # limit (the topic's max.message.bytes) the broker does not say.
                key, value, headers = records[i]
                size = record_size(key, value, headers)
                err = MessageTooLarge(
                    f"kafka: send to {topic!r}: the broker refused a record of {size} bytes "
                    "(key, value and headers) as larger than the topic's max.message.bytes",
                    size=size, limit=None)
            err.__cause__ = exc
            failures[i] = err
    if not failures:
        return
    if len(failures) == len(futures):
        first = failures[0]
        raise first from first.__cause__
    raise SendBatchError(failures, len(futures))


class KafkaTopic(TopicDriver):
    """Sends to one topic through the driver's producer."""

    def __init__(self, producer: Callable[[], KafkaProducer], topic: str,
                 max_request_size: int, timeout: float) -> None:
        self._producer = producer
        self._topic = topic
        self._max = max_request_size
        self._timeout = timeout

    def send_batch(self, messages: Sequence[Message]) -> None:
        """Send ``messages``; a delayed one carries its due time (``mqkit-retry-at``):
        each group's consumer moves it to its retry topic until then (emulated delay,
        see ``KafkaSubscription._defer``)."""
        now = time.time()
        records = [(None if m.key is None else m.key.encode(), m.body,
                    record_headers(m) if not m.delay else
                    record_headers(m, [(RETRY_AT, str(int((now + m.delay) * 1000)))]))
                   for m in messages]
        send_records(self._producer(), self._topic, records, self._max, self._timeout)

    def close(self) -> None:
        """Nothing to release: the producer is the driver's, flushed by every send."""

    def as_(self, kind: type[T]) -> T | None:
        producer = self._producer()
        return producer if isinstance(producer, kind) else None
