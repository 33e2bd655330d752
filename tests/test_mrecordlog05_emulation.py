"""The mrecordlog 0.5 emulation (``tests/mrecordlog05_adapter.py``): it
reproduces the recorded Rust vectors byte for byte, shows each of its four
behaviours, and loses each one with ``--without``."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mrecordlog._codec import AppendRecordsRecord, RecordPositionRecord, decode_record
from mrecordlog._storage import OsStorage
from mrecordlog._wal import RawRecord, WalReader, list_wal_files
from mrecordlog.interchange import (
    AppendOp,
    CreateQueueOp,
    DeleteQueueOp,
    Operation,
    ReopenOp,
    TruncateOp,
    apply_operations,
    operation_to_json,
    pack_wal_image,
    read_operations,
)
from mrecordlog.oracle.adapters import InProcessAdapter, SubprocessAdapter
from mrecordlog.oracle.protocol import LOG_OPS
from tests.mrecordlog05_adapter import BEHAVIOURS, emulation_session, hash_order

HERE = Path(__file__).resolve().parent
VECTORS = sorted(p for p in (HERE / "vectors" / "mrecordlog-0.5").iterdir() if (p / "ops.jsonl").is_file())
COMMAND = f"{sys.executable} {HERE / 'mrecordlog05_adapter.py'}"
MAX_U64 = 2**64 - 1
BLOCK = 32768
WAL0 = "wal-00000000000000000000"


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class Emulation:
    """The emulation in-process, with the answers checked to be ``ok``."""

    def __init__(self, without: tuple[str, ...] = ()) -> None:
        self.adapter = InProcessAdapter(emulation_session(without))

    def request(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.adapter.request(request)

    def must(self, request: dict[str, Any]) -> dict[str, Any]:
        answer = self.request(request)
        assert answer["ok"], (request, answer)
        return answer

    def open(self, directory: Path, file_num_bytes: int | None = None) -> dict[str, Any]:
        request: dict[str, Any] = {"op": "open", "dir": str(directory)}
        if file_num_bytes is not None:
            request["file_num_bytes"] = file_num_bytes
        return self.request(request)

    def run(self, operation: Operation) -> dict[str, Any]:
        return self.must(operation_to_json(operation))

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.must({"op": "state"})["state"]
        return state

    def close(self) -> None:
        self.must({"op": "close"})


@pytest.fixture
def emulation() -> Iterator[Emulation]:
    log = Emulation()
    yield log
    log.adapter.close()


def _raw_records(directory: Path, file_num_bytes: int) -> list[RawRecord]:
    """The records of a directory's WAL files, in log order."""
    storage = OsStorage()
    reader = WalReader(storage, str(directory), list_wal_files(storage, str(directory)), file_num_bytes)
    return [item for item in reader if isinstance(item, RawRecord)]


# -- the recorded vectors -------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_the_emulation_reproduces_the_recorded_rust_vectors(vector: Path, tmp_path: Path) -> None:
    meta = _load(vector / "meta.json")
    operations = read_operations((vector / "ops.jsonl").read_text(encoding="utf-8").splitlines())
    expected = _jsonl(vector / "results.jsonl")
    assert len(expected) == len(operations)
    log = Emulation()
    directory = tmp_path / "log"
    opening = {"op": "open", "dir": str(directory), "file_num_bytes": meta["file_num_bytes"], "checksum": "crc32"}
    log.must(opening)
    for operation, theirs in zip(operations, expected, strict=True):
        fields: tuple[str, ...]
        if isinstance(operation, ReopenOp):
            log.close()
            ours = log.request(opening)
            fields = ("ok", "error", "num_queues")
        else:
            ours = log.request(operation_to_json(operation))
            fields = ("ok", "error", "last_position", "evicted_records")
        assert {k: ours.get(k) for k in fields} == {k: theirs.get(k) for k in fields}, (operation, theirs)
    assert log.state() == _load(vector / "state.json")
    log.close()
    assert pack_wal_image(str(directory)) == _load(vector / "wal.image.json")


