"""The connection under producers, consumers and admin (mqkit/aio/_connection.py).

An idempotent call the broker refuses as :class:`Unavailable` (Kafka right after a
start: no coordinator yet) is tried again until ``connect_timeout``, once for every
backend: drivers never retry. Run on ``faulty://`` (tests/faulty.py), both faces.
"""

from __future__ import annotations

import ast
import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import mqkit
import mqkit.aio

from .faulty import FAULTS


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    FAULTS.reset()
    yield
    FAULTS.reset()


def _url() -> str:
    return f"faulty://c-{uuid.uuid4().hex[:8]}"


def test_an_unavailable_admin_call_is_tried_again_until_it_succeeds() -> None:
    with mqkit.connect(_url()) as client:
        client.admin.create_topic("t")
        FAULTS.fail("create_group", mqkit.Unavailable("no coordinator yet"), times=2)
        client.admin.create_group("t", "g")
        assert FAULTS.count("create_group") == 3
        assert client.admin.group_exists("t", "g")


def test_a_lasting_outage_raises_the_last_unavailable_after_connect_timeout() -> None:
    with mqkit.connect(_url(), connect_timeout=0.5) as client:
        client.admin.create_topic("t")
        client.admin.create_group("t", "g")
        FAULTS.fail_always("group_stats", mqkit.Unavailable("broker restarting"))
        began = time.monotonic()
        with pytest.raises(mqkit.Unavailable, match="broker restarting"):
            client.admin.stats("t", "g")
        took = time.monotonic() - began
        assert 0.4 <= took < 3.0
        assert 3 <= FAULTS.count("group_stats") <= 12  # backoff, not a spin


@pytest.mark.parametrize("error", [mqkit.PermissionDenied("denied"),
                                   mqkit.NotFound("no such group")])
def test_other_errors_are_not_retried(error: mqkit.MQError) -> None:
    with mqkit.connect(_url()) as client:
        client.admin.create_topic("t")
        FAULTS.fail("create_group", error, times=5)
        with pytest.raises(type(error)):
            client.admin.create_group("t", "g")
        assert FAULTS.count("create_group") == 1


def test_opening_a_subscription_and_a_topic_rides_out_a_refusal() -> None:
    with mqkit.connect(_url()) as client:
        client.admin.create_topic("t")
        client.admin.create_group("t", "g")
        FAULTS.fail("open_topic", mqkit.Unavailable("no leader yet"))
        FAULTS.fail("open_subscription", mqkit.Unavailable("no coordinator yet"))
        with client.producer("t") as producer:
            producer.send(b"x")
        with client.consumer("t", "g") as consumer:
            [msg] = consumer.receive(1, timeout=1)
            msg.ack(wait=True)
        assert FAULTS.count("open_topic") == 2
        assert FAULTS.count("open_subscription") == 2


def test_the_asyncio_face_retries_the_same_way() -> None:
    async def main() -> int:
        async with mqkit.aio.connect(_url()) as client:
            await client.admin.create_topic("t")
            FAULTS.fail("create_group", mqkit.Unavailable("no coordinator yet"), times=2)
            await client.admin.create_group("t", "g")
            return FAULTS.count("create_group")

    assert asyncio.run(main()) == 3


@pytest.mark.parametrize("face", ["aio", "_sync"])
def test_producer_consumer_admin_and_requests_do_not_import_the_client(face: str) -> None:
    """They depend on the connection: the face's modules are no import circle."""
    root = Path(mqkit.__file__).parent / face
    for name in ("_producer", "_consumer", "_admin", "_requests", "_connection"):
        tree = ast.parse((root / f"{name}.py").read_text())
        imported = {node.module for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module}
        assert "_client" not in imported, f"mqkit/{face}/{name}.py imports ._client"
        text = (root / f"{name}.py").read_text()
        assert "_client." not in text, f"mqkit/{face}/{name}.py reaches into the client"
