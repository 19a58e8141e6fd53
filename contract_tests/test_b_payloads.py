"""CONTRACT B and C: payloads and headers (behaviours 9-16)."""

from __future__ import annotations

import pytest

import mqkit
from mqkit import Message

from ._env import Env

pytestmark = pytest.mark.asyncio

BINARY = bytes(range(256)) + b"\x00\xff\xfe" + "é".encode("latin-1")


async def _round_trip(env: Env, message: Message) -> object:
    topic = await env.topic("g")
    async with env.client.producer(topic) as producer:
        msg_id = await producer.send(message)
    async with env.client.consumer(topic, "g") as consumer:
        got = await env.collect(consumer, 1)
    assert [m.id for m in got][:1] == [msg_id]
    return got[0]


@pytest.mark.contract(9)
async def test_c09_binary_body_byte_exact(env: Env) -> None:
    got = await _round_trip(env, Message(BINARY))
    assert got.body == BINARY  # type: ignore[attr-defined]


@pytest.mark.contract(10)
async def test_c10_empty_body(env: Env) -> None:
    got = await _round_trip(env, Message(b""))
    assert got.body == b""  # type: ignore[attr-defined]


@pytest.mark.contract(11)
async def test_c11_size_limit_exact_and_one_over(env: Env) -> None:
    limit = env.caps.max_message_size
    topic = await env.topic("g")
    async with env.client.producer(topic) as producer:
        with pytest.raises(mqkit.MessageTooLarge):
            await producer.send(b"y" * (limit + 1))
        await producer.send(b"x" * limit)
    async with env.client.consumer(topic, "g") as consumer:
        got = await env.collect(consumer, 1, settle_wait=0.5)
    assert [len(m.body) for m in got] == [limit]


@pytest.mark.contract(12)
async def test_c12_json_codec_and_content_type(env: Env) -> None:
    topic = await env.topic("g")
    async with env.client.producer(topic, codec=mqkit.JSON) as producer:
        await producer.send({"id": 1, "items": ["a", "é"]})
    async with env.client.producer(topic) as raw:
        await raw.send(b"\x00raw")
    async with env.client.consumer(topic, "g") as consumer:
        got = sorted(await env.collect(consumer, 2), key=lambda m: m.body)
    assert got[0].decode() == b"\x00raw"
    assert got[1].content_type == "application/json"
    assert got[1].decode() == {"id": 1, "items": ["a", "é"]}


@pytest.mark.contract(13)
async def test_c13_unicode_body_and_header_values(env: Env) -> None:
    text = "zoë ✓ 注文 🚀"
    got = await _round_trip(env, Message(text.encode(), headers={"who": text}))
    assert got.body.decode() == text  # type: ignore[attr-defined]
    assert got.headers["who"] == text  # type: ignore[attr-defined]


@pytest.mark.contract(14)
async def test_c14_headers_round_trip_as_exact_map(env: Env) -> None:
    limit = env.caps.max_headers
    count = 5 if limit is None else min(5, limit)
    headers = {f"h-{i}": f"v{i}" for i in range(count)}
    got = await _round_trip(env, Message(b"h", headers=headers))
    assert dict(got.headers) == headers  # type: ignore[attr-defined]


@pytest.mark.contract(15)
async def test_c15_header_limit_is_checked(env: Env) -> None:
    limit = env.caps.max_headers
    if limit is None:
        pytest.skip("unsupported: backend declares no header limit (max_headers=None)")
    topic = await env.topic("g")
    too_many = {f"h{i}": "v" for i in range(limit + 1)}
    async with env.client.producer(topic) as producer:
        with pytest.raises(mqkit.InvalidMessage):
            await producer.send(b"x", headers=too_many)
    assert await env.client.admin.depth(topic, "g") == 0


@pytest.mark.contract(16)
async def test_c16_standard_properties(env: Env) -> None:
    got = await _round_trip(env, Message(b"p", id="fixed-id-16", correlation_id="corr-1",
                                         content_type="text/plain", reply_to="answers"))
    assert (got.id, got.correlation_id, got.content_type, got.reply_to) == (  # type: ignore[attr-defined]
        "fixed-id-16", "corr-1", "text/plain", "answers")
