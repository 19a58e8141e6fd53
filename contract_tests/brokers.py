"""Finding a real broker for each backend of the contract suite.

The order (DESIGN.md §7):

1. a URL from the environment, ``MQKIT_TEST_<BACKEND>_URL``;
2. else a container started with testcontainers, when the ``testcontainers`` package is
   installed and a Docker engine answers;
3. else nothing, with a human-readable reason the suite uses to skip, or, for a backend named
   in ``MQKIT_REQUIRE_BACKENDS`` (CI), to fail.

A URL that points at the brokers ``scripts/brokers`` runs on this machine (loopback, the
script's ports) is reported with provider ``"native"``; any other URL from the environment with
provider ``"env"``. Fault injection (:meth:`BrokerHandle.restart` and friends) works for
``"native"`` brokers through ``scripts/brokers``, for containers through Docker, and for
``"env"`` brokers only when ``MQKIT_BROKERS_SCRIPT`` names a script that controls them.

Starting a container takes seconds: call :func:`find_broker` once per backend per test
session (a session-scoped fixture) and :meth:`BrokerHandle.close` at the end.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from .native_brokers import ports as native
from .native_brokers.wire import unrecovered

__all__ = [
    "BACKENDS",
    "CONTAINER_SPECS",
    "NATIVE_DEFAULT_PORTS",
    "BrokerControlError",
    "BrokerHandle",
    "ContainerSpec",
    "Provider",
    "ContainerStartError",
    "AUTH_PASSWORD",
    "AUTH_USER",
    "RUN_LABEL",
    "SESSION_LABEL",
    "session_id",
    "brokers_script",
    "container_run_id",
    "docker_available",
    "image_for",
    "remove_run_containers",
    "find_broker",
    "native_port",
    "required_backends",
    "start_container",
    "testcontainers_installed",
    "unrecovered",
]

BACKENDS: tuple[str, ...] = native.BACKENDS
"""Every backend the contract suite knows, in a stable order."""

Provider = Literal["env", "native", "testcontainers"]

NATIVE_DEFAULT_PORTS: Mapping[str, int] = {b: native.DEFAULT_PORTS[b] for b in BACKENDS}
"""The loopback ports ``scripts/brokers`` uses unless ``MQKIT_BROKERS_<BACKEND>_PORT`` is set
(from its table, :mod:`contract_tests.native_brokers.ports`)."""

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_REPO_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "brokers"
_CONTAINER_READY_TIMEOUT = float(os.environ.get("MQKIT_CONTAINER_READY_TIMEOUT", "180") or 180)
RUN_LABEL = "org.mqkit.run"
"""Docker label on every container the harness starts; its value is :func:`container_run_id`
(shared by the pytest processes of one CI run, for its exit trap)."""
SESSION_LABEL = "org.mqkit.session"
"""Docker label with this process's own id: what :func:`remove_run_containers` removes at the
end of a session, so one process never removes a sibling's containers."""
_LOG_TAIL_LINES = 30
AUTH_USER = native.AUTH_USER
AUTH_PASSWORD = native.AUTH_PASSWORD
"""The user with a password that ``scripts/brokers`` adds natively, added to the containers
whose default URL has none (Redis, NATS, Kafka's SASL listener): contract 58 checks that a
wrong password is refused. Password-less clients keep working (Redis's default user stays
open; NATS maps them to a ``no_auth_user``)."""
_NATS_CONF_PATH = "/etc/mqkit/nats.conf"
_KAFKA_JAAS = native.KAFKA_JAAS
_NATS_CONF = native.NATS_AUTH_CONF.encode()
_SCRIPT_TIMEOUT = 300.0


class BrokerControlError(RuntimeError):
    """A broker could not be stopped, started or restarted (or this handle cannot do that)."""


class ContainerStartError(RuntimeError):
    """A broker container did not become ready; the message names the backend and ends with
    the last lines of the container's log."""


