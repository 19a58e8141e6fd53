"""Broker URLs: parsing, redaction and typed options (sans-I/O).

``URL.parse`` accepts ``scheme://[user[:password]@]host[:port][,host[:port]...][/path][?query]``.
Several comma-separated hosts are allowed (Kafka bootstrap servers, NATS servers), and
IPv6 hosts go in brackets. Every rendering of a URL (``str``, ``repr``, error messages)
hides the password and every query parameter whose name marks it as secret; only
:meth:`Secret.reveal` gives the clear text, for handing to a client library.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints
from urllib.parse import parse_qsl, quote, unquote

from ._errors import ConfigurationError

__all__ = ["URL", "Secret", "is_secret_name", "parse_options"]

REDACTED = "***"
# Query parameter names that carry credentials; any name containing one of these parts is
# redacted. Wide on purpose: a false positive only hides a harmless value.
_SECRET_PARTS = ("password", "passwd", "secret", "token", "creds", "credential", "nkey",
                 "passphrase", "private", "signature", "session")


def is_secret_name(name: str) -> bool:
    """True when a parameter of this name must never be shown."""
    lowered = name.lower()
    return any(part in lowered for part in _SECRET_PARTS)


class Secret:
    """A string that never shows itself: ``repr`` and ``str`` give ``***``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The clear text, for passing to a client library only."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class URL:
    """A parsed broker URL. Renders redacted; secrets are :class:`Secret` values."""

    scheme: str
    hosts: tuple[tuple[str, int | None], ...] = ()
    username: str | None = None
    password: Secret | None = field(default=None, compare=False)
    path: str = ""
    query: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> URL:
        """Parse ``text``; raise :class:`ConfigurationError` naming what is wrong."""
        if not isinstance(text, str) or not text:
            raise ConfigurationError("a broker URL must be a non-empty string")
        scheme, sep, rest = text.partition("://")
        if not sep or not scheme:
            raise ConfigurationError(
                f"not a URL: {_redact_text(text)!r} (expected scheme://host..., "
                "for example memory:// or kafka://localhost:9092)")
        scheme = scheme.lower()
        if not all(c.isalnum() or c in "+-." for c in scheme) or not scheme[0].isalpha():
            raise ConfigurationError(f"invalid URL scheme {scheme!r}")
        rest = rest.partition("#")[0]
        rest, _, query_text = rest.partition("?")
        netloc, slash, path = rest.partition("/")
        userinfo, at, hostlist = netloc.rpartition("@")
        username: str | None = None
        password: Secret | None = None
        if at:
            user, colon, pw = userinfo.partition(":")
            username = unquote(user) or None
            password = Secret(unquote(pw)) if colon else None
        hosts = tuple(_parse_host(h, text) for h in hostlist.split(",") if h) if hostlist else ()
        try:
            pairs = parse_qsl(query_text, keep_blank_values=True, strict_parsing=False)
        except ValueError as exc:  # pragma: no cover - parse_qsl is lenient
            raise ConfigurationError(f"invalid query string in {_redact_text(text)!r}") from exc
        query: dict[str, str] = {}
        for name, value in pairs:
            if name in query:
                raise ConfigurationError(f"query parameter {name!r} given twice")
            query[name] = value
        return cls(scheme=scheme, hosts=hosts, username=username, password=password,
                   path=unquote(path) if slash else "", query=query)

    @property
    def host(self) -> str | None:
        """The first host, or ``None``."""
        return self.hosts[0][0] if self.hosts else None

    @property
    def port(self) -> int | None:
        """The first host's port, or ``None``."""
        return self.hosts[0][1] if self.hosts else None

    def secret_query(self, name: str) -> Secret | None:
        """A query parameter as a :class:`Secret`, or ``None`` when absent."""
        value = self.query.get(name)
        return None if value is None else Secret(value)

    def render(self, *, reveal: bool = False) -> str:
        """The URL as text; secrets shown only with ``reveal=True``."""
        auth = ""
        if self.username is not None or self.password is not None:
            auth = quote(self.username or "", safe="")
            if self.password is not None:
                pw = self.password.reveal() if reveal else REDACTED
                auth += ":" + (quote(pw, safe="") if reveal else pw)
            auth += "@"
        hosts = ",".join(_render_host(h, p) for h, p in self.hosts)
        path = "/" + quote(self.path, safe="") if self.path else ""
        query = ""
        if self.query:
            query = "?" + "&".join(
                f"{quote(k, safe='')}="
                f"{quote(v, safe='') if reveal or not is_secret_name(k) else REDACTED}"
                for k, v in self.query.items())
        return f"{self.scheme}://{auth}{hosts}{path}{query}"

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"URL({self.render()!r})"


