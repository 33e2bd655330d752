"""Directories no crash of this log leaves, but that an outside hand, a file
system repair or another tool can: files of other lengths, empty or missing
files in the middle, entries of other kinds under the log's names, file
numbers at the end of their range, damaged headers where writing resumes.

Each test is one class of issue 8, fixed: nothing acknowledged is lost, no
hole is recovered silently, nothing is destroyed without a copy in the
quarantine, and every refusal is a typed error naming the entry. The crash
campaign and the fuzz campaign generate these states at random; these tests
pin one example of each.
"""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import pytest

from mrecordlog import (
    CorruptionError,
    DoNothing,
    FileNumbersExhausted,
    MultiRecordLog,
    PersistAction,
    UnexpectedEntry,
    inspect_log,
)

BLOCK = 32768
MAX_FILE = 2**64 - 1


def _name(number: int) -> str:
    return f"wal-{number:020d}"


def _records(log: MultiRecordLog, queue: str = "q") -> list[tuple[int, bytes]]:
    return [(r.position, r.payload) for r in log.range(queue)]


def _tree(directory: Path) -> dict[str, bytes | str]:
    found: dict[str, bytes | str] = {}
    for path in sorted(directory.rglob("*")):
        relative = str(path.relative_to(directory))
        if path.is_symlink():
            found[relative] = "symlink"
        elif path.is_dir():
            found[relative] = "dir"
        elif path.is_fifo():
            found[relative] = "fifo"  # reading one would block
        else:
            found[relative] = path.read_bytes()
    return found


def _three_files(directory: Path) -> list[tuple[int, bytes]]:
    """A log of one-block files holding queue "q" across wal-0..wal-2."""
    written = []
    with MultiRecordLog.open(directory, file_num_bytes=BLOCK, checksum="crc32c") as log:
        log.create_queue("q")
        for index in range(6):
            payload = bytes([65 + index]) * 12000
            log.append_record("q", payload)
            written.append((index, payload))
    assert sorted(os.listdir(directory)) == [_name(0), _name(1), _name(2)]
    return written


# -- class 2: a file longer than the log's file size --------------------------


@pytest.mark.parametrize("extra", [b"\0" * 5, b"\xab" * 5, b"\0" * BLOCK + b"\x01"])
def test_bytes_past_a_files_length_are_not_the_log_and_rolling_past_them_loses_nothing(
    tmp_path: Path, extra: bytes
) -> None:
    with MultiRecordLog.open(tmp_path, file_num_bytes=2 * BLOCK) as log:
        log.create_queue("q")
        log.append_record("q", b"before")
    with open(tmp_path / _name(0), "ab") as handle:
        handle.write(extra)
    with MultiRecordLog.open(tmp_path, file_num_bytes=2 * BLOCK) as log:
        # Enough to fill wal-0 and roll into wal-1.
        for _ in range(4):
            log.append_record("q", b"x" * 20000)
        assert log.wal_file_numbers() == [0, 1]
    assert (tmp_path / _name(0)).stat().st_size == 2 * BLOCK
    with MultiRecordLog.open(tmp_path) as log:
        assert [p for p, _ in _records(log)] == [0, 1, 2, 3, 4]
        assert log.recovery_report.clean
    if extra.strip(b"\0"):
        # Found by the first open (wal-0 was the resume file: copied from the resume point on).
        copies = list((tmp_path / "quarantine").rglob(f"{_name(0)}.from-*"))
        assert len(copies) == 1
        assert copies[0].read_bytes().endswith(extra.rstrip(b"\0"))


# -- class 3: skip resuming after a header that abandons its block ------------


def test_skip_resumes_at_a_header_whose_length_runs_past_the_last_block_so_later_appends_survive(
    tmp_path: Path,
) -> None:
    with MultiRecordLog.open(tmp_path, file_num_bytes=BLOCK) as log:
        log.create_queue("q")
        outcome = log.append_record("q", b"first")
    end = 7 + 11 + 1 + outcome.wal_bytes_written
    with open(tmp_path / _name(0), "r+b") as handle:
        handle.seek(end)
        handle.write(b"\x11\x22\x33\x44" + (0xFFFF).to_bytes(2, "little") + b"\x01")
    with MultiRecordLog.open(tmp_path, recovery="skip") as log:
        assert [d.kind for d in log.recovery_report.damages] == ["length_past_block"]
        log.append_record("q", b"acknowledged after recovery")
        log.persist(PersistAction.FLUSH_AND_FSYNC)
    with MultiRecordLog.open(tmp_path, recovery="skip") as log:
        assert _records(log) == [(0, b"first"), (1, b"acknowledged after recovery")]
        assert log.recovery_report.clean


