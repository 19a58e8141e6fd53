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
from urllib.parse import quote, unquote, unquote_plus

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
        if not isinstance(value, str):
            raise ConfigurationError(
                f"a secret must be a string, got {type(value).__name__}")
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
    """A parsed broker URL. Renders redacted; secrets are :class:`Secret` values.

    ``query`` maps each parameter name to its value: a ``str``, or a :class:`Secret` when
    :func:`is_secret_name` says the name carries a credential (``token``, ``password``,
    ``session_token``...), so that neither ``repr``, ``dataclasses.asdict`` nor a traceback
    showing locals ever holds the clear text. Built directly, a URL wraps a ``str``
    password and secret-named ``str`` values the same way.
    """

    scheme: str
    hosts: tuple[tuple[str, int | None], ...] = ()
    username: str | None = None
    password: Secret | None = field(default=None, compare=False)
    path: str = ""
    query: Mapping[str, str | Secret] = field(default_factory=dict)

    def __post_init__(self) -> None:
        password: object = self.password  # a str despite the annotation: wrap it
        if isinstance(password, str):
            object.__setattr__(self, "password", Secret(password))
        if any(isinstance(v, str) and is_secret_name(k) for k, v in self.query.items()):
            object.__setattr__(self, "query", {
                k: Secret(v) if isinstance(v, str) and is_secret_name(k) else v
                for k, v in self.query.items()})

    @classmethod
    def parse(cls, text: str) -> URL:
        """Parse ``text``; raise :class:`ConfigurationError` naming what is wrong.

        The user name, password, path and query are percent-decoded (``+`` in the query is
        a space). ``@`` may appear once, between the credentials and the host: a user name
        or password holding ``/``, ``?``, ``#`` or ``@``, and a path or query value holding
        ``@`` or ``#``, must be percent-encoded (``urllib.parse.quote(value, safe="")``).
        A URL breaking that rule is refused rather than guessed at, because a wrong guess
        would show part of a password as a host, port or parameter name. No error message
        quotes text that could be part of a password or secret value.
        """
        if not isinstance(text, str) or not text:
            raise ConfigurationError("a broker URL must be a non-empty string")
        scheme, sep, rest = text.partition("://")
        if not sep or not scheme:
            raise ConfigurationError(
                f"not a URL{_excerpt(text)} (expected scheme://host..., "
                "for example memory:// or kafka://localhost:9092)")
        if not scheme.isascii() or not all(c.isalnum() or c in "+-." for c in scheme):
            raise ConfigurationError(
                "invalid URL scheme: it holds only letters, digits, '+', '-' and '.'")
        scheme = scheme.lower()
        if not scheme[0].isalpha():
            raise ConfigurationError(f"invalid URL scheme {scheme!r}: it starts with a letter")
        if "#" in rest:
            raise ConfigurationError(
                f"the {scheme}:// URL holds a '#': a broker URL takes no #fragment, so a '#' "
                "in a user name, password, path or parameter value must be percent-encoded "
                "as %23")
        end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
        netloc, after = rest[:end], rest[end:]
        if "@" in after:
            raise ConfigurationError(
                f"the {scheme}:// URL holds an '@' after its host part: percent-encode a user "
                "name or password holding '/', '?', '#' or '@' (for example with "
                "urllib.parse.quote(password, safe='')), and an '@' in the path or a "
                "parameter value as %40")
        userinfo, at, hostlist = netloc.rpartition("@")
        username: str | None = None
        password: Secret | None = None
        if at:
            user, colon, pw = userinfo.partition(":")
            username = _decode(user, "the user name") or None
            password = Secret(_decode(pw, "the password")) if colon else None
        hosts = tuple(_parse_host(h) for h in hostlist.split(",") if h) if hostlist else ()
        path_text, _, query_text = after.partition("?")
        path = _decode(path_text[1:], "the path") if path_text else ""
        return cls(scheme=scheme, hosts=hosts, username=username, password=password,
                   path=path, query=_parse_query(query_text))

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
        if value is None or isinstance(value, Secret):
            return value
        return Secret(value)

    def render(self, *, reveal: bool = False) -> str:
        """The URL as text; secrets shown only with ``reveal=True``.

        ``URL.parse(url.render(reveal=True)) == url``, password included.
        """
        auth = ""
        if self.username is not None or self.password is not None:
            auth = quote(self.username or "", safe="")
            if self.password is not None:
                auth += ":" + (quote(self.password.reveal(), safe="") if reveal else REDACTED)
            auth += "@"
        hosts = ",".join(_render_host(h, p) for h, p in self.hosts)
        path = "/" + quote(self.path, safe="") if self.path else ""
        query = ""
        if self.query:
            query = "?" + "&".join(
                f"{quote(k, safe='')}={_render_value(v, reveal)}" for k, v in self.query.items())
        return f"{self.scheme}://{auth}{hosts}{path}{query}"

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"URL({self.render()!r})"


