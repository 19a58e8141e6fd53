"""Sending: one XADD per message, the batch written in one buffer (one round trip)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TypeVar

from mqkit.driver import Message, TopicDriver

from ._errors import mapped
from ._flows import exchange, send_commands, send_outcome
from ._link import Link

__all__ = ["RedisTopic"]

T = TypeVar("T")


class RedisTopic(TopicDriver):
    """A stream key; ``send_batch`` is one pipeline without MULTI/EXEC."""

    def __init__(self, link: Link, topic: str, key: str, delayed_key: str) -> None:
        self._link = link
        self._topic = topic
        self._key = key
        self._delayed = delayed_key

    def send_batch(self, messages: Sequence[Message]) -> None:
        commands = send_commands(self._key, self._delayed, self._link.options, messages,
                                 time.time())
        with mapped(f"send to {self._topic!r}"):
            replies = self._link.run(exchange(commands))
        send_outcome(self._topic, self._key, replies)

    def close(self) -> None:
        return None

    def as_(self, kind: type[T]) -> T | None:
        client = self._link.client
        return client if isinstance(client, kind) else None
