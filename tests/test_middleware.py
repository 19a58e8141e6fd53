"""Middleware on ``consumer.run`` (both faces) and in the App: the protocol, the outcome
hook, idempotency (three stores), the time limit and the circuit breaker.

The loop runs on ``memory://`` and on ``faulty://`` (tests/faulty.py), which counts the
driver calls (the breaker test counts ``receive_batch``) and overrides capabilities.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mqkit
import mqkit.aio
import mqkit.aio.middleware as amw
import mqkit.middleware as smw
from mqkit import Outcome, OutcomeKind, RetryPolicy
from mqkit.middleware import DBAPIStore, MemoryStore, RedisStore
from mqkit.service import App, TestApp

from .faulty import FAULTS

FAST = RetryPolicy(max_attempts=2, initial_backoff=0.0, jitter=0.0)
FACES = ["sync", "aio"]
K = OutcomeKind


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    FAULTS.reset()
    yield
    FAULTS.reset()


def _url(scheme: str = "memory") -> str:
    return f"{scheme}://mw-{uuid.uuid4().hex[:8]}"


def _dup_url() -> str:
    """memory:// keeping messages whose id was sent already (its dedup window off)."""
    return f"memory://mw-{uuid.uuid4().hex[:8]}?dedup_window=0"


def _messages(*ids: str) -> list[mqkit.Message]:
    return [mqkit.Message(f"body-{i}".encode(), id=i) for i in ids]


