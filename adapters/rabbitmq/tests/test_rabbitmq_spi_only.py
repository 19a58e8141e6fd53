"""The RabbitMQ adapter depends on mqkit's driver SPI only (issue #21 item 1).

Importing a driver must not load the portable layer (either face, the connect machinery,
the adapter registry): the static check names the offending import (``file:line
module``); the dynamic one imports every module of the adapter in a fresh interpreter
and reads ``sys.modules``. Both take the adapter package as a parameter, so the check
itself does not depend on which adapter it reads.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ADAPTERS = ("mqkit_rabbitmq",)
PORTABLE = ("mqkit.aio", "mqkit._sync", "mqkit._connect", "mqkit._registry", "mqkit.memory")
# The probe runs on this process's sys.path, so it imports the same tree the test reads
# (an editable install may point at another checkout); it reports which file it got.
PROBE = """
import importlib, json, pkgutil, sys
sys.path[:0] = {path!r}
import {pkg}
for info in pkgutil.walk_packages({pkg}.__path__, "{pkg}."):
    importlib.import_module(info.name)
print(json.dumps([{pkg}.__file__, sorted(sys.modules), sorted(vars(sys.modules["mqkit"]))]))
"""


def _package_dir(pkg: str) -> Path:
    return Path(importlib.import_module(pkg).__file__ or "").parent


def _mqkit_imports(path: Path) -> list[str]:
    """``file:line module`` for every import of mqkit other than ``mqkit.driver``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            mods = [node.module or ""]
        else:
            continue
        out += [f"{path.name}:{node.lineno} {m}" for m in mods
                if m.split(".")[0] == "mqkit" and m.split(".")[:2] != ["mqkit", "driver"]]
    return out


@pytest.mark.parametrize("pkg", ADAPTERS)
def test_modules_import_only_the_driver_spi(pkg: str) -> None:
    paths = sorted(_package_dir(pkg).rglob("*.py"))
    assert paths  # the check did read the adapter's modules
    offending = [hit for path in paths for hit in _mqkit_imports(path)]
    assert offending == [], f"{pkg} imports mqkit outside mqkit.driver: {offending}"


@pytest.mark.parametrize("pkg", ADAPTERS)
def test_importing_the_adapter_does_not_load_the_portable_layer(pkg: str) -> None:
    probe = PROBE.format(pkg=pkg, path=[p for p in sys.path if p])
    done = subprocess.run([sys.executable, "-c", probe],
                          capture_output=True, text=True, check=True, timeout=60)
    file, modules, names = json.loads(done.stdout)
    assert Path(file).parent == _package_dir(pkg)  # the same adapter the test reads
    expected = {f"{pkg}.{p.stem}" for p in _package_dir(pkg).glob("_*.py")} - {
        f"{pkg}.__init__"}
    assert expected and expected <= set(modules)  # the probe did import the whole adapter
    assert [m for m in modules if m.startswith(PORTABLE)] == []
    assert {"Client", "connect", "aio"}.isdisjoint(names)
