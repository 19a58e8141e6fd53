"""``Consumer.unavailable_since``: when the broker started answering a consumer's ``run``
loop or iteration as unavailable, ``None`` while it answers (what a readiness probe
reads). The consumer derives it from the loop's :class:`mqkit._run.Outage`; run on
``faulty://`` (tests/faulty.py), both faces.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

import mqkit
import mqkit.aio

from .faulty import FAULTS

DOWN = mqkit.Unavailable("broker down")


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    FAULTS.reset()
    yield
    FAULTS.reset()


def _until(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _client(**options: object) -> mqkit.Client:
    client = mqkit.connect(f"faulty://o-{uuid.uuid4().hex[:8]}", **options)
    client.admin.create_topic("t")
    client.admin.create_group("t", "g")
    return client


@pytest.mark.parametrize("loop", ["run", "iteration"])
def test_set_at_the_outage_start_while_it_lasts_then_none(loop: str) -> None:
    handled: list[bytes] = []
    with _client(unavailable_timeout=30) as client, client.consumer("t", "g") as consumer:
        answering = consumer.unavailable_since
        consumer.receive(1, timeout=0)  # open the subscription first
        FAULTS.fail_always("receive_batch", DOWN)
        before = time.monotonic()

        def work() -> None:
            if loop == "run":
                consumer.run(lambda m: handled.append(m.body), stop_after=1)
                return
            for message in consumer:
                handled.append(message.body)
                message.ack()
                return

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        _until(lambda: consumer.unavailable_since is not None, "the outage to be noticed")
        since = consumer.unavailable_since
        assert since is not None and before <= since <= time.monotonic()
        _until(lambda: FAULTS.count("receive_batch") >= 3, "more tries")
        assert consumer.unavailable_since == since  # the start, not the latest failure
        FAULTS.fail_always("receive_batch", None)  # the broker is back
        with client.producer("t") as producer:
            producer.send(b"back")
        thread.join(10)
        assert not thread.is_alive() and handled == [b"back"]
        assert answering is None and consumer.unavailable_since is None


def test_still_set_after_the_run_loop_gave_up() -> None:
    """The broker has not answered since: a readiness probe keeps reading the outage."""
    with _client(unavailable_timeout=0.3) as client, client.consumer("t", "g") as consumer:
        consumer.receive(1, timeout=0)
        FAULTS.fail_always("receive_batch", DOWN)
        before = time.monotonic()
        with pytest.raises(mqkit.Unavailable):
            consumer.run(lambda m: None, idle_timeout=60)
        since = consumer.unavailable_since
        assert since is not None and before <= since <= time.monotonic() - 0.3


def test_the_asyncio_face_reads_the_same() -> None:
    async def main() -> tuple[float | None, float | None, float | None, float]:
        url = f"faulty://o-{uuid.uuid4().hex[:8]}"
        async with mqkit.aio.connect(url, unavailable_timeout=30) as client:
            await client.admin.create_topic("t")
            await client.admin.create_group("t", "g")
            async with client.consumer("t", "g") as consumer:
                await consumer.receive(1, timeout=0)
                first = consumer.unavailable_since
                FAULTS.fail_always("receive_batch", DOWN)
                before = time.monotonic()
                task = asyncio.ensure_future(consumer.run(lambda m: None, stop_after=1))
                for _ in range(500):  # polls a property: no event to wait on
                    if consumer.unavailable_since is not None:
                        break
                    await asyncio.sleep(0.01)
                during = consumer.unavailable_since
                FAULTS.fail_always("receive_batch", None)
                async with client.producer("t") as producer:
                    await producer.send(b"back")
                await asyncio.wait_for(task, 10)
                return first, during, consumer.unavailable_since, before

    first, during, after, before = asyncio.run(main())
    assert first is None and after is None
    assert during is not None and during >= before