class Recorder:
    """Outcome hook shared by both faces' test middleware: every (id, outcome) seen."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, Outcome]] = []
        self.values: list[Any] = []

    def outcome(self, ctx: Any, outcome: Outcome) -> float | None:
        self.seen.append((ctx.message.id, outcome))
        return None

    def kinds(self) -> dict[str | None, list[OutcomeKind]]:
        out: dict[str | None, list[OutcomeKind]] = {}
        for ident, outcome in self.seen:
            out.setdefault(ident, []).append(outcome.kind)
        return out


def _recorder(face: str, decide: Callable[[Any], str] | None = None) -> Any:
    """A middleware of ``face`` that records outcomes and, per ``decide(ctx)``, calls
    the handler (``"next"``), short-circuits (``"skip"``) or releases (``"release"``)."""
    choose: Callable[[Any], str] = decide or (lambda ctx: "next")
    if face == "sync":
        class SyncRec(Recorder, mqkit.Middleware):
            def handle(self, ctx: mqkit.HandlerContext, call_next: Any) -> Any:
                self.values.append(ctx.value)
                verdict = choose(ctx)
                if verdict == "skip":
                    return None
                if verdict == "release":
                    raise mqkit.ReleaseMessage("not now")
                return call_next(ctx)
        return SyncRec()

    class AioRec(Recorder, mqkit.aio.Middleware):
        async def handle(self, ctx: mqkit.aio.HandlerContext, call_next: Any) -> Any:
            self.values.append(ctx.value)
            verdict = choose(ctx)
            if verdict == "skip":
                return None
            if verdict == "release":
                raise mqkit.ReleaseMessage("not now")
            return await call_next(ctx)
    return AioRec()


def run_loop(face: str, url: str, messages: list[mqkit.Message],
             handler: Callable[[Any], Any], **kw: Any) -> mqkit.RunStats:
    """Send ``messages`` to t/g at ``url`` and run ``handler`` on ``face`` with ``kw``.

    ``handler`` may return ``"ack"`` or ``"reject"``: the message is then settled that
    way by the handler itself (awaited on the asyncio face)."""
    def settling(msg: Any) -> None:
        verb = handler(msg)
        if verb in ("ack", "reject"):
            getattr(msg, verb)()

    async def asettling(msg: Any) -> None:
        verb = handler(msg)
        if asyncio.iscoroutine(verb):
            verb = await verb
        if verb in ("ack", "reject"):
            await getattr(msg, verb)()

    if face == "sync":
        with mqkit.connect(url) as client:
            client.admin.create_topic("t")
            client.admin.create_group("t", "g")
            with client.producer("t") as p:
                p.send_batch(messages)
            with client.consumer("t", "g") as c:
                return c.run(settling, **kw)

    async def main() -> mqkit.RunStats:
        async with mqkit.aio.connect(url) as client:
            await client.admin.create_topic("t")
            await client.admin.create_group("t", "g")
            async with client.producer("t") as p:
                await p.send_batch(messages)
            async with client.consumer("t", "g") as c:
                return await c.run(asettling, **kw)
    return asyncio.run(main())


# -- the protocol -------------------------------------------------------------------


@pytest.mark.parametrize("face", FACES)
def test_short_circuit_acks_without_calling_the_handler(face: str) -> None:
    called: list[str | None] = []
    rec = _recorder(face, lambda ctx: "skip" if ctx.message.id == "b" else "next")
    stats = run_loop(face, _url(), _messages("a", "b", "c"), lambda m: called.append(m.id),
                     middleware=[rec], stop_after=3, idle_timeout=2)
    assert called == ["a", "c"]
    assert (stats.handled, stats.acked) == (3, 3)
    assert rec.kinds() == {"a": [K.ACKED], "b": [K.ACKED], "c": [K.ACKED]}
    assert all(isinstance(v, (mqkit.ReceivedMessage, mqkit.aio.ReceivedMessage))
               for v in rec.values)


@pytest.mark.parametrize("face", FACES)
def test_outcome_sees_each_kind_once_per_delivery(face: str) -> None:
    def handler(msg: Any) -> str | None:
        if msg.id == "perm":
            raise mqkit.PermanentFailure("bad input")
        if msg.id == "fail":
            raise RuntimeError("boom")
        if msg.id == "self":
            return "reject"
        return None

    rec = _recorder(face)
    stats = run_loop(face, _url(), _messages("ok", "perm", "fail", "self"), handler,
                     middleware=[rec], retry=FAST, stop_after=5, idle_timeout=2)
    assert rec.kinds() == {"ok": [K.ACKED], "perm": [K.DEAD_LETTERED],
                           "fail": [K.RETRIED, K.DEAD_LETTERED], "self": [K.SETTLED]}
    assert len(rec.seen) == stats.handled == 5
    by = {(i, o.kind): o for i, o in rec.seen}
    retried = by[("fail", K.RETRIED)]
    assert retried.attempts == 1 and isinstance(retried.error, RuntimeError)
    assert retried.delay is None  # initial_backoff=0: at once
    assert by[("fail", K.DEAD_LETTERED)].attempts == 2
    assert isinstance(by[("perm", K.DEAD_LETTERED)].error, mqkit.PermanentFailure)
    assert by[("ok", K.ACKED)].error is None


@pytest.mark.parametrize("face", FACES)
def test_retry_delay_and_reject(face: str) -> None:
    policy = RetryPolicy(max_attempts=2, initial_backoff=0.05, jitter=0.0,
                         dead_letter=False)
    rec = _recorder(face)

    def handler(msg: Any) -> None:
        raise RuntimeError("always")

    stats = run_loop(face, _url(), _messages("x"), handler, middleware=[rec], retry=policy,
                     stop_after=2, idle_timeout=2)
    assert [o.kind for _, o in rec.seen] == [K.RETRIED, K.REJECTED]
    assert rec.seen[0][1].delay == pytest.approx(0.05)
    assert stats.rejected == 1


@pytest.mark.parametrize("face", FACES)
def test_dropped_on_an_at_most_once_backend(face: str) -> None:
    FAULTS.caps.update(nack=mqkit.Support.UNSUPPORTED, delivery="at-most-once")
    rec = _recorder(face, lambda ctx: "release" if ctx.message.id == "r" else "next")

    def handler(msg: Any) -> None:
        if msg.id == "bad":
            raise RuntimeError("boom")

    stats = run_loop(face, _url("faulty"), _messages("ok", "bad", "r"), handler,
                     middleware=[rec], retry=FAST, idle_timeout=0.5)
    assert rec.kinds() == {"ok": [K.ACKED], "bad": [K.DROPPED], "r": [K.DROPPED]}
    assert stats.dropped == 2
    assert FAULTS.count("nack") == 0


@pytest.mark.parametrize("face", FACES)
def test_release_gives_back_without_using_an_attempt(face: str) -> None:
    first = {"done": False}

    def decide(ctx: Any) -> str:
        if not first["done"]:
            first["done"] = True
            return "release"
        return "next"

    rec = _recorder(face, decide)
    stats = run_loop(face, _url(), _messages("m"), lambda m: None, middleware=[rec],
                     retry=FAST, stop_after=1, idle_timeout=2)
    assert [(o.kind, o.attempts) for _, o in rec.seen] == [(K.RELEASED, 1), (K.ACKED, 1)]
    assert (stats.released, stats.acked) == (1, 1)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.sampled_from(["ok", "fail", "perm", "self", "skip", "release"]),
                min_size=1, max_size=8))
def test_every_delivery_gets_exactly_one_outcome(plan: list[str]) -> None:
    ids = [f"{i}-{what}" for i, what in enumerate(plan)]
    released: set[str] = set()

    def decide(ctx: Any) -> str:
        what = ctx.message.id.split("-")[1]
        if what == "release" and ctx.message.id not in released:
            released.add(ctx.message.id)
            return "release"
        return "skip" if what == "skip" else "next"

    def handler(msg: Any) -> str | None:
        what = msg.id.split("-")[1]
        if what == "fail":
            raise RuntimeError("x")
        if what == "perm":
            raise mqkit.PermanentFailure("x")
        return "ack" if what == "self" else None

    rec = _recorder("sync", decide)
    handled = len(plan) + plan.count("fail")  # a failure is retried once (max_attempts=2)
    stats = run_loop("sync", _url(), _messages(*ids), handler, middleware=[rec],
                     retry=FAST, stop_after=handled, idle_timeout=2)
    expected = {"ok": [K.ACKED], "skip": [K.ACKED], "self": [K.SETTLED],
                "fail": [K.RETRIED, K.DEAD_LETTERED], "perm": [K.DEAD_LETTERED],
                "release": [K.RELEASED, K.ACKED]}
    assert rec.kinds() == {i: expected[i.split("-")[1]] for i in ids}
    assert len(rec.seen) == stats.handled + stats.released


@pytest.mark.parametrize("face", FACES)
def test_middleware_order_first_is_outermost(face: str) -> None:
    trail: list[str] = []

    def mark(name: str) -> Callable[[Any], str]:
        def decide(ctx: Any) -> str:
            trail.append(name)
            return "next"
        return decide

    outer, inner = _recorder(face, mark("outer")), _recorder(face, mark("inner"))
    run_loop(face, _url(), _messages("a"), lambda m: trail.append("handler"),
             middleware=[outer, inner], stop_after=1, idle_timeout=2)
    assert trail == ["outer", "inner", "handler"]


def test_wrong_face_and_non_middleware_are_refused_by_name() -> None:
    with mqkit.connect(_url()) as client:
        client.admin.create_topic("t")
        client.admin.create_group("t", "g")
        c = client.consumer("t", "g")
        with pytest.raises(mqkit.ConfigurationError, match=r"middleware\[1\].*plain function"):
            c.run(lambda m: None,
                  middleware=[smw.TimeLimit(1), amw.TimeLimit(1)])  # type: ignore[list-item]
        with pytest.raises(mqkit.ConfigurationError, match=r"middleware\[0\] is a int"):
            c.run(lambda m: None, middleware=[3])  # type: ignore[list-item]
        with pytest.raises(mqkit.ConfigurationError, match="not the class"):
            c.run(lambda m: None, middleware=[smw.CircuitBreaker])  # type: ignore[list-item]
        with pytest.raises(mqkit.ConfigurationError, match="must be a list"):
            c.run(lambda m: None, middleware=smw.TimeLimit(1))  # type: ignore[arg-type]

    async def aio() -> None:
        async with mqkit.aio.connect(_url()) as client:
            c = client.consumer("t", "g")
            with pytest.raises(mqkit.ConfigurationError, match=r"coroutine function"):
                await c.run(lambda m: None,
                            middleware=[smw.Idempotent()])  # type: ignore[list-item]
    asyncio.run(aio())
    with pytest.raises(mqkit.ConfigurationError, match=r"middleware\[0\]"):
        App(middleware=[smw.TimeLimit(1)])  # type: ignore[list-item]


# -- idempotent consumer ------------------------------------------------------------


class FakeRedis:
    """``exists`` and ``set(name, value, nx=True, px=ms)`` as redis-py has them."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[bytes, float]] = {}
        self.calls: list[tuple[str, str]] = []

    def exists(self, name: str) -> int:
        self.calls.append(("exists", name))
        item = self.data.get(name)
        return int(item is not None and item[1] > time.monotonic())

    def set(self, name: str, value: bytes, nx: bool = False, px: int | None = None) -> bool:
        self.calls.append(("set", name))
        assert nx and px is not None and px > 0
        if self.exists(name):
            return False
        self.data[name] = (value, time.monotonic() + px / 1000)
        return True


