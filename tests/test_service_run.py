"""``mqkit run MODULE:ATTR``: loading the App, signals, drain, exit statuses, workers.

Bad specs run in-process through ``main``. Everything else starts ``python -m mqkit.cli
run`` as a real process on ``memory://`` (one broker per process: the app feeds itself,
see ``tests/service_apps.py``) and reads what it wrote to a file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mqkit.cli import main

from .service_apps import lines, write_app

ROOT = Path(__file__).resolve().parent.parent


# -- helpers ------------------------------------------------------------------------------

class Run:
    """One ``mqkit run`` process in ``tmp_path``, its stderr in a file."""

    def __init__(self, tmp_path: Path, *args: str, **env: str) -> None:
        self.out = tmp_path / "out.txt"
        self.err_path = tmp_path / f"stderr-{uuid.uuid4().hex[:6]}.txt"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MQKIT_")}
        environ.update(PYTHONPATH=str(ROOT), OUT=str(self.out), **env)
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mqkit.cli", "run", *args], cwd=tmp_path,
                env=environ, stdout=subprocess.DEVNULL, stderr=err)

    @property
    def err(self) -> str:
        return self.err_path.read_text(encoding="utf-8")

    def signal(self, sig: signal.Signals = signal.SIGTERM) -> float:
        self.proc.send_signal(sig)
        return time.monotonic()

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Callable[..., Run]]:
    write_app(tmp_path)
    runs: list[Run] = []

    def start(*args: str, **env: str) -> Run:
        run = Run(tmp_path, *args, **env)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.kill()
        pids = [int(p[0]) for p in lines(run.out, "start")]
        for pid in pids:  # workers never outlive a test
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def wait_for(check: Callable[[], object], timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of ours is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def one_line_error(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.strip()


# -- loading the App (in-process) -------------------------------------------------------

@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A uniquely named copy of the service module in tmp_path, the cwd."""
    name = f"svc_{uuid.uuid4().hex[:8]}"
    write_app(tmp_path, name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("OUT", str(tmp_path / "out.txt"))
    return name


@pytest.mark.parametrize(("spec", "status", "expected"), [
    ("{m}", 2, "mqkit run: error: APP must be MODULE:ATTR (e.g. myservice:app or "
               "myservice:create_app), got '{m}'"),
    ("{m}:", 2, "APP must be MODULE:ATTR"),
    ("{m}:app-x", 2, "APP must be MODULE:ATTR"),
    ("no_such_module_x:app", 2, "no module named 'no_such_module_x' (APP "
                                "'no_such_module_x:app'; looked in "),
    ("{m}:nope", 2, "'{m}' has no attribute 'nope' (APP '{m}:nope')"),
    ("{m}:app.nope", 2, "'{m}.app' has no attribute 'nope'"),
    ("{m}:NUMBER", 2, "{m}:NUMBER is a int, not an mqkit.service.App (or a function "
                      "returning one)"),
    ("{m}:App", 2, "{m}:App is a type, not an mqkit.service.App"),
    ("{m}:make_wrong", 2, "{m}:make_wrong() returned a int, not an mqkit.service.App"),
])
def test_a_bad_app_spec_is_one_line(module: str, spec: str, status: int, expected: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", spec.format(m=module)]) == status
    err = one_line_error(capsys.readouterr().err)
    assert expected.format(m=module) in err
    assert err.endswith("(see mqkit run --help)")


def test_a_module_failing_at_import_names_the_file_and_line(
        module: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / f"{module}.py"
    path.write_text("import json\n\nx = 1 / 0\n", encoding="utf-8")
    assert main(["run", f"{module}:app"]) == 1
    err = one_line_error(capsys.readouterr().err)
    assert err == (f"error: ConfigurationError: importing {module!r} failed: "
                   f"ZeroDivisionError: division by zero ({path}:3)")


def test_a_missing_import_inside_the_module_is_not_a_missing_module(
        module: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / f"{module}.py").write_text("import not_installed_zz\n", encoding="utf-8")
    assert main(["run", f"{module}:app"]) == 1
    err = one_line_error(capsys.readouterr().err)
    assert ("failed: ModuleNotFoundError: No module named 'not_installed_zz'" in err)


def test_an_app_without_handlers(module: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / f"{module}.py").write_text(
        "from mqkit.service import App\napp = App()\n", encoding="utf-8")
    assert main(["run", f"{module}:app"]) == 1
    assert "has no handlers" in one_line_error(capsys.readouterr().err)


@pytest.mark.parametrize(("args", "expected"), [
    (["--workers", "0"], "--workers must be 1 or more, not 0"),
    (["--graceful-timeout", "-1"], "--graceful-timeout must be a finite number"),
    (["--graceful-timeout", "inf"], "--graceful-timeout must be a finite number"),
    (["--health-port", "70000"], "--health-port must be 0-65535"),
    (["--max-restarts", "-1"], "--max-restarts must be 0 or more"),
    (["memory://a", "--url", "memory://b"], "two URLs given"),
])
def test_bad_options(module: str, args: list[str], expected: str,
                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", *args, f"{module}:app"]) == 2
    assert expected in one_line_error(capsys.readouterr().err)


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--url", "--workers", "--graceful-timeout", "--health-port",
                   "--max-restarts", "MODULE:ATTR"):
        assert option in out
    assert "--worker-of" not in out and "--status-fd" not in out


# -- one process ---------------------------------------------------------------------------

def test_sigterm_drains_the_handler_in_flight_and_exits_0(
        running: Callable[..., Run]) -> None:
    run = running("svc:app", N="3", SLEEP="1")
    wait_for(lambda: lines(run.out, "begin"), what="a handler started")
    sent = run.signal(signal.SIGTERM)
    assert run.wait() == 0, run.err
    took = time.monotonic() - sent
    assert [b[0] for b in lines(run.out, "begin")] == ["0"]  # nothing new after the signal
    assert [e[0] for e in lines(run.out, "end")] == ["0"]    # the one in flight finished
    assert len(lines(run.out, "shutdown")) == 1
    assert 0.3 < took < 3.0, took
    assert "SIGTERM: stopping (graceful timeout 30 s" in run.err
    assert "Traceback" not in run.err


def test_sigint_too_and_the_factory(running: Callable[..., Run]) -> None:
    run = running("svc:make", N="1", SLEEP="0.3")
    wait_for(lambda: lines(run.out, "begin"), what="a handler started")
    run.signal(signal.SIGINT)
    assert run.wait() == 0, run.err
    assert [e[0] for e in lines(run.out, "end")] == ["0"]


def test_a_drain_past_the_graceful_timeout_is_cut_off_and_exits_1(
        running: Callable[..., Run]) -> None:
    run = running("svc:app", "--graceful-timeout", "0.5", N="1", SLEEP="30")
    wait_for(lambda: lines(run.out, "begin"), what="a handler started")
    sent = run.signal()
    assert run.wait() == 1, run.err
    took = time.monotonic() - sent
    assert 0.4 < took < 3.0, took
    assert lines(run.out, "end") == []
    assert ("error: the drain was cut off after graceful_timeout=0.5 s: svc.job (jobs/workers) "
            "still busy; the broker redelivers their unsettled messages") in run.err
    assert len(lines(run.out, "shutdown")) == 1


def test_a_second_signal_exits_at_once_with_130(running: Callable[..., Run]) -> None:
    run = running("svc:app", N="1", SLEEP="30")
    wait_for(lambda: lines(run.out, "begin"), what="a handler started")
    run.signal()
    time.sleep(0.3)
    sent = run.signal()
    assert run.wait(5) == 130, run.err
    assert time.monotonic() - sent < 1.5
    assert lines(run.out, "end") == []
    assert "second SIGTERM: exiting now" in run.err


def test_a_signal_while_the_app_starts_stops_it_cleanly(running: Callable[..., Run]) -> None:
    """SIGTERM as soon as the process exists (importing, connecting): a clean exit 0."""
    run = running("svc:app", N="0", IMPORT_SLEEP="0.5")
    # The app module is being imported (mqkit run installed its handlers before): a
    # fixed sleep here raced the interpreter's start-up on a loaded machine.
    wait_for(lambda: lines(run.out, "importing"), what="importing")
    run.signal()
    assert run.wait() == 0, run.err
    assert "Traceback" not in run.err


def test_a_failing_app_exits_1_naming_the_error(running: Callable[..., Run]) -> None:
    run = running("svc:app", FAIL="no read access to topic jobs")
    assert run.wait() == 1
    last = run.err.strip().splitlines()[-1]
    assert last == "error: PermissionDenied: no read access to topic jobs"
    assert "Traceback" not in run.err


def test_url_option_replaces_the_apps_url(running: Callable[..., Run]) -> None:
    for args, env, expected in [
        ((), {"APP_URL": "memory://own"}, "memory://own"),
        (("--url", "memory://given"), {"APP_URL": "memory://own"}, "memory://given"),
        (("memory://first",), {"APP_URL": "memory://own"}, "memory://first"),
        ((), {"MQKIT_URL": "memory://from-env"}, "memory://from-env"),
    ]:
        run = running(*args, "svc:app", N="0", **env)
        wait_for(lambda r=run: lines(r.out, "url"), what="started")  # type: ignore[misc]
        run.signal()
        assert run.wait() == 0, run.err
        assert lines(run.out, "url") == [[expected]]
        run.out.unlink()


def test_a_bad_url_is_one_line_without_its_secret(running: Callable[..., Run]) -> None:
    run = running("svc:app", "--url", "nosuchscheme://user:hunter22@host/")
    assert run.wait() == 1
    err = run.err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert "hunter22" not in err


# -- workers -------------------------------------------------------------------------------

def _worker_pids(run: Run) -> list[int]:
    return [int(p[0]) for p in lines(run.out, "start")]


def test_workers_each_run_the_app_and_drain_on_sigterm(running: Callable[..., Run]) -> None:
    run = running("svc:app", "--workers", "2", N="2", SLEEP="0.5")
    wait_for(lambda: len({p for _, p in lines(run.out, "begin")}) == 2, what="2 workers busy")
    pids = _worker_pids(run)
    assert len(set(pids)) == 2 and run.proc.pid not in pids
    sent = run.signal()
    assert run.wait() == 0, run.err
    took = time.monotonic() - sent
    assert took < 3.0, took
    assert sorted(int(p[0]) for p in lines(run.out, "shutdown")) == sorted(pids)
    begun = {(n, p) for n, p in lines(run.out, "begin")}
    assert begun == {(n, p) for n, p in lines(run.out, "end")}  # every one finished
    assert not any(alive(p) for p in pids)
    assert "every worker stopped cleanly" in run.err


def test_a_killed_worker_is_restarted(running: Callable[..., Run]) -> None:
    run = running("svc:app", "--workers", "2", N="1")
    wait_for(lambda: len(_worker_pids(run)) == 2, what="2 workers")
    victim, other = _worker_pids(run)
    killed = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(_worker_pids(run)) == 3, what="a third worker started")
    restarted = time.monotonic() - killed
    assert 0.4 < restarted < 5.0, restarted
    assert (f"(pid {victim}) was killed by SIGKILL; restarting it in 0.5 s "
            "(restart 1 in the last 60 s)") in run.err
    replacement = _worker_pids(run)[2]
    assert alive(other) and alive(replacement)
    run.signal()
    assert run.wait() == 0, run.err
    assert not alive(replacement) and not alive(other)


def test_workers_second_signal_kills_them_at_once(running: Callable[..., Run]) -> None:
    run = running("svc:app", "--workers", "2", N="1", SLEEP="30")
    wait_for(lambda: len(lines(run.out, "begin")) == 2, what="2 workers busy")
    pids = _worker_pids(run)
    run.signal()
    time.sleep(0.3)
    sent = run.signal()
    assert run.wait(5) == 130
    assert time.monotonic() - sent < 1.0
    wait_for(lambda: not any(alive(p) for p in pids), 3, "workers killed")
    assert lines(run.out, "end") == []


def test_a_worker_that_keeps_failing_makes_the_supervisor_give_up(
        running: Callable[..., Run]) -> None:
    run = running("svc:app", "--workers", "1", "--max-restarts", "1",
                  FAIL="no read access to topic jobs")
    assert run.wait() == 1
    assert len(_worker_pids(run)) == 2  # the first and one restart
    assert "error: PermissionDenied: no read access to topic jobs" in run.err
    last = run.err.strip().splitlines()[-1]
    assert last.startswith("error: worker 1 (pid ")
    assert last.endswith("exited with status 1; it was restarted 1 time(s) in the last 60 s "
                         "(--max-restarts 1): giving up")


def test_workers_of_a_killed_supervisor_drain_on_their_own(
        running: Callable[..., Run]) -> None:
    run = running("svc:app", "--workers", "2", N="1", SLEEP="0.5")
    wait_for(lambda: len(lines(run.out, "begin")) == 2, what="2 workers busy")
    pids = _worker_pids(run)
    run.signal(signal.SIGKILL)
    run.wait()
    wait_for(lambda: not any(alive(p) for p in pids), 5, "workers gone")
    assert sorted(int(p[0]) for p in lines(run.out, "shutdown")) == sorted(pids)