# -- class 4: the last file name ------------------------------------------------


def test_a_log_at_the_last_file_number_refuses_the_append_that_would_roll_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    (tmp_path / _name(MAX_FILE)).write_bytes(bytes(BLOCK))
    with MultiRecordLog.open(tmp_path) as log:
        assert log.file_num_bytes == BLOCK
        log.create_queue("q")
        log.append_record("q", b"a" * 20000)
        with pytest.raises(FileNumbersExhausted) as raised:
            log.append_record("q", b"b" * 20000)
        assert raised.value.file == _name(MAX_FILE)
    assert sorted(os.listdir(tmp_path)) == [_name(MAX_FILE)]
    with MultiRecordLog.open(tmp_path) as log:
        assert _records(log) == [(0, b"a" * 20000)]


def test_a_refusal_at_the_last_file_name_leaves_the_log_usable_and_its_buffered_calls_persisted(
    tmp_path: Path,
) -> None:
    # Seed 62 of the crash campaign: the refusal fail-stopped the log, and the
    # close after it dropped the calls still buffered under DoNothing.
    (tmp_path / _name(MAX_FILE)).write_bytes(bytes(BLOCK))
    with MultiRecordLog.open(tmp_path, persist_policy=DoNothing()) as log:
        log.create_queue("q")
        log.append_record("q", b"a" * 20000)
        log.truncate("q", 0)
        with pytest.raises(FileNumbersExhausted):
            log.append_record("q", b"b" * 20000)
        assert log.failed is None
        assert log.append_record("q", b"small").last_position == 1
    with MultiRecordLog.open(tmp_path) as log:
        assert _records(log) == [(1, b"small")]


def test_a_record_that_would_roll_twice_past_the_last_file_number_is_refused_before_writing(tmp_path: Path) -> None:
    (tmp_path / _name(MAX_FILE - 1)).write_bytes(bytes(BLOCK))
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        with pytest.raises(FileNumbersExhausted):
            log.append_record("q", b"x" * 70000)  # wal-(MAX - 1), wal-MAX, then no name
    assert sorted(os.listdir(tmp_path)) == [_name(MAX_FILE - 1)]
    with MultiRecordLog.open(tmp_path) as log:
        assert _records(log) == []


def test_a_log_at_the_last_file_number_opens_even_when_its_gc_pass_has_no_room(tmp_path: Path) -> None:
    (tmp_path / _name(MAX_FILE - 1)).write_bytes(bytes(BLOCK))
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")  # 19 bytes
        log.create_queue("empty")  # 23 bytes
        # Record 0 fills the first file and ends with 107 bytes in the last one.
        log.append_record("q", b"a" * (BLOCK - 42 - 7 - 24 + 100))
        # Record 1 belongs to the last file and leaves 25 bytes in it.
        log.append_record("q", b"b" * 32605)
        assert log.wal_file_numbers() == [MAX_FILE - 1, MAX_FILE]
        # The truncate record takes 19 bytes. The first file holds no live
        # record any more, but the GC pass would first write the empty queue's
        # position record, which needs another file: the pass is skipped.
        assert log.truncate("q", 0).evicted_records == 1
        assert log.wal_file_numbers() == [MAX_FILE - 1, MAX_FILE]
    with MultiRecordLog.open(tmp_path) as log:
        assert [p for p, _ in _records(log)] == [1]
        assert log.list_queues() == ["empty", "q"]
        assert log.wal_file_numbers() == [MAX_FILE - 1, MAX_FILE]


# -- class 5: GC never deletes damaged bytes ------------------------------------


