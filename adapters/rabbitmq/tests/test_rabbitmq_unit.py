"""RabbitMQ adapter without a broker: options, names, error table, import hygiene."""

from __future__ import annotations

import subprocess
import sys
import time

import pika.exceptions as pe
import pika.spec
import pytest
from mqkit_rabbitmq._driver import capabilities_for, connection_parameters
from mqkit_rabbitmq._errors import map_error, mapped
from mqkit_rabbitmq._names import Names
from mqkit_rabbitmq._options import RabbitOptions
from mqkit_rabbitmq._producer import Confirms, RabbitTopic, delay_bucket

import mqkit
from mqkit.driver import ConnectParams, parse_options


def test_plugin_imports_without_pika() -> None:
    code = ("import sys; sys.modules['pika'] = None\n"
            "import mqkit_rabbitmq\n"
            "assert mqkit_rabbitmq.plugin.schemes == ('amqp', 'amqps')\n"
            "assert 'mqkit_rabbitmq._driver' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_parameter_is_named() -> None:
    with pytest.raises(mqkit.ConfigurationError, match="'heartbeats'"):
        mqkit.connect("amqp://guest:guest@127.0.0.1:1/?heartbeats=3")


def test_options_are_typed_and_validated() -> None:
    opts = parse_options(RabbitOptions, {"heartbeat": "2", "queue_type": "classic",
                                         "max_priority": "5"})
    assert (opts.heartbeat, opts.queue_type, opts.max_priority) == (2, "classic", 5)
    with pytest.raises(mqkit.ConfigurationError, match="queue_type"):
        parse_options(RabbitOptions, {"queue_type": "stream"})
    with pytest.raises(mqkit.ConfigurationError, match="classic"):
        parse_options(RabbitOptions, {"max_priority": "5"})
    assert capabilities_for(opts).priority is mqkit.Support.NATIVE
    assert capabilities_for(RabbitOptions()).priority is mqkit.Support.UNSUPPORTED


def test_connection_parameters_from_url() -> None:
    url = mqkit.URL.parse("amqps://bob:s3cr3t-pw@h1:5999,h2/vh?verify=false")
    opts = parse_options(RabbitOptions, {"verify": "false", "heartbeat": "7"})
    params = connection_parameters(ConnectParams(url=url, connect_timeout=3.0), opts)
    assert [(p.host, p.port) for p in params] == [("h1", 5999), ("h2", 5671)]
    first = params[0]
    assert first.virtual_host == "vh" and first.heartbeat == 7
    assert first.ssl_options is not None and first.socket_timeout == 3.0
    assert first.credentials.password == "s3cr3t-pw"
    assert "s3cr3t-pw" not in repr(url) and "s3cr3t-pw" not in str(url)


def test_a_missing_ca_file_is_named() -> None:
    url = mqkit.URL.parse("amqps://h1")
    opts = parse_options(RabbitOptions, {"ca_file": "/nonexistent/ca.pem"})
    with pytest.raises(mqkit.ConfigurationError, match="'ca_file'"):
        connection_parameters(ConnectParams(url=url), opts)


def test_key_password_is_secret() -> None:
    opts = parse_options(RabbitOptions, {"key_password": "hunter22"})
    assert "hunter22" not in repr(opts)


def test_error_table() -> None:
    assert isinstance(map_error(pe.ChannelClosedByBroker(404, "NOT_FOUND"), "x"),
                      mqkit.NotFound)
    recovering = pe.ChannelClosedByBroker(
        404, "NOT_FOUND - home node 'rabbit@localhost' of durable queue 'q' in vhost '/' is "
             "down or inaccessible")
    assert isinstance(map_error(recovering, "x"), mqkit.Unavailable)  # exists, not up yet
    assert isinstance(map_error(pe.ChannelClosedByBroker(406, "PRECONDITION"), "x"),
                      mqkit.AlreadyExists)
    assert isinstance(map_error(pe.StreamLostError("gone"), "x"), mqkit.Unavailable)
    assert isinstance(map_error(pe.ProbableAuthenticationError("no"), "x"),
                      mqkit.PermissionDenied)
    assert isinstance(map_error(pe.ConnectionClosedByBroker(320, "bye"), "x"),
                      mqkit.Unavailable)
    native = pe.ChannelClosedByBroker(404, "NOT_FOUND - no exchange")
    with pytest.raises(mqkit.NotFound) as info, mapped("open"):
        raise native
    assert info.value.__cause__ is native and info.value.native is native


def test_names_are_configurable() -> None:
    names = Names(exchange_prefix="app.", queue_format="q-{group}-{topic}")
    assert names.exchange("orders") == "app.orders"
    assert names.queue("orders", "billing") == "q-billing-orders"
    assert Names.internal("mqkit.registry") and not Names.internal("orders")


def test_delay_buckets_never_early() -> None:
    for seconds in (0.001, 0.05, 0.1, 0.25, 1.0, 9.99, 12.3, 299.5, 1000.2):
        ms = delay_bucket(seconds)
        assert ms >= seconds * 1000
    assert delay_bucket(0.21) == delay_bucket(0.29) == 300


def test_confirm_bookkeeping() -> None:
    confirms = Confirms()
    confirms.pending = {1, 2, 3, 4}

    class Frame:
        def __init__(self, method: object) -> None:
            self.method = method

    confirms.on_confirm(Frame(pika.spec.Basic.Ack(delivery_tag=2, multiple=True)))
    assert confirms.pending == {3, 4}
    confirms.on_confirm(Frame(pika.spec.Basic.Nack(delivery_tag=4, multiple=False)))
    assert confirms.pending == {3} and confirms.nacked == {4}


def test_a_channel_closed_by_the_broker_ends_the_confirm_wait_with_its_reason() -> None:
    """pika's ``process_data_events`` returns, without raising, when the broker closes
    the channel (e.g. 404: the exchange was deleted), and no confirm comes after: the
    wait raises the close reason (mapped by ``Link.use``), not a Timeout at its bound."""
    reason = pe.ChannelClosedByBroker(404, "NOT_FOUND - no exchange 't' in vhost '/'")

    class Link:
        setup: object = None
        resets = 0

        def reset(self) -> None:
            self.resets += 1

    link = Link()
    topic = RabbitTopic(link, Names("", "{topic}.{group}"), "t",  # type: ignore[arg-type]
                        persistent=True, confirm=True, send_timeout=2.0)
    confirms = topic._confirms
    confirms.pending, confirms.next_tag = {1, 2}, 3

    class Channel:
        class connection:  # pika's attribute name
            @staticmethod
            def process_data_events(time_limit: float = 0) -> None:
                confirms.on_close(None, reason)  # pika calls the channel's close callbacks

    started = time.monotonic()
    with pytest.raises(pe.ChannelClosedByBroker) as info:
        topic._wait(Channel(), 1, 2)
    assert info.value is reason
    assert time.monotonic() - started < 1.0 and link.resets == 0


def test_unreachable_broker_is_bounded() -> None:
    started = time.monotonic()
    with pytest.raises(mqkit.Unavailable):
        # 10.255.255.1 is unroutable: the connect attempt times out.
        mqkit.connect("amqp://guest:guest@10.255.255.1:5672/?connect_timeout=1")
    assert time.monotonic() - started < 5
    with pytest.raises(mqkit.Unavailable):
        mqkit.connect("amqp://guest:guest@127.0.0.1:1/?connect_timeout=1")


def test_silent_server_times_out() -> None:
    """A port that accepts TCP but never speaks AMQP: ConnectTimeout, bounded."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(mqkit.ConnectTimeout):
            mqkit.connect(f"amqp://guest:guest@127.0.0.1:{port}/?connect_timeout=1")
        assert time.monotonic() - started < 4
    finally:
        server.close()


def _subscription() -> object:
    """A RabbitSubscription with only what ``_delivery`` reads (no broker)."""
    from mqkit_rabbitmq._consumer import RabbitSubscription

    from mqkit.driver import DeliveryCounts

    sub = RabbitSubscription.__new__(RabbitSubscription)
    setattr(sub, "_topic", "t")  # noqa: B010 - a private attribute, set as the driver does
    setattr(sub, "_seen", DeliveryCounts(100))  # noqa: B010
    return sub


@pytest.mark.parametrize("headers", [None, {}, {"a": "1"}, {"a": b"\xc3\xa9"}])
@pytest.mark.parametrize("redelivered", [False, True])
def test_the_fast_delivery_path_builds_what_the_full_parse_does(
        headers: dict[str, object] | None, redelivered: bool) -> None:
    from mqkit_rabbitmq._consumer import RabbitSubscription, to_message

    props = pika.BasicProperties(message_id="m1", content_type="text/plain",
                                 correlation_id="c", reply_to="r", priority=4,
                                 timestamp=1_700_000_000, headers=headers)
    method = pika.spec.Basic.Deliver(delivery_tag=7, routing_key="key-1",
                                     redelivered=redelivered)
    got = RabbitSubscription._delivery(_subscription(), 3, method, props, b"body")  # type: ignore[arg-type]
    expected, _, _ = to_message(method, props, b"body")
    assert got.message == expected
    assert got.message.priority == 4 and got.handle == (3, 7)
    assert got.timestamp == 1_700_000_000.0
    assert got.delivery_count == (2 if redelivered else 1)
