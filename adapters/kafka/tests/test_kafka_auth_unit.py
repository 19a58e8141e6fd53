"""Kafka: SASL and authorization failures map to PermissionDenied (never retried).

The connect tests run against a fake broker on loopback that speaks just enough of the
protocol (ApiVersions, SaslHandshake, SaslAuthenticate) and, like Kafka, answers a refused
login and closes the connection at once: the answer and the close reach the client
together, which kafka-python's own transport turned into a plain disconnect (retried
until the connect timeout, then Unavailable).
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import struct
import threading
import time
from collections.abc import Iterator

import kafka.errors as ke
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.net.manager import KafkaConnectionManager
from kafka.net.transport import KafkaSSLTransport, KafkaTCPTransport
from mqkit_kafka._errors import map_error, mapped
from mqkit_kafka._net import (
    AuthAwareManager,
    _data_before_eof,
    broker_connected,
    group_state,
    has_fatal_error,
)

import mqkit


@pytest.mark.parametrize("cls", [
    ke.SaslAuthenticationFailedError,
    ke.AuthorizationError,
    ke.TopicAuthorizationFailedError,
    ke.GroupAuthorizationFailedError,
    ke.ClusterAuthorizationFailedError,
    ke.TransactionalIdAuthorizationFailedError,
])
def test_auth_errors_are_permission_denied(cls: type[Exception]) -> None:
    err = map_error(cls("refused"), "connect")
    assert type(err) is mqkit.PermissionDenied
    assert str(err).startswith("kafka: connect: ")


def test_cause_kept_and_connection_errors_unchanged() -> None:
    native = ke.KafkaConnectionError("down")
    with pytest.raises(mqkit.Unavailable) as info, mapped("send"):
        raise native
    assert info.value.__cause__ is native


# -- the transport fix, alone --------------------------------------------------------------

def test_bytes_read_before_the_close_are_delivered_and_the_close_comes_next() -> None:
    eof = ke.KafkaConnectionError("socket disconnected")
    reads = iter([(b"answer", eof), (b"", eof)])
    recv = _data_before_eof(lambda: next(reads))
    assert recv() == (b"answer", None)
    assert recv() == (b"", eof)


def test_reads_without_both_pass_unchanged() -> None:
    err = ke.KafkaConnectionError("x")
    reads: list[tuple[bytes, Exception | None]] = [(b"data", None), (b"", err), (b"", None)]
    for read in reads:
        assert _data_before_eof(itertools.repeat(read).__next__)() == read


def _private(obj: object, name: str) -> object:
    assert hasattr(obj, name), f"kafka-python's {type(obj).__name__} has no {name} any more"
    return getattr(obj, name)


def test_the_kafka_python_internals_it_extends_are_there() -> None:
    """AuthAwareManager overrides these, has_fatal_error reads a producer's
    ``_transaction_manager`` and group_state a consumer's ``_coordinator`` (mqkit_kafka._net,
    the adapter's one module of kafka-python privates); a kafka-python without them must
    fail here, naming the attribute. The clients are made without a broker (a port nothing
    listens on; api_version given, so none is asked)."""
    for name in ("_connect", "_build_transport", "maybe_raise_auth_failure"):
        assert callable(getattr(KafkaConnectionManager, name)), name
    assert issubclass(AuthAwareManager, KafkaConnectionManager)
    for transport in (KafkaTCPTransport, KafkaSSLTransport):
        assert callable(transport._sock_recv)

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{unused.getsockname()[1]}"
    for idempotent in (True, False):
        producer = KafkaProducer(bootstrap_servers=nowhere, api_version=(2, 8),
                                 enable_idempotence=idempotent)
        try:
            # kafka-python makes a transaction manager only for an idempotent producer.
            manager = _private(producer, "_transaction_manager")
            assert (manager is not None) is idempotent
            assert has_fatal_error(producer) is False
            if idempotent:
                _private(manager, "transition_to_fatal_error")
                manager.transition_to_fatal_error(ke.KafkaError("fatal"))  # type: ignore[attr-defined]
                assert has_fatal_error(producer) is True
        finally:
            producer.close(timeout=0)
    consumer = KafkaConsumer(bootstrap_servers=nowhere, api_version=(2, 8), group_id="g")
    try:
        _private(_private(consumer, "_coordinator"), "state")
        assert group_state(consumer) == "<unjoined>"
        client = _private(consumer, "_client")
        _private(client, "connected")
        _private(_private(client, "cluster"), "brokers")
        assert broker_connected(consumer) is False  # no broker known, none connected
    finally:
        consumer.close(autocommit=False)


# -- a fake broker -------------------------------------------------------------------------

_API_VERSIONS, _SASL_HANDSHAKE, _SASL_AUTHENTICATE = 18, 17, 36
_ADVERTISED = ((_API_VERSIONS, 0, 4), (_SASL_HANDSHAKE, 0, 1), (_SASL_AUTHENTICATE, 0, 0))
PASSWORD = "not-the-password"


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        if n < 0x80:
            return bytes(out + bytes([n]))
        out.append((n & 0x7F) | 0x80)
        n >>= 7


def _api_versions(version: int) -> bytes:
    if version >= 3:  # flexible: compact array, tagged fields
        keys = b"".join(struct.pack("!hhh", *k) + b"\0" for k in _ADVERTISED)
        return (struct.pack("!h", 0) + _uvarint(len(_ADVERTISED) + 1) + keys
                + struct.pack("!i", 0) + b"\0")
    keys = b"".join(struct.pack("!hhh", *k) for k in _ADVERTISED)
    tail = struct.pack("!i", 0) if version >= 1 else b""
    return struct.pack("!hi", 0, len(_ADVERTISED)) + keys + tail


def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _serve_one(conn: socket.socket, answer_login: bool, logins: list[bytes]) -> None:
    with conn:
        while True:
            head = _recv_exact(conn, 4)
            if head is None:
                return
            frame = _recv_exact(conn, struct.unpack("!i", head)[0])
            if frame is None:
                return
            api_key, version, correlation = struct.unpack("!hhi", frame[:8])
            if api_key == _API_VERSIONS:
                body = _api_versions(version)
            elif api_key == _SASL_HANDSHAKE:
                body = struct.pack("!hih", 0, 1, 5) + b"PLAIN"
            elif api_key == _SASL_AUTHENTICATE:
                logins.append(frame)
                if not answer_login:
                    return  # close without a word
                message = b"Authentication failed: Invalid username or password"
                body = struct.pack("!hh", 58, len(message)) + message + struct.pack("!i", 0)
            else:
                return
            reply = struct.pack("!i", correlation) + body
            conn.sendall(struct.pack("!i", len(reply)) + reply)
            if api_key == _SASL_AUTHENTICATE:  # Kafka closes right after refusing
                conn.shutdown(socket.SHUT_RDWR)
                return


@contextlib.contextmanager
def fake_broker(*, answer_login: bool = True) -> Iterator[tuple[int, list[bytes]]]:
    """A loopback listener: (port, the SaslAuthenticate frames it got)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    logins: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            threading.Thread(target=_serve_one, args=(conn, answer_login, logins),
                             daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], logins
    finally:
        stop.set()
        thread.join(2)
        listener.close()


