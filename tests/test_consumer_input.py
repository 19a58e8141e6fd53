"""The consumer's public calls refuse bad input with a ConfigurationError naming it.

Both faces, on ``memory://``: ``receive``, ``ack``/``nack``/``reject`` (of a consumer
and of a message), ``extend_lease`` and ``run``'s arguments. Every refusal happens before
anything is received or settled: the message in hand is still undecided afterwards.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mqkit
import mqkit.aio

# Anything a user might pass by mistake: text, None, bools, floats (NaN, inf, fractional),
# negative numbers, containers.
JUNK = st.one_of(
    st.none(), st.booleans(), st.text(max_size=5), st.binary(max_size=5),
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**6), 0),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(),
                                                         max_size=1),
)
COUNTS = JUNK.filter(lambda v: not (type(v) is int and v >= 1))
SECONDS = JUNK.filter(lambda v: not (type(v) in (int, float) and 0 <= v < math.inf))
POSITIVE_SECONDS = JUNK.filter(lambda v: not (type(v) in (int, float) and 0 < v < math.inf))
FLAGS = JUNK.filter(lambda v: type(v) is not bool)

_SETTINGS = settings(max_examples=40, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


def _client() -> mqkit.Client:
    client = mqkit.connect(f"memory://ci-{uuid.uuid4().hex[:8]}")
    client.admin.create_topic("t")
    client.admin.create_group("t", "g")
    with client.producer("t") as p:
        p.send(b"one")
    return client


@pytest.fixture(scope="module")
def held() -> Any:
    """A sync consumer with one message in hand (undecided for the whole module)."""
    client = _client()
    consumer = client.consumer("t", "g", lease=300)
    [msg] = consumer.receive(1, timeout=2)
    yield consumer, msg
    consumer.close()
    client.close()


def _refused(call: Callable[[], object], name: str) -> None:
    with pytest.raises(mqkit.ConfigurationError) as info:
        call()
    assert name in str(info.value), str(info.value)


@_SETTINGS
@given(value=COUNTS)
def test_receive_max_messages(held: Any, value: object) -> None:
    consumer, _ = held
    _refused(lambda: consumer.receive(value, timeout=0), "max_messages")


@_SETTINGS
@given(value=SECONDS)
def test_receive_timeout(held: Any, value: object) -> None:
    consumer, _ = held
    _refused(lambda: consumer.receive(1, value), "timeout")


def test_receive_fractional_count_is_refused_not_rounded(held: Any) -> None:
    consumer, _ = held
    _refused(lambda: consumer.receive(2.5, timeout=0), "max_messages")


@_SETTINGS
@given(value=SECONDS.filter(lambda v: v is not None))
def test_nack_delay(held: Any, value: object) -> None:
    consumer, msg = held
    _refused(lambda: msg.nack(delay=value), "delay")
    _refused(lambda: consumer.nack([msg], delay=value), "delay")
    assert msg.decision is None


@_SETTINGS
@given(value=FLAGS)
def test_wait_flag(held: Any, value: object) -> None:
    consumer, msg = held
    for call in (lambda: msg.ack(wait=value), lambda: msg.reject(wait=value),
                 lambda: msg.nack(wait=value), lambda: consumer.ack([msg], wait=value)):
        _refused(call, "wait")
    assert msg.decision is None


@_SETTINGS
@given(value=POSITIVE_SECONDS)
def test_extend_lease_seconds(held: Any, value: object) -> None:
    consumer, msg = held
    _refused(lambda: msg.extend_lease(value), "seconds")
    _refused(lambda: consumer.extend_lease([msg], value), "seconds")


@pytest.mark.parametrize("verb", ["ack", "nack", "reject"])
def test_a_single_message_where_a_list_is_expected(held: Any, verb: str) -> None:
    consumer, msg = held
    _refused(lambda: getattr(consumer, verb)(msg), f"msg.{verb}()")
    assert msg.decision is None


@_SETTINGS
@given(value=st.one_of(st.none(), st.integers(), st.text(min_size=1, max_size=3),
                       st.lists(st.one_of(st.none(), st.integers(), st.text()),
                                min_size=1, max_size=3)))
def test_messages_that_are_not_received_messages(held: Any, value: object) -> None:
    consumer, msg = held
    for verb in ("ack", "nack", "reject"):
        _refused(lambda verb=verb: getattr(consumer, verb)(value), "messages")  # type: ignore[misc]
    _refused(lambda: consumer.extend_lease(value, 5), "messages")
    assert msg.decision is None


@_SETTINGS
@given(name=st.sampled_from(["concurrency", "stop_after", "batch_size"]), value=COUNTS)
def test_run_counts(held: Any, name: str, value: object) -> None:
    consumer, msg = held
    if value is None and name != "concurrency":
        return  # None means "no limit" for stop_after and batch_size
    _refused(lambda: consumer.run(lambda m: None, **{name: value}), name)
    assert msg.decision is None


@_SETTINGS
@given(value=SECONDS.filter(lambda v: v is not None))
def test_run_idle_timeout(held: Any, value: object) -> None:
    consumer, msg = held
    _refused(lambda: consumer.run(lambda m: None, idle_timeout=value), "idle_timeout")
    assert msg.decision is None


@pytest.mark.parametrize("retry", [False, 3, "fast", {}])
def test_run_retry_must_be_a_policy(held: Any, retry: object) -> None:
    consumer, _ = held
    _refused(lambda: consumer.run(lambda m: None, retry=retry), "retry")


def test_a_message_of_the_other_face_is_refused(held: Any) -> None:
    """A sync message handed to an asyncio consumer names the problem."""
    _, msg = held

    async def main() -> None:
        async with mqkit.aio.connect(f"memory://ci-{uuid.uuid4().hex[:8]}") as client:
            await client.admin.create_topic("t")
            await client.admin.create_group("t", "g")
            async with client.consumer("t", "g") as consumer:
                with pytest.raises(mqkit.ConfigurationError, match=r"messages\[0\]"):
                    await consumer.ack([msg])

    asyncio.run(main())


# -- the asyncio face refuses the same -------------------------------------------------


def test_asyncio_face_refuses_the_same() -> None:
    async def main() -> None:
        async with mqkit.aio.connect(f"memory://ci-{uuid.uuid4().hex[:8]}") as client:
            await client.admin.create_topic("t")
            await client.admin.create_group("t", "g")
            async with client.producer("t") as p:
                await p.send(b"one")
            async with client.consumer("t", "g", lease=300) as consumer:
                [msg] = await consumer.receive(1, timeout=2)
                cases: list[tuple[Callable[[], Any], str]] = [
                    (lambda: consumer.receive("5"), "max_messages"),  # type: ignore[arg-type]
                    (lambda: consumer.receive(1, None), "timeout"),  # type: ignore[arg-type]
                    (lambda: consumer.receive(2.5), "max_messages"),  # type: ignore[arg-type]
                    (lambda: msg.nack(delay="x"), "delay"),  # type: ignore[arg-type]
                    (lambda: msg.nack(delay=-1), "delay"),
                    (lambda: msg.ack(wait="yes"), "wait"),  # type: ignore[arg-type]
                    (lambda: consumer.ack(msg), "msg.ack()"),  # type: ignore[arg-type]
                    (lambda: consumer.reject(None), "messages"),  # type: ignore[arg-type]
                    (lambda: msg.extend_lease(-5), "seconds"),
                    (lambda: msg.extend_lease("x"), "seconds"),  # type: ignore[arg-type]
                    (lambda: consumer.run(lambda m: None, concurrency="2"), "concurrency"),  # type: ignore[arg-type]
                    (lambda: consumer.run(lambda m: None, idle_timeout=math.nan),
                     "idle_timeout"),
                ]
                for call, name in cases:
                    with pytest.raises(mqkit.ConfigurationError) as info:
                        await call()
                    assert name in str(info.value), (name, str(info.value))
                assert msg.decision is None
                await msg.ack(wait=True)

    asyncio.run(main())


def test_run_stats_is_one_type_on_both_faces() -> None:
    """Code shared between the faces can annotate with either name (mypy agrees)."""
    assert mqkit.RunStats is mqkit.aio.RunStats


def test_blocking_run_keeps_its_handler_threads_across_batches() -> None:
    """``concurrency`` threads for the whole loop, not a new pool per batch."""
    import threading

    client = _client()
    with client.producer("t") as p:
        p.send_batch([b"m"] * 199)
    seen: set[threading.Thread] = set()
    lock = threading.Lock()

    def handler(msg: mqkit.ReceivedMessage) -> None:
        with lock:
            seen.add(threading.current_thread())

    with client, client.consumer("t", "g") as consumer:
        stats = consumer.run(handler, concurrency=4, batch_size=10, stop_after=200)
    assert stats.acked == 200
    assert 1 < len(seen) <= 4, len(seen)
