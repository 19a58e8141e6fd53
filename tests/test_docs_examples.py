"""Every ```python block in README.md and docs/*.md runs on memory:// (docs stay true).

Fragments that cannot run alone are fenced as ```py instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _blocks() -> list[tuple[str, str]]:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for i, code in enumerate(BLOCK.findall(path.read_text())):
            if "mqkit_mybackend" not in code:
                found.append((f"{path.relative_to(ROOT)}#{i}", code))
    return found


@pytest.mark.parametrize("name, code", _blocks(), ids=[n for n, _ in _blocks()])
def test_doc_block_runs(name: str, code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MQKIT_URL", f"memory://docs-{abs(hash(name))}")
    exec(compile(code, name, "exec"), {"__name__": "__main__"})
