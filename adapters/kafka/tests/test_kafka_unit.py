"""Kafka adapter without a broker: options, client settings, names, ledger, errors."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

import kafka.errors as ke
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mqkit_kafka._driver import capabilities_for, client_config
from mqkit_kafka._errors import map_error, mapped
from mqkit_kafka._ledger import Ledger
from mqkit_kafka._names import (
    COUNT,
    RETRY_AT,
    Names,
    record_headers,
    record_size,
    split_record,
)
from mqkit_kafka._options import KafkaOptions

import mqkit
from mqkit.driver import URL, ConnectParams, Message, Support, parse_options

if TYPE_CHECKING:
    from conftest import FakeConsumers


def _params(url: str, **options: object) -> tuple[ConnectParams, KafkaOptions]:
    opts = parse_options(KafkaOptions, options)
    return ConnectParams(url=URL.parse(url), options=options, connect_timeout=4.0), opts


def test_unknown_option_is_named() -> None:
    with pytest.raises(mqkit.ConfigurationError, match="'lingerms'"):
        mqkit.connect("kafka://127.0.0.1:9092?lingerms=5")


def test_options_parse_and_validate() -> None:
    o = parse_options(KafkaOptions, {"partitions": "6", "acks": "all", "linger_ms": "20",
                                     "tls": "true", "sasl_mechanism": "SCRAM-SHA-512"})
    assert (o.partitions, o.acks, o.linger_ms, o.tls) == (6, "all", 20, True)
    with pytest.raises(mqkit.ConfigurationError, match="idempotence"):
        parse_options(KafkaOptions, {"acks": "1"})
    assert parse_options(KafkaOptions, {"acks": "1", "idempotence": "false"}).acks == "1"
    with pytest.raises(mqkit.ConfigurationError, match="group_format"):
        parse_options(KafkaOptions, {"group_format": "{topic}"})
    with pytest.raises(mqkit.ConfigurationError, match="sasl_mechanism"):
        parse_options(KafkaOptions, {"sasl_mechanism": "GSSAPI"})
    with pytest.raises(mqkit.ConfigurationError, match="max_message_size"):
        parse_options(KafkaOptions, {"max_message_size": "2000000"})


def test_client_config_plaintext_and_several_servers() -> None:
    params, o = _params("kafka://h1:9092,h2,h3:9093")
    config = client_config(params, o)
    assert config["bootstrap_servers"] == ["h1:9092", "h2:9092", "h3:9093"]
    assert config["security_protocol"] == "PLAINTEXT"
    assert config["bootstrap_timeout_ms"] == 4000
    assert "sasl_mechanism" not in config and "ssl_context" not in config


def test_client_config_tls_and_sasl() -> None:
    params, o = _params("kafka://alice:s3cr3tpw@h1:9094", tls="true", verify="false",
                        sasl_mechanism="scram-sha-256")
    config = client_config(params, o)
    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (config["sasl_plain_username"], config["sasl_plain_password"]) == ("alice",
                                                                              "s3cr3tpw")
    assert isinstance(config["ssl_context"], ssl.SSLContext)
    assert config["ssl_context"].verify_mode == ssl.CERT_NONE
    # user and password alone mean SASL/PLAIN over plaintext
    params, o = _params("kafka://bob:pw@h1:9092")
    config = client_config(params, o)
    assert (config["security_protocol"], config["sasl_mechanism"]) == ("SASL_PLAINTEXT",
                                                                       "PLAIN")
    params, o = _params("kafka://h1:9093", tls="true")
    assert client_config(params, o)["security_protocol"] == "SSL"


def test_a_missing_ca_file_is_named() -> None:
    params, o = _params("kafka://h1:9093", tls="true", ca_file="/nonexistent/ca.pem")
    with pytest.raises(mqkit.ConfigurationError, match="'ca_file'"):
        client_config(params, o)


def test_secrets_never_shown() -> None:
    o = parse_options(KafkaOptions, {"key_password": "kpw12345"})
    assert "kpw12345" not in repr(o)
    url = URL.parse("kafka://alice:s3cr3tpw@h1:9092")
    assert "s3cr3tpw" not in str(url) and "s3cr3tpw" not in repr(url)
    with pytest.raises(mqkit.ConfigurationError) as info:
        mqkit.connect("kafka://alice:s3cr3tpw@127.0.0.1:9092?sasl_mechanism=NOPE")
    assert "s3cr3tpw" not in str(info.value)


def test_capabilities_are_honest() -> None:
    caps = capabilities_for(KafkaOptions())
    assert caps.nack is Support.EMULATED and caps.nack_delay is Support.EMULATED
    assert caps.delay is Support.EMULATED and caps.lease_extension is Support.UNSUPPORTED
    assert caps.ordering is Support.NATIVE and caps.replay is Support.NATIVE
    assert caps.dead_letter is Support.EMULATED
    assert caps.persistence is Support.NATIVE
    weak = capabilities_for(parse_options(KafkaOptions, {"acks": "1", "idempotence": "0"}))
    assert weak.persistence is Support.UNSUPPORTED


def test_names() -> None:
    names = Names("{topic}.{group}", "mqkit.retry.")
    assert names.group_id("orders", "billing") == "orders.billing"
    assert names.retry_topic("orders", "billing") == "mqkit.retry.orders.billing"
    assert names.group_of("orders", "orders.billing") == "billing"
    assert names.group_of("orders", "other.billing") is None
    assert names.internal("mqkit.retry.orders.billing") and names.internal("__consumer_offsets")
    assert not names.internal("orders")
    plain = Names("{group}", "r.")
    assert plain.group_id("orders", "billing") == "billing"
    assert plain.group_of("orders", "billing") == "billing"


def test_headers_round_trip_and_internal_headers_removed() -> None:
    msg = Message(b"body", key="k", headers={"a": "1", "who": "zoë"}, id="m1",
                  content_type="text/plain", correlation_id="c1", reply_to="r")
    headers = record_headers(msg, [(COUNT, "3"), (RETRY_AT, "1700000000000")])
    back, count, retry_at = split_record("k", b"body", headers, "fallback")
    assert back == msg
    assert count == 3 and retry_at == 1_700_000_000.0
    plain, count, retry_at = split_record(None, b"", [("x", b"\xff")], "t:0:7")
    assert (plain.id, plain.body, plain.key, count, retry_at) == ("t:0:7", b"", None, 1, None)
    assert plain.headers == {"x": "\ufffd"}


def test_record_size_bounds_key_and_headers() -> None:
    base = record_size(None, b"x" * 100, [])
    assert base >= 100
    assert record_size(b"key", b"x" * 100, [("h", b"v" * 50)]) >= base + 3 + 51


def test_ledger_commits_only_the_settled_prefix() -> None:
    ledger = Ledger()
    epoch = 0
    for offset in range(5):
        epoch = ledger.deliver("p0", offset)
    assert ledger.settle("p0", 2, epoch) and ledger.settle("p0", 1, epoch)
    assert ledger.to_commit() == {}          # 0 is unsettled: nothing moves
    ledger.settle("p0", 0, epoch)
    assert ledger.to_commit() == {"p0": 3}    # 0, 1, 2 settled; 3 is not
    ledger.committed({"p0": 3})
    assert ledger.to_commit() == {}
    ledger.settle("p0", 4, epoch)
    assert ledger.to_commit() == {}
    ledger.settle("p0", 3, epoch)
    assert ledger.to_commit() == {"p0": 5}
    assert ledger.unsettled() == 0


def test_ledger_gaps_and_stale_epochs() -> None:
    ledger = Ledger()
    epoch = ledger.deliver("p", 10)
    ledger.deliver("p", 14)  # offsets 11-13 were never records (compaction, markers)
    ledger.settle("p", 14, epoch)
    ledger.settle("p", 10, epoch)
    assert ledger.to_commit() == {"p": 15}
    state = ledger.detach("p")
    assert not ledger.settle("p", 16, epoch)  # revoked: stale
    assert state is not None
    ledger.attach("p", state)                 # came back to us: valid again
    ledger.deliver("p", 15)
    assert ledger.settle("p", 15, epoch)
    fresh = ledger.assign("p")
    assert fresh != epoch and not ledger.settle("p", 15, epoch)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 30), unique=True, min_size=1, max_size=30).flatmap(
    lambda offsets: st.tuples(st.just(sorted(offsets)), st.permutations(offsets))))
def test_ledger_commit_point_is_the_settled_prefix_in_any_order(
        case: tuple[list[int], list[int]]) -> None:
    """Settled in any order (in order takes a fast path), the commit point is always
    the offset after the longest settled prefix of what was delivered."""
    delivered, order = case
    ledger = Ledger()
    epoch = ledger.epoch("p")
    ledger.deliver_many("p", delivered)
    settled: set[int] = set()
    for offset in order:
        assert ledger.settle("p", offset, epoch)
        settled.add(offset)
        prefix = 0
        while prefix < len(delivered) and delivered[prefix] in settled:
            prefix += 1
        expected = {"p": delivered[prefix - 1] + 1} if prefix else {}
        assert ledger.to_commit() == expected
        assert ledger.unsettled() == len(delivered) - prefix


def test_error_table() -> None:
    cases = [
        (ke.UnknownTopicOrPartitionError(), mqkit.NotFound),
        (ke.TopicAlreadyExistsError(), mqkit.AlreadyExists),
        (ke.KafkaTimeoutError("x"), mqkit.Unavailable),
        (ke.KafkaConnectionError("x"), mqkit.Unavailable),
        (ke.CoordinatorNotAvailableError(), mqkit.Unavailable),
        (ke.SaslAuthenticationFailedError(), mqkit.PermissionDenied),
        (ke.MessageSizeTooLargeError(), mqkit.MessageTooLarge),
        (ke.InvalidTopicError(), mqkit.ConfigurationError),
        (ke.CommitFailedError(), mqkit.BackendError),
        (ConnectionRefusedError(), mqkit.Unavailable),
        (ke.KafkaError("other"), mqkit.BackendError),
    ]
    for native, cls in cases:
        assert type(map_error(native, "op")) is cls, native
    with pytest.raises(mqkit.NotFound) as info:
        with mapped("send"):
            raise ke.UnknownTopicOrPartitionError()
    assert isinstance(info.value.__cause__, ke.UnknownTopicOrPartitionError)
    assert info.value.native is info.value.__cause__


def test_unreachable_broker_is_unavailable_quickly() -> None:
    import time
    start = time.monotonic()
    with pytest.raises(mqkit.Unavailable) as info:
        client = mqkit.connect("kafka://127.0.0.1:9", connect_timeout=2)
        client.admin.list_topics()
    assert time.monotonic() - start < 15
    assert info.value.__cause__ is not None


def test_dead_letter_topic_is_configurable() -> None:
    assert parse_options(KafkaOptions, {}).dead_letter_format == "{topic}.dlq"
    o = parse_options(KafkaOptions, {"dead_letter_format": "dlq.{topic}"})
    assert o.dead_letter_format.format(topic="orders") == "dlq.orders"
    with pytest.raises(mqkit.ConfigurationError, match="dead_letter_format"):
        parse_options(KafkaOptions, {"dead_letter_format": "dlq"})


@pytest.mark.parametrize("state, replaced", [("<stable>", True), ("<rebalancing>", False)])
def test_a_member_that_joined_with_nothing_is_replaced_within_seconds(
        state: str, replaced: bool, consumers: FakeConsumers) -> None:
    """A join that happened before a new topic's partitions had a leader leaves the
    member with none of them: it is replaced after ~2 s, not a whole session plus 5 s
    (contract case 3 lost a live message in CI). A member still joining is left alone."""
    import time

    from mqkit_kafka._consumer import KafkaSubscription

    consumers.state = state
    members = consumers.made
    sub = KafkaSubscription(consumers, lambda: None, "t", "mqkit.retry.t.g",
                            max_request_size=1 << 20, send_timeout=1.0, stuck_after=15.0,
                            end_offsets=lambda tps: {}, unowned=lambda: 3)
    sub._progress = time.monotonic() - 2.5   # idle 2.5 s: suspect, look again in 1 s
    sub._watch_membership()
    assert len(members) == 1
    sub._progress -= 1.5                      # 1.5 s later: still empty, still unowned
    sub._watch_membership()
    assert (len(members) == 2) is replaced
    assert members[0].closed is replaced


def test_a_paused_retry_partition_got_back_in_a_rebalance_is_resumed(
        consumers: FakeConsumers) -> None:
    """kafka-python keeps a partition paused across a rebalance that gives it back; the
    subscription forgot its due time on revocation, so it must resume it (the not-due
    record is read and paused again): contract case 28 waited forever otherwise."""
    from kafka import TopicPartition
    from mqkit_kafka._consumer import KafkaSubscription

    sub = KafkaSubscription(consumers, lambda: None, "t", "mqkit.retry.t.g",
                            max_request_size=1 << 20, send_timeout=1.0, stuck_after=15.0,
                            end_offsets=lambda tps: {}, unowned=lambda: 0)
    member = consumers.made[0]
    retry, other = TopicPartition("mqkit.retry.t.g", 0), TopicPartition("t", 0)
    sub._on_assigned([retry, other])
    member.pause(retry)
    sub._paused[retry] = 4102444800.0  # due in 2100
    sub._on_revoked([retry, other])
    sub._on_assigned([retry, other])
    assert member.paused() == set()


class _Record:
    def __init__(self, offset: int, retry_at_ms: int | None = None) -> None:
        self.offset = offset
        self.key = None
        self.value = b"m%d" % offset
        self.timestamp = 1_700_000_000_000
        self.headers = [("mqkit-id", b"id%d" % offset)]
        if retry_at_ms is not None:
            self.headers.append(("mqkit-retry-at", str(retry_at_ms).encode()))


@pytest.mark.parametrize("taken", [True, False])
def test_a_delayed_send_moves_to_the_retry_topic_or_is_read_again(
        taken: bool, consumers: FakeConsumers, monkeypatch: pytest.MonkeyPatch) -> None:
    """A main-topic record not due yet goes to the group's retry topic and is settled
    (the commit passes it); if the retry topic refuses it, the partition is read again
    from it and nothing after it is handed out: never skipped, never lost."""
    import time

    import mqkit_kafka._consumer as kc
    from kafka import TopicPartition
    from mqkit_kafka._consumer import KafkaSubscription

    moved: list[tuple[str, list[Any]]] = []

    def send_records(producer: object, topic: str, records: list[Any], *args: object) -> None:
        if not taken:
            raise mqkit.Unavailable("retry topic down")
        moved.append((topic, records))

    monkeypatch.setattr(kc, "send_records", send_records)
    sub = KafkaSubscription(consumers, lambda: None, "t", "mqkit.retry.t.g",
                            max_request_size=1 << 20, send_timeout=1.0, stuck_after=15.0,
                            end_offsets=lambda tps: {}, unowned=lambda: 0)
    tp = TopicPartition("t", 0)
    due = int((time.time() + 60) * 1000)
    out = sub._deliveries({tp: [_Record(0), _Record(1, due), _Record(2)]})
    if taken:
        assert [d.message.body for d in out] == [b"m0", b"m2"]
        assert [(t, [r[1] for r in rs]) for t, rs in moved] == [("mqkit.retry.t.g", [b"m1"])]
        for d in out:
            sub._ledger.settle(*d.handle)  # type: ignore[misc]
        assert sub._ledger.to_commit() == {tp: 3}
    else:
        assert [d.message.body for d in out] == [b"m0"]
        assert consumers.made[0].seeks == [(tp, 1)]
        assert sub._ledger.position(tp) == 1


def test_a_member_cut_off_from_every_broker_is_unavailable_after_seconds(
        consumers: FakeConsumers) -> None:
    """Between fetches kafka-python only returns empty polls while every broker is down;
    the member says Unavailable once it has had no connection for a few seconds (the
    run loop and /readyz see the outage), and is fine again once one is back."""
    import time

    from mqkit_kafka._consumer import _UNREACHABLE_AFTER, KafkaSubscription

    sub = KafkaSubscription(consumers, lambda: None, "orders", "mqkit.retry.orders.g",
                            max_request_size=1 << 20, send_timeout=1.0, stuck_after=15.0,
                            end_offsets=lambda tps: {}, unowned=lambda: 0)
    member = consumers.made[0]
    member.up = False
    sub._check_reachable()                    # the first empty poll without a broker
    sub._unreachable_since = time.monotonic() - _UNREACHABLE_AFTER + 1
    sub._check_reachable()                    # not long enough yet
    sub._unreachable_since = time.monotonic() - _UNREACHABLE_AFTER - 0.1
    with pytest.raises(mqkit.Unavailable, match=r"no broker reachable.*'orders'"):
        sub._check_reachable()
    member.up = True
    sub._check_reachable()
    assert sub._unreachable_since is None
