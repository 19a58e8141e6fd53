"""Middleware: one small protocol around a handler, for ``consumer.run`` and the App.

A middleware is an object with two methods::

    class Middleware:
        async def handle(self, ctx: HandlerContext, call_next) -> Any
        def outcome(self, ctx: HandlerContext, outcome: Outcome) -> float | None

``handle`` **wraps handling**. It sees the message (``ctx.message``) and the value the
handler will be called with (``ctx.value``: the message itself under ``consumer.run``,
the decoded payload in the App), and either calls ``call_next(ctx)`` (the next
middleware, finally the handler) and returns its result, or does not: returning without
calling it short-circuits (the message is done: the loop acks it), raising fails the
message like a handler that raised (retried, then dead-lettered; ``PermanentFailure``
dead-letters at once), and raising :class:`~mqkit.ReleaseMessage` gives it back to the
broker without using an attempt. Bounding the handler's time is wrapping
``call_next``. ``ctx.state`` is a dict for the middleware's own per-message notes.

``outcome`` **sees the decision**, once per message the loop took from the broker and
only after the loop decided it: acked, retried (with its delay), dead-lettered, rejected,
dropped (at-most-once), released or settled by the handler (:class:`~mqkit.Outcome`).
It runs on the loop, between batches, so it must be quick and must not block; an
exception there is logged and ignored. It returns ``None``, or a number of seconds the
loop should stop receiving for (the circuit breaker's cool-down): the loop settles the
batch in hand first, so nothing is held (or nacked) meanwhile, and ``stop()`` still ends
the pause at once.

Why this shape. One wrapping method is the smallest thing that can short-circuit,
replace the value, time the handler and see its exception, which before/after hooks
cannot do together; a second, plain method for the outcome is needed because the fate
of a message (retry or dead letter, the backoff delay, whether the dead-letter copy was
taken) is decided by the loop after every middleware returned. ``outcome`` is plain on
both faces (it only records), so a middleware written for one face has the same
``outcome`` on the other. ``handle`` is a coroutine function here and a plain function
on the blocking face: this module is the source of both (``scripts/unasync.py``
generates ``mqkit/_sync/_middleware.py``), so the protocol, the chain and the shipped
middlewares are written once. A middleware is given as a list, the first one outermost:
``consumer.run(handler, middleware=[a, b])`` runs ``a.handle`` → ``b.handle`` → handler,
and calls ``a.outcome`` then ``b.outcome``. With no middleware ``run`` takes its plain
path: nothing is built per message.

Shipped here (exported by ``mqkit.aio.middleware``): :class:`AsyncIdempotent`,
:class:`AsyncTimeLimit`, :class:`AsyncCircuitBreaker`. One instance keeps its state
(the breaker's counts, the store) across every loop it is given to.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .._breaker import BreakerState
from .._errors import ConfigurationError
from .._idempotency import IdempotencyStore, MemoryStore
from .._logfields import SPAN_KEY, log_fields
from .._outcome import Outcome, ReleaseMessage
from .._retry import PermanentFailure
from .._settlement import ACK
from .._validation import check_seconds
from ._runtime import call_handler, call_with_timeout, run_blocking

if TYPE_CHECKING:
    from collections.abc import Awaitable  # unasync: drop

    from ._received import AsyncReceivedMessage

__all__ = ["AsyncCircuitBreaker", "AsyncHandlerContext", "AsyncIdempotent",
           "AsyncMiddleware", "AsyncTimeLimit", "Next", "build_chain", "check_middleware",
           "report_outcomes"]

log = logging.getLogger("mqkit")

# What a middleware's ``handle`` must be on this face, for the error refusing it.
_ASYNC = True  # unasync: _ASYNC = False
_HANDLE_KIND = "a coroutine function (async def)"  # unasync: _HANDLE_KIND = "a plain function"


class AsyncHandlerContext:
    """One message on its way through the middleware chain.

    ``message``: the received message; ``topic``, ``group``: where it came from;
    ``attempts``: this delivery as the retry policy counts it (deliveries minus
    releases); ``value``: what the handler is called with (the message under
    ``consumer.run``; the decoded payload in the App), which a middleware may replace;
    ``state``: a dict for middleware notes between ``handle`` and ``outcome``.
    """

    __slots__ = ("_attempts", "_count", "_state", "group", "message", "topic", "value")

    def __init__(self, message: AsyncReceivedMessage, topic: str, group: str,
                 attempts: Callable[[AsyncReceivedMessage], int]) -> None:
        self.message = message
        self.topic = topic
        self.group = group
        self.value: Any = message
        self._count = attempts
        self._attempts: int | None = None
        self._state: dict[str, Any] | None = None

    @property
    def attempts(self) -> int:
        """This delivery as the retry policy counts it (worked out on first use)."""
        if self._attempts is None:
            self._attempts = self._count(self.message)
        return self._attempts

    @property
    def state(self) -> dict[str, Any]:
        """Notes of the middleware about this message (made on first use)."""
        if self._state is None:
            self._state = {}
        return self._state

    def __repr__(self) -> str:
        return (f"<HandlerContext {self.topic}/{self.group} id={self.message.id!r} "
                f"attempts={self.attempts}>")


# The rest of the chain, as ``handle`` receives it.
Next = Callable[  # unasync: Next = Callable[[HandlerContext], Any]
    [AsyncHandlerContext], "Awaitable[Any]"]  # unasync: drop


class AsyncMiddleware(Protocol):
    """The middleware protocol (see the module). Subclass it to inherit the defaults:
    ``handle`` calls the rest of the chain, ``outcome`` does nothing."""

    async def handle(self, ctx: AsyncHandlerContext, call_next: Next) -> Any:
        """Handle ``ctx``: return ``await call_next(ctx)``, or short-circuit."""
        return await call_next(ctx)

    def outcome(self, ctx: AsyncHandlerContext, outcome: Outcome) -> float | None:
        """See how the loop settled ``ctx.message``; seconds to stop receiving, or
        ``None``."""
        return None



def ctx_fields(ctx: AsyncHandlerContext) -> dict[str, Any]:
    """The structured fields of a log record about ``ctx``'s message (topic, group, id,
    and the trace of its ``process`` span or else of the current span; see
    :mod:`mqkit._logfields`)."""
    state = ctx._state
    span = None if state is None else state.get(SPAN_KEY)
    return log_fields(ctx.topic, ctx.group, ctx.message.id, span=span)

def check_middleware(middleware: object) -> tuple[AsyncMiddleware, ...]:
    """``middleware`` as a tuple, each entry checked; a :class:`ConfigurationError`
    naming ``middleware[i]`` for one that is not a middleware of this face."""
    if middleware is None:
        return ()
    if isinstance(middleware, str | bytes) or not hasattr(middleware, "__iter__"):
        raise ConfigurationError(
            f"middleware must be a list of middleware objects, got "
            f"{type(middleware).__name__}")
    items = tuple(middleware)
    for i, item in enumerate(items):
        handle = getattr(item, "handle", None)
        outcome = getattr(item, "outcome", None)
        name = type(item).__name__
        if isinstance(item, type) or not callable(handle) or not callable(outcome):
            raise ConfigurationError(
                f"middleware[{i}] is a {name}, not a middleware (it needs handle(ctx, "
                "call_next) and outcome(ctx, outcome); subclass mqkit.aio.Middleware, "
                "or pass an instance, not the class)")
        if inspect.iscoroutinefunction(handle) is not _ASYNC:
            raise ConfigurationError(
                f"middleware[{i}]: {name}.handle must be {_HANDLE_KIND} here; use the "
                "classes of mqkit.aio.middleware, or subclass mqkit.aio.Middleware")
    return items


def build_chain(middleware: Sequence[AsyncMiddleware],
                handler: Callable[[Any], Any]) -> Next:
    """The call that runs ``middleware`` (first outermost), then ``handler(ctx.value)``."""

    call: Next
    if _ASYNC and inspect.iscoroutinefunction(handler):
        # a coroutine function's coroutine is handed up as it is: one frame less
        call = lambda ctx: handler(ctx.value)  # noqa: E731
    else:
        async def terminal(ctx: AsyncHandlerContext) -> Any:
            return await call_handler(handler, ctx.value)

        call = terminal
    for item in reversed(middleware):
        call = _link(item, call)
    return call


def _link(item: AsyncMiddleware, call_next: Next) -> Next:
    handle = item.handle
    return lambda ctx: handle(ctx, call_next)


def outcome_hooks(middleware: Sequence[AsyncMiddleware]) -> tuple[AsyncMiddleware, ...]:
    """The middleware whose ``outcome`` is its own (not the protocol's no-op default):
    the only ones :func:`report_outcomes` needs to call, so that a chain without any
    costs the loop no outcome records at all."""
    default = AsyncMiddleware.outcome
    return tuple(m for m in middleware if getattr(type(m), "outcome", None) is not default)


def report_outcomes(middleware: Sequence[AsyncMiddleware],
                    outcomes: Sequence[tuple[AsyncHandlerContext, Outcome]]) -> float:
    """Call every ``outcome`` hook; the longest pause asked for (0: none)."""
    pause = 0.0
    for ctx, outcome in outcomes:
        for item in middleware:
            try:
                wanted = item.outcome(ctx, outcome)
            except Exception:
                log.exception("mqkit: middleware %s failed in outcome()",
                              type(item).__name__, extra=ctx_fields(ctx))
                continue
            if isinstance(wanted, int | float) and wanted > pause:
                pause = float(wanted)
    return pause


def _message_key(ctx: AsyncHandlerContext) -> str | None:
    ident = ctx.message.id or ctx.message.broker_id
    return None if ident is None else f"{ctx.topic}/{ctx.group}/{ident}"


class AsyncIdempotent(AsyncMiddleware):
    """Idempotent consumer: a message whose id this (topic, group) already handled
    within ``ttl`` seconds is acked without calling the handler.

    ``store`` remembers the ids (default: a :class:`~mqkit.middleware.MemoryStore`, this
    process only); ``key(ctx)`` makes the store key (default ``"topic/group/id"``, the
    message id, else the broker's id; ``None``: handle it, nothing remembered). The id is
    recorded only after the handler returned (and did not nack or reject the message
    itself). **Crash window**: if the process dies after the handler returned and before
    the record is written, the broker redelivers and the handler runs again; the same
    if the record fails (logged). This makes duplicates rare, not impossible: delivery
    stays at-least-once. A store that fails when asked whether an id was seen fails the
    message (it is retried). Stores that block run on a worker thread on the asyncio
    face. ``duplicates`` counts the messages skipped.
    """

    def __init__(self, store: IdempotencyStore | None = None, *, ttl: float = 86_400.0,
                 key: Callable[[AsyncHandlerContext], str | None] | None = None) -> None:
        if store is None:
            store = MemoryStore()
        elif not isinstance(store, IdempotencyStore):
            raise ConfigurationError(
                f"store must have seen(key), record(key, ttl) and blocking (a MemoryStore, "
                f"RedisStore or DBAPIStore), got {type(store).__name__}")
        if key is not None and not callable(key):
            raise ConfigurationError(f"key must be callable, got {type(key).__name__}")
        self.store = store
        self.ttl = check_seconds("ttl", ttl, positive=True)
        self.key = key or _message_key
        self.duplicates = 0

    async def _store(self, func: Callable[..., Any], *args: Any) -> Any:
        if self.store.blocking:
            return await run_blocking(func, *args)
        return func(*args)

    async def handle(self, ctx: AsyncHandlerContext, call_next: Next) -> Any:
        key = self.key(ctx)
        if key is None:
            return await call_next(ctx)
        if await self._store(self.store.seen, key):
            self.duplicates += 1
            ctx.state["duplicate"] = True
            log.info("mqkit: %s on %s/%s was handled already; acked without handling",
                     ctx.message.id, ctx.topic, ctx.group, extra=ctx_fields(ctx))
            return None
        result = await call_next(ctx)
        if ctx.message.decision in (None, ACK):
            try:
                await self._store(self.store.record, key, self.ttl)
            except Exception as exc:
                log.warning("mqkit: could not record %s as handled (%s: %s); a redelivery "
                            "would be handled again", key, type(exc).__name__, exc,
                            extra=ctx_fields(ctx))
        return result


class AsyncTimeLimit(AsyncMiddleware):
    """A handler (with the middleware inside this one) running past ``seconds`` fails
    with :class:`~mqkit.Timeout`: the message is retried like any failure.

    On the asyncio face the handler's coroutine is cancelled. On the blocking face a
    thread cannot be stopped: the handler runs on a thread of its own, the message is
    failed when the time is up, and the late call runs on with its result ignored (a
    settle it tries then raises, the loop having decided first); the retried message
    may meanwhile be handled again. A plain-function handler of the App (run on a
    worker thread) is likewise left to finish in the background.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = check_seconds("seconds", seconds, positive=True)

    async def handle(self, ctx: AsyncHandlerContext, call_next: Next) -> Any:
        return await call_with_timeout(lambda: call_next(ctx), self.seconds)


class AsyncCircuitBreaker(AsyncMiddleware):
    """After ``threshold`` consecutive failures, stop handling for ``cooldown`` seconds.

    A failure is the rest of the chain raising (a :class:`~mqkit.PermanentFailure`, a bad
    message rather than a failing dependency, does not count; neither does a release).
    Once open: the messages already received are released without using an attempt,
    and the loop stops receiving for the rest of the cool-down (the ``outcome`` hook
    asks for the pause). Then half-open: one message is handled, the others received
    meanwhile are released; its success closes the circuit, its failure opens it
    again. ``state`` is ``"closed"``, ``"open"`` or ``"half-open"``. On an
    at-most-once backend the messages received while open are dropped (logged).
    """

    def __init__(self, threshold: int = 5, cooldown: float = 30.0, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.breaker = BreakerState(threshold, cooldown, clock=clock)

    @property
    def state(self) -> str:
        return self.breaker.state

    async def handle(self, ctx: AsyncHandlerContext, call_next: Next) -> Any:
        breaker = self.breaker
        if not breaker.admit():
            raise ReleaseMessage(f"circuit open for {ctx.topic}/{ctx.group}")
        try:
            result = await call_next(ctx)
        except (ReleaseMessage, PermanentFailure):
            breaker.neutral()
            raise
        except Exception:
            breaker.failure()
            raise
        except BaseException:  # cancelled: says nothing about the handler
            breaker.neutral()
            raise
        breaker.success()
        return result

    def outcome(self, ctx: AsyncHandlerContext, outcome: Outcome) -> float | None:
        return self.breaker.remaining() or None
