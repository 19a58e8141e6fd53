"""Every shipped adapter depends on mqkit's driver SPI only (issue #21 item 1).

Importing a driver must not load the portable layer (either face, the connect machinery,
the adapter registry): the static check names the offending import (``file:line
module``); the dynamic one imports every module of the adapter in a fresh interpreter
and reads ``sys.modules``. One test per adapter package, so a failure names the adapter.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ADAPTERS = ("mqkit_kafka", "mqkit_nats", "mqkit_rabbitmq", "mqkit_redis", "mqkit_sqs")
PORTABLE = ("mqkit.aio", "mqkit._sync", "mqkit._connect", "mqkit._registry", "mqkit.memory")
PROBE = """
import importlib, json, pkgutil, sys
import {pkg}
for info in pkgutil.walk_packages({pkg}.__path__, "{pkg}."):
    importlib.import_module(info.name)
print(json.dumps([sorted(sys.modules), sorted(vars(sys.modules["mqkit"])),
                  [{pkg}.__file__, sys.modules["mqkit"].__file__]]))
"""
STATIC = ADAPTERS


def _package_dir(pkg: str) -> Path:
    return Path(importlib.import_module(pkg).__file__ or "").parent


def _mqkit_imports(path: Path) -> list[str]:
    """``file:line module`` for every import of mqkit other than ``mqkit.driver`` itself."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            mods = [node.module or ""]
        else:
            continue
        out += [f"{path.name}:{node.lineno} {m}" for m in mods
                if m.split(".")[0] == "mqkit" and m != "mqkit.driver"]
    return out


def test_the_static_check_names_an_import_of_mqkit(tmp_path: Path) -> None:
    module = tmp_path / "_m.py"
    module.write_text("import mqkit.driver\nfrom mqkit.driver import URL\n"
                      "import mqkit\nfrom mqkit import aio\nfrom mqkit._url import URL\n"
                      "from . import mqkit\nimport mqkit_kafka\n"
                      "from mqkit.driver._sync import Driver\n"
                      "def f() -> None:\n    from mqkit import Client\n")
    assert _mqkit_imports(module) == ["_m.py:3 mqkit", "_m.py:4 mqkit", "_m.py:5 mqkit._url",
                                      "_m.py:8 mqkit.driver._sync", "_m.py:10 mqkit"]


@pytest.mark.parametrize("pkg", STATIC)
def test_modules_import_only_the_driver_spi(pkg: str) -> None:
    package = _package_dir(pkg)
    assert len(list(package.rglob("*.py"))) > 3  # found the adapter's modules
    offending = [hit for path in sorted(package.rglob("*.py")) for hit in _mqkit_imports(path)]
    assert offending == []


@pytest.mark.parametrize("pkg", ADAPTERS)
def test_importing_the_adapter_does_not_load_the_portable_layer(pkg: str) -> None:
    # The fresh interpreter imports the files this test sees (this checkout), not an
    # installed copy elsewhere: the two roots go first on its path, and it says so.
    package, core = _package_dir(pkg), _package_dir("mqkit")
    roots = [str(package.parent), str(core.parent), os.environ.get("PYTHONPATH", "")]
    path = os.pathsep.join(r for r in roots if r)
    done = subprocess.run([sys.executable, "-c", PROBE.format(pkg=pkg)],
                          capture_output=True, text=True, check=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": path})
    modules, names, files = json.loads(done.stdout)
    assert files == [str(package / "__init__.py"), str(core / "__init__.py")]
    assert f"{pkg}._driver" in modules  # the probe did import the whole adapter
    assert [m for m in modules if m.startswith(PORTABLE)] == []
    assert {"Client", "connect", "aio"}.isdisjoint(names)
