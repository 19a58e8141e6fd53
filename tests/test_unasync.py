"""scripts/unasync.py: the token-aware rewrite and its command line."""

from __future__ import annotations

import ast
import importlib.util
import shutil
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("unasync", ROOT / "scripts" / "unasync.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["unasync"] = module
    spec.loader.exec_module(module)
    return module


unasync = _load()


def _body(source: str) -> str:
    """The generated text without its header line."""
    out: str = unasync.transform(textwrap.dedent(source), "mqkit/aio/_x.py")
    return out.split("\n", 1)[1]


def test_code_loses_async_and_await() -> None:
    out = _body("""
        class AsyncThing:
            async def __aenter__(self) -> AsyncThing:
                async with self.lock:
                    async for item in self.items():
                        await self.handle(item)
                return await self.done()
    """)
    assert out == textwrap.dedent("""
        class Thing:
            def __enter__(self) -> Thing:
                with self.lock:
                    for item in self.items():
                        self.handle(item)
                return self.done()
    """)


def test_prose_in_strings_keeps_await() -> None:
    out = _body('''
        def f() -> None:
            """Opens on ``await``; await it first. Uses AsyncConsumer and ``async with``."""
            raise MQError("not connected yet; await it or use it in an "
                          "async with block first")
    ''')
    assert '"""Opens on ``await``; await it first. Uses Consumer and ``with``."""' in out
    assert '"not connected yet; await it or use it in an "' in out
    assert '"with block first"' in out


def test_code_spans_and_examples_in_strings_lose_await() -> None:
    out = _body('''
        """Call ``await consumer.receive()`` or ``async with client:``.

            >>> await producer.send(b"x")
        """
    ''')
    assert "``consumer.receive()`` or ``with client:``" in out
    assert '>>> producer.send(b"x")' in out
    assert "await" not in out


def test_face_notes_name_the_source_line() -> None:
    source = 'x = 1\ny = "await it"\nz = "``await consumer.receive()``"\n'
    _, notes = unasync.transform_notes(source, "mqkit/aio/_x.py")
    assert [(n.origin, n.line) for n in notes] == [("mqkit/aio/_x.py", 2)]
    assert "mqkit/aio/_x.py:2: face note" in str(notes[0])


def test_fstring_fields_are_code() -> None:
    out = _body('''
        async def f() -> str:
            return f"await {await g()} {{await}}"
    ''')
    assert 'return f"await {g()} {{await}}"' in out


def test_directives_are_comments_not_text() -> None:
    out = _body('''
        """A docstring line ending in # unasync: drop stays."""
        import collections.abc  # unasync: drop
        pass  # unasync: client.open()
    ''')
    assert '"""A docstring line ending in # unasync: drop stays."""' in out
    assert "collections" not in out
    assert "client.open()\n" in out and "pass" not in out


def test_comments_are_prose() -> None:
    out = _body("""
        x = 1  # await the AsyncDriver here
    """)
    assert "x = 1  # await the Driver here" in out


def test_a_comment_line_directive_is_a_line_of_the_blocking_face_alone() -> None:
    out = _body("""
        async def f(conn):
            x = await conn.read(timeout=INF)  # unasync: drop
            # unasync: x = conn.read()
                # unasync: deeper()
            return x
    """)
    assert out == "\ndef f(conn):\n    x = conn.read()\n        deeper()\n    return x\n"


_REDIS = """
    import redis.asyncio
    from redis.asyncio.retry import Retry


    async def f(client: redis.asyncio.Redis, p: redis.asyncio.client.Pipeline) -> None:
        \"\"\"Closes a ``redis.asyncio.Redis`` (``aclose``).\"\"\"
        await client.aclose()
"""


def test_a_trees_own_renames_apply_under_its_path_only() -> None:
    out = unasync.transform(textwrap.dedent(_REDIS), "adapters/redis/mqkit_redis/_x.py",
                            "adapters/redis/mqkit_redis/_y.py")
    assert "import redis\nfrom redis.retry import Retry\n" in out
    assert "def f(client: redis.Redis, p: redis.client.Pipeline) -> None:" in out
    assert '"""Closes a ``redis.Redis`` (``close``)."""' in out
    assert "client.close()" in out and "asyncio" not in out and "aclose" not in out
    core = _body(_REDIS)  # the same text in mqkit/aio: only async/await go
    assert "redis.asyncio.Redis" in core and "client.aclose()" in core


def test_the_redis_tree_renames_are_listed() -> None:
    rules = unasync.renames("adapters/redis/mqkit_redis/_aio.py")
    assert [p.pattern for p, _ in rules] == [r"\bredis\.asyncio\b", r"\baclose\b"]
    assert unasync.renames("mqkit/aio/_client.py") == []


def test_a_long_header_is_wrapped_within_the_line_length() -> None:
    origin = "adapters/longer_backend/mqkit_longer_backend/_aio.py"
    out = unasync.transform("x = 1\n", origin, origin.replace("_aio", "_driver"))
    head = out.split("\n")[:3]
    assert head[0] == f"# GENERATED from {origin} by scripts/unasync.py:"
    assert head[1] == "# do not edit; edit the source."
    assert all(len(line) <= unasync.LINE_LENGTH for line in head)
    short = unasync.transform("x = 1\n", "mqkit/aio/_x.py")
    assert short.startswith(unasync.HEADER.format(origin="mqkit/aio/_x.py"))


_TRIGGERS = ("``", ">>>", "Async", "mqkit.aio", "async def", "async with", "async for",
             "__a", "{", "}")


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
       .filter(lambda s: not any(t in s for t in _TRIGGERS)))
