"""mqkit's Kafka adapter (kafka-python), for ``kafka://`` URLs.

(Full docstring below is completed in the docs step.)
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


plugin = AdapterPlugin(name="kafka", schemes=("kafka",), extra="kafka", connect=_connect)
