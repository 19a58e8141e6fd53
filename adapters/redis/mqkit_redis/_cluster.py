"""Redis Cluster (``redis[s]+cluster://``): client arguments and step routing (sans-I/O).

The URL's hosts are seeds: redis-py's ``RedisCluster`` asks the first one that answers
for the slot map (``CLUSTER SLOTS``), and asks again (any seed, then any known node) when
a node fails or answers ``MOVED``. The adapter uses that client for the slot map only:
``Link.run`` still drives each step of a flow as one packed write on one connection, to
the primary of the step's slot.

Every step of every flow names keys of one topic only, and in cluster mode they all
carry the topic as hash tag (``Names``: ``{topic}``), so a step, a ``MULTI``/``EXEC``, a
multi-key command (``DEL``, ``EXISTS``, ``XREADGROUP`` over bands) and a Lua script
(``MOVE_DUE``, ``ENSURE_BAND``, ``READ_BANDS``) all hit one slot, hence one node. A
step is routed by its first key (:func:`step_key`); a step without keys (``SCRIPT LOAD``
after ``NOSCRIPT``, ``SCAN``, ``INFO``) goes to the node of the flow's previous step, or
to the node a flow was started on (:meth:`Link.run_each`: ``SCAN`` and ``INFO`` on each
primary). Should a step name keys of two slots anyway, Redis refuses it (``CROSSSLOT``,
or ``MOVED`` for a command sent to the wrong node): the adapter never splits a step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.crc import key_slot

from mqkit.driver import ConfigurationError, ConnectParams

from ._flows import Command
from ._options import RedisOptions

__all__ = ["CLUSTER_PORT", "MOVED_TRIES", "ClusterArgs", "cluster_args", "is_cluster",
           "slot", "step_key"]

CLUSTER_PORT = 6379
"""A seed's default port (a host of a ``redis+cluster`` URL without one)."""
# 3 tries of a step that answered MOVED/ASK, the slot map fetched again before each: a
# slot moves once per resharding step, so a third MOVED means the cluster is still in
# flux; the error is then Unavailable and the portable layer retries within its deadline.
MOVED_TRIES = 3
_MAX_CONNECTIONS = 2**31  # redis-py's ConnectionPool default

# Where a command's first key is, by command name (the commands the flows send).
_KEY_AT = {b"XGROUP": 2, b"XINFO": 2}
_KEYLESS = frozenset({b"MULTI", b"EXEC", b"INFO", b"SCAN", b"SCRIPT", b"PING"})


@dataclass(frozen=True)
class ClusterArgs:
    """How to reach the cluster: redis-py's ``RedisCluster(startup_nodes=[ClusterNode(h,
    p) for h, p in hosts], **kwargs)``."""

    hosts: list[tuple[str, int]]
    kwargs: dict[str, Any]

    def __repr__(self) -> str:  # the password stays out of reprs
        return f"ClusterArgs(hosts={self.hosts!r})"


def is_cluster(scheme: str) -> bool:
    return scheme.endswith("+cluster")


def cluster_args(params: ConnectParams, options: RedisOptions,
                 kwargs: dict[str, Any]) -> ClusterArgs | None:
    """The cluster set-up of a ``redis+cluster``/``rediss+cluster`` URL (``kwargs``:
    :func:`~mqkit_redis._link.client_kwargs`' for it), None for any other scheme.

    Raises ConfigurationError naming the argument: a database other than 0 (a cluster
    has only database 0), ``mode=pubsub``, ``key_password`` (redis-py's asyncio cluster
    client takes no key password), no host.
    """
    url = params.url
    if not is_cluster(url.scheme):
        return None
    if kwargs["db"] != 0:
        raise ConfigurationError(f"redis: a {url.scheme}:// URL has no database number "
                                 f"(a cluster has database 0 only), got /{kwargs['db']}")
    if options.mode != "streams":
        raise ConfigurationError(f"redis: mode={options.mode} is not supported on "
                                 f"{url.scheme}:// (streams only)")
    if not url.hosts:
        raise ConfigurationError(f"redis: a {url.scheme}:// URL needs at least one seed "
                                 "host")
    rest = {k: v for k, v in kwargs.items() if k not in ("host", "port", "db")}
    # Unbounded, as redis-py's single-node pool is: a consumer blocked in XREADGROUP
    # holds a connection, and redis-py's cluster default (100 per node) would make the
    # 101st concurrent receive on a node fail instead of wait.
    rest["max_connections"] = _MAX_CONNECTIONS
    if rest.pop("ssl_password", None) is not None:
        raise ConfigurationError(f"redis: key_password is not supported on {url.scheme}:// "
                                 "(use an unencrypted key_file)")
    hosts = [(host, port or CLUSTER_PORT) for host, port in url.hosts]
    return ClusterArgs(hosts=hosts, kwargs=rest)


def _raw(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _first_key(command: Command) -> Any:
    name = _raw(command[0]).upper()
    if name in _KEYLESS:
        return None
    if name in (b"EVALSHA", b"EVAL"):
        return command[3] if int(command[2]) > 0 else None
    if name == b"XREADGROUP":
        return command[[_raw(c).upper() for c in command].index(b"STREAMS") + 1]
    return command[_KEY_AT.get(name, 1)]


def step_key(commands: Sequence[Command]) -> Any:
    """The first key a step names (the step is routed by its slot), None when it names
    none."""
    for command in commands:
        key = _first_key(command)
        if key is not None:
            return key
    return None


def slot(key: Any) -> int:
    """The cluster slot of ``key`` (its hash tag's, when it has one)."""
    result: int = key_slot(_raw(key))
    return result
