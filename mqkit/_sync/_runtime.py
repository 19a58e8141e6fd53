"""Concurrency primitives of the blocking face (threads); twin of ``aio/_runtime.py``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..driver import AdapterPlugin, ConnectParams, Driver
from ._bridge import LoopThreadDriver

__all__ = ["Event", "Lock", "Ticker", "call_handler", "monotonic", "open_driver", "run_all",
           "sleep"]

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


def call_handler(handler: Callable[[Any], Any], arg: Any) -> Any:
    """Call ``handler(arg)``."""
    return handler(arg)


def run_all(calls: Sequence[Callable[[], T]], concurrency: int) -> list[T]:
    """Run ``calls`` on at most ``concurrency`` threads; results in call order."""
    if concurrency <= 1 or len(calls) <= 1:
        return [call() for call in calls]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(calls)),
                            thread_name_prefix="mqkit-handler") as pool:
        return list(pool.map(lambda call: call(), calls))


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


def open_driver(plugin: AdapterPlugin, params: ConnectParams) -> Driver:
    """The plugin's blocking driver, or its asyncio driver on a loop thread."""
    if plugin.connect is not None:
        return plugin.connect(params)
    assert plugin.connect_async is not None
    return LoopThreadDriver.open(plugin.connect_async, params)
