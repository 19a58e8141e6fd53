"""``mqkit run --workers N``: N worker processes, each running the App, supervised.

The parent runs no App and opens no broker connection. It starts N workers, each
``python -m mqkit.cli run MODULE:ATTR --worker-of PARENT_PID`` (so each has its own
connection), and:

- restarts a worker that exits while the parent is not stopping (crash, ``kill -9``,
  an app error), after a backoff of 0.5 s doubling to 8 s, logged at WARNING with the
  cause (exit status or signal). More than ``max_restarts`` restarts of one worker
  within 60 s means it cannot stay up: the parent stops the others and exits 1 naming
  the worker and its last exit;
- forwards the first SIGTERM/SIGINT to every worker as SIGTERM (each drains as a single
  ``mqkit run`` does) and waits up to the graceful timeout + 5 s; a worker still running
  then is killed (SIGKILL) and the exit status is 1;
- on a second signal sends SIGKILL to every worker and exits at once (130);
- exits 0 when every worker drained cleanly (exit status 0), else 1 naming each worker
  that did not;
- with ``health_port``, serves ``/healthz`` (the parent is alive) and ``/readyz``: 200
  only while all N workers are running and each reports its App ready. A worker reports
  over a pipe of its own (``--status-fd``): one byte, ``1`` or ``0``, each time
  ``app.ready`` changes; end of file (it exited) means not ready;
- with ``metrics`` (``--metrics``), serves ``/metrics`` on the health port: each worker
  writes its metrics to a file of its own in a private temporary directory
  (``--metrics-file``), read at each scrape and labelled ``worker="1".."N"``; a worker
  that exits has its last counts carried over to its next process, so its counters
  never go backwards (:mod:`mqkit.otel._workers`).

Workers are started in a session of their own, so a terminal's Ctrl-C reaches only the
parent, which forwards it once (otherwise each worker would see it twice: from the
terminal and forwarded, and take it as the second, forcing signal). A worker whose
parent disappears (killed with SIGKILL) notices within 0.5 s and drains on its own.

Why ``subprocess`` re-invoking ``python -m mqkit.cli`` rather than ``multiprocessing``
(``spawn``): a worker is then exactly a single-process ``mqkit run`` (the same signal
handling, drain and exit statuses, tested once), started the same way as by a process
manager; nothing is pickled (an App holds the user's functions and closures, which
``spawn`` would have to re-import anyway); there is no ``multiprocessing`` resource
tracker or ``if __name__ == "__main__"`` requirement in the user's module; and the
parent's whole protocol with a worker is a signal, an exit status and a one-byte pipe.
The cost is one interpreter start per worker (about 0.2 s plus the user's imports).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING

from .._process import hard_exit

if TYPE_CHECKING:
    from ..otel._workers import WorkerMetrics
    from ._health import HealthServer

__all__ = ["Supervisor"]

log = logging.getLogger("mqkit.run")

RESTART_WINDOW = 60.0     # seconds over which max_restarts counts
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 8.0
STOP_MARGIN = 5.0         # waited past the graceful timeout for the workers to exit
FORCED_EXIT = 130
_TICK = 0.05


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    status_fd: int | None = None
    ready: bool = False
    restarts: deque[float] = field(default_factory=deque)  # monotonic times
    restart_at: float | None = None
    last_exit: str = ""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    """Runs ``workers`` processes of ``mqkit run APP`` and supervises them (see module)."""

    def __init__(self, app_spec: str, *, workers: int, url: str | None,
                 graceful_timeout: float, max_restarts: int = 5,
                 health_port: int | None = None, health_host: str = "0.0.0.0",
                 log_level: str = "info", metrics: bool = False) -> None:
        self.app_spec = app_spec
        self.url = url
        self.graceful_timeout = graceful_timeout
        self.max_restarts = max_restarts
        self.health_port = health_port
        self.health_host = health_host
        self.log_level = log_level
        self.workers = [_Worker(i + 1) for i in range(workers)]
        self.metrics: WorkerMetrics | None = None
        if metrics:
            from ..otel._workers import WorkerMetrics

            self.metrics = WorkerMetrics(tempfile.mkdtemp(prefix="mqkit-metrics-"), workers)
        self.signals = 0
        self.failure: str | None = None

    # -- readiness -------------------------------------------------------------------

    def ready(self) -> bool:
        """Every worker runs and reported its App ready (thread-safe: plain reads)."""
        return all(w.alive and w.ready for w in self.workers)

    def _read_status(self, worker: _Worker) -> None:
        fd = worker.status_fd
        if fd is None:
            return
        try:
            data = os.read(fd, 256)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            worker.ready = data[-1:] == b"1"
        else:  # end of file: the worker exited
            worker.ready = False
            os.close(fd)
            worker.status_fd = None

    # -- workers ---------------------------------------------------------------------

    def _start(self, worker: _Worker) -> None:
        read, write = os.pipe()
        os.set_blocking(read, False)
        argv = [sys.executable, "-m", "mqkit.cli", "run", self.app_spec,
                "--graceful-timeout", repr(self.graceful_timeout),
                "--log-level", self.log_level,
                "--worker-of", str(os.getpid()), "--status-fd", str(write)]
        if self.metrics is not None:
            argv += ["--metrics-file", str(self.metrics.path(worker.index))]
        env = dict(os.environ)
        if self.url is not None:
            env["_MQKIT_RUN_URL"] = self.url
        try:
            worker.proc = subprocess.Popen(argv, env=env, pass_fds=(write,),
                                           start_new_session=True)
        finally:
            os.close(write)
        worker.status_fd = read
        worker.ready = False
        worker.restart_at = None
        if self.metrics is not None:
            self.metrics.started(worker.index)
        log.info("worker %d started (pid %d)", worker.index, worker.proc.pid)

    def _died(self, worker: _Worker, now: float) -> bool:
        """``worker`` exited while nobody asked: schedule its restart (true), or give up
        (false, :attr:`failure` says why)."""
        assert worker.proc is not None
        worker.last_exit = _exit_text(worker.proc.returncode)
        while worker.restarts and now - worker.restarts[0] > RESTART_WINDOW:
            worker.restarts.popleft()
        giving_up = len(worker.restarts) >= self.max_restarts
        if self.metrics is not None:
            self.metrics.exited(worker.index, restarting=not giving_up)
        if giving_up:
            self.failure = (f"worker {worker.index} (pid {worker.proc.pid}) {worker.last_exit}"
                            f"; it was restarted {len(worker.restarts)} time(s) in the last "
                            f"{RESTART_WINDOW:g} s (--max-restarts {self.max_restarts}): "
                            "giving up")
            log.error("%s", self.failure)
            return False
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** len(worker.restarts))
        worker.restarts.append(now)
        worker.restart_at = now + delay
        log.warning("worker %d (pid %d) %s; restarting it in %g s (restart %d "
                    "in the last %g s)", worker.index, worker.proc.pid, worker.last_exit,
                    delay, len(worker.restarts), RESTART_WINDOW)
        return True

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        del frame
        self.signals += 1
        if self.signals >= 2:  # at once, not at the next tick
            self._kill_all()
            log.warning("second %s: workers killed; the broker redelivers "
                        "their unsettled messages", signal.Signals(signum).name)
            hard_exit(FORCED_EXIT)

    def _signal_all(self, sig: signal.Signals) -> None:
        for worker in self.workers:
            if worker.alive:
                assert worker.proc is not None
                try:
                    worker.proc.send_signal(sig)
                except ProcessLookupError:
                    pass

    def _kill_all(self) -> None:
        self._signal_all(signal.SIGKILL)

    # -- the loop --------------------------------------------------------------------

    def run(self) -> int:
        """Start the workers, supervise them until a signal (or giving up); exit status."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        health: HealthServer | None = None
        if self.health_port is not None:
            from ._health import HealthServer

            health = HealthServer(self.ready, port=self.health_port, host=self.health_host)
            if self.metrics is not None:
                from ..otel import CONTENT_TYPE

                metrics = self.metrics
                health.route("/metrics", lambda: (200, metrics.render()),
                             content_type=CONTENT_TYPE)
            health.start()
            log.info("health on http://%s:%d (%s)", self.health_host, health.port,
                     ", ".join(health.routes))
        try:
            for worker in self.workers:
                self._start(worker)
            log.info("supervising %d workers of %s (pid %d)", len(self.workers),
                     self.app_spec, os.getpid())
            self._supervise()
            return self._stop()
        finally:
            if self.signals < 2:
                self._kill_all()  # nothing outlives the parent, whatever happened
            for worker in self.workers:
                if worker.status_fd is not None:
                    os.close(worker.status_fd)
                    worker.status_fd = None
            if health is not None:
                health.close()
            if self.metrics is not None:
                shutil.rmtree(self.metrics.directory, ignore_errors=True)

    def _supervise(self) -> None:
        while not self.signals and self.failure is None:
            now = time.monotonic()
            for worker in self.workers:
                self._read_status(worker)
                if worker.restart_at is not None:
                    if now >= worker.restart_at:
                        self._start(worker)
                elif (worker.proc is not None and worker.proc.poll() is not None
                      and not self._died(worker, now)):
                    return
            time.sleep(_TICK)

    def _stop(self) -> int:
        """Forward the stop to every worker, wait for them, and sum up."""
        if self.signals:
            log.info("stopping %d workers (graceful timeout %g s)",
                     len(self.workers), self.graceful_timeout)
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + self.graceful_timeout + STOP_MARGIN
        while any(w.alive for w in self.workers) and time.monotonic() < deadline:
            for worker in self.workers:
                self._read_status(worker)
            time.sleep(_TICK)
        problems = []
        for worker in self.workers:
            if worker.proc is None or worker.restart_at is not None:
                continue  # waiting for a restart: it had already exited, reported
            if worker.alive:
                worker.proc.kill()
                worker.proc.wait()
                problems.append(f"worker {worker.index} (pid {worker.proc.pid}) still "
                                f"running {self.graceful_timeout + STOP_MARGIN:g} s after "
                                "SIGTERM: killed")
            elif worker.proc.returncode != 0 and self.failure is None:
                problems.append(f"worker {worker.index} (pid {worker.proc.pid}) "
                                f"{_exit_text(worker.proc.returncode)}")
        if self.failure is not None:
            problems.insert(0, self.failure)
        if problems:
            print(f"error: {'; '.join(problems)}", file=sys.stderr)
            return 1
        log.info("every worker stopped cleanly")
        return 0


def _exit_text(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with status {returncode}"



