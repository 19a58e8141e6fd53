"""Every URL query parameter of the Kafka adapter, as one frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mqkit.driver import ConfigurationError, TLSOptions

__all__ = ["KafkaOptions", "check_min_insync"]

_SASL = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def check_min_insync(min_insync: int | None, replication: int | None) -> None:
    """ConfigurationError unless ``min_insync`` is None or 1..``replication`` (when that
    is known): a topic whose min.insync.replicas exceeds its replicas refuses every
    acks=all send."""
    if min_insync is None:
        return
    if min_insync < 1:
        raise ConfigurationError("min_insync_replicas must be at least 1")
    if replication is not None and min_insync > replication:
        raise ConfigurationError(f"min_insync_replicas ({min_insync}) must not exceed "
                                 f"replication ({replication})")


@dataclass(frozen=True, slots=True)
class KafkaOptions(TLSOptions):
    """Kafka settings (URL query parameters or keyword arguments of ``connect``).

    See the package docstring for what each one does; the TLS ones are
    :class:`mqkit.driver.TLSOptions`' fields.
    """

    # TLS only when asked (TLSOptions' None would follow the URL scheme)
    tls: bool = False

    # Partitions and replication of topics mqkit creates. 3 partitions: enough for a
    # group's members to share a topic; replication None: the broker's default.
    partitions: int = 3
    replication: int | None = None
    # min.insync.replicas of topics mqkit creates (None: the broker's default). With
    # acks=all a send succeeds only while this many replicas have it: on a cluster,
    # replication 3 and min_insync_replicas 2 survive one node down without losing an
    # acknowledged record.
    min_insync_replicas: int | None = None
    group_format: str = "{topic}.{group}"
    retry_prefix: str = "mqkit.retry."
    dead_letter_format: str = "{topic}.dlq"
    # Producer guarantees, set explicitly (kafka-python 3 changed its defaults): every
    # in-sync replica acknowledges, and the idempotent producer never duplicates its
    # own retries.
    acks: Literal["all", "1", "0"] = "all"
    idempotence: bool = True
    # 5 ms: a send_batch flushes at once, so lingering only helps concurrent single
    # sends share a request; longer adds latency to every lone send.
    linger_ms: int = 5
    # 256 KiB per partition batch: a 1000-message batch of small records fits in one
    # or two requests; the 16 KiB default splits it into dozens.
    batch_size: int = 262_144
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "none"
    # Largest body accepted (the broker's default max.message.bytes is 1 MiB + 12 for
    # the whole record batch; 1,000,000 leaves room for the key and headers).
    max_message_size: int = 1_000_000
    max_request_size: int = 1_048_576
    # 30 s: a send that the broker does not take within this (restart, leader move)
    # fails with Unavailable; the idempotent producer retries inside that window.
    delivery_timeout_ms: int = 30_000
    # 10 s session, 1 s heartbeats: a crashed member is noticed in 10 s (Kafka's 45 s
    # default leaves its partitions idle that long); heartbeats run on kafka-python's
    # background thread, so slow handlers do not expire the session.
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000
    # 5 min between receives before the member is dropped from the group (Kafka's
    # default): handlers longer than this lose their partitions.
    max_poll_interval_ms: int = 300_000
    client_id: str = "mqkit"
    sasl_mechanism: str | None = None

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise ConfigurationError("partitions must be at least 1")
        if self.replication is not None and self.replication < 1:
            raise ConfigurationError("replication must be at least 1")
        check_min_insync(self.min_insync_replicas, self.replication)
        if "{group}" not in self.group_format:
            raise ConfigurationError("group_format must contain {group}")
        if "{topic}" not in self.dead_letter_format:
            raise ConfigurationError("dead_letter_format must contain {topic}")
        if not self.retry_prefix:
            raise ConfigurationError("retry_prefix must not be empty")
        if self.idempotence and self.acks != "all":
            raise ConfigurationError("idempotence needs acks=all (or set idempotence=false)")
        if self.max_message_size < 1 or self.max_message_size >= self.max_request_size:
            raise ConfigurationError("max_message_size must be positive and below "
                                     "max_request_size")
        if self.delivery_timeout_ms <= self.linger_ms + 10_000:
            raise ConfigurationError("delivery_timeout_ms must exceed linger_ms + 10000 "
                                     "(one produce request's timeout)")
        if self.sasl_mechanism is not None and self.sasl_mechanism.upper() not in _SASL:
            raise ConfigurationError(
                f"sasl_mechanism must be one of {', '.join(_SASL)}")
        for name in ("linger_ms", "batch_size", "delivery_timeout_ms",
                     "session_timeout_ms", "heartbeat_interval_ms", "max_poll_interval_ms"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"{name} must not be negative")
