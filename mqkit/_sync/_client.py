# GENERATED from mqkit/aio/_client.py by scripts/unasync.py: do not edit; edit the source.
"""Client: one connection to a broker, the factory of producers and consumers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from .._capabilities import Capabilities, Feature
from .._codecs import RAW, Codec
from .._connect import Resolved, resolve
from .._errors import ConfigurationError, InvalidMessage, MQError
from .._message import Message, ReceiveHook, SendHook, new_message_id
from .._options import ClientOptions
from .._validation import (
    build_message,
    check_bool,
    check_choice,
    check_codec,
    check_int,
    check_name,
    check_seconds,
    check_text,
    check_type,
)
from ..driver import DEAD_LETTER_GROUP, StartPosition, SubscriptionOptions
from ._admin import Admin
from ._connection import Connection
from ._consumer import Consumer
from ._producer import Producer
from ._received import ReceivedMessage
from ._requests import Requester

__all__ = ["DEAD_LETTER_GROUP", "Client", "connect"]

log = logging.getLogger("mqkit")

T = TypeVar("T")


def connect(url: str | None = None, **options: Any) -> Client:
    """A client for ``url`` (else ``$MQKIT_URL``, else ``memory://``).

    Keywords override the URL's query parameters. Raises :class:`ConfigurationError`
    for a bad URL, unknown scheme or unknown option (or value), and
    :class:`ConnectTimeout` (an :class:`Unavailable`) when the broker cannot be reached
    within ``connect_timeout``: an unavailable broker is tried again until then.
    """
    client = Client(resolve(url, options))
    client._connection.ready()
    return client


class Client:
    """A connection to one broker. Use as a context manager, or call ``close``.

    The connection opens on entering the client as a context manager, or on first use
    (the blocking ``connect`` opens it at once). Made by ``connect(url, **options)``, not
    constructed directly.
    """

    def __init__(self, resolved: Resolved) -> None:
        if not isinstance(resolved, Resolved):
            raise ConfigurationError(
                f"Client is not constructed directly (got {type(resolved).__name__}); "
                "use mqkit.connect(url, **options), e.g. mqkit.connect('memory://')")
        self._resolved = resolved
        self.url = resolved.url
        self.options: ClientOptions = resolved.options
        self._connection = Connection(resolved)
        self._internal: dict[str, Producer] = {}
        self._internal_lock = threading.Lock()
        self._dead_letter_ready: set[str] = set()
        self._requester = Requester(self._connection, self.consumer, self._send_internal)
        self.admin = Admin(self._connection)


    def __enter__(self) -> Client:
        self._connection.ready()
        return self

    def __exit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @property
    def capabilities(self) -> Capabilities:
        """What this backend does natively, emulated, or not at all.

        Raises :class:`Closed` after ``close``, and :class:`MQError` before the
        connection opened."""
        return self._connection.capabilities

    def capabilities_for(self, topic: str) -> Capabilities:
        """What this backend does on ``topic``: :attr:`capabilities`, refined where the
        backend's topics differ by name (SQS: a ``*.fifo`` topic on a standard client
        declares ``ordering`` and ``dedup`` native and ``delay`` unsupported).

        The topic need not exist and nothing is sent to the broker. Portable code that
        relies on a feature of one topic asks here rather than :attr:`capabilities`.
        Raises :class:`ConfigurationError` naming ``topic`` for an invalid name,
        :class:`Closed` after ``close``, and :class:`MQError` before the connection
        opened."""
        return self._connection.capabilities_for(check_name("topic", topic))

    def producer(self, topic: str, *, codec: Codec = RAW) -> Producer:
        """A producer for ``topic``; ``codec`` (a :class:`mqkit.Codec`) encodes values
        that are not bytes."""
        self._connection.check_open()
        return self._connection.adopt(Producer(
            self._connection, check_name("topic", topic), check_codec("codec", codec)))

    def consumer(self, topic: str, group: str, *, prefetch: int | None = None,
                 lease: float | None = None, start: StartPosition | None = None,
                 create_group: bool = True, settle_interval: float | None = None,
                 settle_timeout: float | None = None,
                 unavailable_timeout: float | None = None) -> Consumer:
        """A consumer of ``group`` on ``topic``.

        ``prefetch`` bounds unsettled messages; ``lease`` is how long a received
        message stays invisible to other consumers; ``start`` is where the group begins
        if this call creates it. With ``create_group=False`` a missing group raises
        :class:`NotFound`. ``settle_interval``, ``settle_timeout`` and
        ``unavailable_timeout`` override the client's (see :class:`ClientOptions`).
        ``None`` means the client's setting; any other value is checked (``prefetch`` an
        integer of at least 1, ``lease`` positive finite seconds): a wrong one raises
        :class:`ConfigurationError` naming it, zero included.
        """
        self._connection.check_open()
        o = self.options
        opts = SubscriptionOptions(
            prefetch=o.prefetch if prefetch is None else check_int("prefetch", prefetch, 1),
            lease=o.lease if lease is None else check_seconds("lease", lease, positive=True),
            start=o.start if start is None else check_choice(  # type: ignore[arg-type]
                "start", start, ("latest", "earliest")),
            create_group=check_bool("create_group", create_group),
            consumer_name=f"mqkit-{new_message_id()[:12]}",
        )
        timing = ClientOptions(
            settle_interval=o.settle_interval if settle_interval is None else settle_interval,
            settle_timeout=o.settle_timeout if settle_timeout is None else settle_timeout,
            unavailable_timeout=(o.unavailable_timeout if unavailable_timeout is None
                                 else unavailable_timeout))
        return self._connection.adopt(Consumer(
            self._connection, check_name("topic", topic), check_name("group", group), opts,
            timing, dead_letters=self._publish_dead_letters))

    def add_send_hook(self, hook: SendHook) -> None:
        """Call ``hook(operation, topic, messages)`` around every send of this client's
        producers (its dead letters and replies included); what ``mqkit.otel`` uses to
        trace sends and put the trace context in the headers.

        ``operation`` is ``"send"``, ``"send_batch"``, ``"create"`` (``send(wait=False)``
        buffering one message) or ``"flush"`` (buffered messages going out: the list is a
        copy, changes are ignored). The hook runs before the messages are validated and
        may replace entries of the list ``messages`` (e.g. with headers added); it
        returns ``None`` or a callable called once with ``None`` (sent) or the exception
        the send raised. It is plain on both faces and must be quick; an exception it
        raises fails the send. Without hooks a send does one truth test more.
        """
        if not callable(hook):
            raise ConfigurationError(f"hook must be callable, got {type(hook).__name__}")
        self._connection.send_hooks.append(hook)

    def add_receive_hook(self, hook: ReceiveHook) -> None:
        """Call ``hook(topic, group, messages, started_ns)`` after every receive of this
        client's consumers that returned messages (``receive``, iteration and ``run``
        alike); what ``mqkit.otel`` uses for its ``receive`` spans.

        ``messages`` are this face's received messages, to read, not to settle;
        ``started_ns`` is ``time.time_ns()`` when the receive began (the span's start).
        An empty receive calls nothing. The hook is plain on both faces and must be
        quick; an exception it raises is logged and ignored: the messages were
        received, they are the caller's. Without hooks a receive does one truth test
        more.
        """
        if not callable(hook):
            raise ConfigurationError(f"hook must be callable, got {type(hook).__name__}")
        self._connection.receive_hooks.append(hook)

    def request(self, topic: str, body: Any = b"", *, timeout: float = 5.0,
                      headers: Mapping[str, str] | None = None, key: str | None = None,
                      content_type: str | None = None, codec: Codec = RAW,
                      correlation_id: str | None = None) -> ReceivedMessage:
        """Send a request to ``topic`` and wait for its reply.

        The request carries ``reply_to`` (this client's private reply topic) and a
        ``correlation_id``; the reply is the first message there with the same
        correlation id. Raises :class:`Timeout` after ``timeout`` seconds (positive and
        finite: anything else is a :class:`ConfigurationError` before anything is sent).
        """
        check_name("topic", topic)
        timeout = check_seconds("timeout", timeout, positive=True)
        check_codec("codec", codec)
        check_text("correlation_id", correlation_id)  # "" would be replaced silently
        self._connection.ready()
        self.capabilities.require(Feature.REQUEST_REPLY)
        message = build_message(body, codec, headers=headers, key=key,
                                content_type=content_type, correlation_id=correlation_id)
        return self._requester.request(topic, message, timeout)

    def reply(self, request: ReceivedMessage, body: Any = b"", *,
                    headers: Mapping[str, str] | None = None,
                    content_type: str | None = None, codec: Codec = RAW) -> str:
        """Send the reply to ``request`` (to its ``reply_to``, same correlation id)."""
        if not isinstance(request, ReceivedMessage):
            raise ConfigurationError(
                f"request must be a received message, got {type(request).__name__}")
        check_codec("codec", codec)
        if not request.reply_to:
            raise InvalidMessage(f"message {request.id} has no reply_to; it is not a request")
        message = build_message(body, codec, headers=headers, content_type=content_type,
                                correlation_id=request.correlation_id or request.id)
        return self._send_internal(request.reply_to, message)

    def dead_letter_topic(self, topic: str) -> str:
        """The backend's default dead-letter topic for ``topic``."""
        check_name("topic", topic)
        return self._connection.dead_letter_topic(topic)

    def as_(self, kind: type[T]) -> T | None:
        """The native client object of type ``kind`` (escape hatch), or ``None``."""
        check_type("kind", kind)
        return self._connection.as_(kind)

    def close(self) -> None:
        """Close producers (flushing them), consumers and the connection.

        Closing twice is allowed and does nothing.
        """
        if self._connection.state == "closed":
            return
        errors: list[BaseException] = []
        try:
            self._requester.close()
        except MQError as exc:
            errors.append(exc)
        for child in self._connection.children():
            try:
                child.close()
            except MQError as exc:
                errors.append(exc)
        self._connection.close()
        for later in errors[1:]:
            # Only one error can be raised: the others are logged, never dropped unseen.
            log.error("mqkit: closing %s also failed: %s: %s", self.url,
                      type(later).__name__, later)
        if errors:
            raise errors[0]

    def __repr__(self) -> str:
        return f"<Client {self.url} {self._connection.state}>"

    # -- internals: the client's own producers and consumers -------------------------

    def _internal_producer(self, topic: str) -> Producer:
        with self._internal_lock:
            producer = self._internal.get(topic)
        if producer is None:
            fresh = self.producer(topic)
            with self._internal_lock:
                producer = self._internal.setdefault(topic, fresh)
            if producer is not fresh:
                fresh.close()
        return producer

    def _send_internal(self, topic: str, message: Message) -> str:
        return (self._internal_producer(topic)).send(message)

    def _publish_dead_letters(self, topic: str, messages: Sequence[Message]) -> None:
        """Send ``messages`` to dead-letter ``topic`` (created with its group on first
        use); :class:`SendBatchError` names the entries that were not sent."""
        if topic not in self._dead_letter_ready:
            self.admin.create_topic(topic)
            self.admin.create_group(topic, DEAD_LETTER_GROUP, "latest")
            self._dead_letter_ready.add(topic)
        (self._internal_producer(topic))._send_batch(messages, internal=True)

