"""The contract suite gates cases on capabilities and harness abilities, never on names."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract_tests._env import (
    CREDENTIALS,
    HARNESS_PREFIX,
    RESTART,
    UNREACHABLE,
    UNSUPPORTED_PREFIX,
    Env,
)
from contract_tests.conftest import _entry, parse_contract_urls

SUITE = Path(__file__).resolve().parent.parent / "contract_tests"


def _env(url: str = "thirdparty://x", handle: object = None, *, required: bool = False) -> Env:
    return Env("thirdparty", "async", url, handle, required=required)


def test_without_a_handle_restart_is_a_harness_skip() -> None:
    with pytest.raises(pytest.skip.Exception) as info:
        _env().require_harness(RESTART)
    assert str(info.value).startswith(f"{HARNESS_PREFIX}thirdparty: this harness cannot restart")


def test_a_required_backend_without_a_handle_fails() -> None:
    with pytest.raises(pytest.fail.Exception, match="MQKIT_REQUIRE_BACKENDS names thirdparty"):
        _env(required=True).require_harness(RESTART)
    dead_handle = SimpleNamespace(can_inject_faults=False)
    with pytest.raises(pytest.fail.Exception):
        _env(handle=dead_handle, required=True).require_harness(RESTART)


def test_credentials_stay_a_skip_even_when_required() -> None:
    with pytest.raises(pytest.skip.Exception):
        _env(required=True).require_harness(CREDENTIALS)


def test_abilities_present() -> None:
    env = Env("x", "sync", "redis://user:pw@localhost:6379/0", SimpleNamespace(
        can_inject_faults=True), required=True, auth_url="redis://u:p@localhost:6379")
    env.require_harness(RESTART, UNREACHABLE, CREDENTIALS)  # no skip, no failure
    assert env.unreachable_url() == "redis://user:pw@127.0.0.1:9/0"


def test_unreachable_needs_a_host_and_port() -> None:
    assert _env("memory://contract-abc").unreachable_url() is None
    with pytest.raises(pytest.skip.Exception, match=HARNESS_PREFIX):
        _env("memory://contract-abc").require_harness(UNREACHABLE)
    with pytest.raises(ValueError, match="unknown harness ability"):
        _env().require_harness("teleport")


def _report(outcome: str, longrepr: object = None) -> SimpleNamespace:
    return SimpleNamespace(failed=outcome == "failed", skipped=outcome == "skipped",
                           longrepr=longrepr)


def test_report_keeps_harness_apart_from_unsupported() -> None:
    def skipped(reason: str) -> dict[str, str]:
        return _entry(_report("skipped", ("f.py", 1, f"Skipped: {reason}")))  # type: ignore[arg-type]

    assert skipped(f"{HARNESS_PREFIX}x: cannot") == {"status": "harness",
                                                     "reason": "x: cannot"}
    assert skipped(f"{UNSUPPORTED_PREFIX}x declares nack unsupported") == {
        "status": "unsupported", "reason": "x declares nack unsupported"}
    assert skipped("no redis broker")["status"] == "skipped"
    assert _entry(_report("passed")) == {"status": "passed"}  # type: ignore[arg-type]


def test_no_case_decides_on_a_backend_name() -> None:
    """``env.backend`` is for messages only: never compared, never looked up."""
    offenders = []
    for path in sorted(SUITE.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                names = [node.left, *node.comparators]
                if any(isinstance(n, ast.Attribute) and n.attr == "backend" for n in names):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_contract_urls_keep_commas_inside_a_url() -> None:
    raw = "a=kafka://h1:9092,h2:9092, b=nats://n1:4222,n2:4222?x=1,c=thirdparty://x"
    assert parse_contract_urls(raw) == {"a": "kafka://h1:9092,h2:9092",
                                        "b": "nats://n1:4222,n2:4222?x=1",
                                        "c": "thirdparty://x"}
    assert parse_contract_urls("") == {} and parse_contract_urls("  ") == {}


@pytest.mark.parametrize("raw", ["a", "a=", "=kafka://h", "a=h1:9092",
                                 "a=kafka://h,a=kafka://g"])
def test_contract_urls_refuse_a_bad_entry_by_name(raw: str) -> None:
    with pytest.raises(pytest.UsageError, match="MQKIT_CONTRACT_URLS"):
        parse_contract_urls(raw)


@given(st.text(alphabet="abc:/@=,?&%", max_size=30), st.text(min_size=1, max_size=12))
def test_contract_url_errors_never_show_a_password(shape: str, secret: str) -> None:
    raw = shape.replace("@", f":{secret}@")
    try:
        parse_contract_urls(raw)
    except pytest.UsageError as exc:
        assert f":{secret}@" not in str(exc)
