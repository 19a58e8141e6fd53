"""The programs in examples/ run on memory:// (CI also runs them on every real broker)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("example", sorted(p.name for p in (ROOT / "examples").glob("*.py")))
def test_example_runs(example: str) -> None:
    env = {**os.environ, "MQKIT_URL": "memory://"}
    result = subprocess.run([sys.executable, str(ROOT / "examples" / example)], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
