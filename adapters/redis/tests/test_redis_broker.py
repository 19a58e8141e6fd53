"""Redis adapter against a real server (``MQKIT_TEST_REDIS_URL``).

Skipped without a server, except when ``MQKIT_REQUIRE_BACKENDS`` names redis. The
restart tests restart the shared server with ``scripts/brokers restart redis`` (no
persistence: it comes back empty), and run a private ``redis-server`` with AOF on a
free port for the durability test.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import redis

import mqkit

ROOT = Path(__file__).resolve().parents[3]


StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]
"""Entries of a stream as redis-py returns them over RESP2 (its annotations describe
RESP3's replies)."""


def _handle(msg: mqkit.ReceivedMessage) -> str:
    """The delivery's handle: on Redis, the stream entry id."""
    handle = msg.delivery.handle
    assert isinstance(handle, str), handle
    return handle


@pytest.fixture
def raw(url: str) -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(url)
    yield r
    r.close()


@pytest.fixture
def client(url: str, name: str) -> Iterator[mqkit.Client]:
    c = mqkit.connect(url)
    yield c
    try:
        c.admin.delete_topic(name)
        c.admin.delete_topic(c.dead_letter_topic(name))
    finally:
        c.close()


def test_plain_client_writes_mqkit_reads(client: mqkit.Client, raw: redis.Redis,
                                         name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    entry = raw.xadd(name, {"body": b"\x00plain\xff", "h:tenant": "a", "region": "eu",
                            "key": "k1", "content-type": "text/plain"})
    with client.consumer(name, "g") as consumer:
        [msg] = consumer.receive(10, timeout=5)
        msg.ack()
    assert msg.body == b"\x00plain\xff" and msg.key == "k1"
    assert dict(msg.headers) == {"tenant": "a", "region": "eu"}
    assert isinstance(entry, bytes)
    assert msg.content_type == "text/plain" and msg.id == entry.decode()
    assert msg.timestamp is not None and abs(msg.timestamp - time.time()) < 60


def test_mqkit_writes_plain_client_reads(client: mqkit.Client, raw: redis.Redis,
                                         name: str) -> None:
    client.admin.create_topic(name)
    raw.xgroup_create(name, "plain", "0")
    msg_id = client.producer(name).send(b"\x00mq\xff", key="k", headers={"tenant": "b"},
                                        correlation_id="c1")
    reply = cast("list[tuple[bytes, StreamEntries]]",
                 raw.xreadgroup("plain", "me", {name: ">"}, count=10, block=2000))
    [(entry_id, fields)] = reply[0][1]
    assert fields == {b"body": b"\x00mq\xff", b"id": msg_id.encode(), b"key": b"k",
                      b"correlation-id": b"c1", b"h:tenant": b"b"}
    raw.xack(name, "plain", entry_id)
    assert raw.xpending(name, "plain")["pending"] == 0


def test_native_names_lists_and_stats(client: mqkit.Client, raw: redis.Redis,
                                      name: str) -> None:
    client.admin.create_topic(name)
    assert raw.type(name) == b"stream" and raw.xlen(name) == 0
    client.admin.create_group(name, "g")
    assert [g["name"] for g in raw.xinfo_groups(name)] == [b"g"]
    assert name in client.admin.list_topics()
    assert client.dead_letter_topic(name) == f"{name}:dlq"
    client.producer(name).send_batch([b"1", b"2", b"3"])
    assert client.admin.depth(name, "g") == 3
    with client.consumer(name, "g") as consumer:
        got = consumer.receive(3, timeout=5)
        consumer.ack(got[:1])
        consumer.nack(got[1:2], delay=30, wait=True)  # the broker has both now
        stats = client.admin.stats(name, "g")
        assert (stats.depth, stats.in_flight) == (2, 1)  # the delayed nack is not in flight
        assert raw.zcard(f"{name}:mqkit-retry:g") == 1


def test_key_prefix_and_wrong_type(url: str, raw: redis.Redis, name: str) -> None:
    with mqkit.connect(url, key_prefix="app:") as c:
        c.admin.create_topic(name)
        try:
            assert raw.type(f"app:{name}") == b"stream"
            assert name in c.admin.list_topics()
            assert all(not t.startswith("app:") for t in c.admin.list_topics())
        finally:
            c.admin.delete_topic(name)
    raw.set(name, "not a stream")
    try:
        with mqkit.connect(url) as c, pytest.raises(mqkit.AlreadyExists):
            c.admin.create_topic(name)
    finally:
        raw.delete(name)


def test_dead_letter_stream_with_reason(client: mqkit.Client, raw: redis.Redis,
                                        name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    msg_id = client.producer(name).send(b"poison", headers={"origin": "t"})

    def handler(msg: mqkit.ReceivedMessage) -> None:
        raise ValueError("bad input")

    policy = mqkit.RetryPolicy(max_attempts=2, initial_backoff=0.05, max_backoff=0.1)
    with client.consumer(name, "g", lease=2) as consumer:
        stats = consumer.run(handler, retry=policy, idle_timeout=3)
    assert stats.dead_lettered == 1
    entries = cast("StreamEntries", raw.xrange(f"{name}:dlq"))
    assert len(entries) == 1
    fields = entries[0][1]
    assert fields[b"body"] == b"poison" and fields[b"id"] == msg_id.encode()
    assert fields[b"h:origin"] == b"t"
    assert fields[b"h:mqkit-dead-letter-reason"] == b"ValueError: bad input"
    assert raw.xpending(name, "g")["pending"] == 0


def test_nack_delay_uses_the_retry_schedule(client: mqkit.Client, raw: redis.Redis,
                                            name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    client.producer(name).send(b"later")
    with client.consumer(name, "g", lease=1) as consumer:
        [msg] = consumer.receive(1, timeout=5)
        msg.nack(delay=2.5, wait=True)
        score = raw.zscore(f"{name}:mqkit-retry:g", _handle(msg))
        assert score is not None and score > time.time() * 1000 + 1500
        start = time.monotonic()
        # Longer than the lease: reclaim must not hand it out before its delay.
        assert consumer.receive(1, timeout=1.8) == []
        got: list[mqkit.ReceivedMessage] = []
        while not got and time.monotonic() - start < 10:
            got = consumer.receive(1, timeout=1)
        assert got and got[0].delivery_count == 2
        assert time.monotonic() - start >= 2.3
        got[0].ack()


def test_consumer_that_died_is_reclaimed_after_its_lease(client: mqkit.Client, url: str,
                                                         raw: redis.Redis,
                                                         name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    msg_id = client.producer(name).send(b"orphan")
    # A process that takes the message and dies without closing anything.
    script = (
        "import os, sys, mqkit\n"
        "sys.path.insert(0, 'adapters/redis')\n"
        "from mqkit_redis import plugin\n"
        "from mqkit._registry import register\n"
        "register(plugin)\n"
        f"c = mqkit.connect({url!r})\n"
        f"m = c.consumer({name!r}, 'g', lease=1).receive(1, timeout=5)\n"
        "print(len(m), flush=True)\n"
        "os._exit(0)\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True)
    assert out.stdout.strip() == "1"
    assert raw.xpending(name, "g")["pending"] == 1
    with client.consumer(name, "g", lease=1) as survivor:
        start = time.monotonic()
        got: list[mqkit.ReceivedMessage] = []
        while not got and time.monotonic() - start < 10:
            got = survivor.receive(1, timeout=1)
        assert [m.id for m in got] == [msg_id] and got[0].delivery_count == 2
        got[0].ack()


def test_retention_is_explicit(url: str, raw: redis.Redis, name: str) -> None:
    with mqkit.connect(url, maxlen=10, trim_exact=True) as c:
        c.admin.create_topic(name)
        try:
            c.producer(name).send_batch([b"x"] * 25)
            assert raw.xlen(name) == 10
        finally:
            c.admin.delete_topic(name)
    with mqkit.connect(url) as c:
        c.admin.create_topic(name)
        try:
            c.producer(name).send_batch([b"x"] * 25)
            assert raw.xlen(name) == 25  # never trimmed unless asked
        finally:
            c.admin.delete_topic(name)


def test_delayed_send_waits_in_a_sorted_set(client: mqkit.Client, raw: redis.Redis,
                                            name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    msg_id = client.producer(name).send(b"\x00soon", headers={"a": "b"}, delay=1.5)
    assert raw.xlen(name) == 0 and raw.zcard(f"{name}:mqkit-delayed") == 1
    raw.script_flush()  # a server that lost the mover script gets it back
    with client.consumer(name, "g") as consumer:
        assert consumer.receive(1, timeout=0.8) == []
        got: list[mqkit.ReceivedMessage] = []
        start = time.monotonic()
        while not got and time.monotonic() - start < 10:
            got = consumer.receive(1, timeout=1)
        assert [(m.id, m.body, dict(m.headers)) for m in got] == [
            (msg_id, b"\x00soon", {"a": "b"})]
        got[0].ack()
    assert raw.zcard(f"{name}:mqkit-delayed") == 0


def test_secrets_never_shown(url: str) -> None:
    u = mqkit.URL.parse(url)
    bad = f"redis://mqkit:pa55-s3cret@{u.host}:{u.port}/0"
    with pytest.raises(mqkit.PermissionDenied) as info:
        mqkit.connect(bad).admin.list_topics()
    assert "pa55-s3cret" not in str(info.value) + repr(info.value)
    assert info.value.__cause__ is not None
    assert "pa55-s3cret" not in repr(mqkit.URL.parse(bad))


def _brokers(*args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "brokers"), *args], check=True,
                   timeout=120, capture_output=True)


def test_restart_of_the_shared_server_clients_recover(url: str, name: str) -> None:
    """scripts/brokers' redis has no persistence: it comes back empty. Producer and
    consumer recover by themselves (streams and groups re-created); errors meanwhile
    are Unavailable."""
    with mqkit.connect(url) as c:
        c.admin.create_topic(name)
        c.admin.create_group(name, "g")
        producer = c.producer(name)
        consumer = c.consumer(name, "g")
        producer.send(b"before")
        assert len(consumer.receive(1, timeout=5)) == 1
        _brokers("stop", "redis")
        try:
            with pytest.raises(mqkit.Unavailable):
                consumer.receive(1, timeout=0.5)
            with pytest.raises(mqkit.Unavailable):
                c.admin.list_topics()
        finally:
            _brokers("start", "redis")
        sent = producer.send(b"after")
        got: list[mqkit.ReceivedMessage] = []
        start = time.monotonic()
        while not got and time.monotonic() - start < 30:
            try:
                got = consumer.receive(1, timeout=1)
            except mqkit.Unavailable:
                time.sleep(0.2)
        assert [m.id for m in got] == [sent]
        got[0].ack()
        consumer.close()
        producer.close()
        c.admin.delete_topic(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _AofServer:
    """A private redis-server with AOF (appendfsync always) in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server not installed"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.path),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port).ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("private redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


def test_restart_with_aof_loses_nothing_and_unacked_come_back(tmp_path: Path,
                                                             name: str) -> None:
    server = _AofServer(tmp_path)
    server.start()
    url = f"redis://127.0.0.1:{server.port}/0"
    try:
        with mqkit.connect(url, send_timeout=30) as c:
            assert c.capabilities.persistence is mqkit.Support.NATIVE
            c.admin.create_topic(name)
            c.admin.create_group(name, "g")
            ids = c.producer(name).send_batch([bytes([i]) for i in range(10)])
            holder = c.consumer(name, "g", lease=1)
            held = holder.receive(5, timeout=5)
            assert len(held) == 5
            server.kill()  # a crash: no shutdown save; AOF has every returned write
            with pytest.raises(mqkit.Unavailable):
                holder.receive(1, timeout=0.2)
            server.start()
            ids += c.producer(name).send_batch([bytes([i]) for i in range(10, 15)])
            with c.consumer(name, "g", lease=1) as consumer:
                got: list[mqkit.ReceivedMessage] = []
                start = time.monotonic()
                while len({m.id for m in got}) < 15 and time.monotonic() - start < 30:
                    batch = consumer.receive(20, timeout=1)
                    consumer.ack(batch)
                    got += batch
            assert {m.id for m in got} == set(ids)
            again = [m for m in got if m.id in {h.id for h in held}]
            assert all(m.delivery_count >= 2 for m in again)
            holder.close()
    finally:
        server.kill()


def test_pubsub_mode_is_at_most_once_and_interoperates(url: str, raw: redis.Redis,
                                                       name: str) -> None:
    sep = "&" if "?" in url else "?"
    with mqkit.connect(f"{url}{sep}mode=pubsub") as c:
        caps = c.capabilities
        assert caps.delivery == "at-most-once" and not caps.persistence and not caps.nack
        c.admin.create_topic(name)
        try:
            c.producer(name).send(b"nobody listens")  # gone: nothing is kept
            consumer = c.consumer(name, "g")
            start = time.monotonic()
            assert consumer.receive(5, timeout=0.5) == []
            assert time.monotonic() - start >= 0.4  # blocked, not a busy loop
            listener = raw.pubsub(ignore_subscribe_messages=True)
            listener.subscribe(name)
            listener.get_message(timeout=1.0)
            msg_id = c.producer(name).send(b"\x00hi", headers={"k": "v"})
            raw.publish(name, b"plain")
            got: list[mqkit.ReceivedMessage] = []
            deadline = time.monotonic() + 5
            while len(got) < 2 and time.monotonic() < deadline:  # receive returns early
                got.extend(consumer.receive(10, timeout=1))
            assert [(m.id, m.body, dict(m.headers)) for m in got] == [
                (msg_id, b"\x00hi", {"k": "v"}), (None, b"plain", {})]
            seen = listener.get_message(timeout=2.0)
            assert seen is not None and seen["data"].startswith(b"4:body")
            listener.close()
            with pytest.raises(mqkit.Unsupported):
                got[0].nack()
            consumer.close()
        finally:
            c.admin.delete_topic(name)


def test_acl_user_with_password_and_without_info(url: str, raw: redis.Redis,
                                                 name: str) -> None:
    """Authentication with an ACL user and password; a user denied INFO still works
    (persistence is then not declared, restarts go unnoticed)."""
    user, password = f"mqkit-{name}", "pw-Very-s3cret"
    raw.acl_setuser(user, enabled=True, passwords=[f"+{password}"], keys=["*"],
                    channels=["*"], commands=["+@all", "-info"])
    try:
        u = mqkit.URL.parse(url)
        authed = f"redis://{user}:{password}@{u.host}:{u.port}/0"
        with mqkit.connect(authed) as c:
            assert password not in repr(c)
            assert not c.capabilities.persistence
            c.admin.create_topic(name)
            c.admin.create_group(name, "g")
            msg_id = c.producer(name).send(b"authed")
            with c.consumer(name, "g") as consumer:
                got = consumer.receive(1, timeout=5)
                assert [m.id for m in got] == [msg_id]
                consumer.ack(got)
            c.admin.delete_topic(name)
        wrong = f"redis://{user}:nope@{u.host}:{u.port}/0"
        with pytest.raises(mqkit.PermissionDenied) as info:
            mqkit.connect(wrong).admin.list_topics()
        assert "nope" not in str(info.value)
    finally:
        raw.acl_deluser(user)


def test_closing_a_consumer_keeps_delayed_nacks_delayed(client: mqkit.Client,
                                                        raw: redis.Redis,
                                                        name: str) -> None:
    client.admin.create_topic(name)
    client.admin.create_group(name, "g")
    client.producer(name).send(b"wait")
    schedule = f"{name}:mqkit-retry:g"
    with client.consumer(name, "g", lease=30) as first:
        [msg] = first.receive(1, timeout=5)
        msg.nack(delay=30)
    due = raw.zscore(schedule, _handle(msg))
    time.sleep(1.2)
    with client.consumer(name, "g", lease=1) as other:
        assert other.receive(1, timeout=0.5) == []  # it reclaims the idle entry, parked
        owners = {r["consumer"] for r in raw.xpending_range(name, "g", "-", "+", 10)}
        assert len(owners) == 1
    assert raw.zscore(schedule, _handle(msg)) == due
    assert raw.xpending(name, "g")["pending"] == 1


async def test_asyncio_native_driver_same_layout(url: str, raw: redis.Redis,
                                                 name: str) -> None:
    import redis.asyncio

    import mqkit.aio

    async with mqkit.aio.connect(url) as c:
        assert isinstance(c.as_(redis.asyncio.Redis), redis.asyncio.Redis)
        await c.admin.create_topic(name)
        try:
            await c.admin.create_group(name, "g")
            raw.xadd(name, {"body": b"\x00from plain", "h:x": "1"})
            msg_id = await c.producer(name).send(b"from aio", headers={"y": "2"},
                                                 delay=0.5)
            async with c.consumer(name, "g", lease=30) as consumer:
                got: list[mqkit.aio.ReceivedMessage] = []
                start = time.monotonic()
                while len(got) < 2 and time.monotonic() - start < 10:
                    got += await consumer.receive(10, timeout=1)
                by_body = {m.body: m for m in got}
                assert dict(by_body[b"\x00from plain"].headers) == {"x": "1"}
                assert by_body[b"from aio"].id == msg_id
                await by_body[b"from aio"].nack()
                again = await consumer.receive(1, timeout=5)
                assert [m.id for m in again] == [msg_id] and again[0].delivery_count == 2
                await consumer.ack([by_body[b"\x00from plain"], again[0]])
            assert (await c.admin.stats(name, "g")).depth == 0
        finally:
            await c.admin.delete_topic(name)
    sep = "&" if "?" in url else "?"
    async with mqkit.aio.connect(f"{url}{sep}mode=pubsub") as ps:
        await ps.admin.create_topic(name)
        try:
            consumer = ps.consumer(name, "any")
            assert await consumer.receive(1, timeout=0.3) == []
            sent = await ps.producer(name).send(b"ping")
            got = await consumer.receive(1, timeout=3)
            assert [m.id for m in got] == [sent]
            await consumer.close()
        finally:
            await ps.admin.delete_topic(name)
