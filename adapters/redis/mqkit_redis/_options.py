"""Every URL query parameter of the Redis adapter, as one frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mqkit.driver import ConfigurationError, Secret, TLSOptions

__all__ = ["RedisOptions"]


@dataclass(frozen=True, slots=True)
class RedisOptions(TLSOptions):
    """Redis settings (URL query parameters or keyword arguments of ``connect``).

    See the package docstring for what each one does; the TLS ones are
    :class:`mqkit.driver.TLSOptions`' fields.
    """

    mode: Literal["streams", "pubsub"] = "streams"
    key_prefix: str = ""
    dlq_suffix: str = ":dlq"
    # Retention is never silent: 0 keeps every entry (the stream grows until trimmed).
    maxlen: int = 0
    # Seconds: entries older than this are trimmed on each send (MINID); 0 is off.
    max_age: float = 0.0
    # Approximate trimming (``~``) lets Redis trim whole radix-tree nodes: much cheaper,
    # and keeps a few more entries than asked.
    trim_exact: bool = False
    # 1 s: the longest one XREADGROUP blocks before this consumer looks again for
    # reclaimable (lease expired) and nacked messages; short enough for prompt
    # redelivery, long enough that an idle consumer costs ~1 call per second.
    block_slice: float = 1.0
    # auto: declare persistence only when the server runs with AOF (INFO persistence).
    persistence: Literal["auto", "on", "off"] = "auto"
    # Re-create the topics and groups this client uses when the server restarted
    # (its run_id changed), so that clients recover from a restart that lost data.
    redeclare: bool = True
    client_name: str = "mqkit"
    password: Secret | None = None
    username: str | None = None
    # redis+sentinel:// only: the monitored primary's name (required there), and the
    # Sentinels' own credentials when they require auth (the URL's are the data nodes').
    service: str | None = None
    sentinel_username: str | None = None
    sentinel_password: Secret | None = None
    # TLS, besides TLSOptions' fields (tls unset: on for rediss://)
    check_hostname: bool = True

    def __post_init__(self) -> None:
        if self.maxlen < 0:
            raise ConfigurationError("maxlen must not be negative")
        if self.max_age < 0:
            raise ConfigurationError("max_age must not be negative")
        if self.maxlen and self.max_age:
            raise ConfigurationError("give maxlen or max_age, not both (one XADD trims "
                                     "by one strategy)")
        if not 0 < self.block_slice <= 60:
            raise ConfigurationError("block_slice must be in (0, 60] seconds")
        if self.service is not None and not self.service.strip():
            raise ConfigurationError("service must not be empty")
        if not self.dlq_suffix:
            raise ConfigurationError("dlq_suffix must not be empty")
