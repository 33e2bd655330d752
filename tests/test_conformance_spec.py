"""spec/CONFORMANCE.md against the oracle's code: the failure class table
(§5) lists exactly ``FAILURE_CLASSES``, in order and with their checks; the
built-in baselines (§5.1) name existing classes; the report documented in §6
has exactly the keys ``ConformanceReport.to_json_value`` produces."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from mrecordlog.oracle.classes import BASELINES, FAILURE_CLASSES
from mrecordlog.oracle.report import (
    CHECKS,
    VERDICTS,
    AdapterTrouble,
    CheckStats,
    ConformanceReport,
    Failure,
)

SPEC = Path(__file__).resolve().parent.parent / "spec" / "CONFORMANCE.md"
_FENCE = re.compile(r"^```(?P<info>[^`\n]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE = re.compile(r"`([^`]*)`")


def section(heading: str) -> str:
    """The text under the Markdown heading that starts with ``heading`` (its
    number, e.g. ``## 5.``), up to the next heading of the same or a higher
    level."""
    text = SPEC.read_text(encoding="utf-8")
    level = heading.split(" ", 1)[0]
    start = re.search(rf"^{re.escape(heading)}.*$", text, re.MULTILINE)
    assert start is not None, f"no heading {heading!r} in {SPEC}"
    end = re.compile(rf"^#{{1,{len(level)}}} ", re.MULTILINE).search(text, start.end())
    return text[start.end() : end.start() if end else len(text)]


def table(text: str, header: list[str]) -> list[list[str]]:
    """The rows of the first Markdown table in ``text`` whose header is
    exactly ``header``, as lists of stripped cells."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if _cells(line) == header:
            rows = []
            for row in lines[index + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append(_cells(row))
            return rows
    raise AssertionError(f"no table with the columns {header} in the section")


def _cells(line: str) -> list[str]:
    line = line.strip()
    if not (line.startswith("|") and line.endswith("|")):
        return []
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line[1:-1])]


def code_spans(cell: str) -> list[str]:
    return _CODE.findall(cell)


def json_blocks(text: str) -> list[Any]:
    return [json.loads(match["body"]) for match in _FENCE.finditer(text) if match["info"].strip() == "json"]


# -- §5 failure classes ---------------------------------------------------------


def test_the_class_table_lists_every_failure_class_in_order_with_its_checks() -> None:
    rows = table(section("## 5."), ["class", "checks", "meaning"])
    documented = [(code_spans(name), code_spans(checks)) for name, checks, _ in rows]
    assert all(len(names) == 1 for names, _ in documented), "one class name in backticks per row"
    assert [names[0] for names, _ in documented] == list(FAILURE_CLASSES)
    for (names, checks), row in zip(documented, rows, strict=True):
        assert row[0] == f"`{names[0]}`"
        assert tuple(checks) == FAILURE_CLASSES[names[0]].checks, names[0]
        assert row[1] == ", ".join(f"`{check}`" for check in checks)
        assert row[2], f"{names[0]} has no meaning"


def test_the_classes_name_only_real_checks() -> None:
    for failure_class in FAILURE_CLASSES.values():
        assert failure_class.checks
        assert set(failure_class.checks) <= set(CHECKS), failure_class.name
        assert len(set(failure_class.checks)) == len(failure_class.checks), failure_class.name


@pytest.mark.parametrize("baseline", sorted(BASELINES))
def test_every_class_of_a_builtin_baseline_exists_and_is_documented(baseline: str) -> None:
    assert BASELINES[baseline]
    assert BASELINES[baseline] <= set(FAILURE_CLASSES)
    rows = table(section("### 5.1"), ["baseline", "classes"])
    documented = {code_spans(name)[0]: code_spans(classes) for name, classes in rows}
    assert set(documented) == set(BASELINES)
    assert Counter(documented[baseline]) == Counter(BASELINES[baseline])


# -- §6 the report ----------------------------------------------------------------


def constructed_report() -> ConformanceReport:
    """A small report with one of everything: a kept failure, an uncollected
    and a known class, and an adapter failure."""
    report = ConformanceReport(
        {"ok": True, "op": "hello", "name": "spec-test"},
        seed=3,
        checks={"live": CheckStats(run=3, passed=1, failed=1, known=1), "writer": CheckStats(run=1, unsupported=1)},
        baseline=frozenset({"position_wrap"}),
        max_failures=1,
    )
    report.add_failure(Failure("live", "wrong_answer", "append: expected x, got y", {"requests": [{"op": "state"}]}))
    report.add_failure(Failure("live", "wrong_state", "state: expected x, got y", {"requests": []}))
    report.known["live", "position_wrap"] += 1
    report.adapter_trouble = AdapterTrouble("writer", "timeout", "no answer within 30 s", [{"op": "state"}], ["boom"])
    report.notes.append("a note")
    return report


def test_the_documented_report_has_the_keys_of_the_json_report() -> None:
    value = constructed_report().to_json_value()
    for name in ("failures", "uncollected", "known", "adapter_failure"):
        assert value[name], name
    example, *others = json_blocks(section("## 6."))
    assert list(example) == list(value)
    assert set(example["checks"]) <= set(CHECKS)
    for stats in example["checks"].values():
        assert list(stats) == list(value["checks"]["live"])
    assert [list(failure) for failure in example["failures"]] == [list(value["failures"][0])]
    for name in ("uncollected", "known"):
        assert example[name], f"the example shows no {name} entry"
        assert all(list(entry) == list(value[name][0]) for entry in example[name])
    assert example["verdict"] in VERDICTS
    troubles = [block for block in others if isinstance(block, dict) and "kind" in block]
    assert [list(trouble) for trouble in troubles] == [list(value["adapter_failure"])]


def test_the_field_table_documents_every_report_field() -> None:
    rows = table(section("### 6.1"), ["field", "value"])
    assert [code_spans(field)[0] for field, _ in rows] == list(constructed_report().to_json_value())


def test_the_verdict_table_lists_every_verdict_with_its_exit_status() -> None:
    rows = table(section("### 6.3"), ["verdict", "when", "exit status"])
    assert [code_spans(verdict)[0] for verdict, _, _ in rows] == list(VERDICTS)
    assert {code_spans(verdict)[0]: status for verdict, _, status in rows} == {
        verdict: "0" if verdict == "pass" else "1" for verdict in VERDICTS
    }


def test_the_reproducer_table_covers_every_check() -> None:
    rows = table(section("### 6.2"), ["check", "fields"])
    assert [code_spans(check)[0] for check, _ in rows] == list(CHECKS)
