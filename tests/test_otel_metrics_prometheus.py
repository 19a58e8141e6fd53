"""MetricsRegistry (an API-only MeterProvider), its Prometheus text exposition, and the
--workers aggregation (per-worker labels, counters carried over a restart)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.metrics import CallbackOptions, Observation

import mqkit
from mqkit.otel import Metrics, MetricsRegistry, instrument, prometheus_name, render_prometheus
from mqkit.otel._registry import Series, Snapshot
from mqkit.otel._workers import SnapshotWriter, WorkerMetrics, add_snapshots, read_snapshot

# One sample line of the text format: name, optional {labels}, value.
_SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})?'
                     r" (-?[0-9.e+-]+|\+Inf|-Inf|NaN)$")


def check_exposition(text: str) -> dict[str, float]:
    """Every line is a HELP, a TYPE (once per family, before its samples), a sample or
    empty (ignored by Prometheus); returns ``{sample without value: value}``."""
    samples: dict[str, float] = {}
    typed: set[str] = set()
    assert text.endswith("\n")
    for line in text.splitlines():
        if not line or line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram") and name not in typed, line
            typed.add(name)
            continue
        assert _SAMPLE.match(line), line
        key, value = line.rsplit(" ", 1)
        family = re.sub(r"(_bucket|_sum|_count)$", "", key.split("{")[0])
        assert family in typed, line
        assert key not in samples, f"duplicate sample {key}"
        samples[key] = float(value)
    return samples


def test_names_follow_the_otel_prometheus_mapping() -> None:
    assert prometheus_name("messaging.client.sent.messages", "{message}",
                           "counter") == "messaging_client_sent_messages_total"
    assert prometheus_name("messaging.process.duration", "s",
                           "histogram") == "messaging_process_duration_seconds"
    assert prometheus_name("x.size", "By", "gauge") == "x_size_bytes"
    assert prometheus_name("requests_total", "", "counter") == "requests_total"
    assert prometheus_name("9lives-left", "", "gauge") == "_9lives_left"


def test_counters_histograms_gauges_render_exactly() -> None:
    registry = MetricsRegistry()
    meter = registry.get_meter("test")
    counter = meter.create_counter("jobs.done", "{job}", "Jobs done.")
    counter.add(2, {"queue": "a"})
    counter.add(3, {"queue": "a"})
    counter.add(1, {"queue": 'b"\\\n'})
    counter.add(-5, {"queue": "a"})  # ignored: a counter only grows
    assert meter.create_counter("jobs.done") is counter
    hist = meter.create_histogram("work.time", "s", explicit_bucket_boundaries_advisory=[0.1, 1])
    for value in (0.05, 0.1, 0.5, 7):
        hist.record(value)
    up_down = meter.create_up_down_counter("in.flight")
    up_down.add(3)
    up_down.add(-1)
    meter.create_observable_gauge("depth", [lambda o: [Observation(4, {"g": "x"})]])
    text = render_prometheus([({}, registry.snapshot())])
    samples = check_exposition(text)
    assert samples == {
        'jobs_done_total{queue="a"}': 5, 'jobs_done_total{queue="b\\"\\\\\\n"}': 1,
        'work_time_seconds_bucket{le="0.1"}': 2, 'work_time_seconds_bucket{le="1"}': 3,
        'work_time_seconds_bucket{le="+Inf"}': 4, "work_time_seconds_sum": 7.65,
        "work_time_seconds_count": 4, "in_flight": 2, 'depth{g="x"}': 4}
    assert "# TYPE jobs_done_total counter\n" in text
    assert "# TYPE work_time_seconds histogram\n" in text
    assert "# TYPE in_flight gauge\n" in text
    assert "# HELP jobs_done_total Jobs done.\n" in text


def test_registry_refuses_a_name_of_another_kind_and_survives_a_failing_callback(
        caplog: pytest.LogCaptureFixture) -> None:
    registry = MetricsRegistry()
    meter = registry.get_meter("test")
    meter.create_counter("x")
    with pytest.raises(mqkit.ConfigurationError, match="'x' is already a Counter"):
        meter.create_histogram("x")
    with pytest.raises(mqkit.ConfigurationError, match=r"^name must be"):
        meter.create_counter("")

    def broken(options: CallbackOptions) -> list[Observation]:
        raise RuntimeError("boom")

    def gen() -> Generator[Iterable[Observation], CallbackOptions, None]:
        options = yield []
        while True:
            options = yield [Observation(7)]
            del options

    meter.create_observable_gauge("bad", [broken])
    meter.create_observable_counter("gen", [gen()])
    snap = registry.snapshot()
    assert [s["name"] for s in snap] == ["gen"]
    assert snap[0]["points"][0]["value"] == 7
    assert "the callback of bad failed" in caplog.text


def test_recording_from_threads_loses_nothing() -> None:
    registry = MetricsRegistry()
    counter = registry.get_meter("t").create_counter("n")
    hist = registry.get_meter("t").create_histogram("h")

    def work() -> None:
        for _ in range(5000):
            counter.add(1, {"a": "b"})
            hist.record(1.0, {"a": "b"})

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    h, n = registry.snapshot()  # sorted by name
    assert n["points"][0]["value"] == 20000 and h["points"][0]["count"] == 20000


def test_a_registry_as_meter_provider_of_the_middleware_and_the_client() -> None:
    registry = MetricsRegistry()
    with instrument(mqkit.connect("memory://prom-mw"), meter_provider=registry,
                    tracing=False) as client:
        client.admin.create_topic("t")
        client.admin.create_group("t", "g")
        with client.producer("t") as producer:
            producer.send_batch([b"a", b"b"])
        with client.consumer("t", "g") as consumer:
            consumer.run(lambda m: None, idle_timeout=0.2,
                         middleware=[Metrics(meter_provider=registry)])
    samples = check_exposition(render_prometheus([({}, registry.snapshot())]))
    labels = 'messaging_consumer_group_name="g",messaging_destination_name="t"'
    assert samples[f'mqkit_consumer_outcomes_total{{{labels},messaging_system="memory",'
                   'mqkit_outcome="acked"}'] == 2
    assert samples['messaging_client_sent_messages_total{messaging_destination_name="t",'
                   'messaging_operation_name="send",messaging_system="memory"}'] == 2


# -- --workers: one exposition, labelled per worker; restarts carried over -----------------

def _snap(counter: float, buckets: list[int], depth: float) -> Snapshot:
    return [
        Series(name="done", kind="counter", unit="", description="", bounds=[],
               points=[{"attributes": {"q": "a"}, "value": counter}]),
        Series(name="took", kind="histogram", unit="s", description="", bounds=[1.0],
               points=[{"attributes": {}, "counts": buckets, "sum": float(sum(buckets)),
                        "count": sum(buckets)}]),
        Series(name="depth", kind="gauge", unit="", description="", bounds=[],
               points=[{"attributes": {}, "value": depth}]),
    ]


def test_add_snapshots_sums_counters_and_histograms_and_keeps_the_new_gauge() -> None:
    total = add_snapshots(_snap(3, [1, 2], 9), _snap(2, [0, 1], 4))
    by = {s["name"]: s["points"][0] for s in total}
    assert by["done"]["value"] == 5
    assert (by["took"]["counts"], by["took"]["count"], by["took"]["sum"]) == ([1, 3], 4, 4.0)
    assert by["depth"]["value"] == 4


def _write(path: Path, snapshot: Snapshot, pid: int = 1) -> None:
    path.write_text(json.dumps({"pid": pid, "metrics": snapshot}))


def test_workers_are_labelled_and_a_restarted_worker_never_goes_backwards(
        tmp_path: Path) -> None:
    workers = WorkerMetrics(tmp_path, 2)
    workers.started(1)
    workers.started(2)
    _write(workers.path(1), _snap(3, [1, 2], 5))
    _write(workers.path(2), _snap(10, [4, 0], 0))
    first = check_exposition(workers.render())
    assert first['done_total{q="a",worker="1"}'] == 3
    assert first['done_total{q="a",worker="2"}'] == 10
    assert first['took_seconds_bucket{worker="1",le="+Inf"}'] == 3
    assert first['mqkit_worker_up{worker="1"}'] == 1
    workers.exited(1, restarting=True)  # its process died; its last snapshot is carried
    assert not workers.path(1).exists()
    between = check_exposition(workers.render())
    assert between['done_total{q="a",worker="1"}'] == 3
    assert between['mqkit_worker_up{worker="1"}'] == 0
    assert 'depth{worker="1"}' not in between  # a gauge is the live process's
    workers.started(1)
    _write(workers.path(1), _snap(1, [1, 0], 2), pid=2)  # the new process starts over
    after = check_exposition(workers.render())
    assert after['done_total{q="a",worker="1"}'] == 4
    assert after['took_seconds_count{worker="1"}'] == 4
    assert after['took_seconds_bucket{worker="1",le="1"}'] == 2
    assert after['depth{worker="1"}'] == 2
    assert after['mqkit_worker_restarts_total{worker="1"}'] == 1
    assert after['mqkit_worker_restarts_total{worker="2"}'] == 0
    assert after['done_total{q="a",worker="2"}'] == 10


def test_snapshot_writer_writes_periodically_and_at_stop(tmp_path: Path) -> None:
    registry = MetricsRegistry()
    counter = registry.get_meter("t").create_counter("n")
    path = tmp_path / "w.json"
    writer = SnapshotWriter(registry, path, interval=0.05)
    writer.start()
    counter.add(1)
    try:
        for _ in range(100):
            got = read_snapshot(path)
            if got and got[0]["points"][0]["value"] == 1:
                break
            threading.Event().wait(0.02)
        else:
            raise AssertionError("not written")
    finally:
        counter.add(1)
        writer.stop()
    written: Any = read_snapshot(path)
    assert written[0]["points"][0]["value"] == 2
    with pytest.raises(mqkit.ConfigurationError, match=r"^interval"):
        SnapshotWriter(registry, path, interval=0)
    with pytest.raises(mqkit.ConfigurationError, match=r"^registry"):
        SnapshotWriter(object(), path)  # type: ignore[arg-type]


def test_the_grafana_dashboard_uses_only_metrics_mqkit_serves(tmp_path: Path) -> None:
    """Every metric a panel of docs/grafana/mqkit-dashboard.json queries is in a real
    exposition (a run with a failure, rendered per worker as the supervisor does)."""
    registry = MetricsRegistry()
    retry = mqkit.RetryPolicy(max_attempts=1, initial_backoff=0.0, jitter=0.0)
    with instrument(mqkit.connect("memory://prom-dash"), meter_provider=registry,
                    tracing=False) as client:
        client.admin.create_topic("t")
        client.admin.create_group("t", "g")
        with client.producer("t") as producer:
            producer.send_batch([b"a", b"bad"])

        def handler(msg: Any) -> None:
            if msg.body == b"bad":
                raise ValueError(msg.body)

        with client.consumer("t", "g") as consumer:
            consumer.run(handler, idle_timeout=0.2, retry=retry,
                         middleware=[Metrics(meter_provider=registry)])
    workers = WorkerMetrics(tmp_path, 1)
    workers.started(1)
    _write(workers.path(1), registry.snapshot())
    served = set(check_exposition(workers.render()))
    names = {key.split("{")[0] for key in served}
    dashboard = json.loads((Path(__file__).resolve().parent.parent / "docs" / "grafana"
                            / "mqkit-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    used = {m for e in exprs for m in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", e)}
    assert used and used <= names, sorted(used - names)
