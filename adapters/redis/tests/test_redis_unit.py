"""Redis adapter: pure logic, no broker (wire layout, names, options, errors)."""

from __future__ import annotations

import ssl
import time
from typing import Any

import pytest
import redis.exceptions as re_
from hypothesis import given
from hypothesis import strategies as st
from mqkit_redis import _link
from mqkit_redis._capabilities import capabilities_for
from mqkit_redis._delay import MOVE_DUE
from mqkit_redis._errors import map_error, mapped
from mqkit_redis._flows import send_commands, trim_args
from mqkit_redis._link import client_kwargs
from mqkit_redis._names import Names
from mqkit_redis._options import RedisOptions
from mqkit_redis._reader import Reader, make_reader
from mqkit_redis._wire import (
    decode,
    deliveries,
    encode,
    entry_time,
    join_fields,
    split_fields,
)

import mqkit
from mqkit.driver import URL, ConnectParams, Delivery, Message, Support, parse_options


def _raw(flat: list[bytes | str]) -> list[bytes]:
    return [x.encode() if isinstance(x, str) else x for x in flat]


def _pairs(flat: list[bytes | str]) -> dict[bytes, bytes]:
    raw = _raw(flat)
    return dict(zip(raw[::2], raw[1::2], strict=True))


def test_entry_layout_round_trips_every_field() -> None:
    msg = Message(b"\x00\xff body", key="k", headers={"tenant": "a", "body": "h", "id": "x"},
                  id="m1", content_type="text/plain", correlation_id="c", reply_to="r")
    flat = encode(msg)
    fields = _pairs(flat)
    assert fields[b"body"] == b"\x00\xff body" and fields[b"id"] == b"m1"
    assert fields[b"h:tenant"] == b"a" and fields[b"h:body"] == b"h"  # no clash
    got = decode("1700000000000-0", _raw(flat))
    assert got == msg


def test_plain_client_entry_is_read_sensibly() -> None:
    got = decode("1700000000123-4", [b"body", b"hi", b"tenant", b"a"])
    assert got.body == b"hi" and dict(got.headers) == {"tenant": "a"}
    assert got.id == "1700000000123-4"  # no id field: the entry id
    assert decode("1-0", []).body == b""
    assert entry_time("1700000000123-4") == 1700000000.123


def test_deliveries_are_plain_frozen_deliveries_on_both_paths() -> None:
    full = Message(b"b", key="k", headers={"t": "a"}, id="m1", content_type="text/plain",
                   correlation_id="c", reply_to="r")
    entries = [
        [b"1700000000000-0", _raw(encode(Message(b"x", id="m0")))],  # the fast path
        [b"1700000000000-1", _raw(encode(full))],
        None,                                                         # deleted meanwhile
        [b"1700000000001-0", None],
        [b"1700000000002-0", [b"body", b"y", b"id", b""]],             # empty id
        [b"1700000000003-0", {b"body": b"z", b"tenant": b"a"}],       # RESP3 map
    ]
    out: list[Delivery] = []
    deliveries("t", entries, None, out)
    assert out == [
        Delivery(Message(b"x", id="m0"), "t", "1700000000000-0", 1, 1700000000.0,
                 "1700000000000-0"),
        Delivery(full, "t", "1700000000000-1", 1, 1700000000.0, "1700000000000-1"),
        Delivery(Message(b"y", id="1700000000002-0"), "t", "1700000000002-0", 1,
                 1700000000.002, "1700000000002-0"),
        Delivery(Message(b"z", headers={"tenant": "a"}, id="1700000000003-0"), "t",
                 "1700000000003-0", 1, 1700000000.003, "1700000000003-0"),
    ]
    for d in out:
        assert type(d) is Delivery and type(d.message) is Message
        with pytest.raises(AttributeError):
            d.message.body = b"changed"  # type: ignore[misc]
        with pytest.raises(AttributeError):
            d.topic = "other"  # type: ignore[misc]
    claimed: list[Delivery] = []
    deliveries("t", entries[:2], {"1700000000000-0": 3}, claimed)
    assert [d.delivery_count for d in claimed] == [3, 2]


_text = st.text(max_size=8)


@given(body=st.binary(max_size=16), key=st.none() | _text, mid=_text,
       content_type=st.none() | _text, headers=st.dictionaries(_text, _text, max_size=2))
def test_the_fast_path_reads_what_the_full_parse_reads(
        body: bytes, key: str | None, mid: str, content_type: str | None,
        headers: dict[str, str]) -> None:
    """Whatever mqkit wrote (a body, an id, maybe a key, maybe more), ``deliveries``
    gives the message that the full field parse (``decode``) gives."""
    message = Message(body, key=key, headers=headers, id=mid or None,
                      content_type=content_type)
    fields = _raw(encode(message))
    out: list[Delivery] = []
    deliveries("t", [[b"1700000000000-0", fields]], None, out)
    assert out == [Delivery(decode("1700000000000-0", fields), "t", "1700000000000-0", 1,
                            1700000000.0, "1700000000000-0")]


