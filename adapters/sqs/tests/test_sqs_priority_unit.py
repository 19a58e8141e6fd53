"""Priority bands of the SQS adapter, pure logic: names, validation, capabilities, wire."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mqkit_sqs._driver import capabilities_for, fifo_capabilities
from mqkit_sqs._names import BANDS, Names
from mqkit_sqs._options import SqsOptions
from mqkit_sqs._wire import decode, encode

import mqkit
from mqkit.driver import Message, Support

_TOPIC = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.:", min_size=1,
                 max_size=40)


def test_bands_are_nine_levels_highest_first() -> None:
    assert BANDS == (9, 8, 7, 6, 5, 4, 3, 2, 1)


def test_band_names_and_queues() -> None:
    names = Names()
    assert names.band("orders", 0) == "orders"
    assert names.band("orders", 7) == "orders-mqkit-p7"
    assert names.queue(names.band("orders", 7), "billing") == "orders-mqkit-p7-billing"
    assert names.band_queue("orders", "billing", 7) == "orders-mqkit-p7-billing"
    prefixed = Names(prefix="app-", queue_format="{topic}--{group}")
    assert prefixed.band_queue("a.b", "g", 3) == "app-a_b-mqkit-p3--g"
    assert prefixed.topic(prefixed.band("a.b", 3)) == "app-a_b-mqkit-p3"


@given(_TOPIC, st.sampled_from(BANDS), st.text(alphabet="abcxyz-_", min_size=1,
                                                max_size=60))
def test_band_names_are_bands_and_fit(topic: str, p: int, group: str) -> None:
    names = Names()
    band = names.band(topic, p)
    assert Names.is_band(band)
    assert Names.is_band(names.topic(band))
    assert len(names.queue(band, group)) <= 80
    assert names.from_native(names.topic(band)) is not None


@given(st.one_of(st.integers().filter(lambda p: not 0 <= p <= 9),
                 st.floats(allow_nan=True), st.booleans(), st.text(max_size=3),
                 st.none()))
def test_bad_priority_raises_invalid_message_naming_priority(bad: object) -> None:
    with pytest.raises(mqkit.InvalidMessage, match="priority"):
        Names().band("orders", bad)  # type: ignore[arg-type]


@given(_TOPIC, st.sampled_from(BANDS), st.sampled_from(["", ".fifo"]))
def test_topic_named_like_a_band_is_refused_naming_topic(topic: str, p: int,
                                                         fifo: str) -> None:
    with pytest.raises(mqkit.ConfigurationError, match="topic"):
        Names().check_topic(f"{topic}-mqkit-p{p}{fifo}")


@given(_TOPIC)
def test_other_topic_names_are_not_bands(topic: str) -> None:
    name = topic + "-x"  # never ends like a band
    assert not Names.is_band(name)
    Names().check_topic(name)
    for near in ("orders-mqkit-p0", "orders-mqkit-p10", "orders-mqkit-p", "mqkit-p3x"):
        assert not Names.is_band(near)


@pytest.mark.parametrize("mode", ["sns", "queue"])
def test_standard_topics_emulate_priority_fifo_ones_do_not(mode: str) -> None:
    caps = capabilities_for(SqsOptions(mode=mode),  # type: ignore[arg-type]
                            custom_endpoint=True)
    assert caps.priority is Support.EMULATED
    fifo = fifo_capabilities(caps)
    assert fifo.priority is Support.UNSUPPORTED
    changed = {f.name for f in dataclasses.fields(caps)
               if getattr(caps, f.name) != getattr(fifo, f.name)}
    assert changed <= {"ordering", "dedup", "delay", "priority"}
    every_fifo = capabilities_for(SqsOptions(mode=mode, fifo=True),  # type: ignore[arg-type]
                                  custom_endpoint=True)
    assert every_fifo.priority is Support.UNSUPPORTED


def test_band_delivery_carries_queue_url_and_priority() -> None:
    enc = encode(Message(b"x", id="i"))
    raw = {"Body": enc.body, "MessageAttributes": enc.attributes, "MessageId": "m",
           "ReceiptHandle": "rh", "Attributes": {}}
    plain = decode(raw, "t")
    assert plain.handle == "rh"
    assert plain.message.priority is None
    band = decode(raw, "t", priority=7, url="http://q/t-mqkit-p7-g")
    assert band.handle == ("http://q/t-mqkit-p7-g", "rh")
    assert band.message.priority == 7
    assert band.message.body == b"x"
    assert band.message.id == "i"
