"""``mqkit run MODULE:ATTR``: import an App and run it until SIGTERM/SIGINT.

One process (the default): the App runs on this process's event loop. The first SIGTERM
or SIGINT calls ``app.stop()`` (stop receiving, handlers in flight finish within the
graceful timeout, everything settles and closes, shutdown hooks run); the second calls
``app.stop(force=True)`` and the process exits at once with status 130 (the broker
redelivers what was unsettled), even if a plain-function handler is still on its thread.

Exit status: 0 after a clean drain; 1 when the app failed (its error on one line, e.g.
``error: PermissionDenied: ...``) or the drain ran past the graceful timeout (a handler
loop had to be cut off); 2 for a bad ``MODULE:ATTR`` or option; 130 after a second
signal.

``--workers N`` runs N such processes under :mod:`mqkit.service._supervisor`; each of
them is this module run with ``--worker-of PARENT_PID``.

``--metrics`` (with ``--health-port``) serves ``/metrics`` in the Prometheus text format:
the App gets an :class:`~mqkit.otel.AsyncMetrics` middleware (outermost of the App's)
and its client :func:`~mqkit.otel.instrument` (metrics only), both recording into a
:class:`~mqkit.otel.MetricsRegistry` of this process. A worker (``--metrics-file``)
writes that registry's snapshot to the file for the supervisor instead of serving it
(see :mod:`mqkit.otel._workers`). Without the ``otel`` extra, ``--metrics`` exits 1
naming it.

The URL: ``--url`` (or a URL first, as every command takes it) replaces the App's own
URL: the client is built here with the App's ``client_options`` and given to
``app.run(client=...)``, then closed here. Without one the App picks its URL as always
(its ``url``, else ``$MQKIT_URL``, else ``memory://``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from .._errors import ConfigurationError, MQError
from .._process import hard_exit
from ._commands import UsageError, _fail

if TYPE_CHECKING:
    from ..service import App
    from ..service._health import HealthServer

__all__ = ["load_app", "run_command"]

log = logging.getLogger("mqkit.run")

FORCED_EXIT = 130
# Environment variable carrying --url to workers, so it is not repeated in their argv
# (visible to every user of the machine in ``ps``).
WORKER_URL_ENV = "_MQKIT_RUN_URL"


# -- loading the App -------------------------------------------------------------------

def load_app(spec: str) -> App:
    """The :class:`~mqkit.service.App` named by ``spec`` (``module:attr``).

    ``attr`` may be dotted (``module:obj.app``) and may name a callable taking no
    arguments that returns the App (a factory). The current directory is put first on
    ``sys.path`` (as ``python -m`` does), so ``mqkit run myservice:app`` finds
    ``./myservice.py``.

    Raises :class:`UsageError` (one line, exit status 2) for a spec that is not
    ``module:attr``, a module that does not exist, a missing attribute, or something
    that is not an App; :class:`~mqkit.ConfigurationError` (exit status 1) naming the
    file and line when importing the module or calling the factory raised.
    """
    from ..service import App

    module_name, colon, attr = spec.partition(":")
    if not colon or not module_name or not attr or not all(
            part.isidentifier() for part in [*module_name.split("."), *attr.split(".")]):
        raise UsageError(f"APP must be MODULE:ATTR (e.g. myservice:app or "
                         f"myservice:create_app), got {spec!r}")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name
                                     or module_name.startswith(exc.name + ".")):
            raise UsageError(f"no module named {exc.name!r} (APP {spec!r}; looked in "
                             f"{cwd} and sys.path)") from None
        raise ConfigurationError(f"importing {module_name!r} failed: "
                                 f"{_describe(exc)}") from exc
    except Exception as exc:
        raise ConfigurationError(f"importing {module_name!r} failed: "
                                 f"{_describe(exc)}") from exc
    obj: Any = module
    for i, part in enumerate(attr.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            where = ".".join([module_name, *attr.split(".")[:i]])
            raise UsageError(f"{where!r} has no attribute {part!r} (APP {spec!r})") from None
    if isinstance(obj, App):
        return obj
    if not callable(obj) or isinstance(obj, type):
        raise UsageError(f"{spec} is a {type(obj).__name__}, not an mqkit.service.App "
                         "(or a function returning one)")
    try:
        app = obj()
    except MQError:
        raise
    except Exception as exc:
        raise ConfigurationError(f"calling {spec}() failed: {_describe(exc)}") from exc
    if not isinstance(app, App):
        raise UsageError(f"{spec}() returned a {type(app).__name__}, not an "
                         "mqkit.service.App")
    return app


def _describe(exc: BaseException) -> str:
    """``Type: message (file:line)``, the line being the innermost frame raising it."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({exc.filename}:{exc.lineno})"
    return f"{type(exc).__name__}: {exc}{where}"


