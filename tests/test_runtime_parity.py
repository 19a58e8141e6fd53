"""The two runtimes (mqkit/aio/_runtime.py, mqkit/_sync/_runtime.py) stay twins.

They cannot be generated from each other (tasks against threads), so this keeps them
from drifting: the same names, the same methods with the same parameters (``async def``
against ``def``), and the same behaviour where they drifted before: a tick or a flush
that raises something other than an mqkit error does not end the ticker or the flusher.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time

import pytest

from mqkit._sync import _runtime as sync_rt
from mqkit.aio import _runtime as aio_rt


def test_the_same_names() -> None:
    assert sorted(aio_rt.__all__) == sorted(sync_rt.__all__)


@pytest.mark.parametrize("name", ["Event", "HandlerPool", "Ticker", "Flusher",
                                  "call_handler", "check_handler", "open_driver"])
def test_the_same_methods_and_parameters(name: str) -> None:
    a, s = getattr(aio_rt, name), getattr(sync_rt, name)
    if inspect.isfunction(a):
        assert list(inspect.signature(a).parameters) == list(inspect.signature(s).parameters)
        return
    public = {n for n in vars(a) if not n.startswith("_") or n == "__init__"}
    public_s = {n for n in vars(s) if not n.startswith("_") or n == "__init__"}
    # The blocking Event adds wait(timeout): threads block on it, tasks await elsewhere.
    assert public - public_s == set(), f"{name}: only the asyncio face has {public - public_s}"
    for method in public:
        pa = list(inspect.signature(getattr(a, method)).parameters)
        ps = list(inspect.signature(getattr(s, method)).parameters)
        assert pa == ps, f"{name}.{method}: {pa} != {ps}"


def test_a_failing_tick_does_not_end_either_ticker() -> None:
    calls = []

    def tick() -> None:
        calls.append(1)
        raise RuntimeError("not an mqkit error")

    ticker = sync_rt.Ticker(0.01, tick)
    ticker.start()
    time.sleep(0.2)
    ticker.stop()
    assert len(calls) >= 3

    async def main() -> int:
        acalls = []

        async def atick() -> None:
            acalls.append(1)
            raise RuntimeError("not an mqkit error")

        aticker = aio_rt.Ticker(0.01, atick)
        aticker.start()
        await asyncio.sleep(0.2)
        await aticker.stop()
        return len(acalls)

    assert asyncio.run(main()) >= 3


def test_a_failing_flush_does_not_end_either_flusher() -> None:
    runs = []
    ran = threading.Event()

    def flush() -> float | None:
        runs.append(1)
        ran.set()
        raise RuntimeError("not an mqkit error")

    flusher = sync_rt.Flusher(0.0, flush)
    for _ in range(3):
        ran.clear()
        flusher.wake(now=True)
        assert ran.wait(2)
    flusher.stop()
    assert len(runs) == 3

    async def main() -> tuple[int, list[str]]:
        aruns = []
        seen: list[str] = []
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, ctx: seen.append(str(ctx.get("message"))))

        async def aflush() -> float | None:
            aruns.append(1)
            raise RuntimeError("not an mqkit error")

        aflusher = aio_rt.Flusher(0.0, aflush)
        for _ in range(3):
            aflusher.wake(now=True)
            for _ in range(50):
                await asyncio.sleep(0.01)
                if aflusher._task is None:
                    break
        await aflusher.stop()
        return len(aruns), seen

    count, unhandled = asyncio.run(main())
    assert count == 3
    assert unhandled == []  # no "Task exception was never retrieved"
