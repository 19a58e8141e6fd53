"""``memory://``: the in-process reference backend, embedded default and test double.

URL: ``memory://[NAME][?max_message_size=N&max_batch=N&dedup_window=S&max_retained=N]``.
Every connection in the process with the same NAME (default ``default``) shares one
broker, whichever face it uses: a blocking producer and an asyncio consumer talk to each
other. :func:`reset` forgets a broker, for users' unit tests.

How mqkit's words map here:

* **topic**: a named log. It numbers each message (``broker_id``: the topic's sequence
  number), timestamps it (``time.time()`` at send) and keeps it for replay: every message
  since the topic was created, or the last ``max_retained``.
* **group**: a queue over the topic holding every message sent after the group was
  created (``start="latest"``) or every message the topic retains (``"earliest"``).
  Every group gets every message; the consumers of one group compete for them.
* **receive**: leases ready messages for ``SubscriptionOptions.lease`` seconds, never more
  than ``prefetch`` held by one consumer. Ready messages go out by priority (0-9, higher
  first), then in send order; a redelivered message takes back its original place.
* **ack / reject**: the message leaves the group for good.
* **nack(delay)**: the message is ready again (after ``delay`` seconds) with
  ``delivery_count`` one higher; an expired lease does the same at once, ``extend_lease``
  moves the deadline to now + seconds, and closing a consumer (or its connection) makes
  every message it holds ready at once. A settle on an expired lease is ignored once
  the expiry has been seen (by the group's next receive, which a waiting consumer makes
  at the deadline): the message is delivered again. Any member of the group may settle
  a delivery of the group.
* **delay**: the message is not delivered before ``Message.delay`` seconds have passed.
* **TTL**: a message unread ``Message.ttl`` seconds after its send is never delivered and
  no longer counted in ``depth``.
* **dedup**: a message whose id was sent to the same topic within ``dedup_window``
  seconds (default 120) is dropped silently.
* **dead letter**: emulated by the portable layer, which republishes to
  ``<topic>.dlq``; **request/reply** is emulated the same way.
* **purge**: drops the group's ready and delayed messages; leased ones stay with their
  consumers, to be acked or nacked. **depth** counts ready, delayed and leased messages;
  **in_flight** the leased ones.
* **delete**: deleting a topic deletes its groups; a consumer of a deleted group gets
  :class:`mqkit.NotFound` on its next call (a waiting receive wakes up to raise it). A
  producer sends by name: NotFound while the topic is missing.

Delivery is at-least-once; nothing survives the process (``persistence`` unsupported).
Limits (``max_message_size``, ``max_batch``) are declared for the portable layer to
enforce. Escape hatch: ``driver.as_(Broker)``.

``plugin`` offers both faces; ``sync_only_plugin`` (scheme ``memory+sync``) and
``async_only_plugin`` (``memory+async``) offer one each, so tests can make the portable
layer run its bridges (register them with ``mqkit._registry.register``).
"""

from __future__ import annotations

from ..driver import AdapterPlugin
from ._async_driver import AsyncMemoryDriver, connect_async
from ._broker import Broker, reset
from ._driver import MemoryDriver, connect
from ._options import MemoryOptions

__all__ = [
    "AsyncMemoryDriver",
    "Broker",
    "MemoryDriver",
    "MemoryOptions",
    "async_only_plugin",
    "plugin",
    "reset",
    "sync_only_plugin",
]

plugin = AdapterPlugin(name="memory", schemes=("memory",), extra=None, connect=connect,
                       connect_async=connect_async)
"""Both faces: the blocking :class:`MemoryDriver` and the asyncio :class:`AsyncMemoryDriver`."""

sync_only_plugin = AdapterPlugin(name="memory", schemes=("memory+sync",), connect=connect)
"""Only the blocking driver: the asyncio face runs it through the portable layer's bridge."""

async_only_plugin = AdapterPlugin(name="memory", schemes=("memory+async",),
                                  connect_async=connect_async)
"""Only the asyncio driver: the blocking face runs it through the portable layer's bridge."""
