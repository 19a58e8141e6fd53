"""URL parsing, option parsing and redaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

import mqkit
from mqkit import URL, ConfigurationError, Secret
from mqkit._url import parse_options


def test_parse_full_url() -> None:
    url = URL.parse("amqp://guest:s3cret@rabbit.local:5672/%2Fvhost?heartbeat=10")
    assert url.scheme == "amqp"
    assert url.username == "guest"
    assert url.password is not None and url.password.reveal() == "s3cret"
    assert url.hosts == (("rabbit.local", 5672),)
    assert url.path == "/vhost"
    assert url.query == {"heartbeat": "10"}


def test_parse_many_hosts_and_ipv6() -> None:
    url = URL.parse("kafka://a:9092,b:9093,[::1]:9094")
    assert url.hosts == (("a", 9092), ("b", 9093), ("::1", 9094))
    assert str(url) == "kafka://a:9092,b:9093,[::1]:9094"


def test_parse_no_host() -> None:
    url = URL.parse("memory://")
    assert url.hosts == () and url.host is None and url.port is None


@pytest.mark.parametrize("text, fragment", [
    ("", "non-empty"),
    ("localhost:9092", "not a URL"),
    ("kafka://host:99999", "invalid port"),
    ("kafka://host:abc", "invalid port"),
    ("kafka://[::1", "unclosed IPv6"),
    ("9ka://host", "invalid URL scheme"),
    ("redis://h?db=1&db=2", "given twice"),
])
def test_bad_urls_name_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        URL.parse(text)


def test_password_never_rendered() -> None:
    url = URL.parse("amqp://user:hunter2@h/?token=abc123&heartbeat=5&sasl_password=pw9")
    for shown in (str(url), repr(url), url.render()):
        assert "hunter2" not in shown
        assert "abc123" not in shown
        assert "pw9" not in shown
        assert "heartbeat=5" in shown
    assert "hunter2" in url.render(reveal=True)
    assert "abc123" in url.render(reveal=True)


def test_bad_url_error_does_not_leak_password() -> None:
    with pytest.raises(ConfigurationError) as info:
        URL.parse("kafka://user:topsecret@host:notaport")
    assert "topsecret" not in str(info.value)


def test_secret_repr() -> None:
    secret = Secret("x-very-secret")
    assert "x-very-secret" not in repr(secret) and "x-very-secret" not in str(secret)
    assert secret.reveal() == "x-very-secret"


@dataclass(frozen=True)
class _Opts:
    count: int = 1
    ratio: float = 0.5
    flag: bool = False
    mode: Literal["a", "b"] = "a"
    token: Secret | None = None
    name: str | None = None


def test_parse_options_converts_strings() -> None:
    opts = parse_options(_Opts, {"count": "3", "ratio": "0.25", "flag": "yes", "mode": "b",
                                 "token": "t0k", "name": "x"})
    assert opts == _Opts(3, 0.25, True, "b", Secret("t0k"), "x")
    assert "t0k" not in repr(opts)


@pytest.mark.parametrize("values, fragment", [
    ({"bogus": "1"}, "unknown option 'bogus'; valid: count, flag, mode, name, ratio, token"),
    ({"count": "many"}, "'count' must be an integer"),
    ({"flag": "maybe"}, "'flag' must be true or false"),
    ({"mode": "c"}, "'mode' must be one of 'a', 'b'"),
])
def test_parse_options_errors(values: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment.replace("(", r"\(")):
        parse_options(_Opts, values)


def test_connect_rejects_unknown_parameter_by_name() -> None:
    with pytest.raises(ConfigurationError, match="unknown option 'nonsense'"):
        mqkit.connect("memory://?nonsense=1")


def test_connect_rejects_bad_portable_option() -> None:
    with pytest.raises(ConfigurationError, match="connect_timeout"):
        mqkit.connect("memory://?connect_timeout=-1")
