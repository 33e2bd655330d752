"""The golden vectors of ``spec/vectors``: what the generator produces today,
what the reference reproduces, what the model agrees with, and what each
recovery mode makes of their damaged images.

The vectors are written by ``python -m mrecordlog.oracle.vectors``; a change to
the writer, the reader or the generator that changes a byte of them fails
here until they are regenerated (and the change reviewed in the diff).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from mrecordlog import CorruptionError, MultiRecordLog, inspect_log
from mrecordlog.interchange import apply_operations, pack_wal_image, read_operations, unpack_wal_image
from mrecordlog.model import Model
from mrecordlog.oracle.vectors import VECTOR_CASES, generate

ROOT = Path(__file__).resolve().parent.parent
VECTORS_DIR = ROOT / "spec" / "vectors"
VECTORS = sorted(path for path in VECTORS_DIR.iterdir() if (path / "meta.json").is_file())
DAMAGED = [
    (vector, image.name.removesuffix(".image.json"))
    for vector in VECTORS
    for image in sorted((vector / "damaged").glob("*.image.json"))
]
MODES = ("point_in_time", "strict", "skip")
_BYTE_LEVEL = {"i", "message", "wal_bytes_written"}


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _files(root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


def _without_message(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: value for key, value in result.items() if key != "message"} for result in results]


def test_the_checked_in_vectors_are_what_the_generator_produces_today(tmp_path: Path) -> None:
    destination = tmp_path / "vectors"
    written = generate(str(destination))
    assert written == _files(destination)
    assert written == _files(VECTORS_DIR), "regenerate: python -m mrecordlog.oracle.vectors"
    differing = [path for path in written if (destination / path).read_bytes() != (VECTORS_DIR / path).read_bytes()]
    assert not differing, f"regenerate (python -m mrecordlog.oracle.vectors): {differing}"


def test_every_case_has_a_vector_and_the_index_lists_them() -> None:
    names = [case.name for case in VECTOR_CASES]
    assert [vector.name for vector in VECTORS] == names
    assert [entry["name"] for entry in _load(VECTORS_DIR / "index.json")["vectors"]] == names


def test_the_vectors_stay_small_and_cover_both_profiles_and_several_file_sizes() -> None:
    assert sum((VECTORS_DIR / path).stat().st_size for path in _files(VECTORS_DIR)) < 5_000_000
    metas = [_load(vector / "meta.json") for vector in VECTORS]
    assert {meta["checksum"] for meta in metas} == {"crc32", "crc32c"}
    assert {meta["file_num_bytes"] for meta in metas} >= {32768, 131072, 134217728}
    assert {name for _, name in DAMAGED} >= {"missing_file", "torn_tail", "bad_frame_type"}


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_the_reference_reproduces_results_and_bytes(vector: Path, tmp_path: Path) -> None:
    meta = _load(vector / "meta.json")
    operations = read_operations((vector / "ops.jsonl").read_text(encoding="utf-8").splitlines())
    log_dir = tmp_path / "log"
    results = list(
        apply_operations(str(log_dir), operations, checksum=meta["checksum"], file_num_bytes=meta["file_num_bytes"])
    )
    # `message` is wording; every other field is the contract.
    assert _without_message(results) == _without_message(_jsonl(vector / "results.jsonl"))
    image = pack_wal_image(str(log_dir))
    assert image == _load(vector / "wal.image.json")
    assert [entry["name"] for entry in image["files"]] == meta["wal_files"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_the_image_holds_the_state_in_every_mode_and_after_reopens(vector: Path, tmp_path: Path) -> None:
    meta = _load(vector / "meta.json")
    state = (vector / "state.json").read_text(encoding="utf-8")
    image = _load(vector / "wal.image.json")
    unpack_wal_image(image, str(tmp_path))
    for mode in MODES:
        inspection = inspect_log(tmp_path, recovery=mode)
        assert inspection.state.to_canonical_json() == state
        assert inspection.report.clean
    check = meta["reopen_check"]
    for state_key, files_key in (
        ("state_after_reopen_equals_state_json", "reopen_changes_files"),
        ("second_reopen_state_equal", "second_reopen_changes_files"),
    ):
        before = pack_wal_image(str(tmp_path))
        with MultiRecordLog.open(tmp_path, checksum=meta["checksum"]) as log:
            assert (log.state().to_canonical_json() == state) is check[state_key]
        if check[files_key] is False:
            assert pack_wal_image(str(tmp_path)) == before


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_the_model_agrees_with_every_vector(vector: Path) -> None:
    model = Model()
    ops = _jsonl(vector / "ops.jsonl")
    expected = _jsonl(vector / "results.jsonl")
    assert len(ops) == len(expected)
    for op, result in zip(ops, expected, strict=True):
        assert model.apply(op) == {k: v for k, v in result.items() if k not in _BYTE_LEVEL}, op
    assert model.state_json() == (vector / "state.json").read_text(encoding="utf-8")


def _recovered(directory: Path, mode: str) -> dict[str, Any]:
    try:
        value: dict[str, Any] = json.loads(inspect_log(directory, recovery=mode).state.to_canonical_json())
    except CorruptionError as exc:
        return {"error": exc.kind, "file": exc.file, "offset": exc.offset}
    return value


@pytest.mark.parametrize(("vector", "damage"), DAMAGED, ids=lambda x: x if isinstance(x, str) else x.name)
def test_each_recovery_mode_recovers_the_stated_state_from_a_damaged_image(
    vector: Path, damage: str, tmp_path: Path
) -> None:
    damaged = vector / "damaged"
    expected = _load(damaged / f"{damage}.expected.json")
    assert set(expected) == {"description", *MODES}
    unpack_wal_image(_load(damaged / f"{damage}.image.json"), str(tmp_path))
    before = sorted(os.listdir(tmp_path))
    for mode in MODES:
        assert _recovered(tmp_path, mode) == expected[mode], mode
    assert sorted(os.listdir(tmp_path)) == before
    # A damage changes what point_in_time recovers: the vector shows something.
    assert expected["point_in_time"] != _load(vector / "state.json")
