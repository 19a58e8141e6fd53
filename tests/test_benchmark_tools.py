"""The benchmark tools' own logic: benchmarks/ceiling.py's rounds and table, and
benchmarks/bench_backpressure.py's scenarios on memory:// (small counts; what is checked is
a bound on the messages held, never a speed)."""

from __future__ import annotations

import argparse
import json
import uuid
from pathlib import Path

from benchmarks import bench_backpressure, ceiling


def _row(rate: float, phase: str = "send") -> ceiling.Row:
    return ceiling.Row("redis", "redis-benchmark", phase, 1000, rate, "XADD")


def test_ceiling_rounds_combine_into_their_median_with_the_spread() -> None:
    rows = ceiling.combine([[_row(10.0), _row(100.0, "consume")],
                            [_row(30.0), _row(300.0, "consume")],
                            [_row(20.0), _row(200.0, "consume")]])
    assert [(r.phase, r.rate, r.rates) for r in rows] == [
        ("send", 20.0, (10.0, 30.0, 20.0)), ("consume", 200.0, (100.0, 300.0, 200.0))]
    assert "| redis | send | redis-benchmark | 20 (10-30) |" in ceiling.table(rows, {})


def test_ceiling_table_sets_the_side_by_side_medians_beside(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"results": [
        {"backend": "redis", "size": 100, "phase": "send", "side": "mqkit", "median": 5.0},
        {"backend": "redis", "size": 100, "phase": "send", "side": "raw", "median": 8.0},
        {"backend": "redis", "size": 10240, "phase": "send", "side": "raw", "median": 1.0},
        {"backend": "redis", "size": 100, "phase": "receive", "side": "raw", "median": 9.0},
    ]}))
    beside = ceiling.side_by_side(results, 100)
    assert beside == {("redis", "send", "mqkit"): 5.0, ("redis", "send", "raw"): 8.0,
                      ("redis", "consume", "raw"): 9.0}
    line = ceiling.table([_row(10.0)], beside).splitlines()[-1]
    assert line.startswith("| redis | send | redis-benchmark | 10 | 5 | 8 | 0.50 | 0.80 |")
    assert ceiling.side_by_side(tmp_path / "absent.json", 100) == {}


def _args(scenario: str, count: int) -> argparse.Namespace:
    return argparse.Namespace(
        backend="memory", url=f"memory://bp-test-{uuid.uuid4().hex[:8]}", topic="t",
        scenario=scenario, face="sync", count=count, size=100, handler_ms=1.0, linger=0.2,
        seconds=0.3, sample=0.02)


def test_backpressure_fast_producer_holds_at_most_the_prefetch() -> None:
    report = bench_backpressure.child_sync(_args("fast-producer", 3000))
    assert report.sent == 3000
    assert 0 < report.handled <= 3000
    assert 0 < report.max_in_flight <= bench_backpressure.PREFETCH
    assert all(in_flight <= bench_backpressure.PREFETCH for _, _, in_flight, _ in report.samples)
    assert report.peak >= report.start > 0 and report.end > 0


def test_backpressure_slow_consumer_starts_from_the_backlog() -> None:
    report = bench_backpressure.child_sync(_args("slow-consumer", 1000))
    assert report.sent == 0
    assert report.max_backlog == 1000
    assert report.max_in_flight <= bench_backpressure.PREFETCH
    assert report.handled > 0
