"""Sending: one pipelined XADD per message, one round trip per batch."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, TypeVar

import redis.exceptions as re_

import mqkit
from mqkit.driver import Message, TopicDriver

from ._errors import map_error, mapped
from ._link import Link
from ._options import RedisOptions
from ._wire import encode, join_fields

_hiredis_pack: Any
try:  # hiredis: the C packer, when installed
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - hiredis is optional
    _hiredis_pack = None

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


def commands(head: list[bytes | str], delayed_key: str, messages: Sequence[Message],
             now: float) -> list[tuple[bytes | str, ...]]:
    """One XADD per message, or a ZADD into the delayed set for a delayed one."""
    out: list[tuple[bytes | str, ...]] = []
    for m in messages:
        if m.delay:
            due = str(int((now + m.delay) * 1000))
            out.append(("ZADD", delayed_key, due, join_fields(encode(m))))
        else:
            out.append((*head, *encode(m)))
    return out


def pack_batch(conn: Any, batch: list[tuple[bytes | str, ...]]) -> bytes:
    """The RESP bytes of these commands, for one write."""
    if _hiredis_pack is not None:
        return b"".join([_hiredis_pack(command) for command in batch])
    chunks: list[bytes] = []
    for command in batch:
        chunks += conn.pack_command(*command)
    return b"".join(chunks)


class RedisTopic(TopicDriver):
    """A stream key; ``send_batch`` writes the batch in one pipeline (no MULTI/EXEC)."""

    def __init__(self, link: Link, topic: str, key: str, delayed_key: str,
                 options: RedisOptions) -> None:
        self._link = link
        self._topic = topic
        self._key = key
        self._delayed = delayed_key
        self._options = options
        # NOMKSTREAM: a send never creates a stream (a deleted topic stays deleted).
        self._head: tuple[str, ...] = ("XADD", key, "NOMKSTREAM")

    def send_batch(self, messages: Sequence[Message]) -> None:
        now = time.time()
        head: list[bytes | str] = [*self._head, *trim_args(self._options, now), "*"]
        if any(m.delay for m in messages):
            batch = commands(head, self._delayed, messages, now)
        else:
            batch = [(*head, *encode(m)) for m in messages]
        pool = self._link.client.connection_pool
        with mapped(f"send to {self._topic!r}"):
            conn: Any = pool.get_connection()
            try:
                # One buffer, one write; the replies are read raw (no response
                # callbacks): what redis-py's pipeline does, minus its per-command
                # bookkeeping.
                conn.send_packed_command([pack_batch(conn, batch)])
                read = conn.read_response
                results: list[Any] = []
                for _ in messages:
                    try:
                        results.append(read(disable_decoding=True))
                    except re_.ResponseError as exc:
                        results.append(exc)
            finally:
                pool.release(conn)
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

