"""Codecs refuse bad input with mqkit's typed errors, never a bare Python exception.

``TEXT`` decoding a body that is not UTF-8, ``register_codec``/``codec_for`` given the
wrong kind of argument, and a user's codec that raises while encoding or decoding: each
becomes an :class:`mqkit.MQError` naming the problem (property tests on memory://).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mqkit
from mqkit._codecs import _BY_TYPE


@given(st.binary(max_size=64))
def test_text_decodes_utf8_or_refuses_as_invalid_message(body: bytes) -> None:
    try:
        expected = body.decode("utf-8")
    except UnicodeDecodeError:
        with pytest.raises(mqkit.InvalidMessage, match="not valid UTF-8"):
            mqkit.TEXT.decode(body)
    else:
        assert mqkit.TEXT.decode(body) == expected


@given(st.one_of(st.none(), st.text(max_size=8), st.integers(), st.binary(max_size=4),
                 st.builds(object)))
def test_register_codec_refuses_what_is_not_a_codec(value: object) -> None:
    before = dict(_BY_TYPE)
    with pytest.raises(mqkit.ConfigurationError, match="codec"):
        mqkit.register_codec(value)  # type: ignore[arg-type]
    assert before == _BY_TYPE


def test_register_codec_refuses_an_empty_media_type() -> None:
    @dataclass(frozen=True)
    class Blank:
        content_type: str = " ; charset=x"

        def encode(self, value: Any) -> bytes:
            return b""

        def decode(self, body: bytes) -> Any:
            return body

    with pytest.raises(mqkit.ConfigurationError, match="content_type"):
        mqkit.register_codec(Blank())


@given(st.one_of(st.integers(), st.floats(), st.binary(max_size=4),
                 st.lists(st.text(max_size=3), max_size=2)))
def test_codec_for_refuses_a_content_type_that_is_not_text(value: object) -> None:
    with pytest.raises(mqkit.ConfigurationError, match="content_type"):
        mqkit.codec_for(value)  # type: ignore[arg-type]


@given(st.one_of(st.none(), st.just(""), st.text(max_size=20)))
def test_codec_for_always_answers_a_codec_for_text(value: str | None) -> None:
    assert mqkit.codec_for(value).content_type


@dataclass(frozen=True)
class Fragile:
    """A user's codec that fails the way hand-written codecs do."""

    content_type: str = "application/x-fragile"

    def encode(self, value: Any) -> bytes:
        return value["payload"]  # type: ignore[no-any-return]  # KeyError, TypeError...

    def decode(self, body: bytes) -> Any:
        return {"n": int(body)}  # ValueError on anything but digits


FRAGILE = Fragile()


@settings(max_examples=30, deadline=None)
@given(st.one_of(st.integers(), st.text(max_size=5), st.dictionaries(st.text(max_size=3),
                                                                       st.integers(),
                                                                       max_size=2)))
def test_a_failing_user_codec_is_an_invalid_message_on_send(value: object) -> None:
    with mqkit.connect(f"memory://c-{uuid.uuid4().hex[:8]}") as client:
        client.admin.create_topic("t")
        with client.producer("t", codec=FRAGILE) as producer:
            with pytest.raises(mqkit.InvalidMessage, match="x-fragile") as info:
                producer.send(value)
    assert info.value.__cause__ is not None


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=1, max_size=12))
def test_a_body_a_registered_codec_cannot_decode_is_an_invalid_message(body: bytes) -> None:
    mqkit.register_codec(FRAGILE)
    try:
        with mqkit.connect(f"memory://c-{uuid.uuid4().hex[:8]}") as client:
            client.admin.create_topic("t")
            client.admin.create_group("t", "g")
            with client.producer("t") as producer:
                producer.send(mqkit.Message(body, content_type=FRAGILE.content_type))
            with client.consumer("t", "g") as consumer:
                [msg] = consumer.receive(1, timeout=1)
                try:
                    expected = {"n": int(body)}
                except ValueError:
                    with pytest.raises(mqkit.InvalidMessage, match="x-fragile"):
                        msg.decode()
                else:
                    assert msg.decode() == expected
                msg.ack()
    finally:
        _BY_TYPE.pop(FRAGILE.content_type, None)


@pytest.mark.parametrize("first", ["mqkit._validation", "mqkit._codecs", "mqkit.driver",
                                   "mqkit_redis._options"])
def test_each_module_imports_first_in_a_fresh_interpreter(first: str) -> None:
    """No import cycle between _codecs and _validation, whichever is imported first."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", f"import {first}; import mqkit; "
                           "mqkit.codec_for('text/plain')"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
