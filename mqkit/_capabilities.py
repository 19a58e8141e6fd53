"""What a backend can do, declared as data.

Each driver exposes one frozen :class:`Capabilities` value. The portable layer and the
contract suite branch on it; nothing probes drivers with ``hasattr``. A feature is
``NATIVE`` (the broker does it), ``EMULATED`` (mqkit builds it from other primitives, with
the cost stated in the adapter's docs) or ``UNSUPPORTED`` (using it raises
:class:`mqkit.Unsupported`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import Literal

from ._errors import Unsupported

__all__ = ["Capabilities", "Feature", "Support"]


class Support(str, enum.Enum):
    """How a backend provides a feature."""

    NATIVE = "native"
    EMULATED = "emulated"
    UNSUPPORTED = "unsupported"

    def __bool__(self) -> bool:  # a supported feature is truthy
        return self is not Support.UNSUPPORTED


class Feature(str, enum.Enum):
    """The features a backend declares; each is a field of :class:`Capabilities`."""

    NACK = "nack"
    """Negative acknowledgement: the message comes back for another attempt."""
    NACK_DELAY = "nack_delay"
    """Nack with a delay before the message comes back."""
    DELAY = "delay"
    """Delayed send: a message is not delivered before ``Message.delay`` seconds."""
    DEAD_LETTER = "dead_letter"
    """Dead-letter destination for messages that failed their last attempt."""
    ORDERING = "ordering"
    """Per-key order (partition, message group, single stream)."""
    GROUPS = "groups"
    """Several independent groups on one topic, each getting every message."""
    COMPETING_CONSUMERS = "competing_consumers"
    """Several consumers of one group share its messages."""
    REPLAY = "replay"
    """A new group can start from the earliest retained message."""
    PRIORITY = "priority"
    """Higher-priority messages are delivered first."""
    TTL = "ttl"
    """Per-message time to live."""
    DEDUP = "dedup"
    """Broker-side deduplication by message id."""
    REQUEST_REPLY = "request_reply"
    """``client.request`` with reply-to and correlation id."""
    LEASE_EXTENSION = "lease_extension"
    """A slow handler can extend its lease (visibility timeout, ack wait)."""
    PERSISTENCE = "persistence"
    """Accepted messages survive a broker restart."""
    RETENTION = "retention"
    """A group keeps what is sent while none of its consumers is receiving (without it,
    only consumers subscribed at the time of sending get a message: core NATS, Redis
    pub/sub)."""
    REDELIVERY_ON_CLOSE = "redelivery_on_close"
    """Unacked messages of a closed or dead consumer go to another consumer."""
    ADMIN_STATS = "admin_stats"
    """Depth (queues) or lag (logs) per group."""
    PURGE = "purge"
    """Emptying a group's backlog."""
    RELEASE = "release"
    """A message given back unstarted (``stop``, the end of iteration) comes back with
    the delivery count it had: the broker does not count the release. Without it the
    count rises, and the run loop subtracts the releases it made when deciding retries."""
    TIMESTAMP = "timestamp"
    """Every delivery carries the time its message was accepted (``timestamp``, epoch
    seconds): recorded by the broker (native), or by the sending client and carried with
    the message (emulated). Without it a delivery's timestamp may be ``None``."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """A backend's declaration of what it does, and its limits.

    Limits are in bytes, counts or seconds. ``max_message_size`` is the largest body the
    backend accepts with no headers; ``max_headers`` is ``None`` when unbounded;
    ``max_batch`` is the most messages one driver call sends; ``max_delay`` is the
    longest delay for delayed send, ``None`` when unbounded. ``delivery`` is the
    guarantee a consumer gets: ``at-least-once`` (duplicates possible, nothing lost) or
    ``at-most-once`` (nothing duplicated, losses possible).
    """

    backend: str
    nack: Support = Support.NATIVE
    nack_delay: Support = Support.UNSUPPORTED
    delay: Support = Support.UNSUPPORTED
    dead_letter: Support = Support.EMULATED
    ordering: Support = Support.UNSUPPORTED
    groups: Support = Support.NATIVE
    competing_consumers: Support = Support.NATIVE
    replay: Support = Support.UNSUPPORTED
    priority: Support = Support.UNSUPPORTED
    ttl: Support = Support.UNSUPPORTED
    dedup: Support = Support.UNSUPPORTED
    request_reply: Support = Support.EMULATED
    lease_extension: Support = Support.UNSUPPORTED
    persistence: Support = Support.NATIVE
    retention: Support = Support.NATIVE
    redelivery_on_close: Support = Support.NATIVE
    admin_stats: Support = Support.NATIVE
    purge: Support = Support.NATIVE
    release: Support = Support.UNSUPPORTED
    timestamp: Support = Support.UNSUPPORTED
    max_message_size: int = 1_048_576
    max_headers: int | None = None
    max_batch: int = 1000
    max_delay: float | None = None
    delivery: Literal["at-least-once", "at-most-once"] = "at-least-once"

    def support(self, feature: Feature | str) -> Support:
        """How this backend provides ``feature``."""
        value: Support = getattr(self, Feature(feature).value)
        return value

    def require(self, feature: Feature | str, detail: str = "") -> None:
        """Raise :class:`Unsupported` naming the backend and feature unless supported."""
        if not self.support(feature):
            raise Unsupported(self.backend, Feature(feature).value, detail)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready mapping of every field (Support values as strings)."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.value if isinstance(value, Support) else value
        return out
