"""The wheel's package list (pyproject's ``[tool.setuptools] packages`` and
``package-dir``) matches the tree, and the contract suite installs as ``mqkit_contract``."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def _setuptools() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        tomllib: Any = pytest.importorskip("tomli")
    with (REPO / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["tool"]["setuptools"]


def _on_disk(name: str, folder: Path) -> set[str]:
    return {name + "".join(f".{p}" for p in init.parent.relative_to(folder).parts)
            for init in folder.rglob("__init__.py") if "tests" not in init.parts}


def test_every_package_of_the_tree_is_listed_and_none_else() -> None:
    config = _setuptools()
    dirs = dict(config["package-dir"])
    expected = _on_disk("mqkit", REPO / "mqkit")
    for name, folder in dirs.items():
        expected |= _on_disk(name, REPO / folder)
    assert sorted(config["packages"]) == sorted(expected)


def test_the_suite_installs_under_mqkit_contract_not_contract_tests() -> None:
    config = _setuptools()
    dirs = dict(config["package-dir"])
    assert dirs["mqkit_contract"] == "contract_tests"
    assert not any(p.split(".")[0] == "contract_tests"
                   for p in config["packages"])


def test_the_suite_never_imports_itself_by_its_folder_name() -> None:
    absolute = re.compile(r"^\s*(?:from|import)\s+contract_tests\b", re.MULTILINE)
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "contract_tests").rglob("*.py")
                 if absolute.search(p.read_text(encoding="utf-8"))]
    assert not offenders, f"import the suite's own modules relatively: {offenders}"
