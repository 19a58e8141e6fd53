"""The fault suite's workload: a producer and consumers, each a separate process.

``python -m fault_tests.workload produce URL TOPIC FILE --rate R --duration S`` sends the
numbers 0, 1, 2... (the body is the number in ASCII) at ``R`` per second for ``S`` seconds
or until SIGTERM/SIGINT (after the send in progress), and appends ``<number> <unix time>``
to FILE (flushed per line) each time ``send`` **returned**: FILE is what the broker
confirmed. A send that raises is retried with the same number until it returns (a line
``retry <number> <error type>`` notes each retry: a retried send whose first attempt did
reach the broker is a legitimate duplicate). The last line is ``done <unix time>``.

``python -m fault_tests.workload consume URL TOPIC GROUP FILE --prefetch P --lease L``
receives from the group and, for each message, appends ``<number> <unix time>`` to FILE
(flushed) **before** acking it: FILE is what was processed at least once. It runs until
SIGTERM/SIGINT (or SIGKILL, the fault). Both keep their client, producer and consumer
across errors (recovering is the client's job, and the harness measures how long it
takes); they open them again only when closed, or after ``REOPEN_AFTER`` seconds of
errors in a row.

:func:`read_numbers` and :func:`analyse` read the files back for the harness.
"""

from __future__ import annotations

import argparse
import collections
import logging
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType

import mqkit

__all__ = ["Analysis", "analyse", "main", "read_numbers"]

log = logging.getLogger("fault_tests.workload")

REOPEN_AFTER = 30.0
"""Seconds of consecutive errors after which a process opens its client again."""


_stopping = False


def _stop(signum: int, frame: FrameType | None) -> None:
    """SIGTERM/SIGINT: leave the loop after this receive (at most its 1 s timeout), close
    the client. A flag, not an exception: raised inside the client it would be wrapped."""
    global _stopping
    _stopping = True


def produce(url: str, topic: str, out: Path, rate: float, duration: float) -> int:
    """See the module docstring; returns 0."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    interval = 1.0 / rate
    start = time.monotonic()
    number = 0
    link = _Link(url)
    with out.open("a", buffering=1) as f:
        while not _stopping and time.monotonic() - start < duration:
            due = start + number * interval
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                link.producer(topic).send(str(number).encode())
            except mqkit.MQError as exc:
                f.write(f"retry {number} {type(exc).__name__}\n")
                link.failed(f"send {number}", exc)
                continue
            link.succeeded()
            f.write(f"{number} {time.time():.3f}\n")
            number += 1
        f.write(f"done {time.time():.3f}\n")
    link.close()
    return 0


def consume(url: str, topic: str, group: str, out: Path, *, prefetch: int, lease: float) -> int:
    """See the module docstring; returns 0 on SIGTERM/SIGINT."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    link = _Link(url)
    with out.open("a", buffering=1) as f:
        while not _stopping:
            try:
                messages = link.consumer(topic, group, prefetch, lease).receive(
                    max_messages=prefetch, timeout=1.0)
            except mqkit.MQError as exc:
                link.failed("receive", exc)
                continue
            link.succeeded()
            for msg in messages:
                f.write(f"{int(msg.body)} {time.time():.3f}\n")
                try:
                    msg.ack()
                except mqkit.MQError as exc:  # it comes back: a duplicate, counted
                    log.warning("ack %s: %s", msg.body, exc)
    link.close()
    return 0


