"""A received message: its data, and the one decision taken on it.

The rule, the same on every backend, is *first decision wins*: the first call of
``ack``, ``nack`` or ``reject`` is recorded; any later one raises
:class:`mqkit.MessageStateError` and changes nothing. Recording does no I/O: the
consumer hands decisions to the broker in batches (see :mod:`mqkit.aio._consumer`);
``wait=True`` returns only once the broker took it. If the broker refuses it, a
:class:`mqkit.SettlementError` names the message (which is undecided again, so the call
may be repeated); the broker will in any case redeliver it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from .._codecs import JSON, RAW, TEXT, Codec, codec_for
from .._errors import InvalidMessage, MessageStateError, MQError
from .._message import Delivery, Message
from .._settlement import ACK, REJECT
from .._validation import check_codec

if TYPE_CHECKING:
    from ._consumer import AsyncConsumer

__all__ = ["AsyncReceivedMessage"]

T = TypeVar("T")


class AsyncReceivedMessage:
    """A message as a consumer received it.

    Exposes the sent fields (``body``, ``key``, ``headers``, ``id``, ``content_type``,
    ``correlation_id``, ``reply_to``) and the receipt fields (``topic``, ``group``,
    ``timestamp``, ``delivery_count`` starting at 1, ``broker_id``).
    """

    __slots__ = ("_consumer", "decision", "delivery", "group")

    def __init__(self, delivery: Delivery, consumer: AsyncConsumer, group: str) -> None:
        self.delivery = delivery
        self._consumer = consumer
        self.group = group
        self.decision: str | None = None

    @property
    def message(self) -> Message:
        """The message as it was sent."""
        return self.delivery.message

    @property
    def body(self) -> bytes:
        return self.delivery.message.body

    @property
    def key(self) -> str | None:
        return self.delivery.message.key

    @property
    def headers(self) -> Mapping[str, str]:
        return self.delivery.message.headers

    @property
    def id(self) -> str | None:
        return self.delivery.message.id

    @property
    def content_type(self) -> str | None:
        return self.delivery.message.content_type

    @property
    def correlation_id(self) -> str | None:
        return self.delivery.message.correlation_id

    @property
    def reply_to(self) -> str | None:
        return self.delivery.message.reply_to

    @property
    def topic(self) -> str:
        return self.delivery.topic

    @property
    def timestamp(self) -> float | None:
        return self.delivery.timestamp

    @property
    def delivery_count(self) -> int:
        return self.delivery.delivery_count

    @property
    def broker_id(self) -> str | None:
        return self.delivery.broker_id

    @overload
    def decode(self) -> Any: ...

    @overload
    def decode(self, codec: Codec[T]) -> T: ...

    def decode(self, codec: Codec[Any] | None = None) -> Any:
        """The body decoded by ``codec``, typed as that codec decodes
        (``msg.decode(mqkit.TEXT)`` is a ``str``); without one, by the codec registered
        for the message's content type (bytes when none or unknown), typed ``Any``.

        A body the codec cannot decode raises :class:`InvalidMessage` naming the
        content type (the codec's own error as ``__cause__``), whatever the codec
        raised; a ``codec`` that is not a :class:`Codec` is a :class:`ConfigurationError`.
        """
        if codec is None:
            codec = codec_for(self.content_type)
        elif codec is not RAW and codec is not TEXT and codec is not JSON:
            check_codec("codec", codec)
        try:
            return codec.decode(self.body)
        except MQError:
            raise
        except Exception as exc:
            raise InvalidMessage(f"a {self.content_type!r} body its codec cannot decode: "
                                 f"{type(exc).__name__}: {exc}") from exc

    async def ack(self, *, wait: bool = False) -> None:
        """Processing succeeded: never deliver this message to this group again.

        Returns at once; with ``wait=True`` once the broker took the decision.
        """
        if wait is False:  # the per-message path: record only
            self._consumer._decide_one(self, ACK, None)
        else:
            await self._consumer.ack([self], wait=wait)

    async def nack(self, delay: float | None = None, *, wait: bool = False) -> None:
        """Processing failed: deliver the message again, after ``delay`` seconds if given."""
        await self._consumer.nack([self], delay=delay, wait=wait)

    async def reject(self, *, wait: bool = False) -> None:
        """Drop the message for good (no redelivery)."""
        if wait is False:  # the per-message path: record only
            self._consumer._decide_one(self, REJECT, None)
        else:
            await self._consumer.reject([self], wait=wait)

    async def extend_lease(self, seconds: float) -> None:
        """Keep this message from other consumers for ``seconds`` more."""
        await self._consumer.extend_lease([self], seconds)

    def _claim(self, decision: str) -> None:
        if self.decision is not None:
            raise MessageStateError(
                f"message {self.id} was already {self.decision}ed; "
                f"cannot {decision} it (first decision wins)")

    def __repr__(self) -> str:
        return (f"<ReceivedMessage id={self.id!r} topic={self.topic!r} group={self.group!r} "
                f"delivery_count={self.delivery_count} bytes={len(self.body)}>")
