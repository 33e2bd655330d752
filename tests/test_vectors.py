"""The recorded mrecordlog 0.5 vectors: same results, same bytes, same state.

Vectors come from the copy in ``tests/vectors/mrecordlog-0.5`` and, when the
shared folder ``../shared/vectors`` exists, from there too: vectors recorded
later from the Rust implementation are then checked without copying them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mrecordlog import MultiRecordLog, inspect_log
from mrecordlog.interchange import apply_operations, pack_wal_image, read_operations, unpack_wal_image

HERE = Path(__file__).resolve().parent
COPIED = HERE / "vectors" / "mrecordlog-0.5"
SHARED = HERE.parent.parent / "shared" / "vectors"


def _vector_dirs() -> list[Path]:
    found: dict[str, Path] = {}
    for root in (COPIED, SHARED):
        if root.is_dir():
            for child in sorted(root.iterdir()):
                if (child / "meta.json").is_file():
                    found.setdefault(child.name, child)
    return [found[name] for name in sorted(found)]


VECTORS = _vector_dirs()
WITH_OPS = [v for v in VECTORS if (v / "ops.jsonl").is_file() and (v / "results.jsonl").is_file()]


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in sorted(os.listdir(directory))}


def test_the_copied_vectors_are_all_found() -> None:
    names = {v.name for v in VECTORS}
    assert {"01_empty", "02_two_queues_truncate", "10_small_files_rolling"} <= names


@pytest.mark.parametrize("vector", WITH_OPS, ids=lambda v: v.name)
def test_applying_the_ops_gives_the_recorded_results_and_bytes(vector: Path, tmp_path: Path) -> None:
    meta = _load(vector / "meta.json")
    operations = read_operations((vector / "ops.jsonl").read_text(encoding="utf-8").splitlines())
    expected = _jsonl(vector / "results.jsonl")
    got = list(apply_operations(str(tmp_path), operations, checksum="crc32", file_num_bytes=meta["file_num_bytes"]))
    assert len(got) == len(expected)
    for ours, theirs in zip(got, expected, strict=True):
        # `message` is the peer's wording; everything else is the contract.
        assert {k: v for k, v in ours.items() if k != "message"} == {k: v for k, v in theirs.items() if k != "message"}
    assert pack_wal_image(str(tmp_path)) == _load(vector / "wal.image.json")
    assert inspect_log(tmp_path).state.to_canonical_json() == (vector / "state.json").read_text(encoding="utf-8")


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_reading_the_recorded_image_gives_the_recorded_state(vector: Path, tmp_path: Path) -> None:
    unpack_wal_image(_load(vector / "wal.image.json"), str(tmp_path))
    assert inspect_log(tmp_path).state.to_canonical_json() == (vector / "state.json").read_text(encoding="utf-8")


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_opening_the_recorded_image_twice_keeps_state_and_files_as_the_peer(vector: Path, tmp_path: Path) -> None:
    meta = _load(vector / "meta.json")
    unpack_wal_image(_load(vector / "wal.image.json"), str(tmp_path))
    expected_state = (vector / "state.json").read_text(encoding="utf-8")
    before = _snapshot(tmp_path)
    for key in ("reopen_changes_files", "second_reopen_changes_files"):
        with MultiRecordLog.open(tmp_path, checksum="crc32") as log:
            assert log.state().to_canonical_json() == expected_state
        if meta["reopen_check"][key] is False:
            assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_dump_changes_no_byte_and_no_file_name(vector: Path, tmp_path: Path) -> None:
    unpack_wal_image(_load(vector / "wal.image.json"), str(tmp_path))
    (tmp_path / "not-a-wal-file").write_bytes(b"left alone")
    before = _snapshot(tmp_path)
    stats_before = {name: os.stat(tmp_path / name).st_mtime_ns for name in before}
    completed = subprocess.run(
        [sys.executable, "-m", "mrecordlog.cli", "dump", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == (vector / "state.json").read_text(encoding="utf-8")
    assert _snapshot(tmp_path) == before
    assert {name: os.stat(tmp_path / name).st_mtime_ns for name in before} == stats_before


def test_apply_command_prints_the_recorded_results(tmp_path: Path) -> None:
    vector = COPIED / "05_idempotent_and_skip_ahead"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mrecordlog.cli",
            "apply",
            "--checksum",
            "crc32",
            str(tmp_path / "log"),
            str(vector / "ops.jsonl"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    got = [json.loads(line) for line in completed.stdout.splitlines()]
    expected = _jsonl(vector / "results.jsonl")
    assert [{k: v for k, v in r.items() if k != "message"} for r in got] == [
        {k: v for k, v in r.items() if k != "message"} for r in expected
    ]
