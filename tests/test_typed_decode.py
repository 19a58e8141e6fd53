"""``msg.decode(codec)``: typed decoding with the built-in codecs (issue 14).

``msg.decode(mqkit.TEXT)`` is a ``str`` for the type checker and at run time; a bare
``mqkit.Codec`` in a user's annotation still passes ``mypy --strict`` (``Codec[Any]``).
"""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest
from mypy import api as mypy_api

import mqkit


def _receive_one(body: bytes, content_type: str | None = None) -> mqkit.ReceivedMessage:
    client = mqkit.connect(f"memory://d-{uuid.uuid4().hex[:8]}")
    client.admin.create_topic("t")
    client.admin.create_group("t", "g")
    with client.producer("t") as producer:
        producer.send(mqkit.Message(body, content_type=content_type))
    [msg] = client.consumer("t", "g").receive(1, timeout=1)
    return msg


def test_an_explicit_codec_decides_over_the_content_type() -> None:
    msg = _receive_one(b'{"a": 1}', content_type="text/plain")
    assert msg.decode() == '{"a": 1}'                  # by its content type
    assert msg.decode(mqkit.JSON) == {"a": 1}          # as asked
    assert msg.decode(mqkit.RAW) == b'{"a": 1}'


def test_decoding_with_something_that_is_not_a_codec_is_refused_by_name() -> None:
    msg = _receive_one(b"x")
    with pytest.raises(mqkit.ConfigurationError, match="codec"):
        msg.decode("json")  # type: ignore[call-overload]


def test_a_body_the_explicit_codec_cannot_decode_is_an_invalid_message() -> None:
    msg = _receive_one(b"\xff\xfe")
    with pytest.raises(mqkit.InvalidMessage, match="UTF-8"):
        msg.decode(mqkit.TEXT)


PROGRAM = """
    from typing import Any
    import mqkit, mqkit.aio

    def handle(msg: mqkit.ReceivedMessage, codec: mqkit.Codec) -> None:
        reveal_type(msg.decode(mqkit.TEXT))
        reveal_type(msg.decode(mqkit.RAW))
        reveal_type(msg.decode(mqkit.JSON))
        reveal_type(msg.decode())
        reveal_type(codec)

    async def ahandle(msg: mqkit.aio.ReceivedMessage) -> None:
        reveal_type(msg.decode(mqkit.aio.TEXT))
"""


def test_the_type_checker_sees_what_each_codec_decodes(tmp_path: Path) -> None:
    program = tmp_path / "user.py"
    program.write_text(textwrap.dedent(PROGRAM))
    out, err, status = mypy_api.run(["--strict", "--no-incremental",
                                     "--cache-dir", str(tmp_path / "cache"), str(program)])
    revealed = [line.split("Revealed type is ", 1)[1] for line in out.splitlines()
                if "Revealed type is" in line]
    assert revealed == ['"str"', '"bytes"', '"Any"', '"Any"',
                        '"mqkit._codecs.Codec[Any]"', '"str"'], out + err
    assert status == 0 and "error:" not in out, out
