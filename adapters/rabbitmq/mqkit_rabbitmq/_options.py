"""Every URL query parameter of the RabbitMQ adapter, as one frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mqkit.driver import ConfigurationError, TLSOptions

__all__ = ["RabbitOptions"]


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
