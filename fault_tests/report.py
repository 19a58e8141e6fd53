"""Render ``docs/reliability.md`` from the fault run's records (``build/faults/*.json``).

    python -m fault_tests.report [--records build/faults] [--out docs/reliability.md]
                                 [--wall SECONDS] [--commit SHA] [--note TEXT]

One table per backend (a row per fault: sent, processed, lost, duplicates, recovery and
its parts; a fault listed in ``fault_tests.clusters.NOT_APPLICABLE`` is a row "n/a:
<reason>", whose premise the run checked), a backend's own semantics under its table
(``BACKEND_NOTES``), then how the faults are made. ``--wall`` is the whole run's wall time, stated
under the tables; ``--commit`` the code the run measured. Exit 1 when there is no record.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "render"]

ROOT = Path(__file__).resolve().parent.parent
FAULT_ORDER = ("leader_killed", "node_cut", "consumer_killed", "cluster_restart")

HOW = """\
## How the faults are made

Natively on loopback, no containers (`fault_tests/clusters/`; start a topology by hand
with `scripts/clusters up BACKEND`); the Kafka and RabbitMQ cuts use iptables (root):

- **A killed node** is `SIGKILL` of the node's process group (each broker node runs in a
  session of its own), then the node is started again from its data directory.
- **A network cut** isolates the node entirely, clients and peers. Clients: a TCP proxy
  (`fault_tests/tcpcut.py`) in front of every node's client port resets every open
  connection (`SO_LINGER` 0, so the client sees a reset at once, even one blocked in a
  long poll) and every new one until healed. Peers: on Kafka and RabbitMQ each node
  listens on a loopback address of its own (`127.0.29.x`, `127.0.26.x`) and runs with a
  group id of its own, and the cut is iptables rules (`fault_tests/netcut.py`) that drop
  every packet to and from the node: replication, the KRaft quorum and heartbeats, the
  Erlang distribution. The peers see a silent black hole, as behind a pulled cable, and
  notice by their own timeouts (Kafka fences the node 6 s after its last heartbeat;
  RabbitMQ's `net_ticktime` is 6 s here). Each case checks that premise during the cut:
  Kafka's other nodes must have fenced the node (it is out of every ISR and leads no
  partition), RabbitMQ's both see it down; the case fails otherwise, and the premise and
  when it held are in "what was done". On NATS the routes go through proxies too (one per
  direction and node pair), on Redis replication and Sentinel monitoring (every
  connection to a data node goes through its proxy). Without iptables (not root) the
  Kafka and RabbitMQ cuts fall back to clients only and say so ("inter-node: not cut");
  in CI that is an error.
- **A killed consumer** is `SIGKILL` of a consumer process (not a clean close): its
  unacked deliveries come back after their lease (5 s here); a new process is started.
- **A cluster restart** stops every node with `SIGTERM` and starts them all again.
- **SQS** is a managed service: the topology is one moto server (SQS and SNS) behind a
  proxy, standing for the AWS endpoint. A network cut is the proxy's; a killed consumer
  is as above (the lease is the visibility timeout). Killing or restarting moto is not a
  fault of ours to survive: moto keeps every queue and message in memory and has no
  persistence option, so those two cases are "n/a" (the run checks that premise: a
  message sent before the restart is gone after it).

The workload (`fault_tests/workload.py`): one producer process sends numbered messages at
50/s for 20 s and records each number whose `send` returned (a send that raised is retried
with the same number); two consumer processes (group shared, prefetch 10) record each
number they process before acking it. The fault happens 6 s in (a node stays down for 4 s,
or cut for 4 s or until the premise above held, whichever is later). Then the producer
ends, the consumers drain (at most 40 s), and the case asserts **lost = 0** (every
confirmed number processed at least once), duplicates within `2 x prefetch x consumer
processes + producer retries`, recovery within 30 s, and no consumer process dead or
stuck.

