"""The conformance report renders to the capability matrix."""

from __future__ import annotations

from contract_tests.report import render


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
    assert "| persistence | — |" in page
    assert "| max_headers | unbounded |" in page
    assert "| backend | face | passed | failed | unsupported | harness |" in page
    assert "| memory | sync | 1 | 0 | 1 | 1 |" in page
    assert "| memory | async | 1 | 1 | 0 | 1 |" in page
    assert "| 37 | — / ✗ |" in page
    assert "| 38 | ○ / ○ |" in page  # a harness gap is not shown as a missing capability


def test_render_empty() -> None:
    assert "No backend was run." in render({})