# -- the command -----------------------------------------------------------------------

def run_command(args: argparse.Namespace) -> int:
    """``mqkit run``: check the options, load the App, run it (or its workers)."""
    if args.url is not None and args.url_option is not None and args.url != args.url_option:
        raise UsageError("two URLs given (one before APP and --url): give one")
    url = args.url_option or args.url or os.environ.get(WORKER_URL_ENV) or None
    workers = args.workers
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be 1 or more, not {workers}")
    if args.graceful_timeout is not None and not (0 <= args.graceful_timeout < float("inf")):
        raise UsageError("--graceful-timeout must be a finite number of seconds, 0 or "
                         f"more, not {args.graceful_timeout}")
    if args.health_port is not None and not 0 <= args.health_port <= 65535:
        raise UsageError(f"--health-port must be 0-65535, not {args.health_port}")
    if args.max_restarts < 0:
        raise UsageError(f"--max-restarts must be 0 or more, not {args.max_restarts}")
    if args.worker_of is not None and workers is not None:
        raise UsageError("--worker-of is for the workers --workers starts")
    if args.metrics and args.health_port is None:
        raise UsageError("--metrics serves /metrics on the health server: give "
                         "--health-port too")
    if args.metrics:
        _otel()  # the extra is missing: say so before loading anything
    _configure_logging(args.log_level, worker=args.worker_of is not None)
    signals = _Signals()
    signals.install()
    app = load_app(args.app)
    if not app.handlers:
        raise ConfigurationError(f"the app {args.app} has no handlers: register one with "
                                 "@app.handler(topic, group=...)")
    if args.graceful_timeout is not None:
        app.graceful_timeout = args.graceful_timeout
    if workers is not None:
        from ..service._supervisor import Supervisor

        supervisor = Supervisor(
            args.app, workers=workers, url=url, graceful_timeout=app.graceful_timeout,
            max_restarts=args.max_restarts, health_port=args.health_port,
            health_host=args.health_host, log_level=args.log_level, metrics=args.metrics)
        if signals.count:  # came while the App loaded: start no worker
            return 0 if signals.count == 1 else FORCED_EXIT
        return supervisor.run()
    signals.attach(app)
    return run_in_process(app, signals, url=url, health_port=args.health_port,
                          health_host=args.health_host, worker_of=args.worker_of,
                          status_fd=args.status_fd, secrets=[url or "", app.url or ""],
                          metrics=args.metrics, metrics_file=args.metrics_file)


def _configure_logging(level: str, *, worker: bool) -> None:
    root = logging.getLogger()
    if not root.handlers:
        tag = "worker" if worker else "run"
        logging.basicConfig(
            level=level.upper(), stream=sys.stderr,
            format=f"%(asctime)s %(levelname)s mqkit-{tag}[%(process)d] %(name)s: "
                   "%(message)s")


# -- one process -----------------------------------------------------------------------

class _Signals:
    """Counts SIGTERM/SIGINT: the first stops the app, the second forces and exits.

    Installed before the App is imported, so a signal while it loads or connects is not
    the default (dying on SIGTERM): the App is stopped as soon as it is known.
    """

    def __init__(self) -> None:
        self.app: App | None = None
        self.count = 0

    def attach(self, app: App) -> None:
        self.app = app
        if self.count:
            app.stop(force=self.count > 1)

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.handle)

    def handle(self, signum: int, frame: FrameType | None) -> None:
        del frame
        self.count += 1
        name = signal.Signals(signum).name
        if self.app is None:  # still loading: attach() stops it
            if self.count > 1:
                hard_exit(FORCED_EXIT)
            return
        if self.count == 1:
            log.info("%s: stopping (graceful timeout %g s; again to exit at "
                     "once)", name, self.app.graceful_timeout)
            self.app.stop()
            return
        log.warning("second %s: exiting now; the broker redelivers the "
                    "messages still unsettled", name)
        self.app.stop(force=True)
        if self.count > 2:
            hard_exit(FORCED_EXIT)
        # Closing the consumers takes a moment; a handler on a thread cannot be stopped.
        timer = threading.Timer(1.0, hard_exit, (FORCED_EXIT,))
        timer.daemon = True
        timer.start()


def _otel() -> Any:
    """:mod:`mqkit.otel`, or the one-line error naming the extra (exit status 1)."""
    try:
        import mqkit.otel
    except MQError as exc:
        raise ConfigurationError(f"--metrics: {exc}") from None
    return mqkit.otel


