"""Redis adapter: priority emulated with one stream per band (``_bands``, ``_reader``).

Band naming and the reader's hand-out are driven without a broker (scripted replies);
the admin verbs across bands, settling on the right band stream and the plain client's
view run against the real server (``MQKIT_TEST_REDIS_URL``; skipped without it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, cast

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from mqkit_redis._bands import READ_BANDS_SHA
from mqkit_redis._names import BANDS, Names
from mqkit_redis._options import RedisOptions
from mqkit_redis._reader import Reader, make_reader

import mqkit
from mqkit.driver import SubscriptionOptions

# -- names ---------------------------------------------------------------------------

_TOPICS = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1,
                  max_size=30)


@given(topic=_TOPICS, prefix=st.sampled_from(["", "app:", "x{y}:"]),
       priority=st.integers(0, 9))
def test_band_names(topic: str, prefix: str, priority: int) -> None:
    names = Names(prefix)
    band = names.band(topic, priority)
    if priority == 0:
        assert band == names.stream(topic)
    else:
        assert band == f"{prefix}{topic}:mqkit-p{priority}"
        assert names.is_band(band) and names.topic(band) is None  # never listed
        assert names.retry_of(band, "g") == f"{band}:mqkit-retry:g"
        assert names.delayed_of(band) == f"{band}:mqkit-delayed"
    assert names.bands(topic)[9 - priority:][:1] == ([band] if priority else [])
    if not names.is_band(names.stream(topic)):
        assert names.topic(names.stream(topic)) == topic


@given(priority=st.one_of(st.integers().filter(lambda p: not 0 <= p <= 9),
                          st.sampled_from([None, 1.0, "3", True])))
def test_band_refuses_a_bad_priority(priority: Any) -> None:
    with pytest.raises(mqkit.InvalidMessage, match="priority"):
        Names().band("t", priority)


def test_a_topic_named_like_a_band_is_refused() -> None:
    Names.check_topic("orders:mqkit-p")  # not a band: fine
    Names.check_topic("orders:mqkit-p0")
    with pytest.raises(mqkit.ConfigurationError, match="topic"):
        Names.check_topic("orders:mqkit-p7")
    assert BANDS == (9, 8, 7, 6, 5, 4, 3, 2, 1)


# -- the reader's hand-out, scripted -------------------------------------------------

def _reader() -> Reader:
    return make_reader(Names(), "t", "g", options=RedisOptions(),
                       sub=SubscriptionOptions(lease=2.0, consumer_name="me"),
                       script_sha="sha")


def _drive(flow: Any, replies: list[list[Any]]) -> tuple[list[list[Any]], Any]:
    sent = [next(flow)]
    try:
        for step in replies:
            sent.append(flow.send(step))
    except StopIteration as stop:
        return sent, stop.value
    raise AssertionError(f"flow wants more steps after {sent}")


def _discovered(reader: Reader, *priorities: int) -> None:
    present = [1 if p in priorities else 0 for p in BANDS]
    sent, _ = _drive(reader.discover(), [present, [b"BUSYGROUP"] * len(priorities)])
    assert sent[0] == [("EXISTS", f"t:mqkit-p{p}") for p in BANDS]


def test_discovery_reads_the_bands_highest_first() -> None:
    reader = _reader()
    _discovered(reader, 3, 9)
    assert [(lane.key, lane.priority) for lane in reader.lanes] == [
        ("t:mqkit-p9", 9), ("t:mqkit-p3", 3), ("t", None)]
    assert reader.banded


def test_receive_hands_out_the_highest_band_first() -> None:
    reader = _reader()
    _discovered(reader, 3, 9)
    nothing = [0, [], [b"0-0", [], []]]
    sent, got = _drive(reader.receive(2, 0.0), [
        [*nothing * 3, 2],  # the look: nothing due on three lanes, two bands exist
        [[[[b"t:mqkit-p9", [[b"5-0", [b"body", b"nine"]]]],
           [b"t", [[b"1-0", [b"body", b"zero"]]]]], []]],
    ])
    assert sent[1] == [("EVALSHA", READ_BANDS_SHA, 3, "t:mqkit-p9", "t:mqkit-p3", "t",
                        "g", "me", 2)]
    assert [(d.message.body, d.message.priority, d.handle) for d in got] == [
        (b"nine", 9, ("t:mqkit-p9", "5-0")), (b"zero", None, "1-0")]


def test_a_woken_read_gives_back_what_it_does_not_hand_out() -> None:
    reader = _reader()
    _discovered(reader, 5)
    nothing = [0, [], [b"0-0", [], []]]
    sent, got = _drive(reader.receive(1, 0.5), [
        [*nothing * 2, 1],
        [[[], []]],  # READ_BANDS: nothing yet
        # the blocked read woke with an entry on each lane (the plain one listed first)
        [[[b"t", [[b"1-0", [b"body", b"zero"]]]],
          [b"t:mqkit-p5", [[b"2-0", [b"body", b"five"]]]]]],
        [[b"1-0"], 1],  # give-back: XCLAIM JUSTID, ZADD NX
    ])
    assert sent[2][0][:2] == ("XREADGROUP", "GROUP") and "BLOCK" in sent[2][0]
    assert sent[3][0] == ("XCLAIM", "t", "g", "mqkit-released", 0, "1-0",
                          "RETRYCOUNT", 0, "JUSTID")
    assert sent[3][1][:3] == ("ZADD", "t:mqkit-retry:g", "NX")
    assert [d.message.body for d in got] == [b"five"] and reader.nacked


def test_settling_addresses_each_band_stream() -> None:
    reader = _reader()
    _discovered(reader, 9)
    sent, _ = _drive(reader.ack(["1-0", ("t:mqkit-p9", "1-0"), "2-0"]), [[2, 1]])
    assert sent[0] == [("XACK", "t", "g", "1-0", "2-0"), ("XACK", "t:mqkit-p9", "g", "1-0")]
    sent, _ = _drive(reader.nack([("t:mqkit-p9", "3-0")], None), [[1]])
    assert sent[0][0][:2] == ("ZADD", "t:mqkit-p9:mqkit-retry:g")
    sent, _ = _drive(reader.extend([("t:mqkit-p9", "3-0")]), [[[b"3-0"]]])
    assert sent[0] == [("XCLAIM", "t:mqkit-p9", "g", "me", 0, "3-0", "JUSTID")]


def test_a_topic_without_bands_sends_what_it_always_sent() -> None:
    reader = _reader()
    _discovered(reader)
    sent, got = _drive(reader.receive(5, 0.0), [
        [0, [], [b"0-0", [], []], 0],
        [[[b"t", [[b"7-0", [b"body", b"x"]]]]]],
    ])
    assert sent[1] == [("XREADGROUP", "GROUP", "g", "me", "COUNT", 5, "STREAMS", "t", ">")]
    assert [d.handle for d in got] == ["7-0"] and not reader.banded


# -- against the server ----------------------------------------------------------------

StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]
"""What redis-py's ``xrange`` returns over RESP2 (its annotations describe RESP3)."""


