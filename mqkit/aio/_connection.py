"""Connection: what producers, consumers, admin and requests need of a client.

A :class:`AsyncConnection` holds one driver (opened on first use, retried while the broker
is unavailable), the client's options and capabilities, and the children to close with
it. Every call into the driver goes through it, and the objects it opens
(:class:`AsyncMappedTopic`, :class:`AsyncMappedSubscription`) map errors themselves: an
error that is not an :class:`MQError` leaves as :class:`BackendError` (with the library's
error as ``__cause__``). Each such call is made through one helper, ``_Mapping.call``
(``await self._mapped(fn, *args)``), the only ``try`` that maps, so no call site can
forget the mapping or map differently. On the path that succeeds it costs one call more
than a ``try`` written out: about 50 ns a call on the blocking face and 170 ns on asyncio
(one coroutine more), against 180 ns and 160 ns for a ``with`` block that maps.

The client builds the connection and hands it to what it makes; none of them imports
the client.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import (
    Awaitable,  # unasync: drop
    Callable,
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, NoReturn, Protocol, TypeVar

from .._capabilities import Capabilities
from .._connect import Resolved
from .._errors import BackendError, Closed, ConnectTimeout, MQError, NotFound, Unavailable
from .._message import Delivery, Message, ReceiveHook, SendHook
from .._options import ClientOptions
from .._settlement import Releases
from ..driver import (
    AsyncDriver,
    AsyncSubscriptionDriver,
    AsyncTopicDriver,
    GroupStats,
    SubscriptionOptions,
    certificate_refusal,
)
from ._runtime import Lock, monotonic, open_driver, sleep

if TYPE_CHECKING:
    from typing_extensions import TypeVarTuple, Unpack

    # The arguments of a mapped call, checked against the function's parameters.
    Ts = TypeVarTuple("Ts")

__all__ = ["AsyncConnection", "AsyncMappedSubscription", "AsyncMappedTopic"]

T = TypeVar("T")
log = logging.getLogger("mqkit")
# Pauses between connect attempts while the broker is unavailable: a restart is noticed
# within a second of the broker coming back.
_CONNECT_RETRY_FIRST = 0.05
_CONNECT_RETRY_CAP = 1.0
# The shortest attempt worth making: the last one starts no later than this before the end.
_CONNECT_LAST = 0.01


class _Child(Protocol):
    async def close(self) -> None: ...


class _Mapping:
    """Raises what the backend raised as mqkit's error (the adapter's error mapping)."""

    __slots__ = ("_resolved",)

    def __init__(self, resolved: Resolved) -> None:
        self._resolved = resolved

    async def call(
            self,
            fn: Callable[[Unpack[Ts]], Awaitable[T]],  # unasync: fn: Callable[[Unpack[Ts]], T],
            /, *args: Unpack[Ts],
    ) -> T:
        """``await fn(*args)``, its errors mapped: an :class:`MQError` leaves as it is,
        any other :class:`Exception` as :class:`BackendError` from it (its text scrubbed
        of the URL's secrets, the error itself as ``__cause__``); a ``BaseException`` that
        is not an ``Exception`` (cancellation, ``KeyboardInterrupt``) passes untouched.
        Every driver call of this module goes through here."""
        try:
            return await fn(*args)
        except MQError:
            raise
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> NoReturn:
        """Raise ``exc`` mapped (from the ``except`` clause of :meth:`call`)."""
        with self._resolved.errors():
            raise exc
        raise AssertionError("unreachable")  # pragma: no cover


class AsyncMappedTopic(AsyncTopicDriver):
    """A topic driver whose calls raise mqkit errors only."""

    __slots__ = ("_inner", "_mapped")

    def __init__(self, inner: AsyncTopicDriver, mapping: _Mapping) -> None:
        self._inner = inner
        self._mapped = mapping.call

    async def send_batch(self, messages: Sequence[Message]) -> None:
        await self._mapped(self._inner.send_batch, messages)

    async def close(self) -> None:
        await self._mapped(self._inner.close)

    def as_(self, kind: type[T]) -> T | None:
        return self._inner.as_(kind)


class AsyncMappedSubscription(AsyncSubscriptionDriver):
    """A subscription driver whose calls raise mqkit errors only."""

    __slots__ = ("_inner", "_mapped")

    def __init__(self, inner: AsyncSubscriptionDriver, mapping: _Mapping) -> None:
        self._inner = inner
        self._mapped = mapping.call

    @property
    def combines_ack_and_receive(self) -> bool:  # type: ignore[override]
        return self._inner.combines_ack_and_receive

    async def receive_batch(self, max_messages: int, timeout: float) -> list[Delivery]:
        return await self._mapped(self._inner.receive_batch, max_messages, timeout)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        await self._mapped(self._inner.ack, deliveries)

    async def ack_and_receive(self, deliveries: Sequence[Delivery], max_messages: int,
                              timeout: float) -> list[Delivery]:
        return await self._mapped(self._inner.ack_and_receive, deliveries, max_messages,
                                  timeout)

    async def nack(self, deliveries: Sequence[Delivery], delay: float | None) -> None:
        await self._mapped(self._inner.nack, deliveries, delay)

    async def reject(self, deliveries: Sequence[Delivery]) -> None:
        await self._mapped(self._inner.reject, deliveries)

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        await self._mapped(self._inner.release, deliveries)

    async def extend_lease(self, deliveries: Sequence[Delivery], seconds: float) -> None:
        await self._mapped(self._inner.extend_lease, deliveries, seconds)

    async def close(self) -> None:
        await self._mapped(self._inner.close)

    def as_(self, kind: type[T]) -> T | None:
        return self._inner.as_(kind)


class AsyncConnection:
    """One client's connection: its driver, options, capabilities and children.

    The driver opens on :meth:`ready` (every driver call here makes it first); after
    :meth:`close` every call raises :class:`Closed`. Errors of the driver leave as
    mqkit errors (see the module docstring).
    """

    def __init__(self, resolved: Resolved) -> None:
        self._resolved = resolved
        self._mapping = _Mapping(resolved)
        self._mapped = self._mapping.call
        self.url = resolved.url
        self.options: ClientOptions = resolved.options
        self.releases = Releases()
        self._driver: AsyncDriver | None = None
        self._lock = Lock()
        self._closed = False
        self._children: dict[int, _Child] = {}
        self._children_lock = threading.Lock()
        # Send hooks (``client.add_send_hook``): empty unless added, one truth test per send.
        self.send_hooks: list[SendHook] = []
        # Receive hooks (``client.add_receive_hook``): one truth test per receive.
        self.receive_hooks: list[ReceiveHook] = []

    # -- state -----------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"not connected"``."""
        return "closed" if self._closed else "open" if self._driver else "not connected"

    def check_open(self) -> None:
        """Raise :class:`Closed` once the connection is closed."""
        if self._closed:
            raise Closed(f"client for {self.url} is closed")

    def _opened(self) -> AsyncDriver:
        self.check_open()
        if self._driver is None:
            raise MQError("the client is not connected yet; use it as a context manager "
                          "(or make a first call) before reading this")
        return self._driver

    @property
    def capabilities(self) -> Capabilities:
        """The backend's capabilities; :class:`Closed` after close, :class:`MQError`
        before the connection opened."""
        return self._opened().capabilities

    def capabilities_for(self, topic: str) -> Capabilities:
        """The driver's capabilities on ``topic`` (a checked name), once open.

        The driver declares (``topic_capabilities``); this checks the declaration: a
        value that is not a :class:`Capabilities` of the same backend, or an exception,
        is the driver's bug and raises :class:`BackendError`."""
        driver = self._opened()
        try:
            caps = driver.topic_capabilities(topic)
        except MQError:
            raise
        except Exception as exc:
            raise BackendError(f"{driver.capabilities.backend}: topic_capabilities("
                               f"{topic!r}) failed: {type(exc).__name__}: {exc}") from exc
        if not isinstance(caps, Capabilities) or caps.backend != driver.capabilities.backend:
            raise BackendError(
                f"{driver.capabilities.backend}: topic_capabilities({topic!r}) returned "
                f"{caps!r}, not the Capabilities of backend "
                f"{driver.capabilities.backend!r}")
        return caps

    def dead_letter_topic(self, topic: str) -> str:
        """The backend's default dead-letter topic for ``topic`` (once open)."""
        return self._opened().dead_letter_topic(topic)

    def as_(self, kind: type[T]) -> T | None:
        """The driver's native object of type ``kind``, or ``None`` (not open)."""
        return None if self._driver is None else self._driver.as_(kind)

    # -- children --------------------------------------------------------------------

    def adopt(self, child: T) -> T:
        """Remember ``child`` (a producer or consumer) to close it with the client."""
        with self._children_lock:
            self._children[id(child)] = child  # type: ignore[assignment]
        return child

    def forget(self, child: object) -> None:
        """``child`` closed itself: the client need not close it."""
        with self._children_lock:
            self._children.pop(id(child), None)

    def children(self) -> list[_Child]:
        """The children still open, in the order they were made."""
        with self._children_lock:
            return list(self._children.values())

    # -- lifecycle -------------------------------------------------------------------

    async def ready(self) -> AsyncDriver:
        """The driver, opened on the first call (:class:`Closed` after close)."""
        self.check_open()
        if self._driver is None:
            async with self._lock:
                if self._driver is None:
                    self._driver = await self._connect()
        return self._driver

    async def _connect(self) -> AsyncDriver:
        """Open the driver, trying again while the broker is unavailable (refused, reset,
        not resolvable yet) until ``connect_timeout`` has passed, each attempt given the
        time left; then :class:`ConnectTimeout` (an :class:`Unavailable` and a
        :class:`Timeout`) from the last error. The same on every backend, whether its
        client library fails fast or waits on its own. Other errors are not retried, and
        neither is a server certificate that fails verification: :class:`ConfigurationError`
        at once, naming ``ca_file``."""
        timeout = self.options.connect_timeout
        deadline = monotonic() + timeout
        params = self._resolved.params
        pause = _CONNECT_RETRY_FIRST
        while True:
            try:
                return await self._mapped(open_driver, self._resolved.plugin, params)
            except ConnectTimeout:
                raise
            except Unavailable as exc:
                refused = certificate_refusal(exc, self.url)
                if refused is not None:  # not retried: the certificate stays the same
                    raise refused from exc
                remaining = deadline - monotonic()
                if remaining <= _CONNECT_LAST:
                    raise ConnectTimeout(
                        f"could not connect to {self.url} within {timeout:g} s: "
                        f"{exc}") from exc
                await sleep(min(pause, remaining - _CONNECT_LAST))
                pause = min(_CONNECT_RETRY_CAP, pause * 2)
                params = dataclasses.replace(
                    params, connect_timeout=max(_CONNECT_LAST, deadline - monotonic()))

    async def close(self) -> None:
        """Mark closed and close the driver (the caller closed the children first)."""
        self._closed = True
        driver, self._driver = self._driver, None
        if driver is not None:
            await self._mapped(driver.close)

    # -- topics, subscriptions and administration ----------------------------------------

    async def _call(
            self,
            call: Callable[[AsyncDriver], Awaitable[T]],  # unasync: call: Callable[[Driver], T],
    ) -> T:
        """``call(driver)`` with its errors mapped, tried again while the broker answers
        :class:`Unavailable`.

        Only for the idempotent calls made here (admin verbs, opening a topic or a
        subscription): a repeat is harmless. Right after a broker (re)start or a first
        group a broker can refuse for a few seconds (Kafka: no coordinator yet, no
        leader); drivers report that as :class:`Unavailable` and never retry (the SPI's
        rule), so it is waited out here, once for every backend: pauses from 50 ms
        doubling to 1 s, no new try once ``connect_timeout`` has passed since the call
        began, then the last :class:`Unavailable` is raised (a driver that itself waits
        for a reconnection, as NATS does, uses up that time in its first try).
        :class:`PermissionDenied`, :class:`ConnectTimeout` (connecting already waited)
        and every other error leave at once.
        """
        deadline = monotonic() + self.options.connect_timeout
        pause = _CONNECT_RETRY_FIRST
        while True:
            driver = await self.ready()
            try:
                return await self._mapped(call, driver)
            except ConnectTimeout:
                raise
            except Unavailable as exc:
                refused = certificate_refusal(exc, self.url)
                if refused is not None:
                    raise refused from exc
                now = monotonic()
                if deadline - now <= _CONNECT_LAST or self._closed:
                    raise
                log.debug("mqkit: %s unavailable, trying again: %s", self.url, exc)
                await sleep(min(pause, deadline - now - _CONNECT_LAST))
                pause = min(_CONNECT_RETRY_CAP, pause * 2)

    async def open_topic(self, topic: str) -> AsyncMappedTopic:
        """A sender on ``topic``, created first when missing and ``auto_create`` is on."""
        try:
            opened = await self._call(lambda d: d.open_topic(topic))
        except NotFound:
            if not self.options.auto_create:
                raise
            await self.create_topic(topic, {})
            opened = await self._call(lambda d: d.open_topic(topic))
        return AsyncMappedTopic(opened, self._mapping)

    async def open_subscription(self, topic: str, group: str,
                                options: SubscriptionOptions) -> AsyncMappedSubscription:
        """A receiver of ``group`` on ``topic``. A missing topic is created first when
        ``auto_create`` and ``options.create_group`` are on; a missing group on an
        existing topic is the driver's to create (or refuse with :class:`NotFound`)."""
        try:
            opened = await self._call(lambda d: d.open_subscription(topic, group, options))
        except NotFound:
            if not self.options.auto_create or not options.create_group:
                raise
            if await self.topic_exists(topic):
                raise
            await self.create_topic(topic, {})
            opened = await self._call(lambda d: d.open_subscription(topic, group, options))
        return AsyncMappedSubscription(opened, self._mapping)

    # -- administration (arguments already checked by the caller; see _call) -----------

    async def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        await self._call(lambda d: d.create_topic(topic, options))

    async def delete_topic(self, topic: str) -> None:
        await self._call(lambda d: d.delete_topic(topic))

    async def list_topics(self) -> list[str]:
        return await self._call(lambda d: d.list_topics())

    async def topic_exists(self, topic: str) -> bool:
        return await self._call(lambda d: d.topic_exists(topic))

    async def create_group(self, topic: str, group: str, start: str) -> None:
        await self._call(lambda d: d.create_group(topic, group, start))

    async def delete_group(self, topic: str, group: str) -> None:
        await self._call(lambda d: d.delete_group(topic, group))

    async def list_groups(self, topic: str) -> list[str]:
        return await self._call(lambda d: d.list_groups(topic))

    async def group_stats(self, topic: str, group: str) -> GroupStats:
        return await self._call(lambda d: d.group_stats(topic, group))

    async def purge(self, topic: str, group: str) -> None:
        await self._call(lambda d: d.purge(topic, group))
