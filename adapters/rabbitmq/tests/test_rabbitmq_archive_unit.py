"""Replay on ``*.stream`` topics without a broker: names, capabilities, archive arguments,
the copy's properties, and the validation of the retention options."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pika
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mqkit_rabbitmq._archive import (
    archive_arguments,
    copied_properties,
    segment_bytes,
)
from mqkit_rabbitmq._driver import RabbitDriver, capabilities_for, stream_capabilities
from mqkit_rabbitmq._names import MARKER_HEADER, Names
from mqkit_rabbitmq._options import ArchiveRetention, RabbitOptions
from mqkit_rabbitmq._producer import KEY_HEADER

import mqkit
from mqkit.driver import ConnectParams, parse_options


def _driver(**options: Any) -> RabbitDriver:
    """A driver that has not connected (nothing here reaches a broker: port 1)."""
    url = mqkit.URL.parse("amqp://guest:guest@127.0.0.1:1/")
    return RabbitDriver(ConnectParams(url=url, connect_timeout=0.5),
                        parse_options(RabbitOptions, options))


def test_stream_names() -> None:
    names = Names(exchange_prefix="app.")
    assert names.archive("orders.stream") == "mqkit.archive.app.orders.stream"
    assert Names.internal(names.archive("orders.stream"))
    assert Names.is_stream("orders.stream") and Names.is_stream("a.stream")
    for name in ("orders", "orders.fifo", ".stream", "orders.streams", "stream"):
        assert not Names.is_stream(name), name


def test_replay_is_declared_on_stream_topics_only() -> None:
    opts = RabbitOptions()
    plain = capabilities_for(opts)
    assert plain.replay is mqkit.Support.UNSUPPORTED
    stream = stream_capabilities(opts)
    assert stream.replay is mqkit.Support.EMULATED
    assert dataclasses.replace(stream, replay=mqkit.Support.UNSUPPORTED) == plain
    driver = _driver()
    try:
        assert driver.capabilities == plain
        assert driver.topic_capabilities("orders.stream") == stream
        assert driver.topic_capabilities("orders") == plain
        assert driver.topic_capabilities("orders.fifo") == plain
    finally:
        driver.close()


def test_earliest_on_a_plain_topic_is_unsupported_before_any_broker_call() -> None:
    driver = _driver()
    try:
        with pytest.raises(mqkit.Unsupported, match=r"\*\.stream") as info:
            driver.create_group("orders", "audit", "earliest")
        assert info.value.feature == "replay" and info.value.backend == "rabbitmq"
    finally:
        driver.close()


def test_archive_arguments_bound_the_stream() -> None:
    args = archive_arguments(3600, 10 << 20)
    assert args == {"x-queue-type": "stream", "x-max-age": "3600s",
                    "x-max-length-bytes": 10 << 20,
                    "x-stream-max-segment-size-bytes": (10 << 20) // 4}


@given(st.integers(min_value=1, max_value=(1 << 63) - 1))
def test_segments_stay_within_bounds(max_bytes: int) -> None:
    seg = segment_bytes(max_bytes)
    assert 1 << 20 <= seg <= 500_000_000
    assert seg <= max(max_bytes // 4, 1 << 20)


def _props(**fields: Any) -> pika.BasicProperties:
    return pika.BasicProperties(**fields)


def test_copy_keeps_the_message_and_carries_its_key() -> None:
    props = _props(message_id="m1", correlation_id="c", content_type="text/plain",
                   reply_to="r", priority=3, timestamp=1000, delivery_mode=2,
                   headers={"x-stream-offset": 7, "tenant": "a"})
    copy = copied_properties("user-1", props, now=1000.5)
    assert copy is not None
    assert copy.headers == {"tenant": "a", KEY_HEADER: "user-1"}
    assert (copy.message_id, copy.correlation_id, copy.content_type, copy.reply_to,
            copy.priority, copy.timestamp, copy.delivery_mode) == (
        "m1", "c", "text/plain", "r", 3, 1000, 2)


def test_markers_and_expired_messages_are_not_copied() -> None:
    assert copied_properties("", _props(headers={MARKER_HEADER: "x"}), now=0) is None
    ttl = _props(expiration="5000", timestamp=100)
    kept = copied_properties("", ttl, now=102.0)
    assert kept is not None and kept.expiration == "3000"  # what is left of its TTL
    assert copied_properties("", ttl, now=105.0) is None


def test_retention_options_parse_from_the_url_and_topic_options() -> None:
    opts = parse_options(RabbitOptions, {"archive_max_age": "60",
                                         "archive_max_bytes": "1048576"})
    assert (opts.archive_max_age, opts.archive_max_bytes) == (60, 1 << 20)
    topic = parse_options(ArchiveRetention, {"archive_max_age": 5}, source="topic option")
    assert topic == ArchiveRetention(archive_max_age=5)


_BAD = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=1 << 63),
    st.text().filter(lambda s: not s.strip().lstrip("+").isdigit()),
    st.floats().filter(lambda f: not math.isfinite(f) or not f.is_integer()),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)


def _named_error(name: str, call: Any) -> None:
    with pytest.raises(mqkit.ConfigurationError) as info:
        call()
    assert name in str(info.value)


@given(st.sampled_from(["archive_max_age", "archive_max_bytes"]), _BAD)
def test_bad_retention_is_refused_naming_it(name: str, value: Any) -> None:
    _named_error(name, lambda: parse_options(RabbitOptions, {name: value}))
    _named_error(name, lambda: parse_options(ArchiveRetention, {name: value},
                                             source="topic option"))


@given(st.sampled_from(["archive_max_age", "archive_max_bytes"]), _BAD)
def test_create_topic_refuses_bad_retention_before_any_broker_call(name: str,
                                                                    value: Any) -> None:
    driver = _driver()
    try:
        _named_error(name, lambda: driver.create_topic("orders.stream", {name: value}))
    finally:
        driver.close()


def test_retention_options_belong_to_stream_topics() -> None:
    driver = _driver()
    try:
        _named_error("archive_max_age",
                     lambda: driver.create_topic("orders", {"archive_max_age": 60}))
        _named_error("retention", lambda: driver.create_topic("orders.stream",
                                                              {"retention": 60}))
    finally:
        driver.close()
