"""Settings of this ``scripts/brokers`` run, read once from the environment, and its paths.

``MQKIT_BROKERS_HOME`` (default ``~/.cache/mqkit/brokers``) holds everything generated;
``MQKIT_BROKERS_TIMEOUT`` (default 120 s) bounds the wait for each broker to answer; the
ports come from :mod:`.ports`. A bad value ends the script with a message naming it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .ports import SQS_AUTH, PortValueError, read_ports

SCRIPTS_DIR = Path(__file__).resolve().parent.parent.parent / "scripts"
"""The repository's scripts/ (the Kafka pom lives in scripts/kafka)."""


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        sys.exit(f"brokers: {name}={raw!r} is not an integer")


def _ports() -> dict[str, int]:
    try:
        return read_ports(os.environ)
    except PortValueError as exc:
        sys.exit(f"brokers: {exc}")


BROKERS_HOME = Path(
    os.environ.get("MQKIT_BROKERS_HOME") or Path.home() / ".cache" / "mqkit" / "brokers"
).expanduser()
TIMEOUT = float(_env_int("MQKIT_BROKERS_TIMEOUT", 120))
PORTS = _ports()


def log(msg: str) -> None:
    """Progress goes to stderr: stdout is reserved for `env`'s eval-able lines."""
    print(f"brokers: {msg}", file=sys.stderr, flush=True)


def bdir(backend: str) -> Path:
    """The working directory (and data) of ``backend``'s process."""
    return BROKERS_HOME / backend


def log_path(backend: str) -> Path:
    return BROKERS_HOME / "logs" / f"{backend}.log"


def pid_path(backend: str) -> Path:
    return BROKERS_HOME / "pids" / f"{backend}.pid"


def sqs_auth_credentials_path() -> Path:
    return bdir(SQS_AUTH) / "credentials.json"
