"""Why each dash of the capability matrix is a dash: one line per backend x feature.

The one place these reasons live. ``python -m contract_tests.dashes`` writes them into the
"Not supported" section of each backend's page (``docs/backends/<page>.md``, between
:data:`BEGIN` and :data:`END`, each line with a stable anchor from :func:`anchor`);
:mod:`contract_tests.report` links every dash of the matrix to that anchor and refuses to
render a dash of a documented backend that has no reason here. So the pages and the matrix
cannot drift: edit :data:`REASONS`, then run ``python -m contract_tests.dashes``
(``--check`` only reports pages that are out of date).

A reason says why the broker makes the feature impossible, or, honestly, that mqkit has not
built it yet (with the plan where there is one). A feature unsupported only under some
options says which (``persistence`` with ``acks=1``...), so the line is true whatever the
run's configuration was.

    python -m contract_tests.dashes [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["BEGIN", "END", "PAGES", "REASONS", "TITLES", "anchor", "link", "render_section",
           "update_pages"]

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

PAGES: dict[str, str] = {
    "kafka": "kafka", "memory": "memory", "nats": "nats", "nats-core": "nats",
    "rabbitmq": "rabbitmq", "redis": "redis", "redis-pubsub": "redis", "sqs": "sqs",
}
"""Matrix column (a backend, or a mode of one) -> its page, ``docs/backends/<page>.md``."""

TITLES: dict[str, str] = {
    "nats": "JetStream (`nats://`, the default mode)",
    "nats-core": "Core NATS (`mode=core`)",
    "redis": "Streams (`redis://`, the default mode)",
    "redis-pubsub": "Pub/sub (`mode=pubsub`)",
}
"""Sub-headings for pages that document more than one column."""


_CORE_NATS: dict[str, str] = {
    "nack": "Core NATS has no acknowledgements: a delivered message cannot be given back.",
    "nack_delay": "No acknowledgements, so no redelivery, delayed or not.",
    "delay": "Core NATS stores nothing, so it cannot hold a message back until later.",
    "dead_letter": "Nothing is redelivered, so there are no failed attempts to count and "
                   "dead-letter after; use JetStream (the default mode).",
    "ordering": "Members of a queue group get messages in turn and order holds only per "
                "publishing connection: no per-key order.",
    "replay": "Nothing is stored: there is no earliest message to start from.",
    "priority": "Messages go out as they arrive; nothing is stored that could be reordered.",
    "ttl": "Nothing is stored, so nothing waits long enough to expire: a message reaches "
           "the subscribers of the moment, at once, or no one.",
    "dedup": "The server keeps no message ids (the `Nats-Msg-Id` window is JetStream's).",
    "lease_extension": "No acknowledgements, so no lease to extend.",
    "persistence": "Core NATS keeps no message: a restart loses what was in flight, by "
                   "design.",
    "retention": "A message reaches only the subscribers connected when it is published.",
    "redelivery_on_close": "A delivered message is gone: nothing returns to the group when "
                           "a subscriber closes.",
    "admin_stats": "There is no backlog to measure (no queue, no stream).",
    "purge": "There is no backlog to purge.",
    "release": "A message handed to a subscriber cannot be given back.",
    "timestamp": "Core NATS messages carry no server timestamp. Not done yet: the sender "
                 "could stamp one in a header, as the RabbitMQ adapter does.",
}

_PUBSUB: dict[str, str] = {
    "nack": "Pub/sub has no acknowledgements: a delivered message cannot be given back.",
    "nack_delay": "No acknowledgements, so no redelivery, delayed or not.",
    "delay": "A channel stores nothing, so it cannot hold a message back until later.",
    "dead_letter": "Nothing is redelivered, so there are no failed attempts to count and "
                   "dead-letter after; use streams (the default mode).",
    "groups": "A channel has no consumer groups: there is no group state to keep apart.",
    "competing_consumers": "Every subscriber of a channel gets every message: subscribers "
                           "cannot share a channel's messages.",
    "replay": "Nothing is stored: there is no earliest message to start from.",
    "priority": "Messages go out as they arrive; nothing is stored that could be reordered.",
    "ttl": "Nothing is stored, so nothing waits long enough to expire.",
    "dedup": "The server keeps no message ids.",
    "request_reply": "Not done yet: the portable emulation (a private reply topic) has not "
                     "been validated on pub/sub, where a reply sent before the requester "
                     "subscribes is lost.",
    "lease_extension": "No acknowledgements, so no lease to extend.",
    "persistence": "Pub/sub keeps no message: a restart loses what was in flight, by design.",
    "retention": "A message reaches only the subscribers connected when it is published.",
    "redelivery_on_close": "A delivered message is gone: nothing returns when a subscriber "
                           "closes.",
    "admin_stats": "There is no backlog to measure.",
    "purge": "There is no backlog to purge.",
    "release": "A message handed to a subscriber cannot be given back.",
    "timestamp": "Pub/sub messages carry no server timestamp. Not done yet: the sender "
                 "could stamp one.",
}

REASONS: dict[str, dict[str, str]] = {
    "kafka": {
        "priority": "A partition is one ordered log, and no faithful emulation exists: "
                    "band topics would split among a group's members by partition, so a "
                    "member holding only low bands keeps reading them while another "
                    "member's high band waits (no group-wide highest-first).",
        "dedup": "The idempotent producer drops only its own retries within one producer "
                 "session; Kafka has no broker-side dedup by message id.",
        "lease_extension": "Kafka has no per-message lease: a consumer keeps its partitions "
                           "while it polls within `max.poll.interval.ms`.",
        "release": "Kafka keeps no delivery count; the adapter's own count rises when a "
                   "message is given back, and the run loop subtracts the releases it made.",
        "persistence": "Only with `acks=all` (the default) is an accepted record on every "
                       "in-sync replica; with `acks=1` or `acks=0` a broker failure can "
                       "lose accepted records.",
    },
    "memory": {
        "persistence": "memory:// lives in the process: nothing survives it, by design.",
    },
    "nats": {
        "release": "JetStream counts every redelivery (`num_delivered`), a NAK included: a "
                   "message given back comes back counted; the run loop subtracts the "
                   "releases it made.",
        "persistence": "With `storage=memory` streams live in the server's memory and a "
                       "restart loses them; `storage=file` (the default) is native.",
    },
    "nats-core": _CORE_NATS,
    "rabbitmq": {
        "replay": "Classic and quorum queues delete what was acked, so only a topic named "
                  "`*.stream` (an archive stream, bounded retention) has history for a "
                  "group created at `earliest`; other topics have none.",
        "priority": "Native only on classic queues declared with `x-max-priority`: set "
                    "`max_priority`; without it a queue delivers in arrival order.",
        "dedup": "RabbitMQ has no broker-side dedup by message id (only a third-party "
                 "plugin).",
        "release": "A requeued message comes back counted (quorum queues' "
                   "`x-delivery-count`, the adapter's own count on classic queues); the run "
                   "loop subtracts the releases it made.",
        "persistence": "With `persistent=false` messages are not written to disk and a "
                       "broker restart loses them.",
    },
    "redis": {
        "dedup": "XADD keeps no index of message ids. Not done yet: a dedup key per id "
                 "(SET NX with expiry) is not built.",
        "release": "Not done yet: a message given back is claimed again, which raises its "
                   "delivery count; the run loop subtracts the releases it made.",
        "persistence": "Without AOF (`appendonly no`) Redis keeps only periodic snapshots "
                       "and a restart loses what came since; declared with AOF on (or "
                       "`persistence=on`).",
    },
    "redis-pubsub": _PUBSUB,
    "sqs": {
        "ordering": "Standard queues keep no order. Native on FIFO topics (`*.fifo`, or "
                    "every topic with `fifo=true`): `client.capabilities_for(topic)`.",
        "dedup": "Standard queues deduplicate nothing. Native on FIFO topics (message id "
                 "as MessageDeduplicationId, SQS's 5-minute window).",
        "delay": "FIFO queues take no per-message DelaySeconds (`fifo=true`, `*.fifo` "
                 "topics); standard topics have it.",
        "groups": "With `mode=queue` a topic is one queue with one group; `mode=sns` (the "
                  "default) fans out to several.",
        "replay": "SQS deletes what was acked and a new queue starts empty: no history to "
                  "replay.",
        "priority": "Emulated with a queue per band on standard topics; a FIFO topic "
                    "(`*.fifo`, `fifo=true`) keeps order per key, which reading bands "
                    "highest first would break, so it declares none.",
        "persistence": "Declared on AWS's endpoints (or with `persistent=true`) only: an "
                       "endpoint override may be an emulator (moto) that forgets on restart.",
        "release": "Every receive counts (`ApproximateReceiveCount`): SQS cannot give a "
                   "message back uncounted; the run loop subtracts the releases it made.",
    },
}
"""Matrix column -> feature -> one line: why that feature is a dash there."""

BEGIN = ("<!-- not-supported: generated by `python -m contract_tests.dashes` from "
         "contract_tests/dashes.py; edit the reasons there -->")
END = "<!-- /not-supported -->"


def anchor(column: str, feature: str) -> str:
    """The stable anchor of ``column``'s reason for ``feature`` on its page."""
    return f"no-{column}-{feature}".replace("_", "-")


