"""Prometheus text exposition (format 0.0.4) of :class:`~mqkit.otel.MetricsRegistry`
snapshots, with the OpenTelemetry-to-Prometheus name mapping. Standard library only.

Names follow the OpenTelemetry Prometheus compatibility rules: characters other than
``[a-zA-Z0-9_:]`` become ``_``; the unit is appended (``s`` → ``_seconds``, ``ms`` →
``_milliseconds``, ``By`` → ``_bytes``; annotations such as ``{message}`` are dropped);
counters end in ``_total``. So ``messaging.client.sent.messages`` is
``messaging_client_sent_messages_total`` and ``messaging.process.duration`` the histogram
``messaging_process_duration_seconds``. Attribute names map the same way
(``messaging.destination.name`` → ``messaging_destination_name``).

Several snapshots render as one exposition: each snapshot's labels (``worker="2"``) are
added to its points, and a metric family appears once (one ``# HELP``/``# TYPE``) with
the points of every snapshot. That is how the ``--workers`` supervisor serves one
``/metrics`` for all workers, labelled per worker.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ._registry import Series, Snapshot

__all__ = ["CONTENT_TYPE", "prometheus_name", "render_prometheus"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_UNITS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "By": "bytes",
          "1": "ratio"}
_BAD = re.compile(r"[^a-zA-Z0-9_:]")
_BAD_LABEL = re.compile(r"[^a-zA-Z0-9_]")
_TYPES = {"counter": "counter", "gauge": "gauge", "histogram": "histogram"}


def prometheus_name(name: str, unit: str = "", kind: str = "gauge") -> str:
    """The Prometheus metric name for an OpenTelemetry instrument (see the module)."""
    out = _BAD.sub("_", name)
    if out[:1].isdigit():
        out = "_" + out
    unit = re.sub(r"\{[^}]*\}", "", unit).strip()
    if unit:
        suffix = _BAD.sub("_", _UNITS.get(unit, unit))
        if not out.endswith("_" + suffix):
            out = f"{out}_{suffix}"
    if kind == "counter" and not out.endswith("_total"):
        out += "_total"
    return out


def _label_name(name: str) -> str:
    out = _BAD_LABEL.sub("_", name)
    return "_" + out if out[:1].isdigit() else out


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value(number: float) -> str:
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if math.isnan(number):
        return "NaN"
    if float(number).is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(float(number))


def _labels(pairs: Mapping[str, Any], extra: tuple[tuple[str, str], ...] = ()) -> str:
    items = [(_label_name(k), v) for k, v in pairs.items()]
    items.sort()
    items.extend(extra)
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{_escape(_text(v))}"' for k, v in items) + "}"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(_text(v) for v in value)
    return str(value)


def render_prometheus(sources: Sequence[tuple[Mapping[str, str], Snapshot]]) -> str:
    """The text exposition of ``sources``: ``(labels, snapshot)`` pairs, ``labels``
    added to every point of that snapshot (``{}`` for a single process). Families are
    sorted by name; a name seen with two kinds keeps the first (the other is dropped)."""
    families: dict[str, tuple[Series, list[tuple[dict[str, Any], Any]]]] = {}
    for labels, snapshot in sources:
        for series in snapshot:
            name = prometheus_name(series["name"], series["unit"], series["kind"])
            family = families.get(name)
            if family is None:
                family = families[name] = (series, [])
            elif family[0]["kind"] != series["kind"] or (
                    family[0]["bounds"] != series["bounds"]):
                continue
            for point in series["points"]:
                attrs = dict(point.get("attributes", {}))
                attrs.update(labels)
                family[1].append((attrs, point))
    lines: list[str] = []
    for name in sorted(families):
        series, points = families[name]
        kind = series["kind"]
        help_text = series["description"] or series["name"]
        lines.append(f"# HELP {name} {help_text.replace(chr(92), chr(92) * 2)}"
                     .replace("\n", "\\n"))
        lines.append(f"# TYPE {name} {_TYPES[kind]}")
        for attrs, point in sorted(points, key=lambda p: sorted(
                (k, _text(v)) for k, v in p[0].items())):
            if kind != "histogram":
                lines.append(f"{name}{_labels(attrs)} {_value(point['value'])}")
                continue
            base = name
            running = 0
            bounds = [*series["bounds"], math.inf]
            for bound, count in zip(bounds, point["counts"], strict=True):
                running += count
                lines.append(f"{base}_bucket{_labels(attrs, (('le', _value(bound)),))} "
                             f"{running}")
            lines.append(f"{base}_sum{_labels(attrs)} {_value(point['sum'])}")
            lines.append(f"{base}_count{_labels(attrs)} {point['count']}")
    return "\n".join(lines) + "\n" if lines else ""
