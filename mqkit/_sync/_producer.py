# GENERATED from mqkit/aio/_producer.py by scripts/unasync.py: do not edit; edit the source.
"""Producer: sends to one topic.

A ``send`` or ``send_batch`` that returned has been accepted by the broker (confirmed,
acknowledged, stored — whatever the backend's strongest per-send guarantee is). Sends
with ``wait=False`` are buffered and sent in batches; ``flush`` and ``close`` return only
once every buffered message is on the broker, and raise if any was not.

Nothing buffered is dropped unreported: a flush hands every buffered message to the
broker once and empties the buffer; the ones the broker did not take are returned in
the :class:`SendBatchError` it raises (``exc.messages``, with ``exc.failures`` the error
of each), for the caller to send again or give up on. They are not kept for a later
flush: a message the broker refuses for good would otherwise fail every flush after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from .._capabilities import Capabilities
from .._codecs import RAW, Codec
from .._errors import Closed, ConfigurationError, MQError, SendBatchError, Unavailable
from .._message import Message
from .._validation import (
    build_message,
    check_bool,
    check_codec,
    check_type,
    chunks,
    prepare,
)
from ._runtime import Lock, monotonic, sleep

if TYPE_CHECKING:
    from ._connection import Connection, MappedTopic

__all__ = ["Producer"]

T = TypeVar("T")

# Backoff between send attempts while the broker is unavailable: starts short so a blip
# costs little, capped so a restart is noticed within ~2 s of the broker coming back.
_RETRY_FIRST = 0.05
_RETRY_CAP = 2.0


class Producer:
    """Sends messages to one topic. Create with ``client.producer(topic)``."""

    def __init__(self, connection: Connection, topic: str, codec: Codec = RAW) -> None:
        self._connection = connection
        self.topic = topic
        self.codec = check_codec("codec", codec)
        self._driver: MappedTopic | None = None
        # What the backend does on this topic (client.capabilities_for: SQS's *.fifo
        # topics take no priority or delay): messages are checked against it. Once open.
        self._caps: Capabilities | None = None
        self._lock = Lock()
        self._buffer: list[Message] = []
        self._closed = False

    def __enter__(self) -> Producer:
        self._open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def send(self, body: Any = b"", *, key: str | None = None,
                   headers: Mapping[str, str] | None = None, id: str | None = None,
                   content_type: str | None = None, correlation_id: str | None = None,
                   reply_to: str | None = None, priority: int | None = None,
                   ttl: float | None = None, delay: float | None = None,
                   wait: bool = True) -> str:
        """Send one message and return its id.

        ``body`` is bytes (or a value the producer's codec encodes, or a
        :class:`Message`, whose fields the keywords override). ``headers`` is copied:
        later changes to the caller's mapping do not reach the message. A wrong type or
        value of any argument raises :class:`InvalidMessage` (or
        :class:`ConfigurationError`) naming it, before anything is sent.

        With ``wait=False`` the message is buffered and sent with others; errors then
        surface on ``flush`` (see the module docstring). A send with ``wait=True`` first
        flushes the buffer: if that raises, this message was not sent either.
        """
        check_bool("wait", wait)
        self._open()
        msg = build_message(
            body, self.codec, key=key, headers=headers, id=id, content_type=content_type,
            correlation_id=correlation_id, reply_to=reply_to, priority=priority, ttl=ttl,
            delay=delay)
        if self._connection.send_hooks:
            return self._send_hooked(msg, wait)
        return self._send_one(prepare(msg, self._topic_caps()), wait)

    def _send_one(self, msg: Message, wait: bool) -> str:
        if not wait:
            self._buffer.append(msg)
            if len(self._buffer) >= self._connection.capabilities.max_batch:
                self.flush()
            return msg.id or ""
        if self._buffer:
            self.flush()
        self._send_chunk([msg])
        return msg.id or ""

    def send_batch(self, messages: Iterable[Any]) -> list[str]:
        """Send many messages (``Message``, bytes, or values for the codec); return ids.

        Every message is validated before any is sent (an invalid one raises naming its
        index, and nothing is sent). The batch is split to the backend's batch limit;
        when some entries fail, :class:`SendBatchError` carries them (``messages``) and
        their errors (``failures``) by their index in ``messages``, and all the others
        were accepted. Buffered messages are flushed first: if that raises, none of
        ``messages`` was sent.
        """
        return self._send_batch(messages, internal=False)

    def _send_batch(self, messages: Iterable[Any], *, internal: bool) -> list[str]:
        """``send_batch``; ``internal``: mqkit's own (dead letters), which may carry
        ``mqkit-*`` headers."""
        if isinstance(messages, (str, bytes, bytearray, memoryview, Message)) or not hasattr(
                messages, "__iter__"):
            raise ConfigurationError(
                "send_batch takes an iterable of messages (Message, bytes or values for "
                f"the codec), got {type(messages).__name__}")
        self._open()
        caps = self._topic_caps()
        built = []
        for index, m in enumerate(messages):
            try:
                built.append(build_message(m, self.codec))
            except MQError as exc:
                exc.args = (f"messages[{index}]: {exc} (nothing was sent)",)
                raise
        finish = self._run_hooks("send_batch", built) if self._connection.send_hooks else None
        prepared = []
        try:
            for index, m in enumerate(built):
                try:
                    prepared.append(prepare(m, caps, internal=internal))
                except MQError as exc:
                    exc.args = (f"messages[{index}]: {exc} (nothing was sent)",)
                    raise
            if self._buffer:
                self.flush()
            self._send_all(prepared)
        except BaseException as exc:
            if finish is not None:
                finish(exc)
            raise
        if finish is not None:
            finish(None)
        return [m.id or "" for m in prepared]

    def _send_hooked(self, msg: Message, wait: bool) -> str:
        """``send`` with the client's send hooks around it (see ``add_send_hook``)."""
        batch = [msg]
        finish = self._run_hooks("send" if wait else "create", batch)
        try:
            ident = self._send_one(prepare(batch[0], self._topic_caps()), wait)
        except BaseException as exc:
            if finish is not None:
                finish(exc)
            raise
        if finish is not None:
            finish(None)
        return ident

    def _run_hooks(self, operation: str,
                   messages: list[Message]) -> Callable[[BaseException | None], None] | None:
        """Call each send hook (``operation``, topic, ``messages``: a list the hook may
        update in place); one callable that tells them how the send ended, or ``None``."""
        finishers = [f for f in (hook(operation, self.topic, messages)
                                 for hook in self._connection.send_hooks) if f is not None]
        if not finishers:
            return None

        def finish(error: BaseException | None) -> None:
            for finisher in reversed(finishers):
                finisher(error)
        return finish

    def flush(self) -> None:
        """Send everything buffered by ``send(wait=False)``; raise if any was not sent.

        The buffer is empty afterwards either way: the messages that were not sent are
        in the :class:`SendBatchError` (``exc.messages``, indexed in buffering order),
        not kept for another flush.
        """
        if not self._buffer:
            return
        pending, self._buffer = self._buffer, []
        finish = (self._run_hooks("flush", list(pending))
                  if self._connection.send_hooks else None)
        try:
            self._send_all(pending)
        except MQError as exc:
            if finish is not None:
                finish(exc)
            raise
        except BaseException as exc:
            if finish is not None:
                finish(exc)
            # Cancelled (or interrupted) mid-flush: which entries reached the broker is
            # unknown, so all stay buffered (a duplicate rather than a loss).
            self._buffer[:0] = pending
            raise
        if finish is not None:
            finish(None)

    def close(self) -> None:
        """Flush, then release the topic. Closing twice is allowed and does nothing.

        When the flush raises :class:`SendBatchError`, the producer is closed all the
        same and the error carries the messages that were not sent.
        """
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            self._connection.forget(self)
            driver, self._driver = self._driver, None
            if driver is not None:
                driver.close()

    def _open(self) -> MappedTopic:
        self._check_open()
        if self._driver is None:
            with self._lock:
                if self._driver is None:
                    self._driver = self._connection.open_topic(self.topic)
        return self._driver

    def _topic_caps(self) -> Capabilities:
        """The topic's capabilities (after :meth:`_open`)."""
        caps = self._caps
        if caps is None:
            caps = self._caps = self._connection.capabilities_for(self.topic)
        return caps

    def _check_open(self) -> None:
        if self._closed:
            raise Closed(f"producer for topic {self.topic!r} is closed")

    def _send_all(self, prepared: Sequence[Message]) -> None:
        failures: dict[int, MQError] = {}
        fatal: MQError | None = None
        for offset, chunk in chunks(prepared, self._connection.capabilities.max_batch):
            if fatal is not None:
                failures.update({offset + i: fatal for i in range(len(chunk))})
                continue
            try:
                self._send_chunk(chunk)
            except SendBatchError as exc:
                failures.update({offset + i: e for i, e in exc.failures.items()})
            except MQError as exc:
                fatal = exc
                failures.update({offset + i: exc for i in range(len(chunk))})
        if failures:
            raise SendBatchError(failures, len(prepared),
                                 {i: prepared[i] for i in failures if 0 <= i < len(prepared)})

    def _send_chunk(self, chunk: Sequence[Message]) -> None:
        """Send one driver batch, retrying while the broker is unavailable."""
        driver = self._open()
        deadline = monotonic() + self._connection.options.send_timeout
        wait = _RETRY_FIRST
        while True:
            try:
                with self._lock:
                    driver.send_batch(chunk)
                return
            except Unavailable:
                if self._closed or monotonic() + wait > deadline:
                    raise
                sleep(wait)
                wait = min(_RETRY_CAP, wait * 2)

    def as_(self, kind: type[T]) -> T | None:
        """The native object of type ``kind`` behind this producer (escape hatch), or ``None``
        (before its first send opens the topic, after close,
        or when the backend has none of that type)."""
        check_type("kind", kind)
        return None if self._driver is None else self._driver.as_(kind)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Producer topic={self.topic!r} {state}>"
