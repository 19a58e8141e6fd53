"""Options, client, admin and RetryPolicy hardening (issue 14): every wrong type or value is a
typed ``MQError`` naming the argument; nothing is silently replaced (zero is not "the
default"); errors come in the right class (``ConnectTimeout`` is a ``Timeout`` and an
``Unavailable`` on every backend); unknown parameters get a "did you mean".
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import mqkit
import mqkit.aio
import mqkit.memory
from mqkit._registry import register
from mqkit.driver import AdapterPlugin, ConnectParams, Driver
from mqkit.memory._driver import connect as memory_connect


def _url() -> str:
    return f"memory://o-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client() -> Iterator[mqkit.Client]:
    with mqkit.connect(_url()) as c:
        c.admin.create_topic("t")
        c.admin.create_group("t", "g")
        yield c


# -- values silently replaced or accepted -----------------------------------------------

BAD_OPTIONS: list[tuple[str, object]] = [
    ("prefetch", 0), ("prefetch", -1), ("prefetch", 2.5), ("prefetch", math.inf),
    ("prefetch", "x"), ("prefetch", True), ("prefetch", "0"),
    ("lease", 0), ("lease", -1), ("lease", math.nan), ("lease", math.inf), ("lease", "soon"),
    ("connect_timeout", 0), ("connect_timeout", math.nan), ("connect_timeout", math.inf),
    ("connect_timeout", -1), ("send_timeout", math.nan), ("send_timeout", -0.5),
    ("auto_create", "maybe"), ("start", "middle"),
]


@pytest.mark.parametrize(("name", "value"), BAD_OPTIONS)
def test_bad_client_options_are_refused_by_name(name: str, value: object) -> None:
    with pytest.raises(mqkit.ConfigurationError, match=name) as info:
        mqkit.connect(_url(), **{name: value})
    assert type(info.value) is mqkit.ConfigurationError
    if not isinstance(value, str):  # typed, not parsed: ClientOptions itself refuses it
        with pytest.raises(mqkit.ConfigurationError, match=name):
            typed: dict[str, Any] = {name: value}
            mqkit.ClientOptions(**typed)


@pytest.mark.parametrize("query", ["prefetch=0", "lease=0", "lease=-2", "lease=nan",
                                   "connect_timeout=inf", "connect_timeout=NaN",
                                   "prefetch=1.5", "prefetch=-1"])
def test_bad_query_options_are_refused_by_name(query: str) -> None:
    with pytest.raises(mqkit.ConfigurationError, match=query.split("=", maxsplit=1)[0]):
        mqkit.connect(f"{_url()}?{query}")


@pytest.mark.parametrize(("name", "value"), [
    ("prefetch", 0), ("prefetch", -1), ("prefetch", 1.5), ("prefetch", "2"),
    ("lease", 0), ("lease", -5), ("lease", math.nan), ("lease", math.inf),
    ("start", "now"), ("create_group", "yes"),
])
def test_bad_consumer_options_are_refused_by_name(client: mqkit.Client, name: str,
                                                  value: object) -> None:
    kwargs: dict[str, Any] = {name: value}
    with pytest.raises(mqkit.ConfigurationError, match=name) as info:
        client.consumer("t", "g", **kwargs)
    assert type(info.value) is mqkit.ConfigurationError  # not a bare MQError


def test_consumer_none_means_the_client_setting() -> None:
    with mqkit.connect(_url(), prefetch=7, lease=12.5) as c:
        c.admin.create_topic("t")
        consumer = c.consumer("t", "g", prefetch=None, lease=None)
        assert (consumer.options.prefetch, consumer.options.lease) == (7, 12.5)
        consumer.close()


@pytest.mark.parametrize("kwargs", [
    {"max_attempts": "3"}, {"max_attempts": 0}, {"max_attempts": 2.0},
    {"max_attempts": True}, {"initial_backoff": -1}, {"initial_backoff": math.nan},
    {"max_backoff": math.inf}, {"max_backoff": "60"}, {"multiplier": 0.5},
    {"multiplier": math.nan}, {"jitter": 2}, {"jitter": "0.1"}, {"dead_letter": "no"},
    {"dead_letter_topic": "bad\n"}, {"dead_letter_topic": 5},
])
def test_bad_retry_policies_are_refused_by_name(kwargs: dict[str, Any]) -> None:
    (name,) = kwargs
    with pytest.raises(mqkit.ConfigurationError, match=name):
        mqkit.RetryPolicy(**kwargs)


@pytest.mark.parametrize("timeout", [None, -1, 0, math.nan, math.inf, "5"])
def test_request_timeout_is_checked_before_sending(client: mqkit.Client,
                                                   timeout: object) -> None:
    started = time.monotonic()
    with pytest.raises(mqkit.ConfigurationError, match="timeout"):
        client.request("t", b"ping", timeout=timeout)  # type: ignore[arg-type]
    assert client.admin.depth("t", "g") == 0, "the request was sent anyway"
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("call", [
    lambda c: c.dead_letter_topic(None),
    lambda c: c.admin.delete_topic(None),
    lambda c: c.admin.create_topic("orders\n"),
    lambda c: c.admin.topic_exists("orders\n"),
    lambda c: c.admin.create_group("t", "g\n"),
    lambda c: c.producer("orders\n"),
    lambda c: c.request("orders\n", b"x"),
    lambda c: c.consumer("t", "g\n"),
])
def test_bad_names_are_refused(client: mqkit.Client, call: Any) -> None:
    with pytest.raises(mqkit.ConfigurationError, match="name"):
        call(client)
    assert client.admin.list_topics() == ["t"]


def test_topic_options_must_be_keywords_the_backend_knows(client: mqkit.Client) -> None:
    with pytest.raises(mqkit.ConfigurationError, match="partitions"):
        client.admin.create_topic("u", partitions=3)


def test_reply_needs_a_received_request(client: mqkit.Client) -> None:
    with pytest.raises(mqkit.ConfigurationError, match="request"):
        client.reply(mqkit.Message(b"x", reply_to="t"), b"y")  # type: ignore[arg-type]


# -- errors in the right class -----------------------------------------------------------


def test_direct_client_construction_is_a_configuration_error() -> None:
    with pytest.raises(mqkit.ConfigurationError, match="connect"):
        mqkit.Client("memory://")  # type: ignore[arg-type]
    with pytest.raises(mqkit.ConfigurationError, match="connect"):
        mqkit.aio.Client("memory://")  # type: ignore[arg-type]
    with pytest.raises(mqkit.ConfigurationError, match="url"):
        mqkit.connect(5)  # type: ignore[arg-type]


def test_capabilities_after_close_is_closed() -> None:
    c = mqkit.connect(_url())
    assert c.capabilities.backend == "memory"
    c.close()
    with pytest.raises(mqkit.Closed):
        c.capabilities  # noqa: B018
    with pytest.raises(mqkit.Closed):
        c.dead_letter_topic("t")


async def test_capabilities_before_connecting_is_a_typed_error() -> None:
    c = mqkit.aio.connect(_url())
    with pytest.raises(mqkit.MQError, match="not connected"):
        c.capabilities  # noqa: B018
    await c
    assert c.capabilities.backend == "memory"
    await c.close()
    with pytest.raises(mqkit.Closed):
        c.capabilities  # noqa: B018


def test_connect_timeout_is_a_timeout_and_an_unavailable() -> None:
    assert issubclass(mqkit.ConnectTimeout, mqkit.Timeout)
    assert issubclass(mqkit.ConnectTimeout, mqkit.Unavailable)
    assert issubclass(mqkit.ConnectTimeout, TimeoutError)


class _Flaky:
    """A plugin whose connect fails ``failures`` times with ``error``, then works."""

    def __init__(self, scheme: str, error: Exception, failures: int) -> None:
        self.error, self.failures, self.attempts = error, failures, 0
        self.timeouts: list[float] = []
        register(AdapterPlugin(name=scheme, schemes=(scheme,), connect=self.connect))

    def connect(self, params: ConnectParams) -> Driver:
        self.attempts += 1
        self.timeouts.append(params.connect_timeout)
        if self.attempts <= self.failures:
            raise self.error
        return memory_connect(params)


def test_connect_rides_out_a_broker_that_is_not_up_yet() -> None:
    flaky = _Flaky("flaky-up", mqkit.Unavailable("connection refused"), failures=3)
    with mqkit.connect("flaky-up://x", connect_timeout=5) as c:
        assert c.admin.list_topics() == []
    assert flaky.attempts == 4
    assert flaky.timeouts[0] == 5 and all(t < 5 for t in flaky.timeouts[1:])


def test_connect_gives_up_with_connect_timeout_after_connect_timeout() -> None:
    flaky = _Flaky("flaky-down", mqkit.Unavailable("connection refused"), failures=10**6)
    started = time.monotonic()
    with pytest.raises(mqkit.ConnectTimeout, match=r"within 0\.6 s") as info:
        mqkit.connect("flaky-down://x", connect_timeout=0.6)
    elapsed = time.monotonic() - started
    assert 0.55 <= elapsed < 2.0, elapsed
    assert isinstance(info.value.__cause__, mqkit.Unavailable) and flaky.attempts >= 2


@pytest.mark.parametrize("error", [mqkit.PermissionDenied("bad password"),
                                   mqkit.ConfigurationError("bad option"),
                                   mqkit.ConnectTimeout("waited already")])
def test_connect_does_not_retry_what_retrying_cannot_fix(error: Exception) -> None:
    scheme = f"flaky-{uuid.uuid4().hex[:6]}"
    flaky = _Flaky(scheme, error, failures=10**6)
    with pytest.raises(type(error)):
        mqkit.connect(f"{scheme}://x", connect_timeout=5)
    assert flaky.attempts == 1


# Every adapter, on a port nothing listens on: the same class, within the same bound.
DEAD = ["amqp://guest:guest@127.0.0.1:1/", "kafka://127.0.0.1:1", "nats://127.0.0.1:1",
        "redis://127.0.0.1:1", "sqs://k:s@127.0.0.1:1?region=us-east-1&tls=false"]


@pytest.mark.parametrize("url", DEAD, ids=[u.split(":")[0] for u in DEAD])
def test_unreachable_broker_is_connect_timeout_on_every_backend(url: str) -> None:
    started = time.monotonic()
    with pytest.raises(mqkit.ConnectTimeout) as info:
        mqkit.connect(url, connect_timeout=1.0).admin.list_topics()
    assert time.monotonic() - started < 4
    assert isinstance(info.value, mqkit.Timeout) and isinstance(info.value, mqkit.Unavailable)
    assert info.value.__cause__ is not None


# -- unknown parameters ------------------------------------------------------------------


def test_unknown_parameter_suggests_and_lists_portable_options() -> None:
    with pytest.raises(mqkit.ConfigurationError) as info:
        mqkit.connect(f"{_url()}?prefech=3")
    text = str(info.value)
    assert "did you mean 'prefetch'" in text
    for portable in ("prefetch", "connect_timeout", "lease", "auto_create"):
        assert portable in text
    assert "max_message_size" in text  # the adapter's own
    with pytest.raises(mqkit.ConfigurationError, match="did you mean 'dedup_window'"):
        mqkit.connect(_url(), dedup_windw=3)
    with pytest.raises(mqkit.ConfigurationError) as far:
        mqkit.connect(_url(), zzzqqq=1)
    assert "did you mean" not in str(far.value) and "'zzzqqq'" in str(far.value)


# -- property-based: option values are taken exactly or refused by name ------------------

_values = st.one_of(st.integers(-3, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                    st.booleans(), st.text(max_size=4), st.none(),
                    st.sampled_from(["1", "2.5", "nan", "inf", "latest", "earliest", "true"]))
_OPTIONS = {"prefetch": "int", "lease": "positive", "connect_timeout": "positive",
            "send_timeout": "seconds", "settle_interval": "seconds",
            "settle_timeout": "seconds", "unavailable_timeout": "seconds",
            "auto_create": "bool", "start": "start"}


def _expected(kind: str, value: object, parsed: bool) -> object:
    """The option value the client must hold, or ``ValueError`` if it must refuse.

    ``parsed``: given to ``connect`` (URL query or keyword), where text (as from an
    environment variable) is converted by the field's type first, and an integral float
    is taken for an int, as documented; ``consumer()`` takes typed values only."""
    if parsed and kind == "int" and isinstance(value, float):
        value = int(value) if value.is_integer() else value
    if parsed and isinstance(value, str):
        try:
            if kind == "int":
                value = int(value)
            elif kind in ("positive", "seconds"):
                value = float(value)
            elif kind == "bool":
                low = value.lower()
                if low not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                    return ValueError
                value = low in ("1", "true", "yes", "on")
        except ValueError:
            return ValueError
    if kind == "int":
        ok = type(value) is int and value >= 1
    elif kind in ("positive", "seconds"):
        ok = (not isinstance(value, bool) and isinstance(value, int | float)
              and (value > 0 if kind == "positive" else value >= 0) and value < math.inf)
    elif kind == "bool":
        ok = type(value) is bool
    else:
        ok = value in ("latest", "earliest")
    return value if ok else ValueError


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(_OPTIONS)), value=_values, from_query=st.booleans())
def test_client_options_are_exact_or_refused_by_name(name: str, value: object,
                                                     from_query: bool) -> None:
    if from_query:
        if value is None:
            return
        value = str(value)
    expected = _expected(_OPTIONS[name], value, True)
    try:
        if from_query:
            from urllib.parse import quote
            client = mqkit.connect(f"{_url()}?{name}={quote(str(value))}")
        else:
            client = mqkit.connect(_url(), **{name: value})
    except mqkit.ConfigurationError as exc:
        assert expected is ValueError, f"refused a valid {name}={value!r}: {exc}"
        assert name in str(exc)
        return
    with client:
        assert expected is not ValueError, f"accepted {name}={value!r}"
        held = getattr(client.options, name)
        assert (held == expected and type(held) is type(expected)) or (
            isinstance(expected, int) and type(held) is float and held == expected)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=st.fixed_dictionaries({}, optional={
    "max_attempts": _values, "initial_backoff": _values, "max_backoff": _values,
    "multiplier": _values, "jitter": _values, "dead_letter": _values}))
@example(fields={"multiplier": 1.3407807929942597e154})  # backoff(3) overflowed a float
def test_retry_policy_fields_are_exact_or_refused_by_name(fields: dict[str, Any]) -> None:
    def ok(name: str, v: object) -> bool:
        number = not isinstance(v, bool) and isinstance(v, int | float)
        if name == "max_attempts":
            return type(v) is int and v >= 1
        if name in ("initial_backoff", "max_backoff"):
            return number and 0 <= v < math.inf  # type: ignore[operator]
        if name == "multiplier":
            return number and 1 <= v < math.inf  # type: ignore[operator]
        if name == "jitter":
            return number and 0 <= v <= 1  # type: ignore[operator]
        return type(v) is bool

    bad = {n for n, v in fields.items() if not ok(n, v)}
    try:
        policy = mqkit.RetryPolicy(**fields)
    except mqkit.ConfigurationError as exc:
        assert bad and any(n in str(exc) for n in bad), (bad, str(exc))
        return
    assert not bad, f"accepted {bad}"
    for name, value in fields.items():
        assert getattr(policy, name) == value
    backoff = policy.backoff(3)
    assert 0 <= backoff <= policy.max_backoff and not math.isnan(backoff)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefetch=_values, lease=_values)
def test_consumer_options_are_exact_or_refused_by_name(prefetch: object,
                                                       lease: object) -> None:
    with mqkit.connect(_url()) as client:
        client.admin.create_topic("t")
        want_p = 100 if prefetch is None else _expected("int", prefetch, False)
        want_l = 30.0 if lease is None else _expected("positive", lease, False)
        try:
            consumer = client.consumer("t", "g", prefetch=prefetch, lease=lease)  # type: ignore[arg-type]
        except mqkit.ConfigurationError as exc:
            named = [n for n, w in (("prefetch", want_p), ("lease", want_l)) if w is ValueError]
            assert named and any(n in str(exc) for n in named), str(exc)
            return
        with consumer:
            assert ValueError not in (want_p, want_l), (prefetch, lease)
            assert (consumer.options.prefetch, consumer.options.lease) == (want_p, want_l)


@pytest.mark.parametrize("kind", [5, "pika.BlockingConnection", None])
def test_as_takes_a_class(client: mqkit.Client, kind: Any) -> None:
    with pytest.raises(mqkit.ConfigurationError, match="kind"):
        client.as_(kind)
    with client.producer("t") as producer:
        producer.send(b"x")
        with pytest.raises(mqkit.ConfigurationError, match="kind"):
            producer.as_(kind)
    assert client.as_(mqkit.memory.Broker) is not None


@pytest.mark.parametrize(("kwargs", "word"), [({"correlation_id": ""}, "correlation_id"),
                                              ({"correlation_id": 5}, "correlation_id"),
                                              ({"headers": {"mqkit-x": "1"}}, "reserved"),
                                              ({"key": 3}, "key")])
def test_bad_request_fields_are_refused_before_sending(client: mqkit.Client,
                                                       kwargs: dict[str, Any],
                                                       word: str) -> None:
    with pytest.raises(mqkit.InvalidMessage, match=word):
        client.request("t", b"ping", timeout=1, **kwargs)
    assert client.admin.depth("t", "g") == 0
