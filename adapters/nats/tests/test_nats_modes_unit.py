"""The ``mode`` option picks the driver class once: core NATS or JetStream.

A core driver has nothing to administer and never touches JetStream: here its link has
no JetStream context at all, so any JetStream call would fail.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from mqkit_nats._driver import CoreDriver, JetStreamDriver, _driver_class, capabilities
from mqkit_nats._options import NatsOptions

from mqkit.driver import ConfigurationError, Support, Unsupported, parse_options


def test_the_mode_picks_the_class() -> None:
    assert _driver_class(parse_options(NatsOptions, {"mode": "core"})) is CoreDriver
    assert _driver_class(parse_options(NatsOptions, {})) is JetStreamDriver
    core = capabilities(parse_options(NatsOptions, {"mode": "core"}), 1024)
    assert core.persistence is Support.UNSUPPORTED and core.delivery == "at-most-once"
    assert core.max_message_size == 1024 - 256


async def test_core_admin_verbs_need_no_jetstream() -> None:
    link = SimpleNamespace(nc=SimpleNamespace(max_payload=1 << 20))
    driver = CoreDriver(link, parse_options(NatsOptions, {"mode": "core"}))  # type: ignore[arg-type]
    await driver.create_topic("t", {"max_age": 5})
    with pytest.raises(ConfigurationError, match="'partitions'"):
        await driver.create_topic("t", {"partitions": 3})
    assert (await driver.list_topics(), await driver.topic_exists("t")) == ([], True)
    assert await driver.list_groups("t") == []
    await driver.create_group("t", "g", "latest")
    await driver.delete_group("t", "g")
    await driver.delete_topic("t")
    with pytest.raises(Unsupported):
        await driver.group_stats("t", "g")
    with pytest.raises(Unsupported):
        await driver.purge("t", "g")
