"""kafka-python's network client, made to keep a refused login instead of retrying it.

kafka-python 3.0's connection manager remembers an authentication failure per node and
raises it from the next ``get_connection`` (its ``_auth_failures``), so that a wrong
password is not retried forever. But it records only an exception that escapes
``KafkaConnection.initialize``, and ``initialize`` never lets one escape: it closes the
connection with the error instead. A refused SASL login therefore looks like any failed
connection, and the bootstrap loop retries it until ``bootstrap_timeout_ms`` and raises
``KafkaTimeoutError`` (``Unavailable``) with the cause only in its log.

:class:`AuthAwareManager` records what the connection closed with, when that is a SASL or
authorization failure (``SaslAuthenticationFailedError``, ``AuthorizationError``), after
kafka-python's own connect step; the bootstrap's next attempt (one reconnect backoff
later, ``reconnect_backoff_ms``) raises it, and the caller maps it to
:class:`mqkit.PermissionDenied`. Nothing else changes: a connection refused, a timeout or
a broker error other than those two is retried as before. The record is per node and
sticky for the client's life (kafka-python's own rule: it is cleared by a successful
connect, which cannot happen while it is recorded), so a client whose login is refused
must be closed and made again with other credentials.

:func:`net_client` is the ``kafka_client`` factory every kafka-python client of the
driver is given (a documented setting of KafkaAdminClient, KafkaProducer and
KafkaConsumer); :func:`close_quietly` releases the network thread of a client whose
owner's constructor raised.

Three readings of kafka-python state that has no public accessor live here too, so that
every use of kafka-python's private API is in this module: :func:`has_fatal_error` (a
producer's ``_transaction_manager``), :func:`group_state` (a consumer's
``_coordinator``) and :func:`broker_connected` (a consumer's ``_client``); and one
request to chosen brokers, :func:`known_everywhere` (an admin client's ``_manager``:
KafkaAdminClient asks metadata of one broker of its choice only).

Tied to kafka-python 3.0's internals (``KafkaAdminClient._manager``,
``KafkaConnectionManager._connect``,
``_build_transport`` and ``_auth_failures``, a transport's ``_sock_recv``, a client's
``_net``, ``KafkaProducer._transaction_manager``, ``KafkaConsumer._coordinator`` and
``_client``), pinned
to the kafka-python version of the ``kafka`` extra; ``tests/test_kafka_auth_unit.py``
checks that they are still there and fails naming the one that is not. No helper falls
back silently: a missing attribute raises ``AttributeError`` naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import kafka.errors as ke
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.net.compat import KafkaNetClient
from kafka.net.manager import KafkaConnectionManager
from kafka.net.selector import NetworkSelector
from kafka.protocol.metadata import MetadataRequest

__all__ = [
    "AUTH_FAILURES",
    "AuthAwareManager",
    "broker_connected",
    "close_quietly",
    "group_state",
    "has_fatal_error",
    "known_everywhere",
    "net_client",
]

AUTH_FAILURES: tuple[type[BaseException], ...] = (
    ke.SaslAuthenticationFailedError, ke.AuthorizationError)
"""What a connection can close with that no retry will cure."""


def _data_before_eof(recv: Callable[[], tuple[bytes, Any]]) -> Callable[[], tuple[bytes, Any]]:
    """A transport's ``_sock_recv`` that returns the bytes read before an end of stream
    or error, without the error, so they reach the protocol; the next read (the socket
    stays readable) reports the error again. kafka-python's transport drops such bytes."""
    def delivering() -> tuple[bytes, Any]:
        data, err = recv()
        return (data, None) if data and err is not None else (data, err)
    return delivering


class AuthAwareManager(KafkaConnectionManager):  # type: ignore[misc]
    """A connection manager that records a refused login of a node's connection, and
    whose transports deliver a response that arrives together with the broker's close
    (the broker answers a refused SASL login and closes at once: with kafka-python's
    transport the answer was lost about half the time, and the connect retried)."""

    async def _build_transport(self, node: Any, timeout_at: float | None = None) -> Any:
        transport = await super()._build_transport(node, timeout_at=timeout_at)
        transport._sock_recv = _data_before_eof(transport._sock_recv)
        return transport

    async def _connect(self, node: Any, conn: Any, reset_backoff_on_connect: bool = True,
                       timeout_at: float | None = None) -> None:
        await super()._connect(node, conn, reset_backoff_on_connect=reset_backoff_on_connect,
                               timeout_at=timeout_at)
        init = conn.init_future
        if init.is_done and isinstance(init.exception, AUTH_FAILURES):
            self._auth_failures[node.node_id] = init.exception


