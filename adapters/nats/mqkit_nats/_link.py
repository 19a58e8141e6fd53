"""The NATS connection: opening it (TLS, credentials), its state, and its callbacks.

nats-py reconnects by itself in the background (forever, every ``reconnect_wait``
seconds), re-subscribing every subscription. A call made while it reconnects waits for the
reconnection (:meth:`Link.ready`): up to the connect timeout for admin calls, opening a
topic or subscription and sending, up to its own timeout for a receive; then it raises
:class:`mqkit.Unavailable`. Settlements do not wait (the consumer core retries them on its
own schedule and deadline). ``generation`` counts reconnections so that pull subscriptions
know their outstanding pull requests died with the old connection.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

import nats.errors as ne
from nats.aio.client import Client as NATS
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext, api

from mqkit.driver import (
    AdapterNotInstalled,
    ConnectParams,
    ConnectTimeout,
    MQError,
    PermissionDenied,
    Unavailable,
    certificate_refusal,
    ssl_context,
)

from ._errors import map_error, mapped
from ._options import NatsOptions

__all__ = ["Link", "open_link"]

log = logging.getLogger("mqkit.nats")

_DEFAULT_PORT = 4222
_READY_POLL = 0.05


class Startable(Protocol):
    async def start(self) -> None: ...


A = TypeVar("A", bound=Startable)


class Link:
    """One nats-py connection and its JetStream context, with connection state."""

    def __init__(self, nc: NATS, options: NatsOptions, connect_timeout: float = 10.0) -> None:
        self.nc = nc
        self.options = options
        self.connect_timeout = connect_timeout
        """How long a call waits for a reconnection by default (:meth:`ready`)."""
        self.servers = ""
        """The servers' URLs, for error messages (set by :func:`open_link`)."""
        self.api_prefix = api.DEFAULT_PREFIX
        """The JetStream API's subject prefix (nats-py's default; no domain is set)."""
        self.js: JetStreamContext = nc.jetstream(
            prefix=self.api_prefix, timeout=options.api_timeout,
            publish_async_max_pending=options.publish_window)
        self.generation = 0
        self._slow: dict[int, Callable[[BaseException], None]] = {}
        self._pub_acks: Any = None
        self._pub_acks_lock = asyncio.Lock()
        # Set while the first connect runs: nats-py keeps retrying a server that refuses
        # the credentials, so the refusal must end the connect from the error callback.
        self.refused: asyncio.Future[MQError] | None = None

    async def pub_acks(self, factory: Callable[[Link], A]) -> A:
        """The connection's PubAck router (one wildcard subscription), made once."""
        async with self._pub_acks_lock:
            if self._pub_acks is None:
                router = factory(self)
                with mapped("subscribe to PubAcks"):
                    await router.start()
                self._pub_acks = router
        result: A = self._pub_acks
        return result

    def watch_slow(self, sub: Subscription, report: Callable[[BaseException], None]) -> None:
        """Call ``report`` when ``sub`` drops messages (slow consumer)."""
        self._slow[id(sub)] = report

    def unwatch(self, sub: Subscription) -> None:
        self._slow.pop(id(sub), None)

    async def flush(self) -> None:
        """One PING/PONG round trip: the server has everything published before."""
        # nats-py annotates the timeout as int but waits with asyncio (floats work).
        await self.nc.flush(timeout=cast(int, self.options.api_timeout))

    def check(self, what: str) -> None:
        """Raise :class:`mqkit.Unavailable` unless connected, at once (no waiting)."""
        if self.nc.is_closed:
            raise Unavailable(f"nats: {what}: the connection is closed")
        if not self.nc.is_connected:
            raise Unavailable(f"nats: {what}: not connected (reconnecting)")

    async def ready(self, what: str, timeout: float | None = None) -> None:
        """Return once connected; while nats-py reconnects, wait for it.

        Waits at most ``timeout`` seconds (default :attr:`connect_timeout`), then raises
        :class:`mqkit.Unavailable` naming ``what`` and how long it waited; ``timeout <= 0``
        does not wait. A closed connection raises at once. A restarted broker is thus not an
        error for a call made while the client finds it again (a reconnect attempt every
        ``reconnect_wait`` seconds).
        """
        limit = self.connect_timeout if timeout is None else max(0.0, timeout)
        deadline = time.monotonic() + limit
        while not self.nc.is_connected:
            if self.nc.is_closed:
                raise Unavailable(f"nats: {what}: the connection is closed")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Unavailable(
                    f"nats: {what}: not connected (still reconnecting after {limit:g} s)")
            # nats-py's own state is the truth; polling it cannot miss a transition.
            await asyncio.sleep(min(_READY_POLL, remaining))

    # -- nats-py callbacks -----------------------------------------------------------

    async def on_error(self, exc: Exception) -> None:
        refused = self.refused
        if refused is not None and not refused.done():
            # nats-py retries every failure of its first connect until our timeout; a
            # certificate that fails verification will not pass on a later try.
            rejected = certificate_refusal(exc, self.servers)
            if rejected is not None:
                rejected.__cause__ = exc
                refused.set_result(rejected)
                return
            mapped_exc = map_error(exc, "connect")
            if isinstance(mapped_exc, PermissionDenied):
                mapped_exc.__cause__ = exc
                refused.set_result(mapped_exc)
                return
        if isinstance(exc, ne.SlowConsumerError):
            report = self._slow.get(id(exc.sub))
            if report is not None:
                report(exc)
                return
        log.warning("%s", map_error(exc, "connection"))

    async def on_disconnected(self) -> None:
        log.info("nats: disconnected; reconnecting")

    async def on_reconnected(self) -> None:
        self.generation += 1
        log.info("nats: reconnected")


