"""Apache Kafka, one node in KRaft mode, as jars from Maven Central (``scripts/kafka/pom.xml``
pins the version) on the machine's Java with a bounded heap; a PLAINTEXT listener and a
SASL/PLAIN one (user AUTH_USER). Probe: ApiVersions, Metadata (a broker and a controller),
then a SASL login when this broker has the SASL listener."""

from __future__ import annotations

import base64
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

from .config import PORTS, SCRIPTS_DIR, bdir, log, log_path
from .install import run
from .ports import AUTH_PASSWORD, AUTH_USER, HOST, KAFKA_JAAS, auth_url
from .supervisor import Broker, StartError, spawn
from .wire import ProbeError, connect, port_open, recv_exact

POM = SCRIPTS_DIR / "kafka" / "pom.xml"


LOG4J = (
    "log4j.rootLogger=INFO, stdout\n"
    "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
    "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
    "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
    "log4j.logger.kafka=INFO\n"
    "log4j.logger.org.apache.kafka=INFO\n"
    "log4j.logger.state.change.logger=WARN\n"
    "log4j.logger.kafka.request.logger=WARN\n"
)
"""A node's log4j.properties: INFO to stdout (the node's log), the state-change and
request loggers at WARN. Shared with the fault suite's cluster."""


def cluster_id(path: Path) -> str:
    """The KRaft cluster id kept in ``path``; a random one is written the first time."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=") + "\n")
    return path.read_text().strip()


def format_args(cid: str, props: Path) -> list[str]:
    """``kafka.tools.StorageTool`` arguments that format a node's storage once."""
    # "=": an id may begin with "-" (base64url), which argparse would take for an option
    # as a separate argument (1 in 64 ids).
    return ["kafka.tools.StorageTool", "format", "--ignore-formatted",
            f"--cluster-id={cid}", "-c", str(props)]