def _store(kind: str, tmp_path: Path) -> Any:
    if kind == "memory":
        return MemoryStore()
    if kind == "redis":
        return RedisStore(FakeRedis())
    conn = sqlite3.connect(str(tmp_path / f"idem-{uuid.uuid4().hex[:6]}.db"),
                           check_same_thread=False)
    return DBAPIStore(conn)


@pytest.mark.parametrize("store_kind", ["memory", "redis", "sqlite"])
@pytest.mark.parametrize("face", FACES)
def test_idempotent_handles_a_duplicated_id_once(face: str, store_kind: str,
                                                 tmp_path: Path) -> None:
    store = _store(store_kind, tmp_path)
    mw = (smw if face == "sync" else amw).Idempotent(store, ttl=60)
    rec = _recorder(face)
    called: list[str | None] = []
    stats = run_loop(face, _dup_url(), _messages("a", "b", "a", "c", "b"),
                     lambda m: called.append(m.id), middleware=[mw, rec], stop_after=5,
                     idle_timeout=2)
    assert called == ["a", "b", "c"]
    assert mw.duplicates == 2
    assert stats.acked == 5
    assert [o.kind for _, o in rec.seen] == [K.ACKED] * 5


@pytest.mark.parametrize("store_kind", ["memory", "redis", "sqlite"])
def test_idempotent_records_only_after_success(store_kind: str, tmp_path: Path) -> None:
    store = _store(store_kind, tmp_path)
    mw = smw.Idempotent(store, ttl=60)
    seen_during: list[bool] = []
    attempts: list[int] = []

    def handler(msg: Any) -> None:
        seen_during.append(store.seen(f"t/g/{msg.id}"))
        attempts.append(msg.delivery_count)
        if msg.delivery_count == 1:
            raise RuntimeError("first try fails")

    stats = run_loop("sync", _url(), _messages("x"), handler, middleware=[mw], retry=FAST,
                     stop_after=2, idle_timeout=2)
    assert attempts == [1, 2]  # the failure was not recorded: the retry ran the handler
    assert seen_during == [False, False]
    assert store.seen("t/g/x")
    assert (stats.retried, stats.acked) == (1, 1)


