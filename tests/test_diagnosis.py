"""The operator reports (``summarize_log``, ``read_records``, ``verify_log``)
on the recorded mrecordlog 0.5 images and on damaged copies of them: they
agree with the recorded states, change no byte, and ``verify_log`` is clean
exactly on the undamaged images."""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

import pytest

from mrecordlog import InvalidArgument, MissingQueue, MultiRecordLog, StorageError
from mrecordlog.diagnosis import read_records, summarize_log, verify_log
from mrecordlog.interchange import unpack_wal_image
from tests.test_vectors import VECTORS

WITH_IMAGE = [v for v in VECTORS if (v / "wal.image.json").is_file() and (v / "state.json").is_file()]
DAMAGES_PER_IMAGE = 6


def _unpack(vector: Path, directory: Path) -> Path:
    directory.mkdir()
    unpack_wal_image(json.loads((vector / "wal.image.json").read_text()), str(directory))
    return directory


def _tree(directory: Path) -> dict[str, tuple[str, int, int]]:
    """Every entry under ``directory``: a digest of its bytes, its mode and mtime (ns)."""
    found: dict[str, tuple[str, int, int]] = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = Path(root) / name
            status = path.stat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[str(path.relative_to(directory))] = (digest, status.st_mode, status.st_mtime_ns)
    return found


def _recorded_state(vector: Path) -> dict[str, dict[str, object]]:
    state: dict[str, dict[str, object]] = json.loads((vector / "state.json").read_text())["queues"]
    return state


@pytest.mark.parametrize("vector", WITH_IMAGE, ids=lambda v: v.name)
def test_the_reports_of_a_recorded_image_match_its_state_and_change_nothing(vector: Path, tmp_path: Path) -> None:
    directory = _unpack(vector, tmp_path / "log")
    before = _tree(directory)
    recorded = _recorded_state(vector)

    verification = verify_log(directory)
    assert verification.clean, verification.findings
    assert verification.describe().endswith("verdict: clean")

    summary = summarize_log(directory)
    assert [q.name for q in summary.queues] == sorted(recorded)
    for queue in summary.queues:
        records = recorded[queue.name]["records"]
        assert isinstance(records, list)
        assert queue.records == len(records)
        assert queue.next_position == recorded[queue.name]["next_position"]
        assert queue.first_position == (records[0][0] if records else None)
        assert queue.last_position == (records[-1][0] if records else None)
        assert queue.payload_bytes == sum(len(bytes.fromhex(payload)) for _, payload in records)
        got = [[r.position, r.payload.hex()] for r in read_records(directory, queue.name)]
        assert got == records
    assert sum(f.live_records for f in summary.files) == sum(q.records for q in summary.queues)
    assert sum(f.live_payload_bytes for f in summary.files) == sum(q.payload_bytes for q in summary.queues)
    json.dumps(summary.to_json_value())
    json.dumps(verification.to_json_value())

    assert _tree(directory) == before


def _damage(vector: Path, directory: Path, rng: random.Random) -> str:
    """Flip one non-zero byte the image wrote (a byte of a frame, so that its
    checksum no longer matches), in place. Returns what was done."""
    image = json.loads((vector / "wal.image.json").read_text())
    extents = [
        (file["name"], extent["offset"], bytes.fromhex(extent["hex"]))
        for file in image["files"]
        for extent in file.get("extents", [])
        if bytes.fromhex(extent["hex"]).strip(b"\0")
    ]
    name, start, data = rng.choice(extents)
    index = rng.randrange(len(data))
    while not data[index]:
        index = rng.randrange(len(data))
    with (directory / name).open("r+b") as handle:
        handle.seek(start + index)
        handle.write(bytes([data[index] ^ (1 << rng.randrange(8))]))
    return f"{name} at {start + index}"


NON_EMPTY = [v for v in WITH_IMAGE if any(_recorded_state(v)[q]["records"] for q in _recorded_state(v))]


@pytest.mark.parametrize("vector", NON_EMPTY, ids=lambda v: v.name)
def test_verify_finds_every_damaged_copy_and_changes_nothing(vector: Path, tmp_path: Path) -> None:
    rng = random.Random(vector.name)
    for attempt in range(DAMAGES_PER_IMAGE):
        directory = _unpack(vector, tmp_path / f"log-{attempt}")
        what = _damage(vector, directory, rng)
        before = _tree(directory) if attempt == 0 else None
        verification = verify_log(directory)
        assert not verification.clean, f"{what}: no finding"
        assert any("wal-" in finding and "offset" in finding for finding in verification.findings), what
        assert verification.describe().splitlines()[-len(verification.findings) - 1].startswith("verdict: damaged")
        summarize_log(directory)  # point_in_time reads a damaged log without refusing
        if before is not None:
            assert _tree(directory) == before, what


def test_verify_reports_a_short_file_and_bytes_after_the_end(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path, file_num_bytes=32768) as log:
        log.create_queue("q")
        log.append_record("q", b"kept")
        end = log.wal_file_numbers()
    assert verify_log(tmp_path).clean
    path = tmp_path / f"wal-{end[-1]:020d}"
    data = bytearray(path.read_bytes())
    data[20000:20004] = b"junk"
    path.write_bytes(bytes(data))
    findings = verify_log(tmp_path).findings
    assert any("after the end of the log" in f and path.name in f and "offset" in f for f in findings), findings
    path.write_bytes(bytes(data[:16384]))
    findings = verify_log(tmp_path).findings
    assert any(f"{path.name} is 16384 bytes long" in f for f in findings), findings


def test_read_records_takes_a_range_and_refuses_a_missing_queue(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        log.append_records("q", [b"a", b"b", b"c", b"d"])
        log.truncate("q", 0)
    assert [r.position for r in read_records(tmp_path, "q", start=2)] == [2, 3]
    assert [r.position for r in read_records(tmp_path, "q", end=3)] == [1, 2]
    with pytest.raises(MissingQueue) as missing:
        read_records(tmp_path, "nope")
    assert missing.value.queue == "nope"
    with pytest.raises(InvalidArgument) as invalid:
        read_records(tmp_path, "q", start=-1)
    assert invalid.value.argument == "start"


def test_the_reports_of_a_missing_directory_raise_a_storage_error(tmp_path: Path) -> None:
    for report in (verify_log, summarize_log):
        with pytest.raises(StorageError):
            report(tmp_path / "missing")
    assert not (tmp_path / "missing").exists()