def version() -> str:
    """The Kafka version the pom pins."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if not match:
        sys.exit(f"brokers: no <kafka.version> in {POM}")
    return match.group(1).strip()


def cache() -> Path:
    """Where the jars are kept (``MQKIT_KAFKA_CACHE``, default ~/.cache/mqkit/kafka-<v>)."""
    default = Path.home() / ".cache" / "mqkit" / f"kafka-{version()}"
    return Path(os.environ.get("MQKIT_KAFKA_CACHE") or default).expanduser()


def lib() -> Path:
    return cache() / "lib"


def install() -> None:
    """Download the jars with Maven into lib/ (atomically: a partial download is redone)."""
    target = lib()
    marker = target / ".complete"
    if marker.exists():
        return
    started = time.monotonic()
    partial = cache() / "lib.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={partial}",
        ],
        what=f"download Kafka {version()} jars",
    )
    if not (partial / f"kafka_2.13-{version()}.jar").exists():
        sys.exit(f"brokers: Maven did not produce kafka_2.13-{version()}.jar in {partial}")
    (partial / ".complete").write_text(version() + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    log(f"Kafka {version()} jars in {target} ({time.monotonic() - started:.0f}s)")


def sasl_configured() -> bool:
    """Whether the Kafka of this home was started with the SASL listener (a broker started
    by an older scripts/brokers has none until it is restarted)."""
    try:
        return "SASL_PLAINTEXT" in (bdir("kafka") / "server.properties").read_text()
    except OSError:
        return False


def _request(sock: socket.socket, api_key: int, api_version: int, body: bytes) -> bytes:
    client_id = b"mqkit-brokers"
    header = struct.pack("!hhih", api_key, api_version, 7, len(client_id)) + client_id
    msg = header + body
    sock.sendall(struct.pack("!i", len(msg)) + msg)
    (size,) = struct.unpack("!i", recv_exact(sock, 4))
    resp = recv_exact(sock, size)
    (correlation,) = struct.unpack("!i", resp[:4])
    if correlation != 7:
        raise ProbeError("Kafka correlation id mismatch")
    return resp[4:]


def _bytes(b: bytes) -> bytes:
    return struct.pack("!i", len(b)) + b


def _string(s: str) -> bytes:
    b = s.encode()
    return struct.pack("!h", len(b)) + b


def probe_sasl(timeout: float = 3.0) -> str | None:
    """On the SASL listener: SaslHandshake v1 for PLAIN, then SaslAuthenticate v0 as
    AUTH_USER; the broker must accept the login."""
    with connect(PORTS["kafka-sasl"], timeout) as sock:
        resp = _request(sock, 17, 1, _string("PLAIN"))
        (error_code,) = struct.unpack("!h", resp[:2])
        if error_code != 0:
            return f"SASL listener: SaslHandshake PLAIN error {error_code}"
        token = b"\0" + AUTH_USER.encode() + b"\0" + AUTH_PASSWORD.encode()
        resp = _request(sock, 36, 0, _bytes(token))
        (error_code, mlen) = struct.unpack("!hh", resp[:4])
        if error_code != 0:
            message = resp[4 : 4 + mlen].decode(errors="replace") if mlen > 0 else ""
            return f"SASL listener: login as {AUTH_USER} refused ({error_code} {message})"
    return None


def probe(timeout: float = 3.0) -> str | None:
    """ApiVersions v0, then Metadata v1: a registered broker and an elected controller;
    then, when this broker has it, a SASL login on the SASL listener."""
    with connect(PORTS["kafka"], timeout) as sock:
        resp = _request(sock, 18, 0, b"")
        (error_code,) = struct.unpack("!h", resp[:2])
        if error_code != 0:
            return f"ApiVersions error {error_code}"
        resp = _request(sock, 3, 1, struct.pack("!i", 0))  # no topics, just brokers
        (n_brokers,) = struct.unpack("!i", resp[:4])
        pos = 4
        for _ in range(n_brokers):
            pos += 4  # node id
            (hlen,) = struct.unpack("!h", resp[pos : pos + 2])
            pos += 2 + hlen + 4  # host, port
            (rlen,) = struct.unpack("!h", resp[pos : pos + 2])
            pos += 2 + max(rlen, 0)  # nullable rack
        (controller_id,) = struct.unpack("!i", resp[pos : pos + 4])
        if n_brokers < 1:
            return "metadata lists no broker yet"
        if controller_id < 0:
            return "no controller yet"
    if sasl_configured():
        return probe_sasl(timeout)
    return None


def java_cmd(main: str, *args: str, heap: bool = True) -> list[str]:
    base = bdir("kafka")
    cmd = ["java"]
    if heap:
        cmd += ["-Xmx512m", "-Xms256m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"]
    else:
        cmd += ["-Xmx256m"]
    cmd += [
        "-Djava.awt.headless=true",
        f"-Dlog4j.configuration=file:{base / 'log4j.properties'}",
        f"-Dkafka.logs.dir={base / 'logs'}",
        "-cp",
        f"{lib()}/*",
        main,
        *args,
    ]
    return cmd


def start() -> None:
    """Write server.properties, format the storage once (a cluster id kept in the home),
    spawn the broker."""
    base = bdir("kafka")
    data = base / "data"
    data.mkdir(parents=True, exist_ok=True)
    (base / "logs").mkdir(exist_ok=True)
    log_path("kafka").parent.mkdir(parents=True, exist_ok=True)
    kafka_port, ctl_port, sasl_port = PORTS["kafka"], PORTS["kafka-controller"], PORTS["kafka-sasl"]
    if port_open(sasl_port):
        raise StartError(f"the SASL listener's port {sasl_port} is taken; choose another "
                         "with MQKIT_BROKERS_KAFKA_SASL_PORT")
    props = base / "server.properties"
    props.write_text(
        "# written by mqkit scripts/brokers: single node, KRaft mode\n"
        "process.roles=broker,controller\n"
        "node.id=1\n"
        f"controller.quorum.voters=1@{HOST}:{ctl_port}\n"
        f"listeners=PLAINTEXT://{HOST}:{kafka_port},CONTROLLER://{HOST}:{ctl_port},"
        f"SASL://{HOST}:{sasl_port}\n"
        f"advertised.listeners=PLAINTEXT://{HOST}:{kafka_port},SASL://{HOST}:{sasl_port}\n"
        "controller.listener.names=CONTROLLER\n"
        "inter.broker.listener.name=PLAINTEXT\n"
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
        "SASL:SASL_PLAINTEXT\n"
        # The SASL listener (clients only, loopback, no TLS): one PLAIN user, AUTH_USER.
        "sasl.enabled.mechanisms=PLAIN\n"
        "listener.name.sasl.sasl.enabled.mechanisms=PLAIN\n"
        f"listener.name.sasl.plain.sasl.jaas.config={KAFKA_JAAS}\n"
        f"log.dirs={data}\n"
        "num.partitions=1\n"
        "default.replication.factor=1\n"
        "offsets.topic.replication.factor=1\n"
        "offsets.topic.num.partitions=10\n"
        "transaction.state.log.replication.factor=1\n"
        "transaction.state.log.min.isr=1\n"
        "group.initial.rebalance.delay.ms=0\n"
        # Tests must create their topics: a typo'd topic is an error, not a silent new topic.
        "auto.create.topics.enable=false\n"
        "delete.topic.enable=true\n"
        "num.recovery.threads.per.data.dir=1\n"
        "log.retention.hours=24\n"
    )
    (base / "log4j.properties").write_text(LOG4J)
    if not (data / "meta.properties").exists():
        proc = subprocess.run(
            java_cmd(*format_args(cluster_id(base / "cluster.id"), props), heap=False),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        with log_path("kafka").open("a") as out:
            out.write(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise StartError(f"kafka storage format failed (exit {proc.returncode})")
    spawn("kafka", java_cmd("kafka.Kafka", str(props)), cwd=base)


def status_note() -> str:
    return (f"; SASL/PLAIN listener on {PORTS['kafka-sasl']}" if sasl_configured()
            else "; no SASL listener: started by an older scripts/brokers")


BROKER = Broker(
    name="kafka",
    start=start,
    probe=probe,
    mark="kafka.Kafka",
    stop_grace=60.0,
    install=install,
    auth_url=lambda: auth_url("kafka", PORTS) if sasl_configured() else None,
    status_note=status_note,
)
