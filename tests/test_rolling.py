"""Rolling WAL files through the real ``MultiRecordLog``, with small files.

Every operation runs against the log and against a model written here from the
format's rules (frame layout, file rolling, record attribution, GC). After
every step the test checks the state and the exact bytes of every file against
the model, then closes the log, reopens the directory and checks that the state
is the same and that no byte changed unless the open ran a GC pass (which the
model predicts, with the bytes it writes).
"""

from __future__ import annotations

import os
import random
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import crc32c
import pytest

from mrecordlog import MultiRecordLog

BLOCK = 32768
HEADER = 7
MAX_U64 = 2**64 - 1
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
TRUNCATE, RECORD_POSITION, DELETE_QUEUE, APPEND_RECORDS = 1, 2, 3, 4
PROFILES = ["crc32", "crc32c"]
FILE_SIZES = [2 * BLOCK, 4 * BLOCK]


def wal_name(file_number: int) -> str:
    return f"wal-{file_number:020d}"


def crc(profile: str, frame_type: int, payload: bytes) -> int:
    data = bytes([frame_type]) + payload
    return zlib.crc32(data) if profile == "crc32" else int(crc32c.crc32c(data))


def framed(record: bytes, block_offset: int, profile: str) -> bytes:
    """The bytes the writer appends for ``record`` at ``block_offset`` (format rules)."""
    out = bytearray()
    left = BLOCK - block_offset
    consumed = 0
    first = True
    while True:
        if left < HEADER:
            out += bytes(left)
            left = BLOCK
        length = min(left - HEADER, len(record) - consumed)
        chunk = record[consumed : consumed + length]
        consumed += length
        last = consumed == len(record)
        frame_type = (FULL if last else FIRST) if first else (LAST if last else MIDDLE)
        out += struct.pack("<IHB", crc(profile, frame_type, chunk), length, frame_type) + chunk
        if last:
            return bytes(out)
        first = False
        left = BLOCK


def header_record(record_type: int, position: int, name: str) -> bytes:
    raw = name.encode("utf-8")
    return struct.pack("<BQH", record_type, position, len(raw)) + raw


def append_record(name: str, first: int, payloads: list[bytes]) -> bytes:
    body = b"".join(struct.pack("<QI", first + i, len(p)) + p for i, p in enumerate(payloads))
    return header_record(APPEND_RECORDS, first, name) + body


def position_frame_num_bytes(name: str) -> int:
    """A RecordPosition record in one Full frame, without padding."""
    return HEADER + 11 + len(name.encode("utf-8"))


@dataclass
class ModelQueue:
    next_position: int
    records: list[tuple[int, bytes, int]] = field(default_factory=list)  # (position, payload, attributed file)


