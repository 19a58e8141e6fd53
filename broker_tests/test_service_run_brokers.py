"""``mqkit run --workers 2`` against every real broker: nothing lost under SIGTERM
mid-stream or a worker killed with SIGKILL (issue 15, "done when").

Adapter-independent: parametrised by backend, the URL from ``MQKIT_TEST_<BACKEND>_URL``
(``eval "$(scripts/brokers env)"``); a backend without one is skipped, or fails when
``MQKIT_REQUIRE_BACKENDS`` names it (as every broker test: ``contract_tests.brokers.env_url``).
``scripts/test-all`` runs this directory in its adapter step, with the brokers up.

The service (written to tmp_path) appends ``N PID`` to a file for each message it
handled; a test producer sends numbered messages to a fresh topic. Counted at the end:
every number handled at least once (0 lost), and the duplicates bounded by what was in
flight when the process stopped or died (at most the prefetch of each worker).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import mqkit
from contract_tests.brokers import BACKENDS, env_url

ROOT = Path(__file__).resolve().parent.parent
PREFETCH = 10

APP = '''
import os
import time

from mqkit.service import App

app = App(graceful_timeout=20)
OUT = os.environ["OUT"]


@app.on_startup
def start():
    with open(OUT + ".pids", "a") as f:
        f.write(f"{os.getpid()}\\n")


@app.handler(os.environ["TOPIC"], group="svc", prefetch=int(os.environ["PREFETCH"]))
def handle(n: int) -> None:
    time.sleep(0.005)
    with open(OUT, "a") as f:
        f.write(f"{n} {os.getpid()}\\n")
'''


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest) -> str:
    return env_url(str(request.param))


class Service:
    def __init__(self, tmp_path: Path, url: str, topic: str) -> None:
        (tmp_path / "svc_brokers.py").write_text(APP, encoding="utf-8")
        self.tmp_path = tmp_path
        self.out = tmp_path / "handled.txt"
        paths = [str(ROOT), *(str(p) for p in sorted((ROOT / "adapters").iterdir())
                              if p.is_dir())]
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OUT": str(self.out),
                    "TOPIC": topic, "PREFETCH": str(PREFETCH)}
        self.url = url
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mqkit.cli", "run", "svc_brokers:app", "--workers", "2",
             "--url", self.url], cwd=self.tmp_path, env=self.env)
        self.procs.append(proc)
        return proc

    def handled(self) -> Counter[int]:
        if not self.out.exists():
            return Counter()
        return Counter(int(line.split()[0])
                       for line in self.out.read_text(encoding="utf-8").splitlines()
                       if line.strip())

    def pids(self) -> list[int]:
        path = Path(str(self.out) + ".pids")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def service(tmp_path: Path, url: str) -> Iterator[Callable[[str], Service]]:
    made: list[Service] = []

    def make(topic: str) -> Service:
        made.append(Service(tmp_path, url, topic))
        return made[-1]

    yield make
    for svc in made:
        svc.close()


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def _feed(url: str, topic: str, numbers: range, pause: float = 0.002) -> None:
    with mqkit.connect(url) as client, client.producer(topic, codec=mqkit.JSON) as producer:
        for n in numbers:
            producer.send(n)
            time.sleep(pause)


def _declare(url: str, topic: str) -> None:
    with mqkit.connect(url) as client:
        client.admin.create_topic(topic)
        client.admin.create_group(topic, "svc")


def test_sigterm_mid_stream_loses_nothing(url: str, service: Callable[[str], Service]) -> None:
    topic = f"svc-run-{uuid.uuid4().hex[:8]}"
    _declare(url, topic)
    svc = service(topic)
    first = svc.start()
    _wait(lambda: len(svc.pids()) == 2, 60, "2 workers up")
    total = 400
    _feed(url, topic, range(0, total // 2))
    _wait(lambda: len(svc.handled()) > 20, 60, "handling began")
    first.send_signal(signal.SIGTERM)  # mid-stream: messages still waiting and in flight
    sent = time.monotonic()
    assert first.wait(40) == 0
    assert time.monotonic() - sent < 20 + 5  # within the graceful timeout (+ margin)
    _feed(url, topic, range(total // 2, total))
    second = svc.start()
    _wait(lambda: set(svc.handled()) == set(range(total)), 120, "every message handled")
    second.send_signal(signal.SIGTERM)
    assert second.wait(40) == 0
    counts = svc.handled()
    lost = set(range(total)) - set(counts)
    duplicates = sum(c - 1 for c in counts.values())
    assert not lost
    assert duplicates <= 2 * 2 * PREFETCH, duplicates  # in flight in 2 workers, 2 stops


def test_a_worker_killed_is_replaced_and_nothing_is_lost(
        url: str, service: Callable[[str], Service]) -> None:
    topic = f"svc-kill-{uuid.uuid4().hex[:8]}"
    _declare(url, topic)
    svc = service(topic)
    proc = svc.start()
    _wait(lambda: len(svc.pids()) == 2, 60, "2 workers up")
    total = 300
    _feed(url, topic, range(0, total // 2))
    os.kill(svc.pids()[0], signal.SIGKILL)
    _wait(lambda: len(svc.pids()) == 3, 30, "the killed worker replaced")
    _feed(url, topic, range(total // 2, total))
    # A message the killed worker held comes back after the broker notices (its lease).
    _wait(lambda: set(svc.handled()) == set(range(total)), 180, "every message handled")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(40) == 0