def link(column: str, feature: str) -> str | None:
    """The link from ``docs/capabilities.md`` to the reason, or ``None`` without one."""
    if feature not in REASONS.get(column, {}) or column not in PAGES:
        return None
    return f"backends/{PAGES[column]}.md#{anchor(column, feature)}"


def render_section(page: str) -> str:
    """The generated "Not supported" section of ``page`` (markers included)."""
    columns = [c for c, p in PAGES.items() if p == page and REASONS.get(c)]
    out = [BEGIN, "## Not supported", "",
           "One line per dash of the [capability matrix](../capabilities.md): why the broker "
           "makes the feature impossible, or what mqkit has not built yet. A feature "
           "unsupported only under some options names them.", ""]
    for column in columns:
        if len(columns) > 1:
            out += [f"### {TITLES.get(column, column)}", ""]
        for feature, reason in REASONS[column].items():
            out.append(f'- <a id="{anchor(column, feature)}"></a>**{feature}**: {reason}')
        out.append("")
    out.append(END)
    return "\n".join(out) + "\n"


def _with_section(text: str, section: str) -> str:
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        return head + section.rstrip("\n") + tail
    return text.rstrip("\n") + "\n\n" + section


def update_pages(docs: Path = DOCS, *, check: bool = False) -> list[str]:
    """Write each page's section; return the pages that changed (or, with ``check``,
    that are out of date, nothing written). A page that does not exist is reported."""
    stale = []
    for page in sorted(set(PAGES.values())):
        path = docs / "backends" / f"{page}.md"
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        new = _with_section(text, render_section(page))
        if new != text:
            stale.append(str(path))
            if not check:
                path.write_text(new, encoding="utf-8")
    return stale


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = update_pages(check=check)
    for path in stale:
        print(f"{'out of date' if check else 'updated'}: {path}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