def test_idempotent_keys_are_per_topic_and_group() -> None:
    store = MemoryStore()
    store.record("t/g/a", 60)
    mw = smw.Idempotent(store)
    called: list[str | None] = []
    run_loop("sync", _url(), _messages("a"), lambda m: called.append(m.id), middleware=[mw],
             stop_after=1, idle_timeout=2)
    assert called == []  # the same (topic, group, id): skipped
    other = MemoryStore()
    other.record("t/other/a", 60)
    run_loop("sync", _url(), _messages("a"), lambda m: called.append(m.id),
             middleware=[smw.Idempotent(other)], stop_after=1, idle_timeout=2)
    assert called == ["a"]


def test_memory_store_ttl_and_bound() -> None:
    now = [0.0]
    store = MemoryStore(max_keys=3, clock=lambda: now[0])
    for key in "abcd":
        store.record(key, 10)
    assert len(store) == 3 and not store.seen("a") and store.seen("d")  # oldest evicted
    now[0] = 10.0
    assert not store.seen("b")  # window closed
    store.record("e", 10)
    assert len(store) == 1  # the expired ones went with the new record


@pytest.mark.parametrize("paramstyle", ["qmark", "numeric", "named"])
def test_dbapi_store_paramstyles_window_and_insert_or_ignore(paramstyle: str) -> None:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    store = DBAPIStore(conn, paramstyle=paramstyle, table="idem", purge_every=2)
    assert not store.seen("k")
    store.record("k", 60)
    store.record("k", 60)  # an open window is kept, no error
    assert store.seen("k")
    store.record("short", 0.05)
    time.sleep(0.1)
    assert not store.seen("short")
    store.record("short", 60)  # a closed window is refreshed
    assert store.seen("short")
    rows = conn.execute("SELECT idem_key FROM idem ORDER BY idem_key").fetchall()
    assert rows == [("k",), ("short",)]


def test_dbapi_store_refuses_bad_arguments() -> None:
    conn = sqlite3.connect(":memory:")
    with pytest.raises(mqkit.ConfigurationError, match="table"):
        DBAPIStore(conn, table="x; drop table y")
    with pytest.raises(mqkit.ConfigurationError, match="paramstyle"):
        DBAPIStore(conn, paramstyle="weird")
    with pytest.raises(mqkit.ConfigurationError, match="DB-API"):
        DBAPIStore(object())
    with pytest.raises(mqkit.ConfigurationError, match="redis-py"):
        RedisStore(object())
    with pytest.raises(mqkit.ConfigurationError, match="store"):
        smw.Idempotent(object())  # type: ignore[arg-type]


