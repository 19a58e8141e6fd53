"""TestApp: run an App inside a unit test on a private ``memory://`` broker.

::

    async with TestApp(app) as t:
        await t.send("orders", {"id": 1})
        await t.wait_idle()
        assert t.handled("orders") == [{"id": 1}]
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from .._errors import ConfigurationError, Timeout
from .._payloads import encode_value
from .._validation import DLQ_HEADERS, check_name, check_seconds
from ..aio import connect as aio_connect
from ..aio._client import AsyncClient
from ..aio._consumer import AsyncConsumer
from ..aio._producer import AsyncProducer
from ._app import App
from ._handlers import HandlerSpec

__all__ = ["DeadLetter", "TestApp"]

# The group TestApp reads dead-letter topics with (the app never uses it).
_INSPECT_GROUP = "mqkit-testapp"


@dataclass(frozen=True)
class DeadLetter:
    """A message found on a dead-letter topic: its body, the reason and attempts from
    its ``mqkit-dead-letter-*`` headers, and every header."""

    body: bytes
    reason: str
    attempts: int
    headers: Mapping[str, str]


class TestApp:
    """Runs ``app`` on ``memory://`` for a test (an async context manager).

    On entering: connects to a fresh ``memory://test-<uuid>`` broker (or uses the app's
    own client, if it was given one), starts ``app.run`` as a task and returns once the
    app is ready (hooks ran, topics and groups exist, every handler's loop runs); a start
    that fails raises here. On leaving: stops the app gracefully and waits for
    ``run`` to return; an error the app's run raised is raised here (unless the block
    itself raised).

    :meth:`send` feeds a topic, :meth:`wait_idle` waits until everything sent was
    handled and settled, and :meth:`handled`, :meth:`published` and
    :meth:`dead_letters` say what happened.
    """

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, app: App, *, start_timeout: float = 10.0) -> None:
        if not isinstance(app, App):
            raise ConfigurationError(f"app must be an mqkit.service.App, got "
                                     f"{type(app).__name__}")
        self.app = app
        self.start_timeout = check_seconds("start_timeout", start_timeout, positive=True)
        self.client: AsyncClient | None = None
        self._own_client = False
        self._task: asyncio.Task[None] | None = None
        self._handled: dict[tuple[str, str], list[Any]] = {}
        self._published: dict[str, list[Any]] = {}
        self._dead: dict[str, list[DeadLetter]] = {}
        self._inspectors: dict[str, AsyncConsumer] = {}
        self._producers: dict[str, AsyncProducer] = {}

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> TestApp:
        app = self.app
        if app._given_client is not None:
            client = app._given_client
        else:
            client = aio_connect(f"memory://test-{uuid.uuid4().hex}")
            self._own_client = True
        self.client = client
        await client
        for spec in app.handlers:  # dead-letter topics, read by a group of our own
            topic = self._dead_letter_topic(spec)
            if topic is not None and topic not in self._inspectors:
                await client.admin.create_topic(topic)
                await client.admin.create_group(topic, _INSPECT_GROUP)
                self._inspectors[topic] = client.consumer(topic, _INSPECT_GROUP)
        app._handled_listeners.append(self._on_handled)
        app._published_listeners.append(self._on_published)
        self._task = asyncio.ensure_future(app.run(client=client))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        while not app.ready:
            if self._task.done():
                await self._finish()  # raises the start's error
                raise ConfigurationError("the app's run returned before it was ready "
                                         "(was it stopped before the test started?)")
            if loop.time() > deadline:
                await self._finish()
                raise Timeout(f"the app was not ready within {self.start_timeout:g} s")
            await asyncio.sleep(0.005)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.app.stop()
        try:
            await self._finish()
        except Exception:
            if exc is None:
                raise

    async def _finish(self) -> None:
        """Wait for the app's run to return, then close what TestApp opened."""
        try:
            if self._task is not None:
                await self._task
        finally:
            self._task = None
            if self._on_handled in self.app._handled_listeners:
                self.app._handled_listeners.remove(self._on_handled)
            if self._on_published in self.app._published_listeners:
                self.app._published_listeners.remove(self._on_published)
            for inspector in self._inspectors.values():
                await inspector.close()
            for producer in self._producers.values():
                await producer.close()
            self._inspectors, self._producers = {}, {}
            if self._own_client and self.client is not None:
                await self.client.close()

    def _dead_letter_topic(self, spec: HandlerSpec) -> str | None:
        if not spec.retry.dead_letter:
            return None
        if spec.retry.dead_letter_topic is not None:
            return spec.retry.dead_letter_topic
        assert self.client is not None
        return self.client.dead_letter_topic(spec.topic)

    def _on_handled(self, spec: HandlerSpec, value: Any) -> None:
        self._handled.setdefault((spec.topic, spec.group), []).append(value)

    def _on_published(self, topic: str, value: Any) -> None:
        self._published.setdefault(topic, []).append(value)

    def _client(self) -> AsyncClient:
        if self.client is None or self._task is None:
            raise ConfigurationError("use TestApp as `async with TestApp(app) as t:`")
        return self.client

    # -- feeding and waiting -------------------------------------------------------------

    async def send(self, topic: str, value: Any, *, key: str | None = None,
                   headers: Mapping[str, str] | None = None) -> str:
        """Send ``value`` to ``topic`` as a producer outside the app would (encoded as
        :meth:`App.publish` does; not counted in :meth:`published`); its message id."""
        client = self._client()
        check_name("topic", topic)
        body, content_type = encode_value(value)
        producer = self._producers.get(topic)
        if producer is None:
            producer = self._producers.setdefault(topic, client.producer(topic))
        return await producer.send(body, key=key, headers=headers, content_type=content_type)

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until every handler's group has nothing left (its depth, delayed retries
        included, is 0 on the broker) and no handler call is in flight; raise
        :class:`~mqkit.Timeout` naming what is still busy after ``timeout`` seconds, or
        the app's error if its run failed."""
        timeout = check_seconds("timeout", timeout)
        client = self._client()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._task is not None and self._task.done():
                await self._finish()
                raise ConfigurationError("the app stopped while the test waited for it")
            busy = [f"{self.app.in_flight} handler call(s) in flight"
                    ] if self.app.in_flight else []
            for spec in self.app.handlers:
                depth = await client.admin.depth(spec.topic, spec.group)
                if depth:
                    busy.append(f"{spec.topic}/{spec.group}: depth {depth}")
            if not busy and not self.app.in_flight:
                return
            if loop.time() >= deadline:
                raise Timeout(f"not idle after {timeout:g} s: {'; '.join(busy)}")
            await asyncio.sleep(0.005)

    # -- inspection --------------------------------------------------------------------

    def handled(self, topic: str, group: str | None = None) -> list[Any]:
        """What the handler of ``topic`` (and ``group``) was called with, in call order:
        the decoded payloads (or received messages, for a raw-message handler). A
        message retried is there once per call."""
        spec = self.app._find(topic, group)
        return list(self._handled.get((spec.topic, spec.group), []))

    def published(self, topic: str) -> list[Any]:
        """The values the app published to ``topic`` (handlers' outputs and
        :meth:`App.publish` calls), in order, as they were before encoding."""
        check_name("topic", topic)
        return list(self._published.get(topic, []))

    async def dead_letters(self, topic: str) -> list[DeadLetter]:
        """The messages the handler(s) of ``topic`` dead-lettered so far, oldest first."""
        check_name("topic", topic)
        self._client()
        specs = [s for s in self.app.handlers if s.topic == topic]
        if not specs:
            raise ConfigurationError(f"no handler registered for topic {topic!r}")
        found: list[DeadLetter] = []
        for dlq in dict.fromkeys(t for s in specs
                                 if (t := self._dead_letter_topic(s)) is not None):
            consumer = self._inspectors[dlq]
            while True:
                batch = await consumer.receive(100, timeout=0.01)
                if not batch:
                    break
                for msg in batch:
                    headers = msg.headers
                    self._dead.setdefault(dlq, []).append(DeadLetter(
                        body=msg.body, reason=headers.get(DLQ_HEADERS["reason"], ""),
                        attempts=int(headers.get(DLQ_HEADERS["attempts"], "0") or 0),
                        headers=headers))
                    await msg.ack()
            found += [d for d in self._dead.get(dlq, [])
                      if d.headers.get(DLQ_HEADERS["topic"]) == topic]
        return found