class Model:
    """What the files and queues must be, from the format's and the log's rules.

    The files are one byte sequence cut into ``file_num_bytes`` pieces:
    ``head`` is where the next write goes (file ``head // F``, except exactly
    at a file's end, where the writer is still in the earlier file: it rolls
    only when a byte does not fit).
    """

    def __init__(self, file_num_bytes: int, profile: str) -> None:
        self.file_num_bytes = file_num_bytes
        self.profile = profile
        self.image = bytearray()
        self.head = 0
        self.files = [0]
        self.deleted_files: list[int] = []
        self.queues: dict[str, ModelQueue] = {}

    def current_file(self) -> int:
        if self.head and self.head % self.file_num_bytes == 0:
            return self.head // self.file_num_bytes - 1
        return self.head // self.file_num_bytes

    def write(self, record: bytes) -> int:
        data = framed(record, self.head % BLOCK, self.profile)
        end = self.head + len(data)
        if len(self.image) < end:
            self.image.extend(bytes(end - len(self.image)))
        self.image[self.head : end] = data
        while self.files[-1] < (end - 1) // self.file_num_bytes:
            self.files.append(self.files[-1] + 1)
        self.head = end
        return len(data)

    def append_num_bytes(self, name: str, payloads: list[bytes]) -> int:
        first = self.queues[name].next_position
        return len(framed(append_record(name, first, payloads), self.head % BLOCK, self.profile))

    def live(self, file_number: int) -> int:
        return sum(1 for q in self.queues.values() for record in q.records if record[2] == file_number)

    def _can_delete_first(self, keep_from: int | None = None) -> bool:
        first = self.files[0]
        return (
            len(self.files) >= 2
            and first != self.current_file()
            and not self.live(first)
            and (keep_from is None or first < keep_from)
        )

    def gc(self) -> tuple[bool, int]:
        """(whether a GC pass ran, bytes it wrote).

        mrecordlog 0.5 holds the writer's current file while it writes the
        position records and deletes files, so that file is kept even when the
        records roll the writer past it (at a file's end the current file is
        the earlier one: the writer rolls lazily).
        """
        if not self._can_delete_first():
            return False, 0
        keep_from = self.current_file()
        written = 0
        for name in sorted(self.queues):  # code point order
            queue = self.queues[name]
            if not queue.records:
                written += self.write(header_record(RECORD_POSITION, queue.next_position, name))
        while self._can_delete_first(keep_from):
            self.deleted_files.append(self.files.pop(0))
        return True, written

    # -- operations ---------------------------------------------------------

    def create_queue(self, name: str) -> int:
        written = self.write(header_record(RECORD_POSITION, 0, name))
        self.queues[name] = ModelQueue(0)
        return written

    def append(self, name: str, payloads: list[bytes], position: int | None) -> tuple[int | None, int]:
        queue = self.queues[name]
        if position is not None and position + 1 == queue.next_position:
            return None, 0
        assert position is None or position >= queue.next_position
        if not payloads:
            return None, 0
        first = queue.next_position if position is None else position
        attributed = self.current_file()
        written = self.write(append_record(name, first, payloads))
        queue.records.extend((first + i, payload, attributed) for i, payload in enumerate(payloads))
        queue.next_position = first + len(payloads)
        return queue.next_position - 1, written

    def truncate(self, name: str, position: int) -> tuple[int, int]:
        written = self.write(header_record(TRUNCATE, position, name))
        queue = self.queues[name]
        kept = [record for record in queue.records if record[0] > position]
        evicted = len(queue.records) - len(kept)
        queue.records = kept
        queue.next_position = max(queue.next_position, min(position + 1, MAX_U64))
        return evicted, written + self.gc()[1]

    def delete_queue(self, name: str) -> int:
        written = self.write(header_record(DELETE_QUEUE, self.queues[name].next_position, name))
        del self.queues[name]
        return written + self.gc()[1]

    def reopen(self) -> tuple[bool, int]:
        in_block = self.head % BLOCK
        if in_block and BLOCK - in_block < HEADER:
            block_in_file = (self.head % self.file_num_bytes) // BLOCK
            if block_in_file != self.file_num_bytes // BLOCK - 1:
                # The reader finds the next block empty: the writer resumes there.
                self.head += BLOCK - in_block
        return self.gc()

    def state(self) -> dict[str, tuple[int, list[tuple[int, bytes]]]]:
        return {
            name: (queue.next_position, [(position, payload) for position, payload, _ in queue.records])
            for name, queue in self.queues.items()
        }

    def file_bytes(self, file_number: int) -> bytes:
        start = file_number * self.file_num_bytes
        piece = bytes(self.image[start : start + self.file_num_bytes])
        return piece + bytes(self.file_num_bytes - len(piece))


def log_state(log: MultiRecordLog) -> dict[str, tuple[int, list[tuple[int, bytes]]]]:
    return {
        name: (queue.next_position, [(record.position, record.payload) for record in queue.records])
        for name, queue in log.state().queues.items()
    }