def test_join_and_split_fields_are_binary_safe() -> None:
    flat: list[bytes | str] = [b"body", bytes(range(256)) + b"1:2:", "h:\u00e9", "", "id", "x"]
    packed = join_fields(flat)
    assert split_fields(packed) == [x.encode() if isinstance(x, str) else x for x in flat]


def test_delayed_messages_go_to_the_delayed_set() -> None:
    now = 1000.0
    out = send_commands("s", "s:mqkit-delayed", RedisOptions(),
                        [Message(b"a", id="1"), Message(b"b", id="2", delay=2.5)], now)
    assert out[0][:4] == ("XADD", "s", "NOMKSTREAM", "*")
    assert out[1][:3] == ("ZADD", "s:mqkit-delayed", "1002500")
    assert split_fields(out[1][3])[:2] == [b"body", b"b"]


def test_names_and_prefix() -> None:
    names = Names("app:", ":dead")
    assert names.stream("orders") == "app:orders"
    assert names.topic("app:orders") == "orders" and names.topic("other") is None
    assert names.retry("orders", "billing") == "app:orders:mqkit-retry:billing"
    assert names.delayed("orders") == "app:orders:mqkit-delayed"
    assert names.dead_letter("orders") == "orders:dead"
    assert Names().dead_letter("orders") == "orders:dlq"


def test_trimming_is_explicit() -> None:
    assert trim_args(RedisOptions(), 100.0) == []
    assert trim_args(RedisOptions(maxlen=1000), 100.0) == ["MAXLEN", "~", "1000"]
    assert trim_args(RedisOptions(max_age=10, trim_exact=True), 100.0) == [
        "MINID", "=", "90000"]
    with pytest.raises(mqkit.ConfigurationError, match="not both"):
        RedisOptions(maxlen=1, max_age=1)


def test_options_from_url_strings_and_unknown_names() -> None:
    opts = parse_options(RedisOptions, {"maxlen": "5", "persistence": "on", "tls": "true",
                                        "key_password": "pw", "block_slice": "0.5"})
    assert opts.maxlen == 5 and opts.persistence == "on" and opts.tls is True
    assert "pw" not in repr(opts)
    with pytest.raises(mqkit.ConfigurationError, match="bogus"):
        parse_options(RedisOptions, {"bogus": "1"})
    with pytest.raises(mqkit.ConfigurationError, match="block_slice"):
        RedisOptions(block_slice=0)