def test_skip_moves_a_file_holding_damage_to_the_quarantine_instead_of_collecting_it(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path, file_num_bytes=BLOCK, checksum="crc32") as log:
        log.create_queue("q")
        log.append_record("q", b"dead" * 10)
        # Record 1 is the last one wal-0 keeps alive: it ends in wal-1, and the
        # next record belongs to wal-1.
        log.append_record("q", b"live" * 8200)
        log.append_record("q", b"in wal-1")
        log.truncate("q", 0)
        assert log.wal_file_numbers() == [0, 1]
    # Damage record 1's Last frame, at the start of wal-1: in skip mode the
    # record is dropped, and wal-0, which holds its First frame, keeps no live
    # record.
    with open(tmp_path / _name(1), "r+b") as handle:
        handle.seek(7 + 10)
        handle.write(b"\xff")
    with MultiRecordLog.open(tmp_path, recovery="skip") as log:
        assert [d.kind for d in log.recovery_report.damages] == ["partial_record_dropped", "checksum_mismatch"]
        assert _records(log) == [(2, b"in wal-1")]
        assert log.wal_file_numbers() == [1]
    moved = list((tmp_path / "quarantine").glob(f"*/{_name(0)}"))
    assert len(moved) == 1
    report = json.loads((moved[0].parent / "report.json").read_text())
    assert report["damages"][0]["file"] == _name(0)


# -- class 6: an empty file in the middle --------------------------------------


def test_point_in_time_stops_at_an_emptied_middle_file_and_reports_it_instead_of_recovering_a_hole(
    tmp_path: Path,
) -> None:
    written = _three_files(tmp_path)
    (tmp_path / _name(1)).write_bytes(b"")
    inspected = inspect_log(tmp_path)
    kept = [(r.position, r.payload) for r in inspected.state.queues["q"].records]
    assert kept == written[: len(kept)]
    assert len(kept) < len(written)
    assert "end_before_later_files" in [d.kind for d in inspected.report.damages]
    with pytest.raises(CorruptionError, match=f"followed by a valid frame \\({_name(2)}"):
        inspect_log(tmp_path, recovery="strict")
    skipped = inspect_log(tmp_path, recovery="skip")
    assert "end_before_later_files" in [d.kind for d in skipped.report.damages]
    with MultiRecordLog.open(tmp_path) as log:
        assert _records(log) == kept
        assert not log.recovery_report.clean
        # The last record of wal-0 was to end in wal-1: replay stops at its start.
        assert log.wal_file_numbers() == [0]
    assert list((tmp_path / "quarantine").glob(f"*/{_name(2)}"))


