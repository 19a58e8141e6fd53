"""Sending to a JetStream stream with a window of outstanding PubAcks.

A batch is encoded into one buffer of ``HPUB`` commands, each asking for its PubAck on
its own reply subject (``<inbox>.<batch>.<index>``, one wildcard subscription per
connection), and written at once; up to ``publish_window`` PubAcks are outstanding.
``send_batch`` returns only when every message's PubAck came back: a batch that returned
is stored by the stream (and replicated, with ``replicas`` > 1).

A message with a priority in 1..9 goes to its band's subject (``_bands``): the first
send of a producer object to a band makes sure the band exists, with a consumer for
every group of the topic (``ensure_band``), before anything is published to it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any, TypeVar

import nats.js.errors as je
from nats.aio.msg import Msg

from mqkit.driver import (
    AsyncTopicDriver,
    Message,
    MQError,
    SendBatchError,
    Timeout,
    Unavailable,
)

from ._bands import ensure_band
from ._errors import map_error, mapped
from ._link import Link
from ._names import band_subject
from ._private import write
from ._wire import encode_batch

__all__ = ["PubAcks", "StreamTopic"]

T = TypeVar("T")


class PubAcks:
    """Routes PubAcks arriving on ``<prefix><batch>.<index>`` to their futures."""

    def __init__(self, link: Link) -> None:
        self._link = link
        self.prefix = link.nc.new_inbox() + "."
        self._batches: dict[int, list[asyncio.Future[None]]] = {}
        self._next = 0

    async def start(self) -> None:
        await self._link.nc.subscribe(self.prefix + ">", cb=self._on_ack)

    def expect(self, count: int) -> tuple[int, str, list[asyncio.Future[None]]]:
        """A batch id, its reply prefix and one future per message."""
        self._next += 1
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = [loop.create_future() for _ in range(count)]
        self._batches[self._next] = futures
        return self._next, f"{self.prefix}{self._next}.", futures

    def forget(self, batch: int) -> None:
        self._batches.pop(batch, None)

    async def _on_ack(self, msg: Msg) -> None:
        batch, _, index = msg.subject[len(self.prefix):].partition(".")
        futures = self._batches.get(int(batch))
        if futures is None:
            return  # a batch that gave up waiting
        future = futures[int(index)]
        if future.done():
            return
        data = msg.data
        if not data and msg.headers and msg.headers.get("Status") == "503":
            future.set_exception(je.NoStreamResponseError())
        elif b'"error"' in data:
            try:  # nats-py raises the error class matching the response's code
                je.APIError.from_error(json.loads(data)["error"])
            except je.APIError as exc:
                future.set_exception(exc)
            else:  # pragma: no cover - from_error always raises
                future.set_exception(je.APIError(description=data.decode()))
        else:
            future.set_result(None)


class StreamTopic(AsyncTopicDriver):
    """Publishes to subject ``topic``, captured by stream ``stream``."""

    def __init__(self, link: Link, topic: str, stream: str, max_payload: int,
                 prefix: str = "") -> None:
        self._link = link
        self._topic = topic
        self._stream = stream
        self._max_payload = max_payload
        self._prefix = prefix
        self._bands: set[int] = set()  # bands this object made sure of

    async def _subjects(self, messages: Sequence[Message], what: str) -> list[str] | None:
        """Each message's subject, its band's for a priority in 1..9 (``None``: all go
        to the topic's subject); bands not made sure of yet are, first."""
        if not any(m.priority for m in messages):
            return None
        subjects = [self._topic if not m.priority else band_subject(self._topic, m.priority)
                    for m in messages]
        for priority in sorted({m.priority for m in messages if m.priority} - self._bands):
            with mapped(f"{what}: priority band {priority}"):
                await ensure_band(self._link.js, self._prefix, self._topic, priority)
            self._bands.add(priority)
        return subjects

    async def send_batch(self, messages: Sequence[Message]) -> None:
        link = self._link
        what = f"send to {self._topic!r}"
        await link.ready(what)
        subjects = await self._subjects(messages, what)
        acks = await link.pub_acks(PubAcks)
        window = link.options.publish_window
        # Every chunk is encoded (sizes checked) before anything is sent.
        plans: list[tuple[int, list[asyncio.Future[None]], bytes]] = []
        try:
            for start in range(0, len(messages), window):
                chunk = messages[start:start + window]
                batch, prefix, futures = acks.expect(len(chunk))
                try:
                    data = encode_batch(
                        self._topic, chunk, self._max_payload, prefix,
                        None if subjects is None else subjects[start:start + window])
                except BaseException:
                    acks.forget(batch)
                    raise
                plans.append((batch, futures, data))
            for batch, futures, data in plans:
                with mapped(what):
                    await write(link.nc, data, kick=True)
                _, pending = await asyncio.wait(futures, timeout=link.options.api_timeout)
                for fut in pending:
                    fut.cancel()
                acks.forget(batch)
        except BaseException:
            for batch, futures, _ in plans:
                acks.forget(batch)
                for fut in futures:
                    fut.cancel()
            raise
        if subjects is not None:  # a band deleted since: made sure of again next time
            for msg, fut in zip(messages, (f for _, fs, _ in plans for f in fs),
                                strict=True):
                if msg.priority and not fut.cancelled() and isinstance(
                        fut.exception(), je.NoStreamResponseError):
                    self._bands.discard(msg.priority)
        self._raise_failures(messages, [f for _, futures, _ in plans for f in futures])

    def _raise_failures(self, messages: Sequence[Message],
                        futures: Sequence[asyncio.Future[Any]]) -> None:
        what = f"send to {self._topic!r}"
        failures: dict[int, MQError] = {}
        for i in range(len(messages)):
            fut = futures[i]
            if fut.cancelled():
                failures[i] = (Timeout if self._link.nc.is_connected else
                               Unavailable)(
                    f"nats: {what}: no PubAck within {self._link.options.api_timeout} s")
                continue
            exc = fut.exception()
            if exc is not None:
                error = map_error(exc, what)
                error.__cause__ = exc
                failures[i] = error
        if not failures:
            return
        if len(failures) == len(messages):
            first = failures[0]
            if all(type(e) is type(first) for e in failures.values()):
                # Nothing is known stored: one error (Unavailable lets mqkit retry).
                raise first
        raise SendBatchError(failures, len(messages))

    async def close(self) -> None:
        return None

    def as_(self, kind: type[T]) -> T | None:
        for native in (self._link.nc, self._link.js):
            if isinstance(native, kind):
                return native
        return None
