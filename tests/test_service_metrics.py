"""``mqkit run --metrics``: ``/metrics`` on the health port, one process and ``--workers 2``.

Real ``mqkit run`` processes on ``memory://``. memory:// lives in one process, so each
worker feeds itself (``tests/service_apps.py``: its startup hook publishes ``$N``
messages to its own topic): with 2 workers and N=3 a scrape must show 3 sent, consumed
and acked **per worker**, labelled ``worker="1"`` and ``worker="2"``. A worker killed
with SIGKILL is restarted and feeds itself 3 more: its counters go on from where the
dead process's last snapshot left them (6), never back to 0.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from mqkit.cli import main

from .service_apps import lines, write_app
from .test_otel_metrics_prometheus import check_exposition
from .test_service_run import ROOT, Run, running, wait_for

__all__ = ["running"]  # the fixture, shared with test_service_run

JOBS = 'messaging_consumer_group_name="workers",messaging_destination_name="jobs"'


def _port(run: Run) -> int:
    found: list[int] = []

    def bound() -> bool:
        match = re.search(r"health on http://[^:]+:(\d+) \(([^)]*)\)", run.err)
        if match:
            assert "/metrics" in match.group(2), match.group(0)
            found.append(int(match.group(1)))
        return bool(found)

    wait_for(bound, what="the health server bound")
    return found[0]


def scrape(port: int) -> tuple[str, dict[str, float]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        ctype = resp.headers["Content-Type"]
        text = resp.read().decode()
    return ctype, check_exposition(text)


def _value(samples: dict[str, float], name: str, worker: str | None = None,
           **extra: str) -> float:
    labels = dict(extra)
    if worker is not None:
        labels["worker"] = worker
    total = 0.0
    for key, value in samples.items():
        if key.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in key for k, v in labels.items()) and JOBS in key:
            total += value
    return total


def _settled(port: int, name: str, want: float, worker: str | None = None,
             **extra: str) -> dict[str, float]:
    got: list[dict[str, float]] = []

    def check() -> bool:
        try:
            samples = scrape(port)[1]
        except (urllib.error.URLError, ConnectionError):
            return False
        got[:] = [samples]
        return _value(samples, name, worker, **extra) == want

    wait_for(check, what=f"{name} {worker} = {want}")
    return got[0]


def test_one_process_serves_its_metrics(running: Callable[..., Run]) -> None:
    run = running("svc:app", "--health-port", "0", "--metrics", N="3")
    port = _port(run)
    samples = _settled(port, "mqkit_consumer_outcomes_total", 3, mqkit_outcome="acked")
    assert _value(samples, "messaging_client_consumed_messages_total") == 3
    assert samples['messaging_client_sent_messages_total{messaging_destination_name="jobs",'
                   'messaging_operation_name="send",messaging_system="memory"}'] == 3
    assert _value(samples, "messaging_process_duration_seconds_count") == 3
    assert not any("worker=" in key for key in samples)
    ctype, _ = scrape(port)
    assert ctype == "text/plain; version=0.0.4; charset=utf-8"
    run.signal()
    assert run.wait() == 0, run.err


def test_workers_are_labelled_per_worker_and_a_restart_carries_the_counts(
        running: Callable[..., Run]) -> None:
    run = running("svc:app", "--workers", "2", "--health-port", "0", "--metrics", N="3")
    port = _port(run)
    for worker in ("1", "2"):
        _settled(port, "mqkit_consumer_outcomes_total", 3, worker, mqkit_outcome="acked")
    samples = scrape(port)[1]
    for worker in ("1", "2"):
        assert _value(samples, "messaging_client_consumed_messages_total", worker) == 3
        assert samples['messaging_client_sent_messages_total{messaging_destination_name='
                       f'"jobs",messaging_operation_name="send",messaging_system="memory",'
                       f'worker="{worker}"}}'] == 3
        assert samples[f'mqkit_worker_up{{worker="{worker}"}}'] == 1
    # one scrape sums the workers: sum without (worker) gives what was sent in all
    assert _value(samples, "mqkit_consumer_outcomes_total", mqkit_outcome="acked") == 6

    victim = int(lines(run.out, "start")[0][0])
    os.kill(victim, signal.SIGKILL)
    seen: list[float] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # scrape through the restart: never below 3
        acked = [_value(scrape(port)[1], "mqkit_consumer_outcomes_total", w,
                        mqkit_outcome="acked") for w in ("1", "2")]
        seen.append(sum(acked))
        assert min(acked) >= 3, acked
        if sorted(acked) == [3, 6]:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"the restarted worker's counts did not reach 6: {seen[-5:]}")
    samples = scrape(port)[1]
    restarted = [w for w in ("1", "2")
                 if _value(samples, "mqkit_consumer_outcomes_total", w,
                           mqkit_outcome="acked") == 6]
    assert samples[f'mqkit_worker_restarts_total{{worker="{restarted[0]}"}}'] == 1
    assert seen == sorted(seen)  # the sum never went backwards
    run.signal()
    assert run.wait() == 0, run.err


def test_metrics_needs_the_health_port(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                       ) -> None:
    write_app(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "svc:app", "--metrics"]) == 2
    assert "--metrics serves /metrics on the health server" in capsys.readouterr().err


def test_metrics_without_the_otel_extra_exits_1_naming_it(tmp_path: Path) -> None:
    write_app(tmp_path)
    code = ("import sys\n"
            "sys.modules['opentelemetry'] = None  # as if not installed\n"
            "from mqkit.cli import main\n"
            "sys.exit(main(['run', 'svc:app', '--metrics', '--health-port', '0']))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQKIT_")}
    # IMPORT_SLEEP: the module notes "importing" when it is imported
    env.update(PYTHONPATH=str(ROOT), OUT=str(tmp_path / "out.txt"), IMPORT_SLEEP="0.01")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    assert "--metrics: mqkit.otel needs the OpenTelemetry API" in done.stderr
    assert "mqkit-sdk[otel]" in done.stderr
    assert not (tmp_path / "out.txt").exists()  # the app was not even imported
