"""CONTRACT.md and the contract cases stay in step.

Every number a case carries (``@pytest.mark.contract(N, ...)``) has an entry in CONTRACT.md;
every entry names the cases that check it, and they exist and carry its number; an entry
without a case says so ("*No case yet.*"). The harness abilities it lists are the ones
``contract_tests._env`` knows.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from contract_tests._env import HARNESS_ABILITIES

REPO = Path(__file__).resolve().parent.parent
CONTRACT = REPO / "CONTRACT.md"
SUITE = REPO / "contract_tests"
ENTRY = re.compile(r"^- \*\*(\d+)\.\*\* (.*?)(?=^- \*\*\d+\.\*\*|^#|\Z)", re.M | re.S)
NO_CASE = "*No case yet.*"


def cases() -> dict[str, set[int]]:
    """Each contract case's name -> the numbers of its ``contract`` marker."""
    found: dict[str, set[int]] = {}
    for path in sorted(SUITE.glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for deco in node.decorator_list:
                if (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute)
                        and deco.func.attr == "contract"):
                    numbers = {a.value for a in deco.args
                               if isinstance(a, ast.Constant) and isinstance(a.value, int)}
                    assert len(numbers) == len(deco.args), f"{node.name}: not int literals"
                    found.setdefault(node.name, set()).update(numbers)
    return found


def entries(text: str) -> dict[int, str]:
    """CONTRACT.md's behaviours: number -> its text."""
    found: dict[int, str] = {}
    for number, body in ENTRY.findall(text):
        assert int(number) not in found, f"behaviour {number} listed twice"
        found[int(number)] = body
    return found


def mismatches(text: str, by_case: dict[str, set[int]]) -> list[str]:
    """What is wrong between CONTRACT.md's ``text`` and the cases (empty when in step)."""
    documented = entries(text)
    checked = {n for numbers in by_case.values() for n in numbers}
    problems = [f"behaviour {n} is checked by a case but has no entry in CONTRACT.md"
                for n in sorted(checked - set(documented))]
    for number, body in sorted(documented.items()):
        named = set(re.findall(r"`(test_c\w+)`", body))
        if NO_CASE in body:
            if number in checked or named:
                problems.append(f"behaviour {number} says no case, yet a case checks it")
            continue
        if not named:
            problems.append(f"behaviour {number} has no case in the suite and names none")
        for name in sorted(named):
            if number not in by_case.get(name, set()):
                problems.append(f"behaviour {number} names {name}, which is not a case "
                                f"marked contract({number})")
        missing = {c for c, ns in by_case.items() if number in ns} - named
        if missing:
            problems.append(f"behaviour {number} does not name {', '.join(sorted(missing))}")
    return problems


def test_every_case_number_has_an_entry_and_every_entry_a_case() -> None:
    assert mismatches(CONTRACT.read_text(), cases()) == []


def test_the_check_catches_a_missing_entry_and_an_unchecked_one() -> None:
    text = CONTRACT.read_text()
    by_case = cases()
    without_37 = re.sub(r"^- \*\*37\.\*\*", "- 37.", text, flags=re.M)
    assert any("behaviour 37 is checked" in p for p in mismatches(without_37, by_case))
    extra = text + "\n- **99.** Something. `test_c99_nothing`\n"
    assert any("behaviour 99 names test_c99_nothing" in p for p in mismatches(extra, by_case))
    promised = text + "\n- **98.** Promised. *No case yet.*\n"
    assert mismatches(promised, by_case) == []
    assert any("behaviour 98 has no case" in p
               for p in mismatches(promised.replace("*No case yet.*", ""), by_case))
    claimed = text.replace("`test_c59_delivery_carries_the_send_time`", "*No case yet.*")
    assert any("behaviour 59 says no case, yet a case checks it" in p
               for p in mismatches(claimed, by_case))


def test_the_suite_checks_what_the_brief_lists() -> None:
    numbers = {n for ns in cases().values() for n in ns}
    assert set(range(1, 65)) <= numbers


def test_harness_abilities_are_documented() -> None:
    text = CONTRACT.read_text()
    for ability in HARNESS_ABILITIES:
        assert f"`{ability}`" in text, ability
    used = set(re.findall(r"harness `(\w+)`", text))
    assert used <= set(HARNESS_ABILITIES), used - set(HARNESS_ABILITIES)