def connect_kwargs(params: ConnectParams, o: NatsOptions) -> dict[str, Any]:
    """nats-py ``connect`` arguments; credentials never go inside the server URLs."""
    url = params.url
    scheme = "tls" if o.tls else "nats"
    servers = [f"{scheme}://{'[' + h + ']' if ':' in h else h}:{p or _DEFAULT_PORT}"
               for h, p in (url.hosts or (("127.0.0.1", _DEFAULT_PORT),))]
    kwargs: dict[str, Any] = {
        "servers": servers,
        "name": o.name,
        "connect_timeout": max(0.1, params.connect_timeout),
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": o.reconnect_wait,
        "ping_interval": o.ping_interval,
        "max_outstanding_pings": o.max_outstanding_pings,
        "inbox_prefix": o.inbox_prefix,
    }
    if o.tls or o.ca_file or o.cert_file:  # a CA or client certificate implies TLS
        kwargs["tls"] = ssl_context(o)
        if o.server_hostname is not None:
            kwargs["tls_hostname"] = o.server_hostname
        kwargs["tls_handshake_first"] = o.tls_handshake_first
    user = o.user if o.user is not None else url.username
    password = o.password if o.password is not None else url.password
    if user is not None:
        kwargs["user"] = user
        if password is not None:
            kwargs["password"] = password.reveal()
    if o.token is not None:
        kwargs["token"] = o.token.reveal()
    if o.nkey_seed is not None:
        _require_nkeys("nkey_seed")
        kwargs["nkeys_seed_str"] = o.nkey_seed.reveal()
    if o.creds_file is not None:
        _require_nkeys("creds_file")
        kwargs["user_credentials"] = o.creds_file
    return kwargs


def _require_nkeys(option: str) -> None:
    """nats-py signs nkey and credentials challenges with the optional ``nkeys``
    package: without it, say so before connecting (nats-py fails mid-handshake)."""
    if importlib.util.find_spec("nkeys") is None:
        raise AdapterNotInstalled(
            f"nats: option {option!r} needs the 'nkeys' package, which is not installed; "
            "install it with: pip install nkeys")


async def open_link(params: ConnectParams, o: NatsOptions) -> Link:
    """Connect within ``params.connect_timeout``; raise ConnectTimeout otherwise."""
    nc = NATS()
    link = Link(nc, o, params.connect_timeout)
    kwargs = connect_kwargs(params, o)
    hosts = ", ".join(kwargs["servers"])
    link.servers = hosts
    link.refused = asyncio.get_running_loop().create_future()
    connecting = asyncio.ensure_future(asyncio.wait_for(
        nc.connect(error_cb=link.on_error, disconnected_cb=link.on_disconnected,
                   reconnected_cb=link.on_reconnected, **kwargs),
        params.connect_timeout))
    try:
        waiters: set[asyncio.Future[Any]] = {connecting, link.refused}
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if link.refused.done() and not connecting.done():
            connecting.cancel()
            await asyncio.gather(connecting, return_exceptions=True)
            await _abandon(nc)
            raise link.refused.result()  # PermissionDenied, a refused certificate: never retried
        await connecting
    except (asyncio.TimeoutError, ne.NoServersError, OSError) as exc:
        await _abandon(nc)
        if isinstance(exc, ssl.SSLError):
            raise Unavailable(f"nats: TLS handshake with {hosts} failed: {exc}") from exc
        raise ConnectTimeout(
            f"nats: could not connect to {hosts} within {params.connect_timeout} s "
            f"({type(exc).__name__})") from exc
    except ne.Error as exc:
        await _abandon(nc)
        raise map_error(exc, f"connect to {hosts}") from exc
    finally:
        if not link.refused.done():
            link.refused.cancel()
        link.refused = None
    link.js = nc.jetstream(prefix=link.api_prefix, timeout=o.api_timeout,
                           publish_async_max_pending=o.publish_window)
    return link


async def _abandon(nc: NATS) -> None:
    try:
        await asyncio.wait_for(nc.close(), 1.0)
    except Exception:  # pragma: no cover - best effort on a half-open client
        log.debug("nats: closing a failed connection", exc_info=True)

