"""The conformance crash check: crash images of an implementation's own
writes, recorded with strace, judged by its announced recovery mode."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mrecordlog.adapter import reference_factory
from mrecordlog.oracle.adapters import SubprocessAdapter
from mrecordlog.oracle.conformance import ConformanceReport, ConformanceRunner
from mrecordlog.oracle.kit import check_conformance
from mrecordlog.oracle.tracer import strace_unavailable

HERE = Path(__file__).resolve().parent
REFERENCE = f"{sys.executable} -m mrecordlog.adapter"
CLEAN_SECONDS = 6.0
BUG_HUNT_SECONDS = 25.0

needs_strace = pytest.mark.skipif(strace_unavailable() is not None, reason=f"{strace_unavailable()}")


def _crash_run(command: str, tmp_path: Path, budget: float, *, fail_fast: bool = False) -> ConformanceReport:
    adapter = SubprocessAdapter(command)
    try:
        return ConformanceRunner(
            adapter,
            seed=3,
            budget_seconds=budget,
            workdir=str(tmp_path),
            checks=("crash",),
            adapter_command=command,
            fail_fast=fail_fast,
        ).run()
    finally:
        adapter.close()


@pytest.mark.campaign
@needs_strace
@pytest.mark.parametrize("recovery", ["point_in_time", "strict", "skip"])
def test_the_reference_adapter_recovers_every_crash_image_of_its_own_writes(tmp_path: Path, recovery: str) -> None:
    report = _crash_run(f"{REFERENCE} --recovery {recovery}", tmp_path, CLEAN_SECONDS)
    text = "\n".join(report.lines())
    assert report.verdict == "pass", text
    assert report.checks["crash"].run > 50, text
    print(next(note for note in report.notes if "images in" in note))


@pytest.mark.hunt
@needs_strace
@pytest.mark.parametrize(
    ("bug", "classes"),
    [
        ("no-fsync-on-persist", {"lost_durable_write"}),
        ("no-dir-sync-after-create", {"lost_durable_write"}),
        ("fsync-before-last-write", {"lost_durable_write", "non_prefix_recovery"}),
        ("keeps-records-after-torn-frame", {"non_prefix_recovery"}),
    ],
)
def test_a_planted_durability_bug_is_caught_from_outside(tmp_path: Path, bug: str, classes: set[str]) -> None:
    command = f"{sys.executable} {HERE / 'wrong_crash_adapters.py'} {bug}"
    report = _crash_run(command, tmp_path, BUG_HUNT_SECONDS, fail_fast=True)
    text = "\n".join(report.lines())
    assert report.verdict == "fail", text
    (failure,) = report.failures
    assert failure.failure_class in classes, text
    reproducer = failure.reproducer
    assert reproducer["crash"]["kind"] in ("power_loss", "process_crash")
    assert reproducer["trace"], "the trace excerpt around the crash point"
    assert reproducer["requests"][0] == {"op": "hello"}
    print(f"{bug}: [{failure.failure_class}] {len(reproducer['requests'])} request(s), {reproducer['crash']}")


def test_without_an_adapter_command_the_crash_check_is_unavailable_never_passed() -> None:
    report = check_conformance(reference_factory(), budget_seconds=1.0, checks=("crash",))
    assert report.checks["crash"].run == 0
    assert any(note.startswith("crash check unavailable:") for note in report.notes)
    assert report.verdict == "nothing_checked"


@pytest.mark.hunt
@needs_strace
def test_the_05_emulation_fails_the_crash_check_only_by_its_short_file_handling(tmp_path: Path) -> None:
    """A crash before a new file is preallocated leaves it empty: 0.5 refuses
    to open a log whose first file is empty (short_files); nothing else."""
    report = _crash_run(f"{sys.executable} {HERE / 'mrecordlog05_adapter.py'}", tmp_path, 10.0)
    text = "\n".join(report.lines())
    assert {failure.failure_class for failure in report.failures} == {"short_files"}, text


LINKS_ITS_FILES = """\
import json, os, sys
from mrecordlog.adapter import reference_session
session = reference_session()
for line in sys.stdin:
    request = json.loads(line)
    answer = session.handle(request)
    if request.get("op") == "open" and answer.get("ok"):
        wal = os.path.join(request["dir"], "wal-00000000000000000000")
        if not os.path.exists(wal + ".link"):
            os.link(wal, wal + ".link")
    print(json.dumps(answer), flush=True)
"""


@needs_strace
def test_what_the_model_cannot_follow_is_reported_and_not_judged(tmp_path: Path) -> None:
    script = tmp_path / "links.py"
    script.write_text(LINKS_ITS_FILES, encoding="utf-8")
    report = _crash_run(f"{sys.executable} {script}", tmp_path / "work", 4.0)
    text = "\n".join(report.lines())
    assert report.checks["crash"].unsupported > 0, text
    assert report.checks["crash"].passed == 0, text
    assert any("cannot follow: link " in note for note in report.notes), text
    assert report.verdict == "nothing_checked", text