@pytest.mark.parametrize("cut_to", [0, 100, BLOCK // 2])
def test_a_middle_file_cut_short_is_damage_in_every_mode(tmp_path: Path, cut_to: int) -> None:
    _three_files(tmp_path)
    os.truncate(tmp_path / _name(1), cut_to)
    assert not inspect_log(tmp_path).report.clean
    assert not inspect_log(tmp_path, recovery="skip").report.clean
    with pytest.raises(CorruptionError):
        inspect_log(tmp_path, recovery="strict")


# -- class 7: strict and an all-zero first header ------------------------------


def test_strict_refuses_a_zeroed_first_header_that_valid_frames_follow(tmp_path: Path) -> None:
    _three_files(tmp_path)
    with open(tmp_path / _name(0), "r+b") as handle:
        handle.write(bytes(7))
    with pytest.raises(CorruptionError) as raised:
        MultiRecordLog.open(tmp_path, recovery="strict")
    assert (raised.value.file, raised.value.offset) == (_name(0), 0)
    assert sorted(os.listdir(tmp_path)) == [_name(0), _name(1), _name(2)]


# -- class 8: strict and a torn record spanning three blocks -------------------


@pytest.mark.parametrize("frames_kept", [1, 2])
def test_strict_accepts_a_record_spanning_three_blocks_whose_later_frames_never_arrived(
    tmp_path: Path, frames_kept: int
) -> None:
    with MultiRecordLog.open(tmp_path, file_num_bytes=8 * BLOCK) as log:
        log.create_queue("q")
        log.append_record("q", b"small")
        outcome = log.append_record("q", b"L" * (2 * BLOCK + 1000))
    assert outcome.wal_bytes_written > 2 * BLOCK
    with open(tmp_path / _name(0), "r+b") as handle:
        # The First frame is in block 0, a Middle fills block 1, the Last is in block 2.
        handle.seek(frames_kept * BLOCK)
        handle.write(bytes(BLOCK * (3 - frames_kept)))
    strict = inspect_log(tmp_path, recovery="strict")
    assert [(r.position, r.payload) for r in strict.state.queues["q"].records] == [(0, b"small")]
    with MultiRecordLog.open(tmp_path, recovery="strict") as log:
        assert _records(log) == [(0, b"small")]


# -- class 10: sparse files -----------------------------------------------------


def test_a_stray_byte_gigabytes_past_the_data_is_quarantined_with_bounded_memory(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path, file_num_bytes=BLOCK) as log:
        log.create_queue("q")
        log.append_record("q", b"kept")
    far = 3 * 2**30
    with open(tmp_path / _name(0), "r+b") as handle:
        handle.seek(far)
        handle.write(b"\x7f")
    tracemalloc.start()
    try:
        with MultiRecordLog.open(tmp_path, file_num_bytes=BLOCK) as log:
            assert _records(log) == [(0, b"kept")]
            (moved,) = log.recovery_report.quarantined
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20
    assert (tmp_path / _name(0)).stat().st_size == BLOCK
    assert (moved.file, moved.num_bytes) == (_name(0), far + 1 - moved.offset)
    with open(tmp_path / moved.stored_as, "rb") as handle:
        handle.seek(far - moved.offset)
        assert handle.read() == b"\x7f"


# -- class 11: entries of other kinds under the log's names ---------------------


@pytest.mark.parametrize("kind", ["directory", "symlink", "fifo"])
def test_an_entry_of_another_kind_under_a_wal_name_is_refused_up_front_naming_it(tmp_path: Path, kind: str) -> None:
    with MultiRecordLog.open(tmp_path, file_num_bytes=BLOCK) as log:
        log.create_queue("q")
    foreign = tmp_path / _name(1)
    if kind == "directory":
        foreign.mkdir()
    elif kind == "symlink":
        foreign.symlink_to("nowhere")
    else:
        os.mkfifo(foreign)
    before = _tree(tmp_path)
    with pytest.raises(UnexpectedEntry) as raised:
        MultiRecordLog.open(tmp_path)
    assert raised.value.path == str(foreign)
    with pytest.raises(UnexpectedEntry):
        inspect_log(tmp_path)
    assert _tree(tmp_path) == before


def test_recovery_quarantines_beside_a_dangling_symlink_named_like_its_next_folder(tmp_path: Path) -> None:
    _three_files(tmp_path)
    (tmp_path / "quarantine").mkdir()
    (tmp_path / "quarantine" / "recovery-1").symlink_to("nowhere")
    (tmp_path / _name(1)).write_bytes(b"")
    with MultiRecordLog.open(tmp_path) as log:
        assert log.recovery_report.quarantine_dir == os.path.join("quarantine", "recovery-2")
        log.append_record("q", b"after")
    with MultiRecordLog.open(tmp_path) as log:
        assert _records(log)[-1][1] == b"after"


def test_a_quarantine_that_is_not_a_directory_is_refused_up_front(tmp_path: Path) -> None:
    (tmp_path / "quarantine").write_bytes(b"not a folder")
    with pytest.raises(UnexpectedEntry) as raised:
        MultiRecordLog.open(tmp_path)
    assert raised.value.entry_kind == "file"


def test_a_file_cut_to_fewer_blocks_is_restored_to_its_length_so_the_next_open_keeps_the_file_size(
    tmp_path: Path,
) -> None:
    size = 3 * BLOCK
    with MultiRecordLog.open(tmp_path, file_num_bytes=size) as log:
        log.create_queue("q")
        for _ in range(4):
            log.append_record("q", b"p" * 30000)
        assert log.wal_file_numbers() == [0, 1]
    os.truncate(tmp_path / _name(0), BLOCK)
    with MultiRecordLog.open(tmp_path, file_num_bytes=size) as first:
        kept = _records(first)
    assert (tmp_path / _name(0)).stat().st_size == size
    with MultiRecordLog.open(tmp_path, file_num_bytes=size) as again:
        assert _records(again) == kept
        assert again.recovery_report.clean
    with MultiRecordLog.open(tmp_path) as inferred:
        assert inferred.file_num_bytes == size