def test_client_kwargs_tls_auth_and_database(monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[tuple[str | None, bool]] = []
    monkeypatch.setattr(_link, "ssl_context", lambda o, check_hostname: checked.append(
        (o.ca_file, check_hostname)))
    url = URL.parse("rediss://alice:s3cret@cache.example:6380/3")
    kw = client_kwargs(ConnectParams(url, {}, 5.0), RedisOptions(ca_file="/ca.pem"))
    assert checked == [("/ca.pem", True)]  # the files are checked up front
    assert (kw["host"], kw["port"], kw["db"]) == ("cache.example", 6380, 3)
    assert (kw["username"], kw["password"]) == ("alice", "s3cret")
    assert kw["ssl"] is True and kw["ssl_ca_certs"] == "/ca.pem"
    assert kw["ssl_cert_reqs"] == ssl.CERT_REQUIRED and kw["ssl_check_hostname"] is True
    plain = client_kwargs(ConnectParams(URL.parse("redis://h"), {}, 5.0),
                          RedisOptions(verify=False))
    assert "ssl" not in plain and plain["port"] == 6379 and plain["db"] == 0
    insecure = client_kwargs(ConnectParams(URL.parse("redis://h"), {}, 5.0),
                             RedisOptions(tls=True, verify=False))
    assert insecure["ssl_cert_reqs"] == ssl.CERT_NONE
    assert insecure["ssl_check_hostname"] is False
    assert kw["ssl_min_version"] == insecure["ssl_min_version"] == ssl.TLSVersion.TLSv1_2
    with pytest.raises(mqkit.ConfigurationError, match="database number"):
        client_kwargs(ConnectParams(URL.parse("redis://h/x"), {}, 5.0), RedisOptions())
    assert "s3cret" not in repr(url)


def test_a_missing_ca_file_is_named() -> None:
    url = URL.parse("rediss://h")
    with pytest.raises(mqkit.ConfigurationError, match="'ca_file'"):
        client_kwargs(ConnectParams(url, {}, 5.0), RedisOptions(ca_file="/nonexistent.pem"))


@pytest.mark.parametrize(("native", "expected"), [
    (re_.ResponseError("NOGROUP No such key 's' or consumer group 'g'"), mqkit.NotFound),
    (re_.ResponseError("Command # 2 (XAUTOCLAIM s g c 1 0-0) of pipeline caused error: "
                       "NOGROUP No such key"), mqkit.NotFound),
    (re_.ResponseError("UNBLOCKED the stream key no longer exists"), mqkit.NotFound),
    (re_.ResponseError("UNBLOCKED the consumer group this client was blocked on no longer "
                       "exists"), mqkit.NotFound),
    (re_.ResponseError("UNBLOCKED client unblocked via CLIENT UNBLOCK"), mqkit.BackendError),
    (re_.ResponseError("BUSYGROUP Consumer Group name already exists"), mqkit.AlreadyExists),
    (re_.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
     mqkit.AlreadyExists),
    (re_.ResponseError("ERR The XGROUP subcommand requires the key to exist."),
     mqkit.NotFound),
    (re_.ResponseError("ERR something else"), mqkit.BackendError),
    (re_.ConnectionError("Error 111 connecting"), mqkit.Unavailable),
    (re_.TimeoutError("Timeout reading"), mqkit.Unavailable),
    (re_.AuthenticationError("invalid username-password pair"), mqkit.PermissionDenied),
    (re_.ReadOnlyError("READONLY"), mqkit.Unavailable),
    (re_.BusyLoadingError("LOADING"), mqkit.Unavailable),
    (re_.NoPermissionError("NOPERM"), mqkit.PermissionDenied),
    (re_.OutOfMemoryError("OOM"), mqkit.BackendError),
    (ConnectionResetError(104, "reset"), mqkit.Unavailable),
])
def test_error_table(native: BaseException, expected: type[mqkit.MQError]) -> None:
    assert type(map_error(native, "x")) is expected
    with pytest.raises(expected) as info, mapped("doing x"):
        raise native
    assert info.value.__cause__ is native and "doing x" in str(info.value)


def test_persistence_is_declared_from_the_server() -> None:
    assert capabilities_for(RedisOptions(), aof=True).persistence is Support.NATIVE
    assert capabilities_for(RedisOptions(), aof=False).persistence is Support.UNSUPPORTED
    assert capabilities_for(RedisOptions(persistence="on"), aof=False).persistence
    assert not capabilities_for(RedisOptions(persistence="off"), aof=True).persistence
    caps = capabilities_for(RedisOptions(), aof=False)
    assert caps.delivery == "at-least-once" and caps.delay is Support.EMULATED


def test_batch_packing_is_the_same_with_and_without_hiredis(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import redis
    from mqkit_redis import _link

    # packs commands, never connected; redis-py leaves its __init__ unannotated
    conn = redis.Connection()  # type: ignore[no-untyped-call]
    batch = send_commands("s", "d", RedisOptions(),
                          [Message(b"\x00\xff", id="1", headers={"h": "\u00e9"}),
                           Message(b"", id="2", delay=1.0)], 10.0)
    fast = _link.pack(conn, batch)
    monkeypatch.setattr(_link, "_hiredis_pack", None)
    assert _link.pack(conn, batch) == fast
    assert fast.startswith(b"*10\r\n$4\r\nXADD\r\n")


# -- the sans-I/O flows, driven with scripted replies (no broker) ----------------------

def _reader() -> Reader:
    from mqkit.driver import SubscriptionOptions

    return make_reader(Names(), "t", "g", options=RedisOptions(),
                       sub=SubscriptionOptions(lease=2.0, consumer_name="me"),
                       script_sha="sha")


def _drive(flow: Any, replies: list[list[Any]]) -> tuple[list[list[Any]], Any]:
    """Run ``flow`` feeding ``replies`` step by step; the commands it sent and its result."""
    sent = [next(flow)]
    try:
        for step in replies:
            sent.append(flow.send(step))
    except StopIteration as stop:
        return sent, stop.value
    raise AssertionError(f"flow wants more steps after {sent}")


def test_receive_takes_due_and_reclaimed_entries_but_not_parked_ones() -> None:
    reader = _reader()
    far = str(int(time.time() * 1000) + 60_000).encode()
    sent, got = _drive(reader.receive(10, 0.0), [
        # look: mover moved 0; schedule has 1-0 due; XAUTOCLAIM took 2-0 and 3-0
        [0, [b"1-0"], [b"5-0", [b"2-0", b"3-0"], []], 0],
        # ZREM 1-0 won; ZMSCORE: 2-0 not scheduled, 3-0 scheduled for later
        [1, [None, far]],
        # XCLAIM 1-0 2-0; XPENDING counts
        [[[b"1-0", [b"body", b"a", b"id", b"m1"]], [b"2-0", [b"body", b"b"]]],
         [[b"1-0", b"me", 0, 3]], [[b"2-0", b"me", 0, 2]]],
    ])
    look, step2, step3 = sent
    assert [c[0] for c in look] == ["EVALSHA", "ZRANGE", "XAUTOCLAIM", "EXISTS"]
    assert look[2][5] == "0-0" and reader.cursor == "5-0"  # the cursor is kept
    assert step2 == [("ZREM", "t:mqkit-retry:g", "1-0"),
                     ("ZMSCORE", "t:mqkit-retry:g", "2-0", "3-0")]
    assert step3[0] == ("XCLAIM", "t", "g", "me", 0, "1-0", "2-0")  # 3-0 stays parked
    assert [(d.message.id, d.delivery_count, d.message.body) for d in got] == [
        ("m1", 3, b"a"), ("2-0", 2, b"b")]


def test_receive_reads_new_entries_when_nothing_is_due() -> None:
    reader = _reader()
    sent, got = _drive(reader.receive(5, 0.0), [
        [0, [], [b"0-0", [], []], 0],
        [[[b"t", [[b"7-0", [b"body", b"x", b"h:k", b"v"]]]]]],
    ])
    assert sent[1] == [("XREADGROUP", "GROUP", "g", "me", "COUNT", 5, "STREAMS", "t", ">")]
    assert [(d.handle, d.delivery_count, dict(d.message.headers)) for d in got] == [
        ("7-0", 1, {"k": "v"})]


def test_a_lost_mover_script_is_loaded_again() -> None:
    reader = _reader()
    sent, got = _drive(reader.receive(5, 0.0), [
        [re_.NoScriptError("NOSCRIPT"), [], [b"0-0", [], []], 0],
        [b"sha"],
        [None],
    ])
    assert sent[1] == [("SCRIPT", "LOAD", MOVE_DUE)] and got == []


def test_nack_and_release_commands() -> None:
    reader = _reader()
    sent, _ = _drive(reader.nack(["1-0", "2-0"], 5.0), [[2]])
    assert sent[0][0][:2] == ("ZADD", "t:mqkit-retry:g") and reader.nacked
    sent, _ = _drive(reader.release(), [
        [[[b"1-0", b"me", 10, 1]]], [1, [b"1-0"]], [[]], [1]])
    assert sent[1][0][:3] == ("ZADD", "t:mqkit-retry:g", "NX")
    assert sent[1][1] == ("XCLAIM", "t", "g", "mqkit-released", 0, "1-0", "JUSTID")
    assert sent[3] == [("XGROUP", "DELCONSUMER", "t", "g", "me")]


# -- acks ahead of a read (flows.ahead) ------------------------------------------------

def _two_steps() -> Any:
    """A flow of two steps: returns both steps' replies."""
    first = yield [("XREADGROUP", "a")]
    second = yield [("XREADGROUP", "b")]
    return first, second


def test_ahead_sends_the_acks_in_the_first_step_and_hands_the_flow_its_own_replies() -> None:
    from mqkit_redis._flows import ahead
    flow = ahead([("XACK", "s", "g", "1-0"), ("XACK", "s:p9", "g", "2-0")], _two_steps())
    assert next(flow) == [("XACK", "s", "g", "1-0"), ("XACK", "s:p9", "g", "2-0"),
                          ("XREADGROUP", "a")]
    assert flow.send([1, 1, "read-a"]) == [("XREADGROUP", "b")]
    with pytest.raises(StopIteration) as stop:
        flow.send(["read-b"])
    assert stop.value.value == (["read-a"], ["read-b"])


def test_ahead_raises_an_ack_error_reply_once_the_step_is_in() -> None:
    from mqkit_redis._flows import ahead
    flow = ahead([("XACK", "s", "g", "1-0")], _two_steps())
    next(flow)
    error = re_.ResponseError("NOGROUP no such group")
    with pytest.raises(re_.ResponseError, match="NOGROUP"):
        flow.send([error, "read-a"])


def test_ahead_of_a_flow_that_sends_nothing_sends_the_acks_alone() -> None:
    from mqkit_redis._flows import ahead

    def nothing() -> Any:
        yield from ()  # a generator that sends nothing
        return "done"

    flow = ahead([("XACK", "s", "g", "1-0")], nothing())
    assert next(flow) == [("XACK", "s", "g", "1-0")]
    with pytest.raises(StopIteration) as stop:
        flow.send([1])
    assert stop.value.value == "done"


def test_reader_ack_commands_are_what_ack_sends() -> None:
    reader = _reader()
    flow = reader.ack(["1-0", "2-0"])
    assert next(flow) == reader.ack_commands(["1-0", "2-0"]) == [("XACK", reader.key, "g",
                                                                   "1-0", "2-0")]
