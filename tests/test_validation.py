"""Checks made before sending (sans-I/O)."""

from __future__ import annotations

import pytest

from mqkit import (
    Capabilities,
    ConfigurationError,
    InvalidMessage,
    Message,
    MessageTooLarge,
    Support,
    Unsupported,
)
from mqkit._validation import build_message, check_name, chunks, prepare

CAPS = Capabilities(backend="test", max_message_size=10, max_headers=2)


def test_prepare_assigns_id_and_keeps_body() -> None:
    msg = prepare(Message(b"abc"), CAPS)
    assert msg.id is not None and len(msg.id) == 32 and msg.body == b"abc"
    same = Message(b"x", id="given")
    assert prepare(same, CAPS) is same


def test_size_limit_exact_and_over() -> None:
    prepare(Message(b"x" * 10), CAPS)
    with pytest.raises(MessageTooLarge) as info:
        prepare(Message(b"x" * 11), CAPS)
    assert info.value.size == 11 and info.value.limit == 10
    assert "accepts at most 10 bytes" in str(info.value)


def test_header_rules() -> None:
    with pytest.raises(InvalidMessage, match="at most 2"):
        prepare(Message(b"", headers={"a": "1", "b": "2", "c": "3"}), CAPS)
    with pytest.raises(InvalidMessage, match="str to str"):
        prepare(Message(b"", headers={"a": 1}), CAPS)  # type: ignore[dict-item]


def test_unsupported_features_name_backend_and_feature() -> None:
    with pytest.raises(Unsupported) as info:
        prepare(Message(b"", priority=5), CAPS)
    assert info.value.backend == "test" and info.value.feature == "priority"
    # Priority 0, the lowest, is any message's: sent without one where there are none.
    assert prepare(Message(b"", priority=0), CAPS).priority is None
    kept = Capabilities(backend="t", priority=Support.EMULATED)
    assert prepare(Message(b"", priority=0), kept).priority == 0
    delay_caps = Capabilities(backend="t", delay=Support.NATIVE, max_delay=900)
    prepare(Message(b"", delay=900), delay_caps)
    with pytest.raises(InvalidMessage, match="maximum of 900"):
        prepare(Message(b"", delay=901), delay_caps)


def test_body_must_be_bytes() -> None:
    with pytest.raises(InvalidMessage, match="must be bytes"):
        prepare(Message("text"), CAPS)  # type: ignore[arg-type]
    assert prepare(Message(bytearray(b"ab")), CAPS).body == b"ab"  # type: ignore[arg-type]


def test_names() -> None:
    assert check_name("topic", "orders.v1_x-y") == "orders.v1_x-y"
    for bad in ("", "-x", "a b", "x" * 201, "a/b"):
        with pytest.raises(ConfigurationError, match="invalid topic name"):
            check_name("topic", bad)


def test_chunks_cover_everything_in_order() -> None:
    items = list(range(25))
    got = list(chunks(items, 10))
    assert [o for o, _ in got] == [0, 10, 20]
    assert [x for _, c in got for x in c] == items


def test_build_message_overrides() -> None:
    base = Message(b"a", key="k")
    assert build_message(base, key="z").key == "z"
    assert build_message(base) is base


def test_with_id_keeps_every_field_and_only_adds_an_id() -> None:
    from dataclasses import fields

    from mqkit.driver import Message

    original = Message(b"b", key="k", headers={"h": "v"}, content_type="text/plain",
                       correlation_id="c", reply_to="r", priority=3, ttl=1.5, delay=2.0)
    stamped = original.with_id()
    assert stamped.id is not None and len(stamped.id) == 32
    for f in fields(Message):
        if f.name != "id":
            assert getattr(stamped, f.name) == getattr(original, f.name), f.name
    assert stamped.with_id() is stamped
