"""The harness's arithmetic, without brokers: what counts as lost, duplicated and a stall,
and the report rendered from records."""

from __future__ import annotations

from pathlib import Path

from fault_tests.report import render
from fault_tests.workload import analyse, read_numbers


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_lost_duplicates_and_stalls(tmp_path: Path) -> None:
    confirmed = _write(tmp_path / "p.txt", ["0 100.0", "retry 1 Unavailable", "1 101.0",
                                            "2 109.0", "3 110.0", "done 110.5"])
    c1 = _write(tmp_path / "c1.txt", ["0 100.1", "1 101.1", "1 108.0", "3 110.2", "7"])
    c2 = _write(tmp_path / "c2.txt", ["0 100.2"])
    result = analyse("x", "f", confirmed, [c1, c2], fault_at=102.0, producer_done=111.0)
    assert (result.sent, result.processed, result.lost, result.lost_sample) == (4, 3, 1, [2])
    assert result.duplicates == 2  # 0 processed by both consumers, 1 twice by c1
    assert result.producer_retries == 1
    assert result.producer_stall_s == 7.0  # 102 -> 109
    assert result.consumer_stall_s == 6.0  # 102 -> 108
    assert result.recovery_s == 7.0
    assert result.first_confirm_after_s == 7.0


def test_nothing_after_the_fault_is_one_long_stall(tmp_path: Path) -> None:
    confirmed = _write(tmp_path / "p.txt", ["0 100.0"])
    result = analyse("x", "f", confirmed, [], fault_at=101.0, producer_done=131.0)
    assert result.producer_stall_s == 30.0
    assert result.first_confirm_after_s is None


def test_a_line_cut_short_by_sigkill_is_skipped(tmp_path: Path) -> None:
    assert read_numbers(_write(tmp_path / "c.txt", ["1 1.0", "2 2.", "3"])) == [(1, 1.0),
                                                                                (2, 2.0)]
    assert read_numbers(tmp_path / "missing.txt") == []


def test_report_has_a_table_per_backend() -> None:
    record = {"backend": "nats", "fault": "node_cut", "action": "cut n1", "sent": 10,
              "processed": 10, "lost": 0, "duplicates": 1, "producer_retries": 0,
              "recovery_s": 1.25, "producer_stall_s": 1.0, "consumer_stall_s": 1.25}
    page = render([record, {**record, "backend": "redis"}], wall=100.0, commit="abc")
    assert "## nats" in page and "## redis" in page
    assert "| node_cut | cut n1 | 10 | 10 | 0 | 1 | 0 | 1.2 | 1.0 | 1.2 |" in page
    assert "**2 cases, 0 confirmed message(s) lost.**" in page
    assert "100 s" in page and "abc" in page


def test_report_shows_a_not_applicable_fault_as_such() -> None:
    ran = {"backend": "sqs", "fault": "node_cut", "action": "cut moto", "sent": 5,
           "processed": 5, "lost": 0, "duplicates": 0, "producer_retries": 0,
           "recovery_s": 4.0, "producer_stall_s": 4.0, "consumer_stall_s": 3.0}
    na = {"backend": "sqs", "fault": "cluster_restart", "not_applicable": "state in memory",
          "premise": "state lost (NotFound)"}
    page = render([ran, na])
    assert "**1 cases, 0 confirmed message(s) lost; 1 not applicable (see the tables).**" \
        in page
    assert ("| cluster_restart | n/a: state in memory (checked: state lost (NotFound)) |"
            + " n/a |" * 8) in page
    assert "moto keeps its state in memory" in page  # the SQS note under its table
    assert page.index("| node_cut |") < page.index("| cluster_restart |")
