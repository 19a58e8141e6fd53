"""Concurrency primitives of the blocking face (threads); twin of ``aio/_runtime.py``."""

from __future__ import annotations

import contextvars
import inspect
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .._errors import ConfigurationError, Timeout
from ..driver import AdapterPlugin, ConnectParams, Driver
from ._bridge import LoopThreadDriver

__all__ = ["AwaitableResult", "Event", "Flusher", "Lock", "Ticker", "call_handler",
           "call_with_timeout", "check_handler", "HandlerPool", "monotonic", "open_driver",
           "run_blocking", "sleep"]

T = TypeVar("T")
Lock = threading.Lock
sleep = time.sleep
monotonic = time.monotonic


class Event:
    """An event whose ``wait`` takes a timeout and says whether it was set."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)


class AwaitableResult(ConfigurationError):
    """A handler of the blocking face returned an awaitable (it is a coroutine function
    or returns one); the blocking face cannot run it. Use ``mqkit.aio``."""


def _is_async(handler: object) -> bool:
    call = type(handler).__call__
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)


def check_handler(handler: object) -> None:
    """Refuse a handler the blocking face cannot run: not callable, or ``async def``."""
    if not callable(handler):
        raise ConfigurationError(
            f"handler must be callable, got {type(handler).__name__}")
    if _is_async(handler):
        raise ConfigurationError(
            f"handler {getattr(handler, '__qualname__', handler)!r} is a coroutine "
            "function: the blocking Consumer.run calls plain functions (use mqkit.aio "
            "for async handlers)")


def call_handler(handler: Callable[[Any], Any], arg: Any) -> Any:
    """Call ``handler(arg)``; raise :class:`AwaitableResult` if it returned an awaitable
    (which the blocking face could never run: the message would be acked unprocessed)."""
    result = handler(arg)
    if inspect.isawaitable(result):
        close = getattr(result, "close", None)
        if close is not None:
            close()  # no "never awaited" warning on top of the error
        raise AwaitableResult(
            f"handler {getattr(handler, '__qualname__', handler)!r} returned an awaitable: "
            "the blocking Consumer.run calls plain functions (use mqkit.aio)")
    return result


def call_with_timeout(call: Callable[[], T], seconds: float) -> T:
    """``call()`` on its own daemon thread, waited for up to ``seconds``: then
    :class:`~mqkit.Timeout`. A thread cannot be stopped: the late call runs on, and its
    result (or error) is ignored."""
    done = threading.Event()
    box: list[Any] = []
    context = contextvars.copy_context()

    def target() -> None:
        try:
            box.append((True, context.run(call)))
        except BaseException as exc:  # handed to the waiting thread
            box.append((False, exc))
        finally:
            done.set()

    threading.Thread(target=target, name="mqkit-timed-handler", daemon=True).start()
    if not done.wait(seconds):
        raise Timeout(f"handler did not finish within {seconds:g} s (still running on "
                      "its thread; its result will be ignored)")
    ok, value = box[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


def run_blocking(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)``: on this face a blocking call is just a call."""
    return func(*args)


class HandlerPool:
    """Runs batches of calls on at most ``concurrency`` threads, kept for its lifetime.

    One pool per ``run`` loop: its threads are started once, not per batch. ``close``
    waits for running calls and ends the threads.
    """

    def __init__(self, concurrency: int) -> None:
        self._concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None

    def run_all(self, calls: Sequence[Callable[[], T]]) -> list[T]:
        """Results of ``calls`` in call order."""
        if self._concurrency <= 1 or len(calls) <= 1:
            return [call() for call in calls]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self._concurrency,
                                            thread_name_prefix="mqkit-handler")
        return list(self._pool.map(lambda call: call(), calls))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class Ticker:
    """Calls a function every ``interval`` seconds on a daemon thread until stopped."""

    def __init__(self, interval: float, tick: Callable[[], None]) -> None:
        self._interval = interval
        self._tick = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="mqkit-ticker", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._tick()
            except Exception:  # the tick logs its own failures; keep ticking
                pass

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


class Flusher:
    """Runs ``flush`` on a daemon thread, ``interval`` seconds after a ``wake``.

    ``wake(now=True)`` runs it at once. ``flush`` returns ``None`` when nothing is left
    to do, or the seconds to wait before it is run again (the broker was unavailable).
    The thread starts on the first wake and ends on ``stop``. ``wake`` may be called
    from any thread; when a run is already due it costs one attribute read.
    """

    def __init__(self, interval: float, flush: Callable[[], float | None]) -> None:
        self._interval = interval
        self._flush = flush
        self._cond = threading.Condition(threading.Lock())
        self._due = False
        self._urgent = False
        self._stopped = False
        self._thread: threading.Thread | None = None

    def wake(self, now: bool = False) -> None:
        if self._due and not now:
            return
        with self._cond:
            if self._stopped:
                return
            self._due = True
            if now:
                self._urgent = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="mqkit-settler",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def _loop(self) -> None:
        cond = self._cond
        while True:
            with cond:
                cond.wait_for(lambda: self._due or self._stopped)
                if not self._urgent and not self._stopped:
                    cond.wait_for(lambda: self._urgent or self._stopped, self._interval)
                if self._stopped:
                    return
                self._due = self._urgent = False
            try:
                again = self._flush()
            except Exception:  # the flush records its own failures; keep serving
                again = None
            if again is not None:
                with cond:
                    cond.wait_for(lambda: self._stopped or self._urgent, again)
                    self._due = True

    def stop(self) -> None:
        """End the thread (the caller flushes what is left itself)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()


def open_driver(plugin: AdapterPlugin, params: ConnectParams) -> Driver:
    """The plugin's blocking driver, or its asyncio driver on a loop thread."""
    if plugin.connect is not None:
        return plugin.connect(params)
    assert plugin.connect_async is not None
    return LoopThreadDriver.open(plugin.connect_async, params)
