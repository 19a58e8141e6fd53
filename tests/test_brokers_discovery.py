"""Broker discovery for the contract suite (contract_tests/brokers.py), without any broker.

Which provider is chosen for a given environment and Docker answer, the reasons given when
there is none, MQKIT_REQUIRE_BACKENDS parsing and the container specs. Docker, testcontainers
and the brokers are replaced by injected callables, so these run anywhere.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # contract_tests/ is not an installed package in every setup
    sys.path.insert(0, str(ROOT))

from contract_tests import brokers  # noqa: E402
from contract_tests.brokers import (  # noqa: E402
    BACKENDS,
    CONTAINER_SPECS,
    BrokerControlError,
    BrokerHandle,
    ContainerSpec,
    find_broker,
    required_backends,
)

NATIVE_URLS = {
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/%2F",
    "kafka": "kafka://127.0.0.1:9092",
    "sqs": "sqs://testing:testing@127.0.0.1:5000?region=us-east-1&tls=false",
    "redis": "redis://127.0.0.1:6379/0",
    "nats": "nats://127.0.0.1:4222",
}


def _never(*_args: object) -> bool:
    raise AssertionError("must not be consulted")


def _no_start(spec: ContainerSpec) -> BrokerHandle:
    raise AssertionError(f"must not start {spec.image}")


def _fake_start(spec: ContainerSpec) -> BrokerHandle:
    return BrokerHandle(
        backend=spec.backend, url=spec.url("localhost", 40000), provider="testcontainers"
    )


# ---- provider choice ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_env_url_wins_without_asking_docker(backend: str) -> None:
    environ = {f"MQKIT_TEST_{backend.upper()}_URL": NATIVE_URLS[backend]}
    handle = find_broker(
        backend,
        environ=environ,
        docker_available=_never,
        testcontainers_installed=_never,
        start_container=_no_start,
    )
    assert isinstance(handle, BrokerHandle)
    assert handle.url == NATIVE_URLS[backend]
    assert handle.backend == backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_native_urls_are_recognised(backend: str) -> None:
    handle = find_broker(
        backend, environ={f"MQKIT_TEST_{backend.upper()}_URL": NATIVE_URLS[backend]}
    )
    assert isinstance(handle, BrokerHandle)
    assert handle.provider == "native"
    assert handle.script == ROOT / "scripts" / "brokers"
    assert handle.can_inject_faults


def test_native_honours_the_scripts_port_override() -> None:
    environ = {
        "MQKIT_TEST_KAFKA_URL": "kafka://127.0.0.1:19092",
        "MQKIT_BROKERS_KAFKA_PORT": "19092",
    }
    handle = find_broker("kafka", environ=environ)
    assert isinstance(handle, BrokerHandle) and handle.provider == "native"
    handle = find_broker("kafka", environ={"MQKIT_TEST_KAFKA_URL": "kafka://127.0.0.1:19092"})
    assert isinstance(handle, BrokerHandle) and handle.provider == "env"


def test_foreign_url_is_env_and_cannot_inject_faults() -> None:
    environ = {"MQKIT_TEST_REDIS_URL": "redis://redis.internal:6379/0"}
    handle = find_broker("redis", environ=environ, docker_available=_never)
    assert isinstance(handle, BrokerHandle)
    assert handle.provider == "env"
    assert handle.script is None
    assert not handle.can_inject_faults
    with pytest.raises(BrokerControlError, match="MQKIT_BROKERS_SCRIPT"):
        handle.restart()


def test_foreign_url_with_explicit_script_can_inject_faults(tmp_path: Path) -> None:
    script = tmp_path / "brokers"
    script.write_text("#!/bin/sh\nexit 0\n")
    environ = {
        "MQKIT_TEST_NATS_URL": "nats://nats.internal:4222",
        "MQKIT_BROKERS_SCRIPT": str(script),
    }
    handle = find_broker("nats", environ=environ)
    assert isinstance(handle, BrokerHandle)
    assert handle.provider == "env"
    assert handle.script == script
    assert handle.can_inject_faults


def test_fault_injection_runs_the_script(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    script = tmp_path / "brokers.py"
    script.write_text(
        "import sys\n"
        f"open({str(calls)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        "sys.exit(0)\n"
    )
    handle = BrokerHandle(
        backend="kafka", url=NATIVE_URLS["kafka"], provider="native", script=script
    )
    handle.stop()
    handle.start()
    handle.restart()
    assert calls.read_text().splitlines() == ["stop kafka", "start kafka", "restart kafka"]


def test_fault_injection_failure_carries_the_output(tmp_path: Path) -> None:
    script = tmp_path / "brokers.py"
    script.write_text("import sys\nprint('kafka FAILED: no answer')\nsys.exit(1)\n")
    handle = BrokerHandle(
        backend="kafka", url=NATIVE_URLS["kafka"], provider="native", script=script
    )
    with pytest.raises(BrokerControlError, match="no answer"):
        handle.restart()


def test_blank_env_url_counts_as_unset() -> None:
    reason = find_broker(
        "kafka",
        environ={"MQKIT_TEST_KAFKA_URL": "  "},
        testcontainers_installed=lambda: True,
        docker_available=lambda: False,
    )
    assert isinstance(reason, str)


@pytest.mark.parametrize("backend", BACKENDS)
def test_testcontainers_when_docker_answers(backend: str) -> None:
    handle = find_broker(
        backend,
        environ={},
        testcontainers_installed=lambda: True,
        docker_available=lambda: True,
        start_container=_fake_start,
    )
    assert isinstance(handle, BrokerHandle)
    assert handle.provider == "testcontainers"
    assert handle.url == CONTAINER_SPECS[backend].url("localhost", 40000)


def test_no_docker_gives_a_reason() -> None:
    reason = find_broker(
        "rabbitmq",
        environ={},
        testcontainers_installed=lambda: True,
        docker_available=lambda: False,
        start_container=_no_start,
    )
    assert isinstance(reason, str)
    assert "MQKIT_TEST_RABBITMQ_URL is not set" in reason
    assert "no Docker engine answers" in reason
    assert "scripts/brokers up" in reason


def test_missing_testcontainers_gives_a_reason_without_asking_docker() -> None:
    reason = find_broker(
        "nats",
        environ={},
        testcontainers_installed=lambda: False,
        docker_available=_never,
        start_container=_no_start,
    )
    assert isinstance(reason, str)
    assert "testcontainers package is not installed" in reason
    assert reason.startswith("no nats broker")


def test_container_start_failure_gives_a_reason() -> None:
    def boom(spec: ContainerSpec) -> BrokerHandle:
        raise RuntimeError("pull access denied")

    reason = find_broker(
        "redis",
        environ={},
        testcontainers_installed=lambda: True,
        docker_available=lambda: True,
        start_container=boom,
    )
    assert isinstance(reason, str)
    assert "redis:7.4" in reason and "pull access denied" in reason


def test_unknown_backend_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        find_broker("kafak", environ={})


def test_docker_available_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    # Point the Docker SDK at a socket that does not exist: a quick, quiet "no".
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert brokers.docker_available() is False


def test_testcontainers_installed_is_a_bool() -> None:
    assert isinstance(brokers.testcontainers_installed(), bool)


# ---- MQKIT_REQUIRE_BACKENDS ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, frozenset()),
        ("", frozenset()),
        ("kafka", frozenset({"kafka"})),
        ("kafka,nats", frozenset({"kafka", "nats"})),
        (" Kafka , NATS ,", frozenset({"kafka", "nats"})),
        ("redis sqs", frozenset({"redis", "sqs"})),
        ("all", frozenset(BACKENDS)),
        ("ALL,kafka", frozenset(BACKENDS)),
    ],
)
def test_required_backends(value: str | None, expected: frozenset[str]) -> None:
    environ = {} if value is None else {"MQKIT_REQUIRE_BACKENDS": value}
    assert required_backends(environ) == expected


def test_required_backends_rejects_typos() -> None:
    with pytest.raises(ValueError, match="rabitmq"):
        required_backends({"MQKIT_REQUIRE_BACKENDS": "rabitmq,kafka"})


# ---- container specs -----------------------------------------------------------------------


def test_every_backend_has_a_pinned_spec() -> None:
    assert set(CONTAINER_SPECS) == set(BACKENDS)
    for backend, spec in CONTAINER_SPECS.items():
        assert spec.backend == backend
        name, _, tag = spec.image.rpartition(":")
        assert name and tag and tag != "latest", spec.image
        assert spec.ports, backend
        assert spec.ready_log


@pytest.mark.parametrize("backend", BACKENDS)
def test_container_urls_use_mqkit_schemes(backend: str) -> None:
    url = CONTAINER_SPECS[backend].url("127.0.0.1", 5672 if backend == "rabbitmq" else 0)
    native = NATIVE_URLS[backend]
    assert url.split("://")[0] == native.split("://")[0]
    if backend == "rabbitmq":
        assert url == native


def test_kafka_spec_advertises_the_host_port() -> None:
    spec = CONTAINER_SPECS["kafka"]
    assert spec.listener_on_host_port
    env = spec.rendered_env("localhost", 32801, (32802,))
    assert env["KAFKA_ADVERTISED_LISTENERS"] == (
        "PLAINTEXT://localhost:32801,SASL://localhost:32802")
    assert "PLAINTEXT://0.0.0.0:32801" in env["KAFKA_LISTENERS"]
    assert "SASL://0.0.0.0:32802" in env["KAFKA_LISTENERS"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert spec.url("localhost", 32801) == "kafka://localhost:32801"


def test_nats_spec_enables_jetstream_and_redis_spec_disables_persistence() -> None:
    nats_cmd = CONTAINER_SPECS["nats"].rendered_command("h", 1)
    assert nats_cmd is not None and "-js" in nats_cmd
    redis_cmd = CONTAINER_SPECS["redis"].rendered_command("h", 1)
    assert redis_cmd is not None
    assert redis_cmd[redis_cmd.index("--save") + 1] == ""
    assert redis_cmd[redis_cmd.index("--appendonly") + 1] == "no"
    assert CONTAINER_SPECS["rabbitmq"].rendered_command("h", 1) is None


def test_sqs_spec_url_matches_the_native_shape() -> None:
    assert CONTAINER_SPECS["sqs"].url("127.0.0.1", 5000) == NATIVE_URLS["sqs"]
