"""The conformance report renders to the capability matrix; every dash links to its
one-line reason on the backend's page (``contract_tests/dashes.py``, issue 19)."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any, Literal

import pytest

from contract_tests.dashes import PAGES, REASONS, anchor, link, update_pages
from contract_tests.report import FEATURES, main, missing_reasons, render
from mqkit import Capabilities, Feature, Support

ROOT = Path(__file__).resolve().parent.parent


def test_render_counts_and_marks() -> None:
    data = {"backends": {
        "memory": {"capabilities": {"nack": "native", "dead_letter": "emulated",
                                    "persistence": "unsupported", "max_headers": None},
                   "behaviours": {"1": {"sync": {"status": "passed"},
                                        "async": {"status": "passed"}},
                                  "37": {"sync": {"status": "unsupported", "reason": "x"},
                                         "async": {"status": "failed"}},
                                  "38": {"sync": {"status": "harness", "reason": "y"},
                                         "async": {"status": "harness", "reason": "y"}}}}}}
    page = render(data)
    assert "| nack | native |" in page
    assert "| dead_letter | emulated |" in page
    assert "| persistence | [—](backends/memory.md#no-memory-persistence) |" in page
    assert "| max_headers | unbounded |" in page
    assert "| backend | face | passed | failed | unsupported | harness |" in page
    assert "| memory | sync | 1 | 0 | 1 | 1 |" in page
    assert "| memory | async | 1 | 1 | 0 | 1 |" in page
    assert "| 37 | — / ✗ |" in page
    assert "| 38 | ○ / ○ |" in page  # a harness gap is not shown as a missing capability


def test_render_empty() -> None:
    assert "No backend was run." in render({})


def _backend(caps: dict[str, object], **more: Any) -> dict[str, Any]:
    return {"capabilities": caps, "behaviours": {}, **more}


SYNTHETIC: dict[str, Any] = {"backends": {
    "kafka": _backend({"dedup": "unsupported", "nack": "emulated"}),
    "sqs": {"capabilities": {"ordering": "unsupported", "dedup": "unsupported",
                             "delay": "emulated"},
            "topic_capabilities": {".fifo": {"ordering": "native", "dedup": "native",
                                             "delay": "unsupported"}},
            "behaviours": {"31": {
                "sync": {"status": "unsupported",
                         "reason": "sqs declares ordering unsupported on topic 'x'"},
                "async": {"status": "passed"}}}},
    "thirdparty": _backend({"dedup": "unsupported"}),
}}


def _row(page: str, name: str) -> list[str]:
    for line in page.splitlines():
        if line.startswith(f"| {name} |"):
            return [c.strip() for c in line.strip("|").split("|")][1:]
    raise AssertionError(f"no row {name!r}")


def test_every_dash_links_to_its_reason_and_topic_kinds_show_beside() -> None:
    page = render(SYNTHETIC)
    kafka, sqs, third = 0, 1, 2  # columns in name order
    assert _row(page, "dedup")[kafka] == "[—](backends/kafka.md#no-kafka-dedup)"
    assert _row(page, "nack")[kafka] == "emulated"
    # A third party's backend has no page here: its dash stays a plain dash.
    assert _row(page, "dedup")[third] == "—"
    # SQS: the client's standard topics, then what *.fifo topics declare.
    assert _row(page, "ordering")[sqs] == (
        "[—](backends/sqs.md#no-sqs-ordering); `*.fifo`: native")
    assert _row(page, "dedup")[sqs] == "[—](backends/sqs.md#no-sqs-dedup); `*.fifo`: native"
    assert _row(page, "delay")[sqs] == "emulated; `*.fifo`: [—](backends/sqs.md#no-sqs-delay)"
    # A behaviour ruled out by a declaration links to the same reason.
    assert _row(page, "31")[sqs] == "[—](backends/sqs.md#no-sqs-ordering) / ✓"


def test_a_dash_without_a_reason_is_refused(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    data = {"backends": {"kafka": _backend({"dedup": "unsupported", "groups": "unsupported"}),
                         "thirdparty": _backend({"groups": "unsupported"})}}
    assert ("kafka", "groups") not in [(b, f) for b in REASONS for f in REASONS[b]]
    assert missing_reasons(data) == [("kafka", "groups")]
    path = tmp_path / "conformance.json"
    path.write_text(json.dumps(data))
    assert main([str(path)]) == 1
    out = capsys.readouterr()
    assert out.out == "" and "kafka.groups" in out.err
    path.write_text(json.dumps(SYNTHETIC))
    assert missing_reasons(SYNTHETIC) == []
    assert main([str(path)]) == 0
    assert "no-kafka-dedup" in capsys.readouterr().out


def test_reasons_are_one_line_about_known_features_and_columns() -> None:
    for column, reasons in REASONS.items():
        assert column in PAGES, column
        for feature, reason in reasons.items():
            assert feature in FEATURES and Feature(feature), (column, feature)
            assert reason.strip() and "\n" not in reason and reason.endswith("."), (
                column, feature)


def test_backend_pages_carry_every_reason_under_its_anchor() -> None:
    assert update_pages(check=True) == [], (
        "docs/backends/*.md out of date: run python -m contract_tests.dashes")
    for column, reasons in REASONS.items():
        text = (ROOT / "docs" / "backends" / f"{PAGES[column]}.md").read_text()
        for feature, reason in reasons.items():
            target = link(column, feature)
            assert target == f"backends/{PAGES[column]}.md#{anchor(column, feature)}"
            assert f'<a id="{anchor(column, feature)}"></a>**{feature}**: {reason}' in text


def test_the_pages_section_is_rewritten_in_place(tmp_path: Path) -> None:
    (tmp_path / "backends").mkdir()
    page = tmp_path / "backends" / "kafka.md"
    page.write_text("# Kafka\n\nText.\n")
    assert str(page) in update_pages(tmp_path)
    once = page.read_text()
    assert once.startswith("# Kafka\n\nText.\n") and once.count("## Not supported") == 1
    page.write_text(once + "\n## After\n")
    assert update_pages(tmp_path, check=True) == []  # still current: nothing rewritten
    page.write_text(once.replace("**dedup**: ", "**dedup**: stale ") + "\n## After\n")
    assert update_pages(tmp_path, check=True) == [str(page)]
    update_pages(tmp_path)
    assert page.read_text() == once + "\n## After\n"


# -- every dash a declaration can produce has a reason, and no reason is stale -----------

def _declarations() -> dict[str, list[Capabilities]]:
    """What each matrix column's adapter declares, over the options that change it
    (pure functions of the options: no broker)."""
    from mqkit_kafka._driver import capabilities_for as kafka
    from mqkit_kafka._options import KafkaOptions
    from mqkit_nats._driver import CoreDriver, JetStreamDriver
    from mqkit_nats._options import NatsOptions
    from mqkit_rabbitmq._driver import capabilities_for as rabbitmq
    from mqkit_rabbitmq._options import RabbitOptions
    from mqkit_redis._capabilities import capabilities_for as redis
    from mqkit_redis._capabilities import pubsub_capabilities
    from mqkit_redis._options import RedisOptions
    from mqkit_sqs._driver import capabilities_for as sqs
    from mqkit_sqs._driver import fifo_capabilities
    from mqkit_sqs._options import SqsOptions

    from mqkit.memory._options import MemoryOptions
    from mqkit.memory._options import capabilities as memory

    modes: tuple[Literal["sns", "queue"], ...] = ("sns", "queue")
    persistence: tuple[Literal["auto", "on", "off"], ...] = ("auto", "on", "off")
    sqs_all = [sqs(SqsOptions(mode=mode, fifo=fifo, persistent=persistent), custom_endpoint=e)
               for mode, fifo, persistent, e in itertools.product(
                   modes, (False, True), (None, True, False), (False, True))]
    return {
        "kafka": [kafka(KafkaOptions()), kafka(KafkaOptions(acks="1", idempotence=False)),
                  kafka(KafkaOptions(acks="0", idempotence=False))],
        "memory": [memory(MemoryOptions())],
        "nats": [JetStreamDriver.capabilities_for(NatsOptions(storage=s), 1000)
                 for s in ("file", "memory")],
        "nats-core": [CoreDriver.capabilities_for(NatsOptions(), 1000)],
        "rabbitmq": [rabbitmq(RabbitOptions()), rabbitmq(RabbitOptions(persistent=False)),
                     rabbitmq(RabbitOptions(queue_type="classic", max_priority=5))],
        "redis": [redis(RedisOptions(persistence=p), aof)
                  for p, aof in itertools.product(persistence, (False, True))],
        "redis-pubsub": [pubsub_capabilities()],
        "sqs": sqs_all + [fifo_capabilities(c) for c in sqs_all],  # *.fifo topics too
    }


def test_every_possible_dash_has_a_reason_and_every_reason_a_possible_dash() -> None:
    declared = _declarations()
    assert set(declared) == set(PAGES)
    for column, variants in declared.items():
        dashes_ = {f for caps in variants for f in FEATURES
                   if caps.support(f) is Support.UNSUPPORTED}
        reasons = set(REASONS.get(column, {}))
        assert not dashes_ - reasons, (
            f"{column}: dashes without a reason in contract_tests/dashes.py: "
            f"{sorted(dashes_ - reasons)}")
        assert not reasons - dashes_, (
            f"{column}: reasons for features it now supports (remove them from "
            f"contract_tests/dashes.py, then run python -m contract_tests.dashes): "
            f"{sorted(reasons - dashes_)}")


def test_every_dash_of_the_committed_matrix_has_a_reason() -> None:
    """docs/capabilities.md as last generated from a full run: each feature dash of a
    documented backend that its adapter can still declare has its line. (The matrix is
    regenerated only from a green run, so it may still show a dash for a feature built
    since: that dash goes with the next regeneration, and its reason went already.)"""
    declared = _declarations()
    possible = {(column, f) for column, variants in declared.items() for caps in variants
                for f in FEATURES if caps.support(f) is Support.UNSUPPORTED}
    text = (ROOT / "docs" / "capabilities.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| feature |"))
    columns = [c.strip() for c in header.strip("|").split("|")][1:]
    seen = 0
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not line.startswith("| ") or cells[0] not in FEATURES:
            continue
        for column, cell in zip(columns, cells[1:], strict=True):
            if re.match(r"^\[?—", cell) and column in PAGES:
                seen += 1
                if (column, cells[0]) in possible:
                    assert link(column, cells[0]) is not None, (column, cells[0])
    assert seen > 10  # the table was found and read
