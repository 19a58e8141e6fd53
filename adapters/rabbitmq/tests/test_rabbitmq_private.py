"""pika's private API is used in one module only, and is still what it expects.

``mqkit_rabbitmq._private`` is checked against pika ``PINNED`` (pyproject's pin). When
pika moves, these fail naming what changed: re-check ``_private`` against the new
version, then move ``PINNED`` and the pin together.
"""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
from pathlib import Path
from unittest import mock

import mqkit_rabbitmq
import pika.channel
from mqkit_rabbitmq._private import CHANNEL_METHODS, PINNED, REQUIRED, underlying
from pika.adapters.blocking_connection import BlockingChannel

PACKAGE = Path(mqkit_rabbitmq.__file__).parent
PYPROJECT = PACKAGE.parents[2] / "pyproject.toml"
VERSION = importlib.metadata.version("pika")


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_blocking_channel_keeps_its_channel_in_the_private_attribute() -> None:
    impl = pika.channel.Channel(mock.Mock(), 1, lambda _channel: None)
    channel = BlockingChannel(impl, mock.Mock())
    assert getattr(channel, REQUIRED, None) is impl, (
        f"pika {VERSION}: BlockingChannel no longer keeps its pika.channel.Channel in "
        f"{REQUIRED!r} (mqkit_rabbitmq._private.underlying needs it)")
    assert underlying(channel) is impl


def test_the_underlying_channel_methods_take_the_parameters_used() -> None:
    for name, params in CHANNEL_METHODS.items():
        attr = getattr(pika.channel.Channel, name, None)
        assert callable(attr), (
            f"pika {VERSION}: pika.channel.Channel.{name} is gone "
            "(mqkit_rabbitmq._private needs it)")
        missing = [p for p in params if p not in inspect.signature(attr).parameters]
        assert not missing, (
            f"pika {VERSION}: pika.channel.Channel.{name} has no parameter(s) {missing}")


def test_the_pinned_pika_is_installed_and_pinned() -> None:
    assert VERSION == PINNED, (
        f"pika {VERSION} installed, mqkit_rabbitmq._private was checked against {PINNED}")
    assert PYPROJECT.read_text().count(f'"pika=={PINNED}"') == 2  # the rabbitmq and all extras


def _own_private_names(trees: list[ast.Module]) -> set[str]:
    """Private names the adapter defines itself: its functions, classes, module and class
    variables, and the attributes it assigns (``self._x = ...``)."""
    own: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                own.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                own.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                own.add(node.attr)
    return {name for name in own if _is_private(name)}


def _reaches(path: Path, tree: ast.Module, own: set[str]) -> list[str]:
    """``file:line .attr`` for each private attribute read here that the adapter does not
    define (so belongs to pika or another library), and any use of ``REQUIRED``."""
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            attr = node.attr
            on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
              and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)
              and isinstance(node.args[1].value, str)):
            attr, on_self = node.args[1].value, False
        else:
            continue
        if _is_private(attr) and (attr not in own or (attr == REQUIRED and not on_self)):
            hits.append(f"{path.name}:{node.lineno} .{attr}")
    return hits


def test_no_other_module_reaches_into_pika_objects() -> None:
    paths = sorted(PACKAGE.glob("*.py"))
    trees = [ast.parse(path.read_text(), str(path)) for path in paths]
    own = _own_private_names(trees)
    hits = [hit for path, tree in zip(paths, trees, strict=True) if path.name != "_private.py"
            for hit in _reaches(path, tree, own)]
    assert hits == [], f"private attributes of other objects outside _private.py: {hits}"
    # the check sees the one allowed use
    assert _reaches(PACKAGE / "_private.py", trees[paths.index(PACKAGE / "_private.py")],
                    own) == [f"_private.py:{_impl_line()} .{REQUIRED}"]


def _impl_line() -> int:
    lines = (PACKAGE / "_private.py").read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if f"channel.{REQUIRED}" in line)
