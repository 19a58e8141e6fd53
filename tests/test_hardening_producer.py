"""Producer-side hardening on memory:// (issue 14): data integrity and bad input.

* Message headers are read-only :class:`mqkit._message.Headers`, copied when a message is
  built: nothing aliases between the sender's dict, the groups, and redeliveries.
* ``flush`` never drops a failed buffered message unreported: the :class:`SendBatchError`
  carries the failed ``Message`` objects, which can be sent again.
* Every producer/message argument of a wrong type or value raises a typed ``MQError``
  naming it, never a bare ``TypeError``/``ValueError`` and never silence; property tests
  check that arbitrary bodies, keys, header maps, ids and option values either round-trip
  exactly or raise such an error.
"""

from __future__ import annotations

import copy
import json
import math
import pickle
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import mqkit
import mqkit.aio
from mqkit._message import Headers

from .faulty import FAULTS

LIMIT = 400  # max_message_size of the property tests' brokers: sizes get exercised


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    FAULTS.reset()
    yield
    FAULTS.reset()


def _client(scheme: str = "memory", query: str = "") -> mqkit.Client:
    client = mqkit.connect(f"{scheme}://h-{uuid.uuid4().hex[:10]}{query}")
    client.admin.create_topic("t")
    client.admin.create_group("t", "g")
    return client


# -- data integrity: headers ------------------------------------------------------------


def test_default_headers_are_shared_but_immutable() -> None:
    first = mqkit.Message(b"a")
    with pytest.raises(TypeError, match="read-only"):
        first.headers["tenant"] = "a"  # type: ignore[index]
    with pytest.raises(TypeError):
        first.headers.update(x="1")  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        first.headers.setdefault("x", "1")  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        first.headers |= {"x": "1"}  # type: ignore[misc, operator]
    assert dict(mqkit.Message(b"b").headers) == {}


def test_caller_dict_edited_after_building_or_sending_changes_nothing() -> None:
    with _client() as client, client.producer("t") as producer, \
            client.consumer("t", "g") as consumer:
        mine = {"tenant": "a"}
        built = mqkit.Message(b"m", headers=mine)
        mine["tenant"] = "changed"
        mine["extra"] = "1"
        assert built.headers == {"tenant": "a"}
        producer.send(built)
        sent = {"k": "v"}
        producer.send(b"kw", headers=sent)
        sent["k"] = "after send"
        sent["new"] = "x"
        got = consumer.receive(2, timeout=1)
        assert [dict(m.headers) for m in got] == [{"tenant": "a"}, {"k": "v"}]


def test_groups_and_redeliveries_do_not_alias() -> None:
    with _client() as client:
        client.admin.create_group("t", "other")
        with client.producer("t") as producer:
            producer.send(b"x", headers={"h": "1"})
        with client.consumer("t", "g") as one, client.consumer("t", "other") as two:
            a = one.receive(1, timeout=1)[0]
            with pytest.raises(TypeError):
                a.headers["h"] = "edited by group g"  # type: ignore[index]
            copied = dict(a.headers)
            copied["h"] = "edited copy"
            b = two.receive(1, timeout=1)[0]
            assert b.headers == {"h": "1"}
            a.nack()
            again = one.receive(1, timeout=2)[0]
            assert again.delivery_count == 2 and again.headers == {"h": "1"}
            again.ack()
            b.ack()


def test_handler_cannot_change_headers_of_later_messages() -> None:
    seen: list[dict[str, str]] = []
    errors: list[BaseException] = []
    with _client() as client:
        with client.producer("t") as producer:
            producer.send(b"1")
            producer.send(b"2")

        def handler(msg: mqkit.ReceivedMessage) -> None:
            seen.append(dict(msg.headers))
            try:
                msg.headers["leak"] = "x"  # type: ignore[index]
            except TypeError as exc:
                errors.append(exc)

        with client.consumer("t", "g") as consumer:
            consumer.run(handler, idle_timeout=0.3)
    assert seen == [{}, {}] and len(errors) == 2
    assert dict(mqkit.Message().headers) == {}


