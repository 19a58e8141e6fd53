"""Failover between the hosts of a RabbitMQ URL, against the real broker
(``MQKIT_TEST_RABBITMQ_URL``): the first host is a TCP proxy to the broker; when the proxy
dies (every connection reset, the port refused, as a dead node looks), sends and receives
go on through the second host, nothing confirmed lost."""

from __future__ import annotations

import socket
import time
import urllib.parse
import uuid

import mqkit
from contract_tests.brokers import env_url
from fault_tests.tcpcut import TcpCut


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_a_dead_first_host_fails_over_to_the_next() -> None:
    url = urllib.parse.urlsplit(env_url("rabbitmq"))
    assert url.port is not None and url.hostname is not None
    proxy = TcpCut(_free_port(), url.port).start()
    auth = url.netloc.rsplit("@", 1)[0] + "@" if "@" in url.netloc else ""
    cluster = (f"{url.scheme}://{auth}127.0.0.1:{proxy.listen_port},"
               f"{url.hostname}:{url.port}{url.path or '/%2F'}")
    topic = f"fo-{uuid.uuid4().hex[:8]}"
    try:
        with mqkit.connect(cluster, connect_timeout=5.0) as client:
            client.admin.create_topic(topic)
            client.admin.create_group(topic, "g")
            with client.producer(topic) as producer, client.consumer(topic, "g") as consumer:
                for n in range(5):
                    producer.send(f"m{n}".encode())
                assert proxy.open_connections > 0  # the first host carries them
                proxy.close()  # the first node dies
                started = time.monotonic()
                for n in range(5, 10):
                    producer.send(f"m{n}".encode())
                failover = time.monotonic() - started
                got: set[bytes] = set()
                deadline = time.monotonic() + 30
                while len(got) < 10 and time.monotonic() < deadline:
                    for msg in consumer.receive(max_messages=10, timeout=1.0):
                        got.add(msg.body)
                        msg.ack()
            client.admin.delete_topic(topic)
        assert got == {f"m{n}".encode() for n in range(10)}
        assert failover < 10.0
    finally:
        proxy.close()
