"""NATS adapter against a real nats-server with JetStream (``MQKIT_TEST_NATS_URL``).

Skipped without a broker, except when ``MQKIT_REQUIRE_BACKENDS`` names nats: then a
missing URL fails. Tests marked ``broker_restart`` restart the broker with
``scripts/brokers restart nats``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

import nats
import nats.errors as ne
import pytest
from mqkit_nats._banded import BandedSubscription
from mqkit_nats._consumer import PullSubscription
from nats.aio.client import Client as NATS
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext, api

import mqkit
import mqkit.aio

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
async def client(url: str, name: str) -> AsyncIterator[mqkit.aio.Client]:
    async with mqkit.aio.connect(url) as c:
        try:
            yield c
        finally:
            for topic in (name, name + ".dlq"):
                await c.admin.delete_topic(topic)


async def _collect(consumer: mqkit.aio.Consumer, n: int, timeout: float = 10.0,
                   ack: bool = True) -> list[mqkit.aio.ReceivedMessage]:
    got: list[mqkit.aio.ReceivedMessage] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        batch = await consumer.receive(50, 0.5)
        if ack and batch:
            await consumer.ack(batch)
        got.extend(batch)
    return got


def _ids(messages: Iterable[mqkit.aio.ReceivedMessage | mqkit.ReceivedMessage]) -> list[str]:
    """The sorted ids of ``messages``; every message received through mqkit has one."""
    ids = [m.id for m in messages]
    assert None not in ids, ids
    return sorted(i for i in ids if i is not None)


# -- interop with plain nats-py ---------------------------------------------------------

async def test_plain_client_writes_mqkit_reads(client: mqkit.aio.Client, url: str,
                                               name: str) -> None:
    await client.admin.create_topic(name)
    await client.admin.create_group(name, "g")
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        ack = await js.publish(name, b"\x00plain\xff", headers={
            "Nats-Msg-Id": "plain-1", "tenant": "a", "Content-Type": "text/plain",
            "mqkit-correlation-id": "corr"})
        assert ack.stream == f"MQKIT_{name.replace('.', '_')}"
        await js.publish(name, b"no id")  # no Nats-Msg-Id: id from stream + sequence
    finally:
        await nc.close()
    async with client.consumer(name, "g") as consumer:
        got = await _collect(consumer, 2)
    first, second = sorted(got, key=lambda m: m.body != b"\x00plain\xff")
    assert first.body == b"\x00plain\xff" and first.id == "plain-1"
    assert dict(first.headers) == {"tenant": "a"}
    assert first.content_type == "text/plain" and first.correlation_id == "corr"
    assert second.body == b"no id" and second.id == f"MQKIT_{name}.2"


async def test_mqkit_writes_plain_client_reads(client: mqkit.aio.Client, url: str,
                                               name: str) -> None:
    await client.admin.create_topic(name)
    async with client.producer(name) as producer:
        msg_id = await producer.send(b"from mqkit", key="k1", headers={"x-trace": "t1"},
                                     correlation_id="c1", reply_to="replies",
                                     content_type="application/octet-stream")
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(name, durable="plain", stream=f"MQKIT_{name}",
                                      config=api.ConsumerConfig(
                                          deliver_policy=api.DeliverPolicy.ALL))
        [msg] = await sub.fetch(1, timeout=5)
        await msg.ack()
    finally:
        await nc.close()
    assert msg.subject == name and msg.data == b"from mqkit"
    assert msg.headers == {
        "Nats-Msg-Id": msg_id, "x-trace": "t1", "mqkit-key": "k1",
        "mqkit-correlation-id": "c1", "mqkit-reply-to": "replies",
        "Content-Type": "application/octet-stream"}


async def test_stream_prefix_is_configurable(url: str, name: str) -> None:
    async with mqkit.aio.connect(url, stream_prefix="APP_") as c:
        await c.admin.create_topic(name)
        try:
            nc = await nats.connect(url)
            try:
                info = await nc.jetstream().stream_info(f"APP_{name}")
                assert info.config.subjects == [name]
            finally:
                await nc.close()
            assert name in await c.admin.list_topics()
        finally:
            await c.admin.delete_topic(name)


# -- JetStream semantics ------------------------------------------------------------------

async def test_dedup_by_message_id(client: mqkit.aio.Client, name: str) -> None:
    await client.admin.create_topic(name)
    await client.admin.create_group(name, "g")
    async with client.producer(name) as producer:
        await producer.send(b"one", id="same-id")
        await producer.send(b"two", id="same-id")
    assert (await client.admin.stats(name, "g")).depth == 1


async def test_nack_delay_is_honoured(client: mqkit.aio.Client, name: str) -> None:
    await client.admin.create_topic(name)
    await client.admin.create_group(name, "g")
    await client.producer(name).send(b"later")
    async with client.consumer(name, "g", lease=30) as consumer:
        [msg] = await _collect(consumer, 1, ack=False)
        await msg.nack(delay=1.5)
        start = time.monotonic()
        assert await consumer.receive(1, 1.0) == []
        [again] = await _collect(consumer, 1)
        assert time.monotonic() - start >= 1.4
        assert again.id == msg.id and again.delivery_count == 2


async def test_extend_lease_keeps_message_from_others(client: mqkit.aio.Client,
                                                      name: str) -> None:
    await client.admin.create_topic(name)
    await client.admin.create_group(name, "g")
    await client.producer(name).send(b"slow")
    async with client.consumer(name, "g", lease=1.0) as holder, \
            client.consumer(name, "g", lease=1.0) as other:
        [msg] = await _collect(holder, 1, ack=False)
        for _ in range(5):  # 2.5 s, well past the 1 s AckWait
            await holder.extend_lease([msg], 1.0)
            assert await other.receive(1, 0.5) == []
        await msg.ack()
    assert (await client.admin.stats(name, "g")).depth == 0


async def test_purge_empties_one_group_only(client: mqkit.aio.Client, name: str) -> None:
    await client.admin.create_topic(name)
    await client.admin.create_group(name, "a")
    await client.admin.create_group(name, "b")
    await client.producer(name).send_batch([b"1", b"2", b"3"])
    await client.admin.purge(name, "a")
    assert (await client.admin.stats(name, "a")).depth == 0
    assert (await client.admin.stats(name, "b")).depth == 3
    await client.producer(name).send(b"after")
    async with client.consumer(name, "a") as consumer:
        assert [m.body for m in await _collect(consumer, 1)] == [b"after"]


async def test_group_names_with_dots_and_stream_collisions(client: mqkit.aio.Client,
                                                           name: str) -> None:
    await client.admin.create_topic(name)
    await client.admin.create_group(name, "billing.v2")
    assert await client.admin.list_groups(name) == ["billing.v2"]
    dotted, underscored = f"{name}.x", f"{name}_x"
    await client.admin.create_topic(dotted)
    try:
        with pytest.raises(mqkit.AlreadyExists, match="share a stream name"):
            await client.admin.create_topic(underscored)
        assert not await client.admin.topic_exists(underscored)
    finally:
        await client.admin.delete_topic(dotted)


async def test_slow_consumer_is_raised_on_next_receive(client: mqkit.aio.Client,
                                                       name: str) -> None:
    await client.admin.create_topic(name)
    async with client.consumer(name, "g") as consumer:
        await consumer.receive(1, 0.1)
        mapped = consumer._driver  # opened by the receive above
        assert mapped is not None
        banded = mapped._inner  # under the connection's error mapping
        assert isinstance(banded, BandedSubscription)
        driver = banded._plain  # the topic's stream (it has no priority band)
        assert isinstance(driver, PullSubscription) and driver._sub is not None
        sub = driver._sub
        await driver._link.on_error(ne.SlowConsumerError(
            subject=name, reply="", sid=sub._id, sub=sub))
        with pytest.raises(mqkit.BackendError, match="slow consumer"):
            await consumer.receive(1, 0.1)
        assert await consumer.receive(1, 0.1) == []  # reported once


async def test_send_to_deleted_topic_is_not_found(client: mqkit.aio.Client,
                                                  name: str) -> None:
    await client.admin.create_topic(name)
    async with client.producer(name) as producer:
        await producer.send(b"ok")
        await client.admin.delete_topic(name)
        with pytest.raises(mqkit.NotFound):
            await producer.send(b"a")
        with pytest.raises(mqkit.SendBatchError) as info:
            await producer.send_batch([b"a", b"b"])
        assert all(isinstance(e, mqkit.NotFound) for e in info.value.failures.values())


async def test_partial_batch_failure_names_entries(client: mqkit.aio.Client, url: str,
                                                   name: str) -> None:
    nc = await nats.connect(url)
    try:  # a stream in mqkit's naming that refuses messages past 3
        await nc.jetstream().add_stream(name=f"MQKIT_{name}", subjects=[name], max_msgs=3,
                                        discard=api.DiscardPolicy.NEW)
    finally:
        await nc.close()
    async with client.producer(name) as producer:
        with pytest.raises(mqkit.SendBatchError) as info:
            await producer.send_batch([b"0", b"1", b"2", b"3", b"4"])
    assert sorted(info.value.failures) == [3, 4]
    assert all(isinstance(e.__cause__, Exception) for e in info.value.failures.values())


async def test_as_gives_native_objects(client: mqkit.aio.Client, name: str) -> None:
    assert isinstance(client.as_(NATS), NATS)
    await client.admin.create_topic(name)
    await client.admin.create_group(name, "g")
    producer, consumer = client.producer(name), client.consumer(name, "g")
    assert producer.as_(JetStreamContext) is None and consumer.as_(Subscription) is None
    await producer.send(b"x")
    assert await consumer.receive(1, 5.0)
    assert isinstance(producer.as_(JetStreamContext), JetStreamContext)
    assert isinstance(consumer.as_(Subscription), Subscription)
    await consumer.close()
    await producer.close()
    assert producer.as_(JetStreamContext) is None and consumer.as_(Subscription) is None


def test_as_on_the_blocking_face(url: str, name: str) -> None:
    with mqkit.connect(url) as c:
        c.admin.create_topic(name)
        c.admin.create_group(name, "g")
        with c.producer(name) as producer, c.consumer(name, "g") as consumer:
            producer.send(b"x")
            assert consumer.receive(1, 5.0)
            assert isinstance(consumer.as_(Subscription), Subscription)
            assert isinstance(producer.as_(NATS), NATS)
        c.admin.delete_topic(name)


# -- core NATS -------------------------------------------------------------------------

async def test_core_mode_groups_and_queue_groups(url: str, name: str) -> None:
    async with mqkit.aio.connect(url, mode="core") as c:
        assert c.capabilities.delivery == "at-most-once"
        async with c.consumer(name, "a") as a1, c.consumer(name, "a") as a2, \
                c.consumer(name, "b") as b:
            ids = await c.producer(name).send_batch(
                [mqkit.Message(bytes([i]), headers={"i": str(i)}) for i in range(20)])
            got_b = await _collect(b, 20, timeout=5)
            got_a: list[mqkit.aio.ReceivedMessage] = []
            deadline = time.monotonic() + 5
            while len(got_a) < 20 and time.monotonic() < deadline:
                for member in (a1, a2):
                    batch = await member.receive(50, 0.1)
                    await member.ack(batch)
                    got_a.extend(batch)
            assert _ids(got_b) == sorted(ids)
            assert _ids(got_a) == sorted(ids)  # split, nothing twice
            assert all(m.headers["i"] == str(m.body[0]) for m in got_b)
            await c.producer(name).send(b"x")
            [msg] = await _collect(b, 1, ack=False)
            with pytest.raises(mqkit.Unsupported):
                await msg.nack()


def test_sync_face_round_trip(url: str, name: str) -> None:
    with mqkit.connect(url) as c:
        try:
            c.admin.create_topic(name)
            c.admin.create_group(name, "g")
            ids = c.producer(name).send_batch([b"a", b"b", b"c"])
            with c.consumer(name, "g") as consumer:
                got: list[mqkit.ReceivedMessage] = []
                deadline = time.monotonic() + 10
                while len(got) < 3 and time.monotonic() < deadline:
                    batch = consumer.receive(10, 1.0)
                    consumer.ack(batch)
                    got.extend(batch)
            assert _ids(got) == sorted(ids)
            assert c.admin.stats(name, "g").depth == 0
        finally:
            c.admin.delete_topic(name)


# -- broker restart ---------------------------------------------------------------------

def _restart() -> None:
    subprocess.run([str(ROOT / "scripts" / "brokers"), "restart", "nats"], check=True,
                   timeout=300)


@pytest.mark.broker_restart
def test_recovers_after_broker_restart(url: str, name: str) -> None:
    with mqkit.connect(url) as client:
        client.admin.create_topic(name)
        client.admin.create_group(name, "g")
        producer = client.producer(name)
        consumer = client.consumer(name, "g", prefetch=10, lease=5.0)
        sent = producer.send_batch([mqkit.Message(f"a{i}".encode()) for i in range(50)])
        held = consumer.receive(5, 5)  # unacked across the restart: must come back
        assert held
        errors: list[BaseException] = []
        stop = threading.Event()

        def keep_sending() -> None:
            i = 0
            while not stop.is_set():
                try:
                    sent.extend(producer.send_batch([f"b{i}".encode(), f"c{i}".encode()]))
                except mqkit.MQError as exc:
                    errors.append(exc)
                i += 1
                time.sleep(0.01)

        sender = threading.Thread(target=keep_sending)
        sender.start()
        try:
            _restart()
            time.sleep(1.0)
        finally:
            stop.set()
            sender.join()
        received: set[str] = set()
        deadline = time.monotonic() + 60
        while not set(sent) <= received and time.monotonic() < deadline:
            try:
                batch = consumer.receive(100, 0.5)
                consumer.ack(batch)
                received.update(m.id for m in batch if m.id)
            except mqkit.Unavailable:
                time.sleep(0.2)
        try:
            consumer.ack(held)
        except mqkit.MQError:
            pass  # held across a reconnect: the ack may find the message redelivered
        nc = client.as_(NATS)
        assert nc is not None and nc.stats["reconnects"] >= 1  # the restart happened
        producer.close()
        consumer.close()
        client.admin.delete_topic(name)
    assert set(sent) <= received, len(set(sent) - received)
    assert {m.id for m in held} <= received  # unacked before the restart: came back
    assert all(isinstance(e, mqkit.Unavailable | mqkit.SendBatchError) for e in errors), errors


class _PrivateServer:
    """A nats-server with JetStream of this test's own, on a free port with its store in
    ``path`` (the shared broker is never restarted for these tests)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        self.proc = subprocess.Popen(
            [binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.5) as sock:
                if sock.recv(4).startswith(b"INFO"):
                    return
            time.sleep(0.05)
        raise RuntimeError("private nats-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def private(tmp_path: Path) -> Iterator[_PrivateServer]:
    server = _PrivateServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _until_disconnected(nc: NATS) -> None:
    for _ in range(100):
        if not nc.is_connected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the client never saw the broker go")


async def test_calls_while_reconnecting_wait_for_the_restarted_broker(
        private: _PrivateServer, name: str) -> None:
    """Opening a topic, sending, admin calls and a receive made while the client
    reconnects wait for the broker to be back instead of failing at once (contract 37 on
    a container restart, where the first call came before the client had reconnected)."""
    async with mqkit.aio.connect(private.url, connect_timeout=10) as c:
        await c.admin.create_topic(name)
        await c.admin.create_group(name, "g")
        first = await c.producer(name).send(b"before")
        nc = c.as_(NATS)
        assert nc is not None
        private.stop()
        await _until_disconnected(nc)
        loop = asyncio.get_running_loop()
        # the broker comes back 1.5 s later, on the same port and store
        def restart_later() -> None:
            time.sleep(1.5)
            private.start()

        restarted = loop.run_in_executor(None, restart_later)
        start = time.monotonic()
        second = await c.producer(name).send(b"after")  # opens the topic: waits
        waited = time.monotonic() - start
        await restarted
        assert 1.0 < waited < 10, f"waited {waited:.1f} s"
        assert name in await c.admin.list_topics()
        async with c.consumer(name, "g") as consumer:
            got: list[mqkit.aio.ReceivedMessage] = []
            deadline = time.monotonic() + 10
            while len(got) < 2 and time.monotonic() < deadline:
                got += await consumer.receive(10, timeout=1)
            await consumer.ack(got)
        assert {m.id for m in got} == {first, second}
        assert nc.stats["reconnects"] >= 1
        await c.admin.delete_topic(name)


@pytest.mark.parametrize("call", ["open topic", "list topics", "receive"])
async def test_calls_while_broker_stays_down_are_unavailable_after_the_timeout(
        private: _PrivateServer, name: str, call: str) -> None:
    """A broker that does not come back: Unavailable naming the call once the connect
    timeout (a receive: its own timeout) has passed; not at once, not later."""
    async with mqkit.aio.connect(private.url, connect_timeout=2) as c:
        await c.admin.create_topic(name)
        consumer = c.consumer(name, "g")
        await consumer.receive(1, timeout=0.1)
        nc = c.as_(NATS)
        assert nc is not None
        private.stop()
        await _until_disconnected(nc)
        start = time.monotonic()
        with pytest.raises(mqkit.Unavailable, match="still reconnecting") as info:
            if call == "open topic":
                await c.producer(name + "-other").send(b"x")
            elif call == "list topics":
                await c.admin.list_topics()
            else:
                await consumer.receive(1, timeout=1.0)
        took = time.monotonic() - start
        expected = 1.0 if call == "receive" else 2.0
        assert expected - 0.2 < took < expected + 1.5, f"{call}: {took:.1f} s ({info.value})"
        with contextlib.suppress(mqkit.MQError):
            await consumer.close(timeout=0.5)
