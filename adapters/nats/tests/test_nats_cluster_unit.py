"""NATS on a cluster (issue 18), without a server: every seed reaches nats-py with
reconnection forever, and ``replicas`` is a topic option (R3 streams) that overrides the
URL's and is checked."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from mqkit_nats._driver import JetStreamDriver
from mqkit_nats._link import connect_kwargs
from mqkit_nats._options import NatsOptions
from nats.js import errors as je

import mqkit
from mqkit.driver import URL, ConnectParams, parse_options


def test_every_seed_goes_to_nats_py_and_reconnects_forever() -> None:
    params = ConnectParams(url=URL.parse("nats://127.0.0.1:1,127.0.0.1:2,[::1]:3"),
                           options={})
    kwargs = connect_kwargs(params, NatsOptions())
    assert kwargs["servers"] == ["nats://127.0.0.1:1", "nats://127.0.0.1:2",
                                 "nats://[::1]:3"]
    assert kwargs["allow_reconnect"] is True
    assert kwargs["max_reconnect_attempts"] == -1


class _FakeJs:
    def __init__(self) -> None:
        self.added: list[Any] = []

    async def stream_info(self, name: str) -> Any:
        raise je.NotFoundError

    async def add_stream(self, config: Any) -> None:
        self.added.append(config)


def _driver(url_options: dict[str, object]) -> tuple[JetStreamDriver, _FakeJs]:
    js = _FakeJs()

    async def ready(what: str, timeout: float | None = None) -> None:
        return None

    link: Any = SimpleNamespace(nc=SimpleNamespace(max_payload=1 << 20), js=js, ready=ready)
    options = parse_options(NatsOptions, url_options)
    driver = JetStreamDriver(link, options)
    return driver, js


@pytest.mark.parametrize(("url_options", "topic_options", "expected"), [
    ({}, {}, 1),
    ({}, {"replicas": 3}, 3),
    ({"replicas": "3"}, {}, 3),
    ({"replicas": "3"}, {"replicas": 1}, 1),
])
def test_replicas_topic_option(url_options: dict[str, object],
                               topic_options: dict[str, object], expected: int) -> None:
    driver, js = _driver(url_options)
    asyncio.run(driver.create_topic("orders.eu", topic_options))
    assert [c.num_replicas for c in js.added] == [expected]


def test_bad_replicas_names_it() -> None:
    driver, _ = _driver({})
    with pytest.raises(mqkit.ConfigurationError, match="replicas"):
        asyncio.run(driver.create_topic("orders", {"replicas": 0}))
