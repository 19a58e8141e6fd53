"""The health endpoint: :class:`HealthServer` in-process, and ``mqkit run --health-port``
as a real process (one process and ``--workers``)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import mqkit
from mqkit.service import App
from mqkit.service._health import HealthServer

from .faulty import FAULTS
from .service_apps import lines
from .test_service_run import Run, running, wait_for

__all__ = ["running"]  # the fixture, shared with test_service_run


def get(port: int, path: str, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


# -- the server ---------------------------------------------------------------------------

@pytest.fixture
def server() -> Iterator[tuple[HealthServer, list[bool]]]:
    flag = [False]
    health = HealthServer(lambda: flag[0], port=0, host="127.0.0.1")
    health.start()
    yield health, flag
    health.close()


def test_healthz_is_alive_and_readyz_follows_ready(
        server: tuple[HealthServer, list[bool]]) -> None:
    health, flag = server
    assert health.port > 0
    assert get(health.port, "/healthz") == (200, "alive\n")
    assert get(health.port, "/readyz") == (503, "not ready\n")
    flag[0] = True
    assert get(health.port, "/readyz") == (200, "ready\n")
    assert get(health.port, "/readyz?verbose=1") == (200, "ready\n")
    flag[0] = False
    assert get(health.port, "/readyz") == (503, "not ready\n")


def test_other_paths_methods_and_head(server: tuple[HealthServer, list[bool]]) -> None:
    health, _ = server
    assert get(health.port, "/nope") == (404, "not found; paths: /healthz /readyz\n")
    assert get(health.port, "/healthz", "POST") == (405, "method not allowed\n")
    assert get(health.port, "/healthz", "HEAD") == (200, "")


def test_a_route_can_be_added_for_metrics(server: tuple[HealthServer, list[bool]]) -> None:
    health, _ = server
    health.route("/metrics", lambda: (200, "mqkit_handled_total 3"))
    assert health.routes == ["/healthz", "/readyz", "/metrics"]
    assert get(health.port, "/metrics") == (200, "mqkit_handled_total 3\n")
    with pytest.raises(ValueError, match="starts with '/'"):
        health.route("metrics", lambda: (200, ""))


def test_a_failing_readiness_check_is_not_ready_and_a_failing_route_500(
        caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> bool:
        raise RuntimeError("boom")

    health = HealthServer(broken, port=0, host="127.0.0.1")
    health.route("/bad", lambda: 1 / 0)  # type: ignore[arg-type,return-value]
    health.start()
    try:
        assert get(health.port, "/readyz") == (503, "not ready\n")
        assert get(health.port, "/bad") == (500, "error\n")
        assert get(health.port, "/healthz") == (200, "alive\n")
    finally:
        health.close()
    assert "readiness check failed: RuntimeError: boom" in caplog.text


def test_a_port_in_use_raises_and_close_frees_the_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            HealthServer(lambda: True, port=taken.getsockname()[1], host="127.0.0.1").start()
    health = HealthServer(lambda: True, port=0, host="127.0.0.1")
    health.start()
    port = health.port
    health.close()
    health.close()  # twice is fine
    again = HealthServer(lambda: True, port=port, host="127.0.0.1")
    again.start()
    again.close()


# -- mqkit run --health-port ---------------------------------------------------------------

def _port(run: Run) -> int:
    found: list[int] = []

    def logged() -> bool:
        match = re.search(r"health on http://127\.0\.0\.1:(\d+)", run.err)
        if match:
            found.append(int(match.group(1)))
        return bool(match)

    wait_for(logged, what="the health port logged")
    return found[0]


HEALTH = ("--health-port", "0", "--health-host", "127.0.0.1")


def test_readyz_while_the_app_runs_and_not_while_it_drains(
        running: Callable[..., Run]) -> None:
    run = running("svc:app", *HEALTH, N="1", SLEEP="1.5")
    port = _port(run)
    wait_for(lambda: lines(run.out, "begin"), what="a handler started")
    wait_for(lambda: get(port, "/readyz")[0] == 200, 5, "ready")
    assert get(port, "/healthz") == (200, "alive\n")
    run.signal()
    wait_for(lambda: get(port, "/readyz")[0] == 503, 1, "not ready once draining")
    assert get(port, "/healthz") == (200, "alive\n")  # still alive while draining
    assert run.wait() == 0, run.err


def test_workers_readyz_needs_every_worker(running: Callable[..., Run]) -> None:
    run = running("svc:app", "--workers", "2", *HEALTH, N="0")
    port = _port(run)
    wait_for(lambda: len(lines(run.out, "start")) == 2, what="2 workers")
    wait_for(lambda: get(port, "/readyz")[0] == 200, 10, "both ready")
    victim = int(lines(run.out, "start")[0][0])
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: get(port, "/readyz")[0] == 503, 2, "not ready without a worker")
    assert get(port, "/healthz") == (200, "alive\n")
    down = time.monotonic()
    wait_for(lambda: get(port, "/readyz")[0] == 200, 10, "ready again after the restart")
    assert time.monotonic() - down > 0.4  # the restart backoff
    run.signal()
    assert run.wait() == 0, run.err


# -- readiness follows the broker -----------------------------------------------------------

async def test_readyz_fails_while_the_broker_is_down() -> None:
    FAULTS.reset()
    app = App("faulty://health-outage", unavailable_timeout=30)

    @app.handler("jobs", group="g")
    async def job(body: bytes) -> None:
        del body

    task = asyncio.ensure_future(app.run())
    try:
        await _until(lambda: app.ready)
        FAULTS.fail_always("receive_batch", mqkit.Unavailable("broker down"))
        await asyncio.sleep(1.0)  # the loop is riding out the outage now
        assert FAULTS.count("receive_batch") > 1
        assert not app.ready
        FAULTS.fail_always("receive_batch", None)  # the broker is back
        await _until(lambda: app.ready)
    finally:
        FAULTS.reset()
        app.stop()
        await asyncio.wait_for(task, 10)


async def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_the_module_is_loaded_only_for_a_health_port(tmp_path: Path) -> None:
    """``mqkit run --help`` imports neither asyncio nor the health server."""
    code = ("import sys; from mqkit.cli import main; main(['run', '--help']); "
            "print([m for m in ('http.server', 'mqkit.service._health', "
            "'mqkit.service._supervisor', 'asyncio') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
                         ).stdout
    assert out.strip().splitlines()[-1] == "[]"
