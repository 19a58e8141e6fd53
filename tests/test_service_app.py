"""mqkit.service.App on memory://: registration, typed payloads, output, retries, stopping."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mqkit
import mqkit.aio
from mqkit.service import App, TestApp

ROOT = Path(__file__).resolve().parent.parent
REASON = mqkit.DLQ_HEADERS["reason"]
FAST = mqkit.RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.01, jitter=0)


@dataclasses.dataclass
class Order:
    id: int
    qty: int


class Invoice(pydantic.BaseModel):
    order: int
    amount: float


def _url() -> str:
    return f"memory://svc-{uuid.uuid4().hex}"


async def _seed(client: mqkit.aio.Client, topic: str, group: str, *bodies: bytes) -> None:
    await client.admin.create_topic(topic)
    await client.admin.create_group(topic, group)
    async with client.producer(topic) as producer:
        for body in bodies:
            await producer.send(body)


async def _until(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


# -- typed payloads ------------------------------------------------------------------------


async def test_each_annotation_gets_its_decoded_type() -> None:
    app = App()
    got: dict[str, Any] = {}

    @app.handler("raw", group="g")
    async def raw(body: bytes) -> None:
        got["bytes"] = body

    @app.handler("text", group="g")
    def text(body: str) -> None:
        got["str"] = body

    @app.handler("json", group="g")
    async def as_dict(body: dict[str, int]) -> None:
        got["dict"] = body

    @app.handler("orders", group="g")
    def order(body: Order) -> None:
        got["dataclass"] = body

    @app.handler("invoices", group="g")
    async def invoice(body: Invoice) -> None:
        got["pydantic"] = body

    @app.handler("untyped", group="g")
    def untyped(body) -> None:  # type: ignore[no-untyped-def]
        got["untyped"] = body

    async with TestApp(app) as t:
        await t.send("raw", b"\xff\x00")
        await t.send("text", "héllo")
        await t.send("json", {"a": 1})
        await t.send("orders", Order(1, 2))
        await t.send("invoices", Invoice(order=1, amount=2.5))
        await t.send("untyped", b"as is")
        await t.wait_idle()
    assert got == {"bytes": b"\xff\x00", "str": "héllo", "dict": {"a": 1},
                   "dataclass": Order(1, 2), "pydantic": Invoice(order=1, amount=2.5),
                   "untyped": b"as is"}
    assert type(got["dataclass"]) is Order and type(got["pydantic"]) is Invoice
    assert app.stats("orders").decoded == 1 and app.stats("orders").handled == 1


async def test_raw_message_handlers_read_and_settle_it_themselves() -> None:
    app = App()
    seen: list[tuple[str, bytes, int]] = []

    @app.handler("a", group="g")
    async def first(msg: mqkit.aio.ReceivedMessage) -> None:
        seen.append(("async", msg.body, msg.delivery_count))
        await msg.reject()  # settled here: the loop leaves it (no ack, no retry)

    @app.handler("b", group="g")
    def second(msg: mqkit.ReceivedMessage) -> None:
        assert threading.current_thread() is not threading.main_thread()
        seen.append(("plain", msg.body, msg.delivery_count))
        msg.reject()  # blocking, from the worker thread

    async with TestApp(app) as t:
        await t.send("a", b"1", headers={"h": "v"})
        await t.send("b", b"2")
        await t.wait_idle()
        assert [m.headers for m in t.handled("a")] == [{"h": "v"}]
        assert await t.dead_letters("a") == [] and await t.dead_letters("b") == []
    assert sorted(seen) == [("async", b"1", 1), ("plain", b"2", 1)]
    for topic in ("a", "b"):
        run = app.stats(topic).run
        assert run is not None and run.handled == 1 and run.acked == 0 and run.rejected == 0
        assert app.stats(topic).decoded == 0


async def test_undecodable_body_is_dead_lettered_once_with_reason_never_retried() -> None:
    app = App()
    calls: list[Order] = []

    @app.handler("orders", group="billing", retry=FAST)
    def bill(order: Order) -> None:
        calls.append(order)

    async with TestApp(app) as t:
        await t.send("orders", {"id": 1, "qty": "x"})
        await t.send("orders", b"not json")
        await t.send("orders", {"id": 2, "qty": 3})
        await t.wait_idle()
        dead = await t.dead_letters("orders")
    assert calls == [Order(2, 3)]
    assert [d.body for d in dead] == [b'{"id":1,"qty":"x"}', b"not json"]
    assert dead[0].headers[REASON] == (
        "PayloadError: body does not decode as Order: Order.qty: expected int, got 'x'")
    assert "body is not valid JSON" in dead[1].reason
    assert [d.attempts for d in dead] == [1, 1]
    stats = app.stats("orders")
    assert (stats.payload_errors, stats.decoded, stats.handled, stats.failed) == (2, 1, 1, 0)
    assert stats.run is not None
    assert (stats.run.dead_lettered, stats.run.retried, stats.run.acked) == (2, 0, 1)


async def test_pydantic_validation_error_is_the_reason() -> None:
    app = App()

    @app.handler("invoices", group="g")
    async def handle(invoice: Invoice) -> None:
        raise AssertionError("never called")

    async with TestApp(app) as t:
        await t.send("invoices", {"order": 1, "amount": "lots"})
        await t.wait_idle()
        (dead,) = await t.dead_letters("invoices")
    assert dead.reason.startswith("PayloadError: body does not decode as Invoice: "
                                  "Invoice.amount: ")
    assert app.stats("invoices").payload_errors == 1


# -- plain and async handlers --------------------------------------------------------------


async def test_plain_handlers_run_on_threads_and_never_block_the_loop() -> None:
    app = App()
    threads: set[str] = set()

    @app.handler("slow", group="g", concurrency=4)
    def slow(body: bytes) -> None:
        threads.add(threading.current_thread().name)
        time.sleep(0.2)

    async with TestApp(app) as t:
        for i in range(8):
            await t.send("slow", str(i))
        ticks = 0
        started = time.monotonic()
        while app.stats("slow").handled < 8:
            await asyncio.sleep(0.01)  # the loop keeps turning while handlers sleep
            ticks += 1
            assert time.monotonic() - started < 5
        elapsed = time.monotonic() - started
    assert ticks > 20
    assert elapsed < 1.2  # 8 x 0.2 s on 4 threads, not 1.6 s in a row
    assert all(name.startswith("mqkit-handler") for name in threads) and len(threads) > 1


# -- output ----------------------------------------------------------------------------------


async def test_return_value_is_published_to_output_and_none_is_not() -> None:
    app = App()

    @app.handler("orders", group="billing", output="invoices")
    async def bill(order: Order) -> Invoice | None:
        return Invoice(order=order.id, amount=order.qty * 2.5) if order.qty else None

    async with TestApp(app) as t:
        await t.send("orders", Order(1, 2))
        await t.send("orders", Order(2, 0))
        await t.wait_idle()
        assert t.published("invoices") == [Invoice(order=1, amount=5.0)]
        assert t.client is not None
        async with t.client.consumer("invoices", "check", start="earliest") as consumer:
            (msg,) = await consumer.receive(10, timeout=1.0)
            await msg.ack()
    assert msg.content_type == "application/json"
    assert msg.body == b'{"order":1,"amount":5.0}'
    assert app.stats("orders").published == 1 and app.stats("orders").handled == 2


async def test_failed_output_publish_fails_the_message_before_its_ack() -> None:
    url = _url()
    async with mqkit.aio.connect(url) as client:
        await _seed(client, "orders", "billing", b'{"id":1,"qty":1}')
        app = App(client=client, declare=False)  # "invoices" does not exist: NotFound
        calls = []

        @app.handler("orders", group="billing", output="invoices", retry=FAST)
        def bill(order: Order) -> dict[str, int]:
            calls.append(order)
            return {"order": order.id}

        async with TestApp(app) as t:
            await t.wait_idle()
            (dead,) = await t.dead_letters("orders")
    assert len(calls) == 3
    assert dead.reason.startswith("NotFound") and dead.attempts == 3
    stats = app.stats("orders")
    assert (stats.failed, stats.handled, stats.published) == (3, 0, 0)


# -- retries -------------------------------------------------------------------------------


async def test_failing_handler_is_retried_then_dead_lettered() -> None:
    app = App()
    attempts: list[int] = []

    @app.handler("jobs", group="w", retry=FAST)
    async def work(msg: mqkit.aio.ReceivedMessage) -> None:
        attempts.append(msg.delivery_count)
        raise ValueError("boom")

    async with TestApp(app) as t:
        await t.send("jobs", b"x")
        await t.wait_idle()
        (dead,) = await t.dead_letters("jobs")
    assert attempts == [1, 2, 3]
    assert (dead.reason, dead.attempts, dead.body) == ("ValueError: boom", 3, b"x")
    assert app.stats("jobs").failed == 3
    run = app.stats("jobs").run
    assert run is not None and (run.retried, run.dead_lettered) == (2, 1)


async def test_permanent_failure_from_the_handler_skips_retries() -> None:
    app = App()
    calls = []

    @app.handler("jobs", group="w", retry=FAST)
    def work(body: str) -> None:
        calls.append(body)
        raise mqkit.PermanentFailure("bad input")

    async with TestApp(app) as t:
        await t.send("jobs", "x")
        await t.wait_idle()
        (dead,) = await t.dead_letters("jobs")
    assert calls == ["x"] and dead.reason == "PermanentFailure: bad input"


# -- running and stopping ----------------------------------------------------------------------


async def test_graceful_stop_finishes_in_flight_handlers_and_loses_nothing() -> None:
    url = _url()
    total = 40
    async with mqkit.aio.connect(url) as client:
        await _seed(client, "jobs", "w", *(str(i).encode() for i in range(total)))
        app = App(url)
        started: list[bytes] = []
        finished: list[bytes] = []

        @app.handler("jobs", group="w", concurrency=4, prefetch=8)
        async def work(body: bytes) -> None:
            started.append(body)
            await asyncio.sleep(0.1)
            finished.append(body)

        runner = asyncio.ensure_future(app.run())
        await _until(lambda: len(started) >= 6)
        threading.Thread(target=app.stop).start()  # from another thread
        await asyncio.wait_for(runner, 5)
        depth = await client.admin.depth("jobs", "w")
    assert started == finished  # every handler that started finished
    assert 6 <= len(finished) < total
    assert len(finished) + depth == total  # each message handled once or still there
    run = app.stats("jobs").run
    assert run is not None and run.acked == len(finished)
    assert not app.running and app.in_flight == 0


async def test_graceful_timeout_closes_and_leaves_stuck_messages_to_the_broker() -> None:
    url = _url()
    async with mqkit.aio.connect(url) as client:
        await _seed(client, "jobs", "w", b"stuck")
        app = App(url, graceful_timeout=0.3, lease=60)
        entered = asyncio.Event()

        @app.handler("jobs", group="w")
        async def work(body: bytes) -> None:
            entered.set()
            await asyncio.sleep(30)

        runner = asyncio.ensure_future(app.run())
        await asyncio.wait_for(entered.wait(), 5)
        began = time.monotonic()
        app.stop()
        await asyncio.wait_for(runner, 5)
        took = time.monotonic() - began
        assert 0.25 < took < 1.5
        async with client.consumer("jobs", "w") as consumer:  # redelivered at once
            (msg,) = await consumer.receive(1, timeout=2.0)
            assert msg.body == b"stuck" and msg.delivery_count == 2
            await msg.ack()


async def test_force_stop_does_not_wait_for_handlers() -> None:
    app = App(graceful_timeout=30)
    entered = asyncio.Event()

    @app.handler("jobs", group="w")
    async def work(body: bytes) -> None:
        entered.set()
        await asyncio.sleep(30)

    async with TestApp(app) as t:
        await t.send("jobs", b"x")
        await asyncio.wait_for(entered.wait(), 5)
        began = time.monotonic()
        app.stop()
        await asyncio.sleep(0.05)
        app.stop(force=True)
        assert t._task is not None
        await asyncio.wait_for(asyncio.shield(t._task), 3)
        assert time.monotonic() - began < 1.5


async def test_stop_before_run_is_not_lost() -> None:
    url = _url()
    async with mqkit.aio.connect(url) as client:
        await _seed(client, "jobs", "w", b"1", b"2")
        app = App(client=client)
        calls = []

        @app.handler("jobs", group="w")
        def work(body: bytes) -> None:
            calls.append(body)

        app.stop()
        await asyncio.wait_for(app.run(), 3)
        assert calls == [] and await client.admin.depth("jobs", "w") == 2
        # the stop was used up: the next run runs
        runner = asyncio.ensure_future(app.run())
        await _until(lambda: len(calls) == 2)
        app.stop()
        await asyncio.wait_for(runner, 3)
        assert await client.admin.depth("jobs", "w") == 0


async def test_a_failing_loop_stops_the_app_and_run_raises_it_after_the_others() -> None:
    url = _url()
    async with mqkit.aio.connect(url) as client:
        app = App(url)
        events: list[str] = []

        @app.handler("doomed", group="g")
        def doomed(body: bytes) -> None:
            pass

        @app.handler("fine", group="g")
        async def fine(body: bytes) -> None:
            events.append("fine")

        @app.on_shutdown
        def down() -> None:
            events.append("shutdown")

        runner = asyncio.ensure_future(app.run())
        await _until(lambda: app.ready)
        await client.admin.delete_topic("doomed")
        with pytest.raises(mqkit.NotFound):
            await asyncio.wait_for(runner, 5)
    assert events == ["shutdown"]
    run = app.stats("fine").run
    assert run is not None  # the other loop returned normally


async def test_hooks_run_in_order_around_the_handlers() -> None:
    app = App()
    events: list[str] = []

    @app.on_startup
    def one() -> None:
        events.append("startup 1")

    @app.on_startup
    async def two() -> None:
        events.append("startup 2")
        await app.publish("jobs", "from startup")  # the client is open in hooks

    @app.handler("jobs", group="w")
    def work(body: str) -> None:
        events.append(f"handled {body}")

    @app.on_shutdown
    async def three() -> None:
        events.append(f"shutdown 1 ready={app.ready}")

    @app.on_shutdown
    def four() -> None:
        events.append("shutdown 2")

    async with TestApp(app) as t:
        await t.send("jobs", "x")
        await t.wait_idle()
    assert events == ["startup 1", "startup 2", "handled from startup", "handled x",
                      "shutdown 1 ready=False", "shutdown 2"]


async def test_a_failing_startup_hook_stops_the_start() -> None:
    app = App()
    events: list[str] = []

    @app.on_startup
    def boom() -> None:
        raise RuntimeError("no config")

    @app.on_shutdown
    def down() -> None:
        events.append("shutdown")

    @app.handler("jobs", group="w")
    def work(body: bytes) -> None:
        events.append("handled")

    with pytest.raises(RuntimeError, match="no config"):
        await app.run()
    assert events == [] and not app.running


async def test_publish_records_the_content_type_and_needs_a_client() -> None:
    app = App()

    @app.handler("jobs", group="w")
    def work(body: bytes) -> None:
        pass

    with pytest.raises(mqkit.Closed, match="not running"):
        await app.publish("jobs", b"x")
    async with TestApp(app) as t:
        assert t.client is not None
        await t.client.admin.create_topic("out")
        await t.client.admin.create_group("out", "check")
        for value in (b"b", "s", {"k": 1}, Order(1, 2), Invoice(order=1, amount=1)):
            await app.publish("out", value, key="k", headers={"h": "v"})
        with pytest.raises(mqkit.InvalidMessage, match="cannot encode a value of type set"):
            await app.publish("out", {1, 2})
        with pytest.raises(mqkit.ConfigurationError, match="invalid topic name"):
            await app.publish("bad topic", b"x")
        async with t.client.consumer("out", "check") as consumer:
            got = await consumer.receive(10, timeout=1.0)
            for msg in got:
                await msg.ack()
        assert len(t.published("out")) == 5
    assert [m.content_type for m in got] == [
        "application/octet-stream", "text/plain; charset=utf-8", "application/json",
        "application/json", "application/json"]
    assert {m.key for m in got} == {"k"} and all(m.headers == {"h": "v"} for m in got)


def test_run_sync_stops_on_sigterm_and_drains() -> None:
    code = textwrap.dedent("""
        import sys
        from mqkit.service import App
        app = App("memory://sig")

        @app.handler("jobs", group="w")
        def work(body: bytes) -> None:
            pass

        @app.on_startup
        def up() -> None:
            print("up", flush=True)

        @app.on_shutdown
        def down() -> None:
            print("down", flush=True)

        app.run_sync()
        print("returned", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "up\n"
    time.sleep(0.2)
    proc.terminate()
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert out.split() == ["down", "returned"]


# -- registration errors -------------------------------------------------------------------


def _noop(body: bytes) -> None:
    pass


@settings(max_examples=50, deadline=None)
@given(st.one_of(st.text(),
                 st.integers(), st.none(), st.binary()))
def test_bad_topic_names_are_refused_by_name(topic: Any) -> None:
    import re
    if isinstance(topic, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}", topic):
        return
    with pytest.raises(mqkit.ConfigurationError, match="topic"):
        App().handler(topic, group="g")


@settings(max_examples=50, deadline=None)
@given(st.one_of(st.integers(max_value=0), st.floats(), st.booleans(), st.text()))
def test_bad_concurrency_is_refused_by_name(value: Any) -> None:
    with pytest.raises(mqkit.ConfigurationError, match="concurrency"):
        App().handler("t", group="g", concurrency=value)


@pytest.mark.parametrize("kwargs, name", [
    ({"group": None}, "group is required"),
    ({"group": "bad group"}, "group"),
    ({"group": "g", "output": "no/slash"}, "output"),
    ({"group": "g", "output": ""}, "output"),
    ({"group": "g", "prefetch": 0}, "prefetch"),
    ({"group": "g", "prefetch": True}, "prefetch"),
    ({"group": "g", "lease": 0}, "lease"),
    ({"group": "g", "lease": float("nan")}, "lease"),
    ({"group": "g", "retry": 3}, "retry"),
])
def test_bad_options_are_refused_by_name(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(mqkit.ConfigurationError, match=name):
        App().handler("t", **kwargs)


def _none() -> None:
    pass


def _two(a: bytes, b: bytes) -> None:
    pass


def _star(*bodies: bytes) -> None:
    pass


def _kwonly(*, body: bytes) -> None:
    pass


def _tuple(body: tuple[int, int]) -> None:
    pass


def _unresolved(body: NoSuchType) -> None:  # type: ignore[name-defined]  # noqa: F821
    pass


@pytest.mark.parametrize("func, match", [
    (_none, r"exactly one payload parameter.*got 0"),
    (_two, r"exactly one payload parameter.*got 2 \(a, b\)"),
    (_star, r"\*args/\*\*kwargs \(bodies\)"),
    (_kwonly, "'body' must be positional"),
    (_tuple, r"_tuple, parameter 'body': cannot decode a payload as tuple\[int, int\]"),
    (_unresolved, "does not resolve.*NoSuchType"),
    ("not callable", "must be callable"),
])
def test_bad_handler_functions_are_refused_at_registration(func: Any, match: str) -> None:
    with pytest.raises(mqkit.ConfigurationError, match=match):
        App().handler("t", group="g")(func)


def test_duplicate_topic_group_is_refused_and_other_groups_are_fine() -> None:
    app = App()
    app.handler("t", group="g")(_noop)
    app.handler("t", group="h")(_noop)
    with pytest.raises(mqkit.ConfigurationError, match="'t', group 'g' is already registered"):
        app.handler("t", group="g")
    with pytest.raises(mqkit.ConfigurationError, match="several handlers read topic 't'"):
        app.stats("t")
    assert app.stats("t", "h").handled == 0
    assert [(s.topic, s.group) for s in app.handlers] == [("t", "g"), ("t", "h")]
    assert app.handler("u", group="g")(_noop) is _noop  # returned unchanged


async def test_app_options_are_checked() -> None:
    async with mqkit.aio.connect(_url()) as client:
        with pytest.raises(mqkit.ConfigurationError, match=r"not both.*url"):
            App("memory://x", client=client)
        with pytest.raises(mqkit.ConfigurationError, match=r"not both.*prefetch"):
            App(client=client, prefetch=3)
    with pytest.raises(mqkit.ConfigurationError, match=r"client must be an mqkit.aio.Client"):
        App(client="memory://")  # type: ignore[arg-type]
    with mqkit.connect(_url()) as blocking, pytest.raises(mqkit.ConfigurationError,
                                                          match=r"mqkit.aio.connect"):
        App(client=blocking)  # type: ignore[arg-type]
    for bad in (-1, float("inf"), "30"):
        with pytest.raises(mqkit.ConfigurationError, match="graceful_timeout"):
            App(graceful_timeout=bad)  # type: ignore[arg-type]
    with pytest.raises(mqkit.ConfigurationError, match="max_threads"):
        App(max_threads=0)
    with pytest.raises(mqkit.ConfigurationError, match="on_startup takes a callable"):
        App().on_startup(3)  # type: ignore[type-var]
    with pytest.raises(mqkit.ConfigurationError, match="no handlers"):
        await App().run()


def test_import_mqkit_does_not_import_the_service_layer() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import sys, mqkit; mqkit.connect('memory://x').close(); "
         "print(any(m.startswith('mqkit.service') for m in sys.modules))"],
        capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.split() == ["False"]
