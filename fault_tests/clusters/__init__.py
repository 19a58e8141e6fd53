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

from .base import Topology

__all__ = ["TOPOLOGIES", "Topology", "clusters_home", "make"]


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
}


def clusters_home() -> Path:
    """``$MQKIT_CLUSTERS_HOME``, default ``~/.cache/mqkit/clusters``."""
    return Path(os.environ.get("MQKIT_CLUSTERS_HOME") or Path.home() / ".cache/mqkit/clusters")


def make(backend: str) -> Topology:
    """The topology of ``backend``; ConfigurationError naming the known ones otherwise."""
    from mqkit import ConfigurationError

    try:
        factory = TOPOLOGIES[backend]
    except KeyError:
        raise ConfigurationError(f"backend: no cluster topology for {backend!r}; known: "
                                 f"{', '.join(sorted(TOPOLOGIES))}") from None
    return factory()
