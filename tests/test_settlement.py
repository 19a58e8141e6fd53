"""The consumer core: batched settlement and the run loop's failure semantics.

Run against ``faulty://`` (tests/faulty.py), a memory driver that records every call and
fails on demand; the asyncio face runs it through the worker-thread bridge.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mqkit
import mqkit.aio
from mqkit import RetryPolicy, Support

from .faulty import FAULTS

FAST = RetryPolicy(max_attempts=3, initial_backoff=0.0, jitter=0.0)


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    FAULTS.reset()
    yield
    FAULTS.reset()


def _url() -> str:
    return f"faulty://s-{uuid.uuid4().hex[:8]}"


def _client(**kw: object) -> mqkit.Client:
    client = mqkit.connect(_url(), **kw)
    client.admin.create_topic("t")
    client.admin.create_group("t", "g")
    return client


def _send(client: mqkit.Client, n: int, topic: str = "t") -> list[str]:
    with client.producer(topic) as p:
        return p.send_batch([f"m{i}".encode() for i in range(n)])


# -- settlement is a pipeline ---------------------------------------------------------


def test_per_message_acks_reach_the_driver_in_one_batch() -> None:
    with _client() as client:
        _send(client, 50)
        with client.consumer("t", "g") as c:
            got = c.receive(50, timeout=1)
            for m in got:
                m.ack()
            assert FAULTS.count("ack") == 0, "ack() did I/O"
            assert c.receive(10, timeout=0) == []  # the next receive hands them over
            assert FAULTS.calls.count(("ack", 50)) == 1
        assert client.admin.depth("t", "g") == 0


def test_a_pipelining_driver_gets_the_acks_with_the_next_read() -> None:
    FAULTS.combine = True
    with _client() as client:
        _send(client, 60)
        with client.consumer("t", "g", prefetch=50) as c:
            got = c.receive(50, timeout=1)
            for m in got:
                m.ack()
            assert FAULTS.count("ack") == 0, "ack() did I/O"
            # The 50 acks go with the read, which has room for all 50 again: they are
            # applied before it reads.
            more = c.receive(50, timeout=1)
            assert [n for m, n in FAULTS.calls if m == "ack_and_receive"] == [50]
            assert ("receive_batch", 50) in FAULTS.calls
            assert len(more) == 10
            c.ack(more)
            c.flush_settlements()
            assert c.in_flight == 0
        assert client.admin.depth("t", "g") == 0


def test_a_driver_that_does_not_pipeline_gets_acks_alone() -> None:
    with _client() as client:
        _send(client, 20)
        with client.consumer("t", "g") as c:
            for m in c.receive(20, timeout=1):
                m.ack()
            assert c.receive(10, timeout=0) == []
            assert FAULTS.count("ack_and_receive") == 0
            assert FAULTS.calls.count(("ack", 20)) == 1


@pytest.mark.parametrize("part", ["ack_and_receive", "receive_batch"])
def test_a_failed_ack_and_receive_goes_the_plain_way_at_once(part: str) -> None:
    """Whether the combined call failed before its acks were applied or after (then the
    second ack of the same deliveries does nothing), the acks go again alone, then the
    read: the caller sees what it would have seen without combining, nothing is lost."""
    FAULTS.combine = True
    with _client() as client:
        _send(client, 30)
        with client.consumer("t", "g") as c:
            for m in c.receive(30, timeout=1):
                m.ack()
            FAULTS.fail(part, mqkit.Unavailable("down for a moment"))
            assert c.receive(10, timeout=0) == []
            names = [m for m, _ in FAULTS.calls]
            combined = names.index("ack_and_receive")
            assert names[combined:][-2:] == ["ack", "receive_batch"]  # the plain way
            assert FAULTS.calls[-2] == ("ack", 30)
            assert c.in_flight == 0
        assert client.admin.depth("t", "g") == 0


def test_an_unavailable_broker_keeps_combined_acks_pending_not_raised() -> None:
    """Acks refused as unavailable are retried (bounded) as without combining: the
    receive waits rather than raising, and once the broker takes them, reading goes on."""
    FAULTS.combine = True
    with _client() as client:
        _send(client, 20)
        with client.consumer("t", "g", prefetch=10) as c:
            for m in c.receive(10, timeout=1):
                m.ack()
            FAULTS.fail_always("ack", mqkit.Unavailable("acks refused"))
            assert c.receive(10, timeout=0.3) == []
            assert c.in_flight == 10
            FAULTS.fail_always("ack", None)
            assert len(c.receive(10, timeout=2)) == 10
        assert client.admin.depth("t", "g") == 10


async def test_async_face_over_a_blocking_driver_sends_acks_with_the_read() -> None:
    """The worker-thread bridge combines: one thread hop for the acks and the read."""
    async with mqkit.aio.connect(_url()) as client:
        await client.admin.create_topic("t")
        await client.admin.create_group("t", "g")
        await client.producer("t").send_batch([b"x"] * 40)
        async with client.consumer("t", "g") as c:
            for m in await c.receive(40, timeout=1):
                await m.ack()
            assert await c.receive(10, timeout=0) == []
            assert [n for m, n in FAULTS.calls if m == "ack_and_receive"] == [40]
            await c.flush_settlements()
        assert await client.admin.depth("t", "g") == 0


def test_decisions_go_after_the_interval_without_another_receive() -> None:
    with _client(settle_interval=0.01) as client:
        _send(client, 3)
        with client.consumer("t", "g") as c:
            for m in c.receive(3, timeout=1):
                m.ack()
            deadline = time.monotonic() + 2
            while FAULTS.settled("ack") < 3 and time.monotonic() < deadline:
                time.sleep(0.005)
            assert FAULTS.settled("ack") == 3


def test_a_full_batch_goes_at_once() -> None:
    FAULTS.caps["max_batch"] = 4
    with _client(settle_interval=30.0) as client:  # only fullness can trigger it
        _send(client, 4)
        with client.consumer("t", "g") as c:
            for m in c.receive(4, timeout=1):
                m.ack()
            deadline = time.monotonic() + 2
            while FAULTS.settled("ack") < 4 and time.monotonic() < deadline:
                time.sleep(0.005)
            assert FAULTS.calls.count(("ack", 4)) == 1


def test_mixed_decisions_keep_first_decision_wins() -> None:
    with _client() as client:
        _send(client, 3)
        with client.consumer("t", "g") as c:
            a, b, d = c.receive(3, timeout=1)
            a.ack()
            b.nack()
            d.reject()
            with pytest.raises(mqkit.MessageStateError):
                a.nack()
            with pytest.raises(mqkit.MessageStateError):
                b.ack()
            c.flush_settlements()
            assert (FAULTS.settled("ack"), FAULTS.settled("nack"),
                    FAULTS.settled("reject")) == (1, 1, 1)
            back = c.receive(10, timeout=1)
            assert [m.body for m in back] == [b.body]
            assert back[0].delivery_count == 2


def test_wait_true_returns_once_the_broker_took_it() -> None:
    with _client(settle_interval=30.0) as client:
        _send(client, 1)
        with client.consumer("t", "g") as c:
            (m,) = c.receive(1, timeout=1)
            m.ack(wait=True)
            assert FAULTS.settled("ack") == 1
            assert client.admin.depth("t", "g") == 0


def test_unavailable_settlement_is_retried_and_nothing_surfaces() -> None:
    with _client() as client:
        _send(client, 5)
        FAULTS.fail("ack", mqkit.Unavailable("broker restarting"), times=2)
        with client.consumer("t", "g") as c:
            for m in c.receive(5, timeout=1):
                m.ack()
            c.flush_settlements(timeout=5)
            assert FAULTS.count("ack") == 3
            assert c.receive(5, timeout=0.1) == []
        assert client.admin.depth("t", "g") == 0


@pytest.mark.parametrize("face", ["sync", "aio"])
def test_acks_the_broker_has_not_taken_count_against_prefetch(face: str) -> None:
    """While the broker refuses acks as unavailable (retried for settle_timeout), the
    consumer receives nothing more than prefetch allows: decided-but-pending messages
    count as in flight, so memory stays bounded. Once the broker takes them, receiving
    goes on."""
    url = _url()
    with mqkit.connect(url) as client:
        client.admin.create_topic("t")
        client.admin.create_group("t", "g")
        _send(client, 30)
        FAULTS.driver_prefetch = 1000  # the driver itself would hand out everything
        FAULTS.fail_always("ack", mqkit.Unavailable("acks refused"))

        def check(receive: Any, ack_all: Any) -> None:
            got = receive(10, 1.0)
            assert len(got) == 10
            ack_all(got)
            start = time.monotonic()
            assert receive(10, 0.3) == []  # the window is full of pending acks
            assert time.monotonic() - start >= 0.25  # it waited, it did not spin
            FAULTS.fail_always("ack", None)
            assert len(receive(10, 2.0)) == 10  # taken now: the window reopened

        if face == "sync":
            with client.consumer("t", "g", prefetch=10) as c:
                check(lambda n, t: c.receive(n, timeout=t),
                      lambda msgs: [m.ack() for m in msgs])
        else:
            async def main() -> None:
                async with mqkit.aio.connect(url) as aclient:
                    async with aclient.consumer("t", "g", prefetch=10) as c:
                        loop = asyncio.get_running_loop()

                        def receive(n: int, t: float) -> list[Any]:
                            return asyncio.run_coroutine_threadsafe(
                                c.receive(n, timeout=t), loop).result()

                        def ack_all(msgs: list[Any]) -> None:
                            async def go() -> None:
                                for m in msgs:
                                    await m.ack()
                            asyncio.run_coroutine_threadsafe(go(), loop).result()

                        await loop.run_in_executor(None, check, receive, ack_all)
            asyncio.run(main())


def test_refused_settlement_surfaces_from_the_next_receive_and_is_redelivered() -> None:
    with _client(lease=0.3) as client:
        _send(client, 2)
        FAULTS.fail("ack", mqkit.BackendError("receipt handle invalid"))
        with client.consumer("t", "g") as c:
            got = c.receive(2, timeout=1)
            for m in got:
                m.ack()
            with pytest.raises(mqkit.SettlementError) as info:
                c.receive(2, timeout=0)
            assert not isinstance(info.value, mqkit.Unavailable)
            assert {m.id for m in info.value.messages} == {m.id for m in got}  # type: ignore[attr-defined]
            assert all(m.decision is None for m in got)  # undecided again
            assert isinstance(info.value.__cause__, mqkit.BackendError)
            time.sleep(0.4)  # the lease runs out: the broker hands them out again
            again = c.receive(2, timeout=1)
            assert {m.id for m in again} == {m.id for m in got}


def test_settlement_unavailable_past_timeout_is_an_unavailable() -> None:
    with _client(settle_timeout=0.2) as client:
        _send(client, 1)
        FAULTS.fail_always("ack", mqkit.Unavailable("down"))
        with client.consumer("t", "g") as c:
            (m,) = c.receive(1, timeout=1)
            m.ack()
            with pytest.raises(mqkit.SettlementUnavailable) as info:
                c.flush_settlements()
            assert isinstance(info.value, mqkit.Unavailable)
            assert info.value.messages == [m]
            FAULTS.fail_always("ack", None)


def test_close_waits_for_pending_settlements() -> None:
    with _client(settle_interval=30.0) as client:
        _send(client, 10)
        c = client.consumer("t", "g")
        for m in c.receive(10, timeout=1):
            m.ack()
        FAULTS.fail("ack", mqkit.Unavailable("blip"))
        c.close()
        assert FAULTS.settled("ack") == 20  # one refused, one taken
        assert client.admin.depth("t", "g") == 0


def test_close_raises_when_the_broker_never_takes_them_and_still_closes() -> None:
    with _client() as client:
        _send(client, 2)
        c = client.consumer("t", "g")
        got = c.receive(2, timeout=1)
        FAULTS.fail_always("ack", mqkit.Unavailable("down"))
        for m in got:
            m.ack()
        started = time.monotonic()
        with pytest.raises(mqkit.SettlementError) as info:
            c.close(timeout=0.3)
        assert time.monotonic() - started < 2
        assert len(info.value.messages) == 2
        assert FAULTS.closed_subscriptions == 1
        FAULTS.fail_always("ack", None)
        with pytest.raises(mqkit.Closed):
            got[0].ack()


async def test_async_face_batches_per_message_acks() -> None:
    async with mqkit.aio.connect(_url()) as client:
        await client.admin.create_topic("t")
        await client.admin.create_group("t", "g")
        async with client.producer("t") as p:
            await p.send_batch([b"x"] * 30)
        async with client.consumer("t", "g") as c:
            for m in await c.receive(30, timeout=1):
                await m.ack()
            assert FAULTS.count("ack") == 0
            await c.flush_settlements()
            assert FAULTS.calls.count(("ack", 30)) == 1


# -- the run loop ---------------------------------------------------------------------


def test_persistent_unavailable_is_bounded_then_raised() -> None:
    with _client(unavailable_timeout=0.5) as client:
        with client.consumer("t", "g") as c:
            c.receive(1, timeout=0)  # open the subscription first
            FAULTS.fail_always("receive_batch", mqkit.Unavailable("connection refused"))
            started = time.monotonic()
            with pytest.raises(mqkit.Unavailable):
                c.run(lambda m: None, idle_timeout=60)
            assert time.monotonic() - started < 5
            FAULTS.fail_always("receive_batch", None)


def test_other_errors_are_raised_at_once() -> None:
    with _client() as client:
        with client.consumer("t", "g") as c:
            c.receive(1, timeout=0)
            FAULTS.fail_always("receive_batch", mqkit.NotFound("topic deleted"))
            started = time.monotonic()
            with pytest.raises(mqkit.NotFound):
                c.run(lambda m: None, idle_timeout=60)
            assert time.monotonic() - started < 1
            FAULTS.fail_always("receive_batch", None)


def test_permission_denied_is_never_retried() -> None:
    with _client(unavailable_timeout=30) as client:
        with client.consumer("t", "g") as c:
            c.receive(1, timeout=0)
            FAULTS.fail_always("receive_batch", mqkit.PermissionDenied("access refused"))
            started = time.monotonic()
            with pytest.raises(mqkit.PermissionDenied):
                c.run(lambda m: None)
            assert time.monotonic() - started < 1
            assert FAULTS.count("receive_batch") == 2  # the first receive, then one
            FAULTS.fail_always("receive_batch", None)


def test_at_most_once_failure_is_dropped_counted_and_the_loop_goes_on() -> None:
    FAULTS.caps.update(nack=mqkit.Support.UNSUPPORTED, delivery="at-most-once")
    with _client() as client:
        _send(client, 3)

        def handler(msg: mqkit.ReceivedMessage) -> None:
            if msg.body == b"m1":
                raise RuntimeError("boom")

        with client.consumer("t", "g") as c:
            stats = c.run(handler, stop_after=3, retry=FAST)
        assert (stats.handled, stats.acked, stats.dropped) == (3, 2, 1)
        assert FAULTS.count("nack") == 0


def test_nack_on_a_backend_without_nack_is_refused_up_front() -> None:
    FAULTS.caps.update(nack=mqkit.Support.UNSUPPORTED)
    with _client() as client:
        _send(client, 1)
        with client.consumer("t", "g") as c:
            (m,) = c.receive(1, timeout=1)
            with pytest.raises(mqkit.Unsupported):
                m.nack()
            assert m.decision is None
            m.ack()


def _run_in_thread(c: mqkit.Consumer, **kw: object) -> tuple[threading.Thread, list[object]]:
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(c.run(lambda m: None, **kw)),  # type: ignore[arg-type]
                         daemon=True)
    t.start()
    return t, out


def test_stop_before_run_is_not_lost() -> None:
    with _client() as client:
        with client.consumer("t", "g") as c:
            c.stop()
            t, out = _run_in_thread(c)
            t.join(2)
            hung = t.is_alive()
            c.close()  # ends a hung run either way
            assert not hung, "run() missed a stop() made before it started"
            assert out and out[0].handled == 0  # type: ignore[attr-defined]


def test_a_stop_is_used_up_by_one_run() -> None:
    with _client() as client:
        with client.consumer("t", "g") as c:
            c.stop()
            assert c.run(lambda m: None).handled == 0
            _send(client, 1)
            assert c.run(lambda m: None, stop_after=1).handled == 1


def test_stop_from_another_thread_just_as_run_starts() -> None:
    with _client() as client:
        with client.consumer("t", "g") as c:
            threading.Thread(target=c.stop).start()
            t, _ = _run_in_thread(c)
            t.join(3)
            hung = t.is_alive()
            c.close()
            assert not hung


@pytest.mark.parametrize("release", [Support.NATIVE, Support.UNSUPPORTED])
def test_released_messages_do_not_use_up_attempts(release: Support) -> None:
    """Messages given back unstarted (here by iteration's break) keep their retries:
    the broker does not count the release (Feature.RELEASE), or it does and the run
    loop subtracts the releases it made."""
    FAULTS.caps = {"release": release}
    policy = RetryPolicy(max_attempts=2, initial_backoff=0.0, jitter=0.0)
    with _client() as client:
        with client.producer("t") as p:
            p.send_batch([b"a", b"b", b"x"])
        with client.consumer("t", "g") as c:
            for _ in range(2):  # each loop takes one, gives the rest back
                for msg in c:
                    msg.ack()
                    break
            calls: list[int] = []

            def fail(msg: mqkit.ReceivedMessage) -> None:
                calls.append(msg.delivery_count)
                raise RuntimeError("x fails")

            stats = c.run(fail, retry=policy, stop_after=1)
            # delivered three times (twice released, once failed): counted or not
            assert calls == ([1] if release else [3])
            assert FAULTS.count("release") == 2
            assert (stats.retried, stats.dead_lettered) == (1, 0)
            stats = c.run(fail, retry=policy, stop_after=1)
            assert (stats.retried, stats.dead_lettered) == (0, 1)  # the 2nd real attempt


def test_async_handler_on_the_blocking_face_is_refused() -> None:
    async def handler(msg: object) -> None:
        pass

    with _client() as client:
        _send(client, 1)
        with client.consumer("t", "g") as c:
            with pytest.raises(mqkit.ConfigurationError, match="coroutine"):
                c.run(handler)  # type: ignore[arg-type]
            def returns_a_coroutine(m: mqkit.ReceivedMessage) -> None:
                return handler(m)  # type: ignore[return-value]

            with pytest.raises(mqkit.ConfigurationError, match="awaitable"):
                c.run(returns_a_coroutine, stop_after=1)
            assert FAULTS.count("ack") == 0
            # given back at once (not left leased until close): another consumer has it
            with client.consumer("t", "g") as other:
                assert [m.body for m in other.receive(1, timeout=0.5)] == [b"m0"]


def test_a_failing_dead_letter_publish_backs_off_and_is_not_counted() -> None:
    policy = RetryPolicy(max_attempts=1, initial_backoff=0.2, jitter=0.0)
    with _client() as client:
        _send(client, 1)
        calls = []

        def handler(msg: mqkit.ReceivedMessage) -> None:
            calls.append(msg.delivery_count)
            raise RuntimeError("always")

        FAULTS.fail_always("create_topic", mqkit.BackendError("no such namespace"))
        with client.consumer("t", "g") as c:
            stats = c.run(handler, retry=policy, idle_timeout=0.5)
        FAULTS.fail_always("create_topic", None)
        assert stats.dead_lettered == 0 and stats.dead_letter_failed == len(calls)
        assert 1 <= len(calls) <= 4, f"handler spun: {len(calls)} calls"
        assert client.admin.depth("t", "g") == 1


def test_dead_letters_go_in_one_batch_and_a_partial_failure_is_retried() -> None:
    policy = RetryPolicy(max_attempts=1, initial_backoff=0.0, jitter=0.0)
    with _client() as client:
        _send(client, 3)
        client.admin.create_topic("t.dlq")
        FAULTS.fail("send_batch", mqkit.SendBatchError(
            {1: mqkit.BackendError("dead-letter topic full")}, 3))

        def handler(msg: mqkit.ReceivedMessage) -> None:
            raise RuntimeError("always")

        with client.consumer("t", "g") as c:
            stats = c.run(handler, retry=policy, stop_after=3, batch_size=3)
        assert (stats.dead_lettered, stats.dead_letter_failed) == (2, 1)
        assert FAULTS.calls.count(("send_batch", 3)) == 2  # our send, then one DLQ batch
        assert client.admin.depth("t", "g") == 1  # the one not dead-lettered is back


def test_bad_dead_letter_topic_is_refused_before_receiving() -> None:
    with _client() as client:
        _send(client, 1)
        with client.consumer("t", "g") as c:
            with pytest.raises(mqkit.ConfigurationError, match="dead_letter_topic"):
                c.run(lambda m: None, retry=RetryPolicy(dead_letter_topic="bad name!"))
            assert FAULTS.count("receive_batch") == 0


def test_close_during_run_returns_stats_and_leaves_in_flight_to_redelivery() -> None:
    with _client() as client:
        _send(client, 3)
        c = client.consumer("t", "g")
        started = threading.Event()

        def slow(msg: mqkit.ReceivedMessage) -> None:
            started.set()
            time.sleep(0.3)

        result: list[mqkit.RunStats] = []
        t = threading.Thread(target=lambda: result.append(c.run(slow, batch_size=3)))
        t.start()
        assert started.wait(2)
        c.close()
        t.join(5)
        assert result and isinstance(result[0], mqkit.RunStats)
        with client.consumer("t", "g", lease=0.2) as again:
            time.sleep(0.3)
            assert len(again.receive(10, timeout=1)) >= 2  # left to redelivery


async def test_close_during_async_run_returns_stats() -> None:
    async with mqkit.aio.connect(_url()) as client:
        await client.admin.create_topic("t")
        await client.admin.create_group("t", "g")
        async with client.producer("t") as p:
            await p.send_batch([b"x"] * 3)
        c = client.consumer("t", "g")

        async def slow(msg: mqkit.aio.ReceivedMessage) -> None:
            await asyncio.sleep(0.3)

        task = asyncio.create_task(c.run(slow, batch_size=3))
        await asyncio.sleep(0.1)
        await c.close()
        stats = await asyncio.wait_for(task, 5)
        assert isinstance(stats, mqkit.aio.RunStats)


# -- iteration ------------------------------------------------------------------------


def test_iteration_gives_back_what_it_holds_after_break() -> None:
    with _client() as client:
        _send(client, 10)
        with client.consumer("t", "g") as c:
            for msg in c:
                msg.ack()
                break
            got = c.receive(20, timeout=1)
            assert len(got) == 9  # the other nine were handed back, not kept hidden
            # in send order, and the release was not counted (memory has Feature.RELEASE)
            assert [m.body for m in got] == [f"m{i}".encode() for i in range(1, 10)]
            assert all(m.delivery_count == 1 for m in got)
            assert FAULTS.settled("release") == 9


def test_iteration_keeps_what_it_holds_leased() -> None:
    FAULTS.caps.update(lease_extension=mqkit.Support.NATIVE)
    with _client() as client:
        _send(client, 5)
        with client.consumer("t", "g", lease=0.3) as c, \
                client.consumer("t", "g", lease=0.3) as other:
            seen = []
            for msg in c:
                seen.append(msg.body)
                time.sleep(0.2)  # slow: 1 s for five messages, beyond the lease
                msg.ack()
                if len(seen) == 5:
                    break
            assert sorted(seen) == [f"m{i}".encode() for i in range(5)]
            assert other.receive(10, timeout=0.2) == []  # none was handed out twice
            assert FAULTS.count("extend_lease") >= 1


# -- bad input ------------------------------------------------------------------------

_BAD_SECONDS = st.one_of(st.text(max_size=5), st.none(), st.booleans(),
                         st.floats(max_value=-1e-9), st.just(float("nan")),
                         st.just(float("inf")), st.lists(st.integers(), max_size=2))


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(["settle_interval", "settle_timeout", "unavailable_timeout"]),
       value=_BAD_SECONDS.filter(lambda v: v is not None))  # None: the client's
def test_bad_timing_options_are_refused_by_name(name: str, value: object) -> None:
    with mqkit.connect(_url()) as client:
        with pytest.raises(mqkit.ConfigurationError, match=name):
            client.consumer("t", "g", **{name: value})  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None)
@given(value=_BAD_SECONDS.filter(lambda v: v is not None))
def test_bad_flush_and_close_timeouts_are_refused_by_name(value: object) -> None:
    with _client() as client:
        c = client.consumer("t", "g")
        with pytest.raises(mqkit.ConfigurationError, match="timeout"):
            c.flush_settlements(value)  # type: ignore[arg-type]
        with pytest.raises(mqkit.ConfigurationError, match="timeout"):
            c.close(value)  # type: ignore[arg-type]
        c.close()


def test_an_outage_is_logged_at_warning_with_the_backend_and_no_secret(
        caplog: pytest.LogCaptureFixture) -> None:
    url = f"faulty://mqkit:hunter2-%40x@s-{uuid.uuid4().hex[:8]}"
    with mqkit.connect(url, unavailable_timeout=0.3) as client:
        client.admin.create_topic("t")
        client.admin.create_group("t", "g")
        with client.consumer("t", "g") as c:
            c.receive(1, timeout=0)
            FAULTS.fail_always("receive_batch", mqkit.Unavailable("connection refused"))
            with caplog.at_level("WARNING", logger="mqkit"), pytest.raises(mqkit.Unavailable):
                c.run(lambda m: None, idle_timeout=60)
            FAULTS.fail_always("receive_batch", None)
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert warnings, caplog.text
    first = warnings[0].getMessage()
    assert first.startswith("mqkit: faulty://") and "t/g" in first and "retrying" in first
    assert "giving up" in caplog.text  # the last one, at ERROR, before raising
    assert "hunter2" not in caplog.text and "%40x" not in caplog.text