def test_hello_announces_the_emulation(emulation: Emulation) -> None:
    assert emulation.request({"op": "hello"}) == {
        "ok": True,
        "op": "hello",
        "name": "mrecordlog-0.5-emulation",
        "version": "0.5.0",
        "protocol": 1,
        "ops": list(LOG_OPS),
        "checksums": ["crc32"],
        "recovery": "skip",
        "file_num_bytes": {"multiple_of": 32768},
    }


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"checksum": "crc32c"}, "Unsupported"),
        ({"file_num_bytes": 1000}, "InvalidArgument"),
        ({"file_num_bytes": 0}, "InvalidArgument"),
        ({"file_num_bytes": -BLOCK}, "InvalidArgument"),
    ],
)
def test_open_refuses_what_0_5_cannot_do(
    emulation: Emulation, tmp_path: Path, extra: dict[str, Any], error: str
) -> None:
    answer = emulation.request({"op": "open", "dir": str(tmp_path / "log"), **extra})
    assert (answer["ok"], answer["op"], answer["error"]) == (False, "open", error)
    assert isinstance(answer["message"], str)


def test_a_new_log_is_written_with_crc32(emulation: Emulation, tmp_path: Path) -> None:
    emulation.must({"op": "open", "dir": str(tmp_path / "emulation"), "file_num_bytes": BLOCK})
    emulation.run(CreateQueueOp("q"))
    emulation.close()
    list(apply_operations(str(tmp_path / "reference"), [CreateQueueOp("q")], checksum="crc32", file_num_bytes=BLOCK))
    assert pack_wal_image(str(tmp_path / "emulation")) == pack_wal_image(str(tmp_path / "reference"))


# -- position_wrap --------------------------------------------------------------


@pytest.mark.parametrize(("without", "next_position"), [((), 0), (("position_wrap",), MAX_U64)])
def test_position_wrap_truncate_at_the_last_position_wraps(
    tmp_path: Path, without: tuple[str, ...], next_position: int
) -> None:
    log = Emulation(without)
    log.must({"op": "open", "dir": str(tmp_path), "file_num_bytes": BLOCK})
    log.run(CreateQueueOp("a"))
    assert log.run(TruncateOp("a", MAX_U64))["evicted_records"] == 0
    assert log.state() == {"queues": {"a": {"next_position": next_position, "records": []}}}
    log.close()
    assert log.open(tmp_path)["ok"]
    assert log.state() == {"queues": {"a": {"next_position": next_position, "records": []}}}
    log.close()


def test_position_wrap_keeps_a_larger_next_position(emulation: Emulation, tmp_path: Path) -> None:
    emulation.must({"op": "open", "dir": str(tmp_path), "file_num_bytes": BLOCK})
    emulation.run(CreateQueueOp("a"))
    emulation.run(AppendOp("a", 7, (b"x",)))
    assert emulation.run(TruncateOp("a", MAX_U64))["evicted_records"] == 1
    assert emulation.state() == {"queues": {"a": {"next_position": 8, "records": []}}}


def test_the_subprocess_adapter_serves_the_emulation_and_its_variants(tmp_path: Path) -> None:
    for flags, next_position in (("", 0), (" --without position_wrap", MAX_U64)):
        adapter = SubprocessAdapter(COMMAND + flags, timeout_seconds=10.0)
        try:
            assert adapter.request({"op": "hello"})["name"] == "mrecordlog-0.5-emulation"
            directory = str(tmp_path / f"log{next_position}")
            assert adapter.request({"op": "open", "dir": directory, "file_num_bytes": BLOCK})["ok"]
            assert adapter.request({"op": "create_queue", "queue": "a"})["ok"]
            assert adapter.request({"op": "truncate", "queue": "a", "position": MAX_U64})["ok"]
            state = adapter.request({"op": "state"})["state"]
            assert state["queues"]["a"]["next_position"] == next_position
        finally:
            adapter.close()


