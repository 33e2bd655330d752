"""The conformance oracle: the reference passes, wrong implementations fail
with the right class and a short reproducer, and capabilities decide what is
generated."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mrecordlog.adapter import reference_factory
from mrecordlog.oracle.adapters import SubprocessAdapter
from mrecordlog.oracle.conformance import CHECKS, ConformanceReport, ConformanceRunner
from mrecordlog.oracle.kit import assert_conforms, check_conformance

HERE = Path(__file__).resolve().parent
REFERENCE = f"{sys.executable} -m mrecordlog.adapter"
SHORT_PASS_SECONDS = 6.0
# An upper bound, not what a hunt takes: with fail_fast the run ends at the
# first failure (a few seconds on an idle machine). It is generous because
# shrinking may go on only a quarter of it past the deadline, and a loaded
# machine (load 6 on 2 cores) found the bug late and kept an unshrunk
# reproducer of 44 requests with 30 s.
BUG_HUNT_SECONDS = 120.0


def _run(
    command: str, tmp_path: Path, budget: float, checks: tuple[str, ...], *, fail_fast: bool = False
) -> ConformanceReport:
    adapter = SubprocessAdapter(command)
    try:
        return ConformanceRunner(
            adapter,
            seed=1,
            budget_seconds=budget,
            workdir=str(tmp_path),
            checks=checks,
            fail_fast=fail_fast,
            adapter_command=command,
        ).run()
    finally:
        adapter.close()


@pytest.mark.campaign
@pytest.mark.parametrize("recovery", ["point_in_time", "strict", "skip"])
def test_the_reference_adapter_passes_every_check_through_the_subprocess_protocol(
    tmp_path: Path, recovery: str
) -> None:
    checks = CHECKS if recovery == "point_in_time" else ("reader", "writer", "continuation")
    report = _run(f"{REFERENCE} --recovery {recovery}", tmp_path, SHORT_PASS_SECONDS, checks)
    assert report.implementation["recovery"] == recovery
    assert report.verdict == "pass", "\n".join(report.lines())
    for check in checks:
        assert report.checks[check].run > 0
        assert report.checks[check].passed == report.checks[check].run


@pytest.mark.campaign
def test_the_in_process_kit_passes_the_core() -> None:
    report = assert_conforms(reference_factory(), budget_seconds=4.0, name="core")
    # In process there is no adapter command to trace: the crash check says so.
    assert all(stats.run > 0 for name, stats in report.checks.items() if name != "crash")
    assert any(note.startswith("crash check unavailable") for note in report.notes)


@pytest.mark.hunt
@pytest.mark.parametrize(
    ("bug", "check", "classes"),
    [
        ("ignores-truncate", "live", {"wrong_answer", "wrong_state"}),
        ("off-by-one-idempotence", "live", {"wrong_answer"}),
        ("drops-last-frame-on-reopen", "live", {"reopen_state"}),
        ("returns-payloads-of-skipped-frames", "reader", {"recovered_state"}),
        ("writes-different-padding", "writer", {"wal_bytes"}),
    ],
)
def test_a_wrong_adapter_fails_with_its_class_and_a_short_reproducer(
    tmp_path: Path, bug: str, check: str, classes: set[str]
) -> None:
    command = f"{sys.executable} {HERE / 'wrong_adapters.py'} {bug}"
    report = _run(command, tmp_path, BUG_HUNT_SECONDS, (check,), fail_fast=True)
    assert report.verdict == "fail", "\n".join(report.lines())
    found = {failure.failure_class for failure in report.failures}
    assert found & classes, "\n".join(report.lines())
    failure = next(f for f in report.failures if f.failure_class in classes)
    requests = failure.reproducer["requests"]
    print(f"{bug}: [{failure.failure_class}] {failure.summary[:120]} ({len(requests)} request(s))")
    if check == "reader":
        assert failure.reproducer["expected"] != failure.reproducer["got"]
        assert failure.reproducer["image"]["files"]
    else:
        assert 2 <= len(requests) <= 8


@pytest.mark.campaign
def test_a_partial_implementation_is_checked_for_what_it_has() -> None:
    report = check_conformance(
        reference_factory(),
        ops=("open", "close", "state", "create_queue", "append", "persist"),
        budget_seconds=3.0,
        checks=("live", "writer", "continuation"),
    )
    assert report.verdict == "pass", "\n".join(report.lines())
    assert report.checks["live"].passed > 0
    assert report.checks["writer"].unsupported > 0
    assert report.checks["continuation"].unsupported == 1


def test_an_implementation_without_open_checks_nothing() -> None:
    report = check_conformance(reference_factory(), ops=("state", "close"), budget_seconds=1.0)
    assert report.verdict == "nothing_checked"
    assert not report.ok


class _Refused(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@pytest.mark.campaign
def test_announced_profiles_and_file_sizes_decide_what_every_check_sends() -> None:
    """A crc32-only implementation that takes only 64 KiB files passes when it
    announces so: nothing outside hello is ever asked of it."""
    opened = reference_factory()
    asked: list[tuple[int | None, str | None]] = []

    def narrow(directory: str, file_num_bytes: int | None, checksum: str | None) -> object:
        asked.append((file_num_bytes, checksum))
        if checksum == "crc32c":
            raise _Refused("Unsupported")
        if file_num_bytes != 65536:
            raise _Refused("InvalidArgument")
        return opened(directory, file_num_bytes, checksum)

    report = check_conformance(
        narrow,  # type: ignore[arg-type]
        checksums=("crc32",),
        file_num_bytes=(65536,),
        budget_seconds=6.0,
    )
    assert report.verdict == "pass", "\n".join(report.lines())
    assert all(stats.passed > 0 for name, stats in report.checks.items() if name != "crash")
    assert {size for size, _ in asked} == {65536}
    assert {checksum for _, checksum in asked} <= {"crc32", None}


@pytest.mark.campaign
def test_refusing_an_announced_profile_is_a_failure_of_its_own_class() -> None:
    opened = reference_factory()

    def refuses_crc32c(directory: str, file_num_bytes: int | None, checksum: str | None) -> object:
        if checksum == "crc32c":
            raise _Refused("Unsupported")
        return opened(directory, file_num_bytes, checksum)

    report = check_conformance(refuses_crc32c, budget_seconds=4.0, checks=("live", "writer"))  # type: ignore[arg-type]
    assert report.verdict == "fail"
    assert {f.failure_class for f in report.failures} == {"announced_unsupported"}, "\n".join(report.lines())
