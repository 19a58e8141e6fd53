"""Sending: one pipelined XADD per message, one round trip per batch."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TypeVar

import mqkit
from mqkit.driver import Message, TopicDriver

from ._errors import map_error, mapped
from ._link import Link
from ._options import RedisOptions
from ._wire import encode

__all__ = ["RedisTopic", "trim_args"]

T = TypeVar("T")


def trim_args(options: RedisOptions, now: float) -> list[bytes | str]:
    """The trimming arguments of XADD (``MAXLEN``/``MINID``), empty when retention is
    unbounded. Sans-I/O: ``now`` is seconds since the epoch."""
    how = "=" if options.trim_exact else "~"
    if options.maxlen:
        return ["MAXLEN", how, str(options.maxlen)]
    if options.max_age:
        return ["MINID", how, str(int((now - options.max_age) * 1000))]
    return []


class RedisTopic(TopicDriver):
    """A stream key; ``send_batch`` writes the batch in one pipeline (no MULTI/EXEC)."""

    def __init__(self, link: Link, topic: str, key: str, options: RedisOptions) -> None:
        self._link = link
        self._topic = topic
        self._key = key
        self._options = options
        # NOMKSTREAM: a send never creates a stream (a deleted topic stays deleted).
        self._head: tuple[str, ...] = ("XADD", key, "NOMKSTREAM")

    def send_batch(self, messages: Sequence[Message]) -> None:
        head = [*self._head, *trim_args(self._options, time.time()), "*"]
        with mapped(f"send to {self._topic!r}"):
            pipe = self._link.client.pipeline(transaction=False)
            command = pipe.execute_command
            for message in messages:
                command(*head, *encode(message))
            results = pipe.execute(raise_on_error=False)
        failures: dict[int, mqkit.MQError] = {}
        for i, result in enumerate(results):
            if result is None:
                failures[i] = mqkit.NotFound(f"redis: topic {self._topic!r} (stream "
                                             f"{self._key!r}) does not exist")
            elif isinstance(result, Exception):
                failures[i] = map_error(result, f"send to {self._topic!r}")
        if not failures:
            return
        if len(failures) == len(messages):
            first = failures[0]
            cause = results[0] if isinstance(results[0], Exception) else None
            raise first from cause
        raise mqkit.SendBatchError(failures, len(messages))

    def close(self) -> None:
        return None

    def as_(self, kind: type[T]) -> T | None:
        client = self._link.client
        return client if isinstance(client, kind) else None