def test_headers_read_like_a_dict() -> None:
    h = mqkit.Message(headers={"a": "1", "b": "2"}).headers
    assert isinstance(h, Headers) and isinstance(h, dict)
    assert json.loads(json.dumps(h)) == {"a": "1", "b": "2"}
    assert pickle.loads(pickle.dumps(h)) == h and type(pickle.loads(pickle.dumps(h))) is Headers
    assert copy.copy(h) is h and copy.deepcopy(h) is h
    merged = {**h, "c": "3"}
    assert merged == {"a": "1", "b": "2", "c": "3"} and type(h | {"c": "3"}) is dict
    assert hash(h) == hash(Headers({"b": "2", "a": "1"}))
    msg = mqkit.Message(b"x", headers=h)
    assert msg.headers is h  # immutable, so shared without a copy
    assert hash(msg) == hash(mqkit.Message(b"x", headers={"b": "2", "a": "1"}))
    assert pickle.loads(pickle.dumps(msg)) == msg


def test_headers_that_are_not_a_mapping_are_refused_by_name() -> None:
    for bad in ([("a", "b")], "a=b", 5):
        with pytest.raises(mqkit.InvalidMessage, match="headers must be a mapping"):
            mqkit.Message(b"", headers=bad)  # type: ignore[arg-type]


# -- data integrity: flush --------------------------------------------------------------


def test_failed_flush_hands_back_every_buffered_message() -> None:
    with _client("faulty") as client, client.producer("t") as producer:
        ids = [producer.send(f"m{i}".encode(), wait=False) for i in range(3)]
        FAULTS.fail("send_batch", mqkit.BackendError("broker refused the batch"))
        with pytest.raises(mqkit.SendBatchError) as info:
            producer.flush()
        exc = info.value
        assert sorted(exc.failures) == sorted(exc.messages) == [0, 1, 2]
        assert [exc.messages[i].id for i in range(3)] == ids
        assert [exc.messages[i].body for i in range(3)] == [b"m0", b"m1", b"m2"]
        assert ids[0] in str(exc)
        producer.flush()  # the buffer was handed back in the error: nothing left to send
        assert FAULTS.count("send_batch") == 1
        assert producer.send_batch(exc.messages.values()) == ids
        with client.consumer("t", "g") as consumer:
            got = consumer.receive(10, timeout=1)
            assert [m.id for m in got] == ids and [m.body for m in got] == [b"m0", b"m1", b"m2"]


def test_partial_flush_failure_names_the_failed_messages_only() -> None:
    with _client("faulty") as client, client.producer("t") as producer:
        ids = [producer.send(b"x", wait=False) for _ in range(3)]
        FAULTS.fail("send_batch", mqkit.SendBatchError({1: mqkit.BackendError("full")}, 3))
        with pytest.raises(mqkit.SendBatchError) as info:
            producer.flush()
        assert list(info.value.messages) == [1] and info.value.messages[1].id == ids[1]


def test_close_with_a_failing_flush_reports_the_messages() -> None:
    client = _client("faulty")
    producer = client.producer("t")
    mid = producer.send(b"late", wait=False)
    FAULTS.fail("send_batch", mqkit.BackendError("gone"))
    with pytest.raises(mqkit.SendBatchError) as info:
        producer.close()
    assert [m.id for m in info.value.messages.values()] == [mid]
    client.close()


def test_send_after_a_failed_buffer_raises_before_sending_itself() -> None:
    with _client("faulty") as client, client.producer("t") as producer:
        producer.send(b"buffered", wait=False)
        FAULTS.fail("send_batch", mqkit.BackendError("refused"))
        with pytest.raises(mqkit.SendBatchError) as info:
            producer.send(b"now")
        assert [m.body for m in info.value.messages.values()] == [b"buffered"]
        assert client.admin.depth("t", "g") == 0
        producer.send(b"now")  # the buffer is empty: no repeat of the old failure
        assert client.admin.depth("t", "g") == 1


async def test_cancelled_flush_keeps_the_buffer() -> None:
    import asyncio

    async with mqkit.aio.connect(f"faulty://h-{uuid.uuid4().hex[:8]}") as client:
        await client.admin.create_topic("t")
        await client.admin.create_group("t", "g")
        producer = client.producer("t")
        await producer.send(b"a", wait=False)
        FAULTS.fail("send_batch", mqkit.Unavailable("restarting"), times=1000)
        task = asyncio.ensure_future(producer.flush())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        FAULTS.reset()
        await producer.flush()
        assert await client.admin.depth("t", "g") == 1
        await producer.close()


# -- bad input: one example per item of the issue ---------------------------------------


