"""From a URL and keywords to a plugin, portable options and adapter options (sans-I/O)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Mapping
from typing import Any

from . import _redact
from ._errors import BackendError, ConfigurationError, MQError
from ._options import ClientOptions
from ._registry import plugin_for
from ._url import URL, Secret, parse_options
from .driver._plugin import AdapterPlugin, ConnectParams

__all__ = ["DEFAULT_URL", "Resolved", "resolve"]

DEFAULT_URL = "memory://"
_CLIENT_FIELDS = frozenset(f.name for f in dataclasses.fields(ClientOptions))


@dataclasses.dataclass(frozen=True)
class Resolved:
    """Everything needed to open a driver, decided before any I/O."""

    url: URL
    options: ClientOptions
    plugin: AdapterPlugin
    params: ConnectParams

    def scrub(self, text: str) -> str:
        """``text`` with every secret of this URL replaced by ``***``, also in the forms a
        library prints it in and after credential-looking keys (:func:`mqkit._redact.redact`)."""
        secrets = [self.url.password.reveal()] if self.url.password else []
        secrets += [v.reveal() for v in self.url.query.values() if isinstance(v, Secret) and v]
        secrets += [v.reveal() for v in self.params.options.values()
                    if isinstance(v, Secret) and v]
        for secret in sorted(secrets, key=len, reverse=True):
            if len(secret) >= 3:  # shorter values would redact ordinary words
                text = text.replace(secret, "***")
        return _redact.redact(text)

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Let mqkit errors through; wrap anything else as :class:`BackendError`."""
        try:
            yield
        except MQError:
            raise
        except Exception as exc:
            detail = self.scrub(f"{type(exc).__name__}: {exc}")
            raise BackendError(f"{self.plugin.name}: {detail}") from exc


def resolve(url: str | None, overrides: Mapping[str, Any]) -> Resolved:
    """Parse ``url`` (else ``$MQKIT_URL``, else ``memory://``) and split the options.

    Query parameters and keywords naming a :class:`ClientOptions` field are portable;
    the rest go to the adapter, which rejects names it does not know. Keywords win
    over query parameters.
    """
    if url is not None and not isinstance(url, str):
        raise ConfigurationError(
            f"url must be a str such as 'memory://', got {type(url).__name__}")
    text = url if url is not None else os.environ.get("MQKIT_URL") or DEFAULT_URL
    parsed = URL.parse(text)
    plugin = plugin_for(parsed.scheme)
    merged: dict[str, object] = {**parsed.query, **overrides}
    portable = {k: v for k, v in merged.items() if k in _CLIENT_FIELDS}
    adapter = {k: v for k, v in merged.items() if k not in _CLIENT_FIELDS}
    options = parse_options(ClientOptions, portable, source="option")
    params = ConnectParams(url=parsed, options=adapter, connect_timeout=options.connect_timeout)
    return Resolved(parsed, options, plugin, params)
