"""``instrument(client, client_spans=...)``: other instrumentations are suppressed while
mqkit sends (the API's suppress-instrumentation key), unless asked (memory://, both
faces). The effect on a real instrumentation (botocore's SNS extension rewriting the
context) is in broker_tests/test_otel_brokers.py."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider

import mqkit
import mqkit.aio
from mqkit.otel import instrument

KEY = otel_context._SUPPRESS_INSTRUMENTATION_KEY


def _url() -> str:
    return f"memory://spans-{uuid.uuid4().hex[:8]}"


def _spy(seen: list[object]) -> Callable[..., Any]:
    """A send hook added after mqkit's: what the context says when the send happens."""
    def hook(operation: str, topic: str, messages: list[Any]) -> Callable[..., None]:
        def finish(error: BaseException | None) -> None:
            seen.append(otel_context.get_value(KEY))
        return finish
    return hook


@pytest.mark.parametrize("client_spans", [False, True])
def test_other_instrumentations_are_suppressed_while_mqkit_sends(client_spans: bool) -> None:
    provider = TracerProvider()
    seen: list[object] = []
    client = instrument(mqkit.connect(_url()), tracer_provider=provider,
                        client_spans=client_spans)
    client.add_send_hook(_spy(seen))
    with client:
        client.admin.create_topic("t")
        with client.producer("t") as p:
            p.send(b"a")
            p.send_batch([b"b", b"c"])
    assert otel_context.get_value(KEY) is None  # only while sending
    assert seen == [None if client_spans else True] * 2


def test_suppressed_on_the_asyncio_face_too() -> None:
    provider = TracerProvider()
    seen: list[object] = []

    async def main() -> None:
        client = instrument(mqkit.aio.connect(_url()), tracer_provider=provider)
        client.add_send_hook(_spy(seen))
        async with client:
            await client.admin.create_topic("t")
            async with client.producer("t") as p:
                await p.send(b"a")
    asyncio.run(main())
    assert seen == [True]


def test_client_spans_must_be_a_bool() -> None:
    with pytest.raises(mqkit.ConfigurationError, match="client_spans"):
        instrument(mqkit.connect(_url()), client_spans="yes")  # type: ignore[arg-type]
