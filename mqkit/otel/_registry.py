"""An in-process OpenTelemetry ``MeterProvider`` that aggregates for Prometheus.

:class:`MetricsRegistry` implements the OpenTelemetry metrics **API** (no SDK needed):
counters, up-down counters, histograms, gauges and their observable forms, aggregated
cumulatively in this process. :meth:`MetricsRegistry.snapshot` returns the current values
as plain data (JSON-serialisable) that :func:`mqkit.otel.render_prometheus` turns into
the Prometheus text exposition format; ``mqkit run --metrics`` serves it at ``/metrics``.

Contracts:

- Cumulative temporality: a counter's value only grows for the life of the process (a
  negative ``add`` to a counter is ignored, as the API prescribes for counters).
- Recording is thread-safe (one lock per instrument) and allocation-light: the
  attributes are keyed as a ``frozenset`` of their items.
- Observable instruments' callbacks run in :meth:`~MetricsRegistry.snapshot`, on the
  caller's thread; a callback that raises is logged and skipped.
- Asking a meter twice for an instrument of the same name and kind returns the same
  instrument, so two middlewares given one registry add up.

Why not the SDK: the SDK's per-record cost is several times this one's, and serving
``/metrics`` should not need a second package; a provider of your own (SDK with an OTLP
exporter) is still what :class:`~mqkit.otel.Metrics` and :func:`~mqkit.otel.instrument`
take as ``meter_provider``.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import GeneratorType
from typing import Any, Literal, TypedDict, TypeVar

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, CallbackT, Observation

from .._errors import ConfigurationError

__all__ = ["DEFAULT_BUCKETS", "FrozenAttributes", "MetricsRegistry", "Point", "Series",
           "Snapshot"]

log = logging.getLogger("mqkit")

# The SDK's default explicit bucket boundaries (for histograms without an advisory).
DEFAULT_BUCKETS = (0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0,
                   2500.0, 5000.0, 7500.0, 10000.0)

Kind = Literal["counter", "gauge", "histogram"]
_Key = frozenset[tuple[str, Any]]


class Point(TypedDict, total=False):
    """One series of a metric: ``attributes`` and either ``value`` (counter, gauge) or
    ``counts`` (per bucket, not cumulative, one more than ``bounds``), ``sum``, ``count``."""

    attributes: dict[str, Any]
    value: float
    counts: list[int]
    sum: float
    count: int


class Series(TypedDict):
    """One metric: its OpenTelemetry ``name``, ``kind`` (``counter``: monotonic sum;
    ``gauge``: a value that goes both ways; ``histogram``), ``unit``, ``description``,
    histogram ``bounds`` (empty otherwise) and ``points``."""

    name: str
    kind: Kind
    unit: str
    description: str
    bounds: list[float]
    points: list[Point]


Snapshot = list[Series]
"""What :meth:`MetricsRegistry.snapshot` returns: every metric with at least one point."""


_EMPTY: _Key = frozenset()


class FrozenAttributes(dict[str, Any]):
    """Attributes built once and passed to every record (mqkit's middleware does): the
    registry keys them once, not per record. Must not be changed after it is built."""

    __slots__ = ("key",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key: _Key = frozenset(self.items())


def _key(attributes: Mapping[str, Any] | None) -> _Key:
    if type(attributes) is FrozenAttributes:
        return attributes.key
    return frozenset(attributes.items()) if attributes else _EMPTY


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class _Instrument:
    kind: Kind = "gauge"

    def __init__(self, name: str, unit: str = "", description: str = "") -> None:
        self.name = name
        self.unit = unit
        self.description = description
        self._lock = threading.Lock()
        self._values: dict[_Key, float] = {}

    def series(self) -> Series:
        with self._lock:
            items = list(self._values.items())
        return Series(name=self.name, kind=self.kind, unit=self.unit,
                      description=self.description, bounds=[],
                      points=[Point(attributes={k: _plain(v) for k, v in key}, value=value)
                              for key, value in items])


class _Counter(_Instrument, metrics.Counter):
    kind: Kind = "counter"

    def add(self, amount: float, attributes: Mapping[str, Any] | None = None,
            context: Any = None) -> None:
        if amount < 0:
            log.warning("mqkit: counter %s: negative add (%r) ignored", self.name, amount)
            return
        key = _key(attributes)
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount


class _UpDownCounter(_Instrument, metrics.UpDownCounter):
    def add(self, amount: float, attributes: Mapping[str, Any] | None = None,
            context: Any = None) -> None:
        key = _key(attributes)
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount


class _Gauge(_Instrument, metrics._Gauge):  # the API names its gauge base _Gauge
    def set(self, amount: float, attributes: Mapping[str, Any] | None = None,
            context: Any = None) -> None:
        key = _key(attributes)
        with self._lock:
            self._values[key] = amount


class _Histogram(_Instrument, metrics.Histogram):
    kind: Kind = "histogram"

    def __init__(self, name: str, unit: str = "", description: str = "",
                 bounds: Sequence[float] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, unit, description)
        self.bounds = sorted(float(b) for b in bounds)
        # per attributes: [count per bucket..., sum]
        self._hist: dict[_Key, list[float]] = {}

    def record(self, amount: float, attributes: Mapping[str, Any] | None = None,
               context: Any = None) -> None:
        key = _key(attributes)
        index = bisect.bisect_left(self.bounds, amount)
        with self._lock:
            cells = self._hist.get(key)
            if cells is None:
                cells = self._hist[key] = [0.0] * (len(self.bounds) + 2)
            cells[index] += 1
            cells[-1] += amount

    def series(self) -> Series:
        with self._lock:
            items = [(key, list(cells)) for key, cells in self._hist.items()]
        points = []
        for key, cells in items:
            counts = [int(c) for c in cells[:-1]]
            points.append(Point(attributes={k: _plain(v) for k, v in key}, counts=counts,
                                sum=cells[-1], count=sum(counts)))
        return Series(name=self.name, kind="histogram", unit=self.unit,
                      description=self.description, bounds=list(self.bounds), points=points)


Callback = Callable[[CallbackOptions], Iterable[Observation]]


def _callables(callbacks: Sequence[CallbackT] | None) -> list[Callback]:
    """The API's callbacks (functions, or generators sent the options) as functions."""
    out: list[Callback] = []
    for callback in callbacks or ():
        if isinstance(callback, GeneratorType):
            next(callback)  # to its first yield, as the SDK does

            def call(options: CallbackOptions, gen: Any = callback) -> Iterable[Observation]:
                try:
                    return gen.send(options)  # type: ignore[no-any-return]
                except StopIteration:
                    return []
            out.append(call)
        else:
            out.append(callback)  # type: ignore[arg-type]
    return out


class _Observable(_Instrument):
    def __init__(self, name: str, callbacks: Sequence[CallbackT] | None, unit: str,
                 description: str, kind: Kind) -> None:
        super().__init__(name, unit, description)
        self.kind = kind
        self.callbacks = _callables(callbacks)

    def series(self) -> Series:
        values: dict[_Key, float] = {}
        for callback in self.callbacks:
            try:
                for obs in callback(CallbackOptions()):
                    values[_key(obs.attributes)] = obs.value
            except Exception:
                log.exception("mqkit: the callback of %s failed", self.name)
        with self._lock:
            self._values = values
        return super().series()


class _ObservableGauge(_Observable, metrics.ObservableGauge):
    pass


class _ObservableCounter(_Observable, metrics.ObservableCounter):
    pass


class _ObservableUpDownCounter(_Observable, metrics.ObservableUpDownCounter):
    pass


InstT = TypeVar("InstT", bound=_Instrument)
ObsT = TypeVar("ObsT", bound=_Observable)


class _Meter(metrics.Meter):
    def __init__(self, registry: MetricsRegistry, name: str, version: str | None,
                 schema_url: str | None) -> None:
        super().__init__(name, version, schema_url)
        self._registry = registry

    def create_counter(self, name: str, unit: str = "",
                       description: str = "") -> metrics.Counter:
        return self._registry._add(_Counter, name, lambda: _Counter(name, unit, description))

    def create_up_down_counter(self, name: str, unit: str = "",
                               description: str = "") -> metrics.UpDownCounter:
        return self._registry._add(_UpDownCounter, name,
                                   lambda: _UpDownCounter(name, unit, description))

    def create_gauge(self, name: str, unit: str = "", description: str = "") -> metrics._Gauge:
        return self._registry._add(_Gauge, name, lambda: _Gauge(name, unit, description))

    def create_histogram(self, name: str, unit: str = "", description: str = "", *,
                         explicit_bucket_boundaries_advisory: Sequence[float] | None = None
                         ) -> metrics.Histogram:
        bounds = explicit_bucket_boundaries_advisory or DEFAULT_BUCKETS
        return self._registry._add(_Histogram, name,
                                   lambda: _Histogram(name, unit, description, bounds))

    def create_observable_gauge(self, name: str, callbacks: Sequence[CallbackT] | None = None,
                                unit: str = "", description: str = ""
                                ) -> metrics.ObservableGauge:
        return self._registry._observable(_ObservableGauge, name, callbacks, lambda: (
            _ObservableGauge(name, callbacks, unit, description, "gauge")))

    def create_observable_counter(self, name: str, callbacks: Sequence[CallbackT] | None = None,
                                  unit: str = "", description: str = ""
                                  ) -> metrics.ObservableCounter:
        return self._registry._observable(_ObservableCounter, name, callbacks, lambda: (
            _ObservableCounter(name, callbacks, unit, description, "counter")))

    def create_observable_up_down_counter(
            self, name: str, callbacks: Sequence[CallbackT] | None = None, unit: str = "",
            description: str = "") -> metrics.ObservableUpDownCounter:
        return self._registry._observable(_ObservableUpDownCounter, name, callbacks, lambda: (
            _ObservableUpDownCounter(name, callbacks, unit, description, "gauge")))


class MetricsRegistry(metrics.MeterProvider):
    """A ``MeterProvider`` keeping every instrument's cumulative values in this process
    (see the module docstring). Pass it as ``meter_provider`` to
    :class:`~mqkit.otel.Metrics`, :class:`~mqkit.otel.AsyncMetrics` or
    :func:`~mqkit.otel.instrument` (or set it as the global provider), and read it with
    :meth:`snapshot`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._instruments: dict[str, _Instrument] = {}

    def get_meter(self, name: str, version: str | None = None, schema_url: str | None = None,
                  attributes: Mapping[str, Any] | None = None) -> metrics.Meter:
        """A meter whose instruments record into this registry (one namespace of
        instrument names for every meter)."""
        if not isinstance(name, str):
            raise ConfigurationError(f"name must be a str, got {type(name).__name__}")
        return _Meter(self, name, version, schema_url)

    def _add(self, cls: type[InstT], name: str, make: Callable[[], InstT]) -> InstT:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"name must be a non-empty str, got {name!r}")
        with self._lock:
            found = self._instruments.get(name)
            if found is None:
                found = self._instruments[name] = make()
            elif type(found) is not cls:
                raise ConfigurationError(
                    f"name {name!r} is already a {type(found).__name__.lstrip('_')}, "
                    f"not a {cls.__name__.lstrip('_')}")
            return found

    def _observable(self, cls: type[ObsT], name: str, callbacks: Sequence[CallbackT] | None,
                    make: Callable[[], ObsT]) -> ObsT:
        with self._lock:
            found = self._instruments.get(name)
        if isinstance(found, cls):
            found.callbacks.extend(_callables(callbacks))  # a second middleware's callback
            return found
        return self._add(cls, name, make)

    def snapshot(self) -> Snapshot:
        """Every instrument with at least one point, sorted by name (observable
        instruments' callbacks are called here)."""
        with self._lock:
            instruments = sorted(self._instruments.values(), key=lambda i: i.name)
        out = []
        for instrument in instruments:
            series = instrument.series()
            if series["points"]:
                out.append(series)
        return out
