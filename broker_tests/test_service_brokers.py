"""The App's promises against every real broker (issue 15, "done when"):

- a body that does not decode or validate is dead-lettered once, at once, with the
  reason, and the handler never sees it;
- the idempotency middleware hands a duplicated message id to the handler once (with the
  in-memory store on every backend, and the Redis store on a real Redis);
- ``/readyz`` of ``mqkit run --workers 2 --health-port P`` goes unhealthy while the
  broker is stopped (``scripts/brokers stop BACKEND``) and healthy again after ``start``,
  and the service then handles messages again without a restart of its own.

Parametrised by backend like the other broker tests (``MQKIT_TEST_<BACKEND>_URL``; a
backend named in ``MQKIT_REQUIRE_BACKENDS`` without a URL fails). The readiness case stops
and starts a broker: ``scripts/test-all`` runs this directory on its own, after the
adapter tests and before the contract suite, so nothing else uses the brokers meanwhile.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

import mqkit
import mqkit.aio
from contract_tests.brokers import BACKENDS, BrokerHandle, env_url, find_broker
from mqkit.aio.middleware import Idempotent, MemoryStore, RedisStore
from mqkit.service import App, DeadLetter, TestApp

ROOT = Path(__file__).resolve().parent.parent
FAST = mqkit.RetryPolicy(max_attempts=3, initial_backoff=0.05, max_backoff=0.05, jitter=0)


@dataclasses.dataclass
class Order:
    id: int
    qty: int


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url(backend: str) -> str:
    return env_url(backend)


def _topic(what: str) -> str:
    return f"svc-{what}-{uuid.uuid4().hex[:8]}"


async def _until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.1)


# -- a body that does not decode ---------------------------------------------------------


async def test_undecodable_bodies_are_dead_lettered_once_with_the_reason(url: str) -> None:
    topic = _topic("decode")
    client = mqkit.aio.connect(url)
    app = App(client=client)
    calls: list[Order] = []

    @app.handler(topic, group="svc", retry=FAST)
    async def handle(order: Order) -> None:
        calls.append(order)

    dead: list[DeadLetter] = []
    try:
        async with TestApp(app, start_timeout=60) as t:
            await t.send(topic, {"id": 1, "qty": "x"})   # JSON, but fails validation
            await t.send(topic, b"not json")               # does not decode at all
            await t.send(topic, {"id": 2, "qty": 3})

            async def settled() -> bool:
                dead[:] = await t.dead_letters(topic)
                return len(dead) >= 2 and bool(calls)

            await _until(settled, 60, "2 dead letters and the good message handled")
            await asyncio.sleep(2.0)  # time for a retry or a second copy to show up
            dead[:] = await t.dead_letters(topic)
    finally:
        await client.close()
    assert calls == [Order(2, 3)]
    by_body = {d.body: d for d in dead}
    assert sorted(d.body for d in dead) == sorted([b'{"id":1,"qty":"x"}', b"not json"])
    assert by_body[b'{"id":1,"qty":"x"}'].reason == (
        "PayloadError: body does not decode as Order: Order.qty: expected int, got 'x'")
    assert "body is not valid JSON" in by_body[b"not json"].reason
    assert [d.attempts for d in dead] == [1, 1]  # no retries: it will never succeed
    stats = app.stats(topic)
    assert (stats.payload_errors, stats.handled, stats.failed) == (2, 1, 0)
    assert stats.run is not None
    assert (stats.run.dead_lettered, stats.run.retried) == (2, 0)


# -- a duplicated message id -------------------------------------------------------------


# Topic options that shorten a broker's publish deduplication window, per backend that
# declares dedup (a new one fails with a KeyError here until it is given one).
SHORT_DEDUP_WINDOW: dict[str, dict[str, float]] = {"nats": {"duplicate_window": 1.0}}


def _redis_store() -> RedisStore:
    import redis

    return RedisStore(redis.Redis.from_url(env_url("redis")))


@pytest.mark.parametrize("store_kind", ["memory", "redis"])
async def test_idempotent_handles_a_duplicated_id_once(backend: str, url: str,
                                                       store_kind: str) -> None:
    topic = _topic("idem")
    store = MemoryStore() if store_kind == "memory" else _redis_store()
    mw = Idempotent(store, ttl=60)
    client = mqkit.aio.connect(url)
    app = App(client=client, middleware=[mw])
    calls: list[bytes] = []

    @app.handler(topic, group="svc", retry=FAST)
    async def handle(body: bytes) -> None:
        calls.append(body)

    run_id = uuid.uuid4().hex[:8]  # the Redis store outlives the test: fresh ids
    try:
        await client
        pause = 0.0
        if client.capabilities.dedup:
            # The broker drops a publish whose id it saw within a window: give the topic
            # a short one and send the duplicates after it, so they reach the consumer
            # (as a redelivery or a producer's retry past the window would).
            options = SHORT_DEDUP_WINDOW[backend]
            await client.admin.create_topic(topic, **options)
            pause = max(options.values()) + 0.5
        async with TestApp(app, start_timeout=60):
            async with client.producer(topic) as producer:
                for name in ["a", "b", "c"]:
                    await producer.send(name.encode(), id=f"{run_id}-{name}")
                await asyncio.sleep(pause)
                for name in ["a", "b"]:
                    await producer.send(name.encode(), id=f"{run_id}-{name}")

            async def done() -> bool:
                return len(calls) >= 3 and mw.duplicates >= 2

            await _until(done, 60, "3 handled and 2 duplicates skipped")
            await asyncio.sleep(1.0)  # nothing more comes
    finally:
        await client.close()
    assert Counter(calls) == Counter([b"a", b"b", b"c"])
    assert mw.duplicates == 2
    stats = app.stats(topic)
    assert stats.run is not None
    assert (stats.run.acked, stats.run.retried, stats.run.dead_lettered) == (5, 0, 0)


# -- /readyz follows the broker -------------------------------------------------------------


APP = '''
import os

from mqkit.service import App

app = App(graceful_timeout=10)
OUT = os.environ["OUT"]


@app.on_startup
def started() -> None:
    with open(OUT + ".pids", "a") as f:
        f.write(f"{os.getpid()}\\n")


@app.handler(os.environ["TOPIC"], group="svc")
def handle(n: int) -> None:
    with open(OUT, "a") as f:
        f.write(f"{n}\\n")
'''


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status(port: int, path: str) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None  # not listening (yet)


def _wait(check: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"not within {timeout} s: {what}"
        time.sleep(0.1)
    return time.monotonic() - start


@pytest.fixture
def broker(backend: str) -> Iterator[BrokerHandle]:
    handle = find_broker(backend)
    assert isinstance(handle, BrokerHandle), handle
    assert handle.can_inject_faults, f"cannot stop/start the {backend} broker here"
    yield handle
    handle.start()  # idempotent: whatever the test did, the broker is up for the next


def test_readyz_fails_while_the_broker_is_stopped_and_recovers(
        broker: BrokerHandle, tmp_path: Path) -> None:
    url = broker.url
    topic = _topic("ready")
    with mqkit.connect(url) as client:
        client.admin.create_topic(topic)
        client.admin.create_group(topic, "svc")
    (tmp_path / "svc_ready.py").write_text(APP, encoding="utf-8")
    out = tmp_path / "handled.txt"
    paths = [str(ROOT), *(str(p) for p in sorted((ROOT / "adapters").iterdir())
                          if p.is_dir())]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OUT": str(out),
           "TOPIC": topic}
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mqkit.cli", "run", "svc_ready:app", "--workers", "2",
         "--url", url, "--health-port", str(port)], cwd=tmp_path, env=env)

    def handled() -> set[int]:
        if not out.exists():
            return set()
        return {int(n) for n in out.read_text(encoding="utf-8").split()}

    def send(n: int) -> None:
        with mqkit.connect(url) as client, \
                client.producer(topic, codec=mqkit.JSON) as producer:
            producer.send(n)

    def ready_at_start() -> bool:
        assert proc.poll() is None, f"mqkit run exited with {proc.returncode}"
        return _status(port, "/readyz") == 200

    try:
        _wait(ready_at_start, 60, "/readyz 200 at start")
        send(1)
        _wait(lambda: 1 in handled(), 30, "message 1 handled")
        broker.stop()
        # Before the consumers' unavailable_timeout (60 s), after which a worker would
        # give up, exit and be restarted: readiness must follow the outage itself. Most
        # backends notice at once (<= 0.6 s measured); a Kafka consumer between fetches
        # notices only when a metadata call fails, which kafka-python may hold for its
        # request timeout (once more than 15 s in CI): hence the wide bound.
        down = _wait(lambda: _status(port, "/readyz") == 503, 50,
                     "/readyz 503 while the broker is stopped")
        assert _status(port, "/healthz") == 200  # alive all along
        broker.start()
        up = _wait(lambda: _status(port, "/readyz") == 200, 90,
                   "/readyz 200 after the broker started")
        send(2)
        _wait(lambda: 2 in handled(), 60, "message 2 handled after the outage")
        print(f"{broker.backend}: /readyz 503 after {down:.1f} s, 200 again {up:.1f} s "
              "after start")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(40) == 0
        pids = Path(str(out) + ".pids").read_text(encoding="utf-8").split()
        assert len(pids) == 2, f"workers were restarted: {pids}"  # rode the outage out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
