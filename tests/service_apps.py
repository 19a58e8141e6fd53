"""A service module for the ``mqkit run`` process tests, written into a test's tmp_path.

``memory://`` lives in one process, so the app feeds itself: its startup hook publishes
``$N`` numbered messages to its own topic, and every step is written as a line to
``$OUT`` (``importing PID`` while ``$IMPORT_SLEEP`` holds the import, ``start PID``,
``begin I PID``, ``end I PID``, ``shutdown PID``, ``url URL``), which the test reads.
``$SLEEP`` is how long a handler takes; ``$FAIL`` makes the startup hook raise
``PermissionDenied`` with that text.
"""

from __future__ import annotations

from pathlib import Path

APP_SOURCE = '''
import asyncio
import os

import mqkit
from mqkit.service import App

OUT = os.environ["OUT"]
PID = os.getpid()
if os.environ.get("IMPORT_SLEEP"):  # hold the import: a signal arrives while it runs
    with open(OUT, "a") as f:
        f.write(f"importing {PID}\\n")
    import time
    time.sleep(float(os.environ["IMPORT_SLEEP"]))

app = App(os.environ.get("APP_URL") or None)


def note(line):
    with open(OUT, "a") as f:
        f.write(line + "\\n")


@app.on_startup
async def start():
    note(f"start {PID}")
    note(f"url {app._client.url}")
    if os.environ.get("FAIL"):
        raise mqkit.PermissionDenied(os.environ["FAIL"])
    for i in range(int(os.environ.get("N", "1"))):
        await app.publish("jobs", {"n": i})


@app.on_shutdown
def stop():
    note(f"shutdown {PID}")


@app.handler("jobs", group="workers")
async def job(j: dict) -> None:
    note(f"begin {j['n']} {PID}")
    await asyncio.sleep(float(os.environ.get("SLEEP", "0")))
    note(f"end {j['n']} {PID}")


def make():
    return app


def make_wrong():
    return 42


NUMBER = 42
'''


def write_app(directory: Path, name: str = "svc") -> Path:
    """Write the service module as ``directory/NAME.py``; return its path."""
    path = directory / f"{name}.py"
    path.write_text(APP_SOURCE, encoding="utf-8")
    return path


def lines(out: Path, word: str) -> list[list[str]]:
    """The lines of ``out`` starting with ``word``, split (the word dropped)."""
    if not out.exists():
        return []
    return [line.split()[1:] for line in out.read_text(encoding="utf-8").splitlines()
            if line.split()[:1] == [word]]