def test_a_string_without_names_or_code_is_kept_exactly(text: str) -> None:
    out = _body(f"VALUE = {text!r}\n")
    tree = ast.parse(out)
    [assign] = tree.body
    assert isinstance(assign, ast.Assign) and isinstance(assign.value, ast.Constant)
    assert assign.value.value == text


@pytest.mark.parametrize(("src", "dst"), sorted(unasync.PAIRS.items()))
def test_generated_faces_have_no_async_code(src: str, dst: str) -> None:
    tree = ast.parse(unasync.transform((ROOT / src).read_text(), src))
    bad = [type(n).__name__ for n in ast.walk(tree)
           if isinstance(n, ast.Await | ast.AsyncFunctionDef | ast.AsyncWith | ast.AsyncFor)]
    assert bad == [], dst


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the sources and generated files, with one generated file stale."""
    for src, dst in unasync.PAIRS.items():
        for rel in (src, dst):
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / rel, tmp_path / rel)
    (tmp_path / "mqkit/_sync/_admin.py").write_text("stale\n")
    return tmp_path


def test_help_writes_nothing(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        unasync.main(["--help", "--root", str(tree)])
    assert exc.value.code == 0
    assert "--check" in capsys.readouterr().out
    assert (tree / "mqkit/_sync/_admin.py").read_text() == "stale\n"


def test_unknown_argument_is_a_usage_error_and_writes_nothing(tree: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        unasync.main(["--chekc", "--root", str(tree)])
    assert exc.value.code == 2
    assert (tree / "mqkit/_sync/_admin.py").read_text() == "stale\n"


def test_check_reports_stale_and_writes_nothing(tree: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert unasync.main(["--check", "--root", str(tree)]) == 1
    assert "mqkit/_sync/_admin.py" in capsys.readouterr().err
    assert (tree / "mqkit/_sync/_admin.py").read_text() == "stale\n"


def test_diff_shows_and_writes_nothing(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert unasync.main(["--diff", "--root", str(tree)]) == 1
    out = capsys.readouterr().out
    assert "--- a/mqkit/_sync/_admin.py" in out and "-stale" in out
    assert (tree / "mqkit/_sync/_admin.py").read_text() == "stale\n"


def test_generate_then_check_is_clean(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert unasync.main(["--root", str(tree)]) == 0
    assert "(1 changed)" in capsys.readouterr().out
    assert unasync.main(["--check", "--root", str(tree)]) == 0
    assert (tree / "mqkit/_sync/_admin.py").read_text().startswith("# GENERATED from")


def test_strict_fails_on_face_notes(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tree / "mqkit/aio/_admin.py"
    text = source.read_text() + '\nNOTE = "await it"\n'
    source.write_text(text)
    line = text.count("\n")
    assert unasync.main(["--root", str(tree)]) == 0
    assert f"mqkit/aio/_admin.py:{line}: face note" in capsys.readouterr().err
    assert unasync.main(["--check", "--strict", "--root", str(tree)]) == 1
    assert unasync.main(["--check", "--root", str(tree)]) == 0  # notes alone: not stale