def _bodies(r: redis.Redis, key: str) -> list[bytes]:
    return [f[b"body"] for _, f in cast("StreamEntries", r.xrange(key))]


@pytest.fixture
def raw(url: str) -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(url)
    yield r
    r.close()


@pytest.fixture
def client(url: str, name: str) -> Iterator[mqkit.Client]:
    c = mqkit.connect(url)
    yield c
    try:
        c.admin.delete_topic(name)
        c.admin.delete_topic(c.dead_letter_topic(name))
    finally:
        c.close()


def test_admin_verbs_span_the_bands(client: mqkit.Client, raw: redis.Redis,
                                    name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "early", start="earliest")
    producer = client.producer(name)
    producer.send(b"old-5", priority=5)  # makes band 5, with "early" from 0
    client.admin.create_group(name, "late")  # latest: on band 5 from $
    producer.send_batch([mqkit.Message(b"new-5", priority=5),
                         mqkit.Message(b"new-0", priority=0),
                         mqkit.Message(b"new-9", priority=9)])
    assert raw.type(f"{name}:mqkit-p9") == b"stream"
    assert sorted(g["name"] for g in raw.xinfo_groups(f"{name}:mqkit-p9")) == [
        b"early", b"late"]
    assert client.admin.list_topics().count(name) == 1
    assert not any(":mqkit-p" in t for t in client.admin.list_topics())
    assert client.admin.depth(name, "early") == 4
    assert client.admin.depth(name, "late") == 3
    # a plain client reads the plain stream: what was sent without priority
    assert _bodies(raw, name) == [b"new-0"]
    with client.consumer(name, "late") as consumer:
        got = consumer.receive(3, timeout=5)
        assert [m.body for m in got] == [b"new-9", b"new-5", b"new-0"]
        assert [m.message.priority for m in got] == [9, 5, None]
        consumer.ack(got[:1])
        consumer.nack(got[1:2], delay=30, wait=True)
        stats = client.admin.stats(name, "late")
        assert (stats.depth, stats.in_flight) == (2, 1)
        assert raw.zcard(f"{name}:mqkit-p5:mqkit-retry:late") == 1
        assert raw.xpending(f"{name}:mqkit-p9", "late")["pending"] == 0
    client.admin.purge(name, "early")
    assert client.admin.depth(name, "early") == 0
    client.admin.delete_group(name, "late")
    assert [g["name"] for g in raw.xinfo_groups(f"{name}:mqkit-p5")] == [b"early"]
    client.admin.delete_topic(name)
    assert raw.keys(f"{name}*") == []


