"""Where the idempotent-consumer middleware remembers the message ids it handled.

A store is two blocking calls (both faces use the same stores; on the asyncio face the
middleware runs a store's calls on a worker thread unless the store says it never
blocks):

- ``seen(key) -> bool``: was ``key`` recorded, and is its window still open?
- ``record(key, ttl)``: remember ``key`` for ``ttl`` seconds (the idempotency window).
  Called only *after* the handler succeeded. Recording a key already there keeps the
  first record (insert-or-ignore; a ``SET NX``), or refreshes one whose window closed.

Three ship here: :class:`MemoryStore` (one process, bounded, TTL), :class:`RedisStore`
(a redis-py client you pass: ``SET key 1 NX PX ttl``) and :class:`DBAPIStore` (any
DB-API 2 connection: a table ``(key, expires_at)``). Keys are strings the middleware
builds from the topic, the group and the message id.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from ._errors import ConfigurationError
from ._validation import check_int

__all__ = ["DBAPIStore", "IdempotencyStore", "MemoryStore", "RedisStore"]


@runtime_checkable
class IdempotencyStore(Protocol):
    """What the idempotent-consumer middleware needs from a store (see the module)."""

    #: ``False`` when ``seen``/``record`` never block (an in-process store): the asyncio
    #: face then calls them on the loop instead of a worker thread.
    blocking: bool

    def seen(self, key: str) -> bool:
        """Whether ``key`` was recorded and its window is still open."""
        ...

    def record(self, key: str, ttl: float) -> None:
        """Remember ``key`` for ``ttl`` seconds (keep an open record; refresh a closed one)."""
        ...


class MemoryStore:
    """Keys in this process's memory: at most ``max_keys`` (the oldest go first), each
    for its ``ttl``. Lost on restart, not shared between processes: a message
    redelivered to another worker is handled again there."""

    blocking = False

    def __init__(self, max_keys: int = 100_000, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_keys = check_int("max_keys", max_keys, 1)
        self._clock = clock
        self._keys: OrderedDict[str, float] = OrderedDict()  # key -> expires at
        self._lock = threading.Lock()

    def seen(self, key: str) -> bool:
        with self._lock:
            expires = self._keys.get(key)
            if expires is None:
                return False
            if expires > self._clock():
                return True
            del self._keys[key]
            return False

    def record(self, key: str, ttl: float) -> None:
        now = self._clock()
        with self._lock:
            keys = self._keys
            expires = keys.get(key)
            if expires is not None and expires > now:
                return
            keys[key] = now + ttl
            keys.move_to_end(key)
            while keys:  # drop expired ones from the old end, then enforce the bound
                oldest, when = next(iter(keys.items()))
                if when > now and len(keys) <= self.max_keys:
                    break
                del keys[oldest]

    def __len__(self) -> int:
        return len(self._keys)


class RedisStore:
    """Keys in Redis, shared by every worker: ``client`` is a (blocking) redis-py
    client, or anything with ``exists(name)`` and ``set(name, value, nx=True, px=ms)``.
    A record is ``SET prefix+key 1 NX PX ttl``: Redis expires it by itself."""

    blocking = True

    def __init__(self, client: Any, *, prefix: str = "mqkit:idempotency:") -> None:
        for method in ("exists", "set"):
            if not callable(getattr(client, method, None)):
                raise ConfigurationError(
                    f"client must be a redis-py client (with exists() and set()), got "
                    f"{type(client).__name__}")
        if not isinstance(prefix, str):
            raise ConfigurationError(f"prefix must be a str, got {type(prefix).__name__}")
        self.client = client
        self.prefix = prefix

    def seen(self, key: str) -> bool:
        return bool(self.client.exists(self.prefix + key))

    def record(self, key: str, ttl: float) -> None:
        self.client.set(self.prefix + key, b"1", nx=True, px=max(1, round(ttl * 1000)))


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_STYLES = ("format", "named", "numeric", "pyformat", "qmark")


class DBAPIStore:
    """Keys in a SQL table, through any DB-API 2 connection (sqlite3, psycopg, ...).

    The table has ``idem_key`` (up to 255 characters, the primary key) and
    ``expires_at`` (Unix seconds); it is created if missing (``create=True``).
    ``paramstyle`` is the driver module's (found from the connection's module when not
    given). A record is an insert-or-ignore written portably: refresh a row whose window
    closed, else insert, and a duplicate-key error on the insert (another worker recorded
    it first) is ignored; then commit. Calls are serialised by a lock: give a connection
    usable from the worker threads that run them (sqlite3: ``check_same_thread=False``).
    Expired rows are deleted every ``purge_every`` records.
    """

    blocking = True

    def __init__(self, connection: Any, *, table: str = "mqkit_idempotency",
                 paramstyle: str | None = None, create: bool = True,
                 purge_every: int = 1000) -> None:
        for method in ("cursor", "commit"):
            if not callable(getattr(connection, method, None)):
                raise ConfigurationError(
                    f"connection must be a DB-API 2 connection (with cursor() and "
                    f"commit()), got {type(connection).__name__}")
        if not isinstance(table, str) or not _IDENTIFIER.fullmatch(table):
            raise ConfigurationError(f"table must be a plain SQL identifier, got {table!r}")
        style = paramstyle if paramstyle is not None else _paramstyle(connection)
        if style not in _STYLES:
            raise ConfigurationError(
                f"paramstyle must be one of {', '.join(_STYLES)}, got {style!r}")
        self.connection = connection
        self.table = table
        self.paramstyle = style
        self.purge_every = check_int("purge_every", purge_every, 1)
        self._writes = 0
        self._lock = threading.Lock()
        if create:
            with self._lock:
                self._run(f"CREATE TABLE IF NOT EXISTS {table} (idem_key VARCHAR(255) "
                          "PRIMARY KEY, expires_at DOUBLE PRECISION NOT NULL)")
                connection.commit()

    def _run(self, sql: str, *values: object, fetch: bool = False) -> Any:
        """Execute ``sql``, whose ``{0}``, ``{1}``... are the parameters ``values`` in
        the driver's style; the first row (``fetch``) or the row count."""
        style = self.paramstyle
        if style == "qmark":
            marks = ["?"] * len(values)
        elif style in ("format", "pyformat"):
            marks = ["%s"] * len(values)
        elif style == "numeric":
            marks = [f":{i + 1}" for i in range(len(values))]
        else:
            marks = [f":p{i}" for i in range(len(values))]
        params: Any = ({f"p{i}": v for i, v in enumerate(values)} if style == "named"
                       else tuple(values))
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql.format(*marks), params)
            return cursor.fetchone() if fetch else cursor.rowcount
        finally:
            cursor.close()

    def _rollback(self) -> None:
        rollback = getattr(self.connection, "rollback", None)
        if rollback is not None:
            rollback()

    def seen(self, key: str) -> bool:
        with self._lock:
            try:
                row = self._run(f"SELECT 1 FROM {self.table} WHERE idem_key = {{0}} "
                                "AND expires_at > {1}", key, time.time(), fetch=True)
            finally:
                self._rollback()  # end the read's transaction, if the driver opened one
        return row is not None

    def record(self, key: str, ttl: float) -> None:
        now = time.time()
        table = self.table
        with self._lock:
            try:
                # refresh a closed window; an open one is kept (the first record wins)
                updated = self._run(f"UPDATE {table} SET expires_at = {{0}} WHERE "
                                    "idem_key = {1} AND expires_at <= {2}",
                                    now + ttl, key, now)
                if not updated:
                    try:
                        self._run(f"INSERT INTO {table} (idem_key, expires_at) "
                                  "VALUES ({0}, {1})", key, now + ttl)
                    except Exception:
                        self._rollback()
                        if self._run(f"SELECT 1 FROM {table} WHERE idem_key = {{0}}", key,
                                     fetch=True) is None:
                            raise
                        self._rollback()
                        return  # another worker recorded it first
                self._writes += 1
                if self._writes % self.purge_every == 0:
                    self._run(f"DELETE FROM {table} WHERE expires_at <= {{0}}", now)
                self.connection.commit()
            except BaseException:
                self._rollback()
                raise


def _paramstyle(connection: Any) -> str:
    """The DB-API module's ``paramstyle``, found from the connection's class."""
    root = type(connection).__module__.split(".")[0]
    module = sys.modules.get(root)
    style = getattr(module, "paramstyle", None)
    if not isinstance(style, str):
        raise ConfigurationError(
            f"cannot tell the parameter style of a {type(connection).__name__} connection; "
            "pass paramstyle= ('qmark', 'format', 'pyformat', 'numeric' or 'named')")
    return style