def test_refused_login_is_permission_denied_at_once_every_time() -> None:
    with fake_broker() as (port, logins):
        url = f"kafka://mqkit:{PASSWORD}@127.0.0.1:{port}"
        for attempt in range(5):
            start = time.monotonic()
            with pytest.raises(mqkit.PermissionDenied) as info:
                mqkit.connect(url, connect_timeout=10)
            took = time.monotonic() - start
            assert took < 2.0, f"attempt {attempt}: PermissionDenied after {took:.1f} s"
            assert isinstance(info.value.__cause__, ke.SaslAuthenticationFailedError)
            assert "Invalid username or password" in str(info.value)
            assert PASSWORD not in str(info.value) and PASSWORD not in repr(info.value)
        assert len(logins) == 5, "each connect logs in once: a refused login is not retried"
        assert all(PASSWORD.encode() in frame for frame in logins)


def test_refused_connect_leaves_no_network_thread() -> None:
    with fake_broker() as (port, _):
        url = f"kafka://mqkit:{PASSWORD}@127.0.0.1:{port}"
        with pytest.raises(mqkit.PermissionDenied):
            mqkit.connect(url, connect_timeout=10)
        before = threading.active_count()
        for _ in range(3):
            with pytest.raises(mqkit.PermissionDenied):
                mqkit.connect(url, connect_timeout=10)
        deadline = time.monotonic() + 2
        while threading.active_count() > before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert threading.active_count() <= before


def test_a_close_without_an_answer_is_still_retried_then_unavailable() -> None:
    """Only a refusal the broker states is final; a dropped connection stays transient."""
    with fake_broker(answer_login=False) as (port, logins):
        start = time.monotonic()
        with pytest.raises(mqkit.Unavailable) as info:
            mqkit.connect(f"kafka://mqkit:{PASSWORD}@127.0.0.1:{port}", connect_timeout=1.5)
        assert not isinstance(info.value, mqkit.PermissionDenied)
        assert time.monotonic() - start >= 1.4
        assert len(logins) >= 2, "retried"
