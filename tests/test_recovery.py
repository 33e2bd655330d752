"""Recovery modes, the resume point, quarantine and the removal of stale frames.

Damage is made by hand in real directories: a flipped byte, a zeroed range (a
write that never reached the disk), a missing file. Offsets come from the
frame layout (7-byte headers, records of 11 + name + body bytes).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mrecordlog import CorruptionError, MultiRecordLog, RecoveryMode, inspect_log

BLOCK = 32768
WAL0 = "wal-00000000000000000000"


def _frame_num_bytes(queue: str, payloads: list[bytes]) -> int:
    return 7 + 11 + len(queue.encode()) + sum(12 + len(p) for p in payloads)


def _write_log(directory: Path, payloads: list[bytes], file_num_bytes: int = 4 * BLOCK) -> list[int]:
    """Queue "q" with one record per payload; returns each record frame's offset in wal-0."""
    offsets = []
    with MultiRecordLog.open(directory, file_num_bytes=file_num_bytes, checksum="crc32") as log:
        log.create_queue("q")
        offset = 7 + 11 + 1
        for payload in payloads:
            offsets.append(offset)
            outcome = log.append_record("q", payload)
            offset += outcome.wal_bytes_written
    return offsets


def _tree(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes() if path.is_file() else b"<dir>"
        for path in sorted(directory.rglob("*"))
    }


def _corrupt(path: Path, offset: int, value: int = 0xFF) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= value
    path.write_bytes(bytes(data))


def _payloads(count: int) -> list[bytes]:
    return [f"record-{i}".encode() * 3 for i in range(count)]


def _positions(log: MultiRecordLog) -> list[int]:
    return [r.position for r in log.range("q")]


def test_point_in_time_stops_at_the_first_damaged_frame_and_discards_the_rest(tmp_path: Path) -> None:
    offsets = _write_log(tmp_path, _payloads(5))
    _corrupt(tmp_path / WAL0, offsets[2] + 7 + 20)  # inside record 2's payload
    with MultiRecordLog.open(tmp_path) as log:
        assert _positions(log) == [0, 1]
        report = log.recovery_report
        assert report.mode == "point_in_time"
        assert [d.kind for d in report.damages] == ["checksum_mismatch"]
        assert report.stopped_at == f"{WAL0} at offset {offsets[2]}"
        assert report.discarded_records == 2  # records 3 and 4 were valid but come after the damage
        assert report.queues_touched == ("q",)
        assert (report.resume_file, report.resume_offset) == (WAL0, offsets[2])
        # the next append goes where the damaged record was
        assert log.append_record("q", b"after").last_position == 2
    with MultiRecordLog.open(tmp_path) as log:
        assert [(r.position, r.payload) for r in log.range("q")][-1] == (2, b"after")
        assert log.recovery_report.clean


def test_discarded_bytes_are_quarantined_with_the_report_before_the_tail_is_zeroed(tmp_path: Path) -> None:
    payloads = _payloads(4)
    offsets = _write_log(tmp_path, payloads)
    wal = tmp_path / WAL0
    _corrupt(wal, offsets[1] + 3)  # the checksum of record 1
    original = wal.read_bytes()
    end = offsets[3] + _frame_num_bytes("q", [payloads[3]])
    with MultiRecordLog.open(tmp_path) as log:
        report = log.recovery_report
    assert report.quarantine_dir == "quarantine/recovery-1"
    (item,) = report.quarantined
    assert (item.file, item.offset, item.num_bytes) == (WAL0, offsets[1], end - offsets[1])
    stored = tmp_path / item.stored_as
    assert stored.read_bytes() == original[offsets[1] : end]
    saved = json.loads((tmp_path / "quarantine" / "recovery-1" / "report.json").read_text())
    assert saved["stopped_at"] == f"{WAL0} at offset {offsets[1]}"
    assert saved["quarantined"][0]["num_bytes"] == end - offsets[1]
    assert wal.read_bytes()[offsets[1] :] == bytes(len(original) - offsets[1])
    assert wal.read_bytes()[: offsets[1]] == original[: offsets[1]]


def test_a_clean_log_is_opened_without_any_change(tmp_path: Path) -> None:
    _write_log(tmp_path, _payloads(3))
    before = _tree(tmp_path)
    for mode in RecoveryMode:
        with MultiRecordLog.open(tmp_path, recovery=mode) as log:
            assert log.recovery_report.clean
        assert _tree(tmp_path) == before


def test_frames_after_a_lost_write_are_quarantined_so_new_writes_cannot_revive_them(tmp_path: Path) -> None:
    payloads = _payloads(6)
    offsets = _write_log(tmp_path, payloads)
    wal = tmp_path / WAL0
    data = bytearray(wal.read_bytes())
    # Record 2's bytes never reached the disk; records 3..5 did (written back out of order).
    data[offsets[2] : offsets[3]] = bytes(offsets[3] - offsets[2])
    wal.write_bytes(bytes(data))
    with MultiRecordLog.open(tmp_path) as log:
        assert _positions(log) == [0, 1]
        assert log.recovery_report.ended_at_end_marker
        assert log.recovery_report.quarantined
        # A new record exactly as long as the lost one ends where record 3 began.
        assert log.append_record("q", payloads[2]).wal_bytes_written == offsets[3] - offsets[2]
    with MultiRecordLog.open(tmp_path) as log:
        assert _positions(log) == [0, 1, 2]


