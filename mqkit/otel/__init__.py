"""OpenTelemetry tracing, trace-context propagation and metrics
(``pip install 'mqkit-sdk[otel]'``).

Imported only when used: ``import mqkit`` never imports OpenTelemetry. The pieces:

- :func:`instrument` ``(client)`` adds send hooks to a client (either face): every send
  gets a ``send {topic}`` span, and every message carries the W3C ``traceparent`` /
  ``tracestate`` of its creation context in its headers, injected through the configured
  global propagator (``opentelemetry.propagate``); sends are counted and timed
  (``messaging.client.sent.messages``, ``messaging.client.operation.duration``).
- :class:`Tracing` (blocking face) / :class:`AsyncTracing` (asyncio face, and the App) is
  a middleware: each message is handled in a ``process {topic}`` span that links to (or,
  with ``parent=True``, is a child of) the producer's context, and the loop's decision
  becomes a ``settle`` span carrying ``mqkit.outcome``.
- :class:`Metrics` / :class:`AsyncMetrics`: consumed messages, processing duration,
  outcomes (acked, retried, dead-lettered, rejected...), end-to-end latency and the
  group's depth (see :mod:`mqkit.otel._metrics`).
- :class:`MetricsRegistry`, an in-process ``MeterProvider``, and
  :func:`render_prometheus`, its Prometheus text exposition (what ``mqkit run
  --metrics`` serves at ``/metrics``).

Follows the OpenTelemetry messaging semantic conventions (schema 1.27 and later; checked
against 1.44, ``opentelemetry-semantic-conventions`` 0.66b2). See docs/observability.md.
"""

from __future__ import annotations

try:
    import opentelemetry.propagate as _propagate  # noqa: F401
    import opentelemetry.trace as _trace  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised with the module hidden
    from .._errors import AdapterNotInstalled

    raise AdapterNotInstalled(
        "mqkit.otel needs the OpenTelemetry API: pip install 'mqkit-sdk[otel]' "
        "(or pip install opentelemetry-api)") from exc

from ._exposition import CONTENT_TYPE, prometheus_name, render_prometheus
from ._instrument import instrument
from ._metrics import AsyncMetrics, Metrics, SendMeter
from ._registry import MetricsRegistry, Snapshot
from ._tracing import (
    SCHEMA_URL,
    AsyncTracing,
    ReceiveTracer,
    SendTracer,
    Tracing,
    messaging_system,
)

__all__ = ["CONTENT_TYPE", "SCHEMA_URL", "AsyncMetrics", "AsyncTracing", "Metrics",
           "MetricsRegistry", "ReceiveTracer", "SendMeter", "SendTracer", "Snapshot",
           "Tracing", "instrument",
           "messaging_system", "prometheus_name", "render_prometheus"]
