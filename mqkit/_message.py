"""The message a producer sends, and what a driver hands back on receipt.

A :class:`Message` is plain data: the body goes on the wire as the caller's bytes, with no
mqkit envelope, and the other fields map to each broker's native properties or headers
(see each adapter's module docstring for the mapping).

A message is immutable, headers included: :class:`Headers` is a read-only ``dict``, a copy
taken when the message is built. Nothing the caller does to its own dict after building
(or sending) a message reaches the message, and nothing a receiver could do reaches the
sender, another group, or a redelivery.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ._errors import InvalidMessage

__all__ = ["EMPTY_HEADERS", "Delivery", "Headers", "Message", "ReceiveHook", "SendHook",
           "freeze_headers", "new_message_id", "received"]


class Headers(dict[str, str]):
    """A message's headers: a ``dict`` that refuses every change.

    Reads are a plain dict's (``h["name"]``, ``h.get``, iteration, ``json.dumps(h)``,
    ``dict(h)``); every mutator raises :class:`TypeError`. To change headers, build a new
    mapping (``{**msg.headers, "name": "value"}``) and send that: it is copied again.
    Equal to any mapping with the same items, and hashable (so a :class:`Message` is).
    """

    __slots__ = ()

    def _read_only(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("message headers are read-only; build a new mapping instead, e.g. "
                        "{**msg.headers, 'name': 'value'}")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _read_only
    __ior__ = _read_only

    def __hash__(self) -> int:  # type: ignore[override]  # immutable, so hashable
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[type[Headers], tuple[dict[str, str]]]:
        # copy and pickle would otherwise rebuild it item by item through __setitem__.
        return Headers, (dict(self),)

    def __copy__(self) -> Headers:
        return self

    def __deepcopy__(self, memo: object) -> Headers:
        return self


EMPTY_HEADERS = Headers()
_EMPTY: Mapping[str, str] = EMPTY_HEADERS


def freeze_headers(headers: object) -> Headers:
    """``headers`` as :class:`Headers`: itself when it already is one (immutable, so
    shared safely), else a read-only copy; ``None`` or empty gives the shared empty one.

    Raises :class:`InvalidMessage` for anything but a mapping. Key and value types are
    checked when the message is sent (:func:`mqkit._validation.prepare`).
    """
    if type(headers) is Headers:
        return headers
    if type(headers) is dict:  # the common case, without the Mapping ABC check
        return Headers(headers) if headers else EMPTY_HEADERS
    if not headers:
        if headers is None or isinstance(headers, Mapping):
            return EMPTY_HEADERS
    elif isinstance(headers, Mapping):
        return Headers(headers)
    raise InvalidMessage(
        f"headers must be a mapping of str to str, got {type(headers).__name__}")


def new_message_id() -> str:
    """A fresh, globally unique message id (32 lowercase hex digits, 128 random bits).

    Drawn from :mod:`random`, which CPython reseeds from the OS in every forked child;
    five times cheaper than ``uuid4`` (no system call per id), which matters at 100k
    messages per second. Ids need uniqueness, not unpredictability.
    """
    return f"{random.getrandbits(128):032x}"


@dataclass(frozen=True, slots=True)
class Message:
    """One message to send (immutable).

    ``body`` is bytes and is never changed by mqkit. ``headers`` maps str to str: any
    mapping given is copied into a read-only :class:`Headers` (mutating it raises
    :class:`TypeError`), so later changes to the caller's dict never reach the message;
    names starting with ``mqkit-`` are reserved for mqkit and refused on send. The
    standard properties (``id``, ``content_type``, ``correlation_id``, ``reply_to``) are
    separate fields and are carried in each broker's native slots. ``id`` is assigned by
    the producer when left ``None``.

    ``priority`` (0-9, higher first), ``ttl`` (seconds until the message expires unread)
    and ``delay`` (seconds before it may be delivered) are honoured where the backend's
    capabilities allow, and raise :class:`mqkit.Unsupported` elsewhere.
    """

    body: bytes = b""
    key: str | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    id: str | None = None
    content_type: str | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    priority: int | None = None
    ttl: float | None = None
    delay: float | None = None

    # Written by hand, same signature and effect as the generated one: the generated
    # __init__ of a frozen dataclass pays ``object.__setattr__`` per field (1.5 us per
    # message), the slot descriptors' own setters half that.
    def __init__(self, body: bytes = b"", key: str | None = None,  # noqa: PLR0917 - as generated
                 headers: Mapping[str, str] = _EMPTY, id: str | None = None,
                 content_type: str | None = None, correlation_id: str | None = None,
                 reply_to: str | None = None, priority: int | None = None,
                 ttl: float | None = None, delay: float | None = None) -> None:
        _m_body(self, body)
        _m_key(self, key)
        _m_headers(self, headers if type(headers) is Headers else freeze_headers(headers))
        _m_id(self, id)
        _m_content_type(self, content_type)
        _m_correlation_id(self, correlation_id)
        _m_reply_to(self, reply_to)
        _m_priority(self, priority)
        _m_ttl(self, ttl)
        _m_delay(self, delay)

    def with_id(self) -> Message:
        """This message, with a fresh id if it had none."""
        if self.id is not None:
            return self
        return self._rebuilt(self.body, new_message_id())

    def _rebuilt(self, body: bytes, id: str) -> Message:
        """This message with ``body`` and ``id``, every other field kept (the producer's
        path, so private). Built field by field: ``dataclasses.replace`` costs three
        times as much, and a producer calls this once per message it gives an id."""
        return Message(body, self.key, self.headers, id, self.content_type,
                       self.correlation_id, self.reply_to, self.priority, self.ttl, self.delay)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message as a driver received it (SPI type; users see ``ReceivedMessage``).

    ``handle`` is the driver's own token for acking this delivery (a delivery tag, a
    receipt handle, a stream entry id...); the portable layer passes it back untouched.
    ``delivery_count`` starts at 1 on the first delivery. ``timestamp`` is the broker's
    time of acceptance in seconds since the epoch, when the broker records one.
    ``broker_id`` is the broker-assigned id (offset, entry id, SQS MessageId), if any.
    """

    message: Message
    topic: str
    handle: object
    delivery_count: int = 1
    timestamp: float | None = None
    broker_id: str | None = None

    def __init__(self, message: Message, topic: str, handle: object,  # noqa: PLR0917 - as generated
                 delivery_count: int = 1, timestamp: float | None = None,
                 broker_id: str | None = None) -> None:
        _d_message(self, message)
        _d_topic(self, topic)
        _d_handle(self, handle)
        _d_delivery_count(self, delivery_count)
        _d_timestamp(self, timestamp)
        _d_broker_id(self, broker_id)


