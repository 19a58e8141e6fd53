"""The App: typed handlers on several topics, run together on asyncio, stopped gracefully.

How a message flows through one handler (``_Runner``: its ``call`` is
the handler given to ``consumer.run``, the runner itself the outermost middleware)::

    consumer.run ─► decode (the annotation's decoder) ─► call the function ─► publish the
                    │ PayloadError: dead letter at once    (to_thread if plain)   return value
                    ▼                                                             to output
                 the loop settles: returned → ack, raised → retry / dead letter (RetryPolicy)

Where later pieces plug in (issue 15), without changing what is here:

- **middleware** (item 3): ``consumer.run(..., middleware=[runner, *app's, *handler's])``
  where ``runner`` (``_Runner``, outermost) decodes into ``ctx.value``; the App's
  middleware then the handler's see the decoded value and wrap ``_Runner.call`` (the
  function, then publishing its output). The outcome hooks are ``consumer.run``'s.
  Send-side hooks go where ``_emit_published`` is.
- **``mqkit run module:app``** (item 4) imports the App, calls :meth:`App.run` (with
  ``client=`` built from ``--url``) and maps the first SIGTERM/SIGINT to
  :meth:`App.stop` and the second to ``stop(force=True)``, exactly what
  :meth:`App.run_sync` does in one process; ``--workers N`` runs that N times.
- **health** (item 5) reads :attr:`App.ready` (every handler's loop running) and
  :attr:`App.running`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from .._errors import Closed, ConfigurationError, MQError, PayloadError
from .._logfields import log_fields
from .._payloads import encode_value
from .._retry import RetryPolicy
from .._run import RunStats
from .._validation import check_int, check_name, check_seconds
from ..aio import connect as aio_connect
from ..aio._client import AsyncClient
from ..aio._consumer import AsyncConsumer
from ..aio._middleware import (
    AsyncHandlerContext,
    AsyncMiddleware,
    Next,
    check_middleware,
    ctx_fields,
)
from ..aio._producer import AsyncProducer
from ._handlers import (
    BlockingMessage,
    HandlerSpec,
    HandlerStats,
    check_options,
    inspect_handler,
)
from ._handlers import PayloadError as _Undecodable

__all__ = ["App"]

log = logging.getLogger("mqkit")

F = TypeVar("F", bound=Callable[..., Any])
Hook = Callable[[], Any]

# Threads for plain-function handlers: one per unit of their concurrency, at most this.
_MAX_THREADS = 32


class App:
    """A service: handlers registered on topics, run together until stopped.

    ``App(url)`` connects to ``url`` (else ``$MQKIT_URL``, else ``memory://``) when it
    runs, with ``client_options`` as :func:`mqkit.aio.connect`'s keywords, and closes that
    client when it stops; ``App(client=...)`` runs on an :class:`mqkit.aio.Client` you
    own (not closed by the app). Options:

    - ``graceful_timeout`` (seconds, default 30): how long :meth:`stop` lets handlers in
      flight finish and their messages settle. Past it the consumers are closed: the
      messages still unsettled are left to the broker, which redelivers them
      (at-least-once: a handler that had done its work will see the message again).
    - ``declare`` (default ``True``): at start, create each handler's topic and group and
      each output topic (idempotent). ``False``: they must exist (``NotFound`` otherwise).
    - ``max_threads``: the thread pool for plain-function handlers (default: the sum of
      their ``concurrency``, at most 32).
    - ``middleware``: :class:`mqkit.aio.Middleware` objects (e.g. from
      :mod:`mqkit.aio.middleware`) wrapping every handler, outside each handler's own
      (``@app.handler(middleware=...)``). They see the decoded value as ``ctx.value``
      (a body that does not decode is dead-lettered before them; their ``outcome``
      still sees it). One instance serves every handler: its state (a breaker's
      failure count) is shared; give per-handler state at the handler.

    Every bad argument, here and at registration, raises :class:`~mqkit.ConfigurationError`
    naming it.
    """

    def __init__(self, url: str | None = None, *, client: AsyncClient | None = None,
                 graceful_timeout: float = 30.0, declare: bool = True,
                 max_threads: int | None = None,
                 middleware: list[AsyncMiddleware] | tuple[AsyncMiddleware, ...] = (),
                 **client_options: Any) -> None:
        if client is not None:
            if not isinstance(client, AsyncClient):
                raise ConfigurationError(
                    f"client must be an mqkit.aio.Client (from mqkit.aio.connect), got "
                    f"{type(client).__name__}")
            if url is not None or client_options:
                given = ["url"] if url is not None else []
                raise ConfigurationError(
                    "give either client or url/options, not both (got client and "
                    f"{', '.join(given + sorted(client_options))})")
        elif url is not None and not isinstance(url, str):
            raise ConfigurationError(f"url must be a str, got {type(url).__name__}")
        if not isinstance(declare, bool):
            raise ConfigurationError(f"declare must be a bool, got {declare!r}")
        self.url = url
        self.client_options = dict(client_options)
        self.graceful_timeout = check_seconds("graceful_timeout", graceful_timeout)
        self.declare = declare
        self.max_threads = None if max_threads is None else check_int(
            "max_threads", max_threads, 1)
        self.middleware = check_middleware(middleware)
        self._given_client = client
        self._handlers: list[HandlerSpec] = []
        self._startup: list[Hook] = []
        self._shutdown: list[Hook] = []
        # run state
        self._client: AsyncClient | None = client
        self._producers: dict[str, AsyncProducer] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop_requested = False
        self._force = False
        self._running = False
        self._ready = False
        self._in_flight = 0
        self._consumers: list[AsyncConsumer] = []
        # listeners, for TestApp now and metrics/tracing later: never raise into the app
        self._handled_listeners: list[Callable[[HandlerSpec, Any], None]] = []
        self._published_listeners: list[Callable[[str, Any], None]] = []

    # -- registration ----------------------------------------------------------------

    def handler(self, topic: str, group: str | None = None, *,
                retry: RetryPolicy | None = None, concurrency: int = 1,
                prefetch: int | None = None, lease: float | None = None,
                output: str | None = None,
                middleware: list[AsyncMiddleware] | tuple[AsyncMiddleware, ...] = (),
                ) -> Callable[[F], F]:
        """Register the decorated function as the handler of ``group`` on ``topic``.

        The function takes one parameter; its annotation picks how the body is decoded
        (``bytes``, ``str``, ``dict``, ``list``, a dataclass, a pydantic model, a msgspec
        struct...: see :func:`mqkit._payloads.decoder_for`; none means ``bytes``). Annotated
        ``mqkit.aio.ReceivedMessage`` (or ``mqkit.ReceivedMessage``) it gets the received
        message itself, which it may settle itself (a plain function gets blocking
        ``ack``/``nack``/``reject``). A body that does not decode is dead-lettered at once
        with the reason and counted (:attr:`HandlerStats.payload_errors`); the function is
        not called.

        The function may be a coroutine function (awaited on the loop) or a plain function
        (run on the app's thread pool, so it never blocks the loop). It returning acks the
        message; it raising retries it per ``retry`` (default :class:`~mqkit.RetryPolicy`)
        and finally dead-letters it. With ``output``, a return value other than ``None``
        is published there (encoded as :meth:`publish` does) *before* the message is
        acked; a failed publish fails the message (retried). Up to ``concurrency``
        messages are handled at once; ``prefetch`` and ``lease`` are the consumer's
        (``None``: the client's). ``middleware`` wraps this handler inside the App's
        (see :class:`App`). The function is returned unchanged.

        Raises :class:`~mqkit.ConfigurationError` naming the argument: an invalid
        ``topic``, ``group`` (required) or ``output`` name, a wrong ``retry``,
        ``concurrency``, ``prefetch``, ``lease`` or ``middleware``, a function without exactly one
        positional parameter, an annotation that cannot be decoded, or a second handler
        for the same ``(topic, group)``.
        """
        options = check_options(topic, group, retry=retry, concurrency=concurrency,
                                prefetch=prefetch, lease=lease, output=output)
        chain = check_middleware(middleware)
        if self._running:
            raise ConfigurationError("cannot register a handler while the app is running")
        for spec in self._handlers:
            if (spec.topic, spec.group) == (options["topic"], options["group"]):
                raise ConfigurationError(
                    f"a handler for topic {spec.topic!r}, group {spec.group!r} is already "
                    f"registered ({spec.name}); one handler per (topic, group)")

        def register(func: F) -> F:
            for spec in self._handlers:  # again: two decorators built before either ran
                if (spec.topic, spec.group) == (options["topic"], options["group"]):
                    raise ConfigurationError(
                        f"a handler for topic {spec.topic!r}, group {spec.group!r} is "
                        f"already registered ({spec.name}); one handler per (topic, group)")
            is_async, raw, decoder = inspect_handler(func)
            self._handlers.append(HandlerSpec(func=func, is_async=is_async, raw=raw,
                                              decoder=decoder, middleware=chain, **options))
            return func

        return register

    def on_startup(self, func: F) -> F:
        """Run ``func()`` (plain or coroutine function) when the app starts: connected,
        topics and groups declared, before any handler runs (a message it publishes to a
        handler's topic is handled); hooks run in registration order. One that raises
        stops the start: :meth:`run` raises it (the shutdown hooks do not run)."""
        self._startup.append(self._check_hook("on_startup", func))
        return func

    def on_shutdown(self, func: F) -> F:
        """Run ``func()`` when the app stops, after every handler's messages settled and
        the consumers closed; in registration order. A hook that raises is logged and
        the others still run; :meth:`run` then raises the first such error."""
        self._shutdown.append(self._check_hook("on_shutdown", func))
        return func

    @staticmethod
    def _check_hook(what: str, func: object) -> Hook:
        if not callable(func):
            raise ConfigurationError(f"{what} takes a callable, got {type(func).__name__}")
        return func

    @property
    def handlers(self) -> list[HandlerSpec]:
        """The registered handlers, in registration order (a copy)."""
        return list(self._handlers)

    def stats(self, topic: str, group: str | None = None) -> HandlerStats:
        """The counters of the handler of ``topic`` (and ``group``, needed when several
        handlers read ``topic``)."""
        return self._find(topic, group).stats

    def _find(self, topic: str, group: str | None) -> HandlerSpec:
        check_name("topic", topic)
        found = [s for s in self._handlers
                 if s.topic == topic and (group is None or s.group == group)]
        if not found:
            raise ConfigurationError(f"no handler registered for topic {topic!r}"
                                     + (f", group {group!r}" if group is not None else ""))
        if len(found) > 1:
            raise ConfigurationError(
                f"several handlers read topic {topic!r} (groups "
                f"{', '.join(s.group for s in found)}): give group")
        return found[0]

    # -- state -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether :meth:`run` is between its start and its return."""
        return self._running

    @property
    def ready(self) -> bool:
        """Whether the app started (hooks ran, topics declared), every handler's loop
        is running and none is riding out a broker outage: what a readiness probe
        reports (false while the broker is down, true again once it answers)."""
        return self._ready and all(c.unavailable_since is None for c in self._consumers)

    @property
    def in_flight(self) -> int:
        """Handler calls running now (decoding, the call, publishing its output)."""
        return self._in_flight

    # -- publishing --------------------------------------------------------------------

    async def publish(self, topic: str, value: Any, *, key: str | None = None,
                      headers: Mapping[str, str] | None = None) -> str:
        """Send ``value`` to ``topic``, encoded by its type, and return the message id.

        ``bytes`` as they are, ``str`` as UTF-8, dataclasses, pydantic models, msgspec
        structs and JSON values as JSON (see :func:`mqkit._payloads.encode_value`); the
        content type is recorded on the message. Works while the app runs (handlers,
        hooks) or at any time on an app given a ``client``; otherwise :class:`~mqkit.Closed`.
        A value that cannot be encoded is an :class:`~mqkit.InvalidMessage` naming its type.
        """
        check_name("topic", topic)
        body, content_type = encode_value(value)
        client = self._client
        if client is None:
            raise Closed("the app is not running: publish from a handler or a hook, or "
                         "give the App a client")
        producer = self._producers.get(topic)
        if producer is None:
            producer = self._producers.setdefault(topic, client.producer(topic))
        message_id = await producer.send(body, key=key, headers=headers,
                                         content_type=content_type)
        self._emit_published(topic, value, message_id)
        return message_id

    def _emit_published(self, topic: str, value: Any, message_id: str | None = None) -> None:
        for listener in self._published_listeners:
            try:
                listener(topic, value)
            except Exception:  # a listener never breaks the app
                log.exception("mqkit: publish listener failed",
                              extra=log_fields(topic, None, message_id))

    # -- running ----------------------------------------------------------------------

    def stop(self, *, force: bool = False) -> None:
        """Ask the running app to stop (or the next :meth:`run`, if none runs yet).

        Thread-safe and callable from a signal handler. Graceful: every handler loop
        stops receiving, handlers in flight finish and their messages are settled,
        messages received but not started go back to the broker without using an attempt;
        :meth:`run` returns once everything settled and closed, within
        ``graceful_timeout``. ``force=True`` (e.g. a second signal) does not wait for
        handlers: the consumers are closed at once and the broker redelivers what was
        unsettled.
        """
        self._stop_requested = True
        if force:
            self._force = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop closed meanwhile: run() is over
                pass

    def run_sync(self, *, handle_signals: bool = True) -> None:
        """Run the app until stopped, blocking (``asyncio.run(app.run())``).

        With ``handle_signals`` (and on the main thread), the first SIGINT or SIGTERM
        calls :meth:`stop`, the second ``stop(force=True)``.
        """

        async def main() -> None:
            if handle_signals and threading.current_thread() is threading.main_thread():
                self._install_signals(asyncio.get_running_loop())
            await self.run()

        asyncio.run(main())

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        seen = [0]

        def on_signal() -> None:
            seen[0] += 1
            self.stop(force=seen[0] > 1)

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, on_signal)
            except (NotImplementedError, RuntimeError):  # Windows' loop, not main thread
                pass

    async def run(self, *, client: AsyncClient | None = None) -> None:
        """Run every handler until :meth:`stop` (or a handler loop fails).

        Connects (unless the app has a client, or ``client`` is given here: both are left
        open), declares topics and groups (``declare``), runs the startup hooks, then runs
        one ``consumer.run`` per handler as tasks of the running loop. On :meth:`stop`:
        drains (see there), closes the consumers, runs the shutdown hooks, closes the
        client it opened, and returns.

        A handler loop that raises (e.g. :class:`~mqkit.PermissionDenied`, or
        :class:`~mqkit.Unavailable` after ``unavailable_timeout``) stops the app; ``run``
        raises that error once the other loops drained. Cancelling ``run`` closes
        everything at once (unsettled messages are redelivered) and re-raises.
        """
        if self._running:
            raise ConfigurationError("the app is already running")
        if client is not None and not isinstance(client, AsyncClient):
            raise ConfigurationError(
                f"client must be an mqkit.aio.Client, got {type(client).__name__}")
        if not self._handlers:
            raise ConfigurationError("the app has no handlers: register one with "
                                     "@app.handler(topic, group=...)")
        self._running = True
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self._stop_requested:
            self._wake.set()
        own = client is None and self._given_client is None
        self._client = client or self._given_client or aio_connect(
            self.url, **self.client_options)
        try:
            await self._serve(self._client)
        finally:
            try:
                if own:
                    await self._client.close()
            finally:
                self._client = self._given_client
                self._producers = {}
                self._running = self._ready = False
                self._loop = self._wake = None
                self._stop_requested = self._force = False

    async def _serve(self, client: AsyncClient) -> None:
        await client
        errors: list[BaseException] = []
        started = False
        try:
            if self.declare:
                await self._declare(client)
            for hook in self._startup:
                await _call_hook(hook)
            started = True
            await self._run_handlers(client, errors)
        finally:
            for producer in list(self._producers.values()):
                try:
                    await producer.close()
                except MQError as exc:
                    errors.append(exc)
            for hook in self._shutdown if started else ():
                try:
                    await _call_hook(hook)
                except Exception as exc:
                    log.exception("mqkit: shutdown hook %s failed", _name(hook))
                    errors.append(exc)
        if errors:
            for later in errors[1:]:
                log.error("mqkit: the app also failed with %s: %s", type(later).__name__,
                          later)
            raise errors[0]

    async def _declare(self, client: AsyncClient) -> None:
        topics = {s.topic for s in self._handlers} | {
            s.output for s in self._handlers if s.output is not None}
        for topic in sorted(topics):
            await client.admin.create_topic(topic)
        for spec in self._handlers:
            await client.admin.create_group(spec.topic, spec.group)

    async def _run_handlers(self, client: AsyncClient, errors: list[BaseException]) -> None:
        assert self._wake is not None
        wake = self._wake
        if self._stop_requested:
            return
        threads = sum(s.concurrency for s in self._handlers if not s.is_async)
        executor = (concurrent.futures.ThreadPoolExecutor(
            max_workers=min(self.max_threads or _MAX_THREADS, threads),
            thread_name_prefix="mqkit-handler") if threads else None)
        consumers: list[AsyncConsumer] = []
        tasks: dict[asyncio.Task[RunStats], tuple[HandlerSpec, AsyncConsumer]] = {}
        try:
            for spec in self._handlers:
                spec.stats = HandlerStats()
                consumer = client.consumer(spec.topic, spec.group, prefetch=spec.prefetch,
                                           lease=spec.lease)
                consumers.append(consumer)
                runner = _Runner(self, spec, executor)
                task = asyncio.ensure_future(consumer.run(
                    runner.call, retry=spec.retry, concurrency=spec.concurrency,
                    middleware=[runner, *self.middleware, *spec.middleware]))
                tasks[task] = (spec, consumer)
            self._consumers = consumers
            self._ready = True
            waker = asyncio.ensure_future(wake.wait())
            try:
                await asyncio.wait([*tasks, waker], return_when=asyncio.FIRST_COMPLETED)
            finally:
                waker.cancel()
            self._ready = False
            await self._drain(tasks, errors)
        except BaseException:  # cancelled (or a bug): close at once, never hang
            self._ready = False
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            self._consumers = []
            for consumer in consumers:
                try:
                    await consumer.close(timeout=0)  # a no-op when drained and closed
                except MQError as exc:
                    log.warning("mqkit: closing %r: %s", consumer, exc)
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)

    def _forced(self) -> bool:
        return self._force

    async def _drain(self, tasks: dict[asyncio.Task[RunStats],
                                       tuple[HandlerSpec, AsyncConsumer]],
                     errors: list[BaseException]) -> None:
        """Stop every loop, wait for them within ``graceful_timeout``, then close."""
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.graceful_timeout
        for _spec, consumer in tasks.values():
            consumer.stop()
        pending = {t for t in tasks if not t.done()}
        while pending and not self._forced():
            self._wake.clear()
            if self._forced():  # stop(force=True) came before the clear
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            waker = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait([*pending, waker], timeout=remaining,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                waker.cancel()
            pending = {t for t in pending if not t.done()}
        if pending:
            log.warning("mqkit: %d handler loop(s) still busy after %s; closing their "
                        "consumers, the broker redelivers their unsettled messages",
                        len(pending), "stop(force=True)" if self._force
                        else f"graceful_timeout={self.graceful_timeout:g} s")
            for task in pending:
                spec, consumer = tasks[task]
                try:
                    await consumer.close(timeout=0)
                except MQError as exc:
                    log.warning("mqkit: closing %r: %s", consumer, exc)
                task.cancel()  # a handler still running would hold run() forever
            await asyncio.gather(*pending, return_exceptions=True)
        for task, (spec, _consumer) in tasks.items():
            if task.cancelled():
                continue
            failure = task.exception()
            if failure is not None:
                log.error("mqkit: the loop of %s on %s/%s failed: %s: %s", spec.name,
                          spec.topic, spec.group, type(failure).__name__, failure)
                errors.append(failure)
            else:
                spec.stats.run = task.result()
        for _spec, consumer in tasks.values():  # settle what the loops decided
            try:
                await consumer.close(timeout=max(0.0, deadline - loop.time()))
            except MQError as exc:
                log.warning("mqkit: closing %r: %s", consumer, exc)


class _Runner(AsyncMiddleware):
    """One handler for ``consumer.run``: the outermost middleware decodes the body into
    ``ctx.value`` and counts; :meth:`call` calls the function and publishes its output."""

    def __init__(self, app: App, spec: HandlerSpec,
                 executor: concurrent.futures.Executor | None) -> None:
        self.app = app
        self.spec = spec
        self.executor = executor
        self.loop = asyncio.get_running_loop()
        self.call: Callable[[Any], Awaitable[Any]] = (
            spec.func if spec.is_async and spec.output is None else self._call_and_publish)
        """The chain's end: the function itself when it is a coroutine function with
        nothing to publish (no frame of ours per message), else
        :meth:`_call_and_publish`."""

    async def handle(self, ctx: AsyncHandlerContext, call_next: Next) -> Any:
        app, spec = self.app, self.spec
        stats = spec.stats
        msg = ctx.message
        app._in_flight += 1
        try:
            if spec.raw:
                arg: Any = msg if spec.is_async else BlockingMessage(msg, self.loop)
            else:
                assert spec.decoder is not None
                try:
                    arg = spec.decoder(msg.body, msg.content_type)
                except PayloadError as exc:
                    stats.payload_errors += 1
                    raise _Undecodable(exc.type_name, exc.reason) from exc
                stats.decoded += 1
            for listener in app._handled_listeners:
                try:
                    listener(spec, arg)
                except Exception:
                    log.exception("mqkit: handled listener failed", extra=ctx_fields(ctx))
            ctx.value = arg
            try:
                await call_next(ctx)
            except BaseException:
                stats.failed += 1
                raise
            stats.handled += 1
        finally:
            app._in_flight -= 1
        return None

    async def _call_and_publish(self, arg: Any) -> None:
        """Call the function (a plain one on the executor), publish its return value to
        ``output``."""
        spec = self.spec
        result = await self._call(arg)
        if spec.output is not None and result is not None:
            await self.app.publish(spec.output, result)
            spec.stats.published += 1

    async def _call(self, arg: Any) -> Any:
        func = self.spec.func
        if self.spec.is_async:
            return await func(arg)
        assert self.executor is not None
        context = contextvars.copy_context()
        return await self.loop.run_in_executor(
            self.executor, functools.partial(context.run, func, arg))


async def _call_hook(hook: Hook) -> None:
    result = hook()
    if isinstance(result, Awaitable):
        await result


def _name(func: object) -> str:
    return getattr(func, "__qualname__", None) or type(func).__qualname__
