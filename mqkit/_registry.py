"""Finding adapters by URL scheme through the ``mqkit.adapters`` entry-point group.

Entry-point names are URL schemes, so listing the installed schemes imports nothing.
A plugin that fails to load is skipped with a warning naming it, as OpenTelemetry's
loader does, instead of breaking every other backend.
"""

from __future__ import annotations

import importlib.metadata
import logging
import threading

from ._errors import AdapterNotInstalled, ConfigurationError
from .driver._plugin import AdapterPlugin

__all__ = ["DISTRIBUTION", "KNOWN_SCHEMES", "installed_schemes", "plugin_for"]

log = logging.getLogger("mqkit")

DISTRIBUTION = "mqkit-sdk"
GROUP = "mqkit.adapters"
# Schemes of the adapters this distribution ships, and the extra each needs, so that a
# scheme whose client library is absent gets a precise hint.
KNOWN_SCHEMES = {"amqp": "rabbitmq", "amqps": "rabbitmq", "kafka": "kafka", "nats": "nats",
                 "sqs": "sqs", "sns+sqs": "sqs", "redis": "redis", "rediss": "redis",
                 "redis+sentinel": "redis", "rediss+sentinel": "redis",
                 "redis+cluster": "redis", "rediss+cluster": "redis"}
# Backends announced but not shipped yet (none today): a clear answer instead of
# "unknown scheme".
PLANNED_SCHEMES: dict[str, str] = {}

_lock = threading.Lock()
_extra: dict[str, AdapterPlugin] = {}


def register(plugin: AdapterPlugin) -> None:
    """Register ``plugin`` for its schemes in this process (tests, embedded use)."""
    with _lock:
        for scheme in plugin.schemes:
            _extra[scheme] = plugin


def installed_schemes() -> list[str]:
    """Every scheme with a registered adapter, sorted."""
    names = {ep.name for ep in importlib.metadata.entry_points(group=GROUP)}
    names.update(_extra)
    names.add("memory")
    return sorted(names)


def plugin_for(scheme: str) -> AdapterPlugin:
    """The plugin for ``scheme``; raise a :class:`ConfigurationError` that names the
    installed schemes, or the extra to install for a known scheme."""
    with _lock:
        if scheme in _extra:
            return _extra[scheme]
    for ep in importlib.metadata.entry_points(group=GROUP, name=scheme):
        try:
            loaded = ep.load()
        except ImportError as exc:
            raise missing_library(scheme, exc) from exc
        except Exception as exc:
            raise ConfigurationError(
                f"the adapter registered for scheme {scheme!r} ({ep.value}) failed to "
                f"load: {type(exc).__name__}: {exc}") from exc
        if not isinstance(loaded, AdapterPlugin):
            log.warning("mqkit: entry point %s = %s is not an AdapterPlugin; skipped",
                        ep.name, ep.value)
            continue
        return loaded
    if scheme == "memory":
        from .memory import plugin as memory_plugin
        builtin: AdapterPlugin = memory_plugin
        return builtin
    if scheme in KNOWN_SCHEMES:
        raise missing_library(scheme, None)
    if scheme in PLANNED_SCHEMES:
        raise AdapterNotInstalled(
            f"the {PLANNED_SCHEMES[scheme]} adapter (scheme {scheme!r}) is not part of this "
            f"version of {DISTRIBUTION} yet; installed: {', '.join(installed_schemes())}")
    raise ConfigurationError(
        f"unknown URL scheme {scheme!r}; installed: {', '.join(installed_schemes())}")


def missing_library(scheme: str, exc: BaseException | None) -> AdapterNotInstalled:
    """The error for a known scheme whose adapter or client library is not installed."""
    extra = KNOWN_SCHEMES.get(scheme, scheme)
    detail = f" ({exc})" if exc is not None else ""
    return AdapterNotInstalled(
        f"scheme {scheme!r} needs its client library{detail}; "
        f"install it with: pip install '{DISTRIBUTION}[{extra}]'")