_Setter = Callable[[Any, Any], None]


def _setters(cls: type, names: tuple[str, ...]) -> tuple[_Setter, ...]:
    """The ``__set__`` of each slot: writes the slot, bypassing the frozen __setattr__."""
    return tuple(cls.__dict__[name].__set__ for name in names)


(_m_body, _m_key, _m_headers, _m_id, _m_content_type, _m_correlation_id, _m_reply_to,
 _m_priority, _m_ttl, _m_delay) = _setters(Message, Message.__slots__)
(_d_message, _d_topic, _d_handle, _d_delivery_count, _d_timestamp,
 _d_broker_id) = _setters(Delivery, Delivery.__slots__)


# Plain slot objects laid out like Message and Delivery. A received message is built
# as one of these (plain attribute stores) and then given its real class: what
# ``received`` returns is an ordinary frozen Message in an ordinary frozen Delivery,
# built in a fifth of the time of Delivery(Message(...)). The class assignment is
# allowed because the layouts are identical (same slots, no __dict__ or __weakref__).
class _MessageSlots:
    __slots__ = Message.__slots__


class _DeliverySlots:
    __slots__ = Delivery.__slots__


_set_class = object.__setattr__


def received(  # noqa: PLR0917 - the fields in order
        body: bytes, key: str | None, headers: Mapping[str, str], id: str | None,
             content_type: str | None, correlation_id: str | None, reply_to: str | None,
             topic: str, handle: object, delivery_count: int, timestamp: float | None,
             broker_id: str | None, *, priority: int | None = None) -> Delivery:
    """``Delivery(Message(body, key, headers, id, content_type, correlation_id,
    reply_to, priority), topic, handle, delivery_count, timestamp, broker_id)``, built
    faster: for drivers that build thousands of deliveries per batch."""
    m: Any = _MessageSlots()
    m.body = body
    m.key = key
    m.headers = headers if type(headers) is Headers else freeze_headers(headers)
    m.id = id
    m.content_type = content_type
    m.correlation_id = correlation_id
    m.reply_to = reply_to
    m.priority = priority
    m.ttl = m.delay = None
    _set_class(m, "__class__", Message)
    d: Any = _DeliverySlots()
    d.message = m
    d.topic = topic
    d.handle = handle
    d.delivery_count = delivery_count
    d.timestamp = timestamp
    d.broker_id = broker_id
    _set_class(d, "__class__", Delivery)
    return d  # type: ignore[no-any-return]  # a Delivery now (cast() is a call)


# A send hook (``client.add_send_hook``, both faces): ``hook(operation, topic, messages)``
# before messages are validated and sent; ``operation`` is ``"send"`` (one ``send``),
# ``"send_batch"``, ``"create"`` (``send(wait=False)`` buffering one message) or
# ``"flush"`` (buffered messages going out; the list is a copy, changes are ignored).
# The hook may replace entries of ``messages`` (e.g. with headers added) and returns
# ``None`` or a callable told how the send ended (``None``, or the exception).
SendHook = Callable[[str, str, "list[Message]"],
                    "Callable[[BaseException | None], None] | None"]

# A receive hook (``client.add_receive_hook``, both faces): ``hook(topic, group,
# messages, started_ns)`` after a ``receive`` (iteration and ``run`` included) that
# returned messages; ``messages`` are the face's received messages (read them, do not
# settle them), ``started_ns`` the ``time.time_ns()`` when that receive began. An
# exception it raises is logged and ignored (the messages are the caller's already).
ReceiveHook = Callable[[str, str, "Sequence[Any]", int], None]
