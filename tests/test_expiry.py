"""Emulated TTL (mqkit._expiry): stamped at send where the backend declares ttl emulated,
dropped and acked away at receive, counted; native TTL and no TTL untouched."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mqkit
import mqkit.aio
from mqkit._capabilities import Capabilities, Support
from mqkit._expiry import EXPIRES, split_expired, stamp
from mqkit._validation import prepare
from mqkit.driver import Delivery, Message

NATIVE = Capabilities(backend="t", ttl=Support.NATIVE)
EMULATED = Capabilities(backend="t", ttl=Support.EMULATED)


def _delivery(headers: dict[str, str]) -> Delivery:
    return Delivery(Message(b"x", headers=headers, id="i"), "t", None)


def test_prepare_stamps_only_where_emulated() -> None:
    msg = Message(b"x", ttl=2.5, headers={"a": "1"})
    before = time.time()
    out = prepare(msg, EMULATED)
    assert out.ttl is None and out.headers["a"] == "1"
    deadline = int(out.headers[EXPIRES])
    assert before * 1000 + 2500 - 1 <= deadline <= time.time() * 1000 + 2500
    native = prepare(msg, NATIVE)
    assert native.ttl == 2.5 and EXPIRES not in native.headers
    plain = prepare(Message(b"x"), EMULATED)
    assert EXPIRES not in plain.headers
    with pytest.raises(mqkit.Unsupported):
        prepare(msg, Capabilities(backend="t"))


@given(st.lists(st.one_of(st.none(), st.integers(0, 2_000), st.text(max_size=5)),
                max_size=20))
def test_split_keeps_order_and_drops_only_passed_deadlines(values: list[object]) -> None:
    now = 1.0  # seconds: 1000 ms
    deliveries = [_delivery({} if v is None else {EXPIRES: str(v)}) for v in values]
    live, expired = split_expired(deliveries, now=now)

    def gone(v: object) -> bool:
        try:
            return v is not None and int(str(v)) <= 1000
        except ValueError:
            return False  # unreadable: kept, never dropped

    assert expired == [d for d, v in zip(deliveries, values, strict=True) if gone(v)]
    assert live == [d for d, v in zip(deliveries, values, strict=True) if not gone(v)]


def test_stamp_uses_the_given_clock() -> None:
    headers: dict[str, str] = {}
    stamp(Message(b"", ttl=1.5), headers, now=10.0)
    assert headers == {EXPIRES: "11500"}


def _emulating_url() -> str:
    return f"memory://ttl-{uuid.uuid4().hex}"


@pytest.fixture
def emulated(monkeypatch: pytest.MonkeyPatch) -> None:
    """memory:// with ttl declared emulated (its native TTL unused), as a broker without
    per-message expiry has it: for the client and for every topic (producers check
    messages against their topic's declaration)."""
    from mqkit._sync._connection import Connection
    from mqkit.aio._connection import AsyncConnection

    for cls in (AsyncConnection, Connection):
        native: Any = cls.__dict__["capabilities"]
        per_topic: Any = cls.__dict__["capabilities_for"]

        def caps(self: object, native: Any = native) -> Capabilities:
            declared: Capabilities = native.fget(self)
            return replace(declared, ttl=Support.EMULATED)

        def caps_for(self: object, topic: str, per_topic: Any = per_topic) -> Capabilities:
            declared: Capabilities = per_topic(self, topic)
            return replace(declared, ttl=Support.EMULATED)

        monkeypatch.setattr(cls, "capabilities", property(caps))
        monkeypatch.setattr(cls, "capabilities_for", caps_for)


@pytest.mark.parametrize("face", ["sync", "async"])
@pytest.mark.usefixtures("emulated")
def test_expired_messages_are_acked_away_counted_and_never_handed_out(face: str) -> None:
    def check(got: list[bytes], expired: int, depth: int) -> None:
        assert got == [b"keep"]
        assert expired == 1
        assert depth == 0

    if face == "sync":
        with mqkit.connect(_emulating_url()) as client:
            client.admin.create_topic("t")
            client.admin.create_group("t", "g")
            with client.producer("t") as p:
                p.send(b"short", ttl=0.05)
                p.send(b"keep")
            time.sleep(0.1)
            with client.consumer("t", "g") as c:
                batch = c.receive(10, timeout=0.5) + c.receive(10, timeout=0.01)
                got = [m.body for m in batch]
                c.ack(batch)
                expired = c.expired
            check(got, expired, client.admin.depth("t", "g"))
        return

    async def main() -> None:
        async with mqkit.aio.connect(_emulating_url()) as client:
            await client.admin.create_topic("t")
            await client.admin.create_group("t", "g")
            async with client.producer("t") as p:
                await p.send(b"short", ttl=0.05)
                await p.send(b"keep")
            await asyncio.sleep(0.1)
            async with client.consumer("t", "g") as c:
                batch = await c.receive(10, timeout=0.5)
                got = [m.body for m in batch]
                await c.ack(batch)
                expired = c.expired
            check(got, expired, await client.admin.depth("t", "g"))

    asyncio.run(main())
