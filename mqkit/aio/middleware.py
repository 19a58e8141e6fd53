"""Middleware for ``mqkit.aio`` (``consumer.run`` and the App): the asyncio twins of
:mod:`mqkit.middleware`, with the same names and the same stores.

- :class:`Idempotent`: a message id this (topic, group) already handled is acked
  without calling the handler; ids in a :class:`MemoryStore`, a :class:`RedisStore` or
  a :class:`DBAPIStore` (their blocking calls run on a worker thread).
- :class:`TimeLimit`: a handler running past its limit is cancelled and fails (retried).
- :class:`CircuitBreaker`: after N consecutive failures, stop receiving for a cool-down.
"""

from .._idempotency import DBAPIStore, IdempotencyStore, MemoryStore, RedisStore
from ._middleware import AsyncCircuitBreaker as CircuitBreaker
from ._middleware import AsyncIdempotent as Idempotent
from ._middleware import AsyncTimeLimit as TimeLimit

__all__ = ["CircuitBreaker", "DBAPIStore", "IdempotencyStore", "Idempotent", "MemoryStore",
           "RedisStore", "TimeLimit"]