def _render_value(value: str | Secret, reveal: bool) -> str:
    if isinstance(value, Secret):
        return quote(value.reveal(), safe="") if reveal else REDACTED
    return quote(value, safe="")


def _decode(text: str, what: str, *, plus: bool = False) -> str:
    """Percent-decode ``text`` (``+`` as space when ``plus``); name ``what`` if not UTF-8."""
    try:
        return (unquote_plus if plus else unquote)(text, errors="strict")
    except UnicodeDecodeError:
        raise ConfigurationError(
            f"{what} in the URL is not valid percent-encoded UTF-8 (a literal '%' is "
            "written %25)") from None


def _parse_query(text: str) -> dict[str, str | Secret]:
    query: dict[str, str | Secret] = {}
    for number, item in enumerate((i for i in text.split("&") if i), start=1):
        raw_name, eq, raw_value = item.partition("=")
        if not eq:
            raise ConfigurationError(
                f"URL query item {number} has no '=': write name=value, and percent-encode "
                "an '&' inside a value as %26")
        name = _decode(raw_name, f"the name of URL query item {number}", plus=True)
        secret = is_secret_name(name)
        value = _decode(raw_value, f"the value of query parameter {name!r}", plus=True)
        if name in query:
            raise ConfigurationError(f"query parameter {name!r} given twice")
        query[name] = Secret(value) if secret else value
    return query


def _parse_host(item: str) -> tuple[str, int | None]:
    if item.startswith("["):
        host, bracket, after = item[1:].partition("]")
        if not bracket:
            raise ConfigurationError(f"unclosed IPv6 bracket in host {item!r}")
        if after and not after.startswith(":"):
            raise ConfigurationError(f"invalid host {item!r}: text after ']' that is no :port")
        port_text = after[1:]
    else:
        host, _, port_text = item.partition(":")
    if not host:
        raise ConfigurationError(f"empty host in {item!r}")
    if any(c.isspace() or not c.isprintable() or c in _BAD_HOST_CHARS for c in host):
        raise ConfigurationError(
            f"invalid host {host!r}: it holds a space, a control character or one of "
            f"{_BAD_HOST_CHARS!r}")
    if not port_text and not item.endswith(":"):
        return host, None
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        raise ConfigurationError(f"invalid port {port_text!r} of host {host!r}: "
                                 "expected a number from 1 to 65535")
    return host, int(port_text)


_BAD_HOST_CHARS = "[]<>\\\"'^`{|}"


def _render_host(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def _excerpt(text: str) -> str:
    """``: 'text'`` for an error message, or nothing when ``text`` could hold a secret."""
    if len(text) > 200 or any(c in text for c in "@?#&=") or not text.isprintable():
        return ""
    return f": {text!r}"


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
        from ._validation import unknown_names  # did-you-mean and the portable names
        raise unknown_names(source, unknown, names)
    kwargs: dict[str, Any] = {}
    for name, raw in values.items():
        kwargs[name] = _convert(name, raw, hints[name], source)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"invalid {source}s for {cls.__name__}: {exc}") from None


def _convert(name: str, raw: object, hint: Any, source: str) -> object:
    origin = get_origin(hint)
    if isinstance(raw, Secret) and hint is not Secret and origin not in (Union, types.UnionType):
        raw = raw.reveal()  # a secret-named URL parameter of a plain type (a timeout, say)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        text = raw.reveal() if isinstance(raw, Secret) else raw
        if raw is None or (isinstance(text, str) and text.lower() in ("", "none", "null")
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
            number = hint(raw)
            if hint is int and not isinstance(raw, str) and number != raw:  # int(2.5) is 2
                raise ValueError(raw)
            return number
        except (TypeError, ValueError, OverflowError):
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
