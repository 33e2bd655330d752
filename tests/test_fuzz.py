"""The reader fuzz campaign: its mutations do what they are named for, its
checkers each catch a hand-made bad case and pass a clean log, and the
``mrecordlog fuzz`` command keeps its interface."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mrecordlog import Damage, MultiRecordLog
from mrecordlog.cli import main
from mrecordlog.errors import CorruptionError, PositionOverflow, StorageError
from mrecordlog.fault_injection import SimulatedDisk, materialize
from mrecordlog.fault_injection.mutations import (
    BLOCK,
    MAX_FILE_NUMBER,
    MUTATIONS,
    TRANSPLANTING,
    frame_headers,
    mutate,
    plant_sparse_byte,
)
from mrecordlog.inspection import Inspection, LogState, QueueState, inspect_log
from mrecordlog.interchange import AppendOp, CreateQueueOp, PersistOp
from mrecordlog.oracle import fuzz, spec_reader
from mrecordlog.oracle.fuzz import (
    BaseImage,
    Content,
    ImageUnderTest,
    build_base,
    check_again,
    check_image,
    check_inspect,
    check_open,
    clean_image,
    discarded_ranges,
    quarantine_findings,
    simulated_target,
    state_findings,
)
from mrecordlog.oracle.workloads import Workload
from mrecordlog.outcomes import Record

LOG = "/log"
WORKLOAD = Workload(
    seed=0,
    operations=(
        CreateQueueOp("a"),
        AppendOp("a", None, (b"x" * 100, b"y" * 3000)),
        CreateQueueOp("b"),
        AppendOp("b", None, (bytes(range(256)) * 300,)),  # 76800 bytes: over three blocks
        AppendOp("a", None, (b"z" * 20000,)),
        AppendOp("b", None, (b"w" * 10,)),
        AppendOp("a", None, (b"q" * 45000,)),
        PersistOp(True),
    ),
    policy="always_flush",
    file_num_bytes=2 * BLOCK,
    checksum="crc32c",
    fault="none",
    fault_after=0,
)


@pytest.fixture(scope="module")
def base() -> BaseImage:
    built, findings = build_base(WORKLOAD)
    assert findings == []
    assert built is not None
    return built


def _wal(disk: SimulatedDisk) -> dict[str, bytes]:
    return {
        os.path.basename(path): data
        for path, data in disk.visible_files(LOG).items()
        if os.path.dirname(path) == LOG and os.path.basename(path).startswith("wal-")
    }


def _kinds(findings: list[fuzz.Finding]) -> list[str]:
    return sorted({finding.kind for finding in findings})


# -- the catalogue --------------------------------------------------------------------------


def test_the_base_log_spans_three_files_with_a_record_over_three_blocks(base: BaseImage) -> None:
    assert len(base.originals) == 3
    assert max(len(record) for record in spec_reader.read_records(base.originals, "crc32c")) > 2 * BLOCK


def _only_changed_file(before: dict[str, bytes], after: dict[str, bytes]) -> tuple[str, bytes, bytes]:
    assert set(before) == set(after)
    changed = [name for name in before if before[name] != after[name]]
    assert len(changed) == 1, changed
    return changed[0], before[changed[0]], after[changed[0]]


def _changed_offsets(old: bytes, new: bytes) -> list[int]:
    return [i for i in range(min(len(old), len(new))) if old[i] != new[i]]


def _same_sizes_changed_run(before: dict[str, bytes], after: dict[str, bytes], fill: bytes | None) -> None:
    if before == after:
        return  # a run over bytes that already held it
    _, old, new = _only_changed_file(before, after)
    assert len(old) == len(new)
    offsets = _changed_offsets(old, new)
    if fill is not None:
        assert all(new[i] == fill[0] for i in offsets)


def _check_bit_flip(before: dict[str, bytes], after: dict[str, bytes], disk: SimulatedDisk) -> None:
    _, old, new = _only_changed_file(before, after)
    assert sum(bin(a ^ b).count("1") for a, b in zip(old, new, strict=True)) == 1


def _check_zero_header(before: dict[str, bytes], after: dict[str, bytes], disk: SimulatedDisk) -> None:
    _, old, new = _only_changed_file(before, after)
    start = _changed_offsets(old, new)[0]
    header = max(h for h in frame_headers(old) if h <= start)
    assert new[header : header + 7] == bytes(7)
    assert all(header <= i < header + 7 for i in _changed_offsets(old, new))


def _check_huge_length(before: dict[str, bytes], after: dict[str, bytes], disk: SimulatedDisk) -> None:
    _, old, new = _only_changed_file(before, after)
    offsets = _changed_offsets(old, new)
    header = max(h for h in frame_headers(old) if h + 4 <= offsets[0])
    assert all(header + 4 <= i < header + 6 for i in offsets)
    length = int.from_bytes(new[header + 4 : header + 6], "little")
    assert length == 0xFFFF or header % BLOCK + 7 + length > BLOCK


def _check_truncated(before: dict[str, bytes], after: dict[str, bytes], disk: SimulatedDisk) -> None:
    _, old, new = _only_changed_file(before, after)
    assert len(new) < len(old)
    assert old.startswith(new)


def _check_extended(zeros: bool) -> Callable[[dict[str, bytes], dict[str, bytes], SimulatedDisk], None]:
    def check(before: dict[str, bytes], after: dict[str, bytes], disk: SimulatedDisk) -> None:
        _, old, new = _only_changed_file(before, after)
        assert len(new) > len(old)
        assert new.startswith(old)
        if zeros:
            assert not new[len(old) :].strip(b"\0")

    return check


def _check_odd(before: dict[str, bytes], after: dict[str, bytes], disk: SimulatedDisk) -> None:
    changed = [name for name in before if before[name] != after[name]]
    assert len(changed) <= 1
    odd = [name for name, data in after.items() if len(data) % 2]
    assert len(odd) == 1
    old, new = before[odd[0]], after[odd[0]]
    shared = min(len(old), len(new))
    assert old[:shared] == new[:shared]
    assert not new[shared:].strip(b"\0")


def _check_zero_length(before: dict[str, bytes], after: dict[str, bytes], disk: SimulatedDisk) -> None:
    empty = [name for name, data in after.items() if not data]
    assert len(empty) == 1
    if empty[0] in before:
        assert {n: d for n, d in after.items() if n != empty[0]} == {n: d for n, d in before.items() if n != empty[0]}
    else:
        numbers = sorted(int(name[4:]) for name in before)
        assert int(empty[0][4:]) in (numbers[0] - 1, numbers[-1] + 1)
        assert {n: d for n, d in after.items() if n != empty[0]} == before


def _blocks(files: dict[str, bytes]) -> dict[tuple[str, int], bytes]:
    return {
        (name, start): data[start : start + BLOCK]
        for name, data in files.items()
        for start in range(0, len(data) - BLOCK + 1, BLOCK)
    }


def _check_swapped(before: dict[str, bytes], after: dict[str, bytes], disk: SimulatedDisk) -> None:
    old, new = _blocks(before), _blocks(after)
    assert Counter(old.values()) == Counter(new.values())
    assert len([key for key in old if old[key] != new[key]]) in (0, 2)


def _check_duplicated(before: dict[str, bytes], after: dict[str, bytes], disk: SimulatedDisk) -> None:
    old, new = _blocks(before), _blocks(after)
    changed = [key for key in old if old[key] != new[key]]
    assert len(changed) <= 1
    assert all(new[key] in old.values() for key in changed)


def _check_missing(before: dict[str, bytes], after: dict[str, bytes], disk: SimulatedDisk) -> None:
    assert len(after) == len(before) - 1
    assert all(before[name] == data for name, data in after.items())


def _check_foreign(before: dict[str, bytes], after: dict[str, bytes], disk: SimulatedDisk) -> None:
    names = [os.path.basename(p) for p in [*disk.foreign_entries(LOG), *disk.directories(LOG)] if p != LOG]
    assert [name for name in names if name.startswith("wal-")]


def _check_garbage_after_end(before: dict[str, bytes], after: dict[str, bytes], disk: SimulatedDisk) -> None:
    name, old, new = _only_changed_file(before, after)
    assert name == max(before)
    end = len(old.rstrip(b"\0"))
    assert all(i >= end for i in _changed_offsets(old, new))


def _check_quarantine_blocked(before: dict[str, bytes], after: dict[str, bytes], disk: SimulatedDisk) -> None:
    _check_garbage_after_end(before, after, disk)
    blocked = [*disk.foreign_entries(LOG), *disk.visible_files(LOG)]
    assert [path for path in blocked if path == f"{LOG}/quarantine" or path.startswith(f"{LOG}/quarantine/recovery-")]


def _check_near_max(before: dict[str, bytes], after: dict[str, bytes], disk: SimulatedDisk) -> None:
    numbers = sorted(int(name[4:]) for name in after)
    assert numbers[-1] >= MAX_FILE_NUMBER - 2
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert [after[name] for name in sorted(after)] == [before[name] for name in sorted(before)]


EXPECTED: dict[str, Callable[[dict[str, bytes], dict[str, bytes], SimulatedDisk], None]] = {
    "bit_flip": _check_bit_flip,
    "zero_run": lambda b, a, d: _same_sizes_changed_run(b, a, b"\0"),
    "ff_run": lambda b, a, d: _same_sizes_changed_run(b, a, b"\xff"),
    "random_run": lambda b, a, d: _same_sizes_changed_run(b, a, None),
    "zero_frame_header": _check_zero_header,
    "huge_length": _check_huge_length,
    "truncate_file": _check_truncated,
    "extend_zeros": _check_extended(zeros=True),
    "extend_garbage": _check_extended(zeros=False),
    "odd_length_file": _check_odd,
    "zero_length_file": _check_zero_length,
    "swap_blocks": _check_swapped,
    "duplicate_block": _check_duplicated,
    "missing_file": _check_missing,
    "foreign_wal_entry": _check_foreign,
    "garbage_after_end": _check_garbage_after_end,
    "quarantine_blocked": _check_quarantine_blocked,
    "near_max_file_numbers": _check_near_max,
}


def test_every_mutation_of_the_catalogue_has_a_check_here() -> None:
    assert set(EXPECTED) == set(MUTATIONS)
    assert set(MUTATIONS) >= TRANSPLANTING


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_each_mutation_changes_the_image_as_its_name_says(base: BaseImage, name: str) -> None:
    applied = 0
    for seed in range(12):
        done = mutate(base.image, LOG, name, seed)
        if done is None:
            continue
        disk, mutated = done
        assert mutated.name == name
        assert mutated.description
        EXPECTED[name](base.originals, _wal(disk), disk)
        applied += 1
    assert applied >= 6


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_a_mutation_is_deterministic_for_its_seed_and_leaves_the_base_image_alone(base: BaseImage, name: str) -> None:
    before = base.image.visible_files("/")
    results = []
    for _ in range(2):
        done = mutate(base.image, LOG, name, 1234)
        assert done is not None
        disk, mutated = done
        results.append((disk.visible_files("/"), disk.directories("/"), disk.foreign_entries("/"), mutated))
    assert results[0] == results[1]
    assert base.image.visible_files("/") == before


def test_renumbering_records_where_each_file_came_from(base: BaseImage) -> None:
    done = mutate(base.image, LOG, "near_max_file_numbers", 0)
    assert done is not None
    disk, mutated = done
    assert sorted(mutated.origin(name) or "" for name in _wal(disk)) == sorted(base.originals)
    assert mutated.origin("wal-00000000000000000000") == "wal-00000000000000000000"


def test_the_mutations_module_imports_only_the_storage_protocol_and_errors_of_the_core() -> None:
    source = Path(__file__).parent.parent / "fault_injection" / "mutations.py"
    imported = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    core = {module for module in imported if module.startswith("mrecordlog")}
    assert core <= {"mrecordlog._storage", "mrecordlog.errors"}


def test_a_sparse_byte_lands_gigabytes_past_the_data_without_taking_space(base: BaseImage, tmp_path: Path) -> None:
    import random

    materialize(base.image, tmp_path, root=LOG)
    planted = plant_sparse_byte(str(tmp_path), random.Random(5))
    if planted is None:
        pytest.skip("this file system does not store sparse files")
    size = len(base.originals[os.path.basename(planted.path)])
    assert planted.offset >= size + (1 << 30)
    status = os.stat(planted.path)
    assert status.st_size == planted.offset + 1
    assert status.st_blocks * 512 < 64 << 20
    with open(planted.path, "rb") as handle:
        handle.seek(planted.offset)
        assert handle.read() == bytes([planted.value])


# -- the independent reader's prefixes ----------------------------------------------------------


def test_prefix_states_hold_one_state_per_record_prefix_ending_with_the_final_state(base: BaseImage) -> None:
    names = sorted(base.originals)
    records = spec_reader.read_records(base.originals, "crc32c")
    states = spec_reader.prefix_states([[(name, base.originals[name]) for name in names]], "crc32c")
    assert len(states) == len(records) + 1
    assert states[0] == '{"queues":{}}\n'
    assert states[-1] == base.final_state


def test_prefix_states_never_join_a_record_across_a_missing_file(base: BaseImage) -> None:
    first, _, last = sorted(base.originals)
    runs = [[(first, base.originals[first])], [(last, base.originals[last])]]
    states = spec_reader.prefix_states(runs, "crc32c")
    whole = spec_reader.prefix_states([[(n, base.originals[n]) for n in sorted(base.originals)]], "crc32c")
    assert len(states) < len(whole)
    known = {(q, p, h) for state in whole for q, v in json.loads(state)["queues"].items() for p, h in v["records"]}
    for state in states:
        for queue, value in json.loads(state)["queues"].items():
            assert all((queue, p, h) in known for p, h in value["records"])


# -- the checkers ------------------------------------------------------------------------------


def _inspection(base: BaseImage, mode: str = "point_in_time") -> Inspection:
    with simulated_target(base.image) as target:
        return inspect_log(LOG, storage=target.storage, recovery=mode)


def test_a_clean_log_passes_every_check_in_every_mode(base: BaseImage) -> None:
    assert check_image(clean_image(base, memory_sample=True)) == []


def test_a_state_with_a_hole_is_not_a_prefix(base: BaseImage) -> None:
    inspection = _inspection(base)
    queue = inspection.state.queues["a"]
    hole = LogState({**inspection.state.queues, "a": QueueState(queue.next_position, queue.records[::2])})
    image = clean_image(base)
    assert state_findings(image, "point_in_time", "t", Inspection(hole, inspection.report)) != []
    assert _kinds(state_findings(image, "point_in_time", "t", Inspection(hole, inspection.report))) == ["not_a_prefix"]
    assert state_findings(image, "skip", "t", Inspection(hole, inspection.report)) == []
    assert state_findings(image, "point_in_time", "t", inspection) == []


def test_a_payload_never_written_is_a_wrong_payload_in_every_mode(base: BaseImage) -> None:
    inspection = _inspection(base)
    queue = inspection.state.queues["b"]
    forged = (Record(queue.records[0].position, b"forged"), *queue.records[1:])
    state = LogState({**inspection.state.queues, "b": QueueState(queue.next_position, forged)})
    image = clean_image(base)
    assert _kinds(state_findings(image, "skip", "t", Inspection(state, inspection.report))) == ["wrong_payload"]
    assert "wrong_payload" in _kinds(state_findings(image, "point_in_time", "t", Inspection(state, inspection.report)))


def test_transplanted_frames_are_outside_the_prefix_and_payload_promises(base: BaseImage) -> None:
    inspection = _inspection(base)
    image = dataclasses.replace(clean_image(base), transplant=True)
    empty_with_wrong = LogState({"b": QueueState(1, (Record(0, b"forged"),))})
    assert state_findings(image, "point_in_time", "t", Inspection(empty_with_wrong, inspection.report)) == []


def test_strict_ending_the_log_before_valid_frames_is_accepted_damage(base: BaseImage) -> None:
    inspection = _inspection(base, "strict")
    first = min(base.originals)
    report = dataclasses.replace(inspection.report, resume_file=first, resume_offset=0)
    findings = state_findings(clean_image(base), "strict", "t", Inspection(LogState({}), report))
    assert _kinds(findings) == ["strict_accepted_damage"]
    assert f"{first} offset" in findings[0].message


def _files(base: BaseImage) -> dict[str, Content]:
    return {name: Content.of(data) for name, data in base.originals.items()}


def test_bytes_zeroed_without_a_quarantine_copy_are_not_quarantined(base: BaseImage) -> None:
    last = max(base.originals)
    data = base.originals[last]
    cut = 100
    before = _files(base)
    zeroed = {**before, last: Content.of(data[:cut] + bytes(len(data) - cut))}
    copy = {f"quarantine/recovery-1/{last}.from-{cut}": Content.of(data[cut:].rstrip(b"\0"))}
    report_json = {"quarantine/recovery-1/report.json": Content.of(b"{}\n")}
    image = clean_image(base)
    report = _inspection(base).report
    assert _kinds(quarantine_findings(image, "point_in_time", before, zeroed, report)) == ["not_quarantined"]
    assert quarantine_findings(image, "point_in_time", before, {**zeroed, **copy, **report_json}, report) == []
    findings = quarantine_findings(image, "point_in_time", before, {**zeroed, **copy}, report)
    assert [f.message for f in findings] == ["quarantine folder(s) without report.json: ['recovery-1']"]
    renamed = {f"quarantine/recovery-1/tail-of-{last}": Content.of(b"..." + data[cut:].rstrip(b"\0"))}
    findings = quarantine_findings(image, "point_in_time", before, {**zeroed, **renamed, **report_json}, report)
    assert _kinds(findings) == [fuzz.QUARANTINED_ELSEWHERE]  # a note, not a violation
    assert f"as quarantine/recovery-1/tail-of-{last}" in findings[0].message


def test_a_file_gone_is_not_quarantined_unless_gc_could_delete_it(base: BaseImage) -> None:
    first = min(base.originals)
    before = _files(base)
    gone = {name: content for name, content in before.items() if name != first}
    image = clean_image(base)
    clean_report = _inspection(base).report
    assert quarantine_findings(image, "skip", before, gone, clean_report) == []
    damaged = dataclasses.replace(clean_report, damages=(Damage("checksum_mismatch", first, 7, 30),))
    assert _kinds(quarantine_findings(image, "skip", before, gone, damaged)) == ["not_quarantined"]
    moved = {**gone, f"quarantine/recovery-1/{first}": before[first]}
    moved["quarantine/recovery-1/report.json"] = Content.of(b"{}")
    assert quarantine_findings(image, "skip", before, moved, damaged) == []


def test_an_earlier_quarantine_changed_by_the_open_is_caught(base: BaseImage) -> None:
    earlier = {"quarantine/recovery-1/report.json": Content.of(b'{"earlier": 1}')}
    before = {**_files(base), **earlier}
    rewritten = {**_files(base), "quarantine/recovery-1/report.json": Content.of(b"{}")}
    image = clean_image(base)
    report = _inspection(base).report
    assert quarantine_findings(image, "point_in_time", before, before, report) == []
    assert _kinds(quarantine_findings(image, "point_in_time", before, rewritten, report)) == ["not_quarantined"]


def test_discarded_ranges_cover_the_non_zero_bytes_changed_or_cut() -> None:
    old = b"abc" + bytes(5000) + b"def" + bytes(10)
    assert discarded_ranges(old, old) == []
    assert discarded_ranges(old, b"abc" + bytes(len(old) - 3)) == [(5003, 5006)]
    # Changes in neighbouring 4 KiB chunks make one range: a quarantine copy is contiguous.
    assert discarded_ranges(old, b"ab") == [(2, 5006)]
    assert discarded_ranges(old + bytes(9000) + b"g", old + bytes(9001)) == [(len(old) + 9000, len(old) + 9001)]
    assert discarded_ranges(bytes(100), b"x" * 100) == []  # new bytes over zeros discard nothing


def test_an_inspection_that_writes_is_caught(base: BaseImage, monkeypatch: pytest.MonkeyPatch) -> None:
    def writing_inspect(directory: str, *, storage: Any, recovery: str, file_num_bytes: int) -> Inspection:
        inner = storage._inner if hasattr(storage, "_inner") else storage
        inner.create_file(f"{directory}/stray", 0).close()
        return inspect_log(directory, storage=storage, recovery=recovery, file_num_bytes=file_num_bytes)

    monkeypatch.setattr(fuzz, "inspect_log", writing_inspect)
    findings, _ = check_inspect(clean_image(base), "point_in_time")
    assert _kinds(findings) == ["read_only_changed"]


def test_an_error_outside_the_hierarchy_is_untyped_and_a_typed_one_is_not(
    base: BaseImage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(target: Any, image: ImageUnderTest, mode: str) -> MultiRecordLog:
        raise TypeError("unsupported operand")

    monkeypatch.setattr(fuzz, "_open", broken)
    findings, state = check_open(clean_image(base), "point_in_time")
    assert state is None
    assert _kinds(findings) == ["untyped_error"]
    assert "TypeError: unsupported operand" in findings[0].message

    def refusing(target: Any, image: ImageUnderTest, mode: str) -> MultiRecordLog:
        raise CorruptionError("refused", file="wal-00000000000000000000", offset=0)

    monkeypatch.setattr(fuzz, "_open", refusing)
    assert check_open(clean_image(base), "strict") == ([], None)


def test_an_open_that_overruns_its_time_limit_is_a_hang(base: BaseImage, monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(target: Any, image: ImageUnderTest, mode: str) -> MultiRecordLog:
        time.sleep(5)
        raise AssertionError("the timer did not fire")

    monkeypatch.setattr(fuzz, "CALL_SECONDS", 0.05)
    monkeypatch.setattr(fuzz, "_open", slow)
    findings, _ = check_open(clean_image(base), "skip")
    assert _kinds(findings) == ["hang"]


def test_an_open_that_allocates_far_more_than_the_data_breaks_the_memory_bound(
    base: BaseImage, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = fuzz._open

    def greedy(target: Any, image: ImageUnderTest, mode: str) -> MultiRecordLog:
        ballast = bytearray(40 << 20)
        log = real_open(target, image, mode)
        del ballast
        return log

    monkeypatch.setattr(fuzz, "_open", greedy)
    findings, _ = check_open(clean_image(base, memory_sample=True), "point_in_time")
    assert "memory" in _kinds(findings)
    assert check_open(clean_image(base, memory_sample=False), "point_in_time")[0] == []


def test_a_second_open_recovering_another_state_is_not_idempotent(base: BaseImage) -> None:
    with simulated_target(base.image) as target:
        findings = check_again(clean_image(base), "point_in_time", target, LogState({}))
    assert "not_idempotent" in _kinds(findings)


def test_appends_missing_after_the_reopen_are_lost_after_recovery(
    base: BaseImage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MultiRecordLog, "append_record", lambda self, queue, payload, position=None: None)
    state = _inspection(base).state
    with simulated_target(base.image) as target:
        findings = check_again(clean_image(base), "point_in_time", target, state)
    assert _kinds(findings) == ["lost_after_recovery"]
    assert "0 of 3 appended record(s) came back" in findings[0].message


def test_a_typed_refusal_to_append_loses_nothing_acknowledged(base: BaseImage, monkeypatch: pytest.MonkeyPatch) -> None:
    real_append = MultiRecordLog.append_record

    def refusing(self: MultiRecordLog, queue: str, payload: bytes, *, position: int | None = None) -> Any:
        if len(payload) > BLOCK:
            raise PositionOverflow(queue, 0, 1)  # refused before anything is written
        return real_append(self, queue, payload, position=position)

    monkeypatch.setattr(MultiRecordLog, "append_record", refusing)
    state = _inspection(base).state
    with simulated_target(base.image) as target:
        assert check_again(clean_image(base), "point_in_time", target, state) == []


def test_an_append_that_fails_to_write_after_recovery_is_lost_after_recovery(
    base: BaseImage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(self: MultiRecordLog, queue: str, payload: bytes, *, position: int | None = None) -> Any:
        raise StorageError("create", "/log/wal-x", FileExistsError(17, "file exists"))

    monkeypatch.setattr(MultiRecordLog, "append_record", failing)
    state = _inspection(base).state
    with simulated_target(base.image) as target:
        findings = check_again(clean_image(base), "point_in_time", target, state)
    assert _kinds(findings) == ["lost_after_recovery"]


def test_strict_may_end_the_log_at_a_torn_last_record_but_not_before_a_complete_one() -> None:
    workload = dataclasses.replace(
        WORKLOAD,
        operations=(CreateQueueOp("a"), AppendOp("a", None, (b"s" * 100,)), AppendOp("a", None, (b"t" * 70000,))),
        file_num_bytes=4 * BLOCK,
    )
    built, _ = build_base(workload)
    assert built is not None
    name = min(built.originals)
    headers = frame_headers(built.originals[name])
    small, big = headers[1], headers[2]  # after create_queue: the small append, then the First of the big one
    image = clean_image(built)
    assert fuzz.valid_frame_after(image, name, big) is None  # its Middle and Last frames are the torn tail
    assert fuzz.valid_frame_after(image, name, small) == f"{name} offset {big}"


def test_an_inspection_showing_another_state_than_the_open_differs(
    base: BaseImage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def empty_inspect(directory: str, *, storage: Any, recovery: str, file_num_bytes: int) -> Inspection:
        report = inspect_log(directory, storage=storage, recovery=recovery, file_num_bytes=file_num_bytes).report
        return Inspection(LogState({}), report)

    monkeypatch.setattr(fuzz, "inspect_log", empty_inspect)
    assert "inspect_differs" in _kinds(check_image(clean_image(base)))


# -- the command ----------------------------------------------------------------------------------

MRECORDLOG = str(Path(sys.executable).parent / "mrecordlog")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MRECORDLOG, *args], capture_output=True, text=True, check=False, timeout=120)


def test_the_json_report_has_the_schema_and_the_exit_status_follows_the_violations(tmp_path: Path) -> None:
    completed = _run("fuzz", "--budget", "3", "--json", "--reproducer-dir", str(tmp_path))
    assert "Traceback" not in completed.stderr
    report = json.loads(completed.stdout)
    for key in ("images", "by_mutation", "violations", "violation_details", "seconds", "seed", "reproducers"):
        assert key in report
    assert report["images"] > 0
    assert set(report["by_mutation"]) == {*MUTATIONS, fuzz.SPARSE}
    assert completed.returncode == (1 if report["violations"] else 0)
    for detail in report["violation_details"]:
        assert {"kind", "mutation", "message"} <= set(detail)
    for path in report["reproducers"]:
        assert fuzz.load_reproducer(path)["kind"] in fuzz.VIOLATION_KINDS


@pytest.mark.parametrize("content", ["not json at all {", '{"format": "something else"}', "[1, 2]"])
def test_replaying_a_garbage_file_exits_2_with_one_line(tmp_path: Path, content: str) -> None:
    garbage = tmp_path / "garbage.json"
    garbage.write_text(content)
    completed = _run("fuzz", "--replay", str(garbage))
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert len(completed.stderr.strip().splitlines()) == 1
    assert "Traceback" not in completed.stderr


def test_replaying_a_missing_file_exits_2(tmp_path: Path) -> None:
    completed = _run("fuzz", "--replay", str(tmp_path / "missing.json"))
    assert completed.returncode == 2
    assert len(completed.stderr.strip().splitlines()) == 1


def _reproducer(tmp_path: Path, mutation: str) -> Path:
    path = tmp_path / "reproducer.json"
    value = {
        "format": fuzz.REPRODUCER_FORMAT,
        "workload": WORKLOAD.to_json_value(),
        "mutation": mutation,
        "mutation_seed": 0,
        "kind": "not_a_prefix",
        "mode": "point_in_time",
    }
    path.write_text(json.dumps(value))
    return path


def test_replaying_a_reproducer_that_passes_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "--replay", str(_reproducer(tmp_path, fuzz.BASE))]) == 0
    assert "no violation" in capsys.readouterr().out


def test_replaying_a_reproducer_that_still_fails_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    found = [fuzz.Finding("not_a_prefix", "point_in_time", "a hole")]
    monkeypatch.setattr(fuzz, "replay_reproducer", lambda reproducer: found)
    assert main(["fuzz", "--replay", str(_reproducer(tmp_path, "zero_length_file"))]) == 1
    assert "not_a_prefix [zero_length_file, point_in_time]: a hole" in capsys.readouterr().out


def test_the_text_report_is_a_table_by_mutation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["fuzz", "--budget", "0.5", "--seed", "3", "--reproducer-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert status in (0, 1)
    assert "mutation" in out
    assert "violations" in out
    for name in MUTATIONS:
        assert name in out
