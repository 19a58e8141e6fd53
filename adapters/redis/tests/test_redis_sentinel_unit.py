"""redis+sentinel:// URLs: what reaches redis-py's Sentinel, errors naming ``service``,
and secrets kept out of reprs and errors (no server needed)."""

from __future__ import annotations

import logging
import urllib.parse

import pytest
from mqkit_redis._link import SENTINEL_PORT, client_kwargs, sentinel_args
from mqkit_redis._options import RedisOptions

import mqkit
from mqkit.driver import URL, ConnectParams, parse_options

SECRET = "s3nt-Pw/9?#"


def _args(text: str) -> tuple[ConnectParams, RedisOptions]:
    url = URL.parse(text)
    params = ConnectParams(url, dict(url.query), 5.0)
    return params, parse_options(RedisOptions, params.options)


def test_hosts_are_sentinels_with_their_default_port() -> None:
    params, options = _args("redis+sentinel://a:26380,b/3?service=main")
    s = sentinel_args(params, options)
    assert s is not None
    assert s.hosts == [("a", 26380), ("b", SENTINEL_PORT)]
    assert s.service == "main"
    assert s.kwargs["socket_connect_timeout"] == 5.0
    assert "password" not in s.kwargs  # Sentinels without auth by default
    kw = client_kwargs(params, options)
    assert kw["db"] == 3  # the data nodes' database, from the path
    assert "ssl" not in kw


def test_url_credentials_are_the_data_nodes_and_sentinel_ones_are_options() -> None:
    params, options = _args(
        "rediss+sentinel://app:datapw@a:26379/0?service=main&sentinel_username=sent"
        "&sentinel_password=sentpw")
    s = sentinel_args(params, options)
    assert s is not None
    assert (s.kwargs["username"], s.kwargs["password"]) == ("sent", "sentpw")
    kw = client_kwargs(params, options)
    assert (kw["username"], kw["password"]) == ("app", "datapw")
    assert kw["ssl"] is True  # rediss+sentinel: TLS to the data nodes
    assert "sentpw" not in repr(s) and "sentpw" not in repr(options)


def test_plain_redis_url_has_no_sentinel() -> None:
    assert sentinel_args(*_args("redis://h:6379/0")) is None


@pytest.mark.parametrize("url", ["redis+sentinel://a:26379/0",
                                 "redis+sentinel://a:26379/0?service="])
def test_missing_service_names_it(url: str) -> None:
    with pytest.raises(mqkit.ConfigurationError, match="service"):
        sentinel_args(*_args(url))


@pytest.mark.parametrize("query", ["service=main", "sentinel_password=x"])
def test_sentinel_options_on_a_plain_url_name_them(query: str) -> None:
    with pytest.raises(mqkit.ConfigurationError, match="service"):
        sentinel_args(*_args(f"redis://h:6379/0?{query}"))


def test_scheme_is_registered_and_connect_errors_hide_secrets(
        caplog: pytest.LogCaptureFixture) -> None:
    """No Sentinel listens: the error names the URL, never a password (data or Sentinel)."""
    quoted = urllib.parse.quote(SECRET, safe="")
    url = (f"redis+sentinel://app:{quoted}@127.0.0.1:9/0?service=main"
           f"&sentinel_password={quoted}&connect_timeout=0.5")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(mqkit.MQError) as info:
        mqkit.connect(url)
    rendered = [str(info.value), repr(info.value), str(info.value.__cause__),
                *(r.getMessage() for r in caplog.records)]
    assert not [text for text in rendered if SECRET in text]
    assert "redis+sentinel://" in str(info.value)
