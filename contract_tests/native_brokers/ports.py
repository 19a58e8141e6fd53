"""The one table of the native brokers' ports, URLs and checked login.

``scripts/brokers`` runs its brokers on these loopback ports and prints these URLs; the
contract harness (``contract_tests/brokers.py``) recognises a native broker by the same
ports. Pure: nothing here reads the environment unless given it, and nothing exits.

A port is overridden with ``MQKIT_BROKERS_<NAME>_PORT`` (the name upper-cased, ``-`` as
``_``: ``MQKIT_BROKERS_SQS_AUTH_PORT``, ``MQKIT_BROKERS_KAFKA_SASL_PORT``...).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping

__all__ = [
    "AUTH_PASSWORD",
    "AUTH_USER",
    "BACKENDS",
    "DEFAULT_PORTS",
    "HOST",
    "KAFKA_JAAS",
    "NATS_AUTH_CONF",
    "PROCESSES",
    "SQS_AUTH",
    "URL_TEMPLATES",
    "PortValueError",
    "auth_url",
    "port_var",
    "read_port",
    "read_ports",
    "url_for",
]

HOST = "127.0.0.1"
"""Every native broker listens on loopback only."""

BACKENDS: tuple[str, ...] = ("rabbitmq", "kafka", "sqs", "redis", "nats")
"""The backends, in the order ``up``, ``env`` and ``status`` go through them."""

SQS_AUTH = "sqs-auth"
"""The second moto server, which enforces IAM; started and stopped with ``sqs``."""

PROCESSES: tuple[str, ...] = (*BACKENDS, SQS_AUTH)
"""Every process the script runs (what ``down``, ``status`` and ``logs`` know)."""

AUTH_USER = "mqkit"
AUTH_PASSWORD = "mqkit-auth-check"
"""A user with a password on the brokers whose default URL has none (Redis, NATS, Kafka's
SASL listener; the containers add the same), for the contract case that a wrong password
is PermissionDenied; password-less clients keep working."""

KAFKA_JAAS = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
              f'username="{AUTH_USER}" password="{AUTH_PASSWORD}" '
              f'user_{AUTH_USER}="{AUTH_PASSWORD}";')
"""The JAAS line of Kafka's SASL/PLAIN listener: one user, AUTH_USER."""

NATS_AUTH_CONF = (
    "authorization {\n  users = [\n"
    f'    {{user: "{AUTH_USER}", password: "{AUTH_PASSWORD}"}}\n'
    '    {user: "anonymous", password: "not-used-by-anyone"}\n'
    "  ]\n}\n"
    'no_auth_user: "anonymous"\n'
)
"""NATS's configuration: AUTH_USER, and clients without credentials mapped to a
``no_auth_user``; both live in the global account, which has JetStream."""

DEFAULT_PORTS: Mapping[str, int] = {
    "rabbitmq": 5672,
    "kafka": 9092,
    "sqs": 5000,
    "redis": 6379,
    "nats": 4222,
    SQS_AUTH: 5001,
    "kafka-controller": 9093,
    "kafka-sasl": 9094,
    "nats-monitor": 8222,
    "rabbitmq-dist": 25672,
}
"""Every port by name: the five client ports (named by backend), then the others."""

URL_TEMPLATES: Mapping[str, str] = {
    "rabbitmq": "amqp://guest:guest@{host}:{port}/%2F",
    "kafka": "kafka://{host}:{port}",
    "sqs": "sqs://testing:testing@{host}:{port}?region=us-east-1&tls=false",
    "redis": "redis://{host}:{port}/0",
    "nats": "nats://{host}:{port}",
}
"""Each backend's mqkit URL with ``{host}`` and ``{port}`` (natively and in containers)."""


class PortValueError(ValueError):
    """A ``MQKIT_BROKERS_*_PORT`` variable that is not an integer; the message names it."""


def port_var(name: str) -> str:
    """The environment variable that overrides port ``name`` (a key of DEFAULT_PORTS)."""
    if name not in DEFAULT_PORTS:
        raise KeyError(f"unknown native broker port {name!r}; known: {', '.join(DEFAULT_PORTS)}")
    return f"MQKIT_BROKERS_{name.upper().replace('-', '_')}_PORT"


def read_port(name: str, environ: Mapping[str, str]) -> int:
    """Port ``name`` as ``environ`` sets it, else its default; an empty value is unset.

    Raises PortValueError (naming the variable and its value) when it is not an integer.
    """
    var = port_var(name)
    raw = environ.get(var, "").strip()
    if not raw:
        return DEFAULT_PORTS[name]
    try:
        return int(raw)
    except ValueError:
        raise PortValueError(f"{var}={raw!r} is not an integer") from None


def read_ports(environ: Mapping[str, str]) -> dict[str, int]:
    """Every port of DEFAULT_PORTS as ``environ`` sets it (see read_port)."""
    return {name: read_port(name, environ) for name in DEFAULT_PORTS}


def url_for(backend: str, ports: Mapping[str, int]) -> str:
    """The mqkit URL of the native ``backend`` on ``ports`` (see read_ports)."""
    return URL_TEMPLATES[backend].format(host=HOST, port=ports[backend])


def auth_url(backend: str, ports: Mapping[str, int]) -> str | None:
    """A URL whose credentials the native broker checks, for the backends whose login is
    fixed here (RabbitMQ's guest, the Redis ACL user, the NATS user, Kafka's SASL
    listener); None for SQS, whose key is made at start (see the sqs module)."""
    user = urllib.parse.quote(AUTH_USER, safe="")
    password = urllib.parse.quote(AUTH_PASSWORD, safe="")
    if backend == "rabbitmq":
        return url_for("rabbitmq", ports)
    if backend == "kafka":
        return f"kafka://{user}:{password}@{HOST}:{ports['kafka-sasl']}"
    if backend == "redis":
        return f"redis://{user}:{password}@{HOST}:{ports['redis']}/0"
    if backend == "nats":
        return f"nats://{user}:{password}@{HOST}:{ports['nats']}"
    return None
