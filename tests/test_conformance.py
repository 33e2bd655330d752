"""The conformance oracle: the reference passes, wrong implementations fail
with short reproducers, and a misbehaving adapter is reported, never waited on."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mrecordlog.adapter import reference_factory
from mrecordlog.oracle.adapters import AdapterFailure, SubprocessAdapter
from mrecordlog.oracle.conformance import ConformanceReport, ConformanceRunner
from mrecordlog.oracle.kit import assert_conforms, check_conformance

HERE = Path(__file__).resolve().parent
REFERENCE = f"{sys.executable} -m mrecordlog.adapter"
SHORT_PASS_SECONDS = 9.0
BUG_HUNT_SECONDS = 30.0


def _run(command: str, tmp_path: Path, budget: float, checks: tuple[str, ...]) -> ConformanceReport:
    adapter = SubprocessAdapter(command)
    try:
        return ConformanceRunner(adapter, seed=1, budget_seconds=budget, workdir=str(tmp_path), checks=checks).run()
    finally:
        adapter.close()


@pytest.mark.parametrize("recovery", ["point_in_time", "strict", "skip"])
def test_the_reference_adapter_passes_every_check_through_the_subprocess_protocol(
    tmp_path: Path, recovery: str
) -> None:
    checks = ("live", "reader", "writer") if recovery == "point_in_time" else ("reader", "writer")
    report = _run(f"{REFERENCE} --recovery {recovery}", tmp_path, SHORT_PASS_SECONDS, checks)
    assert report.implementation["recovery"] == recovery
    assert [f.message for f in report.failures] == []
    for check in checks:
        assert report.checks[check].run > 0
        assert report.checks[check].passed == report.checks[check].run


def test_the_in_process_kit_passes_the_core() -> None:
    report = assert_conforms(reference_factory(), budget_seconds=4.0, name="core")
    assert all(stats.run > 0 for stats in report.checks.values())


@pytest.mark.parametrize(
    ("bug", "check"),
    [
        ("ignores-truncate", "live"),
        ("off-by-one-idempotence", "live"),
        ("drops-last-frame-on-reopen", "live"),
        ("returns-payloads-of-skipped-frames", "reader"),
        ("writes-different-padding", "writer"),
    ],
)
def test_a_wrong_adapter_fails_with_a_short_reproducer(tmp_path: Path, bug: str, check: str) -> None:
    command = f"{sys.executable} {HERE / 'wrong_adapters.py'} {bug}"
    report = _run(command, tmp_path, BUG_HUNT_SECONDS, (check,))
    assert report.checks[check].failed == 1, "\n".join(report.lines())
    (failure,) = report.failures
    print(f"{bug}: {failure.message[:160]} ({len(failure.reproducer)} line(s) of reproducer)")
    if check == "reader":
        (case,) = failure.reproducer
        assert case["expected"] != case["got"]
        assert case["image"]["files"]
    else:
        assert 2 <= len(failure.reproducer) <= 8


def test_a_partial_implementation_is_checked_for_what_it_has(tmp_path: Path) -> None:
    report = check_conformance(
        reference_factory(),
        ops=("open", "close", "state", "create_queue", "append", "persist"),
        budget_seconds=3.0,
        checks=("live", "writer"),
    )
    assert report.failures == []
    assert {"truncate", "delete_queue"} <= report.unsupported_ops
    assert report.checks["live"].passed > 0
    assert report.checks["writer"].unsupported > 0


_SILENT = "import sys, time\nfor line in sys.stdin: time.sleep(60)"
_GARBAGE = "import sys\nfor line in sys.stdin: print('this is not JSON', flush=True)"
_EXITS = "import sys\nsys.stdin.readline()\nsys.stderr.write('boom\\n')\nsys.exit(3)"


@pytest.mark.parametrize(("script", "kind"), [(_SILENT, "timeout"), (_GARBAGE, "malformed"), (_EXITS, "exited")])
def test_a_misbehaving_adapter_is_reported_not_waited_on(tmp_path: Path, script: str, kind: str) -> None:
    path = tmp_path / "adapter.py"
    path.write_text(script, encoding="utf-8")
    adapter = SubprocessAdapter(f"{sys.executable} {path}", timeout_seconds=1.0)
    try:
        with pytest.raises(AdapterFailure) as raised:
            adapter.request({"op": "hello"})
    finally:
        adapter.close()
    assert raised.value.kind == kind
    if kind == "exited":
        assert "boom" in str(raised.value)
