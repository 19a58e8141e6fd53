"""A handler's registration: its checked options, how its argument is made, its counters.

Everything here is decided once, when ``@app.handler(...)`` runs, so a bad argument is a
:class:`~mqkit.ConfigurationError` naming it at import time of the user's module, never a
surprise on the first message.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import ConfigurationError
from .._errors import PayloadError as _PayloadErrorBase
from .._payloads import Decoder, decoder_for
from .._retry import PermanentFailure, RetryPolicy
from .._run import RunStats
from .._validation import check_int, check_name, check_seconds
from ..aio._received import AsyncReceivedMessage

__all__ = ["HandlerSpec", "HandlerStats", "PayloadError", "inspect_handler"]


class PayloadError(PermanentFailure, _PayloadErrorBase):
    """A body that did not decode as the handler's type, raised to the run loop.

    Both a :class:`~mqkit.PermanentFailure` (so ``consumer.run`` dead-letters the message
    at once, no retries) and a :class:`~mqkit.PayloadError` (so whoever looks at the
    outcome, such as a later middleware, sees what it was). The dead-letter reason reads
    ``PayloadError: body does not decode as Order: Order.qty: expected int, got 'x'``.
    """

    def __init__(self, type_name: str, reason: str) -> None:
        _PayloadErrorBase.__init__(self, type_name, reason)


@dataclass
class HandlerStats:
    """What one handler did since the app started running.

    ``decoded``: bodies decoded into the handler's type (a raw-message handler decodes
    nothing); ``payload_errors``: bodies that did not decode (each dead-lettered at once,
    the handler not called); ``handled``: calls that returned (and whose return value, if
    any, was published to the output topic); ``failed``: calls that raised or whose output
    could not be published (the message is retried); ``published``: return values sent to
    the output topic. ``run`` is the consumer loop's own :class:`~mqkit.RunStats` once the
    loop returned (``None`` while it runs).
    """

    decoded: int = 0
    handled: int = 0
    failed: int = 0
    payload_errors: int = 0
    published: int = 0
    run: RunStats | None = None


@dataclass
class HandlerSpec:
    """One registered handler: where it reads, how it is called, what it counted."""

    func: Callable[..., Any]
    topic: str
    group: str
    retry: RetryPolicy
    concurrency: int
    prefetch: int | None
    lease: float | None
    output: str | None
    is_async: bool
    raw: bool  # the parameter is the received message itself
    decoder: Decoder[Any] | None  # None when raw
    middleware: tuple[Any, ...] = ()  # checked mqkit.aio middleware, inside the App's
    stats: HandlerStats = field(default_factory=HandlerStats)

    @property
    def name(self) -> str:
        """``module.qualname`` of the function, for logs and errors."""
        func = self.func
        module = getattr(func, "__module__", None) or "?"
        qualname = getattr(func, "__qualname__", None) or type(func).__qualname__
        return f"{module}.{qualname}"


def _is_coroutine_function(func: object) -> bool:
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - an object with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def _raw_types() -> tuple[type, ...]:
    from .._sync._received import ReceivedMessage  # light: no asyncio, no adapters

    return (AsyncReceivedMessage, ReceivedMessage)


def _describe(func: object) -> str:
    return getattr(func, "__qualname__", None) or type(func).__qualname__


def _payload_parameter(func: Callable[..., Any]) -> tuple[str, Any]:
    """The one parameter's name and resolved annotation (``bytes`` when unannotated)."""
    what = _describe(func)
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"handler {what}: cannot read its signature ({exc})") from None
    params = list(signature.parameters.values())
    variadic = [p.name for p in params
                if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
    if variadic:
        raise ConfigurationError(
            f"handler {what} takes exactly one payload parameter; *args/**kwargs "
            f"({', '.join(variadic)}) are not allowed")
    if len(params) != 1:
        names = ", ".join(p.name for p in params) or "none"
        raise ConfigurationError(
            f"handler {what} takes exactly one payload parameter (the decoded message), "
            f"got {len(params)} ({names})")
    param = params[0]
    if param.kind is inspect.Parameter.KEYWORD_ONLY:
        raise ConfigurationError(
            f"handler {what}: its payload parameter {param.name!r} must be positional")
    if param.annotation is inspect.Parameter.empty:
        return param.name, bytes
    target = func
    while isinstance(target, functools.partial):
        target = target.func
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        target = getattr(target, "__call__", target)  # noqa: B004
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception as exc:  # NameError for an unresolvable forward reference, ...
        raise ConfigurationError(
            f"handler {what}: the annotation of {param.name!r} does not resolve: "
            f"{type(exc).__name__}: {exc}") from None
    return param.name, hints.get(param.name, param.annotation)


def inspect_handler(func: object) -> tuple[bool, bool, Decoder[Any] | None]:
    """``(is_async, raw, decoder)`` for a handler, or a ``ConfigurationError``."""
    if not callable(func):
        raise ConfigurationError(f"handler must be callable, got {type(func).__name__}")
    name, annotation = _payload_parameter(func)
    is_async = _is_coroutine_function(func)
    if isinstance(annotation, type) and issubclass(annotation, _raw_types()):
        return is_async, True, None
    try:
        decoder = decoder_for(annotation)
    except ConfigurationError as exc:
        raise ConfigurationError(f"handler {_describe(func)}, parameter {name!r}: {exc}"
                                 ) from None
    return is_async, False, decoder


def check_options(topic: object, group: object, *, retry: object, concurrency: object,
                  prefetch: object, lease: object, output: object) -> Mapping[str, Any]:
    """The checked registration options, each refused by name."""
    checked_topic = check_name("topic", topic)
    if group is None:
        raise ConfigurationError(
            f"handler for topic {checked_topic!r}: group is required (the durable "
            "subscription the handler reads, e.g. group='billing')")
    checked_group = check_name("group", group)
    if retry is None:
        retry = RetryPolicy()
    elif not isinstance(retry, RetryPolicy):
        raise ConfigurationError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
    return {
        "topic": checked_topic,
        "group": checked_group,
        "retry": retry,
        "concurrency": check_int("concurrency", concurrency, 1),
        "prefetch": None if prefetch is None else check_int("prefetch", prefetch, 1),
        "lease": None if lease is None else check_seconds("lease", lease, positive=True),
        "output": None if output is None else check_name("output", output),
    }


class BlockingMessage:
    """The received message as a plain-function handler sees it (on a worker thread).

    Reads (``body``, ``headers``, ``id``, ``delivery_count``, ``decode()``...) are the
    message's own; ``ack``/``nack``/``reject``/``extend_lease`` block until the event
    loop has run them, like the blocking face's :class:`mqkit.ReceivedMessage`.
    """

    __slots__ = ("_loop", "_msg")

    def __init__(self, msg: AsyncReceivedMessage, loop: asyncio.AbstractEventLoop) -> None:
        self._msg = msg
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        return getattr(self._msg, name)

    def _run(self, coro: typing.Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def ack(self, *, wait: bool = False) -> None:
        """Processing succeeded (see :meth:`mqkit.ReceivedMessage.ack`)."""
        self._run(self._msg.ack(wait=wait))

    def nack(self, delay: float | None = None, *, wait: bool = False) -> None:
        """Processing failed: deliver again, after ``delay`` seconds if given."""
        self._run(self._msg.nack(delay, wait=wait))

    def reject(self, *, wait: bool = False) -> None:
        """Drop the message for good."""
        self._run(self._msg.reject(wait=wait))

    def extend_lease(self, seconds: float) -> None:
        """Keep the message from other consumers for ``seconds`` more."""
        self._run(self._msg.extend_lease(seconds))

    def __repr__(self) -> str:
        return repr(self._msg)
