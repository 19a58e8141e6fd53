"""nats-py's private API is used in one module only, and is still what it expects.

``mqkit_nats._private`` is checked against nats-py ``PINNED`` (pyproject's pin). When
nats-py moves, these fail naming what changed: re-check ``_private`` against the new
version, then move ``PINNED`` and the pin together.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import re
from pathlib import Path

import mqkit_nats
from mqkit_nats._private import PINNED, REQUIRED
from nats.aio.client import Client as NATS

PACKAGE = Path(mqkit_nats.__file__).parent
PYPROJECT = PACKAGE.parents[2] / "pyproject.toml"
# A private attribute of a nats-py object the driver holds (its own objects are self._...).
_PRIVATE_USE = re.compile(r"\b(?:nc|js|msg|m|sub|exc|info)\._[a-z]\w*")


def test_the_private_client_coroutines_are_there() -> None:
    version = importlib.metadata.version("nats-py")
    for name, params in REQUIRED.items():
        attr = getattr(NATS, name, None)
        assert inspect.iscoroutinefunction(attr), (
            f"nats-py {version}: nats.aio.client.Client.{name} is gone or not a coroutine "
            "(mqkit_nats._private needs it)")
        missing = [p for p in params if p not in inspect.signature(attr).parameters]
        assert not missing, f"nats-py {version}: Client.{name} has no parameter(s) {missing}"


def test_the_pinned_nats_py_is_installed_and_pinned() -> None:
    assert importlib.metadata.version("nats-py") == PINNED, (
        f"nats-py {importlib.metadata.version('nats-py')} installed, mqkit_nats._private "
        f"was checked against {PINNED}")
    assert PYPROJECT.read_text().count(f'"nats-py=={PINNED}"') == 2  # the nats and all extras


def test_no_other_module_reaches_into_nats_py() -> None:
    hits = [f"{path.name}:{n}: {m.group()}" for path in sorted(PACKAGE.glob("*.py"))
            if path.name != "_private.py"
            for n, line in enumerate(path.read_text().splitlines(), 1)
            for m in _PRIVATE_USE.finditer(line)]
    assert hits == []
