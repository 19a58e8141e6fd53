"""CONTRACT L: authentication (behaviour 58).

The case needs a URL whose credentials the broker checks: ``MQKIT_TEST_<BACKEND>_AUTH_URL``
(or the scheme's); ``scripts/brokers env`` prints one for RabbitMQ, Redis and NATS, and the
harness's containers carry one for them too (``BrokerHandle.auth_url``); the conftest puts
it in ``Env.auth_url``. A password in the backend's own URL is not enough: moto accepts any
AWS key. Without one the case is recorded as not checkable by the harness (``harness``),
naming the backend; the adapter's capabilities say nothing about it.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from typing import Any

import pytest

import mqkit
import mqkit.aio

from ._env import CREDENTIALS, Env

pytestmark = pytest.mark.asyncio
CONNECT_TIMEOUT = 5.0


def _wrong(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    assert parts.password is not None
    wrong = f"wrong-{parts.password}"
    netloc = parts.netloc.replace(f":{parts.password}@", f":{wrong}@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), wrong


async def _list_topics(face: str, url: str) -> list[str]:
    """Connect on ``face``, list topics, close."""
    if face == "async":
        async with mqkit.aio.connect(url, connect_timeout=CONNECT_TIMEOUT) as client:
            return await client.admin.list_topics()

    def blocking() -> Any:
        with mqkit.connect(url, connect_timeout=CONNECT_TIMEOUT) as client:
            return client.admin.list_topics()
    result: list[str] = await asyncio.to_thread(blocking)
    return result


@pytest.mark.contract(58)
async def test_c58_wrong_password_is_permission_denied_at_once(env: Env) -> None:
    env.require_harness(CREDENTIALS)
    good = env.auth_url
    assert good is not None
    bad, password = _wrong(good)
    start = time.monotonic()
    with pytest.raises(mqkit.PermissionDenied) as info:
        await _list_topics(env.face, bad)
    took = time.monotonic() - start
    assert took < CONNECT_TIMEOUT, f"PermissionDenied after {took:.1f} s: it was retried"
    assert not isinstance(info.value, mqkit.Unavailable)
    assert password not in str(info.value) and password not in repr(info.value)
    assert isinstance(await _list_topics(env.face, good), list)  # the right one works
