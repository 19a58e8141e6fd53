"""Sending to a JetStream stream with a window of outstanding PubAcks.

Every message of a batch is published at once with its own reply inbox
(``js.publish_async``); the window (``publish_window``) bounds the PubAcks outstanding
on the connection. ``send_batch`` returns only when every message's PubAck came back:
a batch that returned is stored by the stream (and replicated, with ``replicas`` > 1).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, TypeVar

import mqkit
from mqkit.driver import AsyncTopicDriver, Message

from ._errors import map_error, mapped
from ._link import Link
from ._names import header_size, message_headers

__all__ = ["StreamTopic", "check_size"]

T = TypeVar("T")


def check_size(messages: Sequence[Message], headers: Sequence[dict[str, str]],
               max_payload: int) -> None:
    """Raise MessageTooLarge, before anything is sent, for a body plus headers too big."""
    for msg, hdrs in zip(messages, headers, strict=True):
        size = len(msg.body) + header_size(hdrs)
        if size > max_payload:
            raise mqkit.MessageTooLarge(
                f"message {msg.id} is {size} bytes with its headers; the server's "
                f"max_payload is {max_payload}", size=size, limit=max_payload)


class StreamTopic(AsyncTopicDriver):
    """Publishes to subject ``topic``, captured by stream ``stream``."""

    def __init__(self, link: Link, topic: str, stream: str, max_payload: int) -> None:
        self._link = link
        self._topic = topic
        self._stream = stream
        self._max_payload = max_payload

    async def send_batch(self, messages: Sequence[Message]) -> None:
        link = self._link
        what = f"send to {self._topic!r}"
        headers = [message_headers(m) for m in messages]
        check_size(messages, headers, self._max_payload)
        link.check(what)
        js, topic = link.js, self._topic
        futures: list[asyncio.Future[Any]] = []
        try:
            with mapped(what):
                # No wait_stall: nats-py's wait_for on the window's semaphore would yield
                # to the loop per message, and its flusher would then write each message
                # on its own. A full window waits for PubAcks, each bounded by the
                # api_timeout of the send_batch that published it.
                for msg, hdrs in zip(messages, headers, strict=True):
                    futures.append(await js.publish_async(topic, msg.body, headers=hdrs))
            if futures:
                _, pending = await asyncio.wait(futures, timeout=link.options.api_timeout)
                for fut in pending:
                    fut.cancel()
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
        self._raise_failures(messages, futures)

    def _raise_failures(self, messages: Sequence[Message],
                        futures: Sequence[asyncio.Future[Any]]) -> None:
        what = f"send to {self._topic!r}"
        failures: dict[int, mqkit.MQError] = {}
        for i in range(len(messages)):
            if i >= len(futures):
                failures[i] = mqkit.Unavailable(f"nats: {what}: not published")
                continue
            fut = futures[i]
            if fut.cancelled():
                failures[i] = (mqkit.Timeout if self._link.nc.is_connected else
                               mqkit.Unavailable)(
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
        raise mqkit.SendBatchError(failures, len(messages))

    async def close(self) -> None:
        return None

    def as_(self, kind: type[T]) -> T | None:
        for native in (self._link.nc, self._link.js):
            if isinstance(native, kind):
                return native
        return None

