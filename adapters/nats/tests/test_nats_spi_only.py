"""The NATS adapter depends on mqkit's driver SPI only (issue #21 item 1).

Importing a driver must not load the portable layer (either face, the connect machinery,
the adapter registry): the static check names the offending import; the dynamic one
imports every module of the adapter in a fresh interpreter and reads ``sys.modules``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import mqkit_nats

PACKAGE = Path(mqkit_nats.__file__).parent
PORTABLE = ("mqkit.aio", "mqkit._sync", "mqkit._connect", "mqkit._registry", "mqkit.memory")
PROBE = """
import importlib, json, pkgutil, sys
import {pkg}
for info in pkgutil.iter_modules({pkg}.__path__):
    importlib.import_module("{pkg}." + info.name)
print(json.dumps([sorted(sys.modules), sorted(vars(sys.modules["mqkit"]))]))
"""


def _mqkit_imports(path: Path) -> list[str]:
    """``file:line module`` for every import of mqkit other than ``mqkit.driver``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                else [])
        out += [f"{path.name}:{node.lineno} {m}" for m in mods
                if m.split(".")[0] == "mqkit" and not m.startswith("mqkit.driver")]
    return out


def test_modules_import_only_the_driver_spi() -> None:
    offending = [hit for path in sorted(PACKAGE.glob("*.py")) for hit in _mqkit_imports(path)]
    assert offending == []


def test_importing_the_adapter_does_not_load_the_portable_layer() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE.format(pkg="mqkit_nats")],
                          capture_output=True, text=True, check=True, timeout=60)
    modules, names = json.loads(done.stdout)
    assert "mqkit_nats._driver" in modules  # the probe did import the whole adapter
    assert [m for m in modules if m.startswith(PORTABLE)] == []
    assert {"Client", "connect", "aio"}.isdisjoint(names)
