"""Priority bands of the SQS adapter, pure logic: names, validation, capabilities, wire."""

from __future__ import annotations

import dataclasses
from typing import Any

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


# -- the reader, against a fake SQS client -------------------------------------------

class _FakeSqs:
    """ReceiveMessage / DeleteMessageBatch over in-memory queues; records the calls."""

    def __init__(self, queues: dict[str, list[bytes]]) -> None:
        self.queues = queues
        self.calls: list[tuple[str, str, int]] = []  # (operation, queue, asked/entries)
        self.fail: set[str] = set()

    def receive_message(self, *, QueueUrl: str, MaxNumberOfMessages: int,
                        WaitTimeSeconds: int, **_: object) -> dict[str, object]:
        self.calls.append(("receive", QueueUrl, MaxNumberOfMessages))
        if QueueUrl in self.fail:
            raise mqkit.Unavailable("down")
        if QueueUrl not in self.queues:
            raise mqkit.NotFound("gone")
        taken = self.queues[QueueUrl][:MaxNumberOfMessages]
        del self.queues[QueueUrl][:MaxNumberOfMessages]
        return {"Messages": [
            {"Body": b.decode(), "MessageId": b.decode(), "ReceiptHandle": f"rh-{b.decode()}",
             "Attributes": {}, "MessageAttributes": encode(Message(b)).attributes}
            for b in taken]}

    def delete_message_batch(self, *, QueueUrl: str,
                             Entries: list[dict[str, str]]) -> dict[str, object]:
        self.calls.append(("delete", QueueUrl, len(Entries)))
        return {}


class _FakeResources:
    def __init__(self, sqs: _FakeSqs, bands: list[int]) -> None:
        self.sqs = sqs
        self.options = SqsOptions(wait_time=0)
        self.bands = bands
        self.lookups = 0

    def group_queue(self, topic: str, group: str) -> str:
        return "plain"

    def queue_url(self, queue: str) -> str:
        return queue

    def forget(self, queue: str) -> None:
        pass

    def band_queues(self, topic: str, group: str) -> list[tuple[int, str]]:
        self.lookups += 1
        return [(p, f"p{p}") for p in BANDS if p in self.bands]

    def recover(self, topic: str) -> bool:
        return False


def _subscription(queues: dict[str, list[bytes]]) -> tuple[Any, _FakeSqs, _FakeResources]:
    from mqkit_sqs._consumer import SqsSubscription

    from mqkit.driver import SubscriptionOptions

    sqs = _FakeSqs(queues)
    res = _FakeResources(sqs, [int(q[1:]) for q in queues if q != "plain"])
    sub = SqsSubscription(res, "t", "g", SubscriptionOptions(),  # type: ignore[arg-type]
                          recreate_group=False)
    return sub, sqs, res


def test_no_band_one_receive_request_per_receive_and_plain_handles() -> None:
    sub, sqs, res = _subscription({"plain": [b"a", b"b"]})
    got = sub.receive_batch(10, 0.0)
    assert [d.message.body for d in got] == [b"a", b"b"]
    assert [d.handle for d in got] == ["rh-a", "rh-b"]
    assert sqs.calls == [("receive", "plain", 10)]
    assert res.lookups == 1  # at open only: the next look is BAND_REFRESH away
    sub.receive_batch(10, 0.0)
    assert res.lookups == 1
    sub.ack(got)
    assert sqs.calls[-1] == ("delete", "plain", 2)


def test_strict_priority_asks_each_band_only_for_what_is_missing() -> None:
    sub, sqs, _ = _subscription({"p9": [b"9a"], "p5": [b"5a", b"5b", b"5c"],
                                 "p2": [b"2a"], "plain": [b"0a"]})
    got = sub.receive_batch(3, 0.0)
    assert [d.message.body for d in got] == [b"9a", b"5a", b"5b"]
    assert [d.message.priority for d in got] == [9, 5, 5]
    assert sqs.calls == [("receive", "p9", 3), ("receive", "p5", 2)]
    sqs.calls.clear()
    rest = sub.receive_batch(10, 0.0)
    assert [d.message.body for d in rest] == [b"5c", b"2a", b"0a"]
    assert sqs.calls == [("receive", "p9", 10), ("receive", "p5", 10),
                         ("receive", "p2", 9), ("receive", "plain", 8)]
    sqs.calls.clear()
    sub.ack(got + rest)  # one batch per queue the messages came from
    assert sorted(sqs.calls) == [("delete", "p2", 1), ("delete", "p5", 3),
                                 ("delete", "p9", 1), ("delete", "plain", 1)]


def test_a_band_that_went_away_is_dropped_and_a_failure_keeps_what_was_leased() -> None:
    sub, sqs, _ = _subscription({"p7": [b"7a"], "p3": [], "plain": [b"0a"]})
    del sqs.queues["p3"]  # deleted with its group
    sqs.fail.add("plain")
    got = sub.receive_batch(10, 0.0)
    assert [d.message.body for d in got] == [b"7a"]  # handed out, not dropped
    assert [lane[0] for lane in sub._lanes] == [7]
    with pytest.raises(mqkit.Unavailable):
        sub.receive_batch(10, 0.0)
