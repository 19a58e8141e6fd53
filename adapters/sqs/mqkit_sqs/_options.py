"""Every URL query parameter of the SQS/SNS adapter, as one frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mqkit.driver import ConfigurationError, Secret

__all__ = ["SqsOptions"]

# SQS caps a long poll (WaitTimeSeconds) at 20 s.
MAX_WAIT = 20
# SQS caps a visibility timeout at 12 hours.
MAX_VISIBILITY = 43_200


@dataclass(frozen=True, slots=True)
class SqsOptions:
    """SQS/SNS settings (URL query parameters or keyword arguments of ``connect``).

    See the package docstring for what each one does.
    """

    mode: Literal["sns", "queue"] = "sns"
    region: str | None = None
    profile: str | None = None
    session_token: Secret | None = None
    tls: bool = True
    verify: bool = True
    ca_file: str | None = None
    prefix: str = ""
    queue_format: str = "{topic}-{group}"
    fifo: bool = False
    # 20 s: SQS's longest long poll; fewer empty receives means fewer billed requests.
    wait_time: int = MAX_WAIT
    # 0: no native redrive policy; the portable layer dead-letters with the reason.
    max_receive_count: int = 0
    # 4 days: SQS's default retention, stated so that every group queue gets the same.
    retention: int = 345_600
    persistent: bool | None = None
    recreate: bool | None = None
    account_id: str | None = None
    # 64: one pooled HTTP connection per concurrent long poll, send and admin call.
    max_connections: int = 64

    def __post_init__(self) -> None:
        if not 0 <= self.wait_time <= MAX_WAIT:
            raise ConfigurationError(f"wait_time must be 0..{MAX_WAIT} seconds")
        if not 0 <= self.max_receive_count <= 1000:
            raise ConfigurationError("max_receive_count must be 0 (off) .. 1000")
        if not 60 <= self.retention <= 1_209_600:
            raise ConfigurationError("retention must be 60..1209600 seconds")
        if self.max_connections < 1:
            raise ConfigurationError("max_connections must be at least 1")
        head, sep, tail = self.queue_format.partition("{topic}")
        if not sep or "{group}" not in tail or "{group}" in head:
            raise ConfigurationError("queue_format must contain {topic} before {group}")
        for text, what in ((self.prefix, "prefix"), (self.queue_format.replace(
                "{topic}", "").replace("{group}", ""), "queue_format")):
            if any(not (c.isascii() and (c.isalnum() or c in "-_")) for c in text):
                raise ConfigurationError(
                    f"{what} may hold only ASCII letters, digits, '-' and '_'")
