#!/usr/bin/env python3
"""Measure the contract suite's strength: seed one plausible bug at a time into a copy of
the ``memory://`` driver and see whether the suite catches it.

    python scripts/seed_bugs.py                 # every bug, after a clean baseline run
    python scripts/seed_bugs.py --list          # the bugs, nothing run
    python scripts/seed_bugs.py ack-noop ttl-ignored --jobs 2
    python scripts/seed_bugs.py --maxfail 0     # run each to the end: every catching case

How: the sources of ``mqkit/memory`` are copied into a temporary directory as a package
``mqkit_seeded`` (its relative imports of mqkit made absolute), registered the way pip
would (a ``.dist-info`` whose ``entry_points.txt`` names it under ``mqkit.adapters``) as the
backend ``seeded://``, with capabilities those of memory:// under the name ``seeded``. A bug
is a list of exact text edits to that copy; each edit's old text must occur exactly once, so
a bug whose anchor drifted away from the driver fails loudly instead of seeding nothing. The
repository's files are never touched. The suite then runs as a third party's adapter runs
it (``MQKIT_CONTRACT_URLS=seeded=seeded://...``, ``MQKIT_CONTRACT_BACKENDS=seeded``), one
pytest process per bug, stopping at the first failing case (``--maxfail``, default 1: one
catch is enough and the machine is shared).

Before any bug, the unmodified copy runs the same way (the baseline): it must pass, so a
bug caught is caught because of the bug, not because the copy or the harness is broken
(``--no-baseline`` skips it). The table printed at the end says per bug whether it was
caught and by which cases (``test_x[seeded-face]``, contract numbers from the conformance
report); the exit status is 1 when a bug survived or the baseline failed, else 0.
Stdlib only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "mqkit" / "memory"
PACKAGE = "mqkit_seeded"
BACKEND = "seeded"
FAILED = re.compile(r"^FAILED (\S+)", re.M)
ERROR = re.compile(r"^ERROR (\S+)", re.M)


@dataclass(frozen=True)
class Edit:
    """Replace ``old`` (which must occur exactly once) by ``new`` in ``file`` of the copy."""

    file: str
    old: str
    new: str


@dataclass(frozen=True)
class Bug:
    """One plausible driver bug: a name, what it breaks, and the edits that seed it."""

    name: str
    what: str
    edits: tuple[Edit, ...]


def _both_drivers(old: str, new: str) -> tuple[Edit, ...]:
    """The same edit to the blocking driver and, with ``async``/``await``, the asyncio one."""
    aold = old.replace("    def ", "    async def ")
    anew = new.replace("    def ", "    async def ")
    return Edit("_driver.py", old, new), Edit("_async_driver.py", aold, anew)


_ACK = ("    def ack(self, deliveries: Sequence[Delivery]) -> None:\n"
        "        self._broker.settle(self._member, deliveries, False)\n")
_REJECT = ("    def reject(self, deliveries: Sequence[Delivery]) -> None:\n"
           "        self._broker.settle(self._member, deliveries, False)\n")
_TAKE = ("out.append(Delivery(entry.message, topic, lease, count + 1, entry.timestamp,\n"
         "                                entry.broker_id))")

BUGS: tuple[Bug, ...] = (
    Bug("ack-noop", "ack does nothing (the lease runs out and the message comes back)",
        _both_drivers(_ACK, _ACK.replace("self._broker.settle(", "None and ("))),
    Bug("reject-requeues", "reject puts the message back like a nack",
        _both_drivers(_REJECT, _REJECT.replace("deliveries, False)", "deliveries, True)"))),
    Bug("nack-ignores-delay", "a nack with a delay makes the message ready at once",
        (Edit("_state.py", "now, now + delay if delay else 0.0)", "now, 0.0)"),)),
    Bug("count-not-incremented", "delivery_count stays 1 on every redelivery",
        (Edit("_state.py", _TAKE, _TAKE.replace("count + 1, entry.timestamp",
                                                "1, entry.timestamp")),)),
    Bug("headers-dropped", "deliveries carry no headers",
        (Edit("_state.py", _TAKE, _TAKE.replace(
            "Delivery(entry.message,", "Delivery(Message(entry.message.body, "
            "key=entry.message.key, id=entry.message.id, "
            "content_type=entry.message.content_type, "
            "correlation_id=entry.message.correlation_id, "
            "reply_to=entry.message.reply_to),")),)),
    Bug("message-id-replaced", "deliveries carry the broker's sequence number as the id",
        (Edit("_state.py", _TAKE, _TAKE.replace(
            "Delivery(entry.message,", "Delivery(Message(entry.message.body, "
            "key=entry.message.key, headers=entry.message.headers, id=entry.broker_id),")),)),
    Bug("dlq-headers-dropped", "messages on a dead-letter topic lose their headers "
        "(the failure reason among them)",
        (Edit("_state.py", _TAKE, _TAKE.replace(
            "Delivery(entry.message,", "Delivery(entry.message if not topic.endswith('.dlq') "
            "else Message(entry.message.body, id=entry.message.id),")),)),
    Bug("topic-is-group-name", "deliveries name the group where the topic belongs",
        (Edit("_state.py", _TAKE, _TAKE.replace("entry.message, topic, lease",
                                                "entry.message, self.name, lease")),)),
    Bug("broker-id-reused", "every delivery of a topic has the same broker id",
        (Edit("_state.py", "self.broker_id = str(seq)", 'self.broker_id = "1"'),)),
    Bug("timestamp-missing", "deliveries carry no broker timestamp",
        (Edit("_state.py", _TAKE, _TAKE.replace("entry.timestamp", "None")),)),
    Bug("timestamp-at-receipt", "a delivery's timestamp is the time of receipt, not of send",
        (Edit("_state.py", _TAKE, _TAKE.replace("entry.timestamp",
                                                '__import__("time").time()')),)),
    Bug("groups-share-queue", "every group of a topic shares the first group's queue",
        (Edit("_state.py", "        group = Group(self.name, name)\n",
              "        group = next(iter(self.groups.values()), None) or "
              "Group(self.name, name)\n"),)),
    Bug("receive-over-max", "receive returns up to prefetch messages, ignoring max_messages",
        (Edit("_state.py", "room = min(max_messages, member.prefetch - member.held)",
              "room = member.prefetch - member.held"),)),
    Bug("lease-never-expires", "a lease not settled is held for ever",
        (Edit("_state.py", "if batch.live and deadline > now:", "if batch.live:"),)),
    Bug("close-keeps-leases", "closing a consumer leaves its messages leased until expiry",
        (Edit("_broker.py", "if group.release(member, time.monotonic()) or group in",
              "if group in"),)),
    Bug("order-reversed", "fresh messages go out newest first",
        (Edit("_state.py", "entry, count = fresh.popleft(), 0", "entry, count = fresh.pop(), 0"),)),
    Bug("priority-ignored", "message priority has no effect",
        (Edit("_state.py", "self.rank = -(message.priority or 0)", "self.rank = 0"),)),
    Bug("ttl-ignored", "messages never expire",
        (Edit("_state.py", "self.expires = now + message.ttl if message.ttl else None",
              "self.expires = None"),)),
    Bug("delay-ignored", "a delayed send is ready at once",
        (Edit("_state.py", "self.due = now + message.delay if message.delay else 0.0",
              "self.due = 0.0"),)),
    Bug("purge-noop", "purge leaves the group as it was",
        (Edit("_broker.py", "self._group(topic, group).purge()", "self._group(topic, group)"),)),
    Bug("depth-ignores-leased", "depth leaves out the messages consumers hold",
        (Edit("_state.py", "len(self.delayed) + self.in_flight", "len(self.delayed)"),)),
    Bug("extend-noop", "extend_lease does nothing",
        (Edit("_broker.py", "self._check(member).extend(deliveries, seconds, time.monotonic())",
              "self._check(member)"),)),
    Bug("release-counts", "a released message comes back with its delivery count raised",
        (Edit("_state.py", "(entry.rank, entry.seq, entry, lease.count - 1)",
              "(entry.rank, entry.seq, entry, lease.count)"),)),
    Bug("dedup-ignored", "a message id sent twice within the window is delivered twice",
        (Edit("_state.py", "                if mid in seen:\n                    continue\n",
              "                if mid in seen:\n                    pass\n"),)),
    Bug("earliest-ignored", "a group created at earliest starts at the latest message",
        (Edit("_state.py", "        if earliest:\n", "        if False:\n"),)),
    Bug("delete-no-wake", "deleting a topic leaves its waiting receivers asleep",
        (Edit("_broker.py", "group.deleted = True\n                self._wake(group)\n",
              "group.deleted = True\n"),)),
)


@dataclass
class Outcome:
    """What one run found: caught (a case failed), the failing cases, the behaviours."""

    bug: str
    code: int
    seconds: float
    cases: list[str] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    tail: str = ""

    @property
    def caught(self) -> bool:
        return bool(self.cases)


def _absolute_imports(text: str) -> str:
    """The copy's ``from ..x import`` (relative to mqkit) made ``from mqkit.x import``."""
    return re.sub(r"^(\s*)from \.\.(\w)", r"\1from mqkit.\2", text, flags=re.M)


