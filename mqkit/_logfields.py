"""Structured fields on mqkit's log records about a message (``extra=``).

Every record mqkit logs about a message (dead-lettered, retried, dropped, a handler or
settlement failure, a duplicate skipped...) carries these attributes, next to its
unchanged human-readable text:

- ``mqkit_topic``, ``mqkit_group``: where the message came from (``mqkit_group`` is
  ``None`` on the sending side);
- ``mqkit_message_id``: mqkit's message id (``None`` when the message has none, or when
  the record is about several messages: those carry ``mqkit_message_ids``, a list);
- ``trace_id``, ``span_id``: the OpenTelemetry trace (32 hex digits) and span (16) the
  message was processed in (the ``process`` span of :class:`mqkit.otel.Tracing`, kept
  in ``ctx.state[SPAN_KEY]``) when it has a valid context, else the span current when
  the record is made; ``None`` without one, and always ``None`` when OpenTelemetry was
  never imported.

Reading the span costs nothing when OpenTelemetry is not imported: ``sys.modules`` is
looked at, never the import system; a failure reading it gives ``None``, never raises.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["FIELDS", "SPAN_KEY", "log_fields", "trace_fields"]

#: The attribute names set on every record about a message (``mqkit_message_ids`` too
#: on records about several).
FIELDS = ("mqkit_topic", "mqkit_group", "mqkit_message_id", "trace_id", "span_id")

#: The ``HandlerContext.state`` key under which the tracing middleware keeps the
#: message's ``process`` span.
SPAN_KEY = "otel.span"

_NONE: tuple[str | None, str | None] = (None, None)


def trace_fields(span: Any = None) -> tuple[str | None, str | None]:
    """``(trace_id, span_id)`` in hex of ``span`` (an OpenTelemetry span) when it has a
    valid context, else of the current span; ``(None, None)`` when neither is valid,
    when OpenTelemetry is not imported, or when reading fails (never raises)."""
    try:
        if span is not None:
            ctx = span.get_span_context()
            if ctx.is_valid:
                return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
        trace = sys.modules.get("opentelemetry.trace")
        if trace is None:
            return _NONE
        ctx = trace.get_current_span().get_span_context()
        if not ctx.is_valid:
            return _NONE
        return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
    except Exception:  # logging never fails for tracing
        return _NONE


def log_fields(topic: str | None, group: str | None, message_id: str | None = None, *,
               span: Any = None, message_ids: Iterable[str | None] | None = None
               ) -> dict[str, Any]:
    """The ``extra`` dict of a record about a message (see the module docstring).

    ``span``: the span the message was processed in, if known (else the current one).
    ``message_ids``: for a record about several messages (sets ``mqkit_message_ids``;
    ``mqkit_message_id`` is then the id only when there is exactly one).
    """
    trace_id, span_id = trace_fields(span)
    fields: dict[str, Any] = {"mqkit_topic": topic, "mqkit_group": group,
                              "mqkit_message_id": message_id, "trace_id": trace_id,
                              "span_id": span_id}
    if message_ids is not None:
        ids = list(message_ids)
        fields["mqkit_message_ids"] = ids
        if message_id is None and len(ids) == 1:
            fields["mqkit_message_id"] = ids[0]
    return fields