def net_client(**configs: Any) -> KafkaNetClient:
    """A ``KafkaNetClient`` over an :class:`AuthAwareManager` (the ``kafka_client``
    setting: kafka-python calls it with the client's whole configuration)."""
    net = NetworkSelector(**configs)
    return KafkaNetClient(net=net, manager=AuthAwareManager(net, **configs), **configs)


def close_quietly(client: KafkaNetClient) -> None:
    """Close a client whose owner's constructor raised (kafka-python starts the network
    thread before it bootstraps and leaves no object to close): as KafkaAdminClient.close
    does. Never raises."""
    try:
        client.close()
        client._net.stop()
    except Exception:  # best effort on a client that never started
        pass


def has_fatal_error(producer: KafkaProducer) -> bool:
    """Whether ``producer``'s transaction manager holds a fatal error (every later send
    on this producer would fail with it). kafka-python makes a manager only for an
    idempotent or transactional producer; without one (``None``, idempotence off) there
    is no such error: that ``False`` is kafka-python's own rule, not a fallback."""
    manager = producer._transaction_manager
    return manager is not None and bool(manager.has_fatal_error())


def group_state(consumer: KafkaConsumer) -> str:
    """The group membership state of ``consumer``'s coordinator, as kafka-python names
    it (``"<unjoined>"``, ``"<rebalancing>"``, ``"<stable>"``): for log lines."""
    return str(consumer._coordinator.state)


def broker_connected(consumer: KafkaConsumer) -> bool:
    """Whether ``consumer``'s network client holds a live connection to at least one
    broker of its metadata (its ``_client``; no I/O, under a microsecond): what a
    member between fetches has instead of an error while every broker is down."""
    client = consumer._client
    return any(client.connected(broker.node_id) for broker in client.cluster.brokers())


def _led(metadata: dict[str, Any], topics: Sequence[str]) -> bool:
    """Whether ``metadata`` (a MetadataResponse as a dict) has every one of ``topics``
    with a leader for each of its partitions."""
    found = {t.get("name"): t for t in metadata.get("topics", [])}
    for name in topics:
        topic = found.get(name)
        if topic is None or topic.get("error_code") != 0 or not topic.get("partitions"):
            return False
        if any(p.get("error_code") != 0 or p.get("leader_id", -1) < 0
               for p in topic["partitions"]):
            return False
    return True


def known_everywhere(admin: KafkaAdminClient, topics: Sequence[str],
                     request_timeout_ms: int = 2_000) -> bool:
    """Whether every broker the cluster lists now reports each of ``topics`` with a
    leader for every partition (a Metadata request to each broker in turn, through the
    admin's ``_manager``).

    A broker's metadata follows the controller's with a lag: right after CreateTopics
    another broker may not know the topic yet, and a client asking it (any admin call,
    opening a producer) would be told the topic does not exist. A broker that does not
    answer within ``request_timeout_ms`` is not waited for (it is down or being fenced:
    no client gets an answer from it either). With no broker listed (a stand-in client),
    the answer is True.
    """
    cluster = admin.describe_cluster() or {}
    brokers = [int(b["broker_id"]) for b in cluster.get("brokers", [])]
    if not brokers:
        return True
    manager = admin._manager
    wanted = [MetadataRequest.MetadataRequestTopic(name=t) for t in topics]

    async def ask(node_id: int) -> dict[str, Any]:
        request = MetadataRequest(topics=wanted, allow_auto_topic_creation=False)
        response = await manager.send(request, node_id=node_id,
                                      request_timeout_ms=request_timeout_ms)
        out: dict[str, Any] = response.to_dict()
        return out

    for node_id in brokers:
        try:
            metadata = manager.run(ask, node_id)
        except (ke.KafkaError, OSError):
            continue
        if not _led(metadata, topics):
            return False
    return True
