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

from .._url import URL
from ._async import AsyncDriver
from ._sync import Driver

__all__ = ["AdapterPlugin", "ConnectParams"]


@dataclass(frozen=True)
class ConnectParams:
    """What a plugin gets to open a driver.

    ``options`` holds the adapter's own settings: the URL's query parameters (strings)
    overridden by keyword arguments (typed), with mqkit's portable options removed. The
    adapter validates them with :func:`mqkit.driver.parse_options` into its own frozen
    options dataclass, so that an unknown name is an error naming it.
    """

    url: URL
    options: Mapping[str, object] = field(default_factory=dict)
    connect_timeout: float = 10.0


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