def seed(site: Path, bug: Bug | None) -> None:
    """Write ``mqkit_seeded`` (the memory driver with ``bug``) and its metadata to ``site``."""
    package = site / PACKAGE
    package.mkdir(parents=True)
    for path in sorted(SOURCE.glob("*.py")):
        (package / path.name).write_text(_absolute_imports(path.read_text()))
    renames = (
        Edit("__init__.py", 'plugin = AdapterPlugin(name="memory", schemes=("memory",)',
             f'plugin = AdapterPlugin(name="{BACKEND}", schemes=("{BACKEND}",)'),
        Edit("_options.py", 'backend="memory"', f'backend="{BACKEND}"'),
    )
    for edit in (*renames, *(bug.edits if bug else ())):
        target = package / edit.file
        text = target.read_text()
        found = text.count(edit.old)
        if found != 1:
            name = bug.name if bug and edit in bug.edits else "the copy"
            raise SystemExit(f"{name}: {edit.file} holds {found} copies of {edit.old!r} "
                             "(the memory driver changed; update the bug)")
        target.write_text(text.replace(edit.old, edit.new))
    dist = site / f"{PACKAGE}-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(f"[mqkit.adapters]\n{BACKEND} = {PACKAGE}:plugin\n")


def _environment(site: Path, report: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MQKIT_", "PYTEST_")) and k != "PYTHONPATH"}
    env.update({
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)]),
        "MQKIT_CONTRACT_URLS": f"{BACKEND}={BACKEND}://suite",
        "MQKIT_CONTRACT_BACKENDS": BACKEND,
        "MQKIT_CONFORMANCE_REPORT": str(report),
    })
    return env


