"""The crash campaign: it finds no violation in the core, it finds each class
of planted durability bug, its reproducers replay, and short traces are
checked exhaustively; its images of every kind have the property the kind is
named after, and its judges tell holes, unwritten records and lost
acknowledged records apart from what recovery may give."""

from __future__ import annotations

import json
import posixpath
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import mrecordlog._quarantine as quarantine_module
import mrecordlog.log as log_module
from mrecordlog import AppendOutcome, MultiRecordLog, PersistAction
from mrecordlog._codec import encode_append_records
from mrecordlog._recovery import RecoveryMode, ReplayResult
from mrecordlog._recovery import replay as real_replay
from mrecordlog._storage import Storage
from mrecordlog.cli import main
from mrecordlog.errors import CorruptionError
from mrecordlog.fault_injection import DROP, KEEP, SimulatedDisk, Tear, WriteOp, power_loss_image, process_crash_image
from mrecordlog.interchange import AppendOp, CreateQueueOp, Operation, PersistOp, TruncateOp
from mrecordlog.model import Model, QueueModel
from mrecordlog.oracle.crashcheck import (
    FAULT_KINDS,
    HOSTILE_KINDS,
    LOG_DIR,
    MODES,
    OPTIONAL_KINDS,
    TORN_AT_BOUNDARY,
    Campaign,
    History,
    Image,
    Tamper,
    _hole,
    _skip_violation,
    _valid_frame_after_resume,
    boundary_choices,
    continuation_operations,
    exhaustive_check,
    hostile_image,
    in_order,
    judge_image,
    replay_reproducer,
    run_workload,
    spanning_boundaries,
    wal_files,
)
from mrecordlog.oracle.workloads import BLOCK, MAX_FILE_NUMBER, Workload, exhaustive_workloads, generate_workload

# Workloads of a bounded campaign (about 1,800 images; 3 s on an idle machine).
CAMPAIGN_WORKLOADS = 25
# A budget no bounded campaign reaches: its workloads bound it.
UNBOUNDED_SECONDS = 3600.0
BUG_HUNT_SECONDS = 20.0
CLASSIC_KINDS = tuple(kind for kind in FAULT_KINDS if kind not in OPTIONAL_KINDS)


def _classic_campaign(
    seed: int, budget_seconds: float, *, max_violations: int = 5, max_workloads: int | None = None
) -> Campaign:
    """The campaign as it was before issue 8: crash kinds only, point_in_time only."""
    return Campaign(
        seed=seed,
        budget_seconds=budget_seconds,
        max_violations=max_violations,
        kinds=(),
        modes=("point_in_time",),
        max_workloads=max_workloads,
    )


def test_a_bounded_campaign_exercises_every_fault_kind_without_violation() -> None:
    # A fixed number of workloads, not a time budget: the same images on a
    # loaded machine as on an idle one.
    report = _classic_campaign(11, UNBOUNDED_SECONDS, max_workloads=CAMPAIGN_WORKLOADS).run()
    assert report.workloads == CAMPAIGN_WORKLOADS
    assert [v.message for v in report.violations] == []
    assert report.images_checked > 1000
    assert report.continuations > 0
    assert {kind for kind in CLASSIC_KINDS if report.by_fault[kind] == 0} == set()


@pytest.mark.campaign
def test_a_bounded_campaign_exercises_every_fault_kind_and_recovery_mode() -> None:
    report = Campaign(seed=12, budget_seconds=UNBOUNDED_SECONDS, max_workloads=2 * CAMPAIGN_WORKLOADS).run()
    assert report.workloads == 2 * CAMPAIGN_WORKLOADS
    assert [f"{v.kind}: {v.message[:160]}" for v in report.violations] == []
    assert report.images_checked > 1000
    assert {kind for kind in FAULT_KINDS if report.by_fault[kind] == 0} == set()
    assert {mode for mode in MODES if report.by_mode[mode] == 0} == set()
    assert report.by_mode["point_in_time"] > report.by_mode["strict"]
    assert report.continuations > 0


