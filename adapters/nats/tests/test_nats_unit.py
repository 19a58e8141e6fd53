"""NATS adapter without a broker: options, names, wire encoding, errors, connect."""

from __future__ import annotations

import asyncio
import time

import nats.errors as ne
import nats.js.errors as je
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mqkit_nats._driver import capabilities
from mqkit_nats._errors import map_error, mapped
from mqkit_nats._link import connect_kwargs
from mqkit_nats._names import (
    consumer_name,
    group_from_description,
    message_headers,
    split_headers,
    stream_name,
)
from mqkit_nats._options import NatsOptions
from mqkit_nats._wire import encode_batch
from nats.aio.msg import Msg
from nats.protocol.command import hpub_cmd

import mqkit
from mqkit.driver import ConnectParams, Message, Support, parse_options


def test_unknown_option_is_named() -> None:
    with pytest.raises(mqkit.ConfigurationError, match="'streamprefix'"):
        mqkit.connect("nats://127.0.0.1:4222?streamprefix=X")


def test_options_parse_and_validate() -> None:
    o = parse_options(NatsOptions, {"mode": "core", "publish_window": "64", "tls": "true"})
    assert (o.mode, o.publish_window, o.tls) == ("core", 64, True)
    with pytest.raises(mqkit.ConfigurationError, match="mode"):
        parse_options(NatsOptions, {"mode": "push"})
    with pytest.raises(mqkit.ConfigurationError, match="stream_prefix"):
        parse_options(NatsOptions, {"stream_prefix": "A.B"})
    with pytest.raises(mqkit.ConfigurationError, match="token"):
        parse_options(NatsOptions, {"token": "t0ken", "user": "u"})


def test_secrets_never_shown() -> None:
    o = parse_options(NatsOptions, {"token": "hunter22"})
    assert "hunter22" not in repr(o)
    o = parse_options(NatsOptions, {"nkey_seed": "SUAXYZSEED", "key_password": "kpw123"})
    assert "SUAXYZSEED" not in repr(o) and "kpw123" not in repr(o)
    url = mqkit.driver.URL.parse("nats://alice:s3cr3tpw@h1:4222,h2?token=hunter22")
    assert "s3cr3tpw" not in str(url) and "hunter22" not in repr(url)
    kwargs = connect_kwargs(ConnectParams(url=url, options={}), NatsOptions())
    # credentials go to nats-py as arguments, never inside the server URLs it may quote
    assert kwargs["servers"] == ["nats://h1:4222", "nats://h2:4222"]
    assert kwargs["user"] == "alice" and kwargs["password"] == "s3cr3tpw"


def test_connect_kwargs_tls_and_auth() -> None:
    url = mqkit.driver.URL.parse("nats://[::1]:4333")
    o = parse_options(NatsOptions, {"tls": "true", "verify": "false", "token": "tk",
                                    "server_hostname": "nats.example"})
    kwargs = connect_kwargs(ConnectParams(url=url, options={}), o)
    assert kwargs["servers"] == ["tls://[::1]:4333"]
    assert kwargs["tls"].check_hostname is False and kwargs["tls_hostname"] == "nats.example"
    assert kwargs["token"] == "tk" and "user" not in kwargs


def test_a_missing_ca_file_is_named() -> None:
    url = mqkit.driver.URL.parse("nats://h1")
    o = parse_options(NatsOptions, {"ca_file": "/nonexistent/ca.pem"})  # implies TLS
    with pytest.raises(mqkit.ConfigurationError, match="'ca_file'"):
        connect_kwargs(ConnectParams(url=url, options={}), o)


def test_names() -> None:
    assert stream_name("MQKIT_", "orders.dlq") == "MQKIT_orders_dlq"
    assert consumer_name("billing.v2") == "billing_v2"
    assert group_from_description("billing_v2", "mqkit group billing.v2") == "billing.v2"
    assert group_from_description("plain", None) == "plain"


def test_header_mapping_round_trip() -> None:
    msg = Message(b"b", key="k", headers={"x": "1", "Ünï": "ç"}, id="id1",
                  content_type="application/json", correlation_id="c", reply_to="r")
    native = message_headers(msg)
    assert native["Nats-Msg-Id"] == "id1" and native["Content-Type"] == "application/json"
    back = split_headers(native, b"b", "fallback")
    assert back == msg
    assert split_headers(None, b"z", "S.7") == Message(b"z", id="S.7")


