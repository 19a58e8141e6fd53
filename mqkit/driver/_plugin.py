"""How an adapter plugs in: an :class:`AdapterPlugin` behind an entry point.

An adapter package exposes one ``AdapterPlugin`` and registers it once per URL scheme in
the ``mqkit.adapters`` entry-point group, for example in ``pyproject.toml``::

    [project.entry-points."mqkit.adapters"]
    kafka = "mqkit_kafka:plugin"

The module holding the plugin must import without the client library installed (import
the client inside ``connect``), so that mqkit can list the scheme and, when the library
is missing, tell the user which extra to install.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from .. import _redact
from .._url import URL, Secret, is_secret_name
from ._async import AsyncDriver
from ._sync import Driver

__all__ = ["AdapterPlugin", "ConnectParams"]


@dataclass(frozen=True)
class ConnectParams:
    """What a plugin gets to open a driver.

    ``options`` holds the adapter's own settings: the URL's query parameters (strings)
    overridden by keyword arguments (typed), with mqkit's portable options removed. The
    adapter validates them with :func:`mqkit.driver.parse_options` into its own frozen
    options dataclass, so that an unknown name is an error naming it. A value whose name
    marks it as a credential (``password``, ``token``, ``session_token``...) is a
    :class:`Secret` (a text one is wrapped on construction), and constructing the params
    registers every secret with mqkit's log redaction (``mqkit._redact``), so that no log
    record of the process, the client library's included, shows it.
    """

    url: URL
    options: Mapping[str, object] = field(default_factory=dict)
    connect_timeout: float = 10.0

    def __post_init__(self) -> None:
        # A secret-named option given as text (a keyword such as token="...") is held as a
        # Secret, so that repr, asdict and tracebacks showing locals never show it; every
        # secret is registered with the log redaction before any client library sees it.
        options = {k: Secret(v) if isinstance(v, str) and is_secret_name(k) else v
                   for k, v in self.options.items()}
        object.__setattr__(self, "options", options)
        _redact.register(v for v in (self.url.password, *self.url.query.values(),
                                     *options.values()) if isinstance(v, Secret))


@dataclass(frozen=True)
class AdapterPlugin:
    """An adapter's registration.

    ``connect`` opens a blocking driver, ``connect_async`` an asyncio-native one; give
    at least one, and both when the client library has both faces. ``extra`` is the pip
    extra that installs the client library (``None`` when nothing is needed).
    """

    name: str
    schemes: tuple[str, ...]
    extra: str | None = None
    connect: Callable[[ConnectParams], Driver] | None = None
    connect_async: Callable[[ConnectParams], Awaitable[AsyncDriver]] | None = None

    def __post_init__(self) -> None:
        if self.connect is None and self.connect_async is None:
            raise ValueError(f"adapter {self.name!r} gives neither connect nor connect_async")
