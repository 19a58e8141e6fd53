"""The clustered topologies of the fault suite, by backend (see :mod:`.base`).

``TOPOLOGIES[backend]()`` makes a topology object (nothing starts until ``up``). Each entry
imports its module lazily, so that a backend's module (and what it needs) loads only when
used. A backend registers with one line here.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path

from mqkit import ConfigurationError

from .base import Topology

__all__ = ["NOT_APPLICABLE", "TOPOLOGIES", "Topology", "clusters_home", "make", "port_from_env"]


def _lazy(module: str, cls: str) -> Callable[[], Topology]:
    def make_topology() -> Topology:
        topology: Topology = getattr(importlib.import_module(module, __name__), cls)()
        return topology

    make_topology.__qualname__ = f"{module}.{cls}"
    return make_topology


TOPOLOGIES: dict[str, Callable[[], Topology]] = {
    "kafka": _lazy(".kafka", "KafkaCluster"),
    "rabbitmq": _lazy(".rabbitmq", "RabbitCluster"),
    "nats": _lazy(".nats", "NatsCluster"),
    "redis": _lazy(".redis", "RedisSentinel"),
    "sqs": _lazy(".sqs", "SqsMoto"),
}

NOT_APPLICABLE: dict[tuple[str, str], str] = {
    ("sqs", "leader_killed"): "moto keeps state in memory; a managed service's restart "
                              "is not ours to test",
    ("sqs", "cluster_restart"): "moto keeps state in memory; a managed service's restart "
                                "is not ours to test",
}
"""(backend, fault) pairs the fault suite does not run, with the reason (shown as "n/a:
<reason>" in ``docs/reliability.md``). A fault is listed only when it cannot pass by
construction on that topology; the harness checks the premise instead (the fault loses
the topic's state), so the entry fails loudly once it no longer holds."""


def port_from_env(given: int | None, variable: str, default: int) -> int:
    """A topology's first port: ``given``, else ``$variable``, else ``default``; a
    variable that is not a number is a ConfigurationError naming it."""
    if given is not None:
        return given
    raw = os.environ.get(variable, "")
    try:
        return int(raw or default)
    except ValueError:
        raise ConfigurationError(f"{variable} must be a port number, got {raw!r}") from None


def clusters_home() -> Path:
    """``$MQKIT_CLUSTERS_HOME``, default ``~/.cache/mqkit/clusters``."""
    return Path(os.environ.get("MQKIT_CLUSTERS_HOME") or Path.home() / ".cache/mqkit/clusters")


def make(backend: str) -> Topology:
    """The topology of ``backend``; ConfigurationError naming the known ones otherwise."""

    try:
        factory = TOPOLOGIES[backend]
    except KeyError:
        raise ConfigurationError(f"backend: no cluster topology for {backend!r}; known: "
                                 f"{', '.join(sorted(TOPOLOGIES))}") from None
    return factory()