def _parse_host(item: str, text: str) -> tuple[str, int | None]:
    if item.startswith("["):
        host, bracket, after = item[1:].partition("]")
        if not bracket:
            raise ConfigurationError(f"unclosed IPv6 bracket in {_redact_text(text)!r}")
        port_text = after[1:] if after.startswith(":") else ""
        if after and not after.startswith(":"):
            raise ConfigurationError(f"invalid host {item!r}")
    else:
        host, _, port_text = item.partition(":")
    if not host:
        raise ConfigurationError(f"empty host in {_redact_text(text)!r}")
    if not port_text:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigurationError(f"invalid port {port_text!r} in {_redact_text(text)!r}")
    return host, int(port_text)


def _render_host(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def _redact_text(text: str) -> str:
    """Best-effort redaction of a URL that failed to parse, for error messages."""
    scheme, sep, rest = text.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        userinfo, _, tail = rest.partition("@")
        user = userinfo.split(":", 1)[0]
        rest = f"{user}:{REDACTED}@{tail}" if ":" in userinfo else f"{user}@{tail}"
    base, qsep, query = rest.partition("?")
    if qsep:
        parts = []
        for item in query.split("&"):
            name, eq, _ = item.partition("=")
            parts.append(f"{name}={REDACTED}" if eq and is_secret_name(name) else item)
        rest = base + "?" + "&".join(parts)
    return f"{scheme}{sep}{rest}"


T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_options(cls: type[T], values: Mapping[str, object], *, source: str = "option") -> T:
    """Build the frozen options dataclass ``cls`` from strings (URL query) or typed values.

    Unknown names raise :class:`ConfigurationError` naming them and listing the valid
    ones; values are converted to each field's annotated type (``int``, ``float``,
    ``bool``, ``str``, :class:`Secret`, ``Literal[...]``, optionals of these), and a
    value that does not convert raises naming the parameter and the expected type.
    Secret values never appear in the error text.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigurationError(
            f"unknown {source} {', '.join(repr(u) for u in unknown)}; "
            f"valid: {', '.join(sorted(names)) or '(none)'}")
    kwargs: dict[str, Any] = {}
    for name, raw in values.items():
        kwargs[name] = _convert(name, raw, hints[name], source)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"invalid {source}s for {cls.__name__}: {exc}") from None


def _convert(name: str, raw: object, hint: Any, source: str) -> object:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if raw is None or (isinstance(raw, str) and raw.lower() in ("", "none", "null")
                           and len(args) < len(get_args(hint))):
            return None
        errors = []
        for arg in args:
            try:
                return _convert(name, raw, arg, source)
            except ConfigurationError as exc:
                errors.append(str(exc))
        raise ConfigurationError(errors[0])
    if origin is Literal:
        allowed = get_args(hint)
        if raw in allowed:
            return raw
        raise ConfigurationError(
            f"{source} {name!r} must be one of {', '.join(map(repr, allowed))}, got "
            f"{_show(name, raw)}")
    if hint is Secret:
        if isinstance(raw, Secret):
            return raw
        if isinstance(raw, str):
            return Secret(raw)
        raise ConfigurationError(f"{source} {name!r} must be a string")
    if hint is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
        raise ConfigurationError(f"{source} {name!r} must be true or false, got {_show(name, raw)}")
    if hint in (int, float):
        if isinstance(raw, bool):
            raise ConfigurationError(f"{source} {name!r} must be a number, got {raw!r}")
        try:
            return hint(raw)
        except (TypeError, ValueError):
            kind = "an integer" if hint is int else "a number"
            raise ConfigurationError(
                f"{source} {name!r} must be {kind}, got {_show(name, raw)}") from None
    if hint is str:
        if isinstance(raw, str):
            return raw
        raise ConfigurationError(f"{source} {name!r} must be a string, got {_show(name, raw)}")
    if origin in (tuple, typing.Tuple):  # noqa: UP006 - comma list in URLs
        if isinstance(raw, str):
            return tuple(item for item in raw.split(",") if item)
        if isinstance(raw, (list, tuple)):
            return tuple(raw)
        raise ConfigurationError(f"{source} {name!r} must be a comma list")
    return raw


def _show(name: str, raw: object) -> str:
    return REDACTED if is_secret_name(name) else repr(raw)
