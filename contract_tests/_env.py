"""What a contract case gets: a client of one backend in one face, and helpers."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import mqkit
import mqkit.aio
from mqkit import Feature, Support

from ._proxy import SyncProxy

UNSUPPORTED_PREFIX = "unsupported: "


class Env:
    """One case's backend x face: ``client``, unique names, and waiting helpers."""

    def __init__(self, backend: str, face: str, url: str, handle: Any = None) -> None:
        self.backend = backend
        self.face = face
        self.url = url
        self.handle = handle
        self.client: Any = None
        self._clients: list[Any] = []
        self._topics: list[str] = []
        self.caps: mqkit.Capabilities

    async def connect(self, **options: Any) -> Any:
        """Another client of this backend and face (closed after the case)."""
        if self.face == "async":
            client: Any = await mqkit.aio.connect(self.url, **options)
        else:
            client = SyncProxy(await asyncio.to_thread(mqkit.connect, self.url, **options),
                               asyncio.get_running_loop())
        self._clients.append(client)
        return client

    async def start(self) -> None:
        self.client = await self.connect()
        self.caps = self.client.capabilities

    async def close(self) -> None:
        admin = self.client.admin if self.client is not None else None
        for topic in self._topics:
            for name in (topic, self.caps.backend and self.client.dead_letter_topic(topic)):
                try:
                    if admin is not None:
                        await admin.delete_topic(name)
                except mqkit.MQError:
                    pass
        for client in reversed(self._clients):
            try:
                await client.close()
            except mqkit.MQError:
                pass

    def name(self, prefix: str = "t") -> str:
        """A topic or group name unique to this case."""
        return f"ct-{prefix}-{uuid.uuid4().hex[:10]}"

    async def topic(self, *groups: str, live: bool = False, **options: Any) -> str:
        """A fresh topic with ``groups`` created on it (deleted after the case).

        A case that sends while no consumer of a group is receiving needs retention: on a
        backend without it the case is recorded as unsupported. A case that subscribes
        before every send says ``live=True``.
        """
        if not live:
            self.require(Feature.RETENTION)
        topic = self.name()
        await self.client.admin.create_topic(topic, **options)
        self._topics.append(topic)
        for group in groups:
            await self.client.admin.create_group(topic, group)
        return topic

    def require(self, *features: Feature) -> None:
        """Record the case as unsupported unless the backend declares every feature."""
        for feature in features:
            support = self.caps.support(feature)
            if support is Support.UNSUPPORTED:
                pytest.skip(f"{UNSUPPORTED_PREFIX}{self.backend} declares {feature.value} "
                            "unsupported")

    @property
    def at_least_once(self) -> bool:
        return self.caps.delivery == "at-least-once"

    async def collect(self, consumer: Any, count: int, timeout: float = 10.0, *,
                      ack: bool = True, settle_wait: float = 0.0) -> list[Any]:
        """Receive until ``count`` messages came or ``timeout`` passed; ack them.

        With ``settle_wait`` keep receiving that long after reaching ``count``, so that
        duplicates or extra messages show up in the result.
        """
        got: list[Any] = []
        deadline = time.monotonic() + timeout
        extra_until: float | None = None
        while time.monotonic() < deadline:
            if len(got) >= count:
                if extra_until is None:
                    extra_until = time.monotonic() + settle_wait
                if time.monotonic() >= extra_until:
                    break
            batch = await consumer.receive(max_messages=50, timeout=0.5)
            if ack and batch:
                await consumer.ack(batch)
            got.extend(batch)
        return got

    def check_ids(self, sent: list[str], received: list[Any]) -> None:
        """The received ids are exactly ``sent``; duplicates only if at-least-once."""
        ids = [m.id for m in received]
        missing = set(sent) - set(ids)
        extra = set(ids) - set(sent)
        assert not missing, f"{len(missing)} of {len(sent)} messages never arrived"
        assert not extra, f"{len(extra)} unexpected messages arrived"
        dupes = len(ids) - len(set(ids))
        if dupes:
            assert self.at_least_once, f"{dupes} duplicates on an at-most-once backend"


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0,
                     every: float = 0.1) -> bool:
    """Poll ``check`` until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every)
