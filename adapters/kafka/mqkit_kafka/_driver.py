"""The Driver: client settings, capabilities, topics, subscriptions, admin verbs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, TypeVar

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from mqkit.driver import (
    Capabilities,
    ConnectParams,
    Driver,
    GroupStats,
    MQError,
    NotFound,
    SubscriptionOptions,
    Support,
    parse_options,
    ssl_context,
)

from ._admin import Admin
from ._consumer import KafkaSubscription
from ._errors import mapped
from ._names import Names
from ._net import close_quietly, has_fatal_error, net_client
from ._options import KafkaOptions
from ._producer import KafkaTopic

__all__ = ["KafkaDriver", "capabilities_for", "client_config", "connect"]

log = logging.getLogger("mqkit")

T = TypeVar("T")
# Messages per driver send: a 1000-record batch is a few produce requests at the
# default batch_size, and one flush waits for all of them.
MAX_BATCH = 1000
_PRODUCE_REQUEST_TIMEOUT_MS = 10_000
# How long opening a subscription waits for its topics' partitions to have leaders
# (Admin.await_leaders) before the consumer joins its group.
_LEADER_WAIT = 5.0


def capabilities_for(options: KafkaOptions) -> Capabilities:
    return Capabilities(
        backend="kafka",
        nack=Support.EMULATED,
        nack_delay=Support.EMULATED,
        delay=Support.EMULATED,
        dead_letter=Support.EMULATED,
        ordering=Support.NATIVE,
        groups=Support.NATIVE,
        competing_consumers=Support.NATIVE,
        replay=Support.NATIVE,
        priority=Support.UNSUPPORTED,
        ttl=Support.EMULATED,  # mqkit-expires, dropped at receive (mqkit._expiry)
        dedup=Support.UNSUPPORTED,
        request_reply=Support.EMULATED,
        lease_extension=Support.UNSUPPORTED,
        persistence=Support.NATIVE if options.acks == "all" else Support.UNSUPPORTED,
        redelivery_on_close=Support.NATIVE,
        admin_stats=Support.NATIVE,
        purge=Support.NATIVE,
        timestamp=Support.NATIVE,
        max_message_size=options.max_message_size,
        max_headers=None,
        max_batch=MAX_BATCH,
        max_delay=None,
        delivery="at-least-once",
    )


def client_config(params: ConnectParams, options: KafkaOptions) -> dict[str, Any]:
    """Settings every kafka-python client of this driver shares (servers, TLS, SASL)."""
    url = params.url
    servers = [f"{host}:{port or 9092}" for host, port in (url.hosts or (("localhost", None),))]
    use_tls = bool(options.tls)
    mechanism = options.sasl_mechanism
    if mechanism is None and url.username:
        mechanism = "PLAIN"
    config: dict[str, Any] = {
        "bootstrap_servers": servers,
        "client_id": options.client_id,
        "request_timeout_ms": 30_000,
        "bootstrap_timeout_ms": int(params.connect_timeout * 1000),
        "reconnect_backoff_max_ms": 1_000,
        # A refused SASL login is raised at once, not retried until bootstrap_timeout_ms.
        "kafka_client": net_client,
    }
    if use_tls:
        config["ssl_context"] = ssl_context(options)
        config["ssl_check_hostname"] = options.verify
    if mechanism:
        config["sasl_mechanism"] = mechanism.upper()
        config["sasl_plain_username"] = url.username or ""
        config["sasl_plain_password"] = url.password.reveal() if url.password else ""
    protocol = {(False, False): "PLAINTEXT", (True, False): "SSL",
                (False, True): "SASL_PLAINTEXT", (True, True): "SASL_SSL"}
    config["security_protocol"] = protocol[(bool(use_tls), bool(mechanism))]
    return config


def connect(params: ConnectParams) -> KafkaDriver:
    options = parse_options(KafkaOptions, params.options)
    return KafkaDriver(params, options)


class KafkaDriver(Driver):
    """An admin client, one shared producer, and one consumer per subscription."""

    def __init__(self, params: ConnectParams, options: KafkaOptions) -> None:
        self.capabilities = capabilities_for(options)
        self._params = params
        self._options = options
        self._names = Names(options.group_format, options.retry_prefix)
        self._config = client_config(params, options)
        self._producer: KafkaProducer | None = None
        self._producer_lock = threading.Lock()
        self._send_timeout = options.delivery_timeout_ms / 1000 + 5
        made: list[Any] = []

        def recording(**configs: Any) -> Any:
            client = net_client(**configs)
            made.append(client)
            return client

        secret = params.url.password.reveal() if params.url.password else ""
        try:
            with mapped(f"connect to {params.url}", secrets=(secret,)):
                native = KafkaAdminClient(**{**self._config, "kafka_client": recording})
        except MQError:
            for client in made:  # the constructor left its network thread running
                close_quietly(client)
            raise
        self._admin = Admin(native, self._names, options, params.connect_timeout)

    def __repr__(self) -> str:
        return f"<KafkaDriver {self._params.url}>"

    def producer(self) -> KafkaProducer:
        """The driver's producer, made on first use (thread-safe, shared), and made
        again once kafka-python has put it in its fatal state: its idempotent producer
        turns any non-retriable batch error (a record the topic refuses as too large)
        into a fatal error that fails every later send, which would make one oversize
        message break the driver for good."""
        with self._producer_lock:
            if self._producer is not None and has_fatal_error(self._producer):
                stale, self._producer = self._producer, None
                log.warning("mqkit: kafka producer entered kafka-python's fatal state after "
                            "a refused batch; replacing it")
                try:
                    stale.close(timeout=0)
                except Exception:  # a broken producer: a new one follows
                    pass
            if self._producer is None:
                o = self._options
                with mapped("create producer"):
                    config = dict(self._config)
                    # 10 s per produce request, so that a request lost to a restart is
                    # retried inside delivery_timeout_ms (kafka-python needs it longer
                    # than linger_ms + request_timeout_ms).
                    config["request_timeout_ms"] = _PRODUCE_REQUEST_TIMEOUT_MS
                    self._producer = KafkaProducer(
                        **config,
                        acks={"all": "all", "1": 1, "0": 0}[o.acks],
                        enable_idempotence=o.idempotence,
                        linger_ms=o.linger_ms,
                        batch_size=o.batch_size,
                        compression_type=None if o.compression == "none" else o.compression,
                        max_request_size=o.max_request_size,
                        delivery_timeout_ms=o.delivery_timeout_ms,
                        max_block_ms=int(self._params.connect_timeout * 1000))
            return self._producer

    # -- topics and subscriptions ----------------------------------------------------

    def open_topic(self, topic: str) -> KafkaTopic:
        if not self._admin.topic_exists(topic):
            raise NotFound(f"kafka: topic {topic!r} does not exist")
        self.producer()  # made now, so that its errors surface when the topic opens
        return KafkaTopic(self.producer, topic, self._options.max_request_size,
                          self._send_timeout)

    def open_subscription(self, topic: str, group: str,
                          options: SubscriptionOptions) -> KafkaSubscription:
        if not self._admin.topic_exists(topic):
            raise NotFound(f"kafka: topic {topic!r} does not exist")
        if not self._admin.group_exists(topic, group):
            if not options.create_group:
                raise NotFound(
                    f"kafka: group {group!r} (consumer group "
                    f"{self._names.group_id(topic, group)!r}) of topic {topic!r} "
                    "does not exist")
            self._admin.create_group(topic, group, options.start)
        retry_topic = self._names.retry_topic(topic, group)
        if not self._admin.await_leaders([topic, retry_topic], _LEADER_WAIT):
            log.info("kafka: partitions of %s have no leader after %.0f s; subscribing "
                     "anyway", topic, _LEADER_WAIT)
        o = self._options
        config = dict(self._config)
        group_id = self._names.group_id(topic, group)

        def make_consumer() -> KafkaConsumer:
            return KafkaConsumer(
                **config,
                group_id=group_id,
                enable_auto_commit=False,
                # Partitions with no commit (added after the group was created, or the
                # retry topic) start at their beginning: nothing is skipped.
                auto_offset_reset="earliest",
                session_timeout_ms=o.session_timeout_ms,
                heartbeat_interval_ms=o.heartbeat_interval_ms,
                max_poll_interval_ms=o.max_poll_interval_ms,
                # A receive's records come from one fetch; prefetch caps what mqkit
                # hands out, the rest waits in kafka-python's buffer, uncommitted.
                max_poll_records=max(1, options.prefetch))

        return KafkaSubscription(make_consumer, self.producer, topic, retry_topic,
                                 max_request_size=o.max_request_size,
                                 send_timeout=self._send_timeout,
                                 # A join or a fetch takes well under a session;
                                 # a session plus 5 s without either is stuck.
                                 stuck_after=o.session_timeout_ms / 1000 + 5,
                                 end_offsets=self._admin.end_offsets,
                                 unowned=lambda: self._admin.unowned(group_id, topic))

    # -- admin -----------------------------------------------------------------------

    def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        self._admin.create_topic(topic, options)

    def delete_topic(self, topic: str) -> None:
        self._admin.delete_topic(topic)

    def list_topics(self) -> list[str]:
        return self._admin.list_topics()

    def topic_exists(self, topic: str) -> bool:
        return self._admin.topic_exists(topic)

    def create_group(self, topic: str, group: str, start: str) -> None:
        self._admin.create_group(topic, group, start)

    def delete_group(self, topic: str, group: str) -> None:
        self._admin.delete_group(topic, group)

    def list_groups(self, topic: str) -> list[str]:
        return self._admin.list_groups(topic)

    def group_stats(self, topic: str, group: str) -> GroupStats:
        return self._admin.group_stats(topic, group)

    def purge(self, topic: str, group: str) -> None:
        self._admin.purge(topic, group)

    def dead_letter_topic(self, topic: str) -> str:
        return self._options.dead_letter_format.format(topic=topic)

    def close(self) -> None:
        try:
            with self._producer_lock:
                producer, self._producer = self._producer, None
            if producer is not None:
                with mapped("close producer"):
                    producer.close(timeout=self._send_timeout)
        finally:
            self._admin.close()

    def as_(self, kind: type[T]) -> T | None:
        native = self._admin.native
        if isinstance(native, kind):
            return native
        producer = self._producer
        return producer if isinstance(producer, kind) else None