@dataclass(frozen=True)
class ContainerSpec:
    """How testcontainers runs one backend's broker.

    ``ports`` are container ports, the client-facing one first. Each is bound to a free host
    port chosen before start, so a container restart keeps its URL. ``url_template``,
    ``auth_url_template``, ``env`` values and ``command`` items may use ``{host}``,
    ``{port}`` (the host and the host port of the first port) and ``{port1}``, ``{port2}``...
    (the host ports of the others, passed as ``others``). With ``listener_on_host_port`` the
    broker listens inside the container on the *host* port numbers (Kafka: an advertised
    listener must be the address clients use, so both sides share one number).
    """

    backend: str
    image: str
    ports: tuple[int, ...]
    url_template: str
    ready_log: str
    """A regular expression the container logs once it serves clients."""
    env: Mapping[str, str] = field(default_factory=dict)
    command: tuple[str, ...] | None = None
    listener_on_host_port: bool = False
    recovered_command: tuple[str, ...] | None = None
    """Run inside the container after a restart until every line of its output ends in
    ``running`` or ``idle`` (RabbitMQ: queues serve only once recovered, as ``scripts/brokers``
    waits natively). Best effort: a command that fails is not waited for."""
    files: Mapping[str, bytes] = field(default_factory=dict)
    """Files copied into the container (absolute path -> content) before it starts, so the
    official image and mqkit's local one get the same configuration."""
    auth_url_template: str | None = None
    """A URL (``{host}``/``{port}`` as in ``url_template``) whose credentials the broker
    checks, for contract 58; None when the container has no such user."""

    def url(self, host: str, port: int, others: Sequence[int] = ()) -> str:
        """The mqkit URL of this broker once it is reachable at ``host:port``."""
        return self.url_template.format(**_slots(host, port, others))

    def auth_url(self, host: str, port: int, others: Sequence[int] = ()) -> str | None:
        """The credentialed URL (see ``auth_url_template``), or None."""
        if self.auth_url_template is None:
            return None
        return self.auth_url_template.format(**_slots(host, port, others))

    def rendered_env(self, host: str, port: int, others: Sequence[int] = ()) -> dict[str, str]:
        """``env`` with ``{host}``/``{port}``/``{port1}``... filled in."""
        slots = _slots(host, port, others)
        return {k: v.format(**slots) for k, v in self.env.items()}

    def rendered_command(self, host: str, port: int,
                         others: Sequence[int] = ()) -> list[str] | None:
        """``command`` with the slots filled in, or None for the image default."""
        if self.command is None:
            return None
        slots = _slots(host, port, others)
        return [part.format(**slots) for part in self.command]


def _slots(host: str, port: int, others: Sequence[int]) -> dict[str, object]:
    return {"host": host, "port": port, **{f"port{i}": p for i, p in enumerate(others, 1)}}


