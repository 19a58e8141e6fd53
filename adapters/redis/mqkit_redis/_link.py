"""What both faces' links share: client arguments, packing, recovery from a restart.

Every connection of a driver comes from one redis-py ``ConnectionPool`` (RESP2); redis-py
opens a new connection when a pooled one turns out dead, and mqkit's driver never
retries a command itself (``Retry(NoBackoff(), 0)``: the portable layer retries sends).
``Link.run`` (``_aio``, and ``_driver`` generated from it) drives a sans-I/O flow
(``_flows``) on one pooled connection: each step's commands are packed into one buffer
(:func:`pack`, hiredis' packer when installed), written once, and their replies read raw.

Each new connection asks the server its ``run_id`` (``INFO server``). A different
``run_id`` than before means the server restarted; with ``redeclare`` (default) the
first new connection then re-creates, before any other command, the streams and groups
this client created or used (:class:`Known`). A server without persistence comes back
empty: this lets producers and consumers go on by themselves (what was lost stays lost;
see ``persistence``). With persistence every group still exists and nothing changes.
In cluster mode each node's ``run_id`` is kept apart, and a restarted node gets the keys
of the slots it serves (``Known.connected``'s ``serves``).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import redis.exceptions as re_

from mqkit.driver import ConfigurationError, ConnectParams, Declared, ssl_context

from ._flows import Command, parse_info, redeclare_commands
from ._options import RedisOptions

__all__ = ["SENTINEL_PORT", "Known", "SentinelArgs", "client_kwargs", "pack", "redeclared",
           "sentinel_args", "within"]

SENTINEL_PORT = 26379
"""A Sentinel's default port (a host of a ``redis+sentinel`` URL without one)."""

T = TypeVar("T")
log = logging.getLogger("mqkit.redis")
_UNKNOWN = "?"  # a run_id no server has: the next connection counts as a restart


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
    use_tls = options.tls_enabled(default=url.scheme.startswith("rediss"))
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


@dataclass(frozen=True)
class SentinelArgs:
    """How to find the primary through Sentinel: redis-py's ``Sentinel(hosts,
    sentinel_kwargs=kwargs).master_for(service, **client_kwargs minus host/port)``."""

    hosts: list[tuple[str, int]]
    service: str
    kwargs: dict[str, Any]

    def __repr__(self) -> str:  # the Sentinels' password stays out of reprs
        return f"SentinelArgs(hosts={self.hosts!r}, service={self.service!r})"


def is_sentinel(scheme: str) -> bool:
    return scheme.endswith("+sentinel")


def sentinel_args(params: ConnectParams, options: RedisOptions) -> SentinelArgs | None:
    """The Sentinel set-up of a ``redis+sentinel``/``rediss+sentinel`` URL, None for a
    ``redis``/``rediss`` URL.

    The URL's hosts are the Sentinels (port 26379 by default), ``service`` (required)
    the monitored primary's name; the URL's credentials, database and TLS are the data
    nodes' (the primary's), ``sentinel_username``/``sentinel_password`` the Sentinels'.
    Raises ConfigurationError naming ``service`` when it is missing, or given on a URL
    that is not a Sentinel one.
    """
    url = params.url
    if not is_sentinel(url.scheme):
        if options.service is not None or options.sentinel_password is not None \
                or options.sentinel_username is not None:
            raise ConfigurationError(
                f"redis: service, sentinel_username and sentinel_password are options of "
                f"redis+sentinel:// URLs, not of {url.scheme}://")
        return None
    if not options.service:
        raise ConfigurationError(
            f"redis: a {url.scheme}:// URL needs the option service (the name Sentinel "
            "monitors the primary by): ...?service=NAME")
    if not url.hosts:
        raise ConfigurationError(f"redis: a {url.scheme}:// URL needs at least one "
                                 "Sentinel host")
    kwargs: dict[str, Any] = {
        "socket_connect_timeout": params.connect_timeout,
        "socket_timeout": params.connect_timeout,
        "socket_keepalive": True,
        "protocol": 2,
    }
    if options.sentinel_username is not None:
        kwargs["username"] = options.sentinel_username
    if options.sentinel_password is not None:
        kwargs["password"] = options.sentinel_password.reveal()
    hosts = [(host, port or SENTINEL_PORT) for host, port in url.hosts]
    return SentinelArgs(hosts=hosts, service=options.service, kwargs=kwargs)


def pack(conn: Any, commands: list[Command]) -> bytes:
    """The RESP bytes of ``commands``, for one write."""
    if _hiredis_pack is not None:
        return b"".join([_hiredis_pack(command) for command in commands])
    return b"".join(conn.pack_commands(commands))


class Known:
    """The streams and groups a client uses (a :class:`mqkit.driver.Declared` of stream
    keys) and the server's last ``run_id`` (in cluster mode: each node's)."""

    def __init__(self, redeclare: bool) -> None:
        self._lock = threading.Lock()
        self._run_ids: dict[str, str | None] = {}
        self._redeclare = redeclare
        self.declared = Declared()

    def remember(self, key: str, group: str | None = None) -> None:
        self.declared.remember(key, group)

    def forget(self, key: str, group: str | None = None) -> None:
        self.declared.forget(key, group)

    def reset(self, node: str = "") -> None:
        """Re-creating on ``node`` failed for now: the next connection to it does it."""
        with self._lock:
            self._run_ids[node] = _UNKNOWN

    def connected(self, info: Any, node: str = "",
                  serves: Callable[[str], bool] | None = None) -> list[Command]:
        """Note the ``INFO server`` reply of a new connection (to cluster node ``node``,
        ``host:port``); the commands to run on it first (re-creations after a restart,
        of the keys it ``serves`` in cluster mode), usually none."""
        run_id = parse_info(info).get("run_id")
        with self._lock:
            previous = self._run_ids.get(node)
            self._run_ids[node] = run_id
            if previous is None or previous == run_id or not self._redeclare:
                return []
        declared = self.declared.snapshot()
        if serves is not None:
            declared = {key: groups for key, groups in declared.items() if serves(key)}
        log.warning("mqkit: redis server restarted (run_id changed); re-creating %d "
                    "stream(s) and %d group(s) this client uses", len(declared),
                    sum(len(groups) for groups in declared.values()))
        return redeclare_commands(declared)


def redeclared(command: Command, exc: re_.ResponseError) -> None:
    """An error re-creating: BUSYGROUP means it survived, MOVED that the key is another
    cluster node's now; anything else is logged."""
    if isinstance(exc, re_.AskError):
        log.debug("mqkit: re-creating %s: %s", command[2], exc)
    elif not str(exc).startswith("BUSYGROUP"):
        log.warning("mqkit: re-creating %s failed: %s", command[2], exc)


if sys.version_info >= (3, 11):
    async def _within(timeout: float, step: Awaitable[T]) -> T:
        async with asyncio.timeout(timeout):  # in this task: no task per step
            return await step
else:  # pragma: no cover - Python 3.10
    async def _within(timeout: float, step: Awaitable[T]) -> T:
        return await asyncio.wait_for(step, timeout)


async def within(timeout: float, step: Awaitable[T]) -> T:
    """Await ``step`` within ``timeout`` seconds (the asyncio link's one deadline per
    step); past it, redis-py's ``TimeoutError``, as a blocking socket timeout raises."""
    try:
        return await _within(timeout, step)
    except asyncio.TimeoutError as exc:  # not builtins.TimeoutError on 3.10
        raise re_.TimeoutError("no reply within the socket timeout") from exc
