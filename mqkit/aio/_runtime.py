"""Concurrency primitives of the asyncio face.

``mqkit/_sync/_runtime.py`` has the same names for threads; the generated blocking code
imports those instead, so the portable logic is written once.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from .._errors import ConfigurationError, Timeout
from ..driver import AdapterPlugin, AsyncDriver, ConnectParams
from ._bridge import ThreadedDriver

__all__ = ["AwaitableResult", "Event", "Flusher", "Lock", "Ticker", "call_handler",
           "call_with_timeout", "check_handler", "HandlerPool", "monotonic", "open_driver",
           "run_blocking", "sleep"]

T = TypeVar("T")
Lock = asyncio.Lock
sleep = asyncio.sleep
monotonic = time.monotonic


class Event:
    """An event whose ``wait`` takes a timeout and says whether it was set."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True


class AwaitableResult(ConfigurationError):
    """A handler of the blocking face returned an awaitable (it is a coroutine function).

    Raised by the blocking face's ``call_handler`` only; here for the shared code's
    ``except`` clauses.
    """


def check_handler(handler: object) -> None:
    """Refuse a handler that is not callable. Any callable runs on the asyncio face:
    coroutine functions are awaited, plain functions are called on the loop."""
    if not callable(handler):
        raise ConfigurationError(
            f"handler must be callable, got {type(handler).__name__}")


async def call_handler(handler: Callable[[Any], Any], arg: Any) -> Any:
    """Call ``handler(arg)``; await the result when the handler is a coroutine function."""
    result = handler(arg)
    if inspect.isawaitable(result):
        result = await result
    return result


async def call_with_timeout(call: Callable[[], Awaitable[T]], seconds: float) -> T:
    """``await call()``, cancelled after ``seconds``: then :class:`~mqkit.Timeout`."""
    try:
        return await asyncio.wait_for(call(), seconds)
    except asyncio.TimeoutError:
        raise Timeout(f"handler did not finish within {seconds:g} s (cancelled)") from None


async def run_blocking(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` on a worker thread (a blocking call kept off the event loop)."""
    return await asyncio.to_thread(func, *args)


class HandlerPool:
    """Runs batches of calls with at most ``concurrency`` at a time (the blocking face's
    twin keeps threads for its lifetime; here ``close`` has nothing to end)."""

    def __init__(self, concurrency: int) -> None:
        self._concurrency = concurrency

    async def run_all(self, calls: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
        """Results of ``calls`` in call order."""
        if self._concurrency <= 1 or len(calls) <= 1:
            return [await call() for call in calls]
        gate = asyncio.Semaphore(self._concurrency)

        async def gated(call: Callable[[], Awaitable[T]]) -> T:
            async with gate:
                return await call()

        return list(await asyncio.gather(*(gated(c) for c in calls)))

    async def close(self) -> None:
        return None


class Ticker:
    """Calls an async function every ``interval`` seconds until stopped."""

    def __init__(self, interval: float, tick: Callable[[], Awaitable[None]]) -> None:
        self._interval = interval
        self._tick = tick
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._tick()
            except Exception:  # the tick logs its own failures; keep ticking
                pass

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None


class Flusher:
    """Runs ``flush`` in the background, ``interval`` seconds after a ``wake``.

    ``wake(now=True)`` runs it at once. ``flush`` returns ``None`` when nothing is left
    to do, or the seconds to wait before it is run again (the broker was unavailable).
    One task at most, created on the first wake after an idle spell: an idle consumer
    costs nothing. Must be woken from the event loop's thread.
    """

    def __init__(self, interval: float,
                 flush: Callable[[], Awaitable[float | None]]) -> None:
        self._interval = interval
        self._flush = flush
        self._task: asyncio.Task[None] | None = None
        self._nap: asyncio.Future[None] | None = None
        self._urgent = False

    def wake(self, now: bool = False) -> None:
        if now:
            self._urgent = True
            nap = self._nap
            if nap is not None and not nap.done():
                nap.set_result(None)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not self._urgent and self._interval > 0:
                    nap = self._nap = loop.create_future()
                    timer = loop.call_later(self._interval, _resolve, nap)
                    try:
                        await nap
                    finally:
                        timer.cancel()
                        self._nap = None
                self._urgent = False
                try:
                    again = await self._flush()
                except Exception:  # the flush records its own failures; keep serving
                    again = None
                if again is None:
                    return
                await asyncio.sleep(again)
        finally:
            self._task = None

    async def stop(self) -> None:
        """Cancel a pending run (the caller flushes what is left itself)."""
        task = self._task
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def open_driver(plugin: AdapterPlugin, params: ConnectParams) -> AsyncDriver:
    """The plugin's asyncio driver, or its blocking driver behind worker threads."""
    if plugin.connect_async is not None:
        return await plugin.connect_async(params)
    assert plugin.connect is not None
    return await ThreadedDriver.open(plugin.connect, params)