def test_redelivery_and_close_release_on_a_band(client: mqkit.Client, raw: redis.Redis,
                                               name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    client.producer(name).send_batch([mqkit.Message(b"a", priority=7),
                                      mqkit.Message(b"b", priority=7)])
    with client.consumer(name, "g", prefetch=1) as consumer:
        [first] = consumer.receive(1, timeout=5)
        first.nack(wait=True)
        [again] = consumer.receive(1, timeout=5)
        assert (again.body, again.delivery_count) == (b"a", 2)
        again.ack(wait=True)
    # "b" was left unread or handed back on close: the next consumer gets it
    with client.consumer(name, "g") as consumer:
        deadline = time.monotonic() + 10
        got: list[mqkit.ReceivedMessage] = []
        while not got and time.monotonic() < deadline:
            got = consumer.receive(5, timeout=1)
        assert [m.body for m in got] == [b"b"]
        consumer.ack(got, wait=True)
    assert raw.xpending(f"{name}:mqkit-p7", "g")["pending"] == 0


def test_delayed_send_with_priority_lands_in_its_band(client: mqkit.Client,
                                                      name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    client.producer(name).send_batch([mqkit.Message(b"later", priority=4, delay=0.3),
                                      mqkit.Message(b"now")])
    with client.consumer(name, "g") as consumer:
        got: list[mqkit.ReceivedMessage] = []
        deadline = time.monotonic() + 10
        while len(got) < 2 and time.monotonic() < deadline:
            got += consumer.receive(5, timeout=1)
        consumer.ack(got, wait=True)
    assert [(m.body, m.message.priority) for m in got] == [(b"now", None), (b"later", 4)]


def test_dead_letters_keep_the_band(client: mqkit.Client, raw: redis.Redis,
                                   name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    client.producer(name).send(b"poison", priority=6)

    def handler(msg: mqkit.ReceivedMessage) -> None:
        raise ValueError("bad input")

    policy = mqkit.RetryPolicy(max_attempts=2, initial_backoff=0.05, max_backoff=0.1)
    with client.consumer(name, "g", lease=2) as consumer:
        stats = consumer.run(handler, retry=policy, idle_timeout=3)
    assert stats.dead_lettered == 1
    assert raw.xpending(f"{name}:mqkit-p6", "g")["pending"] == 0
    dlq = client.dead_letter_topic(name)
    assert _bodies(raw, dlq) + _bodies(raw, f"{dlq}:mqkit-p6") == [b"poison"]


def test_a_band_deleted_under_a_consumer_is_dropped(client: mqkit.Client, raw: redis.Redis,
                                                    name: str) -> None:
    """A band that vanishes (a restart without persistence, a plain DEL) is dropped by
    the consumers reading it, which go on; the next send at its level makes it again."""
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    producer = client.producer(name)
    producer.send(b"first", priority=3)
    with client.consumer(name, "g") as consumer:
        [first] = consumer.receive(1, timeout=5)
        first.ack(wait=True)
        raw.delete(f"{name}:mqkit-p3")
        time.sleep(0.1)  # past the 50 ms between looks: the next receive looks first
        assert consumer.receive(1, timeout=0.3) == []
        producer.send(b"plain")
        producer.send(b"again", priority=3)  # made again, with the group
        got: list[mqkit.ReceivedMessage] = []
        deadline = time.monotonic() + 10
        while len(got) < 2 and time.monotonic() < deadline:
            got += consumer.receive(5, timeout=1)
        consumer.ack(got, wait=True)
    assert sorted(m.body for m in got) == [b"again", b"plain"]


# -- sending, scripted -----------------------------------------------------------------

def test_send_makes_each_band_once_and_again_when_it_vanished() -> None:
    import redis.exceptions as re_
    from mqkit_redis._bands import ENSURE_BAND, ENSURE_BAND_SHA
    from mqkit_redis._flows import send_banded

    ensured: set[str] = set()
    batch = [mqkit.Message(b"a", id="1", priority=2), mqkit.Message(b"b", id="2"),
             mqkit.Message(b"c", id="3", priority=2, delay=5.0)]
    sent, replies = _drive(send_banded(Names(), "t", RedisOptions(), batch, 100.0,
                                       ensured=ensured), [
        [re_.NoScriptError("NOSCRIPT")],  # a flushed server: loaded, then run again
        [b"sha"],
        [1],
        [b"9-0", b"10-0", 1],
    ])
    assert sent[0] == [("EVALSHA", ENSURE_BAND_SHA, 2, "t", "t:mqkit-p2")]
    assert sent[1] == [("SCRIPT", "LOAD", ENSURE_BAND)]
    assert [c[:2] for c in sent[3]] == [("XADD", "t:mqkit-p2"), ("XADD", "t"),
                                        ("ZADD", "t:mqkit-p2:mqkit-delayed")]
    assert ensured == {"t:mqkit-p2"} and replies == [b"9-0", b"10-0", 1]
    # known now: no EVALSHA; the band vanished (nil): made again, sent once more
    sent, replies = _drive(send_banded(Names(), "t", RedisOptions(), batch[:2], 100.0,
                                       ensured=ensured), [
        [None, b"11-0"],
        [1],
        [b"12-0"],
    ])
    assert sent[0][0][:2] == ("XADD", "t:mqkit-p2")
    assert sent[1] == [("EVALSHA", ENSURE_BAND_SHA, 2, "t", "t:mqkit-p2")]
    assert sent[2] == [sent[0][0]] and replies == [b"12-0", b"11-0"]


def test_send_to_a_missing_topic_makes_no_band() -> None:
    from mqkit_redis._flows import send_banded

    ensured: set[str] = set()
    sent, replies = _drive(send_banded(Names(), "t", RedisOptions(),
                                       [mqkit.Message(b"a", id="1", priority=9)], 1.0,
                                       ensured=ensured), [[0], [None], [0], [None]])
    assert [c[0][0] for c in sent] == ["EVALSHA", "XADD", "EVALSHA", "XADD"]
    assert ensured == set() and replies == [None]  # send_outcome: NotFound