Columns: *sent* is the confirmed sends; *processed* the distinct numbers processed;
*lost* confirmed but never processed; *duplicates* extra processings; *retries* sends that
raised and were retried; *recovery* the longest stretch after the fault without progress
(the larger of *producer stall*, without a confirmed send, and *consumer stall*, without a
processed message; until the producer ended).
"""


BACKEND_NOTES = {
    "sqs": "One moto server (SQS and SNS, `mode=sns`: the topic an SNS topic, the group "
           "an SQS queue subscribed to it) behind a TCP proxy: SQS has no nodes or leader "
           "of ours. *node_cut* makes the endpoint unreachable (connections reset) for "
           "4 s; *consumer_killed*'s in-flight messages come back when their visibility "
           "timeout (the 5 s lease) runs out. Killing or restarting the service is not "
           "applicable: moto keeps its state in memory (no persistence option), so a "
           "restart loses every queue and message, and AWS's own restarts are not ours "
           "to test.",
}
"""A paragraph under a backend's table: what its faults mean there."""


def _load(records: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(records.glob("*.json"))]


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    return "-" if value is None else str(value)


def render(records: list[dict[str, Any]], wall: float | None = None,
           commit: str | None = None, note: str | None = None) -> str:
    """The Markdown page for ``records`` (see the module docstring)."""
    lines = [
        "# Reliability under faults",
        "",
        "What the fault suite (`fault_tests/`, issue #18) measured on clustered brokers: a",
        "producer and two consumers in separate processes while a node is killed or cut off,",
        "a consumer process is killed, or the whole cluster restarts. Regenerate with",
        "`python -m pytest fault_tests/test_faults.py` then `python -m fault_tests.report`.",
        "",
    ]
    by_backend: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_backend.setdefault(str(record["backend"]), []).append(record)
    ran = [r for r in records if "not_applicable" not in r]
    total_lost = sum(int(r["lost"]) for r in ran)
    skipped = len(records) - len(ran)
    lines += [f"**{len(ran)} cases, {total_lost} confirmed message(s) lost"
              + (f"; {skipped} not applicable (see the tables)" if skipped else "") + ".**",
              ""]
    if wall is not None or commit is not None:
        parts = []
        if wall is not None:
            parts.append(f"wall time of the whole run {wall:.0f} s")
        if commit is not None:
            parts.append(f"code at {commit}")
        lines += ["Run: " + "; ".join(parts) + " (2 shared CPU cores).", ""]
    if note:
        lines += [note, ""]
    for backend in sorted(by_backend):
        rows = sorted(by_backend[backend],
                      key=lambda r: FAULT_ORDER.index(r["fault"])
                      if r["fault"] in FAULT_ORDER else len(FAULT_ORDER))
        lines += [
            f"## {backend}", "",
            "| fault | what was done | sent | processed | lost | duplicates | retries "
            "| recovery s | producer stall s | consumer stall s |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            if "not_applicable" in r:
                lines.append(f"| {r['fault']} | n/a: {r['not_applicable']} (checked: "
                             f"{r.get('premise', '-')}) |" + " n/a |" * 8)
                continue
            lines.append("| " + " | ".join(_fmt(v) for v in (
                r["fault"], r.get("action", ""), r["sent"], r["processed"], r["lost"],
                r["duplicates"], r.get("producer_retries"), r["recovery_s"],
                r.get("producer_stall_s"), r.get("consumer_stall_s"))) + " |")
        lines.append("")
        if backend in BACKEND_NOTES:
            lines += [BACKEND_NOTES[backend], ""]
    return "\n".join(lines) + "\n" + HOW


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fault_tests.report")
    parser.add_argument("--records", type=Path, default=ROOT / "build" / "faults")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "reliability.md")
    parser.add_argument("--wall", type=float)
    parser.add_argument("--commit")
    parser.add_argument("--note", help="a paragraph under the run line (conditions)")
    args = parser.parse_args(argv)
    records = _load(args.records)
    if not records:
        print(f"no fault records in {args.records}", file=sys.stderr)
        return 1
    args.out.write_text(render(records, args.wall, args.commit, args.note))
    print(f"wrote {args.out} ({len(records)} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
