"""``/metrics`` for ``mqkit run --workers N --metrics``: one scrape, every worker.

Each worker keeps its metrics in its own :class:`~mqkit.otel.MetricsRegistry` and a
:class:`SnapshotWriter` thread writes them as JSON to a file of its own (atomically:
a temporary file renamed over it) every ``interval`` seconds and once more when it stops.
The supervisor's :class:`WorkerMetrics` reads the files at each scrape and renders one
exposition in which every point carries ``worker="<index>"`` (1..N, stable across
restarts), so nothing is summed across processes: sum with ``sum without (worker)
(rate(...))`` in PromQL.

**Restarts.** A worker process that dies is replaced by a new one starting from zero.
So that a worker's counters never go backwards (which Prometheus would take as a reset,
and a plain ``sum`` would show as a drop), the supervisor, when it sees a worker exit,
reads that worker's last snapshot and carries its counters and histograms over: the
new process's values are added to them. What the dead process counted after its last
write (at most ``interval`` seconds of it after a crash or ``kill -9``; nothing after a
graceful exit, which writes a final snapshot) is lost; a count is never repeated.
Gauges (the group depth) are not carried: they are the live worker's reading.
The supervisor adds ``mqkit_worker_restarts_total{worker}`` and ``mqkit_worker_up{worker}``.

Why files and not a socket or the status pipe: the supervisor runs no event loop, a
scrape must not wait on a busy worker, and a file outlives a worker killed with SIGKILL,
which is what makes the carry-over possible.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._errors import ConfigurationError
from ._exposition import render_prometheus
from ._registry import MetricsRegistry, Point, Series, Snapshot

__all__ = ["SnapshotWriter", "WorkerMetrics", "add_snapshots", "read_snapshot"]

log = logging.getLogger("mqkit.run")


def write_snapshot(path: Path, snapshot: Snapshot) -> None:
    """Write ``snapshot`` to ``path`` atomically (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "metrics": snapshot}))
    os.replace(tmp, path)


def read_snapshot(path: Path) -> Snapshot | None:
    """The snapshot in ``path``; ``None`` when there is none (or it cannot be read)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("mqkit: metrics snapshot %s unreadable: %s", path, exc)
        return None
    metrics = data.get("metrics") if isinstance(data, dict) else None
    return metrics if isinstance(metrics, list) else None


def _point_key(point: Point) -> str:
    return json.dumps(point.get("attributes", {}), sort_keys=True)


def add_snapshots(base: Snapshot, more: Snapshot) -> Snapshot:
    """``base`` + ``more`` for counters and histograms (point by point, matched on the
    attributes); a gauge, or a metric whose kind or buckets differ, comes from ``more``.
    Neither argument is changed."""
    out: dict[str, Series] = {s["name"]: copy.deepcopy(s) for s in base
                              if s["kind"] != "gauge"}
    for series in more:
        have = out.get(series["name"])
        if have is None or have["kind"] != series["kind"] or have["bounds"] != series["bounds"]:
            out[series["name"]] = copy.deepcopy(series)
            continue
        points = {_point_key(p): p for p in have["points"]}
        for point in series["points"]:
            old = points.get(_point_key(point))
            if old is None:
                have["points"].append(copy.deepcopy(point))
            elif series["kind"] == "counter":
                old["value"] = old.get("value", 0) + point.get("value", 0)
            else:
                old["counts"] = [a + b for a, b in zip(old["counts"], point["counts"],
                                                        strict=True)]
                old["sum"] = old.get("sum", 0) + point.get("sum", 0)
                old["count"] = old.get("count", 0) + point.get("count", 0)
    return [out[name] for name in sorted(out)]


class SnapshotWriter:
    """Writes ``registry``'s snapshot to ``path`` every ``interval`` seconds on a daemon
    thread (:meth:`start`), and a last time on :meth:`stop`."""

    def __init__(self, registry: MetricsRegistry, path: str | Path, *,
                 interval: float = 1.0) -> None:
        if not isinstance(registry, MetricsRegistry):
            raise ConfigurationError(
                f"registry must be a MetricsRegistry, got {type(registry).__name__}")
        if not isinstance(interval, int | float) or not interval > 0:
            raise ConfigurationError(f"interval must be a positive number, got {interval!r}")
        self.registry = registry
        self.path = Path(path)
        self.interval = float(interval)
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def write(self) -> None:
        """Write the snapshot now (errors logged, never raised)."""
        try:
            write_snapshot(self.path, self.registry.snapshot())
        except OSError as exc:
            log.warning("mqkit: could not write metrics to %s: %s", self.path, exc)

    def start(self) -> None:
        def loop() -> None:
            while not self._done.wait(self.interval):
                self.write()

        self.write()
        self._thread = threading.Thread(target=loop, name="mqkit-metrics-writer",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(2.0)
        self.write()


class WorkerMetrics:
    """The supervisor's side: one snapshot file per worker under ``directory``, the
    counters of exited processes carried over (see the module docstring)."""

    def __init__(self, directory: str | Path, workers: int) -> None:
        self.directory = Path(directory)
        self.workers = workers
        self._lock = threading.Lock()
        self._carried: dict[int, Snapshot] = {}
        self.restarts: dict[int, int] = dict.fromkeys(range(1, workers + 1), 0)
        self.up: dict[int, bool] = dict.fromkeys(range(1, workers + 1), False)

    def path(self, index: int) -> Path:
        """The snapshot file of worker ``index`` (given to it as ``--metrics-file``)."""
        return self.directory / f"worker-{index}.json"

    def started(self, index: int) -> None:
        with self._lock:
            self.up[index] = True

    def exited(self, index: int, *, restarting: bool) -> None:
        """Worker ``index``'s process exited: fold its last snapshot into the carried
        values and remove the file (the next process starts a new one)."""
        path = self.path(index)
        last = read_snapshot(path)
        with self._lock:
            self.up[index] = False
            if restarting:
                self.restarts[index] += 1
            if last is not None:
                self._carried[index] = add_snapshots(self._carried.get(index, []), last)
        try:
            path.unlink()
        except FileNotFoundError:
            pass

    def sources(self) -> list[tuple[dict[str, str], Snapshot]]:
        """Per worker: its labels and its carried-over plus current values."""
        out = []
        for index in range(1, self.workers + 1):
            current = read_snapshot(self.path(index)) or []
            with self._lock:
                carried = self._carried.get(index, [])
                up, restarts = self.up[index], self.restarts[index]
            snapshot = add_snapshots(carried, current) if carried else current
            snapshot = [*snapshot, *_own(up, restarts)]
            out.append(({"worker": str(index)}, snapshot))
        return out

    def render(self) -> str:
        """The Prometheus text exposition of every worker (one scrape)."""
        return render_prometheus(self.sources())


def _own(up: bool, restarts: int) -> Sequence[Series]:
    def one(name: str, kind: Any, value: float, description: str) -> Series:
        return Series(name=name, kind=kind, unit="", description=description, bounds=[],
                      points=[Point(attributes={}, value=value)])
    return [one("mqkit.worker.restarts", "counter", restarts,
                "Times the supervisor restarted this worker."),
            one("mqkit.worker.up", "gauge", 1 if up else 0,
                "1 while this worker's process runs.")]
