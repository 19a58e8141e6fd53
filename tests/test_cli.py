"""The ``mqkit`` command line on memory://."""

from __future__ import annotations

import json
import uuid

import pytest

from mqkit.cli import main


def _url() -> str:
    return f"memory://cli-{uuid.uuid4().hex[:8]}"


def test_send_topics_consume(capsys: pytest.CaptureFixture[str]) -> None:
    url = _url()
    assert main(["send", url, "orders", '{"id":1}', "--create", "--key", "k1",
                 "-H", "tenant=a"]) == 0
    sent_id = capsys.readouterr().out.strip()
    assert len(sent_id) == 32
    assert main(["topics", url]) == 0
    assert capsys.readouterr().out.split() == ["orders"]
    assert main(["consume", url, "orders", "--group", "g", "--earliest", "--timeout", "0.5"]) == 0
    [line] = capsys.readouterr().out.strip().splitlines()
    record = json.loads(line)
    assert record["id"] == sent_id and record["key"] == "k1"
    assert record["headers"] == {"tenant": "a"} and record["body"] == '{"id":1}'


def test_capabilities_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["capabilities", _url(), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["backend"] == "memory" and data["nack"] == "native"


def test_doctor(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", _url()]) == 0
    out = capsys.readouterr().out
    assert "round trip" in out and "intact" in out and out.strip().endswith("ok")


def test_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", _url()]) == 0
    out = capsys.readouterr().out
    assert "dead letter: order 3 after 3 attempts" in out
    assert "shipping: packed orders [1, 2, 3, 4]" in out
    assert out.strip().endswith("demo ok")


def test_errors_are_typed_and_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topics", "nope://user:pw123456@host"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ConfigurationError: unknown URL scheme 'nope'")
    assert "pw123456" not in err
    assert main(["send", _url(), "missing", "x"]) == 1
    assert "NotFound" in capsys.readouterr().err
