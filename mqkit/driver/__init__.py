"""mqkit's driver SPI: what an adapter implements to add a backend.

An adapter implements :class:`Driver` (blocking) or :class:`AsyncDriver` (asyncio), or
both, and registers an :class:`AdapterPlugin` under the ``mqkit.adapters`` entry-point
group. It imports only this module, :mod:`mqkit` (errors, ``Message``, ``Capabilities``,
``URL``) and its own client library. See ``_async.py`` for the rules every driver keeps.
"""

from .._capabilities import Capabilities, Feature, Support
from .._message import Delivery, Message, received
from .._url import URL, Secret, parse_options
from ._async import AsyncDriver, AsyncSubscriptionDriver, AsyncTopicDriver
from ._plugin import AdapterPlugin, ConnectParams
from ._sync import Driver, SubscriptionDriver, TopicDriver
from ._types import GroupStats, StartPosition, SubscriptionOptions

__all__ = [
    "URL",
    "AdapterPlugin",
    "AsyncDriver",
    "AsyncSubscriptionDriver",
    "AsyncTopicDriver",
    "Capabilities",
    "ConnectParams",
    "Delivery",
    "Driver",
    "Feature",
    "GroupStats",
    "Message",
    "Secret",
    "StartPosition",
    "SubscriptionDriver",
    "SubscriptionOptions",
    "Support",
    "TopicDriver",
    "parse_options",
    "received",
]
