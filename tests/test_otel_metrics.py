"""mqkit.otel metrics: the counters match exactly what was sent, consumed, acked, retried,
dead-lettered and rejected (memory://, both faces and the App, the OTel SDK's
InMemoryMetricReader); the group-depth gauge and its bounded read rate; bad arguments."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

import mqkit
import mqkit.aio
from mqkit.otel import AsyncMetrics, Metrics, SendMeter, instrument
from mqkit.service import App, TestApp

FAST = mqkit.RetryPolicy(max_attempts=2, initial_backoff=0.0, jitter=0.0)
NO_DLQ = mqkit.RetryPolicy(max_attempts=1, initial_backoff=0.0, jitter=0.0,
                           dead_letter=False)


class Read:
    """An SDK MeterProvider with an in-memory reader, and sums over its points."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])
        self._data: list[tuple[str, dict[str, Any], Any]] | None = None

    def collect(self) -> list[tuple[str, dict[str, Any], Any]]:
        data = self.reader.get_metrics_data()
        out = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for point in metric.data.data_points:
                        out.append((metric.name, dict(point.attributes or {}), point))
        self._data = out
        return out

    def total(self, name: str, **attrs: Any) -> float:
        """Sum of the values (counters, gauges) or counts (histograms) of ``name``'s
        points whose attributes include ``attrs`` (dots written as ``__``)."""
        want = {k.replace("__", "."): v for k, v in attrs.items()}
        total = 0.0
        for metric, point_attrs, point in self._data if self._data is not None else self.collect():
            if metric != name or any(point_attrs.get(k) != v for k, v in want.items()):
                continue
            total += point.count if isinstance(point, HistogramDataPoint) else point.value
        return total

    def attrs(self, name: str) -> list[dict[str, Any]]:
        return [a for m, a, _ in (self._data or self.collect()) if m == name]


@pytest.fixture
def otel() -> Iterator[Read]:
    read = Read()
    yield read
    read.provider.shutdown()


def _url() -> str:
    return f"memory://metrics-{uuid.uuid4().hex[:8]}"


def _handler(msg: Any) -> None:
    if msg.body == b"bad":
        raise ValueError("bad message")


def _check_counts(otel: Read, system: str = "memory") -> None:
    """5 single sends + a batch of 2 (one bad), retried once then dead-lettered."""
    otel.collect()
    assert otel.total("messaging.client.sent.messages", messaging__destination__name="orders",
                      messaging__system=system) == 7
    assert otel.total("messaging.client.sent.messages",
                      messaging__destination__name="orders.dlq") == 1
    assert otel.total("messaging.client.operation.duration",
                      messaging__destination__name="orders") == 6  # 5 sends, 1 batch
    common = {"messaging__destination__name": "orders",
              "messaging__consumer__group__name": "billing", "messaging__system": system}
    assert otel.total("messaging.client.consumed.messages", **common,
                      messaging__operation__name="receive") == 8
    assert otel.total("mqkit.consumer.outcomes", **common, mqkit__outcome="acked") == 6
    assert otel.total("mqkit.consumer.outcomes", **common, mqkit__outcome="retried",
                      error__type="ValueError") == 1
    assert otel.total("mqkit.consumer.outcomes", **common, mqkit__outcome="dead_lettered",
                      error__type="ValueError") == 1
    assert otel.total("mqkit.consumer.outcomes") == 8
    assert otel.total("messaging.process.duration", **common) == 8
    assert otel.total("messaging.process.duration", error__type="ValueError") == 2
    assert otel.total("mqkit.message.latency", **common) == 8
    for attrs in otel.attrs("mqkit.consumer.outcomes"):
        assert ("error.type" in attrs) == (attrs["mqkit.outcome"] != "acked"), attrs


def test_blocking_counts_match_what_was_sent_acked_retried_and_dead_lettered(
        otel: Read) -> None:
    with instrument(mqkit.connect(_url()), meter_provider=otel.provider,
                    tracing=False) as client:
        client.admin.create_topic("orders")
        client.admin.create_group("orders", "billing")
        with client.producer("orders") as producer:
            for i in range(5):
                producer.send(f"order {i}".encode())
            producer.send_batch([b"order 5", b"bad"])
        with client.consumer("orders", "billing") as consumer:
            stats = consumer.run(_handler, idle_timeout=0.3, retry=FAST,
                                 middleware=[Metrics(meter_provider=otel.provider)])
    assert (stats.acked, stats.retried, stats.dead_lettered) == (6, 1, 1)
    _check_counts(otel)