BAD_SENDS: list[tuple[dict[str, Any], type[mqkit.MQError], str]] = [
    ({"priority": "5"}, mqkit.InvalidMessage, "priority"),
    ({"priority": 5.5}, mqkit.InvalidMessage, "priority"),
    ({"priority": True}, mqkit.InvalidMessage, "priority"),
    ({"priority": 10}, mqkit.InvalidMessage, "priority"),
    ({"ttl": "5"}, mqkit.InvalidMessage, "ttl"),
    ({"ttl": math.nan}, mqkit.InvalidMessage, "ttl"),
    ({"ttl": math.inf}, mqkit.InvalidMessage, "ttl"),
    ({"ttl": 0}, mqkit.InvalidMessage, "ttl"),
    ({"delay": "5"}, mqkit.InvalidMessage, "delay"),
    ({"delay": -1}, mqkit.InvalidMessage, "delay"),
    ({"delay": math.nan}, mqkit.InvalidMessage, "delay"),
    ({"delay": math.inf}, mqkit.InvalidMessage, "delay"),
    ({"id": 5}, mqkit.InvalidMessage, "id"),
    ({"id": ""}, mqkit.InvalidMessage, "id"),
    ({"key": 5}, mqkit.InvalidMessage, "key"),
    ({"key": "\ud800"}, mqkit.InvalidMessage, "key"),
    ({"content_type": 3}, mqkit.InvalidMessage, "content_type"),
    ({"correlation_id": b"x"}, mqkit.InvalidMessage, "correlation_id"),
    ({"reply_to": ""}, mqkit.InvalidMessage, "reply_to"),
    ({"headers": {"mqkit-dead-letter-reason": "x"}}, mqkit.InvalidMessage, "reserved"),
    ({"headers": {"MQKIT-key": "x"}}, mqkit.InvalidMessage, "reserved"),
    ({"headers": {"a": 1}}, mqkit.InvalidMessage, "header"),
    ({"headers": {"": "x"}}, mqkit.InvalidMessage, "header"),
    ({"headers": {"a": "\udfff"}}, mqkit.InvalidMessage, "header"),
    ({"headers": [("a", "b")]}, mqkit.InvalidMessage, "headers"),
    ({"wait": "no"}, mqkit.ConfigurationError, "wait"),
]


@pytest.mark.parametrize(("kwargs", "error", "word"), BAD_SENDS,
                         ids=[repr(k) for k, _, _ in BAD_SENDS])
def test_bad_send_arguments_are_named(kwargs: dict[str, Any], error: type[mqkit.MQError],
                                      word: str) -> None:
    with _client() as client, client.producer("t") as producer:
        with pytest.raises(error, match=word):
            producer.send(b"x", **kwargs)
        with pytest.raises(error, match=word):
            producer.send(b"x", **{"wait": False, **kwargs})
        producer.flush()
        assert client.admin.depth("t", "g") == 0


def test_an_empty_id_is_not_deduplicated_away() -> None:
    with _client() as client, client.producer("t") as producer:
        producer.send(b"a", id="same")
        with pytest.raises(mqkit.InvalidMessage):
            producer.send(b"b", id="")
        with pytest.raises(mqkit.InvalidMessage):
            producer.send(mqkit.Message(b"c", id=""))
        assert client.admin.depth("t", "g") == 1


@pytest.mark.parametrize("headers", [
    {"big": "v" * 2_000_000},
    {f"h{i:05}": "v" * 100 for i in range(10_000)},
    {"é" * 300_000: "ü" * 300_000},  # 1.2 MB in UTF-8, 600k characters
])
def test_headers_count_towards_the_size_limit(headers: dict[str, str]) -> None:
    with _client() as client, client.producer("t") as producer:
        with pytest.raises(mqkit.MessageTooLarge) as info:
            producer.send(b"x", headers=headers)
        size, limit = info.value.size, info.value.limit
        assert limit == 1_048_576 and size is not None and size > limit
        assert client.admin.depth("t", "g") == 0


def test_key_counts_towards_the_size_limit() -> None:
    with _client(query="?max_message_size=100") as client, client.producer("t") as producer:
        producer.send(b"x" * 50, key="k" * 50)
        with pytest.raises(mqkit.MessageTooLarge) as info:
            producer.send(b"x" * 50, key="k" * 51)
        assert info.value.size == 101 and info.value.limit == 100


