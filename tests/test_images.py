"""Pure pieces of scripts/images: the host's Debian source, recipe hashes, tags, env lines."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


def _load() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "scripts" / "images"
    loader = importlib.machinery.SourceFileLoader("mqkit_images", str(path))
    spec = importlib.util.spec_from_loader("mqkit_images", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


images = _load()

DEB822 = """Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
"""


def test_host_debian_deb822_takes_the_main_suite() -> None:
    assert images.host_debian(DEB822) == ("http://deb.debian.org/debian", "bookworm")


def test_host_debian_one_line_form_and_security_first() -> None:
    text = (
        "deb http://security.debian.org/debian-security trixie-security main\n"
        "deb [arch=amd64] http://mirror.example/debian/ trixie main contrib\n"
    )
    assert images.host_debian(text) == ("http://mirror.example/debian", "trixie")


def test_host_debian_https_only_falls_back() -> None:
    text = "deb https://deb.debian.org/debian bookworm main\n"
    assert images.host_debian(text) == (images.DEFAULT_MIRROR, images.DEFAULT_SUITE)


def test_recipe_hash_is_stable_and_sensitive() -> None:
    base = images.recipe_hash("FROM x\n", {"a": b"1", "b": b"2"}, "base:1")
    assert base == images.recipe_hash("FROM x\n", {"b": b"2", "a": b"1"}, "base:1")
    assert len(base) == 12
    assert base != images.recipe_hash("FROM x\n", {"a": b"1", "b": b"3"}, "base:1")
    assert base != images.recipe_hash("FROM x\n", {"a": b"1", "c": b"2"}, "base:1")
    assert base != images.recipe_hash("FROM y\n", {"a": b"1", "b": b"2"}, "base:1")
    assert base != images.recipe_hash("FROM x\n", {"a": b"1", "b": b"2"}, "base:2")
    # no ambiguity from concatenation
    assert images.recipe_hash("ab", {}, "") != images.recipe_hash("b", {}, "a")


@pytest.mark.parametrize("backend", ["rabbitmq", "redis", "nats"])
def test_recipes_are_local_and_from_the_base(backend: str) -> None:
    dockerfile, files = images.recipe(backend, "mqkit-local/debian-base:t")
    assert dockerfile.startswith("FROM mqkit-local/debian-base:t\n")
    assert "https://" not in dockerfile
    tag = images.image_tag(backend, images.recipe_hash(dockerfile, files, "b"))
    assert tag.startswith("mqkit-local/")


def test_env_lines_in_backend_order() -> None:
    tags = {"redis": "mqkit-local/redis:1", "kafka": "mqkit-local/kafka:2"}
    assert images.env_lines(tags) == [
        "export MQKIT_IMAGE_KAFKA=mqkit-local/kafka:2",
        "export MQKIT_IMAGE_REDIS=mqkit-local/redis:1",
    ]


def test_commands_print_to_stderr_so_build_output_stays_evaluable(
        capfd: pytest.CaptureFixture[str]) -> None:
    """``eval "$(scripts/images build)"`` evaluates stdout: a child's output (apt-get's
    "Selecting previously unselected package ...") must not land there."""
    import sys

    images.run([sys.executable, "-c", "print('Selecting previously unselected package x')"])
    out, err = capfd.readouterr()
    assert out == ""
    assert "Selecting previously" in err