CONTAINER_SPECS: Mapping[str, ContainerSpec] = {
    "rabbitmq": ContainerSpec(
        backend="rabbitmq",
        image="rabbitmq:3.13-management",
        ports=(5672,),
        url_template=native.URL_TEMPLATES["rabbitmq"],
        auth_url_template=native.URL_TEMPLATES["rabbitmq"],
        ready_log=r"Server startup complete",
        recovered_command=("rabbitmqctl", "-q", "list_queues", "name", "state",
                           "--no-table-headers"),
    ),
    "kafka": ContainerSpec(
        backend="kafka",
        image="apache/kafka:3.9.0",
        # PLAINTEXT for clients, and (as scripts/brokers) a SASL/PLAIN listener with one
        # user, AUTH_USER, for contract 58.
        ports=(9092, 9094),
        url_template=native.URL_TEMPLATES["kafka"],
        auth_url_template=f"kafka://{AUTH_USER}:{AUTH_PASSWORD}@{{host}}:{{port1}}",
        ready_log=r"Kafka Server started",
        listener_on_host_port=True,
        env={
            "KAFKA_NODE_ID": "1",
            "KAFKA_PROCESS_ROLES": "broker,controller",
            "KAFKA_LISTENERS": ("PLAINTEXT://0.0.0.0:{port},CONTROLLER://127.0.0.1:9093,"
                                "SASL://0.0.0.0:{port1}"),
            "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://{host}:{port},SASL://{host}:{port1}",
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": ("CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
                                                     "SASL:SASL_PLAINTEXT"),
            "KAFKA_SASL_ENABLED_MECHANISMS": "PLAIN",
            "KAFKA_LISTENER_NAME_SASL_SASL_ENABLED_MECHANISMS": "PLAIN",
            "KAFKA_LISTENER_NAME_SASL_PLAIN_SASL_JAAS_CONFIG": _KAFKA_JAAS,
            "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
            "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@127.0.0.1:9093",
            "KAFKA_NUM_PARTITIONS": "1",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            # as scripts/brokers: the first group join creates 10 offsets partitions, not 50
            "KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS": "10",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
            "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
            # Same as scripts/brokers: tests create their topics, a missing one is an error.
            "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
            "KAFKA_HEAP_OPTS": "-Xmx512m -Xms256m",
        },
    ),
    "sqs": ContainerSpec(
        backend="sqs",
        image="motoserver/moto:5.0.28",
        ports=(5000,),
        url_template=native.URL_TEMPLATES["sqs"],
        ready_log=r"Running on",
    ),
    "redis": ContainerSpec(
        backend="redis",
        image="redis:7.4",
        ports=(6379,),
        url_template=native.URL_TEMPLATES["redis"],
        auth_url_template=f"redis://{AUTH_USER}:{AUTH_PASSWORD}@{{host}}:{{port}}/0",
        ready_log=r"Ready to accept connections",
        # No persistence, like scripts/brokers: a restart empties it. The default user stays
        # open; AUTH_USER is one more, with a password.
        command=("redis-server", "--save", "", "--appendonly", "no",
                 "--user", AUTH_USER, "on", f">{AUTH_PASSWORD}", "~*", "&*", "+@all"),
    ),
    "nats": ContainerSpec(
        backend="nats",
        image="nats:2.10",
        ports=(4222,),
        url_template=native.URL_TEMPLATES["nats"],
        auth_url_template=f"nats://{AUTH_USER}:{AUTH_PASSWORD}@{{host}}:{{port}}",
        ready_log=r"Server is ready",
        # JetStream with a file store inside the container: it survives a container restart.
        # The config file adds AUTH_USER and maps password-less clients to a no_auth_user.
        command=("-c", _NATS_CONF_PATH, "-js", "-sd", "/data/jetstream"),
        files={_NATS_CONF_PATH: _NATS_CONF},
    ),
}
"""Pinned images for the testcontainers provider, one per backend."""


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")


def image_for(backend: str, environ: Mapping[str, str] | None = None) -> str:
    """The image the testcontainers provider runs for ``backend``.

    ``MQKIT_IMAGE_<BACKEND>`` overrides the pinned official image of :data:`CONTAINER_SPECS`
    (CI sets it to the local images ``scripts/images`` builds). A value with whitespace is a
    :class:`ValueError`, so a broken ``eval`` cannot run something unexpected.
    """
    _check_backend(backend)
    var = f"MQKIT_IMAGE_{backend.upper()}"
    raw = _environ(environ).get(var, "").strip()
    if not raw:
        return CONTAINER_SPECS[backend].image
    if re.search(r"\s", raw):
        raise ValueError(f"{var}={raw!r} is not an image name")
    return raw


_SESSION_ID = f"session-{uuid.uuid4().hex[:12]}"