class Harness:
    """Runs each operation on the log and on the model, then checks and reopens."""

    def __init__(self, directory: Path, file_num_bytes: int, profile: str, seed: int = 0) -> None:
        self.directory = directory
        self.file_num_bytes = file_num_bytes
        self.profile = profile
        self.model = Model(file_num_bytes, profile)
        self.rng = random.Random(seed)
        self.reopens = 0
        self.reopens_with_gc = 0
        self.log = MultiRecordLog.open(directory, checksum=profile, file_num_bytes=file_num_bytes)
        self.check()

    # -- checks -------------------------------------------------------------

    def read_files(self) -> dict[str, bytes]:
        return {name: (self.directory / name).read_bytes() for name in sorted(os.listdir(self.directory))}

    def check_disk(self) -> dict[str, bytes]:
        files = self.read_files()
        assert list(files) == [wal_name(n) for n in self.model.files]
        for number in self.model.files:
            data = files[wal_name(number)]
            assert len(data) == self.file_num_bytes
            assert data == self.model.file_bytes(number), f"bytes of {wal_name(number)}"
        return files

    def check(self) -> None:
        """Compare with the model, close, check the bytes, reopen, compare again."""
        state = self.log.state()
        assert log_state(self.log) == self.model.state()
        assert self.log.wal_file_numbers() == self.model.files
        self.log.close()
        before = self.check_disk()
        gc_ran, _ = self.model.reopen()
        self.reopens += 1
        # Alternate between naming the file size and letting the log find it.
        size = self.file_num_bytes if self.reopens % 2 else None
        self.log = MultiRecordLog.open(self.directory, checksum=self.profile, file_num_bytes=size)
        assert self.log.recovery_report.damages == ()
        assert self.log.state() == state
        assert self.log.wal_file_numbers() == self.model.files
        if gc_ran:
            self.reopens_with_gc += 1
        else:
            self.log.close()
            assert self.read_files() == before, "a reopen that runs no GC changed the files"
            self.log = MultiRecordLog.open(self.directory, checksum=self.profile, file_num_bytes=size)
        self.check_disk()

    # -- operations ---------------------------------------------------------

    def create_queue(self, name: str) -> int:
        written = self.log.create_queue(name).wal_bytes_written
        assert written == self.model.create_queue(name)
        self.check()
        return written

    def append(self, name: str, payloads: list[bytes], position: int | None = None) -> int:
        outcome = self.log.append_records(name, payloads, position=position)
        assert (outcome.last_position, outcome.wal_bytes_written) == self.model.append(name, payloads, position)
        self.check()
        return outcome.wal_bytes_written

    def truncate(self, name: str, position: int) -> tuple[int, int]:
        outcome = self.log.truncate(name, position)
        expected = self.model.truncate(name, position)
        assert (outcome.evicted_records, outcome.wal_bytes_written) == expected
        self.check()
        return expected

    def delete_queue(self, name: str) -> int:
        written = self.log.delete_queue(name).wal_bytes_written
        assert written == self.model.delete_queue(name)
        self.check()
        return written

    def payload(self, size: int) -> bytes:
        return self.rng.randbytes(size)

    def fill_to(self, name: str, target: int) -> None:
        """One append of one payload whose frames end exactly at global offset ``target``."""
        need = target - self.model.head
        low, high = 0, need
        while low < high:  # smallest payload size whose framed size is >= need
            middle = (low + high) // 2
            if self.model.append_num_bytes(name, [bytes(middle)]) >= need:
                high = middle
            else:
                low = middle + 1
        assert self.model.append_num_bytes(name, [bytes(low)]) == need, f"cannot end an append at {target}"
        assert self.append(name, [self.payload(low)]) == need

    def ahead(self, modulus: int, minus: int, *, not_file_end: bool = False, min_gap: int = 200) -> int:
        """The first offset ``m * modulus - minus`` at least ``min_gap`` bytes ahead."""
        target = (self.model.head + min_gap + minus) // modulus * modulus + modulus - minus
        while not_file_end and (target + minus) % self.file_num_bytes == 0:
            target += modulus
        return target

    def close(self) -> None:
        self.log.close()


