"""Connection pools, running flows on them, and recovery from a server restart.

Every connection of a driver comes from one redis-py ``ConnectionPool`` (RESP2); redis-py
opens a new connection when a pooled one turns out dead, and mqkit's driver never
retries a command itself (``Retry(NoBackoff(), 0)``: the portable layer retries sends).
:func:`run` drives a sans-I/O flow (``_flows``) on one pooled connection: each step's
commands are packed into one buffer (hiredis' packer when installed), written once,
and their replies read raw.

Each new connection asks the server its ``run_id`` (``INFO server``). A different
``run_id`` than before means the server restarted; with ``redeclare`` (default) the
first new connection then re-creates, before any other command, the streams and groups
this client created or used (:class:`Known`). A server without persistence comes back
empty: this lets producers and consumers go on by themselves (what was lost stays lost;
see ``persistence``). With persistence every group still exists and nothing changes.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

import redis
import redis.exceptions as re_
from redis.backoff import NoBackoff
from redis.retry import Retry

from mqkit.driver import ConfigurationError, ConnectParams, ssl_context

from ._delay import MOVE_DUE
from ._flows import Command, Flow, parse_info, redeclare_commands
from ._options import RedisOptions

__all__ = ["Known", "Link", "client_kwargs", "pack"]

T = TypeVar("T")
log = logging.getLogger("mqkit.redis")

def _load_hiredis_pack() -> Callable[..., bytes] | None:
    """hiredis's C command packer, when the optional ``hiredis`` package is installed."""
    try:
        import hiredis
    except ImportError:  # pragma: no cover - hiredis is optional
        return None
    return cast("Callable[..., bytes]", hiredis.pack_command)


_hiredis_pack = _load_hiredis_pack()


def client_kwargs(params: ConnectParams, options: RedisOptions) -> dict[str, Any]:
    """Keyword arguments of ``redis.Redis`` (and ``redis.asyncio.Redis``, with its own
    ``retry``) for this URL and these options."""
    url = params.url
    use_tls = options.tls_enabled(default=url.scheme == "rediss")
    path = url.path.strip("/")
    try:
        db = int(path) if path else 0
    except ValueError:
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
        "client_name": options.client_name,
        # RESP2: the flows read raw replies, in one shape whatever the server version.
        "protocol": 2,
    }
    if use_tls:
        # redis-py takes ssl_* parameters and builds a context of its own per
        # connection (no parameter takes an SSLContext); building one here checks the
        # files and key_password once, up front, naming a bad parameter.
        ssl_context(options, check_hostname=options.check_hostname)
        kwargs.update(
            ssl=True,
            ssl_ca_certs=options.ca_file,
            ssl_certfile=options.cert_file,
            ssl_keyfile=options.key_file,
            ssl_password=options.key_password.reveal() if options.key_password else None,
            ssl_cert_reqs=ssl.CERT_REQUIRED if options.verify else ssl.CERT_NONE,
            ssl_check_hostname=options.verify and options.check_hostname,
            ssl_min_version=ssl.TLSVersion.TLSv1_2,  # ssl_context's floor
        )
    return kwargs


def pack(conn: Any, commands: list[Command]) -> bytes:
    """The RESP bytes of ``commands``, for one write."""
    if _hiredis_pack is not None:
        return b"".join([_hiredis_pack(command) for command in commands])
    return b"".join(conn.pack_commands(commands))


class Known:
    """The streams and groups a client uses, and the server's last ``run_id``."""

    def __init__(self, redeclare: bool) -> None:
        self._lock = threading.Lock()
        self._run_id: str | None = None
        self._redeclare = redeclare
        self._topics: set[str] = set()             # stream keys
        self._groups: set[tuple[str, str]] = set()  # (stream key, group)

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

    def connected(self, info: Any) -> list[Command]:
        """Note the ``INFO server`` reply of a new connection; the commands to run on
        it first (re-creations after a restart), usually none."""
        run_id = parse_info(info).get("run_id")
        with self._lock:
            previous, self._run_id = self._run_id, run_id
            if previous is None or previous == run_id or not self._redeclare:
                return []
            topics, groups = set(self._topics), set(self._groups)
        log.warning("mqkit: redis server restarted (run_id changed); re-creating %d "
                    "stream(s) and %d group(s) this client uses", len(topics), len(groups))
        return redeclare_commands(topics, groups)


def redeclared(command: Command, exc: re_.ResponseError) -> None:
    """An error re-creating: BUSYGROUP means it survived; anything else is logged."""
    if not str(exc).startswith("BUSYGROUP"):
        log.warning("mqkit: re-creating %s failed: %s", command[2], exc)


class Link:
    """One blocking pool for a driver, its known names, and the flow runner."""

    def __init__(self, params: ConnectParams, options: RedisOptions) -> None:
        self.options = options
        self.known = Known(options.redeclare)
        # The lock keeps two new connections from re-creating at once.
        self._connect_lock = threading.Lock()
        hook: Any = self._on_connect  # redis-py types it as taking no argument; it gets one
        self.client = redis.Redis(redis_connect_func=hook, retry=Retry(NoBackoff(), 0),
                                  **client_kwargs(params, options))
        self.script_sha = self.client.register_script(MOVE_DUE).sha

    def _on_connect(self, conn: Any) -> None:
        conn.on_connect()
        conn.send_command("INFO", "server")
        try:
            info = conn.read_response()
        except re_.ResponseError as exc:  # an ACL user without INFO: no restart check
            log.debug("mqkit: INFO server refused (%s); restarts go unnoticed", exc)
            return
        with self._connect_lock:
            for command in self.known.connected(info):
                conn.send_command(*command)
                try:
                    conn.read_response()
                except re_.ResponseError as exc:
                    redeclared(command, exc)

    def run(self, flow: Flow[T]) -> T:
        """Drive ``flow`` on one pooled connection; its result."""
        pool = self.client.connection_pool
        conn: Any = pool.get_connection()
        try:
            commands = next(flow)
            while True:
                conn.send_packed_command([pack(conn, commands)])
                replies: list[Any] = []
                for _ in commands:
                    try:
                        replies.append(conn.read_response(disable_decoding=True))
                    except re_.ResponseError as exc:
                        replies.append(exc)
                commands = flow.send(replies)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            pool.release(conn)

    def close(self) -> None:
        self.client.close()
        self.client.connection_pool.disconnect()
