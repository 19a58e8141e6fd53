"""scripts/brokers and its package contract_tests.native_brokers, without starting a broker.

The launcher runs in a subprocess with a private, empty MQKIT_BROKERS_HOME and ports nothing
listens on, so nothing here touches the shared brokers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from contract_tests import brokers
from contract_tests.native_brokers import ports
from contract_tests.native_brokers.ports import PortValueError, port_var, read_port, url_for

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "brokers"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _private_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQKIT_BROKERS_")}
    env["MQKIT_BROKERS_HOME"] = str(home)
    for name in ports.DEFAULT_PORTS:
        env[port_var(name)] = str(_closed_port())
    return env


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )


def test_port_vars_are_the_documented_names() -> None:
    assert port_var("redis") == "MQKIT_BROKERS_REDIS_PORT"
    assert port_var(ports.SQS_AUTH) == "MQKIT_BROKERS_SQS_AUTH_PORT"
    assert port_var("kafka-sasl") == "MQKIT_BROKERS_KAFKA_SASL_PORT"
    assert port_var("rabbitmq-dist") == "MQKIT_BROKERS_RABBITMQ_DIST_PORT"
    with pytest.raises(KeyError, match="unknown native broker port 'bogus'"):
        port_var("bogus")


def test_read_port_default_override_and_bad_value() -> None:
    assert read_port("kafka", {}) == 9092
    assert read_port("kafka", {"MQKIT_BROKERS_KAFKA_PORT": " "}) == 9092
    assert read_port("kafka", {"MQKIT_BROKERS_KAFKA_PORT": "39092"}) == 39092
    with pytest.raises(PortValueError, match=r"MQKIT_BROKERS_KAFKA_PORT='x9' is not an integer"):
        read_port("kafka", {"MQKIT_BROKERS_KAFKA_PORT": "x9"})


def test_urls_come_from_the_one_table() -> None:
    table = ports.read_ports(
        {"MQKIT_BROKERS_NATS_PORT": "34222", "MQKIT_BROKERS_KAFKA_SASL_PORT": "39094"}
    )
    assert url_for("nats", table) == "nats://127.0.0.1:34222"
    assert ports.auth_url("kafka", table) == "kafka://mqkit:mqkit-auth-check@127.0.0.1:39094"
    assert ports.auth_url("sqs", table) is None


def test_the_harness_takes_the_native_table() -> None:
    assert brokers.BACKENDS == ports.BACKENDS
    assert dict(brokers.NATIVE_DEFAULT_PORTS) == {b: ports.DEFAULT_PORTS[b] for b in ports.BACKENDS}
    for backend in ports.BACKENDS:
        assert brokers.CONTAINER_SPECS[backend].url_template == ports.URL_TEMPLATES[backend]
        assert brokers.native_port(backend, {port_var(backend): "31234"}) == 31234
    with pytest.raises(PortValueError, match="MQKIT_BROKERS_REDIS_PORT"):
        brokers.native_port("redis", {"MQKIT_BROKERS_REDIS_PORT": "six"})


def test_usage_without_a_command(tmp_path: Path) -> None:
    proc = _run(env=_private_env(tmp_path))
    assert proc.returncode == 2
    assert "scripts/brokers up" in proc.stderr and "scripts/brokers logs BACKEND" in proc.stderr
    assert proc.stdout == ""


def test_env_prints_the_overridden_ports(tmp_path: Path) -> None:
    env = _private_env(tmp_path)
    proc = _run("env", env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    table = ports.read_ports(env)
    for backend in ports.BACKENDS:
        value = url_for(backend, table)
        quoted = f"'{value}'" if "?" in value or "&" in value else value
        assert f"export MQKIT_TEST_{backend.upper()}_URL={quoted}" in lines
    # no Kafka started with the SASL listener and no sqs-auth key in this home: no AUTH_URL
    assert not any("KAFKA_AUTH_URL" in line or "SQS_AUTH_URL" in line for line in lines)
    assert f"export MQKIT_TEST_REDIS_AUTH_URL={ports.auth_url('redis', table)}" in lines


def test_status_reports_every_process_down(tmp_path: Path) -> None:
    proc = _run("status", env=_private_env(tmp_path))
    assert proc.returncode == 3
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert names == list(ports.PROCESSES)
    assert all(" down " in line for line in proc.stdout.splitlines())


def test_stop_and_down_on_an_empty_home_do_nothing(tmp_path: Path) -> None:
    env = _private_env(tmp_path)
    assert _run("stop", "redis", env=env).returncode == 0
    assert _run("down", env=env).returncode == 0
    bad = _run("stop", "sqs-auth", env=env)  # a companion is not a backend of its own
    assert bad.returncode == 1
    assert "usage: scripts/brokers stop {rabbitmq|kafka|sqs|redis|nats}" in bad.stderr


def test_a_bad_port_variable_ends_the_script_naming_it(tmp_path: Path) -> None:
    env = _private_env(tmp_path)
    env["MQKIT_BROKERS_NATS_MONITOR_PORT"] = "eighty"
    proc = _run("env", env=env)
    assert proc.returncode == 1
    assert "brokers: MQKIT_BROKERS_NATS_MONITOR_PORT='eighty' is not an integer" in proc.stderr


def test_logs_of_a_process_without_a_log(tmp_path: Path) -> None:
    proc = _run("logs", "sqs-auth", env=_private_env(tmp_path))
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"(no log at {tmp_path / 'logs' / 'sqs-auth.log'})"


def test_rabbitmq_unrecovered_queues() -> None:
    from contract_tests.native_brokers.wire import unrecovered

    listing = "q1 running\nq2 down\nq3 idle\nq4 crashed\nnonsense\n"
    assert unrecovered(listing) == ["q2", "q4"]
    assert unrecovered("") == []


def test_sqs_access_key_from_moto_answer() -> None:
    from contract_tests.native_brokers.sqs import access_key

    body = (
        '<CreateAccessKeyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
        "<CreateAccessKeyResult><AccessKey><AccessKeyId>AKIA1</AccessKeyId>"
        "<SecretAccessKey>s3cr3t</SecretAccessKey></AccessKey></CreateAccessKeyResult>"
        "</CreateAccessKeyResponse>"
    )
    assert access_key(body) == ("AKIA1", "s3cr3t")
    assert "gave no key" in str(access_key("<a/>"))
    assert "no XML" in str(access_key("not xml"))


def test_shell_value_quotes_only_what_needs_it() -> None:
    from contract_tests.native_brokers.cli import shell_value

    assert shell_value("kafka://127.0.0.1:9092") == "kafka://127.0.0.1:9092"
    assert shell_value("sqs://a:b@h:1?region=x&tls=false") == "'sqs://a:b@h:1?region=x&tls=false'"


_FAKE_SUPERVISED = r'''
import socket, sys
from pathlib import Path
from contract_tests.native_brokers import supervisor
from contract_tests.native_brokers.config import PORTS, bdir
from contract_tests.native_brokers.wire import port_open

events = Path(sys.argv[1])
port = PORTS["redis"]
server = [sys.executable, "-c",
          "import socket,time\ns=socket.socket()\n"
          "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
          f"s.bind(('127.0.0.1',{port}))\ns.listen()\ntime.sleep(60)\n", "fake-broker"]

def start():
    bdir("redis").mkdir(parents=True, exist_ok=True)
    supervisor.spawn("redis", server, cwd=bdir("redis"))

def note(what):
    with events.open("a") as f:
        f.write(what + "\n")

fake = supervisor.Broker(
    name="redis", start=start, mark="fake-broker", stop_grace=5.0,
    probe=lambda: None if port_open(port) else "closed",
    settle=lambda: "queues not recovered",  # never settles: gone on with at the deadline
    before_stop=lambda: note("before_stop"), after_stop=lambda: note("after_stop"),
)
ok = supervisor.start_backends({"redis": fake}, ["redis"])
note(f"started {ok} {supervisor.running_pid('redis') is not None} {port_open(port)}")
supervisor.stop_backend(fake)
note(f"stopped {supervisor.running_pid('redis') is None} {port_open(port)}")
supervisor.stop_backend(fake)  # idempotent: no hook runs again
'''


def test_supervisor_runs_the_hooks_of_a_broker(tmp_path: Path) -> None:
    """A fake broker through start_backends/stop_backend, with RabbitMQ's kind of hooks:
    a readiness that never settles is gone on with at the deadline, the graceful stop runs
    before the signal and the tidy-up after; both only while something runs."""
    env = _private_env(tmp_path / "home")
    env["MQKIT_BROKERS_TIMEOUT"] = "1"
    env["PYTHONPATH"] = str(ROOT)
    events = tmp_path / "events"
    proc = subprocess.run([sys.executable, "-c", _FAKE_SUPERVISED, str(events)], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "redis: going on although queues not recovered" in proc.stderr
    assert "redis ready at redis://127.0.0.1:" in proc.stderr
    assert events.read_text().splitlines() == [
        "started True True True", "before_stop", "after_stop", "stopped True False",
    ]


def test_rabbitmq_is_wired_to_its_settings_and_hooks(tmp_path: Path) -> None:
    env = _private_env(tmp_path)
    env["PYTHONPATH"] = str(ROOT)
    code = (
        "from contract_tests.native_brokers import rabbitmq as r\n"
        "e = r.env()\n"
        "print(e['RABBITMQ_NODE_PORT'], e['RABBITMQ_DIST_PORT'], e['HOME'],\n"
        "      e['RABBITMQ_NODENAME'])\n"
        "b = r.BROKER\n"
        "print(b.settle is r.queues_unready, b.before_stop is r.stop_gracefully, b.mark)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.splitlines()
    assert first.split() == [env["MQKIT_BROKERS_RABBITMQ_PORT"],
                             env["MQKIT_BROKERS_RABBITMQ_DIST_PORT"],
                             str(tmp_path / "rabbitmq" / "home"), "rabbit@localhost"]
    assert second == "True True beam"


def test_services_are_forbidden_only_while_installing(tmp_path: Path) -> None:
    """apt-get's package scripts see policy-rc.d exit 101 inside, and ours is gone after
    (also after a failed install); one already there is kept."""
    from contract_tests.native_brokers.install import services_forbidden

    policy = tmp_path / "policy-rc.d"
    with pytest.raises(RuntimeError), services_forbidden(policy=policy):
        done = subprocess.run([str(policy)], check=False)
        assert done.returncode == 101
        raise RuntimeError("apt-get install failed")
    assert not policy.exists()
    policy.write_text("#!/bin/sh\nexit 0\n")
    with services_forbidden(policy=policy):
        pass
    assert policy.read_text() == "#!/bin/sh\nexit 0\n"
