"""scripts/seed_bugs.py: every seeded bug still applies to the memory driver, a bug whose
anchor drifted stops the measure, and the seeded copy runs the contract suite as a backend
of its own (clean: passes; bugged: caught, with the case and behaviour named)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("seed_bugs", ROOT / "scripts" / "seed_bugs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["seed_bugs"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


seed_bugs = _load()


def test_bug_names_are_unique_and_each_bug_edits_something() -> None:
    names = [bug.name for bug in seed_bugs.BUGS]
    assert len(names) == len(set(names)) >= 12
    assert all(bug.edits and bug.what for bug in seed_bugs.BUGS)


@pytest.mark.parametrize("bug", seed_bugs.BUGS, ids=lambda bug: bug.name)
def test_every_bug_applies_and_compiles(tmp_path: Path, bug: Any) -> None:
    seed_bugs.seed(tmp_path, bug)
    package = tmp_path / seed_bugs.PACKAGE
    changed: set[str] = set()
    for path in package.glob("*.py"):
        text = path.read_text()
        compile(text, str(path), "exec")
        assert "from .." not in text  # mqkit's own modules, imported absolutely
        original = (seed_bugs.SOURCE / path.name).read_text()
        if seed_bugs._absolute_imports(original) != text:
            changed.add(path.name)
    assert {e.file for e in bug.edits} <= changed
    entry_points = (tmp_path / f"{seed_bugs.PACKAGE}-0.dist-info" / "entry_points.txt")
    assert f"{seed_bugs.BACKEND} = {seed_bugs.PACKAGE}:plugin" in entry_points.read_text()


def test_an_anchor_that_drifted_stops_the_measure(tmp_path: Path) -> None:
    drifted = seed_bugs.Bug("drifted", "nothing", (
        seed_bugs.Edit("_state.py", "text the driver does not hold", "x"),))
    with pytest.raises(SystemExit, match=r"drifted: _state\.py holds 0 copies"):
        seed_bugs.seed(tmp_path, drifted)


def test_the_copy_passes_and_a_seeded_bug_is_caught_by_its_case() -> None:
    clean = seed_bugs.run(None, 1, "c01", 120.0)
    assert clean.code == 0 and not clean.caught, clean.tail
    by_name = {bug.name: bug for bug in seed_bugs.BUGS}
    bugged = seed_bugs.run(by_name["headers-dropped"], 1, "c01", 120.0)
    assert bugged.caught, bugged.tail
    assert bugged.cases == ["test_c01_c08_exact_id_set_with_body_key_headers[seeded-sync]"]
    assert bugged.numbers == [1, 8]
    assert "| headers-dropped |" in seed_bugs.table([bugged])