def run(bug: Bug | None, maxfail: int, select: str | None, timeout: float) -> Outcome:
    """Run the contract suite on the memory driver seeded with ``bug`` (None: unmodified)."""
    name = bug.name if bug else "(baseline)"
    with tempfile.TemporaryDirectory(prefix="mqkit-seed-") as tmp:
        work = Path(tmp)
        seed(work / "site", bug)
        report = work / "report.json"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE",
               "contract_tests"]
        if maxfail > 0:
            cmd.append(f"--maxfail={maxfail}")
        if select:
            cmd += ["-k", select]
        start = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=_environment(work / "site", report),
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=timeout, check=False)
            code, output = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            code, output = -1, f"timed out after {timeout:.0f} s: {exc.stdout!r}"
        took = time.monotonic() - start
        cases = sorted({c.split("::")[-1] for c in FAILED.findall(output) + ERROR.findall(output)})
        if code == -1:
            cases.append("(suite timed out)")
        numbers: set[int] = set()
        if report.exists():
            data = json.loads(report.read_text())
            behaviours = data.get("backends", {}).get(BACKEND, {}).get("behaviours", {})
            numbers = {int(n) for n, by_face in behaviours.items()
                       if any(e.get("status") == "failed" for e in by_face.values())}
        tail = "\n".join(output.strip().splitlines()[-15:])
        return Outcome(name, code, took, cases, sorted(numbers), tail)


def table(outcomes: list[Outcome]) -> str:
    """The results as a Markdown table: bug, caught, by which cases (behaviour numbers)."""
    what = {b.name: b.what for b in BUGS}
    rows = ["| bug | what it breaks | caught | by | s |", "|---|---|---|---|---|"]
    for o in outcomes:
        by = ", ".join(o.cases) + (f" (contract {', '.join(map(str, o.numbers))})"
                                   if o.numbers else "")
        rows.append(f"| {o.bug} | {what.get(o.bug, '')} | {'yes' if o.caught else 'NO'} "
                    f"| {by or '—'} | {o.seconds:.0f} |")
    caught = sum(o.caught for o in outcomes)
    rows.append(f"\n{caught} of {len(outcomes)} seeded bugs caught.")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/seed_bugs.py",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("bugs", nargs="*", metavar="BUG", help="bugs to seed (default: all)")
    parser.add_argument("--list", action="store_true", help="print the bugs and exit")
    parser.add_argument("--jobs", type=int, default=1, help="bugs run at once (default 1)")
    parser.add_argument("--maxfail", type=int, default=1,
                        help="stop a run after this many failed cases; 0: never (default 1)")
    parser.add_argument("-k", dest="select", help="pytest -k expression for every run")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds one run may take (default 900)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the run of the unmodified copy")
    args = parser.parse_args(argv)
    by_name = {b.name: b for b in BUGS}
    if args.list:
        for b in BUGS:
            print(f"{b.name:24} {b.what}")
        return 0
    unknown = [n for n in args.bugs if n not in by_name]
    if unknown:
        parser.error(f"unknown bug {unknown[0]!r}; see --list")
    chosen = [by_name[n] for n in args.bugs] if args.bugs else list(BUGS)
    for bug in chosen:  # every anchor must be found before anything runs
        with tempfile.TemporaryDirectory(prefix="mqkit-seed-") as tmp:
            seed(Path(tmp), bug)
    if not args.no_baseline:
        base = run(None, args.maxfail, args.select, args.timeout)
        print(f"baseline: exit {base.code} in {base.seconds:.0f} s", flush=True)
        if base.code != 0:
            print(f"the unmodified copy fails; no bug measured:\n{base.tail}")
            return 1
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run, bug, args.maxfail, args.select, args.timeout)
                   for bug in chosen]
        for future in futures:
            outcome = future.result()
            outcomes.append(outcome)
            print(f"{outcome.bug}: {'caught' if outcome.caught else 'SURVIVED'} "
                  f"({', '.join(outcome.cases) or outcome.tail.splitlines()[-1:]}) "
                  f"in {outcome.seconds:.0f} s", flush=True)
    print()
    print(table(outcomes))
    return 0 if all(o.caught for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
