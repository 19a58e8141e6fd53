"""Run one async-written case on the blocking face, for real.

Cases are written once against the asyncio API. On the sync face they get a proxy of the
*blocking* client: a call whose asyncio twin is a coroutine function runs the blocking
method on a worker thread and is awaited; a plain method is called directly; mqkit
objects coming back are wrapped again. Handlers given to ``run`` are async functions;
the proxy hands the blocking consumer a plain function that runs them on the test's loop.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import mqkit
import mqkit.aio

_TWINS: dict[type, type] = {
    mqkit.Client: mqkit.aio.Client,
    mqkit.Producer: mqkit.aio.Producer,
    mqkit.Consumer: mqkit.aio.Consumer,
    mqkit.Admin: mqkit.aio.Admin,
    mqkit.ReceivedMessage: mqkit.aio.ReceivedMessage,
}


def wrap(value: Any, loop: asyncio.AbstractEventLoop) -> Any:
    """``value`` as the case sees it: mqkit objects proxied, lists element-wise."""
    if type(value) in _TWINS:
        return SyncProxy(value, loop)
    if isinstance(value, list):
        return [wrap(v, loop) for v in value]
    return value


def unwrap(value: Any) -> Any:
    if isinstance(value, SyncProxy):
        return value._target
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


class SyncProxy:
    """An asyncio-looking view of a blocking mqkit object."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target
        self._loop = loop
        self._twin = _TWINS[type(target)]

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value) or isinstance(value, type):
            return wrap(value, self._loop)
        twin = getattr(self._twin, name, None)
        if twin is not None and inspect.iscoroutinefunction(twin):
            async def blocking(*args: Any, **kwargs: Any) -> Any:
                args = tuple(self._handler(a) if name == "run" and i == 0 else unwrap(a)
                             for i, a in enumerate(args))
                kwargs = {k: unwrap(v) for k, v in kwargs.items()}
                return wrap(await asyncio.to_thread(value, *args, **kwargs), self._loop)
            return blocking

        def plain(*args: Any, **kwargs: Any) -> Any:
            return wrap(value(*[unwrap(a) for a in args],
                              **{k: unwrap(v) for k, v in kwargs.items()}), self._loop)
        return plain

    def _handler(self, handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
        loop = self._loop

        def run_on_loop(msg: Any) -> Any:
            result = handler(wrap(msg, loop))
            if inspect.isawaitable(result):
                return asyncio.run_coroutine_threadsafe(_await(result), loop).result()
            return result
        return run_on_loop

    async def __aenter__(self) -> SyncProxy:
        await asyncio.to_thread(self._target.__enter__)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self._target.__exit__, None, None, None)

    def __aiter__(self) -> _SyncIteration:
        return _SyncIteration(iter(self._target), self._loop)

    def __repr__(self) -> str:
        return repr(self._target)


class _SyncIteration:
    """An ``async for`` over a blocking iterator, each step on a worker thread; ending
    the loop closes the blocking iterator (as ``break`` does on the blocking face)."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target
        self._loop = loop

    def __aiter__(self) -> _SyncIteration:
        return self

    async def __anext__(self) -> Any:
        def step() -> Any:
            try:
                return next(self._target)
            except StopIteration:
                return StopIteration
        item = await asyncio.to_thread(step)
        if item is StopIteration:
            raise StopAsyncIteration
        return wrap(item, self._loop)

    async def aclose(self) -> None:
        close = getattr(self._target, "close", None)
        if close is not None:
            await asyncio.to_thread(close)

    def __del__(self) -> None:
        close = getattr(self._target, "close", None)
        if close is not None:
            close()


async def _await(awaitable: Any) -> Any:
    return await awaitable