# -- gc_record_order ------------------------------------------------------------

# 1-block files: the 3-record batch rolls into file 1; truncating it leaves
# file 0 without a live record, so the GC pass writes a position record for
# each of the two empty queues and deletes file 0.
GC_OPERATIONS: list[Operation] = [
    CreateQueueOp("a"),
    AppendOp("a", 3, (b"1" * 12000, b"2" * 12000, b"3" * 12000)),
    CreateQueueOp("b"),
    TruncateOp("a", 5),
]


def _run_emulation(
    directory: Path, operations: list[Operation], file_num_bytes: int = BLOCK, without: tuple[str, ...] = ()
) -> None:
    log = Emulation(without)
    log.must({"op": "open", "dir": str(directory), "file_num_bytes": file_num_bytes})
    for operation in operations:
        log.run(operation)
    log.close()


def _position_records(directory: Path) -> list[tuple[str, int]]:
    records = [decode_record(raw.data) for raw in _raw_records(directory, BLOCK)]
    return [(r.queue, r.position) for r in records if isinstance(r, RecordPositionRecord)]


def test_hash_order_puts_b_before_a() -> None:
    assert hash_order([("a", 6), ("b", 0)]) == [("b", 0), ("a", 6)]


@pytest.mark.parametrize("without", [(), ("gc_record_order",)], ids=["with", "without"])
def test_gc_record_order_writes_the_position_records_in_hash_order(tmp_path: Path, without: tuple[str, ...]) -> None:
    reference = tmp_path / "reference"
    results = list(apply_operations(str(reference), GC_OPERATIONS, checksum="crc32", file_num_bytes=BLOCK))
    assert all(result["ok"] for result in results)
    emulated = tmp_path / "emulation"
    _run_emulation(emulated, GC_OPERATIONS, without=without)
    assert os.listdir(reference) == os.listdir(emulated) == ["wal-00000000000000000001"]
    # File 1 holds the end of the batch, b's creation, the truncation, then the GC pass.
    assert _position_records(reference)[-2:] == [("a", 6), ("b", 0)]
    if without:
        assert pack_wal_image(str(emulated)) == pack_wal_image(str(reference))
    else:
        assert _position_records(emulated)[-2:] == [("b", 0), ("a", 6)]
        assert pack_wal_image(str(emulated)) != pack_wal_image(str(reference))


def test_gc_record_order_also_applies_to_the_gc_pass_of_delete_queue(tmp_path: Path) -> None:
    # c's record starts in file 0 and ends in file 1: deleting c frees file 0.
    operations: list[Operation] = [
        CreateQueueOp("a"),
        CreateQueueOp("b"),
        CreateQueueOp("c"),
        AppendOp("c", None, (b"x" * 40000,)),
        CreateQueueOp("d"),
        DeleteQueueOp("c"),
    ]
    _run_emulation(tmp_path, operations)
    assert os.listdir(tmp_path) == ["wal-00000000000000000001"]
    names = [name for name, _ in _position_records(tmp_path)[-3:]]
    assert names == [name for name, _ in hash_order([("a", 0), ("b", 0), ("d", 0)])] != ["a", "b", "d"]


# -- short_files ----------------------------------------------------------------


@pytest.mark.parametrize(("without", "ok"), [((), False), (("short_files",), True)])
def test_short_files_an_empty_first_file_makes_open_fail(tmp_path: Path, without: tuple[str, ...], ok: bool) -> None:
    (tmp_path / WAL0).write_bytes(b"")
    answer = Emulation(without).open(tmp_path, BLOCK)
    assert answer["ok"] is ok
    if not ok:
        assert (answer["op"], answer["error"]) == ("open", "IoError")


