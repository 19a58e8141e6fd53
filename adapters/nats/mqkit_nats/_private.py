"""The one place mqkit_nats uses nats-py's private API, pinned to the nats-py it runs.

nats-py's public ``publish`` builds and queues one PUB/HPUB command per call; a batch
send with ``publish`` costs a call, a header encoding and a size check per message in
Python. The driver instead encodes a whole batch as protocol bytes (``_wire``) and
queues them as ONE write on the client's outbound buffer; nats-py has no public call
for that. Everything else goes through the public API.

:data:`REQUIRED` lists what is used, with the parameters relied on;
``tests/test_nats_private.py`` fails naming the attribute when a nats-py other than
:data:`PINNED` (the pyproject pin) lacks one, and when the installed version moves.
"""

from __future__ import annotations

from nats.aio.client import Client as NATS

__all__ = ["PINNED", "REQUIRED", "write"]

PINNED = "2.16.0"
"""The nats-py version this module was checked against (pyproject's ``nats-py==``)."""

REQUIRED: dict[str, tuple[str, ...]] = {
    "_send_command": ("cmd", "priority"),   # append bytes to the outbound buffer
    "_flush_pending": ("force_flush",),     # wake the flusher task (no PING)
}
"""Private ``nats.aio.client.Client`` coroutines used here, with their parameters."""


async def write(nc: NATS, data: bytes, *, kick: bool = False) -> None:
    """Queue ``data`` (complete, already encoded protocol commands) on ``nc``'s outbound
    buffer as one write, in order with everything published before; with ``kick``,
    also wake nats-py's flusher so it goes out now (no PING/PONG: the caller confirms
    delivery another way, e.g. PubAcks). Without ``kick`` it leaves with the next flush
    (``nc.flush()`` sends a PING after it and waits for the PONG)."""
    await nc._send_command(data)
    if kick:
        await nc._flush_pending()