def test_wire_encoding_matches_nats_py() -> None:
    msg = Message(b"hello", id="abc", headers={"x-a": "1"}, correlation_id="c")
    data = encode_batch("subj", [msg, Message(b"", id="z")], 1 << 20)
    hdr = bytearray(b"NATS/1.0\r\n")
    for k, v in message_headers(msg).items():
        hdr += f"{k}: {v}\r\n".encode()
    hdr += b"\r\n"
    # nats-py writes an empty reply as a second space; the server reads both alike.
    expected = bytes(hpub_cmd("subj", "", hdr, b"hello")).replace(b"subj  ", b"subj ", 1)
    assert data.startswith(expected)
    second = hpub_cmd("subj", "", bytearray(b"NATS/1.0\r\nNats-Msg-Id: z\r\n\r\n"), b"")
    assert data[len(expected):] == bytes(second).replace(b"subj  ", b"subj ", 1)


def test_wire_rejects_bad_headers_and_size() -> None:
    with pytest.raises(mqkit.InvalidMessage, match="header name"):
        encode_batch("s", [Message(b"", id="1", headers={"a:b": "v"})], 1 << 20)
    with pytest.raises(mqkit.InvalidMessage, match="line break"):
        encode_batch("s", [Message(b"", id="1", headers={"a": "x\r\ny"})], 1 << 20)
    with pytest.raises(mqkit.MessageTooLarge) as info:
        encode_batch("s", [Message(b"x" * 100, id="1")], 120)
    size = info.value.size
    assert info.value.limit == 120 and size is not None and size > 120


def test_capabilities_by_mode() -> None:
    js = capabilities(NatsOptions(), 1 << 20)
    assert js.nack_delay is Support.NATIVE and js.lease_extension is Support.NATIVE
    assert js.dedup is Support.NATIVE and js.delay is Support.EMULATED
    assert js.max_message_size == (1 << 20) - 256 and js.delivery == "at-least-once"
    assert capabilities(NatsOptions(storage="memory"), 1 << 20).persistence \
        is Support.UNSUPPORTED
    core = capabilities(NatsOptions(mode="core"), 1 << 20)
    assert core.delivery == "at-most-once" and not core.nack and not core.persistence


@pytest.mark.parametrize(("native", "expected"), [
    (je.APIError(code=400, err_code=10058, description="name in use"), mqkit.AlreadyExists),
    (je.NotFoundError(code=404, err_code=10059, description="stream not found"),
     mqkit.NotFound),
    (je.ServiceUnavailableError(code=503, description="down"), mqkit.Unavailable),
    (ne.ConnectionClosedError(), mqkit.Unavailable),
    (ne.TimeoutError(), mqkit.Timeout),
    (ne.NoServersError(), mqkit.Unavailable),
    (ne.BadSubjectError(), mqkit.ConfigurationError),
    (ConnectionResetError("reset"), mqkit.Unavailable),
    (ne.ProtocolError(), mqkit.BackendError),
])
def test_error_table(native: BaseException, expected: type[mqkit.MQError]) -> None:
    assert type(map_error(native, "x")) is expected
    with pytest.raises(expected) as info:
        with mapped("doing"):
            raise native
    assert info.value.__cause__ is native and info.value.native is native


def test_unreachable_broker_is_connect_timeout_within_bound() -> None:
    start = time.monotonic()
    with pytest.raises(mqkit.Unavailable) as info:
        mqkit.connect("nats://127.0.0.1:1?connect_timeout=1.0").admin.list_topics()
    assert isinstance(info.value, mqkit.ConnectTimeout)
    assert time.monotonic() - start < 3.0


async def test_unreachable_broker_async_face() -> None:
    import mqkit.aio

    start = time.monotonic()
    with pytest.raises(mqkit.ConnectTimeout):
        async with mqkit.aio.connect("nats://alice:pw-secret@10.255.255.1:4222",
                                     connect_timeout=0.5) as c:
            await c.admin.list_topics()
    assert time.monotonic() - start < 2.5
    await asyncio.sleep(0)