class _Link:
    """The process's client and its producer or consumer, kept across errors: recovering
    is the client's job. They are opened again only when closed (:class:`mqkit.Closed`) or
    still failing after REOPEN_AFTER seconds (a safety net, logged)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client: mqkit.Client | None = None
        self.endpoint: mqkit.Producer | mqkit.Consumer | None = None
        self.failing_since: float | None = None

    def _client(self) -> mqkit.Client:
        if self.client is None:
            self.client = mqkit.connect(self.url)
        return self.client

    def producer(self, topic: str) -> mqkit.Producer:
        if self.endpoint is None:
            self.endpoint = self._client().producer(topic)
        assert isinstance(self.endpoint, mqkit.Producer)
        return self.endpoint

    def consumer(self, topic: str, group: str, prefetch: int, lease: float) -> mqkit.Consumer:
        if self.endpoint is None:
            self.endpoint = self._client().consumer(topic, group, prefetch=prefetch,
                                                    lease=lease)
        assert isinstance(self.endpoint, mqkit.Consumer)
        return self.endpoint

    def succeeded(self) -> None:
        self.failing_since = None

    def failed(self, what: str, exc: mqkit.MQError) -> None:
        log.warning("%s: %s: %s", what, type(exc).__name__, exc)
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = now
        if isinstance(exc, mqkit.Closed) or now - self.failing_since > REOPEN_AFTER:
            log.warning("opening the client again (%s)", type(exc).__name__)
            self.close()
            self.failing_since = None
        time.sleep(0.2)

    def close(self) -> None:
        _close(self.endpoint, self.client)
        self.endpoint = self.client = None


def _close(*things: object) -> None:
    """Close each of ``things`` that is not None, ignoring errors (a dead broker)."""
    for thing in things:
        close = getattr(thing, "close", None)
        if close is not None:
            try:
                close()
            except Exception as exc:  # closing after a fault is best effort
                log.info("close %r: %s", thing, exc)


# -- reading the files back ---------------------------------------------------------------


def read_numbers(path: Path) -> list[tuple[int, float]]:
    """The ``<number> <time>`` lines of a workload file (other lines skipped; a line cut
    short by a SIGKILL is skipped too)."""
    records: list[tuple[int, float]] = []
    if not path.exists():
        return records
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():
            try:
                records.append((int(parts[0]), float(parts[1])))
            except ValueError:
                continue
    return records


def count_retries(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.startswith("retry ")) \
        if path.exists() else 0


@dataclass
class Analysis:
    """What a fault case measured (the JSON record of ``build/faults``)."""

    backend: str
    fault: str
    sent: int
    processed: int
    lost: int
    duplicates: int
    producer_retries: int
    recovery_s: float
    producer_stall_s: float
    consumer_stall_s: float
    first_confirm_after_s: float | None
    first_processed_after_s: float | None
    lost_sample: list[int] = field(default_factory=list)
    wall_s: float = 0.0

    def record(self) -> dict[str, object]:
        return asdict(self)


def _stall(times: Iterable[float], since: float, until: float) -> float:
    """The longest stretch without an event in ``[since, until]`` (the gaps from ``since``
    to the first event and from the last one to ``until`` count)."""
    previous = since
    worst = 0.0
    for t in sorted(t for t in times if since <= t <= until):
        worst = max(worst, t - previous)
        previous = t
    return max(worst, until - previous)


def _first_after(times: Iterable[float], since: float) -> float | None:
    after = [t for t in times if t >= since]
    return round(min(after) - since, 3) if after else None


def analyse(backend: str, fault: str, confirmed_file: Path, processed_files: list[Path], *,
            fault_at: float, producer_done: float) -> Analysis:
    """Lost (confirmed, never processed), duplicates (processed more than once) and the
    stalls after ``fault_at``: the longest stretch, up to ``producer_done``, without a
    confirmed send (producer) or without a processed message (consumers)."""
    confirmed = read_numbers(confirmed_file)
    processed = [r for path in processed_files for r in read_numbers(path)]
    counts = collections.Counter(n for n, _ in processed)
    lost = sorted({n for n, _ in confirmed} - set(counts))
    producer_stall = _stall((t for _, t in confirmed), fault_at, producer_done)
    consumer_stall = _stall((t for _, t in processed), fault_at, producer_done)
    return Analysis(
        backend=backend, fault=fault, sent=len(confirmed), processed=len(counts),
        lost=len(lost), duplicates=sum(c - 1 for c in counts.values()),
        producer_retries=count_retries(confirmed_file),
        recovery_s=round(max(producer_stall, consumer_stall), 3),
        producer_stall_s=round(producer_stall, 3), consumer_stall_s=round(consumer_stall, 3),
        first_confirm_after_s=_first_after((t for _, t in confirmed), fault_at),
        first_processed_after_s=_first_after((t for _, t in processed), fault_at),
        lost_sample=lost[:20])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fault_tests.workload")
    sub = parser.add_subparsers(dest="role", required=True)
    p = sub.add_parser("produce")
    p.add_argument("url")
    p.add_argument("topic")
    p.add_argument("file", type=Path)
    p.add_argument("--rate", type=float, default=50.0)
    p.add_argument("--duration", type=float, default=20.0)
    c = sub.add_parser("consume")
    c.add_argument("url")
    c.add_argument("topic")
    c.add_argument("group")
    c.add_argument("file", type=Path)
    c.add_argument("--prefetch", type=int, default=10)
    c.add_argument("--lease", type=float, default=5.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    if args.role == "produce":
        return produce(args.url, args.topic, args.file, args.rate, args.duration)
    return consume(args.url, args.topic, args.group, args.file, prefetch=args.prefetch,
                   lease=args.lease)


if __name__ == "__main__":
    sys.exit(main())
