"""The crash campaign: it finds no violation in the core, it finds each class
of planted durability bug, its reproducers replay, and short traces are
checked exhaustively."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

import mrecordlog._quarantine as quarantine_module
import mrecordlog.log as log_module
from mrecordlog import AppendOutcome, MultiRecordLog, PersistAction
from mrecordlog._codec import encode_append_records
from mrecordlog._recovery import RecoveryMode, ReplayResult
from mrecordlog._recovery import replay as real_replay
from mrecordlog._storage import Storage
from mrecordlog.cli import main
from mrecordlog.oracle.crashcheck import FAULT_KINDS, Campaign, exhaustive_check, replay_reproducer
from mrecordlog.oracle.workloads import Workload, exhaustive_workloads

CAMPAIGN_SECONDS = 6.0
BUG_HUNT_SECONDS = 20.0


def test_a_bounded_campaign_exercises_every_fault_kind_without_violation() -> None:
    report = Campaign(seed=11, budget_seconds=CAMPAIGN_SECONDS).run()
    assert [v.message for v in report.violations] == []
    assert report.images_checked > 1000
    assert {kind for kind in FAULT_KINDS if report.by_fault[kind] == 0} == set()


# -- planted bugs, one per class of spec/DURABILITY.md --------------------------------


def _acknowledge_before_fsync(mp: pytest.MonkeyPatch) -> None:
    original = MultiRecordLog._persist

    def persist(self: MultiRecordLog, action: PersistAction) -> None:
        original(self, PersistAction.FLUSH)  # an fsync policy that only flushes

    mp.setattr(MultiRecordLog, "_persist", persist)


def _leave_stale_frames_after_the_resume_point(mp: pytest.MonkeyPatch) -> None:
    # Recovery still moves later files away but believes the rest of the
    # resume file is zeros, so it neither quarantines nor zeroes it.
    mp.setattr(quarantine_module, "_nonzero_extent", lambda storage, path, start: None)


def _update_memory_before_the_write(mp: pytest.MonkeyPatch) -> None:
    original = MultiRecordLog.append_records

    def append_records(
        self: MultiRecordLog, queue: str, payloads: Iterable[bytes], *, position: int | None = None
    ) -> AppendOutcome:
        batch = list(payloads)
        if position is not None or not batch or not self.queue_exists(queue) or self.failed is not None:
            return original(self, queue, batch, position=position)
        first = self.next_position(queue)
        self._queues.append_batch(queue, self._writer.current_file, first, batch)  # too early
        record = encode_append_records(queue, first, batch)
        written = self._mutating(lambda: self._write(record))
        self._mutating(self._persist_on_policy)
        return AppendOutcome(first + len(batch) - 1, written)

    mp.setattr(MultiRecordLog, "append_records", append_records)


def _skip_torn_frames_in_point_in_time_mode(mp: pytest.MonkeyPatch) -> None:
    def replay(
        storage: Storage, directory: str, file_numbers: list[int], mode: RecoveryMode = RecoveryMode.POINT_IN_TIME
    ) -> ReplayResult:
        return real_replay(storage, directory, file_numbers, RecoveryMode.SKIP)

    mp.setattr(log_module, "replay", replay)


PLANTED: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "a frame acknowledged before its fsync": _acknowledge_before_fsync,
    "stale frames left after the resume point": _leave_stale_frames_after_the_resume_point,
    "memory updated before a failed write": _update_memory_before_the_write,
    "a torn frame skipped in point_in_time mode": _skip_torn_frames_in_point_in_time_mode,
}


@pytest.mark.parametrize("plant", PLANTED.values(), ids=list(PLANTED))
def test_the_campaign_catches_a_planted_durability_bug(
    plant: Callable[[pytest.MonkeyPatch], None], tmp_path: Path
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        plant(mp)
        report = Campaign(seed=3, budget_seconds=BUG_HUNT_SECONDS, max_violations=1).run()
        assert report.violations, "the planted bug went unnoticed"
        violation = report.violations[0]
        print(f"{plant.__name__}: {violation.kind} after {report.images_checked} images: {violation.message[:120]}")
        # The reproducer replays the violation while the bug is there ...
        assert replay_reproducer(violation.reproducer) is not None
        path = tmp_path / "reproducer.json"
        path.write_text(json.dumps(violation.reproducer), encoding="utf-8")
        assert main(["crashcheck", "--replay", str(path)]) == 1
    # ... and passes once it is gone.
    assert replay_reproducer(violation.reproducer) is None


# -- exhaustive mode for short traces ---------------------------------------------------


@pytest.mark.parametrize(("name", "workload"), exhaustive_workloads(), ids=[n for n, _ in exhaustive_workloads()])
def test_every_crash_image_of_a_short_trace_recovers_an_allowed_prefix(name: str, workload: Workload) -> None:
    report = exhaustive_check(workload, max_images_per_point=512, tear_variants=True)
    print(f"{name}: {report.crash_points} crash points, {report.images_checked} images")
    assert report.crash_points > 10
    assert [v.message for v in report.violations] == []


def test_crashcheck_json_output_has_the_campaign_figures(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["crashcheck", "--seed", "5", "--budget", "1", "--json", "--reproducer-dir", str(tmp_path)]) == 0
    value = json.loads(capsys.readouterr().out)
    assert value["violations"] == 0
    assert value["images_checked"] > 0
    assert set(value["by_fault"]) == set(FAULT_KINDS)
    assert value["seconds"] >= 1