def test_redis_store_uses_set_nx_px() -> None:
    redis = FakeRedis()
    store = RedisStore(redis, prefix="p:")
    store.record("k", 1.5)
    store.record("k", 1.5)
    assert store.seen("k") and not store.seen("other")
    assert ("set", "p:k") in redis.calls and list(redis.data) == ["p:k"]


# -- time limit ---------------------------------------------------------------------


@pytest.mark.parametrize("face", FACES)
def test_time_limit_fails_a_slow_handler_and_the_retry_succeeds(face: str) -> None:
    rec = _recorder(face)
    late: list[str] = []

    def slow_first(msg: Any) -> None:
        if msg.delivery_count == 1:
            time.sleep(0.5)
            late.append("late")

    async def aslow_first(msg: Any) -> None:
        if msg.delivery_count == 1:
            await asyncio.sleep(0.5)
            late.append("late")

    limit = (smw if face == "sync" else amw).TimeLimit(0.1)
    started = time.monotonic()
    stats = run_loop(face, _url(), _messages("s"), slow_first if face == "sync" else aslow_first,
                     middleware=[rec, limit], retry=FAST, stop_after=2, idle_timeout=2)
    assert time.monotonic() - started < 0.45  # the loop did not wait for the slow call
    assert [o.kind for _, o in rec.seen] == [K.RETRIED, K.ACKED]
    assert isinstance(rec.seen[0][1].error, mqkit.Timeout)
    assert (stats.retried, stats.acked) == (1, 1)
    if face == "aio":
        time.sleep(0.5)
        assert late == []  # cancelled
    else:
        deadline = time.monotonic() + 2
        while not late and time.monotonic() < deadline:
            time.sleep(0.02)
        assert late == ["late"]  # the thread ran on; its result was ignored


# -- circuit breaker -----------------------------------------------------------------


def test_breaker_state_machine() -> None:
    now = [0.0]
    b = smw.CircuitBreaker(threshold=2, cooldown=5, clock=lambda: now[0]).breaker
    assert b.admit()
    b.failure()
    b.success()  # not consecutive
    b.failure()
    assert b.state == "closed"
    b.failure()
    assert b.state == "open" and not b.admit() and b.remaining() == 5
    now[0] = 5.0
    assert b.state == "half-open"
    assert b.admit() and not b.admit()  # one probe at a time
    b.failure()  # the probe failed: open again
    assert b.state == "open" and b.remaining() == 5
    now[0] = 10.0
    assert b.admit()
    b.success()
    assert b.state == "closed" and b.admit() and b.admit()


@pytest.mark.parametrize("face", FACES)
def test_breaker_opens_stops_receiving_half_opens_and_closes(face: str) -> None:
    broken = threading.Event()
    broken.set()
    handled: list[str] = []
    counts: dict[str, int] = {}

    def handler(msg: Any) -> None:
        if broken.is_set():
            raise RuntimeError("downstream down")
        handled.append(str(msg.id))

    mod = smw if face == "sync" else amw
    breaker = mod.CircuitBreaker(threshold=2, cooldown=0.6)
    rec = _recorder(face)

    def watch() -> None:
        deadline = time.monotonic() + 5
        while breaker.state != "open" and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # the loop settles its batch and starts the pause
        before = FAULTS.count("receive_batch")
        time.sleep(0.3)
        counts["during_pause"] = FAULTS.count("receive_batch") - before
        broken.clear()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    ids = [f"m{i}" for i in range(6)]
    stats = run_loop(face, _url("faulty"), _messages(*ids), handler,
                     middleware=[rec, breaker],
                     retry=RetryPolicy(max_attempts=4, initial_backoff=0.0, jitter=0.0),
                     stop_after=20, idle_timeout=1.5)
    watcher.join(5)
    assert counts["during_pause"] == 0, "the loop received while the circuit was open"
    assert sorted(handled) == ids  # all handled once the circuit closed
    assert breaker.state == "closed"
    assert stats.dead_lettered == 0  # no message burnt its attempts
    assert stats.released >= 4  # the batch in hand went back when it opened
    kinds = rec.kinds()
    assert all(k[-1] is K.ACKED for k in kinds.values())
    released = [o for _, o in rec.seen if o.kind is K.RELEASED]
    assert released and all(o.error is None for o in released)