# -- planted bugs, one per class of spec/DURABILITY.md --------------------------------


def _acknowledge_before_fsync(mp: pytest.MonkeyPatch) -> None:
    original = MultiRecordLog._persist

    def persist(self: MultiRecordLog, action: PersistAction) -> None:
        original(self, PersistAction.FLUSH)  # an fsync policy that only flushes

    mp.setattr(MultiRecordLog, "_persist", persist)


def _leave_stale_frames_after_the_resume_point(mp: pytest.MonkeyPatch) -> None:
    # Recovery still moves later files away but believes the rest of the
    # resume file is zeros, so it neither quarantines nor zeroes it.
    original = quarantine_module._find_cut

    def find_cut(storage: Storage, directory: str, file_number: int, start: int) -> tuple[None, int]:
        return None, original(storage, directory, file_number, start)[1]

    mp.setattr(quarantine_module, "_find_cut", find_cut)


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
        storage: Storage,
        directory: str,
        file_numbers: list[int],
        mode: RecoveryMode = RecoveryMode.POINT_IN_TIME,
        *,
        file_num_bytes: int,
    ) -> ReplayResult:
        return real_replay(storage, directory, file_numbers, RecoveryMode.SKIP, file_num_bytes=file_num_bytes)

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
        report = _classic_campaign(3, BUG_HUNT_SECONDS, max_violations=1).run()
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
    status = main(["crashcheck", "--seed", "5", "--budget", "1", "--json", "--reproducer-dir", str(tmp_path)])
    value = json.loads(capsys.readouterr().out)
    assert status == (1 if value["violations"] else 0)
    assert len(value["reproducers"]) == value["violations"]
    assert value["images_checked"] > 0
    assert set(value["by_fault"]) == set(FAULT_KINDS)
    assert set(value["by_mode"]) == set(MODES)
    assert value["seconds"] >= 1


# -- the images of each kind have the property the kind is named after ----------------


Made = tuple[Image, SimulatedDisk, SimulatedDisk]  # the image, its untampered and its tampered disk


def _hostile_images(kind: str, seeds: Iterable[int], *, shape: str = "plain", enough: int = 200) -> Iterator[Made]:
    """Hostile images of ``kind`` at every fourth crash point of the seeds' workloads."""
    count = 0
    for seed in seeds:
        made = _hostile_images_of(kind, generate_workload(seed, shape=shape), seed)
        yield from made
        count += len(made)
        if count >= enough:
            return


def _hostile_images_of(kind: str, workload: Workload, seed: int) -> list[Made]:
    made: list[Made] = []

    def capture(disk: SimulatedDisk, history: History, point: int) -> None:
        if point % 4 == 0:
            image = hostile_image(kind, workload, disk, random.Random(seed * 1000 + point))
            if image is not None:
                made.append((image, image.build_base(disk), image.build(disk)))

    run_workload(workload, capture)
    return made


def _number(path: str) -> int:
    return int(posixpath.basename(path)[len("wal-") :])


def _others(files: dict[int, bytes], number: int) -> dict[int, bytes]:
    return {n: data for n, data in files.items() if n != number}


def _place(number: int, numbers: list[int]) -> str:
    return "first" if number == numbers[0] else "last" if number == numbers[-1] else "middle"