@pytest.fixture(params=PROFILES)
def profile(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.mark.parametrize("file_num_bytes", FILE_SIZES)
def test_records_cross_block_and_file_ends_and_every_reopen_keeps_state_and_bytes(
    tmp_path: Path, file_num_bytes: int, profile: str
) -> None:
    h = Harness(tmp_path / "wal", file_num_bytes, profile, seed=file_num_bytes)
    names = ["a", "", "é日🎉"]
    for name in names:
        h.create_queue(name)
    rng = random.Random(5)
    for _ in range(12):
        sizes = [rng.choice([0, 1, 100, 5000, 20000, 40000]) for _ in range(rng.randint(1, 3))]
        h.append(rng.choice(names), [h.payload(size) for size in sizes])
    assert len(h.model.files) >= 2

    # A record that starts exactly at a file's end (the writer is still in the earlier file).
    h.fill_to("a", h.ahead(file_num_bytes, 0))
    files_before = list(h.model.files)
    h.append("", [h.payload(10)])
    assert h.model.files == [*files_before, files_before[-1] + 1]
    assert h.model.queues[""].records[-1][2] == files_before[-1]

    # Exactly 7 bytes left at a file's end: a zero-length First frame ends the file.
    end = h.ahead(file_num_bytes, 0)
    h.fill_to("a", end - 7)
    record = append_record("é日🎉", h.model.queues["é日🎉"].next_position, [b"x" * 50])
    assert h.append("é日🎉", [b"x" * 50]) == 7 + 7 + len(record)
    assert h.model.file_bytes(end // file_num_bytes - 1)[-7:][4:] == b"\x00\x00\x02"

    # Fewer than 7 bytes left at a file's end: padding, and the record goes to the next file.
    for left in (1, 6):
        end = h.ahead(file_num_bytes, 0)
        h.fill_to("a", end - left)
        record = append_record("", h.model.queues[""].next_position, [b"y" * 20])
        assert h.append("", [b"y" * 20]) == left + 7 + len(record)

    # Fewer than 7 bytes left in a block that is not its file's last: after the
    # reopen the writer starts at the next block and the padding is not counted.
    target = h.ahead(BLOCK, 3, not_file_end=True)
    assert (target + 3) % file_num_bytes
    h.fill_to("a", target)
    record = append_record("", h.model.queues[""].next_position, [b"z"])
    assert h.append("", [b"z"]) == 7 + len(record)

    # First / Middle / Last across a file end.
    h.append("a", [h.payload(70_000)])
    h.append("", [h.payload(2 * BLOCK + 100), b"", h.payload(3)])

    # Truncates, a delete and a re-creation; GC removes leading files.
    h.truncate("a", h.model.queues["a"].next_position // 2)
    h.truncate("", h.model.queues[""].next_position - 1)
    h.delete_queue("é日🎉")
    h.create_queue("é日🎉")
    h.append("é日🎉", [h.payload(300)])
    h.append("a", [h.payload(30_000)], position=h.model.queues["a"].next_position + 10)
    h.truncate("a", h.model.queues["a"].next_position - 2)
    h.truncate("é日🎉", 2**63)  # the queue goes on from position 2^63 + 1
    for _ in range(6):
        h.append(rng.choice(names), [h.payload(rng.choice([10, 9000, 33000]))])
    for name in names:
        h.truncate(name, h.model.queues[name].next_position - 1)
    assert len(h.model.files) <= 2
    assert all(not queue.records for queue in h.model.queues.values())
    assert h.reopens >= 40
    assert len(h.model.deleted_files) >= 5
    h.close()


def test_truncate_that_empties_the_first_file_deletes_it_after_position_records_for_empty_queues(
    tmp_path: Path, profile: str
) -> None:
    file_num_bytes = 2 * BLOCK
    h = Harness(tmp_path / "wal", file_num_bytes, profile)
    for name in ("empty-1", "emptied", "q", "late"):
        h.create_queue(name)
    h.append("emptied", [b"gone"])
    h.truncate("emptied", 0)  # empty, next position 1; only one file: no GC
    assert h.model.files == [0]
    for _ in range(5):
        h.append("q", [h.payload(20_000)])
    # q's records 0..3 start in wal-0, record 4 in wal-1.
    assert [record[2] for record in h.model.queues["q"].records] == [0, 0, 0, 0, 1]
    h.append("late", [b"late record"], position=41)  # created in wal-0, its only record in wal-1
    assert h.model.files == [0, 1]

    # The truncate frame and the two position records must fit in the current block
    # for the byte count below (the scenario is deterministic).
    expected = position_frame_num_bytes("q") + position_frame_num_bytes("emptied") + position_frame_num_bytes("empty-1")
    assert h.model.head % BLOCK + expected <= BLOCK
    outcome = h.log.truncate("q", 3)
    assert outcome.evicted_records == 4
    assert outcome.wal_bytes_written == expected  # truncate: 7 + 11 + len("q"), same size as a position frame
    assert h.log.wal_file_numbers() == [1]
    assert sorted(os.listdir(h.directory)) == [wal_name(1)]
    assert h.model.truncate("q", 3) == (4, expected)
    # h.check() compares every byte with the model, which writes the position
    # records after the truncate record, in name order ("emptied" < "empty-1").
    h.check()

    # Queues whose creation record was in the deleted file still exist, with the right positions.
    assert log_state(h.log) == {
        "empty-1": (0, []),
        "emptied": (1, []),
        "q": (5, [(4, h.model.queues["q"].records[0][1])]),
        "late": (42, [(41, b"late record")]),
    }
    assert h.log.next_position("late") == 42
    assert h.log.append_record("empty-1", b"next").last_position == 0
    assert h.log.append_record("emptied", b"next").last_position == 1
    h.close()


def test_delete_queue_whose_records_fill_the_first_file_deletes_it(tmp_path: Path, profile: str) -> None:
    h = Harness(tmp_path / "wal", 2 * BLOCK, profile)
    h.create_queue("old")
    h.create_queue("new")
    h.append("old", [h.payload(40_000), h.payload(30_000)])
    h.append("new", [h.payload(10_000)])
    assert h.model.files == [0, 1]
    written = h.delete_queue("old")
    assert h.model.files == [1]
    assert sorted(os.listdir(h.directory)) == [wal_name(1)]
    # The DeleteQueue frame only: "new" is not empty, so no position record.
    assert written == position_frame_num_bytes("old")
    assert log_state(h.log)["new"][0] == 1
    h.close()


def test_reopen_runs_gc_when_the_first_file_holds_only_position_records(tmp_path: Path, profile: str) -> None:
    h = Harness(tmp_path / "wal", 2 * BLOCK, profile)
    long_names = [letter * 30_000 for letter in "xyz"]
    for name in long_names[:2]:
        h.create_queue(name)
    # The third creation record crosses into wal-1: wal-0 holds no record at all,
    # and the reopen after this step deletes it after writing position records.
    h.create_queue(long_names[2])
    assert h.reopens_with_gc >= 1
    assert 0 not in h.model.files
    assert sorted(h.log.list_queues()) == long_names
    h.append(long_names[0], [b"first"])
    h.close()


@pytest.mark.parametrize("left", [1, 3, 6])
def test_reopen_with_fewer_than_seven_bytes_left_skips_to_the_next_block_except_at_a_file_end(
    tmp_path: Path, profile: str, left: int
) -> None:
    file_num_bytes = 4 * BLOCK
    h = Harness(tmp_path / "wal", file_num_bytes, profile)
    h.create_queue("q")
    # In the first block of wal-0: the reopen skips the padding.
    h.fill_to("q", BLOCK - left)
    record = append_record("q", 1, [b"after"])
    assert h.append("q", [b"after"]) == HEADER + len(record)
    assert h.model.head == BLOCK + HEADER + len(record)
    # In the last block of wal-0: the reopen stays, and the next append pads.
    h.fill_to("q", file_num_bytes - left)
    record = append_record("q", 3, [b"after"])
    assert h.append("q", [b"after"]) == left + HEADER + len(record)
    assert h.model.files == [0, 1]
    h.close()


def test_a_new_file_is_created_only_when_a_byte_does_not_fit(tmp_path: Path, profile: str) -> None:
    file_num_bytes = 2 * BLOCK
    h = Harness(tmp_path / "wal", file_num_bytes, profile)
    h.create_queue("q")
    h.fill_to("q", file_num_bytes)
    assert sorted(os.listdir(h.directory)) == [wal_name(0)]
    h.append("q", [b"next"])
    assert sorted(os.listdir(h.directory)) == [wal_name(0), wal_name(1)]
    h.fill_to("q", 3 * file_num_bytes - 7)
    assert sorted(os.listdir(h.directory)) == [wal_name(n) for n in range(3)]
    h.append("q", [b"last"])
    assert sorted(os.listdir(h.directory)) == [wal_name(n) for n in range(4)]
    h.close()


def test_gc_keeps_the_current_file_when_the_truncate_record_ends_exactly_at_its_end(
    tmp_path: Path, profile: str
) -> None:
    file_num_bytes = 2 * BLOCK
    h = Harness(tmp_path / "wal", file_num_bytes, profile)
    h.create_queue("e")
    h.create_queue("q")
    h.append("q", [h.payload(40_000)])
    # The truncate record (one 19-byte frame) will end exactly at the end of wal-1.
    h.fill_to("q", 2 * file_num_bytes - position_frame_num_bytes("q"))
    assert [record[2] for record in h.model.queues["q"].records] == [0, 0]
    # wal-0 is not live: GC writes position records for "e" and "q" (into wal-2) and
    # deletes wal-0; wal-1, the writer's current file when GC began, is kept.
    outcome = h.log.truncate("q", 1)
    assert outcome.wal_bytes_written == 3 * position_frame_num_bytes("q")  # truncate, then "e" and "q"
    assert h.log.wal_file_numbers() == [1, 2]
    assert sorted(os.listdir(h.directory)) == [wal_name(1), wal_name(2)]
    h.close()