def container_run_id(environ: Mapping[str, str] | None = None) -> str:
    """The value of :data:`RUN_LABEL` for this process's containers.

    ``MQKIT_CONTAINER_RUN`` when set (CI sets one for all its pytest processes, so its exit
    trap can remove them all), else one random id per process.
    """
    explicit = _environ(environ).get("MQKIT_CONTAINER_RUN", "").strip()
    if explicit:
        return explicit
    return f"mqkit-{_SESSION_ID.removeprefix('session-')}"


def session_id() -> str:
    """This process's own id (random, stable for its lifetime)."""
    return _SESSION_ID


def required_backends(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The backends ``MQKIT_REQUIRE_BACKENDS`` names: for them a missing broker is a failure.

    The value is a comma- (or space-) separated list of backend names, case-insensitive;
    ``all`` means every backend. Unset or empty means none. An unknown name raises
    :class:`ValueError`, so a typo in CI cannot quietly require nothing.
    """
    raw = _environ(environ).get("MQKIT_REQUIRE_BACKENDS", "")
    names = {part.strip().lower() for part in re.split(r"[,\s]+", raw) if part.strip()}
    if "all" in names:
        names.discard("all")
        names.update(BACKENDS)
    unknown = sorted(names.difference(BACKENDS))
    if unknown:
        raise ValueError(
            f"MQKIT_REQUIRE_BACKENDS names unknown backend(s) {', '.join(unknown)}; "
            f"expected a comma list of {', '.join(BACKENDS)} or 'all'"
        )
    return frozenset(names)


def env_url(backend: str, environ: Mapping[str, str] | None = None) -> str:
    """``MQKIT_TEST_<BACKEND>_URL``, for an adapter's own broker tests.

    When it is unset the calling test fails if ``MQKIT_REQUIRE_BACKENDS`` names the backend
    (CI), and is skipped with the reason otherwise.
    """
    import pytest

    _check_backend(backend)
    var = f"MQKIT_TEST_{backend.upper()}_URL"
    url = _environ(environ).get(var)
    if url:
        return url
    if backend in required_backends(environ):
        pytest.fail(f"MQKIT_REQUIRE_BACKENDS names {backend} but {var} is not set")
    pytest.skip(f"no {backend} broker: set {var} (eval \"$(scripts/brokers env)\")")


def testcontainers_installed() -> bool:
    """Whether the optional ``testcontainers`` package can be imported."""
    try:
        import testcontainers.core.container  # noqa: F401
    except ImportError:
        return False
    return True


def docker_available() -> bool:
    """Whether a Docker engine answers a ping within about two seconds.

    Never raises: a missing ``docker`` package, an unset or dead socket, a refused
    permission all mean "no".
    """
    try:
        import docker

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def native_port(backend: str, environ: Mapping[str, str] | None = None) -> int:
    """The port ``scripts/brokers`` runs ``backend`` on (honours its port overrides).

    Raises ``contract_tests.native_brokers.ports.PortValueError`` (a ValueError naming the
    variable) when ``MQKIT_BROKERS_<BACKEND>_PORT`` is set to a non-integer, as the script
    refuses it too."""
    _check_backend(backend)
    return native.read_port(backend, _environ(environ))


def brokers_script(environ: Mapping[str, str] | None = None) -> Path | None:
    """The ``scripts/brokers`` that controls native brokers, if there is one.

    ``MQKIT_BROKERS_SCRIPT`` wins; else the script in the repository this module lives in
    (absent when mqkit is installed from a wheel).
    """
    explicit = _environ(environ).get("MQKIT_BROKERS_SCRIPT", "").strip()
    if explicit:
        return Path(explicit)
    return _REPO_SCRIPT if _REPO_SCRIPT.is_file() else None


def _is_native_url(backend: str, url: str, environ: Mapping[str, str]) -> bool:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return parts.hostname in _LOOPBACK_HOSTS and port == native_port(backend, environ)


@dataclass
class BrokerHandle:
    """A broker the contract suite can use: its mqkit URL and how to disturb it.

    ``stop``/``start``/``restart`` are for fault injection (a broker restart mid-stream);
    ``start`` and ``restart`` return once the broker serves clients again. What survives a
    restart is the broker's business: RabbitMQ durable queues with persistent messages,
    the Kafka log, NATS JetStream file streams and the native Redis (AOF) do; moto and
    the Redis container (no persistence) start empty.
    """

    backend: str
    url: str
    provider: Provider
    script: Path | None = None
    """``scripts/brokers`` for ``native``/``env`` handles that may be controlled."""
    container: Any = field(default=None, repr=False)
    """The testcontainers ``DockerContainer`` for ``testcontainers`` handles."""
    spec: ContainerSpec | None = field(default=None, repr=False)
    python: str = field(default=sys.executable, repr=False)
    auth_url: str | None = field(default=None, repr=False)
    """A URL whose credentials this broker checks (contract 58), when the harness has one:
    containers started from a spec with ``auth_url_template``; None otherwise (natively,
    ``MQKIT_TEST_<BACKEND>_AUTH_URL`` carries it)."""

    @property
    def can_inject_faults(self) -> bool:
        """Whether ``stop``/``start``/``restart`` can work for this broker."""
        if self.provider == "testcontainers":
            return self.container is not None
        return self.script is not None and self.script.is_file()

    def restart(self) -> None:
        """Stop the broker and start it again; returns when it answers again."""
        if self.provider == "testcontainers":
            count = self._ready_count()
            self._wrapped().restart(timeout=30)
            self._wait_ready(count + 1)
        else:
            self._script("restart")

    def stop(self) -> None:
        """Stop the broker (clients see their connections drop)."""
        if self.provider == "testcontainers":
            self._wrapped().stop(timeout=30)
        else:
            self._script("stop")

    def start(self) -> None:
        """Start a stopped broker; returns when it answers again."""
        if self.provider == "testcontainers":
            count = self._ready_count()
            self._wrapped().start()
            self._wait_ready(count + 1)
        else:
            self._script("start")

    def close(self) -> None:
        """Release what this handle started: removes a container; no-op otherwise."""
        if self.provider == "testcontainers" and self.container is not None:
            self.container.stop()
            self.container = None

    # ---- internals ------------------------------------------------------------------------

    def _script(self, verb: str) -> None:
        if not self.can_inject_faults or self.script is None:
            raise BrokerControlError(
                f"cannot {verb} the {self.backend} broker at {self.url}: it was given by "
                f"MQKIT_TEST_{self.backend.upper()}_URL and is not one scripts/brokers runs "
                "(set MQKIT_BROKERS_SCRIPT to a script that controls it)"
            )
        try:
            proc = subprocess.run(
                [self.python, str(self.script), verb, self.backend],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_SCRIPT_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerControlError(
                f"{self.script} {verb} {self.backend} took over {_SCRIPT_TIMEOUT:.0f}s"
            ) from exc
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
            raise BrokerControlError(
                f"{self.script} {verb} {self.backend} failed (exit {proc.returncode}):\n{tail}"
            )

    def _wrapped(self) -> Any:
        if self.container is None:
            raise BrokerControlError(f"the {self.backend} container is gone (closed?)")
        return self.container.get_wrapped_container()

    def _ready_count(self) -> int:
        assert self.spec is not None
        return _count_log_matches(self.container, self.spec.ready_log)

    def _wait_ready(self, times: int) -> None:
        assert self.spec is not None
        deadline = time.monotonic() + _CONTAINER_READY_TIMEOUT
        _wait_for_log(self.container, self.spec.ready_log, times, _CONTAINER_READY_TIMEOUT)
        if self.spec.recovered_command is None:
            return
        while time.monotonic() < deadline:
            code, output = self._wrapped().exec_run(list(self.spec.recovered_command))
            if code != 0:
                return  # best effort, as natively
            if not unrecovered(output.decode(errors="replace")):
                return
            time.sleep(0.5)
        raise BrokerControlError(
            f"the {self.backend} container's queues did not recover within "
            f"{_CONTAINER_READY_TIMEOUT:.0f}s"
        )


def _count_log_matches(container: Any, pattern: str) -> int:
    stdout, stderr = container.get_logs()
    text = (stdout or b"").decode(errors="replace") + (stderr or b"").decode(errors="replace")
    return len(re.findall(pattern, text, re.MULTILINE))


def _wait_for_log(container: Any, pattern: str, times: int, timeout: float) -> None:
    """Wait until ``pattern`` occurred ``times`` times in the container's logs.

    Polls the whole log and counts: after a restart the line must appear once more than
    before (testcontainers' log wait strategy was seen returning on the old boot's line).
    """
    deadline = time.monotonic() + timeout
    while _count_log_matches(container, pattern) < times:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{pattern!r} not seen {times}x in {timeout:.0f}s") from None
        status = _container_status(container)
        if status in ("exited", "dead"):
            # A broker that crashed at start never logs the line: say so now instead of
            # after the whole timeout.
            raise RuntimeError(f"the container {status} before logging {pattern!r}")
        time.sleep(0.25)


def _container_status(container: Any) -> str | None:
    """Docker's status of ``container`` (``running``, ``exited``...), or ``None`` when it
    cannot be asked (then the wait goes on)."""
    try:
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        return str(wrapped.status)
    except Exception:
        return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(container: Any, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        stdout, stderr = container.get_logs()
    except Exception as exc:  # the container may be gone already
        return f"(no logs: {exc})"
    text = (stdout or b"").decode(errors="replace") + (stderr or b"").decode(errors="replace")
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "(the container logged nothing)"


def _local_image_exists(client: Any, image: str) -> bool:
    try:
        client.images.get(image)
    except Exception:
        return False
    return True


def _settle_ryuk(client: Any) -> None:
    """Run without the Ryuk reaper when its image is not on this machine.

    An explicit ``TESTCONTAINERS_RYUK_DISABLED`` is obeyed. Otherwise Ryuk is used only when
    its image exists locally (no registry may be reachable to pull it); without it the harness
    removes its own containers (:func:`remove_run_containers`, called at the end of the run).
    """
    from testcontainers.core.config import testcontainers_config

    if os.environ.get("TESTCONTAINERS_RYUK_DISABLED", "").strip():
        return
    if not _local_image_exists(client, testcontainers_config.ryuk_image):
        testcontainers_config.ryuk_disabled = True


def remove_run_containers(session: str | None = None) -> int:
    """Remove every container this process started (label :data:`SESSION_LABEL`, value
    ``session``, default :func:`session_id`).

    Returns how many were removed. Never raises: it runs at the end of a test run, also after
    a failed one.
    """
    session = session or session_id()
    try:
        import docker

        client = docker.from_env(timeout=30)
    except Exception:
        return 0
    removed = 0
    try:
        found = client.containers.list(all=True, filters={"label": f"{SESSION_LABEL}={session}"})
        for container in found:
            try:
                container.remove(force=True, v=True)
                removed += 1
            except Exception:
                pass
    except Exception:
        pass
    finally:
        client.close()
    return removed


def start_container(spec: ContainerSpec) -> BrokerHandle:
    """Start ``spec``'s image with testcontainers and wait until it serves clients.

    Every container port is bound to a free host port picked beforehand, so a restarted
    container keeps its URL. The container carries :data:`RUN_LABEL`. When it does not become
    ready, it is removed and :class:`ContainerStartError` names the backend and quotes the
    last lines of its log.
    """
    from testcontainers.core.container import DockerContainer

    image = spec.image
    labels = {RUN_LABEL: container_run_id(), SESSION_LABEL: session_id()}
    container = DockerContainer(image, labels=labels)
    client = container.get_docker_client()
    _settle_ryuk(client.client)
    host = client.host()
    host_ports = [_free_port() for _ in spec.ports]
    main_port = host_ports[0]
    others = host_ports[1:]
    for container_port, host_port in zip(spec.ports, host_ports, strict=True):
        inside = host_port if spec.listener_on_host_port else container_port
        container.with_bind_ports(inside, host_port)
    for key, value in spec.rendered_env(host, main_port, others).items():
        container.with_env(key, value)
    command = spec.rendered_command(host, main_port, others)
    if command is not None:
        container.with_command(command)
    for path, data in spec.files.items():
        container.with_copy_into_container(data, path)
    container.start()
    try:
        _wait_for_log(container, spec.ready_log, 1, _CONTAINER_READY_TIMEOUT)
    except BaseException as exc:
        tail = _log_tail(container)
        try:
            container.stop()
        except Exception:
            pass
        if isinstance(exc, Exception):
            raise ContainerStartError(
                f"the {spec.backend} container ({image}) did not log {spec.ready_log!r} within "
                f"{_CONTAINER_READY_TIMEOUT:.0f}s; last lines of its log:\n{tail}"
            ) from exc
        raise
    return BrokerHandle(
        backend=spec.backend,
        url=spec.url(host, main_port, others),
        provider="testcontainers",
        container=container,
        spec=spec,
        auth_url=spec.auth_url(host, main_port, others),
    )


def _no_broker_reason(backend: str, why: str) -> str:
    return (
        f"no {backend} broker: MQKIT_TEST_{backend.upper()}_URL is not set and {why}. "
        'Run `scripts/brokers up` and `eval "$(scripts/brokers env)"`, or start Docker '
        "(see docs/testing.md)"
    )


def find_broker(
    backend: str,
    *,
    environ: Mapping[str, str] | None = None,
    docker_available: Callable[[], bool] | None = None,
    testcontainers_installed: Callable[[], bool] | None = None,
    start_container: Callable[[ContainerSpec], BrokerHandle] | None = None,
) -> BrokerHandle | str:
    """A broker for ``backend``, or the reason (one readable sentence) why there is none.

    Tries ``MQKIT_TEST_<BACKEND>_URL``, then testcontainers if it is installed and a Docker
    engine answers (image: :func:`image_for`). The keyword arguments replace the environment
    and the checks for tests; by default they are ``os.environ`` and this module's functions
    of the same names. It never decides about skipping or failing: see :func:`required_backends`.
    """
    _check_backend(backend)
    env = _environ(environ)
    url = env.get(f"MQKIT_TEST_{backend.upper()}_URL", "").strip()
    if url:
        script = brokers_script(env)
        if _is_native_url(backend, url, env):
            return BrokerHandle(backend=backend, url=url, provider="native", script=script)
        explicit = bool(env.get("MQKIT_BROKERS_SCRIPT", "").strip())
        return BrokerHandle(
            backend=backend, url=url, provider="env", script=script if explicit else None
        )

    installed = testcontainers_installed or _module_testcontainers_installed
    if not installed():
        return _no_broker_reason(backend, "the testcontainers package is not installed")
    answers = docker_available or _module_docker_available
    if not answers():
        return _no_broker_reason(backend, "no Docker engine answers (testcontainers needs one)")
    starter = start_container or _module_start_container
    image = image_for(backend, env)
    spec = replace(CONTAINER_SPECS[backend], image=image)
    try:
        return starter(spec)
    except ContainerStartError as exc:
        return f"no {backend} broker: {exc}"
    except Exception as exc:
        return f"no {backend} broker: testcontainers could not start {image}: {exc}"


# The module-level functions, under names find_broker's keyword arguments do not shadow.
_module_docker_available = docker_available
_module_testcontainers_installed = testcontainers_installed
_module_start_container = start_container
