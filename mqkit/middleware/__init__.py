"""Middleware for ``Consumer.run`` (the blocking face); :mod:`mqkit.aio.middleware` has
the same names for ``mqkit.aio`` and the App.

- :class:`Idempotent`: a message id this (topic, group) already handled is acked
  without calling the handler; ids in a :class:`MemoryStore`, a :class:`RedisStore` or
  a :class:`DBAPIStore`.
- :class:`TimeLimit`: a handler running past its limit fails (the message is retried).
- :class:`CircuitBreaker`: after N consecutive failures, stop receiving for a cool-down.

The protocol they follow is :class:`mqkit.Middleware` (see ``mqkit/aio/_middleware.py``,
the source of both faces). Importing this module imports no driver and no client
library: the Redis and SQL stores use the client or connection you give them.
"""

from .._idempotency import DBAPIStore, IdempotencyStore, MemoryStore, RedisStore
from .._sync._middleware import CircuitBreaker, Idempotent, TimeLimit

__all__ = ["CircuitBreaker", "DBAPIStore", "IdempotencyStore", "Idempotent", "MemoryStore",
           "RedisStore", "TimeLimit"]
