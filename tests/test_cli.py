"""The ``mrecordlog`` command: exit statuses, read-only dump, apply errors, demo."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mrecordlog import MultiRecordLog
from mrecordlog.cli import main


def _tree(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes() if path.is_file() else b"<dir>"
        for path in sorted(directory.rglob("*"))
    }


def test_dump_of_an_empty_directory_prints_no_queues_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dump", str(tmp_path)]) == 0
    assert capsys.readouterr().out == '{"queues":{}}\n'
    assert list(tmp_path.iterdir()) == []


def test_dump_of_a_missing_directory_is_a_bad_argument_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing"
    assert main(["dump", str(missing)]) == 2
    assert f"{str(missing)!r} does not exist" in capsys.readouterr().err
    assert not missing.exists()


def test_dump_of_a_damaged_log_reports_the_damage_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with MultiRecordLog.open(tmp_path, checksum="crc32") as log:
        log.create_queue("q")
        log.append_records("q", [b"one", b"two"])
        log.append_record("q", b"three")
    wal = tmp_path / "wal-00000000000000000000"
    data = bytearray(wal.read_bytes())
    # Flip a payload byte of the last frame (the "three" append): its checksum fails.
    last = data.rindex(b"three")
    data[last] ^= 0xFF
    wal.write_bytes(bytes(data))
    before = _tree(tmp_path)
    assert main(["dump", "--report", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    state = json.loads(captured.out)
    assert state["queues"]["q"]["records"] == [[0, b"one".hex()], [1, b"two".hex()]]
    assert "checksum_mismatch in wal-00000000000000000000" in captured.err
    assert _tree(tmp_path) == before


def test_dump_in_strict_mode_names_the_corruption_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with MultiRecordLog.open(tmp_path, checksum="crc32") as log:
        log.create_queue("q")
        log.append_records("q", [b"one"])
        log.append_records("q", [b"two"])
        log.append_records("q", [b"three"])
    wal = tmp_path / "wal-00000000000000000000"
    data = bytearray(wal.read_bytes())
    two = data.index(b"two")
    data[two] ^= 0xFF
    wal.write_bytes(bytes(data))
    before = _tree(tmp_path)
    frame_start = two - 12 - 11 - 1 - 7
    assert main(["dump", "--recovery", "strict", str(tmp_path)]) == 1
    assert f"wal-00000000000000000000 at offset {frame_start}" in capsys.readouterr().err
    assert main(["dump", "--recovery", "skip", str(tmp_path)]) == 0
    skipped = json.loads(capsys.readouterr().out)
    assert [r[0] for r in skipped["queues"]["q"]["records"]] == [0, 2]
    assert main(["dump", str(tmp_path)]) == 0
    assert [r[0] for r in json.loads(capsys.readouterr().out)["queues"]["q"]["records"]] == [0]
    assert _tree(tmp_path) == before


def test_apply_reports_a_malformed_operations_file_as_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ops = tmp_path / "ops.jsonl"
    ops.write_text('{"op":"create_queue","queue":"q"}\n{"op":"explode"}\n', encoding="utf-8")
    assert main(["apply", str(tmp_path / "log"), str(ops)]) == 2
    assert "line 2" in capsys.readouterr().err
    assert not (tmp_path / "log").exists()


def test_apply_prints_one_result_per_operation_with_typed_error_kinds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ops = tmp_path / "ops.jsonl"
    lines = [
        {"op": "create_queue", "queue": "q"},
        {"op": "create_queue", "queue": "q"},
        {"op": "append", "queue": "q", "position": None, "payloads": ["00", "01"]},
        {"op": "append", "queue": "q", "position": 0, "payloads": ["00"]},
        {"op": "append", "queue": "q", "position": 2**64 - 2, "payloads": ["00", "01"]},
        {"op": "truncate", "queue": "nope", "position": 0},
        {"op": "persist", "fsync": True},
        {"op": "reopen"},
    ]
    ops.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    assert main(["apply", "--file-num-bytes", "65536", str(tmp_path / "log"), str(ops)]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["i"] for r in results] == list(range(len(lines)))
    assert [r.get("error") for r in results] == [
        None,
        "AlreadyExists",
        None,
        "Past",
        "PositionOverflow",
        "MissingQueue",
        None,
        None,
    ]
    assert results[2]["last_position"] == 1
    assert results[7]["num_queues"] == 1
    assert os.path.getsize(tmp_path / "log" / "wal-00000000000000000000") == 65536


def test_apply_rejects_a_file_size_that_is_not_a_block_multiple(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ops = tmp_path / "ops.jsonl"
    ops.write_text("", encoding="utf-8")
    assert main(["apply", "--file-num-bytes", "1000", str(tmp_path / "log"), str(ops)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--file-num-bytes" in err
    assert not (tmp_path / "log").exists()


def test_demo_writes_reopens_and_confirms_the_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", str(tmp_path / "demo"), "--records", "2000"]) == 0
    out = capsys.readouterr().out
    assert "reopened state equals the state before close: ok" in out