def test_dead_letters_still_carry_mqkit_headers() -> None:
    with _client() as client:
        with client.producer("t") as producer:
            producer.send(b"poison")

        def handler(msg: mqkit.ReceivedMessage) -> None:
            raise mqkit.PermanentFailure("bad input")

        client.admin.create_topic("t.dlq")
        client.admin.create_group("t.dlq", "inspect")
        with client.consumer("t", "g") as consumer:
            stats = consumer.run(handler, idle_timeout=0.3)
        assert stats.dead_lettered == 1
        with client.consumer("t.dlq", "inspect") as dlq:
            dead = dlq.receive(1, timeout=1)[0]
        assert "bad input" in dead.headers[mqkit.DLQ_HEADERS["reason"]]


@pytest.mark.parametrize("messages", [None, 5, "abc", b"abc", mqkit.Message(b"x")])
def test_send_batch_takes_an_iterable_of_messages(messages: Any) -> None:
    with _client() as client, client.producer("t") as producer:
        with pytest.raises(mqkit.ConfigurationError, match="send_batch"):
            producer.send_batch(messages)


def test_send_batch_names_the_bad_entry_and_sends_nothing() -> None:
    with _client() as client, client.producer("t") as producer:
        with pytest.raises(mqkit.InvalidMessage, match=r"messages\[2\].*priority"):
            producer.send_batch([b"a", mqkit.Message(b"b"), mqkit.Message(b"c", priority=11)])
        with pytest.raises(mqkit.InvalidMessage, match=r"messages\[1\]"):
            producer.send_batch([b"a", 5])
        assert client.admin.depth("t", "g") == 0


@pytest.mark.parametrize("codec", [None, "json", 5, mqkit.JSON.encode])
def test_codec_must_be_a_codec(codec: Any) -> None:
    with _client() as client:
        with pytest.raises(mqkit.ConfigurationError, match="codec"):
            client.producer("t", codec=codec)
        with pytest.raises(mqkit.ConfigurationError, match="codec"):
            client.request("t", b"x", codec=codec)


# -- property-based: arbitrary input round-trips or is refused by name ------------------

_FIELDS = ("key", "headers", "id", "content_type", "correlation_id", "reply_to", "priority",
           "ttl", "delay")
# Where the property tests' error must point for each bad field (a word in its message).
_WORDS = {"key": "key", "headers": "header", "id": "id", "content_type": "content_type",
          "correlation_id": "correlation_id", "reply_to": "reply_to",
          "priority": "priority", "ttl": "ttl", "delay": "delay", "body": "bytes"}

_any_text = st.text(st.characters(exclude_categories=()), max_size=12)  # with surrogates
_text = st.one_of(st.text(max_size=12), _any_text)
_garbage = st.one_of(st.integers(-3, 3), st.booleans(), st.binary(max_size=3),
                     st.floats(allow_nan=True), st.lists(st.integers(), max_size=2))
_seconds_garbage = st.one_of(st.sampled_from([0, -1, -0.5, math.nan, math.inf, -math.inf,
                                              "5", True, False, b"1"]), st.floats(max_value=0))
_optional_text = st.one_of(st.none(), _text, _garbage)
_headers = st.one_of(
    st.dictionaries(_text, _text, max_size=5),
    st.dictionaries(st.sampled_from(["mqkit-x", "MQKIT-Key", "Mqkit-dead-letter-topic", "ok"]),
                    _text, max_size=2),
    st.dictionaries(_text, st.one_of(_text, _garbage), max_size=3),
    st.none(), _garbage, st.text(max_size=3))


def _utf8(text: str) -> int | None:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return None


def _seconds_ok(value: object, positive: bool) -> bool:
    return (not isinstance(value, bool) and isinstance(value, int | float)
            and (value > 0 if positive else value >= 0) and value < math.inf)


def _bad_fields(body: object, fields: dict[str, Any]) -> tuple[set[str], int]:
    """The oracle: which fields are invalid, and the message size if all are valid."""
    bad: set[str] = set()
    size = 0
    if isinstance(body, bytes | bytearray):
        size += len(body)
    else:
        bad.add("body")
    key = fields["key"]
    if key is not None:
        n = _utf8(key) if isinstance(key, str) else None
        if n is None:
            bad.add("key")
        else:
            size += n
    headers = fields["headers"]
    if headers is not None and not isinstance(headers, dict):
        bad.add("headers")
    elif headers:
        for name, value in headers.items():
            n = _utf8(name) if isinstance(name, str) and name else None
            v = _utf8(value) if isinstance(value, str) else None
            if n is None or v is None or name.lower().startswith("mqkit-"):
                bad.add("headers")
            else:
                size += n + v
    for name in ("id", "content_type", "correlation_id", "reply_to"):
        value = fields[name]
        if value is not None and not (isinstance(value, str) and value and _utf8(value)):
            bad.add(name)
    p = fields["priority"]
    if p is not None and not (type(p) is int and 0 <= p <= 9):
        bad.add("priority")
    if fields["ttl"] is not None and not _seconds_ok(fields["ttl"], True):
        bad.add("ttl")
    if fields["delay"] is not None and not _seconds_ok(fields["delay"], False):
        bad.add("delay")
    return bad, size


