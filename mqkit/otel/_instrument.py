"""``instrument(client)``: trace and count the sends of a client (either face)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from .._errors import ConfigurationError
from ._metrics import SendMeter
from ._tracing import ReceiveTracer, SendTracer

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.trace import TracerProvider

    from .._sync._client import Client
    from ..aio._client import AsyncClient

__all__ = ["instrument"]

C = TypeVar("C", "Client", "AsyncClient")


def instrument(client: C, *, tracer_provider: TracerProvider | None = None,
               meter_provider: MeterProvider | None = None,
               propagator: TextMapPropagator | None = None, tracing: bool = True,
               metrics: bool = True, client_spans: bool = False) -> C:
    """Instrument the sends of ``client`` (either face); returns ``client``.

    ``tracing``: a span per send and the trace context in every message's headers
    (:class:`~mqkit.otel.SendTracer`; ``tracer_provider`` and ``propagator`` default to
    the global ones; ``client_spans``: whether other instrumentations, such as the
    client library's contrib instrumentation, may trace mqkit's sends too: ``False``
    by default, so they neither duplicate the send span nor rewrite the message's trace
    context; see :class:`~mqkit.otel.SendTracer`). ``metrics``:
    ``messaging.client.sent.messages`` and ``messaging.client.operation.duration``
    (:class:`~mqkit.otel.SendMeter`; ``meter_provider`` defaults to the global one).
    With ``tracing``, every receive of the client's consumers that returned messages
    also gets a ``receive {topic}`` span (:class:`~mqkit.otel.ReceiveTracer`).
    Instrumenting a client again adds no hook a second time. Handling is instrumented
    by the middleware (:class:`~mqkit.otel.Tracing`,
    :class:`~mqkit.otel.Metrics` and their asyncio forms).

    Raises :class:`~mqkit.ConfigurationError` naming ``client`` when it is not an mqkit
    client, or ``tracing`` / ``metrics`` / ``client_spans`` when not a bool.
    """
    add = getattr(client, "add_send_hook", None)
    if add is None or not hasattr(client, "url") or not hasattr(client, "_connection"):
        raise ConfigurationError(
            f"client: instrument takes an mqkit client (mqkit.connect or "
            f"mqkit.aio.connect), got {type(client).__name__}")
    for name, value in (("tracing", tracing), ("metrics", metrics),
                        ("client_spans", client_spans)):
        if not isinstance(value, bool):
            raise ConfigurationError(f"{name} must be a bool, got {type(value).__name__}")
    hooks = client._connection.send_hooks
    if tracing and not any(isinstance(h, SendTracer) for h in hooks):
        add(SendTracer(client, tracer_provider=tracer_provider, propagator=propagator,
                       client_spans=client_spans))
    if tracing and not any(isinstance(h, ReceiveTracer)
                           for h in client._connection.receive_hooks):
        client.add_receive_hook(ReceiveTracer(client, tracer_provider=tracer_provider))
    if metrics and not any(isinstance(h, SendMeter) for h in hooks):
        add(SendMeter(client, meter_provider=meter_provider))
    return client
