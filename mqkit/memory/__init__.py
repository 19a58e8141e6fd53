"""``memory://``: the in-process reference backend, embedded default and test double.

URL: ``memory://[NAME][?max_message_size=N&max_batch=N&dedup_window=S&max_retained=N]``.
Clients in one process that use the same NAME (default ``default``) share one broker.

How mqkit's words map here:

* **topic**: a named log (the last ``max_retained`` messages, for replay);
* **group**: a queue over the topic, fed every message sent after its creation (or the
  retained log, with ``start="earliest"``); its consumers compete;
* **ack / reject**: the message leaves the group; **nack(delay)**: it is ready again after
  ``delay`` seconds with ``delivery_count`` + 1; an expired **lease** does the same;
  ``extend_lease`` pushes the deadline; closing a consumer makes its leased messages ready;
* **dead letter**: emulated by the portable layer (republish to ``<topic>.dlq``);
* **delay, TTL, priority (0-9), dedup by message id**: native.

Delivery is at-least-once; nothing survives the process. Thread-safe; the asyncio face
runs the blocking driver on worker threads. Escape hatch: ``client.as_(Broker)``.
"""

from __future__ import annotations

from ..driver import AdapterPlugin, ConnectParams, Driver, parse_options
from ._broker import Broker
from ._driver import MemoryDriver, MemoryOptions, reset

__all__ = ["Broker", "MemoryDriver", "MemoryOptions", "plugin", "reset"]


def _connect(params: ConnectParams) -> Driver:
    options = parse_options(MemoryOptions, params.options)
    return MemoryDriver(params.url.host or "default", options)


plugin = AdapterPlugin(name="memory", schemes=("memory",), extra=None, connect=_connect)
