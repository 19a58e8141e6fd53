"""The health endpoint of ``mqkit run --health-port P``: ``/healthz`` and ``/readyz``.

A small HTTP/1.1 server from the standard library (:mod:`http.server`), serving a route
table on a daemon thread of its own::

    server = HealthServer(ready=lambda: app.ready, port=8080)
    server.start()                     # returns once bound; server.port is the real port
    ...
    server.close()

- ``GET /healthz`` is 200 while the process is alive (the server answers at all);
- ``GET /readyz`` is 200 while ``ready()`` is true, else 503;
- any other path is 404, any method but GET and HEAD 405. Bodies are one short line of
  ``text/plain``; every response closes its connection.

:meth:`HealthServer.route` adds a path to the same server: ``mqkit run --metrics`` adds
``/metrics`` (the Prometheus text format, its own content type).

Why a thread and :mod:`http.server` rather than ``asyncio.start_server`` on the app's
loop: the same server serves both a single ``mqkit run`` process (whose event loop is the
App's) and the ``--workers`` supervisor, which runs no event loop at all; and a probe
must be answered even while the app's loop is busy with a long coroutine (readiness is
the App's own flag, a plain attribute read, so the thread never touches the loop). The
cost is one thread and importing :mod:`http.server` (a few ms), only when a health port
is asked for: ``mqkit --help`` and ``import mqkit`` never load this module.
"""

from __future__ import annotations

import http.server
import logging
import threading
from collections.abc import Callable

from .._errors import ConfigurationError

__all__ = ["HealthServer", "Response", "Route"]

log = logging.getLogger("mqkit.run")

Response = tuple[int, str]
"""A route's answer: the HTTP status and a one-line ``text/plain`` body."""
Route = Callable[[], Response]
"""A route: called on the server's thread for each request; must be quick and thread-safe."""
TEXT = "text/plain; charset=utf-8"


class HealthServer:
    """``/healthz`` and ``/readyz`` (and any added route) on ``host:port``.

    ``ready`` is called on the server's thread for every ``/readyz``; it must be cheap
    and thread-safe (reading a flag). ``port=0`` picks a free port: :attr:`port` is the
    bound one after :meth:`start`. A port already in use raises :class:`OSError` from
    :meth:`start`.
    """

    def __init__(self, ready: Callable[[], bool], *, port: int, host: str = "0.0.0.0") -> None:
        self.host = host
        self.port = port
        self._ready = ready
        self._routes: dict[str, tuple[Route, str]] = {"/healthz": (_alive, TEXT),
                                                      "/readyz": (self._readyz, TEXT)}
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def route(self, path: str, func: Route, *, content_type: str = TEXT) -> None:
        """Serve ``func()`` at ``path`` (e.g. ``/metrics``) as ``content_type``; replaces
        a route of that path. A body that does not end with a newline gets one."""
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigurationError(f"path: a route path starts with '/', got {path!r}")
        if not callable(func):
            raise ConfigurationError(f"func must be callable, got {type(func).__name__}")
        self._routes[path] = (func, content_type)

    @property
    def routes(self) -> list[str]:
        """The paths served, in the order they were added."""
        return list(self._routes)

    def _readyz(self) -> Response:
        try:
            ready = bool(self._ready())
        except Exception as exc:  # a broken probe is "not ready", never a dead server
            log.warning("mqkit: readiness check failed: %s: %s", type(exc).__name__, exc)
            ready = False
        return (200, "ready") if ready else (503, "not ready")

    def start(self) -> None:
        """Bind and serve on a daemon thread; return once bound (``OSError`` if not)."""
        routes = self._routes

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "mqkit-health"
            sys_version = ""

            def do_GET(self) -> None:
                self._answer(body=True)

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def _answer(self, *, body: bool) -> None:
                found = routes.get(self.path.split("?", 1)[0])
                ctype = TEXT
                if found is None:
                    status, text = 404, "not found; paths: " + " ".join(routes)
                else:
                    route, ctype = found
                    try:
                        status, text = route()
                    except Exception as exc:
                        log.warning("mqkit: health route %s failed: %s: %s", self.path,
                                    type(exc).__name__, exc)
                        status, text, ctype = 500, "error", TEXT
                self._send(status, text, body=body, ctype=ctype)

            def _send(self, status: int, text: str, *, body: bool, ctype: str = TEXT) -> None:
                data = (text if text.endswith("\n") else text + "\n").encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                if body:
                    self.wfile.write(data)
                self.close_connection = True

            def _refuse(self) -> None:
                self._send(405, "method not allowed", body=True)

            do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

            def log_message(self, format: str, *args: object) -> None:
                log.debug("health: " + format, *args)

        server = http.server.ThreadingHTTPServer((self.host, self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="mqkit-health", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port (does nothing if not started)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()


def _alive() -> Response:
    return 200, "alive"