_any_fields = st.fixed_dictionaries({
    "key": _optional_text,
    "headers": _headers,
    "id": st.one_of(st.none(), _text, _garbage, st.just("")),
    "content_type": _optional_text,
    "correlation_id": _optional_text,
    "reply_to": _optional_text,
    "priority": st.one_of(st.none(), st.integers(-2, 12), st.floats(0, 9), st.booleans(),
                          st.text(max_size=2)),
    # Valid TTLs are long and valid delays zero, so a valid message is received at once.
    "ttl": st.one_of(st.none(), st.floats(60, 1e9), _seconds_garbage),
    "delay": st.one_of(st.none(), st.just(0), st.just(0.0), _seconds_garbage),
})
_some_text = st.text(min_size=1, max_size=12)
_valid_fields = st.fixed_dictionaries({
    "key": st.one_of(st.none(), st.text(max_size=12)),
    "headers": st.one_of(st.none(), st.dictionaries(
        _some_text.filter(lambda n: not n.lower().startswith("mqkit-")), st.text(max_size=12),
        max_size=5)),
    "id": st.one_of(st.none(), _some_text),
    "content_type": st.one_of(st.none(), _some_text),
    "correlation_id": st.one_of(st.none(), _some_text),
    "reply_to": st.one_of(st.none(), _some_text),
    "priority": st.one_of(st.none(), st.integers(0, 9)),
    "ttl": st.one_of(st.none(), st.floats(60, 1e9), st.integers(60, 10**6)),
    "delay": st.sampled_from([None, 0, 0.0]),
})


@st.composite
def message_fields(draw: st.DrawFn) -> dict[str, Any]:
    """Valid fields with none, one or two of them drawn from anything (often invalid)."""
    fields = draw(_valid_fields)
    anything = draw(_any_fields)
    for name in draw(st.lists(st.sampled_from(_FIELDS), max_size=2, unique=True)):
        fields[name] = anything[name]
    return fields


bodies = st.one_of(st.binary(max_size=64), st.binary(max_size=64), st.binary(max_size=64),
                   st.binary(min_size=LIMIT - 40, max_size=LIMIT + 10),
                   st.text(max_size=3), st.integers(), st.none(), st.just(bytearray(b"ba")))


def _assert_refused(exc: mqkit.MQError, bad: set[str], size: int) -> None:
    """``exc`` is the right refusal: the exact size over the limit (checked once body, key
    and headers are known good), or an error naming one of the ``bad`` fields."""
    if isinstance(exc, mqkit.MessageTooLarge):
        assert size > LIMIT and exc.size == size and exc.limit == LIMIT, (exc, size)
        assert not bad & {"body", "key", "headers"}
        return
    text = str(exc)
    assert bad and any(re.search(rf"\b{_WORDS[f]}", text) for f in bad), (bad, text)


@pytest.fixture(scope="module")
def prop_client() -> Iterator[mqkit.Client]:
    with mqkit.connect(f"memory://prop-{uuid.uuid4().hex[:8]}?max_message_size={LIMIT}") as c:
        yield c


