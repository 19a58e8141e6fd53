"""Pure logic of the SQS adapter: wire format, names, options, errors, capabilities."""

from __future__ import annotations

import base64
import json
from typing import Any

import botocore.exceptions as be
import pytest
from mqkit_sqs._driver import (
    MAX_MESSAGE_SIZE,
    capabilities_for,
    connect,
    endpoint_of,
    fifo_capabilities,
)
from mqkit_sqs._errors import map_error, mapped
from mqkit_sqs._names import Names
from mqkit_sqs._options import SqsOptions
from mqkit_sqs._wire import MAX_SIZE, META, decode, dedup_id, delay_seconds, encode

import mqkit
from mqkit.driver import ConnectParams, Message, Support, parse_options


def _as_received(message: Message, message_id: str = "sqs-id") -> dict[str, object]:
    enc = encode(message)
    return {"Body": enc.body, "MessageAttributes": enc.attributes, "MessageId": message_id,
            "ReceiptHandle": "rh", "Attributes": {"ApproximateReceiveCount": "3",
                                                  "SentTimestamp": "1700000000000"}}


# -- wire format ---------------------------------------------------------------------

def test_text_body_goes_as_is_with_headers_as_attributes() -> None:
    enc = encode(Message("zoë ✓".encode(), headers={"tenant": "a"}, id="i1", key="k"))
    assert enc.body == "zoë ✓"
    assert enc.attributes["tenant"] == {"DataType": "String", "StringValue": "a"}
    meta = json.loads(enc.attributes[META]["StringValue"])
    assert meta == {"id": "i1", "key": "k"}


@pytest.mark.parametrize("body", [b"\x00\xff\xfe", b"\xc3", b"ok\x01", b"\x00", bytes(range(256))])
def test_binary_bodies_go_as_flagged_base64_and_come_back_byte_exact(body: bytes) -> None:
    enc = encode(Message(body, id="b"))
    assert json.loads(enc.attributes[META]["StringValue"])["body"] == "base64"
    assert base64.b64decode(enc.body) == body
    assert decode(_as_received(Message(body, id="b")), "t").message.body == body


def test_empty_body_is_a_dash_flagged_empty() -> None:
    enc = encode(Message(b"", id="e"))
    assert enc.body == "-"
    assert decode(_as_received(Message(b"", id="e")), "t").message.body == b""


def test_all_fields_round_trip() -> None:
    sent = Message(b"x", key="k", headers={"a": "1", "empty": "", "bad name!": "v",
                                            "AWS.reserved": "r", "ctl": "\x01"},
                   id="id-1", content_type="text/plain", correlation_id="c", reply_to="r")
    got = decode(_as_received(sent), "topic")
    assert got.message == sent
    assert (got.delivery_count, got.timestamp, got.broker_id, got.handle) == (
        3, 1_700_000_000.0, "sqs-id", "rh")
    enc = encode(sent)
    assert set(enc.attributes) == {"a", META}  # the rest ride in the mqkit attribute


def test_mqkit_headers_take_only_the_attributes_left_and_spill_into_meta() -> None:
    user = {f"h{i}": str(i) for i in range(9)}  # the most a user may give
    own = {"mqkit-expires": "1700000000000", "mqkit-dead-letter-reason": "boom"}
    sent = Message(b"x", headers={**own, **user}, id="i")
    enc = encode(sent)
    assert len(enc.attributes) == 10  # SQS's cap, never more
    assert set(user) <= set(enc.attributes)  # every user header is its own attribute
    meta = json.loads(enc.attributes[META]["StringValue"])
    assert meta["headers"] == own
    assert decode(_as_received(sent), "t").message == sent
    few = encode(Message(b"x", headers={"a": "1", **own}, id="i"))
    assert set(few.attributes) == {"a", META, *own}  # room left: attributes of their own


def test_any_number_of_headers_fits_the_first_nine_as_attributes() -> None:
    user = {f"h{i:02}": str(i) for i in range(12)}
    sent = Message(b"x", headers={**user, "traceparent": "00-" + "1" * 32 + "-" + "2" * 16
                                  + "-01", "mqkit-expires": "1"}, id="i")
    enc = encode(sent)
    assert len(enc.attributes) == 10
    assert [n for n in enc.attributes if n != META] == [f"h{i:02}" for i in range(9)]
    meta = json.loads(enc.attributes[META]["StringValue"])
    assert set(meta["headers"]) == {"h09", "h10", "h11", "traceparent", "mqkit-expires"}
    assert decode(_as_received(sent), "t").message == sent