# -- the App ------------------------------------------------------------------------


def test_app_middleware_sees_the_decoded_value_and_can_skip() -> None:
    app_rec = _recorder("aio", lambda ctx: "skip" if ctx.value == {"n": 2} else "next")
    handler_rec = _recorder("aio")
    got: list[dict[str, int]] = []
    app = App(_url(), middleware=[app_rec])

    @app.handler("orders", group="g", middleware=[handler_rec])
    async def handle(order: dict[str, int]) -> None:
        got.append(order)

    async def main() -> None:
        async with TestApp(app) as t:
            for n in (1, 2, 3):
                await t.send("orders", {"n": n})
            await t.wait_idle()
    asyncio.run(main())
    assert got == [{"n": 1}, {"n": 3}]
    assert app_rec.values == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert handler_rec.values == [{"n": 1}, {"n": 3}]  # inside the App's
    assert [o.kind for _, o in app_rec.seen] == [K.ACKED] * 3
    assert [o.kind for _, o in handler_rec.seen] == [K.ACKED] * 3


def test_app_idempotent_and_payload_error_outcome() -> None:
    rec = _recorder("aio")
    store = MemoryStore()
    store.record("t/g/done-before", 60)  # handled by an earlier run
    idem = amw.Idempotent(store)
    got: list[int] = []
    app = App(_url())

    @app.handler("t", group="g", middleware=[rec, idem])
    def handle(body: dict[str, int]) -> None:  # a plain function: on the app's threads
        got.append(body["n"])

    async def main() -> None:
        async with TestApp(app) as t:
            client = t._client()
            async with client.producer("t") as p:
                await p.send(b'{"n": 1}', id="done-before")
                await p.send(b'{"n": 2}', id="new")
                await p.send(b"not json", id="bad")
            await t.wait_idle()
    asyncio.run(main())
    assert got == [2]
    assert idem.duplicates == 1
    assert store.seen("t/g/new")
    assert rec.kinds() == {"done-before": [K.ACKED], "new": [K.ACKED],
                           "bad": [K.DEAD_LETTERED]}


def test_outcome_hooks_are_only_the_middleware_with_an_outcome_of_their_own() -> None:
    """The loop records outcomes only for middleware that look at them: a subclass that
    keeps the default no-op is left out; an override and a duck-typed one are kept."""
    from mqkit.aio._middleware import outcome_hooks

    class HandleOnly(mqkit.aio.Middleware):
        async def handle(self, ctx: Any, call_next: Any) -> Any:
            return await call_next(ctx)

    class Watches(HandleOnly):
        def outcome(self, ctx: Any, outcome: Outcome) -> float | None:
            return None

    class Duck:
        async def handle(self, ctx: Any, call_next: Any) -> Any:
            return await call_next(ctx)

        def outcome(self, ctx: Any, outcome: Outcome) -> float | None:
            return None

    plain, watcher, duck = HandleOnly(), Watches(), Duck()
    assert outcome_hooks([plain]) == ()
    assert outcome_hooks([plain, watcher, duck]) == (watcher, duck)


def test_outcomes_still_reach_a_hook_behind_a_middleware_without_one() -> None:
    """A chain mixing both kinds: the hook sees every message's outcome, in order."""
    seen: list[OutcomeKind] = []

    class HandleOnly(mqkit.aio.Middleware):
        pass

    class Watches(mqkit.aio.Middleware):
        def outcome(self, ctx: Any, outcome: Outcome) -> float | None:
            seen.append(outcome.kind)
            return None

    async def main() -> None:
        async with mqkit.aio.connect(f"memory://hooks-{uuid.uuid4().hex[:8]}") as client:
            await client.admin.create_topic("t")
            await client.admin.create_group("t", "g")
            async with client.producer("t") as producer:
                await producer.send_batch([b"ok", b"bad", b"ok"])
            consumer = client.consumer("t", "g")

            async def handler(msg: mqkit.aio.ReceivedMessage) -> None:
                if msg.body == b"bad":
                    raise mqkit.PermanentFailure("bad")

            await consumer.run(handler, stop_after=3, middleware=[HandleOnly(), Watches()],
                               retry=RetryPolicy(dead_letter=False))
            await consumer.close()

    asyncio.run(main())
    assert seen == [OutcomeKind.ACKED, OutcomeKind.REJECTED, OutcomeKind.ACKED]
