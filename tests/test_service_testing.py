"""mqkit.service.TestApp: send, wait until idle, inspect; errors surface."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest

import mqkit
import mqkit.aio
from mqkit.service import App, TestApp

FAST = mqkit.RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.01, jitter=0)


@dataclasses.dataclass
class Order:
    id: int


def _pipeline() -> App:
    app = App()

    @app.handler("orders", group="billing", output="invoices", retry=FAST)
    async def bill(order: Order) -> dict[str, int]:
        if order.id < 0:
            raise ValueError("negative id")
        return {"order": order.id}

    @app.handler("invoices", group="mail")
    def mail(invoice: dict[str, int]) -> None:
        pass

    return app


async def test_send_wait_idle_and_inspect_a_pipeline() -> None:
    app = _pipeline()
    async with TestApp(app) as t:
        for i in (1, 2, -1):
            await t.send("orders", Order(i))
        await t.send("orders", b"garbage")
        await t.wait_idle()
        assert t.handled("orders") == [Order(1), Order(2), Order(-1), Order(-1)]
        assert t.published("invoices") == [{"order": 1}, {"order": 2}]
        assert t.handled("invoices") == [{"order": 1}, {"order": 2}]
        assert t.handled("invoices", "mail") == t.handled("invoices")
        dead = await t.dead_letters("orders")
        assert [(d.reason.split(":")[0], d.attempts) for d in dead] == [
            ("PayloadError", 1), ("ValueError", 2)]  # the retried one comes later
        assert await t.dead_letters("orders") == dead  # kept, read once from the broker
        assert await t.dead_letters("invoices") == []
        assert t.published("orders") == []  # the test's own sends are not the app's


async def test_each_test_app_gets_a_fresh_broker() -> None:
    app = _pipeline()
    async with TestApp(app) as first:
        await first.send("orders", Order(1))
        await first.wait_idle()
        assert first.client is not None
        url = str(first.client.url)
    async with TestApp(app) as second:
        await second.wait_idle()
        assert second.handled("orders") == []
        assert second.client is not None and str(second.client.url) != url
    assert url.startswith("memory://test-")


async def test_wait_idle_waits_for_in_flight_handlers_and_times_out_naming_them() -> None:
    app = App()
    release = asyncio.Event()

    @app.handler("jobs", group="w")
    async def work(body: bytes) -> None:
        await release.wait()

    async with TestApp(app) as t:
        await t.send("jobs", b"x")
        with pytest.raises(mqkit.Timeout, match=r"in flight.*jobs/w: depth 1"):
            await t.wait_idle(timeout=0.2)
        release.set()
        await t.wait_idle()
        assert app.stats("jobs").handled == 1


async def test_wait_idle_covers_delayed_retries() -> None:
    app = App()
    calls = []

    @app.handler("jobs", group="w", retry=mqkit.RetryPolicy(
        max_attempts=2, initial_backoff=0.3, jitter=0))
    def work(body: bytes) -> None:
        calls.append(body)
        if len(calls) == 1:
            raise RuntimeError("once")

    async with TestApp(app) as t:
        await t.send("jobs", b"x")
        await t.wait_idle()
        assert calls == [b"x", b"x"] and await t.dead_letters("jobs") == []


async def test_test_app_uses_the_apps_own_client() -> None:
    async with mqkit.aio.connect(f"memory://own-{uuid.uuid4().hex}") as client:
        app = App(client=client)
        seen: list[str] = []

        @app.handler("jobs", group="w")
        async def work(body: str) -> None:
            seen.append(body)

        async with TestApp(app) as t:
            assert t.client is client
            await t.send("jobs", "hi")
            await t.wait_idle()
        assert seen == ["hi"]
        assert await client.admin.topic_exists("jobs")  # still open: the app's client


async def test_an_app_error_is_raised_on_exit() -> None:
    app = App()

    @app.handler("jobs", group="w")
    def work(body: bytes) -> None:
        pass

    @app.on_shutdown
    def down() -> None:
        raise RuntimeError("shutdown failed")

    with pytest.raises(RuntimeError, match="shutdown failed"):
        async with TestApp(app):
            pass


async def test_a_failed_start_is_raised_on_entry() -> None:
    app = App()

    @app.handler("jobs", group="w")
    def work(body: bytes) -> None:
        pass

    @app.on_startup
    def up() -> None:
        raise LookupError("missing setting")

    with pytest.raises(LookupError, match="missing setting"):
        async with TestApp(app):
            raise AssertionError("not reached")


async def test_misuse_is_refused_by_name() -> None:
    with pytest.raises(mqkit.ConfigurationError, match=r"app must be an mqkit.service.App"):
        TestApp("app")  # type: ignore[arg-type]
    app = _pipeline()
    t = TestApp(app)
    with pytest.raises(mqkit.ConfigurationError, match="async with TestApp"):
        await t.send("orders", b"x")
    async with t:
        with pytest.raises(mqkit.ConfigurationError, match="no handler registered"):
            t.handled("nothing")
        with pytest.raises(mqkit.ConfigurationError, match="timeout"):
            await t.wait_idle(timeout=-1)
