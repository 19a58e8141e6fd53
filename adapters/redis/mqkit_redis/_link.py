"""The connection pool, and recovery from a server restart.

Every connection of a driver comes from one ``redis.ConnectionPool``; redis-py opens a
new connection when a pooled one turns out dead, and mqkit's driver never retries a
command itself (``Retry(NoBackoff(), 0)``: the portable layer retries sends).

Each new connection asks the server its ``run_id`` (``INFO server``). A different
``run_id`` than before means the server restarted; with ``redeclare`` (default) the
first new connection then re-creates, before any other command, the streams and groups
this client created or used. A server without persistence comes back empty: this lets
producers and consumers go on by themselves (what was lost stays lost; see
``persistence``). With persistence every group still exists and nothing changes.
"""

from __future__ import annotations

import logging
import ssl
import threading
from typing import Any

import redis
import redis.exceptions as re_
from redis.backoff import NoBackoff
from redis.retry import Retry

from mqkit.driver import ConnectParams

from ._delay import MOVE_DUE
from ._options import RedisOptions

__all__ = ["Link", "client_kwargs"]

log = logging.getLogger("mqkit.redis")


def client_kwargs(params: ConnectParams, options: RedisOptions) -> dict[str, Any]:
    """Keyword arguments of ``redis.Redis`` for this URL and these options."""
    url = params.url
    use_tls = options.tls if options.tls is not None else url.scheme == "rediss"
    path = url.path.strip("/")
    try:
        db = int(path) if path else 0
    except ValueError:
        from mqkit import ConfigurationError
        raise ConfigurationError(f"redis: the URL path must be a database number, "
                                 f"got {path!r}") from None
    password = options.password or url.password
    kwargs: dict[str, Any] = {
        "host": url.host or "localhost",
        "port": url.port or 6379,
        "db": db,
        "username": options.username or url.username,
        "password": password.reveal() if password is not None else None,
        "socket_connect_timeout": params.connect_timeout,
        # A reply may take a whole XREADGROUP block slice; past that plus the connect
        # timeout the server is considered gone.
        "socket_timeout": params.connect_timeout + options.block_slice,
        "socket_keepalive": True,
        "retry": Retry(NoBackoff(), 0),
        "client_name": options.client_name,
    }
    if use_tls:
        kwargs.update(
            ssl=True,
            ssl_ca_certs=options.ca_file,
            ssl_certfile=options.cert_file,
            ssl_keyfile=options.key_file,
            ssl_password=options.key_password.reveal() if options.key_password else None,
            ssl_cert_reqs=ssl.CERT_REQUIRED if options.verify else ssl.CERT_NONE,
            ssl_check_hostname=options.verify and options.check_hostname,
        )
    return kwargs


class Link:
    """One pool for a driver, with the streams and groups to re-create after a restart."""

    def __init__(self, params: ConnectParams, options: RedisOptions) -> None:
        self._lock = threading.Lock()
        self._run_id: bytes | None = None
        self._redeclare = options.redeclare
        self._topics: set[str] = set()             # stream keys
        self._groups: set[tuple[str, str]] = set()  # (stream key, group)
        hook: Any = self._on_connect  # redis-py types it as taking no argument; it gets one
        self.client = redis.Redis(redis_connect_func=hook, **client_kwargs(params, options))
        self.options = options
        self.move_due = self.client.register_script(MOVE_DUE)

    def remember(self, key: str, group: str | None = None) -> None:
        with self._lock:
            self._topics.add(key)
            if group is not None:
                self._groups.add((key, group))

    def forget(self, key: str, group: str | None = None) -> None:
        with self._lock:
            if group is None:
                self._topics.discard(key)
                self._groups = {(k, g) for k, g in self._groups if k != key}
            else:
                self._groups.discard((key, group))

    def _on_connect(self, conn: Any) -> None:
        conn.on_connect()
        conn.send_command("INFO", "server")
        try:
            info = conn.read_response()
        except re_.ResponseError as exc:  # an ACL user without INFO: no restart check
            log.debug("mqkit: INFO server refused (%s); restarts go unnoticed", exc)
            return
        run_id = _field(info, b"run_id")
        with self._lock:
            previous, self._run_id = self._run_id, run_id
            if previous is None or previous == run_id or not self._redeclare:
                return
            topics, groups = set(self._topics), set(self._groups)
            log.warning("mqkit: redis server restarted (run_id changed); re-creating "
                        "%d stream(s) and %d group(s) this client uses",
                        len(topics), len(groups))
            for key, group in sorted(groups):
                _command(conn, "XGROUP", "CREATE", key, group, "0", "MKSTREAM")
            for key in sorted(topics - {k for k, _ in groups}):
                _command(conn, "XGROUP", "CREATE", key, "mqkit-init", "$", "MKSTREAM")
                _command(conn, "XGROUP", "DESTROY", key, "mqkit-init")

    def close(self) -> None:
        self.client.close()
        self.client.connection_pool.disconnect()


def _command(conn: Any, *args: str) -> None:
    conn.send_command(*args)
    try:
        conn.read_response()
    except re_.ResponseError as exc:  # BUSYGROUP: it survived; anything else: log it
        if not str(exc).startswith("BUSYGROUP"):
            log.warning("mqkit: re-creating %s failed: %s", args[3], exc)


def _field(info: object, name: bytes) -> bytes | None:
    if isinstance(info, str):
        info = info.encode()
    if not isinstance(info, bytes):
        return None
    for line in info.splitlines():
        if line.startswith(name + b":"):
            return line.partition(b":")[2].strip()
    return None
