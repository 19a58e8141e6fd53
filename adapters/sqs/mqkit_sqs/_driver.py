"""The Driver: one boto3 session and client per mqkit client, capabilities, admin verbs."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
import botocore.config

from mqkit.driver import (
    Capabilities,
    ConfigurationError,
    ConnectParams,
    Driver,
    GroupStats,
    NotFound,
    SubscriptionOptions,
    Support,
    parse_options,
)

from ._admin import Resources
from ._consumer import SqsSubscription
from ._errors import mapped
from ._names import Names
from ._options import SqsOptions
from ._producer import SqsTopic
from ._wire import MAX_SIZE

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

__all__ = ["AwsClients", "SqsDriver", "capabilities_for", "connect", "fifo_capabilities"]

T = TypeVar("T")

# Bytes of the 256 KiB kept for mqkit's own attribute (name, type and a JSON object
# holding a 32-digit id), so that a body of max_message_size with no headers fits.
META_RESERVE = 512
MAX_MESSAGE_SIZE = MAX_SIZE - META_RESERVE
# SQS: DelaySeconds is at most 15 minutes.
MAX_DELAY = 900.0
# SQS and SNS batch calls take at most 10 entries.
MAX_BATCH = 10


@dataclass(frozen=True)
class AwsClients:
    """The native objects behind a client, through ``client.as_(mqkit_sqs.AwsClients)``."""

    session: boto3.session.Session
    sqs: Any
    sns: Any


def capabilities_for(options: SqsOptions, *, custom_endpoint: bool) -> Capabilities:
    """The client's capabilities: those of its standard topics, or of every topic with
    ``fifo=true`` (see :func:`fifo_capabilities`).

    ``dead_letter`` is emulated whatever ``max_receive_count`` says: the dead letter of a
    message that failed its last attempt is the portable layer's copy with the reason
    (``mqkit.aio._consumer``), sent to ``<topic>-dlq`` and then acked. The native
    redrive policy that ``max_receive_count`` adds is a safety net for messages no
    consumer ever settled (crashes), not the dead-letter path: it moves them without a
    reason, and never sees a message the run loop dead-lettered.
    """
    sns = options.mode == "sns"
    persistent = options.persistent if options.persistent is not None else not custom_endpoint
    standard = Capabilities(
        backend="sqs",
        nack=Support.NATIVE,
        nack_delay=Support.NATIVE,
        delay=Support.NATIVE if not sns else Support.EMULATED,
        dead_letter=Support.EMULATED,
        ordering=Support.UNSUPPORTED,
        groups=Support.NATIVE if sns else Support.UNSUPPORTED,
        competing_consumers=Support.NATIVE,
        replay=Support.UNSUPPORTED,
        priority=Support.EMULATED,  # a queue per band per group (_admin, _consumer)
        ttl=Support.EMULATED,  # mqkit-expires, dropped at receive (mqkit._expiry)
        dedup=Support.UNSUPPORTED,
        request_reply=Support.EMULATED,
        lease_extension=Support.NATIVE,
        persistence=Support.NATIVE if persistent else Support.UNSUPPORTED,
        redelivery_on_close=Support.NATIVE,
        admin_stats=Support.NATIVE,
        purge=Support.NATIVE,
        timestamp=Support.NATIVE,
        max_message_size=MAX_MESSAGE_SIZE,
        max_headers=None,  # past 9 attributes, headers ride in the mqkit attribute
        max_batch=MAX_BATCH,
        max_delay=MAX_DELAY,
        delivery="at-least-once",
    )
    return fifo_capabilities(standard) if options.fifo else standard


def fifo_capabilities(standard: Capabilities) -> Capabilities:
    """A FIFO topic's capabilities, from the client's standard ones: the message key is
    the MessageGroupId (``ordering`` native per key), the message id the
    MessageDeduplicationId (``dedup`` native, SQS's 5-minute window), FIFO queues
    take no per-message delay (``delay`` unsupported), and no ``priority``: bands are
    separate queues, and reading a higher band first would break the order of a key
    whose messages carry different priorities. Everything else is unchanged."""
    return dataclasses.replace(standard, ordering=Support.NATIVE, dedup=Support.NATIVE,
                               delay=Support.UNSUPPORTED, priority=Support.UNSUPPORTED)


def endpoint_of(params: ConnectParams, options: SqsOptions) -> str | None:
    """The endpoint override from the URL's host, or ``None`` for AWS's own."""
    url = params.url
    if not url.hosts:
        return None
    if len(url.hosts) > 1:
        raise ConfigurationError("sqs: give one endpoint host, not several")
    host, port = url.hosts[0]
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if options.tls else "http"
    return f"{scheme}://{shown}" + (f":{port}" if port else "") + (
        "/" + url.path if url.path else "")


def connect(params: ConnectParams) -> SqsDriver:
    options = parse_options(SqsOptions, params.options)
    if params.url.scheme == "sns+sqs" and options.mode != "sns":
        raise ConfigurationError("sqs: sns+sqs:// means mode=sns; use sqs:// "
                                 "with mode=queue for queue-only mode")
    driver = SqsDriver(params, options)
    secret = params.url.password.reveal() if params.url.password is not None else ""
    with mapped("connect", secrets=(secret,)):
        driver.probe()
    return driver


class SqsDriver(Driver):
    """One boto3 session with one SQS and one SNS client, shared by everything."""

    def __init__(self, params: ConnectParams, options: SqsOptions) -> None:
        self._params = params
        self._options = options
        endpoint = endpoint_of(params, options)
        self.capabilities = capabilities_for(options, custom_endpoint=endpoint is not None)
        self._fifo_capabilities = fifo_capabilities(self.capabilities)
        url = params.url
        secret = url.password.reveal() if url.password is not None else None
        if (url.username is None) != (secret is None):
            raise ConfigurationError(
                "sqs: give both access key id and secret (user:password@) or neither")
        with mapped("session"):
            self._session = boto3.session.Session(
                aws_access_key_id=url.username, aws_secret_access_key=secret,
                aws_session_token=(options.session_token.reveal()
                                   if options.session_token else None),
                region_name=options.region, profile_name=options.profile)
        region = self._session.region_name
        if not region:
            raise ConfigurationError(
                "sqs: no AWS region: give ?region=... or configure one for boto3")
        config = botocore.config.Config(
            connect_timeout=params.connect_timeout,
            # A long poll holds the read for wait_time seconds; the service answers
            # within a few seconds after that.
            read_timeout=options.wait_time + max(10.0, params.connect_timeout),
            # No retries in the driver: the portable layer retries (and counts requests).
            retries={"total_max_attempts": 1, "mode": "standard"},
            max_pool_connections=options.max_connections,
            user_agent_extra="mqkit")
        verify: bool | str = options.ca_file or options.verify
        with mapped("client"):
            self._sqs: SQSClient = self._session.client(
                "sqs", endpoint_url=endpoint, config=config, verify=verify)
            self._sns: SNSClient | None = self._session.client(
                "sns", endpoint_url=endpoint, config=config, verify=verify) \
                if options.mode == "sns" else None
        self._sts: Any = None
        self._sts_lock = threading.Lock()
        self._endpoint, self._config, self._verify = endpoint, config, verify
        self._res = Resources(self._sqs, self._sns, self._sts_client, options, region,
                              custom_endpoint=endpoint is not None)
        self._names: Names = self._res.names

    def _sts_client(self) -> Any:
        with self._sts_lock:
            if self._sts is None:
                self._sts = self._session.client(
                    "sts", endpoint_url=self._endpoint, config=self._config,
                    verify=self._verify)
            return self._sts

    def probe(self) -> None:
        """One cheap call, so that a wrong endpoint or key fails at connect."""
        self._sqs.list_queues(MaxResults=1, QueueNamePrefix="mqkit-probe")
        if self._sns is not None and self._options.account_id is None:
            self._res.account()

    # -- topics and subscriptions ----------------------------------------------------

    def open_topic(self, topic: str) -> SqsTopic:
        self._names.check_topic(topic)
        if not self._res.topic_exists(topic) and not self._res.recover(topic):
            raise NotFound(f"sqs: topic {topic!r} ({self._native(topic)}) "
                           "does not exist")
        self._res.remember(topic)
        return SqsTopic(self._res, topic, self.capabilities.max_message_size + META_RESERVE)

    def _native(self, topic: str) -> str:
        if self._res.sns_mode:
            return f"SNS topic {self._names.topic(topic)!r}"
        return f"SQS queue {self._names.topic_queue(topic)!r}"

    def open_subscription(self, topic: str, group: str,
                          options: SubscriptionOptions) -> SqsSubscription:
        self._names.check_topic(topic)
        if not self._res.topic_exists(topic) and not self._res.recover(topic):
            raise NotFound(f"sqs: topic {topic!r} ({self._native(topic)}) "
                           "does not exist")
        if not self._res.group_exists(topic, group):
            if not options.create_group:
                raise NotFound(
                    f"sqs: group {group!r} (SQS queue "
                    f"{self._res.group_queue(topic, group)!r}) of {topic!r} does not exist")
            self._res.create_group(topic, group)
        self._res.remember(topic, group)
        return SqsSubscription(self._res, topic, group, options,
                               recreate_group=options.create_group)

    # -- admin -----------------------------------------------------------------------

    def create_topic(self, topic: str, options: Mapping[str, object]) -> None:
        if options:
            raise ConfigurationError(
                f"sqs: unknown topic option(s) {', '.join(map(repr, options))}")
        self._names.check_topic(topic)
        self._res.create_topic(topic)

    def delete_topic(self, topic: str) -> None:
        self._res.delete_topic(topic)

    def list_topics(self) -> list[str]:
        return self._res.list_topics()

    def topic_exists(self, topic: str) -> bool:
        return self._res.topic_exists(topic)

    def create_group(self, topic: str, group: str, start: str) -> None:
        self._res.create_group(topic, group)

    def delete_group(self, topic: str, group: str) -> None:
        self._res.delete_group(topic, group)

    def list_groups(self, topic: str) -> list[str]:
        return self._res.list_groups(topic)

    def group_stats(self, topic: str, group: str) -> GroupStats:
        """SQS's approximate counts of the group's queue and band queues: visible + in
        flight + delayed (depth) and in flight. In queue mode, the topic's queues."""
        if not self._res.group_exists(topic, group):
            raise NotFound(f"sqs: group {group!r} of {topic!r} does not exist")
        depth, hidden = self._res.queue_counts(self._res.group_queue(topic, group))
        for _, queue in self._res.band_queues(topic, group):
            try:
                more, held = self._res.queue_counts(queue)
            except NotFound:
                continue  # the band went away meanwhile
            depth, hidden = depth + more, hidden + held
        return GroupStats(topic=topic, group=group, depth=depth, in_flight=hidden)

    def purge(self, topic: str, group: str) -> None:
        self._res.purge(self._res.group_queue(topic, group))
        for _, queue in self._res.band_queues(topic, group):
            try:
                self._res.purge(queue)
            except NotFound:
                continue

    def dead_letter_topic(self, topic: str) -> str:
        return self._names.dead_letter(topic)

    def topic_capabilities(self, topic: str) -> Capabilities:
        """A FIFO topic (a ``*.fifo`` name, or any with ``fifo=true``) orders per key and
        deduplicates, and takes no delay: :func:`fifo_capabilities`; any other topic has
        the client's capabilities."""
        return self._fifo_capabilities if self._names.is_fifo(topic) else self.capabilities

    def close(self) -> None:
        for client in (self._sqs, self._sns, self._sts):
            if client is not None:
                client.close()

    def as_(self, kind: type[T]) -> T | None:
        if kind is AwsClients:
            return AwsClients(self._session, self._sqs, self._sns)  # type: ignore[return-value]
        for obj in (self._session, self._sqs):
            if isinstance(obj, kind):
                return obj
        return None