def _fresh_topic(client: mqkit.Client) -> str:
    topic = f"t-{uuid.uuid4().hex[:12]}"  # one per example: dedup never spans examples
    client.admin.create_topic(topic)
    client.admin.create_group(topic, "g")
    return topic


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, fields=message_fields(), as_message=st.booleans())
def test_send_round_trips_or_names_the_bad_argument(prop_client: mqkit.Client, body: Any,
                                                    fields: dict[str, Any],
                                                    as_message: bool) -> None:
    client = prop_client
    topic = _fresh_topic(client)
    bad, size = _bad_fields(body, fields)
    with client.producer(topic) as producer, client.consumer(topic, "g") as consumer:
        try:
            if as_message:
                mid = producer.send(mqkit.Message(body, **fields))
            else:
                mid = producer.send(body, **fields)
        except mqkit.MQError as exc:
            event(f"refused: {type(exc).__name__}")
            _assert_refused(exc, bad, size)
            assert type(exc) is not mqkit.MQError, "an untyped MQError"
            assert client.admin.depth(topic, "g") == 0
            return
        assert not bad, f"accepted invalid {bad}: {fields!r}"
        assert size <= LIMIT
        event("round-trip")
        got = consumer.receive(2, timeout=1)
        assert len(got) == 1
        m = got[0]
        assert m.body == bytes(body)
        assert m.key == fields["key"]
        assert dict(m.headers) == dict(fields["headers"] or {})
        assert m.id == mid and (fields["id"] is None or m.id == fields["id"])
        assert (m.content_type, m.correlation_id, m.reply_to) == (
            fields["content_type"], fields["correlation_id"], fields["reply_to"])
        m.ack()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=st.lists(st.tuples(bodies, message_fields()), max_size=4))
def test_send_batch_sends_all_or_names_the_entry_and_sends_none(
        prop_client: mqkit.Client, entries: list[tuple[Any, dict[str, Any]]]) -> None:
    client = prop_client
    topic = _fresh_topic(client)
    verdicts = [_bad_fields(body, fields) for body, fields in entries]
    first_bad = next((i for i, (bad, size) in enumerate(verdicts) if bad or size > LIMIT),
                     None)
    ids = [f.get("id") for _, f in entries if isinstance(f.get("id"), str)]
    try:
        messages = [mqkit.Message(b, **f) for b, f in entries]
    except mqkit.InvalidMessage as exc:  # the constructor takes only mappings as headers
        assert "headers must be a mapping" in str(exc)
        assert any(f["headers"] is not None and not isinstance(f["headers"], dict)
                   for _, f in entries)
        return
    with client.producer(topic) as producer:
        try:
            sent = producer.send_batch(messages)
        except mqkit.MQError as exc:
            assert first_bad is not None, exc
            assert f"messages[{first_bad}]" in str(exc)
            _assert_refused(exc, *verdicts[first_bad])
            assert client.admin.depth(topic, "g") == 0
            return
    assert first_bad is None
    unique = len(set(sent))  # equal ids in one batch are deduplicated, as documented
    assert client.admin.depth(topic, "g") == unique
    assert len(ids) <= len(sent)


_names = st.one_of(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,30}", fullmatch=True),
                   st.text(max_size=8), st.none(), st.integers(),
                   st.from_regex(r"[a-z]{1,5}\n", fullmatch=True), st.just("x" * 201))
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=_names, group=_names)
def test_admin_names_round_trip_or_are_refused_by_name(prop_client: mqkit.Client,
                                                       topic: Any, group: Any) -> None:
    admin = prop_client.admin
    topic_ok = isinstance(topic, str) and _NAME.fullmatch(topic) is not None
    group_ok = isinstance(group, str) and _NAME.fullmatch(group) is not None
    calls: list[Callable[[], object]] = [
        lambda: admin.create_topic(topic), lambda: admin.topic_exists(topic),
        lambda: admin.list_groups(topic), lambda: admin.delete_topic(topic),
        lambda: prop_client.dead_letter_topic(topic), lambda: prop_client.producer(topic)]
    for call in calls:
        if topic_ok:
            call()
        else:
            with pytest.raises(mqkit.ConfigurationError, match="topic name"):
                call()
    if not topic_ok:
        return
    admin.create_topic(topic)
    if group_ok:
        admin.create_group(topic, group)
        assert group in admin.list_groups(topic) and admin.group_exists(topic, group)
        assert admin.depth(topic, group) == 0
        admin.delete_group(topic, group)
        assert not admin.group_exists(topic, group)
    else:
        group_calls: list[Callable[[], object]] = [
            lambda: admin.create_group(topic, group), lambda: admin.delete_group(topic, group),
            lambda: admin.group_exists(topic, group), lambda: admin.stats(topic, group),
            lambda: admin.purge(topic, group), lambda: prop_client.consumer(topic, group)]
        for call in group_calls:
            with pytest.raises(mqkit.ConfigurationError, match="group name"):
                call()
    admin.delete_topic(topic)
    assert not admin.topic_exists(topic)
