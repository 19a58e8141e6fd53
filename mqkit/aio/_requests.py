"""Request/reply over topics: one private reply topic per client, matched by correlation id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable  # unasync: from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from .._errors import Timeout
from .._message import Message, new_message_id
from ._received import AsyncReceivedMessage
from ._runtime import Lock, monotonic

if TYPE_CHECKING:
    from ._connection import AsyncConnection
    from ._consumer import AsyncConsumer

__all__ = ["AsyncRequester"]

# Replies are read in short slices so that a waiter whose reply was stashed by another
# waiter sees it promptly.
_SLICE = 0.25
# Replies for requests that already timed out are kept this long, then dropped.
_STASH_TTL = 60.0
REPLY_GROUP = "replies"


class AsyncRequester:
    """Sends requests and waits for their replies on the client's reply topic."""

    def __init__(self, connection: AsyncConnection,
                 consumer: Callable[[str, str], AsyncConsumer],
                 send: Callable[  # unasync: send: Callable[[str, Message], str]) -> None:
                     [str, Message], Awaitable[str]]) -> None:  # unasync: drop
        """``consumer(topic, group)`` makes one of the client's consumers; ``send(topic,
        message)`` sends with the client's internal producer for ``topic``."""
        self._connection = connection
        self._new_consumer = consumer
        self._send = send
        self._lock = Lock()
        self._topic: str | None = None
        self._consumer: AsyncConsumer | None = None
        self._stash: dict[str, tuple[float, AsyncReceivedMessage]] = {}

    async def _ensure(self) -> tuple[str, AsyncConsumer]:
        if self._topic is None or self._consumer is None:
            topic = f"mqkit-reply-{new_message_id()[:16]}"
            await self._connection.create_topic(topic, {})
            await self._connection.create_group(topic, REPLY_GROUP, "latest")
            consumer = self._new_consumer(topic, REPLY_GROUP)
            await consumer._open()
            self._topic, self._consumer = topic, consumer
        return self._topic, self._consumer

    async def request(self, topic: str, message: Message, timeout: float) -> AsyncReceivedMessage:
        async with self._lock:
            reply_topic, _ = await self._ensure()
        corr = message.correlation_id or new_message_id()
        await self._send(
            topic, replace(message, reply_to=reply_topic, correlation_id=corr))
        deadline = monotonic() + timeout
        while True:
            async with self._lock:
                found = self._stash.pop(corr, None)
                if found is not None:
                    return found[1]
                remaining = deadline - monotonic()
                if remaining <= 0:
                    raise Timeout(f"no reply on {topic!r} for correlation id {corr} "
                                  f"within {timeout}s")
                _, consumer = await self._ensure()
                got = await consumer.receive(10, min(remaining, _SLICE))
                if got:
                    await consumer.ack(got)
                now = monotonic()
                match = None
                for reply in got:
                    if reply.correlation_id == corr:
                        match = reply
                    elif reply.correlation_id:
                        self._stash[reply.correlation_id] = (now, reply)
                for key in [k for k, (t, _) in self._stash.items() if now - t > _STASH_TTL]:
                    del self._stash[key]
                if match is not None:
                    return match

    async def close(self) -> None:
        consumer, topic = self._consumer, self._topic
        self._consumer = self._topic = None
        if consumer is not None:
            await consumer.close()
        if topic is not None:
            await self._connection.delete_topic(topic)
