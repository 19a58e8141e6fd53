"""``client.capabilities_for(topic)``: the per-topic capability view (issue 19).

The driver declares through the optional SPI hook ``topic_capabilities`` (default: the
client's capabilities); the portable layer checks the name, applies the declaration on
both faces, whichever face the driver has, and refuses a declaration that is not a
:class:`mqkit.Capabilities` of the same backend.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mqkit
import mqkit.aio
from mqkit._registry import register
from mqkit.driver import AdapterPlugin, AsyncDriver, Capabilities, ConnectParams, Driver, Support
from mqkit.memory._async_driver import connect_async as memory_connect_async
from mqkit.memory._driver import connect as memory_connect

VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")
SUFFIX = ".nodelay"


def _url(scheme: str = "memory") -> str:
    return f"{scheme}://cf-{uuid.uuid4().hex[:10]}"


def _refined(base: Capabilities) -> Capabilities:
    return dataclasses.replace(base, delay=Support.UNSUPPORTED, dedup=Support.EMULATED)


def _declare(driver: Any, declare: Callable[[Any, str], object]) -> None:
    driver.topic_capabilities = lambda topic: declare(driver, topic)


def _by_suffix(driver: Any, topic: str) -> object:
    return _refined(driver.capabilities) if topic.endswith(SUFFIX) else driver.capabilities


def _plugin(declare: Callable[[Any, str], object], *, native_async: bool) -> str:
    """A scheme whose driver (memory's, blocking or asyncio) declares with ``declare``."""
    scheme = f"capfor{uuid.uuid4().hex[:8]}"

    def connect(params: ConnectParams) -> Driver:
        driver = memory_connect(params)
        _declare(driver, declare)
        return driver

    async def connect_async(params: ConnectParams) -> AsyncDriver:
        driver = await memory_connect_async(params)
        _declare(driver, declare)
        return driver

    register(AdapterPlugin(name=scheme, schemes=(scheme,),
                           connect=None if native_async else connect,
                           connect_async=connect_async if native_async else None))
    return scheme


async def _on_async(url: str, check: Callable[[Any], Awaitable[None] | None]) -> None:
    async with mqkit.aio.connect(url) as client:
        result = check(client)
        if result is not None:
            await result


def _on_both(url: str, check: Callable[[Any], None]) -> None:
    with mqkit.connect(url) as client:
        check(client)
    asyncio.run(_on_async(url, check))


def test_default_is_the_clients_capabilities_on_both_faces() -> None:
    def check(client: Any) -> None:
        for topic in ("t", "jobs.fifo", "a:b-c_d"):
            assert client.capabilities_for(topic) == client.capabilities

    _on_both(_url(), check)


@pytest.mark.parametrize("native_async", [False, True])
def test_a_drivers_declaration_is_applied_on_both_faces(native_async: bool) -> None:
    """A blocking driver behind the asyncio face and an asyncio one behind the blocking
    face (the bridges) both pass the declaration on."""
    scheme = _plugin(_by_suffix, native_async=native_async)

    def check(client: Any) -> None:
        base = client.capabilities
        assert client.capabilities_for("jobs") == base
        refined = client.capabilities_for("jobs" + SUFFIX)
        assert refined == _refined(base) and refined != base
        assert refined.delay is Support.UNSUPPORTED

    _on_both(_url(scheme), check)


@pytest.mark.parametrize("declared", [
    lambda driver, topic: dataclasses.replace(driver.capabilities, backend="other"),
    lambda driver, topic: None,
    lambda driver, topic: driver.capabilities.as_dict(),
])
def test_a_declaration_that_is_not_this_backends_capabilities_is_a_backend_error(
        declared: Callable[[Any, str], object]) -> None:
    scheme = _plugin(declared, native_async=False)

    def check(client: Any) -> None:
        with pytest.raises(mqkit.BackendError, match="topic_capabilities"):
            client.capabilities_for("t")

    _on_both(_url(scheme), check)


def test_a_declaration_that_raises_is_a_backend_error_from_it() -> None:
    def boom(driver: Any, topic: str) -> object:
        raise KeyError(topic)

    scheme = _plugin(boom, native_async=False)

    def check(client: Any) -> None:
        with pytest.raises(mqkit.BackendError, match="KeyError") as info:
            client.capabilities_for("t")
        assert isinstance(info.value.__cause__, KeyError)

    _on_both(_url(scheme), check)


def test_closed_and_not_yet_connected_clients_refuse() -> None:
    client = mqkit.connect(_url())
    client.close()
    with pytest.raises(mqkit.Closed):
        client.capabilities_for("t")

    async def not_connected() -> None:
        aclient = mqkit.aio.connect(_url())  # not entered: no connection yet
        with pytest.raises(mqkit.MQError, match="not connected"):
            aclient.capabilities_for("t")
        await aclient.close()

    asyncio.run(not_connected())


_topics = st.one_of(
    st.text(max_size=210),
    st.from_regex(VALID, fullmatch=True),
    st.none(), st.integers(), st.binary(max_size=8), st.floats(allow_nan=True),
    st.lists(st.text(max_size=3), max_size=2), st.just(""), st.just("x" * 201),
    st.just("ok.fifo"), st.just(".fifo"), st.just("bad name"), st.just("é"),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=_topics)
def test_topic_is_a_valid_name_or_refused_naming_it(topic: object) -> None:
    valid = isinstance(topic, str) and VALID.fullmatch(topic) is not None

    def check(client: Any) -> None:
        try:
            caps = client.capabilities_for(topic)
        except mqkit.ConfigurationError as exc:
            assert type(exc) is mqkit.ConfigurationError
            assert not valid, f"refused a valid topic {topic!r}: {exc}"
            assert "topic" in str(exc), str(exc)
            return
        assert valid, f"accepted an invalid topic {topic!r}"
        assert caps == client.capabilities

    with mqkit.connect("memory://cf-hypothesis") as client:
        check(client)

    async def on_async() -> None:
        async with mqkit.aio.connect("memory://cf-hypothesis") as client:
            check(client)

    asyncio.run(on_async())


@pytest.mark.parametrize("native_async", [False, True])
def test_producers_check_messages_against_their_topics_declaration(native_async: bool) -> None:
    """A delay is refused on a topic that declares none (SQS's *.fifo), on both faces and
    for send and send_batch, before anything is sent; the same delay on a plain topic
    of the same client goes."""
    scheme = _plugin(_by_suffix, native_async=native_async)
    url = _url(scheme)
    refined, plain = "jobs" + SUFFIX, "jobs"
    with mqkit.connect(url) as client:
        for topic in (refined, plain):
            client.admin.create_topic(topic)
            client.admin.create_group(topic, "g")
        with pytest.raises(mqkit.Unsupported, match="delay"):
            client.producer(refined).send(b"x", delay=1.0)
        with pytest.raises(mqkit.Unsupported, match="delay"):
            client.producer(refined).send_batch([mqkit.Message(b"x", delay=1.0)])
        assert client.admin.depth(refined, "g") == 0
        client.producer(plain).send(b"x", delay=0.01)

    async def on_async() -> None:
        async with mqkit.aio.connect(url) as aclient:
            with pytest.raises(mqkit.Unsupported, match="delay"):
                await aclient.producer(refined).send(b"x", delay=1.0)
            await aclient.producer(plain).send(b"x", delay=0.01)

    asyncio.run(on_async())
