"""mqkit's one exception hierarchy.

Every error mqkit raises is an :class:`MQError`. Adapters map their client library's
errors into these classes through a table and re-raise ``from`` the native error, so the
original stays reachable as ``__cause__`` (and through :attr:`MQError.native`)::

    MQError
    ├── ConfigurationError          bad URL, unknown scheme or parameter, bad option value
    │   └── AdapterNotInstalled     known scheme whose client library is missing
    ├── Unavailable                 broker unreachable, connection lost, broker refused
    │   └── ConnectTimeout          could not connect within ``connect_timeout`` (also Timeout)
    ├── PermissionDenied            authentication or authorization refused (never retried)
    ├── Timeout                     an operation or a request/reply wait ran out of time
    │   └── ConnectTimeout          (the same class: an Unavailable and a Timeout)
    ├── NotFound                    topic or group does not exist
    ├── AlreadyExists               create with conflicting settings
    ├── MessageTooLarge             body or headers over the backend's limit (nothing sent)
    ├── InvalidMessage              header types, header count, reserved names
    │   └── PayloadError            a body that does not decode as a handler's type
    ├── Closed                      use of a closed client, producer or consumer
    ├── Unsupported                 a feature this backend cannot provide
    ├── MessageStateError           second ack/nack/reject of one received message
    ├── SendBatchError              some entries of a batch failed; carries them and their errors
    ├── SettlementError             acks/nacks/rejects the broker did not take; names them
    │   └── SettlementUnavailable   ... because it stayed unavailable (also Unavailable)
    └── BackendError                any other error of the broker or client library

Messages never contain secrets: URLs are rendered through :class:`mqkit.URL`, which
redacts passwords, tokens and secret query parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._message import Message

__all__ = [
    "AdapterNotInstalled",
    "AlreadyExists",
    "BackendError",
    "Closed",
    "ConfigurationError",
    "ConnectTimeout",
    "InvalidMessage",
    "MQError",
    "MessageStateError",
    "MessageTooLarge",
    "NotFound",
    "PayloadError",
    "PermissionDenied",
    "SendBatchError",
    "SettlementError",
    "SettlementUnavailable",
    "Timeout",
    "Unavailable",
    "Unsupported",
]


class MQError(Exception):
    """Root of every error mqkit raises."""

    @property
    def native(self) -> BaseException | None:
        """The client library's original error, if this one was mapped from it."""
        return self.__cause__


class ConfigurationError(MQError, ValueError):
    """The URL, a query parameter or an option is invalid; the message names which."""


class AdapterNotInstalled(ConfigurationError):
    """The scheme is known but its client library is not installed.

    The message names the pip extra that installs it.
    """


class Unavailable(MQError, ConnectionError):
    """The broker cannot be reached or dropped the connection.

    Retrying later may succeed: drivers reconnect on the next call.
    """


class PermissionDenied(MQError):
    """The broker refused these credentials, or this user may not do this.

    Not an :class:`Unavailable`: retrying with the same credentials cannot succeed, so
    mqkit's retry policies never retry it. Fix the credentials or the broker's ACLs.
    """


class Timeout(MQError, TimeoutError):
    """An operation did not complete within the time allowed."""


class ConnectTimeout(Unavailable, Timeout):
    """No connection could be made within the connect timeout.

    Both an :class:`Unavailable` (retrying later may succeed, so retry loops catch it)
    and a :class:`Timeout`; every adapter raises it when its broker does not answer
    within ``connect_timeout``.
    """


class NotFound(MQError, LookupError):
    """The topic or group does not exist (and auto-create is off)."""


class AlreadyExists(MQError):
    """A create asked for settings that conflict with an existing resource."""


class InvalidMessage(MQError, ValueError):
    """A message is malformed for this backend: header types, count, or names."""


