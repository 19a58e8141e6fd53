"""Every URL query parameter of the RabbitMQ adapter, as one frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mqkit.driver import ConfigurationError, TLSOptions

__all__ = ["ArchiveRetention", "RabbitOptions", "check_retention"]

# 7 days: long enough to bring up a new consumer group after a week-end, short enough
# that an archive nobody replays does not grow for ever.
DEFAULT_ARCHIVE_MAX_AGE = 7 * 24 * 3600
# 1 GiB per stream topic: a bounded disk cost by default; raise it for big histories.
DEFAULT_ARCHIVE_MAX_BYTES = 1 << 30
# x-max-length-bytes is an AMQP signed 64-bit integer; x-max-age takes the same bound.
_INT64_MAX = (1 << 63) - 1


def check_retention(max_age: object, max_bytes: object, prefix: str = "") -> None:
    """Raise :class:`ConfigurationError` naming ``<prefix>max_age`` or
    ``<prefix>max_bytes`` unless each is an int in 1 .. 2**63-1 (``bool`` refused)."""
    for name, value in ((f"{prefix}max_age", max_age), (f"{prefix}max_bytes", max_bytes)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigurationError(f"{name} must be an integer, not {value!r}")
        if not 1 <= value <= _INT64_MAX:
            raise ConfigurationError(f"{name} must be 1 .. {_INT64_MAX}, not {value}")


@dataclass(frozen=True, slots=True)
class RabbitOptions(TLSOptions):
    """RabbitMQ settings (URL query parameters or keyword arguments of ``connect``).

    See the package docstring for what each one does; the TLS ones are
    :class:`mqkit.driver.TLSOptions`' fields.
    """

    # 30 s: RabbitMQ's own suggestion; a background thread services the connection so
    # slow handlers never miss heartbeats, whatever this value.
    heartbeat: int = 30
    queue_type: Literal["quorum", "classic"] = "quorum"
    # Members of each group's quorum queue (x-quorum-initial-group-size); None: the
    # broker's default (every node, up to its quorum_cluster_size). Fixed when the queue
    # is declared: every client of a group must give the same value (RabbitMQ refuses a
    # redeclaration with another, 406 PRECONDITION_FAILED).
    quorum_size: int | None = None
    binding_key: str = "#"
    max_priority: int = 0
    queue_format: str = "{topic}.{group}"
    exchange_prefix: str = ""
    persistent: bool = True
    confirm: bool = True
    server_hostname: str | None = None
    # 30 s: a connection blocked by a broker alarm (memory, disk) raises Unavailable
    # instead of hanging a send forever.
    blocked_timeout: float = 30.0
    # Retention of the archive stream of each ``*.stream`` topic created by this client
    # (x-max-age in seconds, x-max-length-bytes); create_topic's options override them.
    archive_max_age: int = DEFAULT_ARCHIVE_MAX_AGE
    archive_max_bytes: int = DEFAULT_ARCHIVE_MAX_BYTES

    def __post_init__(self) -> None:
        if self.heartbeat < 0:
            raise ConfigurationError("heartbeat must not be negative")
        if not 0 <= self.max_priority <= 255:
            raise ConfigurationError("max_priority must be 0..255")
        if self.max_priority and self.queue_type != "classic":
            raise ConfigurationError("max_priority needs queue_type=classic "
                                     "(quorum queues have no x-max-priority)")
        if self.quorum_size is not None:
            if self.quorum_size < 1:
                raise ConfigurationError("quorum_size must be at least 1")
            if self.queue_type != "quorum":
                raise ConfigurationError("quorum_size needs queue_type=quorum")
        if "{topic}" not in self.queue_format or "{group}" not in self.queue_format:
            raise ConfigurationError("queue_format must contain {topic} and {group}")
        if self.blocked_timeout <= 0:
            raise ConfigurationError("blocked_timeout must be positive")
        check_retention(self.archive_max_age, self.archive_max_bytes, "archive_")


@dataclass(frozen=True, slots=True)
class ArchiveRetention:
    """The topic options of ``create_topic`` on a ``*.stream`` topic: the retention of
    its archive stream, fixed when the stream is declared (defaults: the client's
    ``archive_max_age`` and ``archive_max_bytes``)."""

    archive_max_age: int = DEFAULT_ARCHIVE_MAX_AGE
    archive_max_bytes: int = DEFAULT_ARCHIVE_MAX_BYTES

    def __post_init__(self) -> None:
        check_retention(self.archive_max_age, self.archive_max_bytes, "archive_")