def test_plain_peer_message_gets_sqs_id_and_every_attribute() -> None:
    raw = {"Body": "hello", "MessageId": "m-1", "ReceiptHandle": "rh", "MessageAttributes": {
        "s": {"DataType": "String", "StringValue": "v"},
        "n": {"DataType": "Number", "StringValue": "42"},
        "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}}}
    got = decode(raw, "t")
    assert got.message.id == "m-1" and got.message.body == b"hello"
    assert dict(got.message.headers) == {"s": "v", "n": "42", "b": "AAE="}
    assert got.delivery_count == 1


def test_size_counts_body_and_attributes() -> None:
    fits = Message(b"x" * MAX_MESSAGE_SIZE, id="0" * 32)
    assert encode(fits).size <= MAX_SIZE
    with pytest.raises(mqkit.MessageTooLarge) as info:
        encode(Message(b"x" * MAX_MESSAGE_SIZE, id="0" * 32,
                       headers={f"h{i}": "v" * 100 for i in range(9)}))
    size = info.value.size
    assert info.value.limit == MAX_SIZE and size is not None and size > MAX_SIZE
    with pytest.raises(mqkit.MessageTooLarge):  # base64 grows a binary body by a third
        encode(Message(b"\xff" * 200_000, id="i"))


def test_delay_rounds_up_and_dedup_ids_are_legal() -> None:
    assert [delay_seconds(d) for d in (None, 0, 0.2, 1.0, 2.5, 900)] == [0, 0, 1, 1, 3, 900]
    assert dedup_id(Message(b"", id="abc")) == "abc"
    assert len(dedup_id(Message(b"", id="é" * 200))) == 64


def test_batches_split_at_256_kib_per_request() -> None:
    from mqkit_sqs._producer import by_size

    encoded = [encode(Message(b"x" * n, id="i")) for n in (100_000, 100_000, 100_000, 10)]
    assert list(by_size(range(4), encoded)) == [[0, 1], [2, 3]]
    assert list(by_size([3, 2], encoded)) == [[3, 2]]
    small = [encode(Message(b"x", id="i"))] * 10
    assert list(by_size(range(10), small)) == [list(range(10))]


# -- names ---------------------------------------------------------------------------

def test_names_default_and_configured() -> None:
    names = Names()
    assert names.topic("orders") == "orders"
    assert names.queue("orders", "billing") == "orders-billing"
    assert names.group_of("orders", "orders-billing") == "billing"
    assert names.group_of("orders", "other-billing") is None
    assert names.queue("a.b:c", "g") == "a_b_c-g"
    assert names.queue("jobs.fifo", "w") == "jobs-w.fifo"
    assert names.group_of("jobs.fifo", "jobs-w.fifo") == "w"
    assert names.dead_letter("jobs.fifo") == "jobs-dlq.fifo"
    long = names.queue("t" * 100, "g")
    assert len(long) == 80 and long != names.queue("t" * 101, "g")
    every = Names(fifo=True)
    assert (every.topic("jobs"), every.queue("jobs", "w")) == ("jobs.fifo", "jobs-w.fifo")
    assert every.is_fifo("jobs") and every.from_native("jobs.fifo") == "jobs"
    assert every.from_native("standard") is None and every.dead_letter("jobs") == "jobs-dlq"
    custom = Names(prefix="app_", queue_format="{group}-of-{topic}")
    assert custom.topic("x") == "app_x" and custom.queue("x", "g") == "app_g-of-x"
    assert custom.from_native("app_x") == "x" and custom.from_native("x") is None


# -- options, URL, TLS and auth ------------------------------------------------------

def test_options_parse_from_url_strings() -> None:
    opts = parse_options(SqsOptions, {"mode": "queue", "tls": "false", "verify": "no",
                                      "session_token": "t0k3n-v4lue", "max_receive_count": "5",
                                      "ca_file": "/ca.pem", "region": "eu-west-1"})
    assert opts.mode == "queue" and not opts.tls and not opts.verify
    assert opts.max_receive_count == 5 and opts.ca_file == "/ca.pem"
    assert "t0k3n" not in repr(opts) and opts.session_token is not None
    assert opts.session_token.reveal() == "t0k3n-v4lue"


@pytest.mark.parametrize("bad", [{"bogus": "1"}, {"mode": "fanout"}, {"wait_time": "21"},
                                 {"queue_format": "{group}"}, {"prefix": "a.b"},
                                 {"queue_format": "{group}-{topic}x"}])
def test_bad_options_are_configuration_errors(bad: dict[str, str]) -> None:
    with pytest.raises(mqkit.ConfigurationError):
        parse_options(SqsOptions, bad)


def test_endpoint_from_host_with_tls_choice() -> None:
    def ep(text: str) -> str | None:
        url = mqkit.URL.parse(text)
        return endpoint_of(ConnectParams(url), parse_options(SqsOptions, dict(url.query)))

    assert ep("sqs://?region=eu-west-1") is None
    assert ep("sqs://k:s@127.0.0.1:5000?tls=false") == "http://127.0.0.1:5000"
    assert ep("sqs://vpce.example.com") == "https://vpce.example.com"


def test_sns_scheme_refuses_queue_mode_and_keys_come_in_pairs() -> None:
    with pytest.raises(mqkit.ConfigurationError, match="mode=sns"):
        connect(ConnectParams(mqkit.URL.parse("sns+sqs://h:1"), {"mode": "queue"}))
    with pytest.raises(mqkit.ConfigurationError, match="both"):
        connect(ConnectParams(mqkit.URL.parse("sqs://onlykey@h:1?region=us-east-1"),
                              {"region": "us-east-1"}))


def test_secret_key_never_shown_in_errors() -> None:
    url = "sqs://AKIDEXAMPLE:s3cr3t-Pa55@127.0.0.1:9?region=us-east-1&tls=false"
    with pytest.raises(mqkit.Unavailable) as info:
        mqkit.connect(url, connect_timeout=2)
    for text in (str(info.value), repr(info.value), str(info.value.__cause__)):
        assert "s3cr3t" not in text


def _tls_verify(client: object) -> object:
    """What a boto3 client's HTTP session verifies certificates against (botocore keeps
    its endpoint private and offers no accessor for it)."""
    endpoint: Any = vars(client)["_endpoint"]
    return endpoint.http_session._verify


# -- errors --------------------------------------------------------------------------

def _client_error(code: str, status: int = 400) -> be.ClientError:
    return be.ClientError(
        {"Error": {"Code": code, "Message": "m"},
         "ResponseMetadata": {"RequestId": "r", "HostId": "h", "HTTPStatusCode": status,
                              "HTTPHeaders": {}, "RetryAttempts": 0}},
        "Op")


@pytest.mark.parametrize(("native", "expected"), [
    (_client_error("AWS.SimpleQueueService.NonExistentQueue"), mqkit.NotFound),
    (_client_error("QueueDoesNotExist"), mqkit.NotFound),
    (_client_error("NotFound", 404), mqkit.NotFound),
    (_client_error("QueueNameExists"), mqkit.AlreadyExists),
    (_client_error("Throttling"), mqkit.Unavailable),
    (_client_error("InvalidClientTokenId", 403), mqkit.PermissionDenied),
    (_client_error("InvalidMessageContents"), mqkit.InvalidMessage),
    (_client_error("SomethingNew", 503), mqkit.Unavailable),
    (_client_error("SomethingNew", 400), mqkit.BackendError),
    (_client_error("UnsupportedOperation"), mqkit.Unsupported),
    (be.EndpointConnectionError(endpoint_url="http://x"), mqkit.Unavailable),
    (be.ConnectTimeoutError(endpoint_url="http://x"), mqkit.ConnectTimeout),
    (be.ReadTimeoutError(endpoint_url="http://x"), mqkit.Unavailable),
    (be.NoCredentialsError(), mqkit.ConfigurationError),
    (be.NoRegionError(), mqkit.ConfigurationError),
])
def test_error_table(native: Exception, expected: type[mqkit.MQError]) -> None:
    assert type(map_error(native, "op")) is expected
    with pytest.raises(expected) as info, mapped("op"):
        raise native
    assert info.value.__cause__ is native and info.value.native is native


# -- capabilities --------------------------------------------------------------------

def test_capabilities_follow_mode_endpoint_and_options() -> None:
    sns = capabilities_for(SqsOptions(), custom_endpoint=True)
    assert sns.groups is Support.NATIVE and sns.delay is Support.EMULATED
    assert sns.persistence is Support.UNSUPPORTED  # an emulator may forget
    assert sns.max_headers is None and sns.max_batch == 10 and sns.max_delay == 900
    assert sns.dead_letter is Support.EMULATED
    aws = capabilities_for(SqsOptions(max_receive_count=5), custom_endpoint=False)
    assert aws.persistence is Support.NATIVE
    queue = capabilities_for(SqsOptions(mode="queue"), custom_endpoint=True)
    assert queue.groups is Support.UNSUPPORTED and queue.delay is Support.NATIVE
    assert capabilities_for(SqsOptions(persistent=True), custom_endpoint=True).persistence
    fifo = capabilities_for(SqsOptions(fifo=True), custom_endpoint=True)
    assert (fifo.ordering, fifo.dedup, fifo.delay) == (
        Support.NATIVE, Support.NATIVE, Support.UNSUPPORTED)
    assert fifo == fifo_capabilities(sns)


@pytest.mark.parametrize("max_receive_count", [0, 1, 5])
def test_dead_letter_is_declared_emulated_even_with_native_redrive(
        max_receive_count: int) -> None:
    """The run loop always dead-letters by publishing a copy with the reason (the
    portable layer); the redrive policy of ``max_receive_count`` only catches messages
    nobody settled. So the declaration is emulated, redrive or not."""
    for mode in ("sns", "queue"):
        for fifo in (False, True):
            caps = capabilities_for(SqsOptions(mode=mode, fifo=fifo,
                                               max_receive_count=max_receive_count),
                                    custom_endpoint=False)
            assert caps.dead_letter is Support.EMULATED, (mode, fifo)


def test_fifo_capabilities_change_only_ordering_dedup_delay_and_priority() -> None:
    standard = capabilities_for(SqsOptions(), custom_endpoint=True)
    fifo = fifo_capabilities(standard)
    changed = {k for k, v in fifo.as_dict().items() if standard.as_dict()[k] != v}
    assert changed == {"ordering", "dedup", "delay", "priority"}
    assert (fifo.ordering, fifo.dedup, fifo.delay, fifo.priority) == (
        Support.NATIVE, Support.NATIVE, Support.UNSUPPORTED, Support.UNSUPPORTED)
    assert fifo_capabilities(fifo) == fifo  # idempotent: fifo=true clients


@pytest.mark.parametrize("url", ["sqs://?region=us-east-1",
                                 "sqs://?region=us-east-1&mode=queue",
                                 "sqs://?region=us-east-1&fifo=true"])
def test_capabilities_for_declares_fifo_per_topic_on_both_faces(url: str) -> None:
    import asyncio

    from moto import mock_aws

    import mqkit.aio

    async def on_async() -> tuple[mqkit.Capabilities, mqkit.Capabilities]:
        async with mqkit.aio.connect(url) as client:
            return client.capabilities_for("jobs.fifo"), client.capabilities_for("jobs")

    with mock_aws():
        with mqkit.connect(url) as client:
            base = client.capabilities
            on_sync = (client.capabilities_for("jobs.fifo"), client.capabilities_for("jobs"))
        async_fifo, async_plain = asyncio.run(on_async())
    for fifo, plain in (on_sync, (async_fifo, async_plain)):
        assert fifo == fifo_capabilities(base)
        assert (fifo.ordering, fifo.dedup, fifo.delay) == (
            Support.NATIVE, Support.NATIVE, Support.UNSUPPORTED)
        # A standard name keeps the client's capabilities (all FIFO with fifo=true).
        assert plain == base
        assert plain.ordering is (Support.NATIVE if "fifo=true" in url
                                  else Support.UNSUPPORTED)


# -- users' unit tests: moto's in-process mock, as documented ----------------------------

def test_moto_in_process_mock_works_as_documented() -> None:
    from moto import mock_aws

    with mock_aws(), mqkit.connect("sqs://?region=us-east-1") as client:
        client.admin.create_topic("orders")
        client.admin.create_group("orders", "billing")
        client.producer("orders").send(b"hi", headers={"a": "b"})
        with client.consumer("orders", "billing") as consumer:
            got = consumer.receive(10, timeout=2)
            consumer.ack(got)
        assert [(m.body, dict(m.headers)) for m in got] == [(b"hi", {"a": "b"})]


def test_tls_and_credentials_reach_the_one_boto3_client() -> None:
    from mqkit_sqs._driver import SqsDriver

    def driver(text: str, **options: object) -> SqsDriver:
        url = mqkit.URL.parse(text)
        opts = parse_options(SqsOptions, {**url.query, **options})
        return SqsDriver(ConnectParams(url, connect_timeout=3), opts)

    secure = driver("sqs://AKID:s3cr3t@sqs.example.com?region=eu-west-1",
                    ca_file="/etc/ssl/ca.pem", session_token="t0k")
    assert secure._sqs.meta.endpoint_url == "https://sqs.example.com"
    assert _tls_verify(secure._sqs) == "/etc/ssl/ca.pem"
    creds = secure._session.get_credentials()
    assert creds is not None and (creds.access_key, creds.secret_key, creds.token) == (
        "AKID", "s3cr3t", "t0k")
    assert secure._sqs.meta.region_name == "eu-west-1"
    plain = driver("sqs://k:s@127.0.0.1:5000?region=us-east-1&tls=false", verify=False)
    assert plain._sqs.meta.endpoint_url == "http://127.0.0.1:5000"
    assert _tls_verify(plain._sqs) is False
    aws = driver("sqs://?region=eu-west-1&mode=queue")
    assert aws._sns is None and "amazonaws.com" in aws._sqs.meta.endpoint_url
    assert aws.capabilities.persistence is Support.NATIVE