class MessageTooLarge(InvalidMessage):
    """The message exceeds the backend's size limit; nothing was sent.

    ``size`` is the measured size and ``limit`` the backend's maximum, both in bytes
    (the portable layer counts body, key and headers, UTF-8 encoded, before sending).
    Either is ``None`` only when a broker refused the message without saying it (Kafka's
    ``MESSAGE_TOO_LARGE`` names no limit); never a made-up number.
    """

    def __init__(self, message: str, *, size: int | None, limit: int | None) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class PayloadError(InvalidMessage):
    """A body that does not decode or validate as the type a handler asked for.

    It will never succeed, however often it is delivered: an App dead-letters it at once,
    with ``reason`` as the dead-letter reason. ``type_name`` names the type asked for
    (``"Order"``, ``"dict[str, int]"``) and ``reason`` says, on one line, what is wrong
    and where when known (``"Order.qty: expected int, got 'x'"``). The decoding library's
    own error (JSON, pydantic, msgspec), if any, is ``__cause__``.
    """

    def __init__(self, type_name: str, reason: str) -> None:
        super().__init__(f"body does not decode as {type_name}: {reason}")
        self.type_name = type_name
        self.reason = reason

    def __reduce__(self) -> tuple[type[PayloadError], tuple[str, str]]:
        return (type(self), (self.type_name, self.reason))


class Closed(MQError):
    """The client, producer or consumer was closed before this call."""


class Unsupported(MQError, NotImplementedError):
    """The backend cannot provide the requested feature.

    ``backend`` and ``feature`` name both, so code can branch without parsing text.
    """

    def __init__(self, backend: str, feature: str, detail: str = "") -> None:
        text = f"{backend} does not support {feature}"
        super().__init__(f"{text}: {detail}" if detail else text)
        self.backend = backend
        self.feature = feature


class MessageStateError(MQError):
    """A received message was already acked, nacked or rejected.

    mqkit's rule is *first decision wins*: the first of ``ack``, ``nack`` and ``reject``
    is applied; any later call raises this error and changes nothing on the broker.
    """


class SendBatchError(MQError):
    """Part of a batch was not sent.

    ``failures`` maps the index of each failed entry to its error, and ``messages`` the
    same indices to the failed :class:`mqkit.Message` objects themselves (as prepared for
    sending: with their ids), so that they can be sent again
    (``producer.send_batch(exc.messages.values())``). Indices count in the sequence the
    caller passed to ``send_batch``, or, from ``flush`` (and ``close``, and a send that
    flushed), in the order the buffered messages were given to ``send(wait=False)``
    since the last flush. Entries not in ``failures`` were accepted by the broker.
    ``messages`` is empty when a driver raises this error: the portable layer fills it.
    """

    def __init__(self, failures: Mapping[int, MQError], total: int,
                 messages: Mapping[int, Message] | None = None) -> None:
        self.failures = dict(failures)
        self.total = total
        self.messages: dict[int, Message] = dict(messages or {})
        shown = ", ".join(
            f"#{i}{self._id(i)}: {type(e).__name__}: {e}"
            for i, e in sorted(self.failures.items())[:5])
        more = "" if len(self.failures) <= 5 else f" (+{len(self.failures) - 5} more)"
        super().__init__(f"{len(self.failures)} of {total} messages not sent: {shown}{more}")

    def _id(self, index: int) -> str:
        message = self.messages.get(index)
        mid = message.id if message is not None else None
        return f" (id {mid})" if mid else ""


class SettlementError(MQError):
    """Decisions (ack, nack, reject) that the broker did not take.

    ``messages`` are the received messages concerned, each undecided again; ``causes``
    the errors the broker gave (the last is also ``__cause__``). The broker redelivers
    those messages in any case: a failed settlement may duplicate a message, never lose
    one. Raised by the consumer's next ``receive`` (iteration step), by
    ``flush_settlements``, by ``ack(wait=True)`` and friends, and by ``close``.
    """

    def __init__(self, message: str, messages: Sequence[object] = (),
                 causes: Sequence[BaseException] = ()) -> None:
        super().__init__(message)
        self.messages = list(messages)
        self.causes = list(causes)


class SettlementUnavailable(SettlementError, Unavailable):
    """Settlements that failed because the broker stayed unavailable past the
    ``settle_timeout``; an :class:`Unavailable` too, so a loop that retries an
    unavailable broker around ``receive`` survives it."""


class BackendError(MQError):
    """An error of the broker or client library with no more specific mqkit class."""