def test_file_length_images_lengthen_or_cut_one_wal_file_at_any_offset() -> None:
    seen = set()
    for image, base, tampered in _hostile_images("file_length", range(30)):
        (edit,) = image.tamper
        number = _number(edit.path)
        before, after = wal_files(base), wal_files(tampered)
        assert _others(after, number) == _others(before, number)
        if edit.action == "extend":
            assert 1 <= edit.size <= BLOCK + 64
            assert after[number] == before[number] + after[number][len(before[number]) :]
            assert len(after[number]) == len(before[number]) + edit.size
            if edit.fill == "zeros":
                assert after[number].endswith(bytes(edit.size))
                assert image.exact  # zeros read as the zero-fill: nothing may change
            seen.add(f"extended with {edit.fill}")
            if len(before[number]) % BLOCK == 0 and len(after[number]) % BLOCK:
                seen.add("not a multiple of the block size")
        else:
            assert edit.action == "cut"
            assert after[number] == before[number][: edit.size]
            assert edit.size < len(before[number])
            seen.add("cut at a sector boundary" if edit.size % 512 == 0 else "cut inside a sector")
    assert seen == {
        "extended with zeros",
        "extended with garbage",
        "not a multiple of the block size",
        "cut at a sector boundary",
        "cut inside a sector",
    }


def test_zero_length_file_images_empty_the_first_a_middle_or_the_last_file() -> None:
    places = set()
    for image, base, tampered in _hostile_images("zero_length_file", range(60), shape="multiblock", enough=400):
        number = _number(image.tamper[0].path)
        before, after = wal_files(base), wal_files(tampered)
        # Emptied, or zeroed with its size kept: both read as all zeros.
        assert after[number] in (b"", bytes(len(before[number])))
        places.add("emptied" if after[number] == b"" else "zeroed")
        assert _others(after, number) == _others(before, number)
        numbers = sorted(before)
        if len(numbers) > 1:
            places.add(_place(number, numbers))
        # An empty last file is what a lost preallocation leaves: no damage to report.
        assert image.clean_check == (number != numbers[-1])
    assert places == {"first", "middle", "last", "emptied", "zeroed"}


def test_missing_file_images_remove_the_first_a_middle_or_the_last_file() -> None:
    places = set()
    for image, base, tampered in _hostile_images("missing_file", range(60), shape="multiblock", enough=400):
        (edit,) = image.tamper
        number = _number(edit.path)
        before, after = wal_files(base), wal_files(tampered)
        assert number in before
        assert after == _others(before, number)
        numbers = sorted(before)
        if len(numbers) > 1:
            places.add(_place(number, numbers))
        assert image.clean_check == (number not in (numbers[0], numbers[-1]))
    assert places == {"first", "middle", "last"}


def test_foreign_entry_images_put_another_kind_of_entry_where_the_log_will_create_one() -> None:
    seen = set()
    for image, base, tampered in _hostile_images("foreign_entry", range(40)):
        edit = image.tamper[-1]
        assert edit.action == "add_entry"
        if edit.fill in ("symlink", "other"):
            assert tampered.foreign_entries(LOG_DIR)[edit.path] == edit.fill
        elif edit.fill == "directory":
            assert edit.path in tampered.directories(LOG_DIR)
        else:
            assert tampered.visible_files(LOG_DIR)[edit.path] == b""
        seen.add(edit.fill)
        numbers = sorted(wal_files(base))
        if "/quarantine/" in edit.path:
            assert posixpath.basename(edit.path) == "recovery-1"
            assert image.exact  # recovery must pick another name
            assert not image.refusal
            seen.add("the next quarantine directory")
            continue
        assert image.refusal == "typed"
        if len(image.tamper) == 2:
            assert image.tamper[0] == Tamper("remove", edit.path)
            seen.add("in place of a WAL file")
        elif _number(edit.path) == numbers[-1] + 1:
            seen.add("the next WAL name")
    assert seen == {
        "directory",
        "symlink",
        "other",
        "file",
        "the next quarantine directory",
        "in place of a WAL file",
        "the next WAL name",
    }


def test_torn_multiblock_images_end_at_every_frame_boundary_inside_a_spanning_record() -> None:
    checked = most_in_a_write = 0
    for seed in range(12):
        images, most = _check_boundary_images(generate_workload(seed, shape="multiblock"), seed)
        checked += images
        most_in_a_write = max(most_in_a_write, most)
    assert checked > 20
    assert most_in_a_write >= 2  # records of three blocks and more