def test_a_message_back_at_the_same_consumer_counts_at_least_one_more() -> None:
    from mqkit_nats._consumer import to_delivery
    from nats.aio.msg import Msg

    from mqkit.driver import DeliveryCounts

    def msg(delivered: int) -> Msg:
        reply = f"$JS.ACK.MQKIT_t.g.{delivered}.7.{delivered}.1700000000000000000.0"
        return Msg(_client=None, subject="t", reply=reply, data=b"x",  # type: ignore[arg-type]
                   headers={"Nats-Msg-Id": "m1"})

    seen = DeliveryCounts(10)
    assert to_delivery("t", msg(1), seen).delivery_count == 1
    # The server says 1 again for a redelivery: this instance knows better.
    assert to_delivery("t", msg(1), seen).delivery_count == 2
    assert to_delivery("t", msg(5), seen).delivery_count == 5  # the server's, when higher
    assert to_delivery("t", msg(1)).delivery_count == 1  # nothing remembered: the server's


def _js_msg(seq: int, delivered: int, headers: dict[str, str]) -> Msg:
    reply = f"$JS.ACK.MQKIT_t.g.{delivered}.{seq}.{delivered}.1700000000000000000.0"
    return Msg(_client=None, subject="t", reply=reply, data=b"x",  # type: ignore[arg-type]
               headers=headers)


def test_a_delayed_send_taken_early_is_given_back_and_its_deferral_is_no_attempt() -> None:
    """JetStream's delayed send (emulated): a message whose mqkit-deliver-at is ahead is
    not handed out but kept to be given back (-NAK with the time left); when it comes
    back due, the deliveries it took before its time do not count as attempts."""
    from types import SimpleNamespace

    from mqkit_nats._consumer import PullSubscription
    from mqkit_nats._names import DELIVER_AT

    link = SimpleNamespace(api_prefix="$JS.API", generation=0,
                           nc=SimpleNamespace(new_inbox=lambda: "_INBOX.x"))
    sub = PullSubscription(link, "t", "g", "MQKIT_t", "g")  # type: ignore[arg-type]
    now = time.time()
    ahead = {DELIVER_AT: str(int((now + 30) * 1000)), "Nats-Msg-Id": "b"}
    past = {DELIVER_AT: str(int((now - 1) * 1000)), "Nats-Msg-Id": "c"}
    sub._buffer.extend([_js_msg(1, 1, {"Nats-Msg-Id": "a"}), _js_msg(2, 1, ahead),
                        _js_msg(3, 2, past)])
    out = sub._take(10)
    assert [d.message.id for d in out] == ["a", "c"]
    # c came back once: another member gave it back early; that is no attempt
    assert [d.delivery_count for d in out] == [1, 1]
    assert DELIVER_AT not in out[1].message.headers
    [(early, wait)] = sub._early
    assert early.headers == ahead and 29 < wait <= 30
    sub._deferred.next(2)  # what _give_back_early records
    sub._early.clear()
    due = {DELIVER_AT: str(int((now - 1) * 1000)), "Nats-Msg-Id": "b"}
    sub._buffer.append(_js_msg(2, 2, due))
    assert [d.delivery_count for d in sub._take(10)] == [1]
    sub._buffer.append(_js_msg(2, 3, due))  # then it failed once
    assert [d.delivery_count for d in sub._take(10)] == [2]


def test_a_delayed_message_carries_its_due_time_and_leaves_the_fast_path() -> None:
    from mqkit_nats._names import DELIVER_AT, due_at, message_headers

    msg = Message(b"x", id="m1", delay=2.5)
    headers = message_headers(msg, now=1000.0)
    assert headers[DELIVER_AT] == "1002500" and due_at(headers) == 1002.5
    assert b"mqkit-deliver-at: " in encode_batch("t", [msg], 1 << 20)
    assert b"mqkit-deliver-at" not in encode_batch("t", [Message(b"x", id="m1")], 1 << 20)
    assert due_at({DELIVER_AT: "soon"}) is None and due_at(None) is None


@given(st.text())
def test_an_unreadable_due_time_is_no_delay(raw: str) -> None:
    from mqkit_nats._names import DELIVER_AT, due_at

    value = due_at({DELIVER_AT: raw})
    assert value is None or isinstance(value, float)