def test_strict_refuses_damage_followed_by_valid_records_and_changes_nothing(tmp_path: Path) -> None:
    offsets = _write_log(tmp_path, _payloads(4))
    _corrupt(tmp_path / WAL0, offsets[1] + 7 + 15)
    before = _tree(tmp_path)
    with pytest.raises(CorruptionError) as raised:
        MultiRecordLog.open(tmp_path, recovery="strict")
    assert (raised.value.file, raised.value.offset) == (WAL0, offsets[1])
    assert _tree(tmp_path) == before
    with pytest.raises(CorruptionError):
        inspect_log(tmp_path, recovery="strict")


def test_strict_tolerates_a_torn_tail(tmp_path: Path) -> None:
    payloads = _payloads(3)
    offsets = _write_log(tmp_path, payloads)
    wal = tmp_path / WAL0
    data = bytearray(wal.read_bytes())
    end = offsets[2] + _frame_num_bytes("q", [payloads[2]])
    data[end - 10 : end] = b"\xaa" * 10  # the last record's end is garbage
    wal.write_bytes(bytes(data))
    with MultiRecordLog.open(tmp_path, recovery="strict") as log:
        assert _positions(log) == [0, 1]
        assert log.recovery_report.stopped_at == f"{WAL0} at offset {offsets[2]}"


def test_skip_mode_replays_the_records_after_a_damaged_frame(tmp_path: Path) -> None:
    offsets = _write_log(tmp_path, _payloads(4))
    _corrupt(tmp_path / WAL0, offsets[1] + 7 + 15)
    with MultiRecordLog.open(tmp_path, recovery="skip") as log:
        assert _positions(log) == [0, 2, 3]
        assert [d.kind for d in log.recovery_report.damages] == ["checksum_mismatch"]
        assert log.recovery_report.stopped_at is None


def test_a_partial_record_at_the_tail_is_overwritten_in_point_in_time_mode(tmp_path: Path) -> None:
    big = bytes(range(256)) * 200  # 51200 bytes: First frame in block 0, Last frame in block 1
    offsets = _write_log(tmp_path, [b"small", big])
    wal = tmp_path / WAL0
    data = bytearray(wal.read_bytes())
    data[BLOCK : 2 * BLOCK] = bytes(BLOCK)  # the Last frame was lost
    wal.write_bytes(bytes(data))
    with MultiRecordLog.open(tmp_path) as log:
        assert _positions(log) == [0]
        assert [d.kind for d in log.recovery_report.damages] == ["partial_record_dropped"]
        assert log.recovery_report.resume_offset == offsets[1]
        log.append_record("q", b"again")
    with MultiRecordLog.open(tmp_path) as log:
        assert [r.payload for r in log.range("q")] == [b"small", b"again"]
        assert log.recovery_report.clean


def test_files_after_a_gap_are_detached(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path, file_num_bytes=BLOCK, checksum="crc32") as log:
        log.create_queue("q")
        while len(log.wal_file_numbers()) < 4:
            log.append_record("q", b"x" * 30000)
        assert log.wal_file_numbers() == [0, 1, 2, 3]
    os.remove(tmp_path / "wal-00000000000000000002")
    with pytest.raises(CorruptionError) as raised:
        inspect_log(tmp_path, recovery="strict")
    assert raised.value.file == "wal-00000000000000000003"
    with MultiRecordLog.open(tmp_path) as log:
        report = log.recovery_report
        assert report.detached_files == ("wal-00000000000000000003",)
        assert "wal-00000000000000000003" in {q.file for q in report.quarantined}
        assert log.wal_file_numbers() == [0, 1]
    assert (tmp_path / report.quarantine_dir / "wal-00000000000000000003").is_file()  # type: ignore[operator]


def test_inspection_shows_each_mode_without_writing(tmp_path: Path) -> None:
    offsets = _write_log(tmp_path, _payloads(4))
    _corrupt(tmp_path / WAL0, offsets[1] + 7 + 15)
    before = _tree(tmp_path)
    point_in_time = inspect_log(tmp_path)
    skip = inspect_log(tmp_path, recovery="skip")
    assert [r.position for r in point_in_time.state.queues["q"].records] == [0]
    assert [r.position for r in skip.state.queues["q"].records] == [0, 2, 3]
    assert point_in_time.report.quarantined == ()
    assert _tree(tmp_path) == before


def test_each_recovery_gets_its_own_quarantine_folder(tmp_path: Path) -> None:
    offsets = _write_log(tmp_path, _payloads(3))
    for expected in ("quarantine/recovery-1", "quarantine/recovery-2"):
        _corrupt(tmp_path / WAL0, offsets[2] + 2)  # the checksum of the record at offsets[2]
        with MultiRecordLog.open(tmp_path) as log:
            assert log.recovery_report.quarantine_dir == expected
            assert log.append_record("q", b"rewritten").last_position == 2  # again at offsets[2]


def test_a_newest_file_cut_short_by_a_lost_preallocation_still_opens_with_its_size(tmp_path: Path) -> None:
    # Found by the crash campaign (seed 18): a power loss kept a write into the
    # newest file but lost its preallocation, and open refused the file size.
    with MultiRecordLog.open(tmp_path, file_num_bytes=2 * BLOCK, checksum="crc32") as log:
        log.create_queue("q")
        log.append_record("q", b"x" * 70000)  # into the second file
        log.append_record("q", b"tail")
        assert log.wal_file_numbers() == [0, 1]
    newest = tmp_path / "wal-00000000000000000001"
    data = newest.read_bytes()
    assert not any(data[BLOCK:])
    newest.write_bytes(data[:BLOCK])
    with MultiRecordLog.open(tmp_path, file_num_bytes=2 * BLOCK) as log:
        assert [r.payload for r in log.range("q")] == [b"x" * 70000, b"tail"]
        assert log.file_num_bytes == 2 * BLOCK
