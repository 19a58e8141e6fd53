"""Every URL query parameter of the NATS adapter, as one frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mqkit.driver import ConfigurationError, Secret, TLSOptions

__all__ = ["NatsOptions"]


@dataclass(frozen=True, slots=True)
class NatsOptions(TLSOptions):
    """NATS settings (URL query parameters or keyword arguments of ``connect``).

    See the package docstring for what each one does; the TLS ones are
    :class:`mqkit.driver.TLSOptions`' fields.
    """

    # TLS only when asked (TLSOptions' None would follow the URL scheme)
    tls: bool = False

    mode: Literal["jetstream", "core"] = "jetstream"
    # Stream names may not contain '.', so a topic's stream is the prefix plus the topic
    # with '.' turned into '_'; the prefix keeps mqkit's streams apart from others.
    stream_prefix: str = "MQKIT_"
    storage: Literal["file", "memory"] = "file"
    replicas: int = 1
    # 0 / -1: unlimited, JetStream's own defaults for a limits-retention stream.
    max_age: float = 0.0
    max_bytes: int = -1
    max_msgs: int = -1
    # 120 s: JetStream's default window for Nats-Msg-Id deduplication.
    duplicate_window: float = 120.0
    # -1: unlimited; mqkit's retry policy dead-letters first. A positive value is a
    # server-side backstop (past it the server stops redelivering, silently).
    max_deliver: int = -1
    # 20,000: far above any one consumer's prefetch times a few members, and bounds
    # what the server tracks per group.
    max_ack_pending: int = 20_000
    # 1,000 outstanding PubAcks: one send_batch (max_batch) pipelined whole; the window
    # makes send_batch cost about one round trip instead of one per message.
    publish_window: int = 1000
    max_batch: int = 1000
    # 5 s: nats-py's JetStream API default; bounds every admin call and PubAck wait.
    api_timeout: float = 5.0
    # 10 s x 2 outstanding pings: a silently dead connection is noticed within ~20 s
    # (a closed socket, as on a broker restart, is noticed at once).
    ping_interval: float = 10.0
    max_outstanding_pings: int = 2
    # 0.5 s between reconnect attempts: a restarted broker is found again quickly.
    reconnect_wait: float = 0.5
    name: str = "mqkit"
    inbox_prefix: str = "_INBOX"
    # TLS, besides TLSOptions' fields
    server_hostname: str | None = None
    tls_handshake_first: bool = False
    # Authentication (user:password may also come from the URL)
    user: str | None = None
    password: Secret | None = None
    token: Secret | None = None
    nkey_seed: Secret | None = None
    creds_file: str | None = None

    def __post_init__(self) -> None:
        if not self.stream_prefix or any(c in self.stream_prefix for c in ".*> /\\"):
            raise ConfigurationError(
                "stream_prefix must be non-empty without '.', '*', '>', spaces or slashes")
        if self.replicas < 1:
            raise ConfigurationError("replicas must be at least 1")
        if self.duplicate_window < 0 or self.max_age < 0:
            raise ConfigurationError("duplicate_window and max_age must not be negative")
        if self.max_deliver == 0 or self.max_deliver < -1:
            raise ConfigurationError("max_deliver must be -1 (unlimited) or positive")
        if self.max_ack_pending < 1:
            raise ConfigurationError("max_ack_pending must be at least 1")
        if self.publish_window < 1 or self.max_batch < 1:
            raise ConfigurationError("publish_window and max_batch must be at least 1")
        if self.api_timeout <= 0 or self.ping_interval <= 0 or self.reconnect_wait < 0:
            raise ConfigurationError(
                "api_timeout and ping_interval must be positive, reconnect_wait not negative")
        if self.max_outstanding_pings < 1:
            raise ConfigurationError("max_outstanding_pings must be at least 1")
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigurationError("cert_file and key_file go together")
        if self.token is not None and (self.user is not None or self.nkey_seed is not None):
            raise ConfigurationError("token excludes user/password and nkey_seed")