async def test_asyncio_counts_match_what_was_sent_acked_retried_and_dead_lettered(
        otel: Read) -> None:
    client = instrument(mqkit.aio.connect(_url()), meter_provider=otel.provider,
                        tracing=False)
    async with client:
        await client.admin.create_topic("orders")
        await client.admin.create_group("orders", "billing")
        async with client.producer("orders") as producer:
            for i in range(5):
                await producer.send(f"order {i}".encode())
            await producer.send_batch([b"order 5", b"bad"])
        async with client.consumer("orders", "billing") as consumer:
            stats = await consumer.run(_handler, idle_timeout=0.3, retry=FAST,
                                       middleware=[AsyncMetrics(meter_provider=otel.provider)])
    assert (stats.acked, stats.retried, stats.dead_lettered) == (6, 1, 1)
    _check_counts(otel)


def test_buffered_sends_count_when_flushed_and_failures_carry_error_type(
        otel: Read) -> None:
    with instrument(mqkit.connect(_url()), meter_provider=otel.provider,
                    tracing=False) as client:
        client.admin.create_topic("t")
        with client.producer("t") as producer:
            producer.send(b"a", wait=False)
            producer.send(b"b", wait=False)
            assert otel.collect() == [] or otel.total("messaging.client.sent.messages") == 0
            producer.flush()
            otel.collect()
            assert otel.total("messaging.client.sent.messages",
                              messaging__destination__name="t") == 2
            with pytest.raises(mqkit.MQError):
                producer.send(b"x" * (client.capabilities.max_message_size + 1))
    otel.collect()
    too_large = "mqkit.MessageTooLarge"
    assert otel.total("messaging.client.sent.messages", error__type=too_large) == 1
    assert otel.total("messaging.client.operation.duration", error__type=too_large) == 1


def test_rejected_when_dead_lettering_is_off_and_released_at_stop(otel: Read) -> None:
    with mqkit.connect(_url()) as client:
        client.admin.create_topic("t")
        client.admin.create_group("t", "g")
        with client.producer("t") as producer:
            producer.send_batch([b"ok", b"bad", b"ok"])
        with client.consumer("t", "g") as consumer:
            consumer.run(_handler, idle_timeout=0.3, retry=NO_DLQ,
                         middleware=[Metrics(meter_provider=otel.provider)])
    otel.collect()
    assert otel.total("mqkit.consumer.outcomes", mqkit__outcome="rejected",
                      error__type="ValueError") == 1
    assert otel.total("mqkit.consumer.outcomes", mqkit__outcome="acked") == 2
    assert otel.total("messaging.client.consumed.messages") == 3


async def test_the_app_counts_through_its_middleware(otel: Read) -> None:
    app = App(middleware=[AsyncMetrics(meter_provider=otel.provider)])

    @app.handler("jobs", group="workers", retry=FAST)
    async def job(value: dict[str, Any]) -> None:
        if value.get("bad"):
            raise mqkit.PermanentFailure("no")

    async with TestApp(app) as t:
        await t.send("jobs", {"n": 1})
        await t.send("jobs", {"bad": True})
        await t.wait_idle()
    otel.collect()
    common = {"messaging__destination__name": "jobs",
              "messaging__consumer__group__name": "workers"}
    assert otel.total("mqkit.consumer.outcomes", **common, mqkit__outcome="acked") == 1
    assert otel.total("mqkit.consumer.outcomes", **common, mqkit__outcome="dead_lettered",
                      error__type="mqkit.PermanentFailure") == 1
    assert otel.total("messaging.client.consumed.messages", **common) == 2


# -- the group depth gauge -----------------------------------------------------------------

