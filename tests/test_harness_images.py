"""The harness's image overrides, run ids and the error of a container that never gets ready."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from contract_tests import brokers
from contract_tests.brokers import (
    BACKENDS,
    CONTAINER_SPECS,
    BrokerHandle,
    ContainerSpec,
    ContainerStartError,
    container_run_id,
    find_broker,
    image_for,
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_default_is_the_pinned_official_image(backend: str) -> None:
    assert image_for(backend, {}) == CONTAINER_SPECS[backend].image
    assert not image_for(backend, {}).startswith("mqkit-local/")


def test_override_per_backend() -> None:
    env = {"MQKIT_IMAGE_REDIS": " mqkit-local/redis:abc ", "MQKIT_IMAGE_NATS": ""}
    assert image_for("redis", env) == "mqkit-local/redis:abc"
    assert image_for("nats", env) == CONTAINER_SPECS["nats"].image
    assert image_for("kafka", env) == CONTAINER_SPECS["kafka"].image


def test_override_with_whitespace_is_an_error() -> None:
    with pytest.raises(ValueError, match="MQKIT_IMAGE_SQS"):
        image_for("sqs", {"MQKIT_IMAGE_SQS": "a b"})


def test_unknown_backend() -> None:
    with pytest.raises(ValueError):
        image_for("mqtt", {})


def test_run_id_explicit_or_stable_per_process() -> None:
    assert container_run_id({"MQKIT_CONTAINER_RUN": "ci-1"}) == "ci-1"
    first = container_run_id({})
    assert first == container_run_id({}) and first.startswith("mqkit-")


def test_find_broker_starts_the_overridden_image() -> None:
    seen: list[ContainerSpec] = []

    def start(spec: ContainerSpec) -> BrokerHandle:
        seen.append(spec)
        return BrokerHandle(backend=spec.backend, url="redis://h:1/0", provider="testcontainers")

    handle = find_broker(
        "redis",
        environ={"MQKIT_IMAGE_REDIS": "mqkit-local/redis:x"},
        testcontainers_installed=lambda: True,
        docker_available=lambda: True,
        start_container=start,
    )
    assert isinstance(handle, BrokerHandle)
    assert [s.image for s in seen] == ["mqkit-local/redis:x"]
    assert seen[0].ports == CONTAINER_SPECS["redis"].ports


def test_never_ready_names_backend_and_log_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    def never_ready(spec: ContainerSpec) -> BrokerHandle:
        raise ContainerStartError(
            f"the {spec.backend} container ({spec.image}) did not log ...; last lines of its "
            "log:\nboom: cannot bind"
        )

    reason = find_broker(
        "nats",
        environ={},
        testcontainers_installed=lambda: True,
        docker_available=lambda: True,
        start_container=never_ready,
    )
    assert isinstance(reason, str)
    assert reason.startswith("no nats broker: the nats container")
    assert reason.endswith("boom: cannot bind")


class _FakeContainer:
    def get_logs(self) -> tuple[bytes, bytes]:
        lines = "".join(f"line {i}\n" for i in range(100))
        return lines.encode(), b"last words\n"


def test_log_tail_keeps_the_last_lines() -> None:
    container: Any = _FakeContainer()
    tail = brokers._log_tail(container, lines=3)
    assert tail.splitlines() == ["line 98", "line 99", "last words"]


def test_unrecovered_queues() -> None:
    listing = "q1\trunning\nq2\tdown\nq3 idle\n\nq4\tminority\n"
    assert brokers.unrecovered(listing) == ["q2", "q4"]
    assert brokers.unrecovered("") == []


def test_session_id_is_per_process_and_apart_from_the_run() -> None:
    sid = brokers.session_id()
    assert sid == brokers.session_id() and sid.startswith("session-")
    assert container_run_id({"MQKIT_CONTAINER_RUN": "ci-1"}) == "ci-1"


def test_container_auth_user_is_the_native_one() -> None:
    from contract_tests.native_brokers import ports, redis

    assert (brokers.AUTH_USER, brokers.AUTH_PASSWORD) == (ports.AUTH_USER, ports.AUTH_PASSWORD)
    cmd = redis.command()  # what scripts/brokers runs natively
    i = cmd.index("--user")
    assert cmd[i + 1:i + 4] == [brokers.AUTH_USER, "on", f">{brokers.AUTH_PASSWORD}"]


@pytest.mark.parametrize("backend", ["rabbitmq", "redis", "nats", "kafka"])
def test_containers_with_a_checked_login_carry_an_auth_url(backend: str) -> None:
    spec = CONTAINER_SPECS[backend]
    others = tuple(range(1235, 1235 + len(spec.ports) - 1))
    url = spec.auth_url("h", 1234, others)
    # Kafka's login is on its own listener (the second port), as natively
    assert url is not None and f"h:{others[0] if others else 1234}" in url
    assert url.split("://")[0] == spec.url("h", 1234, others).split("://")[0]
    if backend != "rabbitmq":
        assert f"{brokers.AUTH_USER}:{brokers.AUTH_PASSWORD}@" in url


def test_sqs_container_has_no_checked_login() -> None:
    assert CONTAINER_SPECS["sqs"].auth_url("h", 1) is None


def test_kafka_container_sasl_listener_is_the_native_one() -> None:
    env = CONTAINER_SPECS["kafka"].rendered_env("h", 1, (2,))
    assert "SASL:SASL_PLAINTEXT" in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert env["KAFKA_LISTENER_NAME_SASL_SASL_ENABLED_MECHANISMS"] == "PLAIN"
    jaas = env["KAFKA_LISTENER_NAME_SASL_PLAIN_SASL_JAAS_CONFIG"]
    assert f'user_{brokers.AUTH_USER}="{brokers.AUTH_PASSWORD}"' in jaas


def test_redis_container_adds_the_user_and_keeps_the_default_open() -> None:
    cmd = CONTAINER_SPECS["redis"].rendered_command("h", 1)
    assert cmd is not None
    i = cmd.index("--user")
    assert cmd[i + 1:i + 4] == [brokers.AUTH_USER, "on", f">{brokers.AUTH_PASSWORD}"]
    assert "nopass" not in cmd and "--requirepass" not in cmd  # the default user stays open


def test_nats_container_reads_the_copied_config() -> None:
    spec = CONTAINER_SPECS["nats"]
    cmd = spec.rendered_command("h", 1)
    assert cmd is not None
    conf_path = cmd[cmd.index("-c") + 1]
    conf = spec.files[conf_path].decode()
    assert f'user: "{brokers.AUTH_USER}", password: "{brokers.AUTH_PASSWORD}"' in conf
    assert 'no_auth_user: "anonymous"' in conf
    assert "-js" in cmd


class _CrashingContainer:
    """testcontainers' DockerContainer, for a broker image that exits at start."""

    made: ClassVar[list[_CrashingContainer]] = []

    def __init__(self, image: str, labels: dict[str, str]) -> None:
        self.image, self.labels, self.stopped, self.status = image, labels, False, "running"
        self.env: dict[str, str] = {}
        _CrashingContainer.made.append(self)

    def get_docker_client(self) -> Any:
        return type("Client", (), {"client": None, "host": lambda _self: "127.0.0.1"})()

    def with_bind_ports(self, inside: int, host: int) -> None:
        pass

    def with_env(self, key: str, value: str) -> None:
        self.env[key] = value

    def with_command(self, command: str) -> None:
        pass

    def with_copy_into_container(self, data: bytes, path: str) -> None:
        pass

    def start(self) -> None:
        pass

    def get_logs(self) -> tuple[bytes, bytes]:
        self.status = "exited"  # it crashed right after writing this
        return b"starting broker\n", b"fatal: cannot bind 0.0.0.0:4222\n"

    def get_wrapped_container(self) -> Any:
        outer = self
        return type("Wrapped", (), {"reload": lambda _self: None,
                                    "status": property(lambda _self: outer.status)})()

    def stop(self) -> None:
        self.stopped = True


def test_a_broker_image_that_exits_fails_fast_naming_backend_and_log(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """start_container's own path: the container exits before its ready line, so the
    error comes within seconds (not the 180 s ready timeout), names the backend, quotes
    the log's last lines, and the container is removed."""
    import time

    import testcontainers.core.container as tc

    monkeypatch.setattr(tc, "DockerContainer", _CrashingContainer)
    monkeypatch.setattr(brokers, "_settle_ryuk", lambda client: None)
    _CrashingContainer.made.clear()
    started = time.monotonic()
    with pytest.raises(ContainerStartError) as info:
        brokers.start_container(CONTAINER_SPECS["nats"])
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert message.startswith("the nats container")
    assert message.rstrip().endswith("fatal: cannot bind 0.0.0.0:4222")
    [container] = _CrashingContainer.made
    assert container.stopped
    assert container.labels[brokers.RUN_LABEL] == brokers.container_run_id()