def _short_file_log(directory: Path) -> list[int]:
    """A one-file log (4 blocks) with 40 records of 1000 bytes in queue a,
    the last ones in block 1, before offset 44574; returns the positions of
    the records whose frame ends in block 0 (a payload is the last part of
    its frame; one split by a block end is not found whole)."""
    payloads = [bytes([0x41 + position]) * 1000 for position in range(40)]
    _run_emulation(directory, [CreateQueueOp("a"), *(AppendOp("a", None, (p,)) for p in payloads)], 4 * BLOCK)
    data = (directory / WAL0).read_bytes()
    ends = [data.find(payload) + len(payload) if payload in data else None for payload in payloads]
    assert BLOCK < max(end for end in ends if end is not None) < 44574
    return [position for position, end in enumerate(ends) if end is not None and end <= BLOCK]


@pytest.mark.parametrize("without", [(), ("short_files",)], ids=["with", "without"])
def test_short_files_a_cut_last_file_loses_its_incomplete_block(tmp_path: Path, without: tuple[str, ...]) -> None:
    directory = tmp_path / "log"
    in_block_0 = _short_file_log(directory)
    os.truncate(directory / WAL0, 44574)
    log = Emulation(without)
    assert log.open(directory)["ok"]
    positions = [position for position, _ in log.state()["queues"]["a"]["records"]]
    log.close()
    assert os.path.getsize(directory / WAL0) == 44574  # zeroed in place; stale_tail does not resize either
    if without:
        assert positions == list(range(40))
    else:
        assert positions == in_block_0
        assert len(in_block_0) < 40


# -- stale_tail -----------------------------------------------------------------


@pytest.mark.parametrize("without", [(), ("stale_tail",)], ids=["with", "without"])
def test_stale_tail_a_record_never_acknowledged_after_recovery_comes_back(
    tmp_path: Path, without: tuple[str, ...]
) -> None:
    """Records a0..a3 in the last block; a1's frame is damaged (zeroed, as by a
    lost write): its all-zero header ends the log, so recovery gives a0 only
    and the writer resumes where a1 was. An append of a record of a1's size
    fills the hole exactly; with a2 and a3 still on disk after it (0.5), the
    next open reads them back."""
    log = Emulation(without)
    log.must({"op": "open", "dir": str(tmp_path), "file_num_bytes": 4 * BLOCK})
    log.run(CreateQueueOp("a"))
    payloads = [bytes([0x61 + i]) * 10 for i in range(4)]
    for payload in payloads:
        log.run(AppendOp("a", None, (payload,)))
    log.close()
    wal = tmp_path / WAL0
    data = bytearray(wal.read_bytes())
    frame = 7 + len(_append_record_bytes(tmp_path, 1))
    start = data.index(payloads[1]) - (frame - len(payloads[1]))
    data[start : start + frame] = bytes(frame)
    wal.write_bytes(bytes(data))

    assert log.open(tmp_path)["ok"]
    assert log.state()["queues"]["a"]["records"] == [[0, payloads[0].hex()]]
    assert log.run(AppendOp("a", None, (b"z" * 10,)))["last_position"] == 1
    log.close()
    assert log.open(tmp_path)["ok"]
    records = log.state()["queues"]["a"]["records"]
    log.close()
    recovered = [[0, payloads[0].hex()], [1, (b"z" * 10).hex()]]
    if without:
        assert records == recovered
    else:
        assert records == [*recovered, [2, payloads[2].hex()], [3, payloads[3].hex()]]


def _append_record_bytes(directory: Path, position: int) -> bytes:
    """The encoded AppendRecords record at ``position`` in the (intact) log."""
    for raw in _raw_records(directory, 4 * BLOCK):
        record = decode_record(raw.data)
        if isinstance(record, AppendRecordsRecord) and record.position == position:
            return bytes(raw.data)
    raise AssertionError(f"no record at position {position}")


def test_every_behaviour_can_be_left_out() -> None:
    assert set(BEHAVIOURS) == {"position_wrap", "gc_record_order", "short_files", "stale_tail"}
    with pytest.raises(ValueError, match="unknown behaviour"):
        emulation_session(("no_such_behaviour",))