async def test_asyncio_depth_is_read_on_the_loop_at_a_bounded_rate(otel: Read) -> None:
    async with mqkit.aio.connect(_url()) as client:
        await client.admin.create_topic("t")
        await client.admin.create_group("t", "g")
        async with client.producer("t") as producer:
            await producer.send(b"one")
        metrics = AsyncMetrics(meter_provider=otel.provider, depth_interval=0.2)
        async with client.consumer("t", "g") as consumer:
            await consumer.run(lambda m: None, idle_timeout=0.2, middleware=[metrics])
            calls = []
            real = consumer._connection.group_stats

            async def counted(topic: str, group: str) -> Any:
                calls.append((topic, group))
                return await real(topic, group)

            consumer._connection.group_stats = counted  # type: ignore[method-assign]
            async with client.producer("t") as producer:
                await producer.send_batch([b"a", b"b", b"c"])
            otel.collect()  # on the loop's thread: schedules a read, reports none yet
            await asyncio.sleep(0.05)
            for _ in range(5):
                otel.collect()
            assert otel.total("mqkit.consumer.group.depth", messaging__destination__name="t",
                              messaging__consumer__group__name="g") == 3
            assert calls == [("t", "g")]  # one read for six collections within 0.2 s
            await asyncio.sleep(0.25)
            otel.collect()
            await asyncio.sleep(0.05)
            assert len(calls) == 2


@pytest.mark.parametrize(("interval", "reads"), [(60.0, 1), (1e-6, 3)])
def test_blocking_depth_is_read_between_batches_at_a_bounded_rate(
        otel: Read, interval: float, reads: int) -> None:
    with mqkit.connect(_url()) as client:
        client.admin.create_topic("t")
        client.admin.create_group("t", "g")
        with client.producer("t") as producer:
            producer.send_batch([b"1", b"2", b"3"])
        with client.consumer("t", "g") as consumer:
            calls = []
            real = consumer._connection.group_stats

            def counted(topic: str, group: str) -> Any:
                calls.append((topic, group))
                return real(topic, group)

            consumer._connection.group_stats = counted  # type: ignore[method-assign]
            consumer.run(lambda m: None, idle_timeout=0.2, batch_size=1,
                         middleware=[Metrics(meter_provider=otel.provider,
                                             depth_interval=interval)])
    assert len(calls) == reads
    otel.collect()
    assert otel.attrs("mqkit.consumer.group.depth") == [{
        "messaging.destination.name": "t", "messaging.consumer.group.name": "g",
        "messaging.system": "memory"}]
    # read while the batch in hand was being settled: it counts that batch
    assert otel.total("mqkit.consumer.group.depth") == 4 - reads


def test_no_depth_gauge_without_an_interval(otel: Read) -> None:
    with mqkit.connect(_url()) as client:
        client.admin.create_topic("t")
        client.admin.create_group("t", "g")
        with client.producer("t") as producer:
            producer.send(b"one")
        with client.consumer("t", "g") as consumer:
            consumer.run(lambda m: None, idle_timeout=0.2,
                         middleware=[Metrics(meter_provider=otel.provider, depth_interval=None,
                                             latency=False)])
    otel.collect()
    assert otel.attrs("mqkit.consumer.group.depth") == []
    assert otel.attrs("mqkit.message.latency") == []
    assert otel.total("mqkit.consumer.outcomes") == 1


# -- arguments ------------------------------------------------------------------------------

def test_bad_arguments_raise_configuration_errors_naming_them() -> None:
    with pytest.raises(mqkit.ConfigurationError, match=r"^client: instrument takes"):
        instrument(object())  # type: ignore[type-var]
    with mqkit.connect(_url()) as client:
        with pytest.raises(mqkit.ConfigurationError, match=r"^metrics must be a bool"):
            instrument(client, metrics="yes")  # type: ignore[arg-type]
        instrument(client, tracing=False)
        instrument(client, tracing=False)
        assert [type(h) for h in client._connection.send_hooks] == [SendMeter]
    with pytest.raises(mqkit.ConfigurationError, match="depth_interval"):
        Metrics(depth_interval=-1)
    with pytest.raises(mqkit.ConfigurationError, match=r"^latency must be a bool"):
        AsyncMetrics(latency=1)  # type: ignore[arg-type]