def run_in_process(app: App, signals: _Signals, *, url: str | None, health_port: int | None,
                   health_host: str, worker_of: int | None, status_fd: int | None,
                   secrets: list[str], metrics: bool = False,
                   metrics_file: str | None = None) -> int:
    """Run ``app`` here until stopped; the exit status (see the module docstring).

    ``metrics``: serve ``/metrics`` on the health server; ``metrics_file`` (a worker):
    write the metrics' snapshot there for the supervisor instead."""
    health: HealthServer | None = None
    registry = None
    watchers: list[Callable[[], None]] = []
    if metrics or metrics_file is not None:
        otel = _otel()
        registry = otel.MetricsRegistry()
        app.middleware = (otel.AsyncMetrics(meter_provider=registry), *app.middleware)
        if metrics_file is not None:
            from ..otel._workers import SnapshotWriter

            writer = SnapshotWriter(registry, metrics_file)
            writer.start()
            watchers.append(writer.stop)
    if health_port is not None:
        from ..service._health import HealthServer

        health = HealthServer(lambda: app.ready, port=health_port, host=health_host)
        if metrics and registry is not None:
            health.route("/metrics", _exposition(registry), content_type=otel.CONTENT_TYPE)
        health.start()
        log.info("health on http://%s:%d (%s)", health_host, health.port,
                 ", ".join(health.routes))
    if worker_of is not None:
        watchers.append(_watch_parent(app, worker_of))
    if status_fd is not None:
        watchers.append(_report_ready(app, status_fd))
    # The App starts each handler's loop with fresh stats, whose ``run`` is set once that
    # loop returned: a loop whose stats are new but have no ``run`` was cut off (the
    # graceful timeout or a forced stop). A stop before the loops started leaves the
    # old stats. (The App reports no drain outcome of its own; see the docs' gaps.)
    before = [spec.stats for spec in app.handlers]
    try:
        asyncio.run(_serve(app, url, registry))
    except MQError as exc:
        if signals.count > 1:
            hard_exit(FORCED_EXIT)
        _fail(f"error: {type(exc).__name__}: {exc}", secrets)
        return 1
    finally:
        for stop in watchers:
            stop()
        if health is not None:
            health.close()
    if signals.count > 1:
        hard_exit(FORCED_EXIT)
    cut = [s for s, old in zip(app.handlers, before, strict=True)
           if s.stats is not old and s.stats.run is None]
    if cut:
        names = ", ".join(f"{s.name} ({s.topic}/{s.group})" for s in cut)
        _fail(f"error: the drain was cut off after graceful_timeout="
              f"{app.graceful_timeout:g} s: {names} still busy; the broker redelivers "
              "their unsettled messages", secrets)
        return 1
    log.info("stopped cleanly")
    return 0


def _exposition(registry: Any) -> Callable[[], tuple[int, str]]:
    from ..otel import render_prometheus

    return lambda: (200, render_prometheus([({}, registry.snapshot())]))


async def _serve(app: App, url: str | None, registry: Any = None) -> None:
    """Run ``app``; on ``url`` when given (a client built and closed here). With
    ``registry`` the client's sends are counted into it (the App's own client or
    one built here as the App would, from its ``url`` and ``client_options``)."""
    from ..aio import connect

    given = app._given_client
    if url is None and (registry is None or given is not None):
        if registry is not None and given is not None:
            _instrument(given, registry)
        await app.run()
        return
    client = connect(url if url is not None else app.url, **app.client_options)
    if registry is not None:
        _instrument(client, registry)
    try:
        await app.run(client=client)
    finally:
        await client.close()


def _instrument(client: Any, registry: Any) -> None:
    from ..otel import instrument

    instrument(client, meter_provider=registry, tracing=False)


def _watch_parent(app: App, parent: int) -> Callable[[], None]:
    """Stop ``app`` gracefully when the supervisor ``parent`` is gone (it was killed)."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            if os.getppid() != parent:
                log.warning("the supervisor (pid %d) is gone; stopping", parent)
                app.stop()
                return

    threading.Thread(target=watch, name="mqkit-parent-watch", daemon=True).start()
    return done.set


def _report_ready(app: App, fd: int) -> Callable[[], None]:
    """Write ``1``/``0`` to ``fd`` each time ``app.ready`` changes (for the supervisor)."""
    done = threading.Event()

    def report() -> None:
        last: bool | None = None
        try:
            while not done.wait(0.1):
                ready = app.ready
                if ready != last:
                    os.write(fd, b"1" if ready else b"0")
                    last = ready
            os.write(fd, b"0")
        except OSError:  # the supervisor went away
            pass

    thread = threading.Thread(target=report, name="mqkit-ready-report", daemon=True)
    thread.start()

    def stop() -> None:
        done.set()
        thread.join(1.0)
        try:
            os.close(fd)
        except OSError:
            pass

    return stop
