"""What the adapter declares: the capabilities of each mode (one table for both faces)."""

from __future__ import annotations

from mqkit.driver import Capabilities, Support

from ._options import RedisOptions

__all__ = ["MAX_BATCH", "MAX_MESSAGE_SIZE", "PUBSUB_MAX_MESSAGE_SIZE", "aof_enabled",
           "capabilities_for", "pubsub_capabilities"]

# 16 MiB: Redis accepts bulk strings up to proto-max-bulk-len (512 MB), but every entry
# sits in memory and one large reply stalls the single-threaded server for everyone.
MAX_MESSAGE_SIZE = 16 * 1024 * 1024
# 1,000 XADDs per pipeline: one round trip, and a reply buffer of a few hundred KB.
MAX_BATCH = 1000
# 1 MiB: Redis buffers a slow subscriber's output up to client-output-buffer-limit
# pubsub (32 MB hard by default) and then drops the subscriber; 1 MiB bodies keep
# dozens in flight below that.
PUBSUB_MAX_MESSAGE_SIZE = 1024 * 1024


def capabilities_for(options: RedisOptions, aof: bool) -> Capabilities:
    """Streams mode; ``persistence`` native when declared on, or ``auto`` and AOF on."""
    persistent = options.persistence == "on" or (options.persistence == "auto" and aof)
    return Capabilities(
        backend="redis",
        nack=Support.NATIVE,
        nack_delay=Support.EMULATED,
        delay=Support.EMULATED,
        dead_letter=Support.EMULATED,
        ordering=Support.NATIVE,
        groups=Support.NATIVE,
        competing_consumers=Support.NATIVE,
        replay=Support.NATIVE,
        priority=Support.EMULATED,  # a stream per band (_bands, _reader)
        ttl=Support.EMULATED,  # mqkit-expires, dropped at receive (mqkit._expiry)
        dedup=Support.UNSUPPORTED,
        request_reply=Support.EMULATED,
        lease_extension=Support.EMULATED,
        persistence=Support.NATIVE if persistent else Support.UNSUPPORTED,
        redelivery_on_close=Support.NATIVE,
        admin_stats=Support.NATIVE,
        purge=Support.NATIVE,
        timestamp=Support.NATIVE,
        max_message_size=MAX_MESSAGE_SIZE,
        max_headers=None,
        max_batch=MAX_BATCH,
        max_delay=None,
        delivery="at-least-once",
    )


def aof_enabled(info: dict[str, str] | None) -> bool:
    """Whether ``INFO persistence`` reports AOF on (``None``: INFO refused)."""
    return info is not None and info.get("aof_enabled") == "1"


def pubsub_capabilities() -> Capabilities:
    """Pub/sub mode: channels, at most once, nothing kept."""
    no = Support.UNSUPPORTED
    return Capabilities(
        backend="redis", nack=no, nack_delay=no, delay=no, dead_letter=no,
        ordering=Support.NATIVE, groups=no, competing_consumers=no, replay=no,
        priority=no, ttl=no, dedup=no, request_reply=no, lease_extension=no,
        persistence=no, retention=no, redelivery_on_close=no, admin_stats=no, purge=no,
        max_message_size=PUBSUB_MAX_MESSAGE_SIZE, max_headers=None, max_batch=MAX_BATCH,
        max_delay=None, delivery="at-most-once")
