"""Run mqkit's five test brokers natively on loopback (no Docker needed).

    scripts/brokers up                  # install what is missing, start all five, wait until ready
    eval "$(scripts/brokers env)"       # export the five MQKIT_TEST_*_URL variables
    scripts/brokers status              # one line per broker: up/down and its URL
    scripts/brokers stop|start|restart BACKEND   # fault injection (rabbitmq kafka sqs redis nats)
    scripts/brokers down                # stop all five (idempotent)
    scripts/brokers logs BACKEND [N]    # print the last N (40) lines of a broker's log

The brokers:

* RabbitMQ from Debian's ``rabbitmq-server``, run as our own node ``rabbit@localhost`` with its
  own data dir and Erlang cookie (never the Debian service's).
* Apache Kafka, single node in KRaft mode, as jars from Maven Central (``scripts/kafka/pom.xml``
  pins the version), run on the machine's Java with a bounded heap.
* SQS/SNS through a moto server (``python -m moto.server``); ``moto[server]`` is pip-installed
  into this interpreter when missing.
* Redis from Debian's ``redis-server``, without persistence.
* NATS from Debian's ``nats-server`` with JetStream and a file store.

Everything generated (data, logs, pid files) lives under ``$MQKIT_BROKERS_HOME`` (default
``~/.cache/mqkit/brokers``); the Kafka jars under ``$MQKIT_KAFKA_CACHE`` (default
``~/.cache/mqkit/kafka-<version>``). Nothing is written to the git tree.

Ports default to the brokers' usual ones and can be overridden with
``MQKIT_BROKERS_<BACKEND>_PORT`` (RABBITMQ 5672, KAFKA 9092, SQS 5000, REDIS 6379, NATS 4222),
plus ``MQKIT_BROKERS_KAFKA_CONTROLLER_PORT`` (9093), ``MQKIT_BROKERS_KAFKA_SASL_PORT`` (9094),
``MQKIT_BROKERS_SQS_AUTH_PORT`` (5001), ``MQKIT_BROKERS_NATS_MONITOR_PORT`` (8222)
and ``MQKIT_BROKERS_RABBITMQ_DIST_PORT`` (25672).

Credentials the brokers check, for the contract case that a wrong password is
PermissionDenied (``env`` prints ``MQKIT_TEST_<BACKEND>_AUTH_URL``): RabbitMQ's guest, a Redis
ACL user, a NATS user, a second Kafka listener with SASL/PLAIN (plaintext transport, loopback
only; the PLAINTEXT listener everything else uses is unchanged), and for SQS a second moto
server ``sqs-auth`` that enforces IAM (``INITIAL_NO_AUTH_ACTION_COUNT``): ``up``/``start sqs``
create an IAM user with an access key in it and keep the key in
``$MQKIT_BROKERS_HOME/sqs-auth/credentials.json``. The shared moto stays open (any key).
``stop``/``restart sqs`` leave ``sqs-auth`` alone (fault tests restart only the moto they
use); ``down`` stops it too. ``MQKIT_BROKERS_TIMEOUT`` bounds the wait
for each broker to answer (default 120 s).

Standard library only: it must run on a fresh machine before any project dependency exists.
The code is the package ``contract_tests.native_brokers`` (this module is its command line;
``scripts/brokers`` runs it from the clone it sits in).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence

from . import kafka, nats, rabbitmq, redis, sqs
from .config import BROKERS_HOME, PORTS, log
from .install import install_apt
from .ports import BACKENDS, HOST, PROCESSES, url_for
from .supervisor import (
    Broker,
    log_tail,
    matching_processes,
    probe,
    running_pid,
    start_backends,
    stop_backend,
)

REGISTRY: Mapping[str, Broker] = {
    b.name: b
    for b in (
        rabbitmq.BROKER, kafka.BROKER, sqs.BROKER, sqs.AUTH_BROKER, redis.BROKER, nats.BROKER
    )
}
"""Every process by name (ports.PROCESSES), what the supervisor runs."""


def install(backends: Sequence[str]) -> None:
    """Debian packages first, then each backend's own download (Kafka's jars, moto)."""
    install_apt(backends)
    for backend in backends:
        step = REGISTRY[backend].install
        if step is not None:
            step()


def cmd_up(_args: list[str]) -> int:
    started = time.monotonic()
    install(BACKENDS)
    ok = start_backends(REGISTRY, BACKENDS)
    log(
        f"up {'done' if ok else 'FAILED'} in {time.monotonic() - started:.1f}s "
        f"(data and logs in {BROKERS_HOME})"
    )
    return 0 if ok else 1


def cmd_down(_args: list[str]) -> int:
    for name in PROCESSES:
        stop_backend(REGISTRY[name])
    return 0


def shell_value(text: str) -> str:
    """``text`` as one word for a POSIX shell (quoted unless it is plainly safe)."""
    return f"'{text}'" if re.search(r"[^A-Za-z0-9_:/@.%=+,-]", text) else text


def cmd_env(_args: list[str]) -> int:
    for backend in BACKENDS:
        print(f"export MQKIT_TEST_{backend.upper()}_URL={shell_value(url_for(backend, PORTS))}")
        auth_url = REGISTRY[backend].auth_url
        auth = auth_url() if auth_url is not None else None
        if auth is not None:
            print(f"export MQKIT_TEST_{backend.upper()}_AUTH_URL={shell_value(auth)}")
    return 0


def cmd_status(_args: list[str]) -> int:
    all_up = True
    for name in PROCESSES:
        broker = REGISTRY[name]
        reason = probe(broker)
        pid = running_pid(name)
        state = "up" if reason is None else "down"
        all_up = all_up and reason is None
        strays = [] if pid else matching_processes(broker)
        if pid:
            detail = f"pid {pid}"
        elif strays:
            detail = f"pid {strays[0]}, pid file missing"
        else:
            detail = "not started by scripts/brokers"
        if reason is not None:
            detail += f"; {reason}"
        elif broker.status_note is not None:
            detail += broker.status_note()
        where = url_for(name, PORTS) if name in BACKENDS else f"http://{HOST}:{PORTS[name]}"
        print(f"{name:<9} {state:<5} {where}  ({detail})")
    return 0 if all_up else 3


def _one_backend(args: list[str], verb: str) -> str:
    if len(args) != 1 or args[0] not in BACKENDS:
        sys.exit(f"usage: scripts/brokers {verb} {{{'|'.join(BACKENDS)}}}")
    return args[0]


def cmd_start(args: list[str]) -> int:
    backend = _one_backend(args, "start")
    install([backend])
    return 0 if start_backends(REGISTRY, [backend]) else 1


def cmd_stop(args: list[str]) -> int:
    stop_backend(REGISTRY[_one_backend(args, "stop")])
    return 0


def cmd_restart(args: list[str]) -> int:
    backend = _one_backend(args, "restart")
    install([backend])
    started = time.monotonic()
    stop_backend(REGISTRY[backend])
    ok = start_backends(REGISTRY, [backend])
    log(f"restart {backend} {'done' if ok else 'FAILED'} in {time.monotonic() - started:.1f}s")
    return 0 if ok else 1


def cmd_logs(args: list[str]) -> int:
    if not args or args[0] not in PROCESSES:
        sys.exit(f"usage: scripts/brokers logs {{{'|'.join(PROCESSES)}}} [LINES]")
    lines = int(args[1]) if len(args) > 1 else 40
    print(log_tail(args[0], lines))
    return 0


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "up": cmd_up,
    "down": cmd_down,
    "env": cmd_env,
    "status": cmd_status,
    "start": cmd_start,
    "stop": cmd_stop,
    "restart": cmd_restart,
    "logs": cmd_logs,
}


def main(argv: list[str]) -> int:
    """Run one sub-command (``argv`` without the program name); its exit status. Unknown
    or missing: the usage paragraph of this module's docstring on stderr, status 2."""
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.split("\n\n")[1] if __doc__ else "", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
