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
"""Skip reasons starting with this: the backend's declared capabilities rule the case out."""
HARNESS_PREFIX = "harness: "
"""Skip reasons starting with this: the harness cannot do what the case needs for this
backend (restart its broker, ...); nothing is known about the adapter either way."""

RESTART = "restart"
UNREACHABLE = "unreachable"
CREDENTIALS = "credentials"
HARNESS_ABILITIES: dict[str, str] = {
    RESTART: "restart this backend's broker (no fault-injection handle: the broker was not "
             "started by the harness, or was given by MQKIT_CONTRACT_URLS)",
    UNREACHABLE: "point this backend at an address where no broker listens (its URL names "
                 "no host:port)",
    CREDENTIALS: "log in to this backend's broker with a password it checks "
                 "(no MQKIT_TEST_<BACKEND>_AUTH_URL and no container with a user)",
}
"""What a case may need from the harness beyond a client, and what its absence means."""
TOPIC_KINDS: tuple[str, ...] = ("", ".fifo", ".stream")
"""Name suffixes that may make a topic of another kind, tried in this order by a case that
needs a feature on its topic (``Env.topic(needs=...)``): the plain name, then a FIFO name
(SQS: a ``*.fifo`` topic orders per key and deduplicates on a standard client), then a
stream name (RabbitMQ: a ``*.stream`` topic keeps an archive a new group replays). The case
runs on the first kind whose ``client.capabilities_for(topic)`` declares every feature it
needs; a backend that declares the same for every name runs it on the plain name. A naming
convention, not a backend's name: any adapter may give such names a kind of their own."""
CI_REQUIRED_ABILITIES = frozenset({RESTART, UNREACHABLE})
"""For a backend named in ``MQKIT_REQUIRE_BACKENDS`` the harness must have these: a case
that needs one fails instead of skipping (credentials are not among them: moto accepts any
key, so SQS has none to check)."""


class Env:
    """One case's backend x face: ``client``, unique names, and waiting helpers."""

    def __init__(self, backend: str, face: str, url: str, handle: Any = None, *,
                 required: bool = False, auth_url: str | None = None) -> None:
        self.backend = backend
        self.face = face
        self.url = url
        self.handle = handle
        """The harness's ``BrokerHandle`` for this backend's broker, or None (``memory``,
        a backend of ``MQKIT_CONTRACT_URLS``): what fault injection goes through."""
        self.required = required
        """Whether ``MQKIT_REQUIRE_BACKENDS`` names this backend's broker (CI): then a
        case needing an ability of :data:`CI_REQUIRED_ABILITIES` fails without it."""
        self.auth_url = auth_url
        """A URL whose credentials the broker checks (contract 58), or None."""
        self.client: Any = None
        self._clients: list[Any] = []
        self._topics: list[str] = []
        self.caps: mqkit.Capabilities
        self.topic_caps: dict[str, mqkit.Capabilities] = {}
        """The capabilities of the topic kinds (a :data:`TOPIC_KINDS` suffix) this case
        ran on that differ from :attr:`caps`: what the report records per topic kind."""

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

    async def topic(self, *groups: str, live: bool = False,
                    needs: tuple[Feature, ...] = (), **options: Any) -> str:
        """A fresh topic with ``groups`` created on it (deleted after the case).

        A case that sends while no consumer of a group is receiving needs retention: on a
        backend without it the case is recorded as unsupported. A case that subscribes
        before every send says ``live=True``. A case relying on features of the topic
        itself (ordering, dedup) names them in ``needs``: the topic gets the first name
        kind of :data:`TOPIC_KINDS` whose ``capabilities_for`` declares them all; with
        none the case is recorded as unsupported.
        """
        if not live:
            self.require(Feature.RETENTION)
        topic = self._name_for(needs) if needs else self.name()
        await self.client.admin.create_topic(topic, **options)
        self._topics.append(topic)
        for group in groups:
            await self.client.admin.create_group(topic, group)
        return topic

    def _name_for(self, needs: tuple[Feature, ...]) -> str:
        base = self.name()
        for kind in TOPIC_KINDS:
            caps = self.client.capabilities_for(base + kind)
            if all(caps.support(f) for f in needs):
                if caps != self.caps:
                    self.topic_caps[kind] = caps
                return base + kind
        wanted = ", ".join(f.value for f in needs)
        kinds = ", ".join(repr(k or "plain") for k in TOPIC_KINDS)
        pytest.skip(f"{UNSUPPORTED_PREFIX}{self.backend} declares {wanted} unsupported on "
                    f"every topic kind tried ({kinds})")

    def require(self, *features: Feature, topic: str | None = None) -> None:
        """Record the case as unsupported unless the backend declares every feature:
        on ``topic`` when given (``capabilities_for``), else on the client."""
        caps = self.caps if topic is None else self.client.capabilities_for(topic)
        where = "" if topic is None else f" on topic {topic!r}"
        for feature in features:
            support = caps.support(feature)
            if support is Support.UNSUPPORTED:
                pytest.skip(f"{UNSUPPORTED_PREFIX}{self.backend} declares {feature.value} "
                            f"unsupported{where}")

    def can(self, ability: str) -> bool:
        """Whether the harness has ``ability`` (a key of :data:`HARNESS_ABILITIES`) here."""
        if ability == RESTART:
            return self.handle is not None and bool(self.handle.can_inject_faults)
        if ability == UNREACHABLE:
            return self.unreachable_url() is not None
        if ability == CREDENTIALS:
            return self.auth_url is not None
        raise ValueError(f"unknown harness ability {ability!r}; "
                         f"expected one of {', '.join(HARNESS_ABILITIES)}")

    def require_harness(self, *abilities: str) -> None:
        """Record the case as not checkable by this harness unless it has every ability.

        Never decided by the backend's name: a backend the harness cannot disturb (an
        in-process one, a third party's given by URL) skips with a ``harness:`` reason the
        report keeps apart from capabilities. Under ``MQKIT_REQUIRE_BACKENDS`` (CI) a
        missing ability of :data:`CI_REQUIRED_ABILITIES` fails the case instead.
        """
        for ability in abilities:
            if self.can(ability):
                continue
            why = f"this harness cannot {HARNESS_ABILITIES[ability]}"
            if self.required and ability in CI_REQUIRED_ABILITIES:
                pytest.fail(f"MQKIT_REQUIRE_BACKENDS names {self.backend}, yet {why}")
            pytest.skip(f"{HARNESS_PREFIX}{self.backend}: {why}")

    def unreachable_url(self) -> str | None:
        """This backend's URL with its host:port replaced by one where nothing listens
        (127.0.0.1:9, discard), or None when the URL names no host:port."""
        url = mqkit.URL.parse(self.url)
        if not url.host or url.port is None:
            return None
        rendered = url.render(reveal=True)
        dead = rendered.replace(f"{url.host}:{url.port}", "127.0.0.1:9", 1)
        return dead if dead != rendered else None

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
