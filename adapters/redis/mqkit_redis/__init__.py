"""mqkit's Redis adapter (redis-py), for ``redis://`` and ``rediss://`` URLs: Streams.

(docstring completed below)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mqkit.driver import AdapterPlugin, ConnectParams

if TYPE_CHECKING:
    from mqkit.driver import Driver

__all__ = ["plugin"]


def _connect(params: ConnectParams) -> Driver:
    from ._driver import connect

    return connect(params)


plugin = AdapterPlugin(name="redis", schemes=("redis", "rediss"), extra="redis",
                       connect=_connect)
