"""NATS protocol encoding of a whole batch (sans-I/O), for core mode's fast path.

nats-py's ``publish`` validates and encodes one message per call (about 5 µs with
headers); encoding the batch here into one buffer and handing it to the connection
once costs about a fifth of that. The bytes are exactly what ``publish`` would write
(``HPUB <subject> <header bytes> <total bytes>``), except that header values are kept
as given (nats-py strips surrounding spaces).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from mqkit.driver import (
    InvalidMessage,
    Message,
    MessageTooLarge,
)

from ._names import message_headers

__all__ = ["encode_batch"]

# A header name: printable ASCII without ':' (what nats-py and the server accept).
_NAME = re.compile(r"[!-9;-~]+")
_HEAD = b"NATS/1.0\r\n"


def _header_block(headers: Mapping[str, str]) -> bytes:
    lines = [_HEAD]
    for name, value in headers.items():
        if not _NAME.fullmatch(name):
            raise InvalidMessage(
                f"header name {name!r} is not valid in NATS (printable ASCII, no ':')")
        if "\r" in value or "\n" in value:
            raise InvalidMessage(f"header {name!r}: value holds a line break")
        lines.append(f"{name}: {value}\r\n".encode())
    lines.append(b"\r\n")
    return b"".join(lines)


def encode_batch(subject: str, messages: Sequence[Message], max_payload: int,
                 reply_prefix: str | None = None,
                 subjects: Sequence[str] | None = None) -> bytes:
    """The ``HPUB`` commands for ``messages``; MessageTooLarge before any is encoded.

    With ``reply_prefix``, message ``i`` asks for its answer on ``<reply_prefix><i>``;
    with ``subjects``, message ``i`` goes to ``subjects[i]`` instead of ``subject``.
    """
    out: list[bytes] = []
    for i, msg in enumerate(messages):
        if subjects is not None:
            subject = subjects[i]
        if msg.id is not None and not msg.headers and msg.content_type is None \
                and msg.correlation_id is None and msg.reply_to is None and msg.key is None \
                and not msg.delay:
            # The common case: only the id (ids are mqkit's hex or the caller's text).
            block = (f"NATS/1.0\r\nNats-Msg-Id: {msg.id}\r\n\r\n".encode()
                     if "\r" not in msg.id and "\n" not in msg.id
                     else _header_block(message_headers(msg)))
        else:
            block = _header_block(message_headers(msg))
        total = len(block) + len(msg.body)
        if total > max_payload:
            raise MessageTooLarge(
                f"message {msg.id} is {total} bytes with its headers; the server's "
                f"max_payload is {max_payload}", size=total, limit=max_payload)
        if reply_prefix is None:
            out.append(f"HPUB {subject} {len(block)} {total}\r\n".encode())
        else:
            out.append(f"HPUB {subject} {reply_prefix}{i} {len(block)} {total}\r\n".encode())
        out.append(block)
        out.append(msg.body)
        out.append(b"\r\n")
    return b"".join(out)
