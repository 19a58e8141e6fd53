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

from ..driver import AdapterPlugin, AsyncDriver, ConnectParams
from ._bridge import ThreadedDriver

__all__ = ["Event", "Lock", "Ticker", "call_handler", "monotonic", "open_driver", "run_all",
           "sleep"]

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


async def call_handler(handler: Callable[[Any], Any], arg: Any) -> Any:
    """Call ``handler(arg)``; await the result when the handler is a coroutine function."""
    result = handler(arg)
    if inspect.isawaitable(result):
        result = await result
    return result


async def run_all(calls: Sequence[Callable[[], Awaitable[T]]], concurrency: int) -> list[T]:
    """Run ``calls`` with at most ``concurrency`` at a time; results in call order."""
    if concurrency <= 1 or len(calls) <= 1:
        return [await call() for call in calls]
    gate = asyncio.Semaphore(concurrency)

    async def gated(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    return list(await asyncio.gather(*(gated(c) for c in calls)))


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
            await self._tick()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None


async def open_driver(plugin: AdapterPlugin, params: ConnectParams) -> AsyncDriver:
    """The plugin's asyncio driver, or its blocking driver behind worker threads."""
    if plugin.connect_async is not None:
        return await plugin.connect_async(params)
    assert plugin.connect is not None
    return await ThreadedDriver.open(plugin.connect, params)
