"""One pika connection and channel, serviced in the background, reopened on demand.

pika's ``BlockingConnection`` is not thread-safe and only does I/O (heartbeats included)
while some call is inside it. A :class:`Link` owns one connection and one channel behind
a lock: the driver object using it runs every pika call under the lock (the portable
layer may call from different threads, one at a time), and a daemon thread takes the
lock when it is free to run ``process_data_events(0)`` twice per heartbeat interval, so a
handler that sleeps for minutes does not lose the connection.

When the connection fails, the link drops it and raises :class:`mqkit.Unavailable`; the
next call connects again (a new *generation*) and runs the owner's ``setup`` to
re-declare what it needs. A channel closed by the broker (404, 406) is reopened on the
next call without dropping the connection.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import pika
import pika.exceptions as pe
from pika.adapters.blocking_connection import BlockingChannel

from mqkit.driver import BackendError, Closed, ConnectTimeout, MQError, Unavailable

from ._errors import is_connection_error, map_error

__all__ = ["Link"]

log = logging.getLogger("mqkit.rabbitmq")



class Link:
    """A connection + channel for one driver object (topic, subscription or admin)."""

    def __init__(self, params: Sequence[pika.ConnectionParameters], connect_timeout: float,
                 heartbeat: int, name: str, *,
                 setup: Callable[[BlockingChannel], None] | None = None,
                 probe: bool = True) -> None:
        self._params = list(params)
        self._connect_timeout = connect_timeout
        self._name = name
        self.setup = setup
        self._probe = probe
        # Called by the servicing thread, under the lock, when the link is idle.
        self.on_idle: Callable[[], None] | None = None
        self.lock = threading.RLock()
        self.connection: pika.BlockingConnection | None = None
        self.channel: BlockingChannel | None = None
        self.generation = 0
        self._closed = False
        self._stop = threading.Event()
        # Half the heartbeat: two chances per interval to answer the broker; at most
        # 1 s, so idle work (releasing unclaimed deliveries) happens promptly.
        self._period = min(heartbeat / 2, 1.0) if heartbeat > 0 else 1.0
        self._thread: threading.Thread | None = None

    # -- use -------------------------------------------------------------------------

    @contextlib.contextmanager
    def use(self, what: str) -> Iterator[BlockingChannel]:
        """Hold the lock and yield an open channel; map and handle every pika error."""
        with self.lock:
            if self._closed:
                raise Closed(f"rabbitmq: {self._name} is closed")
            channel = self._ensure()
            try:
                yield channel
            except MQError:
                raise
            except (pe.AMQPError, OSError) as exc:
                if is_connection_error(exc):
                    self._drop()
                else:
                    self._drop_channel()
                raise map_error(exc, what) from exc

    def _ensure(self) -> BlockingChannel:
        if self._probe and self.connection is not None and self.connection.is_open:
            # A non-blocking poll notices a connection the broker dropped since the last
            # call (a restart), so the call below gets a fresh one instead of failing.
            try:
                self.connection.process_data_events(0)
            except (pe.AMQPError, OSError) as exc:
                log.info("rabbitmq: %s found its connection lost: %s", self._name, exc)
                self._drop()
        if self.connection is None or not self.connection.is_open:
            self._drop()
            self.connection = self._connect()
            self.generation += 1
            self._start_thread()
        if self.channel is None or not self.channel.is_open:
            try:
                self.channel = self.connection.channel()
                if self.setup is not None:
                    self.setup(self.channel)
            except MQError:
                self._drop_channel()
                raise
            except (pe.AMQPError, OSError) as exc:
                if is_connection_error(exc):
                    self._drop()
                else:
                    self._drop_channel()
                raise map_error(exc, f"{self._name}: setup") from exc
        return self.channel

    def _connect(self) -> pika.BlockingConnection:
        started = time.monotonic()
        try:
            return pika.BlockingConnection(self._params)
        except Exception as exc:  # pika's connection workflow raises its own classes too
            elapsed = time.monotonic() - started
            text = str(exc).lower()
            if elapsed >= self._connect_timeout * 0.9 or "timed out" in text \
                    or "timeout" in text:
                raise ConnectTimeout(
                    f"rabbitmq: could not connect within {self._connect_timeout}s "
                    f"({type(exc).__name__})") from exc
            hosts = ", ".join(f"{p.host}:{p.port}" for p in self._params)
            detail = str(exc) or repr(exc.args[0] if exc.args else exc)
            error = map_error(exc, f"connect to {hosts}")
            if isinstance(error, BackendError):
                error = Unavailable(f"rabbitmq: connect to {hosts}: {detail}")
            elif not str(exc):
                error = type(error)(f"rabbitmq: connect to {hosts}: {type(exc).__name__}: "
                                    f"{detail}")
            raise error from exc

    def _drop_channel(self) -> None:
        channel, self.channel = self.channel, None
        if channel is not None and channel.is_open:
            with contextlib.suppress(Exception):
                channel.close()

    def _drop(self) -> None:
        self.channel = None
        connection, self.connection = self.connection, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(Exception):
                connection.close()

    @contextlib.contextmanager
    def settling(self, what: str) -> Iterator[BlockingChannel | None]:
        """Like :meth:`use`, for ack/nack/reject: when the connection is lost, the
        broker has already requeued every unsettled delivery of it, so the settle is
        moot; the link is reset and the call returns (yielding ``None`` when there is
        no connection to settle on) instead of raising."""
        with self.lock:
            if self._closed:
                raise Closed(f"rabbitmq: {self._name} is closed")
            if self.connection is None or not self.connection.is_open \
                    or self.channel is None or not self.channel.is_open:
                yield None
                return
            try:
                yield self.channel
            except (pe.AMQPError, OSError) as exc:
                if not is_connection_error(exc):
                    self._drop_channel()
                    raise map_error(exc, what) from exc
                log.info("rabbitmq: %s: connection lost while settling (%s); the broker "
                         "redelivers those messages", self._name, exc)
                self._drop()

    def reset_channel(self) -> None:
        """Forget the channel only; the next ``use`` opens a new one (and sets it up)."""
        with self.lock:
            self._drop_channel()

    def reset(self) -> None:
        """Forget the connection (after an error); the next ``use`` reconnects."""
        with self.lock:
            self._drop()

    # -- background servicing ---------------------------------------------------------

    def _start_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._service, daemon=True,
                                            name=f"mqkit-rabbitmq-{self._name}")
            self._thread.start()

    def _service(self) -> None:
        while not self._stop.wait(self._period):
            if not self.lock.acquire(blocking=False):
                continue  # a caller is inside pika: it services the connection itself
            try:
                connection = self.connection
                if connection is not None and connection.is_open:
                    connection.process_data_events(0)
                    if self.on_idle is not None:
                        self.on_idle()
            except Exception as exc:  # the next call reports it, mapped
                log.info("rabbitmq: %s lost its connection: %s", self._name, exc)
                self._drop()
            finally:
                self.lock.release()

    def close(self) -> None:
        """Close the connection and stop servicing it. Idempotent."""
        self._stop.set()
        with self.lock:
            self._closed = True
            self._drop()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self._period + 1)
