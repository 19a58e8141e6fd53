"""The public namespaces: ``mqkit`` (lazy), ``mqkit.aio`` (the same shared names), logging."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mqkit
import mqkit.aio

ROOT = Path(__file__).resolve().parent.parent

# The names each face defines for itself; every other public name is one shared object.
FACE_NAMES = {"Admin", "Client", "Consumer", "HandlerContext", "Middleware", "Producer",
              "ReceivedMessage", "connect"}
# The same value in both faces, defined in each generated client module.
EQUAL_NAMES = {"DEAD_LETTER_GROUP"}


def _python(code: str) -> str:
    """Run ``code`` in a fresh interpreter (nothing of mqkit imported yet); its stdout."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, check=True, cwd=ROOT).stdout


def test_every_public_name_imports_in_a_fresh_interpreter() -> None:
    out = _python("""
        import mqkit
        missing = []
        for name in mqkit.__all__:
            ns = {}
            try:
                exec(f"from mqkit import {name}", ns)
            except ImportError as exc:
                missing.append(f"{name}: {exc}")
        print(missing)
        from mqkit import *  # noqa: F403
        print(sorted(set(mqkit.__all__) - set(globals())))
    """)
    assert out.splitlines() == ["[]", "[]"]


def test_import_mqkit_loads_nothing_heavy() -> None:
    out = _python("""
        import sys
        import mqkit
        print(sorted(m for m in sys.modules if m.startswith("mqkit")))
        print(sorted(m for m in ("asyncio", "ssl", "importlib.metadata", "concurrent.futures",
                                 "json", "dataclasses") if m in sys.modules))
    """)
    assert out.splitlines() == ["['mqkit']", "[]"]


def test_names_load_on_first_use_and_stay() -> None:
    out = _python("""
        import sys
        import mqkit
        codec = mqkit.JSON
        print("mqkit._codecs" in sys.modules, "mqkit._sync._client" in sys.modules)
        print(mqkit.__dict__["JSON"] is codec)
        client = mqkit.connect("memory://ns")
        print(type(client).__module__)
        client.close()
    """)
    assert out.splitlines() == ["True False", "True", "mqkit._sync._client"]


def test_lazy_table_type_checking_imports_and_all_agree() -> None:
    init = ROOT / "mqkit" / "__init__.py"
    tree = ast.parse(init.read_text())
    typed: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom)
                for alias in stmt.names:
                    typed[alias.asname or alias.name] = "." * stmt.level + (stmt.module or "")
    lazy = mqkit._LAZY
    assert typed == lazy
    assert sorted(mqkit.__all__) == sorted(lazy)
    assert len(set(mqkit.__all__)) == len(mqkit.__all__)


def test_dir_lists_every_public_name() -> None:
    assert set(mqkit.__all__) <= set(dir(mqkit))
    assert "__version__" in dir(mqkit)


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'mqkit' has no attribute 'conect'"):
        mqkit.conect  # type: ignore[attr-defined]  # noqa: B018
    assert not hasattr(mqkit, "_not_a_thing")


def test_subpackages_are_reachable_after_import_mqkit() -> None:
    out = _python("""
        import mqkit
        print(mqkit.aio.__name__, mqkit.driver.__name__, mqkit.memory.__name__)
    """)
    assert out.split() == ["mqkit.aio", "mqkit.driver", "mqkit.memory"]


def test_aio_has_the_same_names() -> None:
    assert sorted(mqkit.aio.__all__) == sorted(mqkit.__all__)


@pytest.mark.parametrize("name", sorted(set(mqkit.__all__) - FACE_NAMES - EQUAL_NAMES))
def test_aio_shares_the_very_object(name: str) -> None:
    assert getattr(mqkit.aio, name) is getattr(mqkit, name)


def test_aio_face_names_are_its_own() -> None:
    for name in FACE_NAMES:
        sync, aio = getattr(mqkit, name), getattr(mqkit.aio, name)
        assert sync is not aio, name
        assert aio.__module__.startswith("mqkit.aio."), name
    for name in EQUAL_NAMES:
        assert getattr(mqkit.aio, name) == getattr(mqkit, name)


def test_an_aio_error_is_caught_as_the_mqkit_error() -> None:
    with pytest.raises(mqkit.ConfigurationError):
        raise mqkit.aio.ConfigurationError("x")


def test_library_warnings_stay_quiet_without_logging_config() -> None:
    """No handler configured: the NullHandler keeps Python's last-resort stderr handler out."""
    result = subprocess.run(
        [sys.executable, "-c", "import logging, mqkit\n"
         "logging.getLogger('mqkit').warning('mqkit-warning')\n"
         "logging.getLogger('mqkit.redis').error('adapter-error')\n"],
        capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stderr == ""


def test_library_warnings_reach_a_configured_application() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import logging, mqkit\nlogging.basicConfig()\n"
         "logging.getLogger('mqkit.redis').warning('adapter-warning')\n"],
        capture_output=True, text=True, check=True, cwd=ROOT)
    assert "adapter-warning" in result.stderr


def test_mqkit_logger_has_a_null_handler() -> None:
    import logging

    handlers = logging.getLogger("mqkit").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_mypy_sees_every_name_and_still_rejects_typos(tmp_path: Path) -> None:
    """The TYPE_CHECKING imports give mypy the real types; the lazy ``__getattr__`` is
    hidden from it, so a misspelt name stays an error instead of becoming ``Any``."""
    program = tmp_path / "prog.py"
    program.write_text(textwrap.dedent("""
        import mqkit
        import mqkit.aio

        def f() -> None:
            policy: mqkit.RetryPolicy = mqkit.aio.RetryPolicy(max_attempts=3)
            reveal_type(mqkit.connect)
            reveal_type(policy)
            mqkit.conect("memory://")
    """))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--cache-dir", str(tmp_path / "cache"), str(program)],
        check=False, capture_output=True, text=True, cwd=ROOT)
    lines = result.stdout.splitlines()
    assert any('-> mqkit._sync._client.Client"' in line for line in lines), result.stdout
    assert any('Revealed type is "mqkit._retry.RetryPolicy"' in line for line in lines)
    assert any('has no attribute "conect"' in line for line in lines), result.stdout
    assert result.stdout.rstrip().endswith("Found 1 error in 1 file (checked 1 source file)")
