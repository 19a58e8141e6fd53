"""The fault cases of issue #18: backend x fault, on a clustered topology, with a producer
and two consumers in separate processes (``fault_tests.workload``).

Each case: a fresh topic (the topology's replicated topic options) and group; two consumers
start; the producer sends 50 numbered messages per second for ``DURATION`` seconds and at
least ``AFTER_FAULT`` seconds past the fault's end (longer while it has confirmed nothing
since the fault ended, up to ``RECOVERY_BOUND``); at ``FAULT_AT`` seconds the fault
happens:

- ``leader_killed``: SIGKILL of the topic leader's process group, ``DOWN_FOR`` seconds
  down, started again;
- ``node_cut``: the leader cut off the network: its client proxy resets every connection
  and refuses new ones, and the topology cuts its inter-node traffic too (Kafka, RabbitMQ:
  iptables drops every packet to and from the node; NATS, Redis: the proxies between the
  nodes). The cut lasts ``DOWN_FOR`` seconds, or until the premise holds if later: where
  the topology offers ``isolation(node)``, the other nodes must have lost the node (Kafka:
  fenced, out of every ISR, leading nothing; RabbitMQ: not running as the others see it)
  within ``PREMISE_BOUND`` seconds, or the case fails (the cut did not isolate it). Then
  healed;
- ``consumer_killed``: SIGKILL of one consumer process's group; the other goes on; a new
  consumer process starts;
- ``cluster_restart``: every node stopped (SIGTERM) and started again.

Then the producer finishes, the consumers drain (at most ``DRAIN`` seconds) and the case
asserts, from the workload files:

- **lost = 0**: every number whose ``send`` returned was processed at least once;
- **duplicates <= bound**: ``2 x prefetch x consumer processes started + producer
  retries`` (each consumer may hold up to ``prefetch`` unacked deliveries that come back
  after a fault, twice at most in one case; a retried send whose first attempt reached the
  broker is stored twice);
- **recovery <= RECOVERY_BOUND** (30 s): the longest stretch after the fault, until the
  producer ended, without a confirmed send or without a processed message;
- the producer confirmed sends after the fault ended, and the consumers still run (none
  died or hung: they drained).

Each case writes ``build/faults/<backend>-<fault>.json`` (the workload files and process
logs are in ``build/faults/work/<backend>-<fault>/``); ``python -m fault_tests.report``
renders ``docs/reliability.md`` from them.

Some faults cannot pass by construction on some topologies: ``NOT_APPLICABLE`` in
``fault_tests.clusters`` lists them with the reason (SQS: moto keeps its state in memory,
so killing or restarting it loses every queue; a managed service's restart is not ours to
test). Those pairs are not fault cases; ``test_not_applicable`` checks their premise
instead (after the fault, the topic's group no longer delivers a message sent before it)
and writes a record with the reason, which the report shows as "n/a".

Backends: ``MQKIT_FAULT_BACKENDS`` (comma-separated), default every topology registered in
``fault_tests.clusters.TOPOLOGIES``. One cluster runs at a time: switching backend stops the
previous one. Every process a case starts is SIGKILLed (process group) in its finalizer.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import mqkit
from fault_tests.clusters import NOT_APPLICABLE, TOPOLOGIES, Topology, make
from fault_tests.workload import analyse, read_numbers

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "faults"

RATE = 50.0
DURATION = 20.0
AFTER_FAULT = 6.0
MAX_DURATION = 120.0
FAULT_AT = 6.0
DOWN_FOR = 4.0
DRAIN = 40.0
PREFETCH = 10
LEASE = 5.0
RECOVERY_BOUND = 30.0
SETTLE = 60.0
PREMISE_BOUND = 30.0

FAULTS = ("leader_killed", "node_cut", "consumer_killed", "cluster_restart")


def _backends() -> list[str]:
    raw = os.environ.get("MQKIT_FAULT_BACKENDS", "").strip()
    names = [b.strip() for b in raw.split(",") if b.strip()] if raw else list(TOPOLOGIES)
    unknown = [b for b in names if b not in TOPOLOGIES]
    if unknown:
        raise mqkit.ConfigurationError(
            f"MQKIT_FAULT_BACKENDS names {unknown} without a topology; known: "
            f"{', '.join(TOPOLOGIES)}")
    return names


class _Clusters:
    """At most one topology up at a time; all down at the end of the session."""

    def __init__(self) -> None:
        self.current: Topology | None = None

    def get(self, backend: str) -> Topology:
        if self.current is not None and self.current.backend != backend:
            self.current.down()
            self.current = None
        if self.current is None:
            topology = make(backend)
            topology.install()
            topology.down()  # leftovers of a crashed run
            topology.up()
            self.current = topology
        return self.current

    def close(self) -> None:
        if self.current is not None:
            self.current.down()
            self.current = None


@pytest.fixture(scope="session")
def clusters() -> Iterator[_Clusters]:
    holder = _Clusters()
    yield holder
    holder.close()


class _Procs:
    """The workload processes of one case; all SIGKILLed (process group) at the end."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(self.work / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "fault_tests.workload", *args], cwd=ROOT,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.procs.append(proc)
        return proc

    @staticmethod
    def signal(proc: subprocess.Popen[bytes], sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    def kill_all(self) -> None:
        for proc in self.procs:
            self.signal(proc, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def procs(request: pytest.FixtureRequest) -> Iterator[_Procs]:
    backend, fault = request.node.callspec.params["backend"], request.node.callspec.params[
        "fault"]
    work = OUT / "work" / f"{backend}-{fault}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    holder = _Procs(work)
    yield holder
    holder.kill_all()


def _isolated(topology: Topology, node: str) -> tuple[str, float]:
    """The premise of a cut: the topology's ``isolation(node)`` evidence (polled until it
    holds, at most PREMISE_BOUND s) and when it held (seconds after the cut). AssertionError
    when it never does; ("", 0) for a topology without the check."""
    probe: Callable[[str], str | None] | None = getattr(topology, "isolation", None)
    scope = str(getattr(topology, "cut_scope", ""))
    if probe is None or scope.startswith("clients only"):
        return scope, 0.0
    began = time.monotonic()
    while True:
        evidence = probe(node)
        took = time.monotonic() - began
        if evidence is not None:
            return evidence, took
        if took > PREMISE_BOUND:
            raise AssertionError(f"{topology.backend}: {node} was cut ({scope}) but the other "
                                 f"nodes did not lose it within {PREMISE_BOUND:g} s: the cut "
                                 "does not isolate it")
        time.sleep(0.5)


def _inject(fault: str, topology: Topology, topic: str, procs: _Procs,
            consume: Callable[[str], subprocess.Popen[bytes]]) -> str:
    """Make ``fault`` happen; returns what was done (for the record)."""
    role = "leader" if len(topology.nodes) > 1 else "the only node"
    if fault == "leader_killed":
        node = topology.leader(topic)
        topology.kill(node)
        time.sleep(DOWN_FOR)
        topology.start(node)
        return f"SIGKILL {node} ({role}), started again after {DOWN_FOR:g} s"
    if fault == "node_cut":
        node = topology.leader(topic)
        began = time.monotonic()
        topology.cut(node)
        try:
            premise, held_after = _isolated(topology, node)
            time.sleep(max(0.0, DOWN_FOR - (time.monotonic() - began)))
            lasted = time.monotonic() - began
        finally:
            topology.heal(node)  # also when the premise failed: the next case needs it
        action = f"cut {node} ({role}) for {lasted:.1f} s"
        if premise.startswith("clients only"):
            return f"{action}; {premise}"
        if premise:
            return f"{action}; premise after {held_after:.1f} s: {premise}"
        return action
    if fault == "consumer_killed":
        victim = procs.procs[0]
        procs.signal(victim, signal.SIGKILL)
        victim.wait(timeout=10)
        consume("consumer-3")
        return "SIGKILL consumer-1, consumer-3 started"
    if fault == "cluster_restart":
        topology.restart_all()
        return "every node stopped (SIGTERM) and started"
    raise mqkit.ConfigurationError(f"fault: unknown {fault!r}")


def _set_up(url: str, topic: str, group: str, options: dict[str, object]) -> list[str]:
    """Create the topic and group, retrying for up to SETTLE s: the cluster may still be
    settling from the previous case's fault (a restarted node catching up makes JetStream
    refuse a new R3 stream for a moment). Returns the errors met (recorded), raises the
    last one past SETTLE."""
    errors: list[str] = []
    deadline = time.monotonic() + SETTLE
    while True:
        try:
            with mqkit.connect(url) as client:
                client.admin.create_topic(topic, **options)
                client.admin.create_group(topic, group)
            return errors
        except mqkit.MQError as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


CASES = [(backend, fault) for backend in _backends() for fault in FAULTS
         if (backend, fault) not in NOT_APPLICABLE]
NA_CASES = [(backend, fault) for backend in _backends() for fault in FAULTS
            if (backend, fault) in NOT_APPLICABLE]


@pytest.mark.parametrize(("backend", "fault"), CASES, ids=[f"{b}-{f}" for b, f in CASES])
def test_fault(backend: str, fault: str, clusters: _Clusters, procs: _Procs) -> None:
    began = time.monotonic()
    topology = clusters.get(backend)
    url = topology.url()
    topic = f"ft.{fault}.{uuid.uuid4().hex[:6]}"
    group = "workers"
    setup_errors = _set_up(url, topic, group, topology.topic_options())

    files: list[Path] = []

    def consume(name: str) -> subprocess.Popen[bytes]:
        files.append(procs.work / f"{name}.txt")
        return procs.spawn(name, "consume", url, topic, group, str(files[-1]),
                           "--prefetch", str(PREFETCH), "--lease", str(LEASE))

    consume("consumer-1")
    consume("consumer-2")
    confirmed = procs.work / "producer.txt"
    producer = procs.spawn("producer", "produce", url, topic, str(confirmed),
                           "--rate", str(RATE), "--duration", str(MAX_DURATION))
    started = time.time()
    time.sleep(FAULT_AT)
    fault_at = time.time()
    action = _inject(fault, topology, topic, procs, consume)
    fault_end = time.time()
    # The producer goes on until DURATION, and AFTER_FAULT s past the fault's end at
    # least; if it has confirmed nothing since the fault ended, until it does (at most
    # RECOVERY_BOUND after the fault began, then the case fails on recovery).
    stop_at = max(started + DURATION, fault_end + AFTER_FAULT)
    while time.time() < stop_at or (
            not any(t > fault_end for _, t in read_numbers(confirmed))
            and time.time() < fault_at + RECOVERY_BOUND + 1):
        time.sleep(0.25)
    procs.signal(producer, signal.SIGTERM)
    producer.wait(timeout=30)
    producer_done = time.time()

    sent = {n for n, _ in read_numbers(confirmed)}
    deadline = time.monotonic() + DRAIN
    while time.monotonic() < deadline:
        done = {n for path in files for n, _ in read_numbers(path)}
        if sent <= done:
            break
        time.sleep(0.5)
    time.sleep(1.0)  # late redeliveries count as duplicates
    running = [p for p in procs.procs if p is not producer and p.poll() is None]
    for proc in procs.procs:
        if proc is not producer:
            procs.signal(proc, signal.SIGTERM)

    result = analyse(backend, fault, confirmed, files, fault_at=fault_at,
                     producer_done=producer_done)
    result.wall_s = round(time.monotonic() - began, 1)
    record = {**result.record(), "action": action, "rate": RATE, "duration_s": DURATION,
              "prefetch": PREFETCH, "lease_s": LEASE, "consumers_started": len(files),
              "setup_retries": len(setup_errors), "setup_errors": sorted(set(setup_errors))}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{backend}-{fault}.json").write_text(json.dumps(record, indent=2) + "\n")

    bound = 2 * PREFETCH * len(files) + result.producer_retries
    assert any(t > fault_end for _, t in read_numbers(confirmed)), \
        f"the producer never recovered: {record}"
    assert result.lost == 0, f"{result.lost} confirmed message(s) never processed: {record}"
    assert result.duplicates <= bound, f"duplicates over the bound {bound}: {record}"
    assert result.recovery_s <= RECOVERY_BOUND, f"recovery over {RECOVERY_BOUND} s: {record}"
    assert len(running) == len(files) - (1 if fault == "consumer_killed" else 0), \
        f"a consumer process died: {record}"


@pytest.mark.parametrize(("backend", "fault"), NA_CASES, ids=[f"{b}-{f}" for b, f in NA_CASES])
def test_not_applicable(backend: str, fault: str, clusters: _Clusters, procs: _Procs) -> None:
    """The premise of a NOT_APPLICABLE entry: the fault loses the topic's state. A message
    is sent to a fresh topic with a group, the fault happens, and a new client must not
    receive it (the group is gone: NotFound, or nothing within 5 s). Fails, asking to run
    the case instead, when the message survived. Writes the record the report shows as
    "n/a: <reason>"."""
    began = time.monotonic()
    topology = clusters.get(backend)
    url = topology.url()
    topic = f"ft.{fault}.{uuid.uuid4().hex[:6]}"
    _set_up(url, topic, "workers", topology.topic_options())
    with mqkit.connect(url) as client:
        client.producer(topic).send(b"before the fault")

    def no_consumer(name: str) -> subprocess.Popen[bytes]:
        raise AssertionError(f"{fault} starts no consumer ({name}) in this check")

    action = _inject(fault, topology, topic, procs, no_consumer)
    survived: list[bytes] = []
    observed, detail = "the message was not delivered within 5 s", ""
    try:
        with mqkit.connect(url) as client, client.consumer(topic, "workers") as consumer:
            deadline = time.monotonic() + 5.0
            while not survived and time.monotonic() < deadline:
                survived = [m.body for m in consumer.receive(timeout=1.0)]
    except mqkit.NotFound as exc:
        observed, detail = "the topic is gone (NotFound)", str(exc)[:300]
    record = {"backend": backend, "fault": fault, "not_applicable": NOT_APPLICABLE[
        (backend, fault)], "action": action, "premise": f"state lost: {observed}",
        "premise_detail": detail,
        "wall_s": round(time.monotonic() - began, 1)}
    assert not survived, (f"{backend}/{fault}: the message sent before the fault survived "
                          f"it, so the NOT_APPLICABLE entry's premise no longer holds: "
                          f"run the case instead")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{backend}-{fault}.json").write_text(json.dumps(record, indent=2) + "\n")
