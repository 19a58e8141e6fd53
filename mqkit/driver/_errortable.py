"""A declared table from a client library's exceptions to mqkit's.

An adapter declares one :class:`ErrorTable` in its ``_errors.py`` and wraps every call
into its client in ``with TABLE.mapped("what"):``. The table owns the walk that every
adapter used to copy:

- an :class:`~mqkit.MQError` passes through unchanged (it is already mapped);
- the optional ``hook`` sees the native error first, for codes the class alone does not
  tell (AMQP reply codes, AWS error codes, JetStream ``err_code``, Redis reply prefixes);
  it returns ``(mqkit class, detail)`` or ``None`` to let the table decide;
- else the first ``(native class, mqkit class)`` row whose class matches wins, so rows go
  most specific first;
- else ``default`` (``BackendError``).

The mapped error's text is ``"<backend>: <what>: <detail>"``; ``detail`` is
``"<NativeType>: <native text>"`` unless the hook says otherwise. ``mapped()`` raises it
``from`` the native error, so the original stays reachable as ``__cause__``. Any string
passed in ``secrets`` never appears in the text (it is removed; if it would still
appear, the native text is dropped altogether), nor does any secret registered by a
``ConnectParams`` or the value after a credential-looking key (``mqkit._redact``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence

from .. import _redact
from .._errors import BackendError, MessageTooLarge, MQError, Unsupported

__all__ = ["ErrorHook", "ErrorTable"]

ErrorHook = Callable[[BaseException], "tuple[type[MQError], str] | None"]
"""Sees a native error before the table: ``(mqkit class, detail)``, or ``None``."""


_ERROR_NAME = re.compile(r"[A-Za-z_][\w.]*+")


def _redact_detail(detail: str) -> str:
    """``detail`` with registered secrets in any form and values after credential keys hidden.

    A leading error name (``InvalidClientTokenId: ...``, the native type or the broker's
    error code) is not taken for a credential key: only registered secrets are hidden in it,
    so that ``ExpiredToken: <message>`` keeps its message.
    """
    name, sep, rest = detail.partition(": ")
    if sep and _ERROR_NAME.fullmatch(name):
        return _redact.redact(name, library=False) + sep + _redact.redact(rest)
    return _redact.redact(detail)


def _scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty secret removed (repeatedly, so none re-forms)."""
    for secret in secrets:
        if not secret:
            continue
        while secret in text:
            text = text.replace(secret, "")
    return text


class ErrorTable:
    """One backend's mapping of native exceptions to mqkit classes.

    ``rows`` are ``(native class, mqkit class)``, most specific first. ``catch`` is
    what :meth:`mapped` intercepts (default: every native class in ``rows``); anything
    else propagates untouched. Immutable after construction and thread-safe.
    """

    __slots__ = ("_catch", "_default", "_hook", "_rows", "backend")

    def __init__(
        self,
        backend: str,
        rows: Sequence[tuple[type[BaseException], type[MQError]]],
        *,
        hook: ErrorHook | None = None,
        catch: tuple[type[BaseException], ...] | None = None,
        default: type[MQError] = BackendError,
    ) -> None:
        self.backend = backend
        self._rows = tuple(rows)
        self._hook = hook
        self._catch = catch if catch is not None else tuple(n for n, _ in self._rows)
        self._default = default

    @property
    def rows(self) -> tuple[tuple[type[BaseException], type[MQError]], ...]:
        """The declared rows, in matching order."""
        return self._rows

    def classify(self, exc: BaseException) -> type[MQError]:
        """The mqkit class ``exc`` maps to, by the hook, then the rows, then the default."""
        return self._decide(exc)[0]

    def _decide(self, exc: BaseException) -> tuple[type[MQError], str]:
        if self._hook is not None:
            decided = self._hook(exc)
            if decided is not None:
                return decided
        detail = f"{type(exc).__name__}: {exc}"
        for native, cls in self._rows:
            if isinstance(exc, native):
                return cls, detail
        return self._default, detail

    def map(self, exc: BaseException, what: str, *, secrets: Iterable[str] = ()) -> MQError:
        """The mqkit error for ``exc``, not raised and without ``__cause__`` set.

        ``what`` names the operation (``"send to orders"``). An ``MQError`` is returned
        as is. Never raises; never includes a string of ``secrets`` in the text.
        """
        if isinstance(exc, MQError):
            return exc
        cls, detail = self._decide(exc)
        detail = _redact_detail(detail)
        secrets = tuple(s for s in secrets if s)
        detail = _scrub(detail, secrets)
        head = f"{self.backend}: {what}"
        if any(s in f"{head}: {detail}" for s in secrets):
            detail = type(exc).__name__  # joining re-formed a secret: keep only the type
            if any(s in f"{head}: {detail}" for s in secrets):
                detail = ""
        if issubclass(cls, Unsupported):
            return cls(self.backend, what, detail)
        text = f"{head}: {detail}" if detail else head
        if issubclass(cls, MessageTooLarge):
            return cls(text, size=None, limit=None)  # the native error does not say
        return cls(text)

    @contextlib.contextmanager
    def mapped(self, what: str, *, secrets: Iterable[str] = ()) -> Iterator[None]:
        """Re-raise a caught native error as its mqkit error ``from`` the native one.

        ``MQError`` and anything outside ``catch`` propagate unchanged.
        """
        try:
            yield
        except MQError:
            raise
        except self._catch as exc:
            raise self.map(exc, what, secrets=secrets) from exc
