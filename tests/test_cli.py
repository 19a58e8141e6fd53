"""The ``mqkit`` command line on memory:// (and faulty:// for backends lacking a feature).

Commands run in-process through ``main``, so a named ``memory://`` broker keeps its state
between calls of one test (a shell user's commands each get an empty one).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mqkit
from mqkit import Support
from mqkit.cli import main
from mqkit.cli._commands import scrub

from .faulty import FAULTS


def _url() -> str:
    return f"memory://cli-{uuid.uuid4().hex[:8]}"


def _records(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.strip().splitlines()]


def _one_line_error(err: str) -> str:
    """The whole stderr, asserted to be one line with no traceback."""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.strip()


@pytest.fixture
def faults() -> Iterator[None]:
    FAULTS.reset()
    yield
    FAULTS.reset()


def test_send_topics_consume(capsys: pytest.CaptureFixture[str]) -> None:
    url = _url()
    assert main(["send", url, "orders", '{"id":1}', "--create", "--key", "k1",
                 "-H", "tenant=a"]) == 0
    sent_id = capsys.readouterr().out.strip()
    assert len(sent_id) == 32
    assert main(["topics", url]) == 0
    assert capsys.readouterr().out.split() == ["orders"]
    assert main(["consume", url, "orders", "--group", "g", "--earliest", "--timeout", "0.5"]) == 0
    [record] = _records(capsys.readouterr().out)
    assert record["id"] == sent_id and record["key"] == "k1"
    assert record["headers"] == {"tenant": "a"} and record["body"] == '{"id":1}'


def test_mqkit_url_is_the_default(capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    url = _url()
    monkeypatch.setenv("MQKIT_URL", url)
    # Two positionals without '://': TOPIC and BODY, not URL and TOPIC.
    assert main(["send", "orders", "hello", "--create"]) == 0
    assert main(["topics"]) == 0
    assert capsys.readouterr().out.split()[-1] == "orders"
    monkeypatch.delenv("MQKIT_URL")
    assert main(["topics", url]) == 0  # the same broker, named explicitly
    assert capsys.readouterr().out.split() == ["orders"]


def test_url_must_come_first(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["consume", "orders", _url(), "-g", "g"]) == 2
    err = _one_line_error(capsys.readouterr().err)
    assert "unexpected argument" in err and "the URL must come first" in err
    assert main(["create-group", _url(), "orders"]) == 2
    assert "missing GROUP" in _one_line_error(capsys.readouterr().err)


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mqkit {mqkit.__version__}"
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("send", "consume", "topics", "create-topic", "delete-topic",
                    "create-group", "delete-group", "purge", "stats", "capabilities",
                    "doctor", "demo"):
        assert f"  {command} " in out
        assert main([command, "--help"]) == 0
        assert capsys.readouterr().out.startswith(f"usage: mqkit {command} [URL]")


def test_version_matches_the_distribution() -> None:
    """pyproject reads the version from mqkit.__version__: one place to bump."""
    from pathlib import Path

    text = (Path(__file__).parent.parent / "pyproject.toml").read_text()
    assert '\ndynamic = ["version"]\n' in text and '\nversion = "' not in text
    assert '\n[tool.setuptools.dynamic]\nversion = { attr = "mqkit.__version__" }\n' in text


def test_peek_leaves_the_group_alone(capsys: pytest.CaptureFixture[str]) -> None:
    url = _url()
    assert main(["create-topic", url, "orders"]) == 0
    assert main(["create-group", url, "orders", "billing"]) == 0
    for n in range(3):
        assert main(["send", url, "orders", f"m{n}"]) == 0
    capsys.readouterr()
    for _ in range(2):  # peeking twice sees the same, first-delivery messages
        assert main(["consume", url, "orders", "--no-ack", "--max", "0",
                     "--timeout", "0.2"]) == 0
        records = _records(capsys.readouterr().out)
        assert [r["body"] for r in records] == ["m0", "m1", "m2"]
        assert {r["delivery_count"] for r in records} == {1}
    assert main(["topics", url, "--groups"]) == 0
    assert capsys.readouterr().out.strip() == "orders\tbilling"  # no scratch group left
    assert main(["consume", url, "orders", "-g", "billing", "--timeout", "0.2"]) == 0
    records = _records(capsys.readouterr().out)
    assert [r["body"] for r in records] == ["m0", "m1", "m2"]
    assert {r["delivery_count"] for r in records} == {1}
    assert main(["stats", url, "orders", "billing", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["depth"] == 0


def test_peek_max_stops(capsys: pytest.CaptureFixture[str]) -> None:
    url = _url()
    for n in range(5):
        assert main(["send", url, "orders", f"m{n}", "--create"]) == 0
    capsys.readouterr()
    assert main(["consume", url, "orders", "--no-ack", "--max", "2", "--timeout", "0.2"]) == 0
    assert [r["body"] for r in _records(capsys.readouterr().out)] == ["m0", "m1"]


def test_group_peek_gives_everything_back_uncounted(capsys: pytest.CaptureFixture[str]) -> None:
    url = _url()
    assert main(["create-topic", url, "orders"]) == 0
    assert main(["create-group", url, "orders", "billing"]) == 0
    for n in range(3):
        assert main(["send", url, "orders", f"m{n}"]) == 0
    capsys.readouterr()
    assert main(["consume", url, "orders", "-g", "billing", "--no-ack", "--max", "2",
                 "--timeout", "0.2"]) == 0
    assert [r["body"] for r in _records(capsys.readouterr().out)] == ["m0", "m1"]
    for _ in range(2):
        assert main(["consume", url, "orders", "-g", "billing", "--no-ack", "--max", "0",
                     "--timeout", "0.2"]) == 0
        records = _records(capsys.readouterr().out)
        assert [r["body"] for r in records] == ["m0", "m1", "m2"]
        assert {r["delivery_count"] for r in records} == {1}
    assert main(["stats", url, "orders", "billing", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["depth"] == 3
    assert main(["consume", url, "orders", "-g", "billing", "--timeout", "0.2"]) == 0
    records = _records(capsys.readouterr().out)
    assert [r["delivery_count"] for r in records] == [1, 1, 1]


def test_group_peek_needs_release(capsys: pytest.CaptureFixture[str], faults: None) -> None:
    FAULTS.caps["release"] = Support.UNSUPPORTED
    url = f"faulty://cli-{uuid.uuid4().hex[:8]}"
    assert main(["create-topic", url, "orders"]) == 0
    assert main(["create-group", url, "orders", "g"]) == 0
    assert main(["send", url, "orders", "x"]) == 0
    capsys.readouterr()
    assert main(["consume", url, "orders", "-g", "g", "--no-ack"]) == 1
    err = _one_line_error(capsys.readouterr().err)
    assert err.startswith("error: Unsupported: memory does not support release")
    assert "peek at the topic instead" in err
    assert main(["consume", url, "orders", "-g", "g", "--timeout", "0.2"]) == 0
    assert [r["delivery_count"] for r in _records(capsys.readouterr().out)] == [1]


def test_peek_needs_replay(capsys: pytest.CaptureFixture[str], faults: None) -> None:
    FAULTS.caps["replay"] = Support.UNSUPPORTED
    url = f"faulty://cli-{uuid.uuid4().hex[:8]}"
    assert main(["send", url, "orders", "x", "--create"]) == 0
    capsys.readouterr()
    assert main(["consume", url, "orders", "--no-ack"]) == 1
    err = _one_line_error(capsys.readouterr().err)
    assert err.startswith("error: Unsupported: memory does not support replay")
    assert "no peek without consuming" in err


def test_admin_commands(capsys: pytest.CaptureFixture[str]) -> None:
    url = _url()
    assert main(["create-topic", url, "orders"]) == 0
    assert main(["create-group", url, "orders", "billing"]) == 0
    for n in range(2):
        assert main(["send", url, "orders", f"m{n}"]) == 0
    assert main(["create-group", url, "orders", "audit", "--earliest"]) == 0
    capsys.readouterr()
    assert main(["stats", url, "orders", "billing"]) == 0
    assert capsys.readouterr().out.split() == ["depth", "2", "in_flight", "0"]
    assert main(["stats", url, "orders", "audit", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "topic": "orders", "group": "audit", "depth": 2, "in_flight": 0}
    assert main(["purge", url, "orders", "billing"]) == 0
    assert main(["stats", url, "orders", "billing", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["depth"] == 0
    assert main(["delete-group", url, "orders", "billing"]) == 0
    assert main(["topics", url, "--groups"]) == 0
    assert capsys.readouterr().out.strip() == "orders\taudit"
    assert main(["delete-topic", url, "orders"]) == 0
    assert main(["delete-topic", url, "orders"]) == 0  # missing: nothing to do
    assert main(["topics", url]) == 0
    assert capsys.readouterr().out == ""


def test_create_topic_options_reach_the_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["create-topic", _url(), "orders", "-o", "partitions=3"]) == 1
    err = _one_line_error(capsys.readouterr().err)
    assert err.startswith("error: ConfigurationError:") and "partitions" in err
    assert main(["create-topic", _url(), "orders", "-o", "partitions"]) == 2
    assert "option 'partitions' is not NAME=VALUE" in _one_line_error(capsys.readouterr().err)


def test_missing_admin_feature_is_a_clear_error(capsys: pytest.CaptureFixture[str],
                                                faults: None) -> None:
    FAULTS.caps.update(purge=Support.UNSUPPORTED, admin_stats=Support.UNSUPPORTED)
    url = f"faulty://cli-{uuid.uuid4().hex[:8]}"
    assert main(["create-topic", url, "orders"]) == 0
    assert main(["create-group", url, "orders", "g"]) == 0
    assert main(["purge", url, "orders", "g"]) == 1
    assert _one_line_error(capsys.readouterr().err) == \
        "error: Unsupported: memory does not support purge"
    assert main(["stats", url, "orders", "g"]) == 1
    assert _one_line_error(capsys.readouterr().err) == \
        "error: Unsupported: memory does not support admin_stats"


def test_memory_not_found_explains_the_broker_is_per_process(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send", _url(), "missing", "x"]) == 1
    err = _one_line_error(capsys.readouterr().err)
    assert err.startswith("error: NotFound: topic 'missing'")
    assert "each mqkit command starts with an empty broker" in err


def test_not_found_elsewhere_has_no_memory_hint(capsys: pytest.CaptureFixture[str],
                                                faults: None) -> None:
    assert main(["send", f"faulty://cli-{uuid.uuid4().hex[:8]}", "missing", "x"]) == 1
    err = _one_line_error(capsys.readouterr().err)
    assert err.startswith("error: NotFound:") and "empty broker" not in err


@pytest.mark.parametrize(("argv", "status", "needle"), [
    (["send", "URL", "t", "{bad", "--codec", "json"], 2, "BODY is not JSON (--codec json)"),
    (["send", "URL", "t", "x", "-H", "novalue"], 2, "header 'novalue' is not NAME=VALUE"),
    (["send", "URL", "t", "x", "--codec", "yaml"], 2, "invalid choice: 'yaml'"),
    (["consume", "URL", "t", "-g", "g", "--max", "-1"], 2, "--max must be 0 (no limit) or more"),
    (["consume", "URL", "t", "-g", "g", "--max", "x"], 2, "invalid int value: 'x'"),
    (["consume", "URL", "t", "-g", "g", "--timeout", "nan"], 2, "--timeout must be a finite"),
    (["consume", "URL", "t", "-g", "g", "--timeout", "-1"], 2, "--timeout must be a finite"),
    (["consume", "URL", "t", "--no-ack", "-g", "g"], 1, "group 'g' does not exist"),
    (["consume", "URL", "t"], 2, "--group is required"),
    (["consume", "URL"], 2, "missing TOPIC"),
    (["topics", "URL", "extra"], 2, "unexpected argument 'extra'"),
    (["topics", "URL", "--bogus"], 2, "unrecognized arguments: --bogus"),
    (["bogus"], 2, "unknown command 'bogus'"),
    ([], 2, "missing COMMAND"),
    (["send", "URL", "bad name!", "x"], 1, "ConfigurationError: invalid topic name"),
    (["consume", "URL", "missing", "-g", "g"], 1, "NotFound"),
    (["topics", "nope://user:pw123456@host"], 1, "unknown URL scheme 'nope'"),
])
def test_every_error_is_one_line(capsys: pytest.CaptureFixture[str], argv: list[str],
                                 status: int, needle: str) -> None:
    url = _url()
    assert main([url if a == "URL" else a for a in argv]) == status
    err = _one_line_error(capsys.readouterr().err)
    assert needle in err
    assert "pw123456" not in err
    if status == 2:
        assert err.startswith("mqkit")
    else:
        assert err.startswith("error: ")


def test_unexpected_error_is_one_line_unless_traceback_asked(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(url: str | None) -> int:
        raise RuntimeError("kaput")

    monkeypatch.setattr("mqkit.cli._doctor.run_doctor", boom)
    assert main(["doctor", _url()]) == 1
    err = _one_line_error(capsys.readouterr().err)
    assert err.startswith("error: unexpected RuntimeError: kaput")
    with pytest.raises(RuntimeError, match="kaput"):
        main(["--traceback", "doctor", _url()])


def test_secrets_of_the_url_never_reach_stderr(capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def leak(url: str | None) -> int:
        raise RuntimeError("could not parse 'ZQa' in host ZQb@127.0.0.1 (token tok-98765)")

    monkeypatch.setattr("mqkit.cli._doctor.run_doctor", leak)
    monkeypatch.setenv("MQKIT_URL", "amqp://user:ZQa/ZQb@127.0.0.1:1/?token=tok-98765")
    assert main(["doctor"]) == 1
    err = _one_line_error(capsys.readouterr().err)
    assert "ZQa" not in err and "ZQb" not in err and "tok-98765" not in err
    monkeypatch.delenv("MQKIT_URL")
    assert main(["doctor", "amqp://user:ZQa/ZQb@127.0.0.1:1/?token=tok-98765"]) == 1
    err = _one_line_error(capsys.readouterr().err)
    assert "ZQa" not in err and "ZQb" not in err and "tok-98765" not in err


@pytest.mark.parametrize("password", ["ZQa/ZQb", "p@ss#wd?x", "abc:def"])
def test_secrets_are_scrubbed_from_errors(password: str) -> None:
    url = f"amqp://user:{password}@127.0.0.1:1/?token=tok-123456"
    text = f"bad URL {url}: piece {password.split('/', maxsplit=1)[0]} and tok-123456"
    clean = scrub(text, url)
    for piece in [password, *[p for p in password.replace("@", "/").replace("#", "/")
                              .replace("?", "/").replace(":", "/").split("/") if len(p) >= 3]]:
        assert piece not in clean
    assert "tok-123456" not in clean and "user" in clean


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(
    st.sampled_from(["send", "consume", "topics", "create-topic", "delete-topic",
                     "create-group", "delete-group", "purge", "stats", "capabilities",
                     "--max", "--timeout", "-g", "--no-ack", "--codec", "json", "-H", "-o",
                     "--json", "--earliest", "--groups", "--create", "0", "-1", "nan",
                     "t", "g", "{", "a=b", "memory://", "nope://u:secret99@h"]),
    st.text(max_size=8)), max_size=7))
def test_any_argv_gives_a_status_and_at_most_one_error_line(
        capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    if "consume" in argv:
        argv = [*argv, "--timeout", "0"]  # the last --timeout wins: never wait
    status = main(argv)
    out, err = capsys.readouterr()
    assert status in (0, 1, 2)
    assert err.count("\n") <= 1 and "Traceback" not in err
    assert (err == "") == (status == 0)
    assert "secret99" not in err + out


def test_console_entry_point_help_is_cheap() -> None:
    """``mqkit --help`` imports neither the blocking face nor asyncio (timings live in
    benchmarks/bench_import.py)."""
    code = ("import sys; from mqkit.cli import main; main(['--help']); "
            "print(sorted(m for m in ('asyncio', 'ssl', 'importlib.metadata', "
            "'mqkit._sync', 'mqkit._registry') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_capabilities_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["capabilities", _url(), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["backend"] == "memory" and data["nack"] == "native"


def test_capabilities_of_a_topic(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["capabilities", _url(), "--json", "--topic", "jobs.fifo"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["backend"] == "memory" and data["ordering"] == "native"
    assert main(["capabilities", _url(), "--topic", "bad name"]) == 1
    err = capsys.readouterr().err
    assert "ConfigurationError" in err and "topic" in err


def test_doctor(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", _url()]) == 0
    out = capsys.readouterr().out
    assert "round trip" in out and "intact" in out and out.strip().endswith("ok")


def test_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", _url()]) == 0
    out = capsys.readouterr().out
    assert "dead letter: order 3 after 3 attempts: LookupError: unknown product 'unicorn'" in out
    assert "shipping: packed orders [1, 2, 3, 4]" in out
    assert "billing: 3 acked, 2 retried, 1 dead-lettered; ledger: 3 invoices recorded" in out
    assert "  billing: order 4: 4 x mug = 29.00" in out
    assert "handler bill: demo-orders-" in out  # the demo is an App of four handlers
    assert out.strip().endswith("demo ok")