def _check_boundary_images(workload: Workload, seed: int) -> tuple[int, int]:
    """Check the boundary images at every crash point of the workload; how
    many boundaries, and the most found in one write."""
    checked = most = 0

    def capture(disk: SimulatedDisk, history: History, point: int) -> None:
        nonlocal checked, most
        pending = disk.pending()
        boundaries = spanning_boundaries(pending)
        for index, kept in boundaries:
            most = max(most, sum(1 for other, _ in boundaries if other == index))
            op = pending[index]
            assert isinstance(op, WriteOp)
            boundary = (op.offset // 512 + kept) * 512
            end = op.offset + len(op.data)
            assert boundary % BLOCK == 0
            assert op.offset <= boundary < end
            assert op.data[boundary - op.offset + 6] in (3, 4)  # a Middle or Last frame begins there
            without = power_loss_image(disk, (KEEP,) * index + (DROP,) * (len(pending) - index))
            old = without.visible_files(LOG_DIR).get(op.path, b"").ljust(end, b"\0")
            for torn in TORN_AT_BOUNDARY:
                choices = boundary_choices(pending, index, kept, torn, seed)
                assert in_order(choices)
                content = power_loss_image(disk, choices).visible_files(LOG_DIR)[op.path].ljust(end, b"\0")
                assert content[op.offset : boundary] == op.data[: boundary - op.offset]
                # The rest keeps the old bytes (after the garbage sector, for a tear).
                rest = boundary + (0 if torn == "old" else 512)
                assert content[rest:end] == old[rest:end]
                if torn == "long_header":  # a frame header whose length crosses the block
                    assert 1 <= content[boundary + 6] <= 4
                    assert 7 + int.from_bytes(content[boundary + 4 : boundary + 6], "little") > BLOCK
            checked += 1

    run_workload(workload, capture)
    return checked, most


def test_multiblock_workloads_are_plain_workloads_with_records_of_three_or_four_blocks() -> None:
    for seed in range(20):
        plain, spanning = generate_workload(seed), generate_workload(seed, shape="multiblock")
        assert (plain.policy, plain.file_num_bytes, plain.checksum) == (
            spanning.policy,
            spanning.file_num_bytes,
            spanning.checksum,
        )
        sizes = [len(p) for op in spanning.operations if isinstance(op, AppendOp) for p in op.payloads]
        assert max(sizes) > 2 * BLOCK


def test_high_file_number_workloads_start_at_an_all_zero_file_near_the_last_name() -> None:
    reached_the_last_name = False
    for seed in range(8):
        workload = generate_workload(seed, shape="high_file_numbers")
        assert workload.first_file_number is not None
        assert MAX_FILE_NUMBER - 3 <= workload.first_file_number <= MAX_FILE_NUMBER
        assert workload.fault == "none"
        assert Workload.from_json_value(json.loads(json.dumps(workload.to_json_value()))) == workload
        reached_the_last_name |= _reaches_the_last_name(workload, workload.first_file_number)
    assert reached_the_last_name


def _reaches_the_last_name(workload: Workload, first_file_number: int) -> bool:
    reached = False

    def capture(disk: SimulatedDisk, history: History, point: int) -> None:
        nonlocal reached
        files = wal_files(process_crash_image(disk))
        if point == 0:
            assert files == {first_file_number: bytes(workload.file_num_bytes)}
        reached = reached or MAX_FILE_NUMBER in files

    run_workload(workload, capture)
    return reached


def test_an_in_order_power_loss_keeps_a_prefix_of_the_pending_operations() -> None:
    tear = Tear(1, "garbage", 0)
    assert in_order(())
    assert in_order((KEEP, KEEP, DROP, DROP))
    assert in_order((KEEP, tear, DROP))
    assert in_order((tear, DROP))
    assert not in_order((DROP, KEEP))
    assert not in_order((KEEP, tear, KEEP))
    assert not in_order((tear, tear))


# -- the judges ---------------------------------------------------------------------------


def _history_of(operations: Iterable[Operation], *, acknowledged: int) -> History:
    """The history of operations that all returned, the first ``acknowledged``
    of them acknowledged against power loss."""
    history = History()
    for index, operation in enumerate(operations):
        history.begin(operation)
        history.settle(applied=True)
        if index < acknowledged:
            history.acknowledge(process=True, power=True)
    return history


def _state(queues: dict[str, tuple[int, list[tuple[int, bytes]]]]) -> str:
    model = Model()
    for name, (next_position, records) in queues.items():
        model.queues[name] = QueueModel(next_position, records)
    return model.state_json()


FIVE = [(position, bytes([position])) for position in range(5)]
FIVE_APPENDS: list[Operation] = [CreateQueueOp("a"), *(AppendOp("a", None, (payload,)) for _, payload in FIVE)]


def test_a_queue_with_a_hole_or_an_unwritten_record_is_no_run_of_its_history() -> None:
    history = _history_of(FIVE_APPENDS, acknowledged=6)
    assert _hole(_state({"a": (3, FIVE[:3])}), history) is None  # an earlier moment
    assert _hole(_state({"a": (5, FIVE[2:])}), history) is None  # the head lost, as GC loses it
    assert _hole(_state({"a": (5, FIVE[:2] + FIVE[3:])}), history) is not None
    assert _hole(_state({"a": (5, [*FIVE[:4], (4, b"other")])}), history) is not None


def test_skip_after_a_reordering_power_loss_keeps_acknowledged_records_unless_later_removed() -> None:
    history = _history_of([*FIVE_APPENDS[:4], TruncateOp("a", 0), *FIVE_APPENDS[4:]], acknowledged=4)
    # Acknowledged: records 0..2; the truncate (issued later) may remove record 0.
    assert _skip_violation(_state({"a": (5, FIVE[1:])}), history, power_loss=True) is None
    assert _skip_violation(_state({"a": (5, [FIVE[0], FIVE[2], FIVE[4]])}), history, power_loss=True) is not None
    assert _skip_violation(_state({"a": (6, [*FIVE, (5, b"x")])}), history, power_loss=True) is not None
    assert _skip_violation(_state({}), history, power_loss=True) is not None


def test_the_continuation_crosses_a_block_end_rolls_into_the_next_file_and_collects() -> None:
    model = Model()
    model.create_queue("q")
    model.append("q", [b"x"])
    operations = continuation_operations(model, None, 2 * BLOCK, seed=1)
    appends = [op for op in operations if isinstance(op, AppendOp)]
    assert len(appends[0].payloads[0]) > BLOCK  # no frame holds it: it crosses a block end
    assert len(appends[1].payloads[0]) >= 2 * BLOCK  # longer than a file: the writer rolls
    assert TruncateOp("q", 1) in operations  # evicts the first new record and what came before
    assert operations[-1] == PersistOp(True)
    retry = AppendOp("q", 1, (b"lost",))
    assert continuation_operations(model, retry, BLOCK, seed=1)[0] == retry
    assert continuation_operations(Model(), None, BLOCK, seed=1)[0] == CreateQueueOp("c")


def test_strict_refusing_a_process_crash_is_a_violation_but_not_after_a_reordering_power_loss() -> None:
    workload = generate_workload(4)
    found: list[tuple[str | None, str | None]] = []

    def capture(disk: SimulatedDisk, history: History, point: int) -> None:
        pending = disk.pending()
        if found or len(pending) < 2:
            return
        reordered = (DROP,) + (KEEP,) * (len(pending) - 1)
        found.append(
            (
                judge_image(workload, disk, history, Image("process_crash", False, None, mode="strict")),
                judge_image(workload, disk, history, Image("power_loss", True, reordered, mode="strict")),
            )
        )

    def refuse(*args: Any, **kwargs: Any) -> ReplayResult:
        if RecoveryMode.STRICT in args or kwargs.get("mode") is RecoveryMode.STRICT:
            raise CorruptionError("planted refusal")
        return real_replay(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(log_module, "replay", refuse)
        run_workload(workload, capture)
    assert found
    process_crash, reordered = found[0]
    assert process_crash is not None
    assert "process crash" in process_crash
    assert reordered is None


# -- reproducers of the new kinds replay -------------------------------------------------


def _image_maker(kind: str, workload: Workload) -> Callable[[SimulatedDisk, random.Random], Image | None]:
    def make(disk: SimulatedDisk, rng: random.Random) -> Image | None:
        if kind in HOSTILE_KINDS:
            image = hostile_image(kind, workload, disk, rng)
        elif kind == "torn_multiblock":
            pending = disk.pending()
            boundaries = spanning_boundaries(pending)
            if not boundaries:
                return None
            index, kept = rng.choice(boundaries)
            image = Image(kind, True, boundary_choices(pending, index, kept, "garbage", rng.getrandbits(32)))
        else:
            image = Image(kind, False, None)
        if image is None:
            return None
        return replace(image, mode=rng.choice(MODES), continuation=rng.getrandbits(32))

    return make


@pytest.mark.parametrize("kind", OPTIONAL_KINDS)
def test_a_reproducer_of_each_new_kind_replays_its_image_and_judgement(kind: str, tmp_path: Path) -> None:
    shape = {"torn_multiblock": "multiblock", "high_file_numbers": "high_file_numbers"}.get(kind, "plain")
    workload = generate_workload(21, shape=shape)
    make = _image_maker(kind, workload)
    found: list[tuple[int, Image, str | None]] = []

    def capture(disk: SimulatedDisk, history: History, point: int) -> None:
        if not found and point >= 4:
            image = make(disk, random.Random(point))
            if image is not None:
                found.append((point, image, judge_image(workload, disk, history, image)))

    run_workload(workload, capture)
    assert found, f"no {kind} image in the workload"
    point, image, message = found[0]
    reproducer = json.loads(
        json.dumps(
            {
                "kind": kind,
                "message": message,
                "workload": workload.to_json_value(),
                "point": point,
                "image": image.to_json_value(),
            }
        )
    )
    assert reproducer["image"]["tamper"] == [edit.to_json_value() for edit in image.tamper]
    assert replay_reproducer(reproducer) == message
    path = tmp_path / "reproducer.json"
    path.write_text(json.dumps(reproducer), encoding="utf-8")
    assert main(["crashcheck", "--replay", str(path)]) == (0 if message is None else 1)


def test_strict_opening_where_a_valid_frame_follows_its_resume_point_is_a_violation() -> None:
    disk = SimulatedDisk()
    with MultiRecordLog.open(LOG_DIR, storage=disk, file_num_bytes=BLOCK, checksum="crc32c") as log:
        log.create_queue("a")
        log.append_records("a", [b"one", b"two"])
        report = log.recovery_report
    workload = Workload(0, (), "always_flush", BLOCK, "crc32c", "none", 0)
    content = wal_files(disk)[0]
    end = len(content.rstrip(b"\0"))
    zeroed_first_header = bytes(7) + content[7:]
    first = "wal-00000000000000000000"
    at_start = replace(report, resume_file=first, resume_offset=0)
    at_end = replace(report, resume_file=first, resume_offset=end)
    message = _valid_frame_after_resume({0: zeroed_first_header}, at_start, workload)
    assert message is not None
    assert "offset 19" in message  # the append's frame, after create_queue's 19 bytes
    assert _valid_frame_after_resume({0: content}, at_end, workload) is None
    # A valid frame at the start of a later file counts too.
    assert _valid_frame_after_resume({0: bytes(BLOCK), 1: content}, at_start, workload) is not None
