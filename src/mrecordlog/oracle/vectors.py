"""The golden vectors of ``spec/vectors/``: their cases and their generator.

This module owns the vectors this project publishes for other implementations:
the cases (operations built in code, with deterministic payloads), the byte
arithmetic that predicts what every operation writes, the damage applied to
some of their images, and the files written for each case. The vector files
follow the formats of the recorded mrecordlog 0.5 vectors
(``tests/vectors/mrecordlog-0.5/README.md``): ``ops.jsonl``, ``results.jsonl``,
``state.json``, ``wal.image.json``, ``meta.json``; ``damaged/`` adds damaged
images with the state each recovery mode recovers from them.

A case is built by ``_Builder``, an independent model of the format's rules
(frames over 32 KiB blocks, padding, lazy rolling, record attribution and GC):
it predicts each operation's ``wal_bytes_written``, the files that remain and
where the writer resumes, and the case functions assert the offsets they mean
to hit (padding of 1 to 6 bytes, a zero-length First frame, a record ending at
a block end, ...). ``generate`` runs the cases against the reference and fails
unless the reference writes exactly what was predicted, so each vector really
covers what its description says.

Everything is a function of this file: payloads come from SHA-256 of fixed
tags, logs are written in temporary directories (a 128 MiB file never leaves
them) and only the compact vector files reach the destination.
``tests/test_golden_vectors.py`` proves the checked-in vectors equal what
``generate`` produces. Regenerate with ``python -m mrecordlog.oracle.vectors``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from mrecordlog._wal import wal_file_name
from mrecordlog.errors import CorruptionError
from mrecordlog.inspection import inspect_log
from mrecordlog.interchange import (
    AppendOp,
    CreateQueueOp,
    DeleteQueueOp,
    Operation,
    PersistOp,
    ReopenOp,
    TruncateOp,
    apply_operations,
    operation_to_json,
    pack_wal_image,
    result_line,
    unpack_wal_image,
)
from mrecordlog.log import MultiRecordLog
from mrecordlog.model import Model

GENERATOR: Final = "mrecordlog.oracle.vectors"
FORMAT: Final = 1
DEFAULT_DESTINATION: Final = os.path.join("spec", "vectors")
BLOCK: Final = 32768
HEADER: Final = 7
DEFAULT_FILE_NUM_BYTES: Final = 128 * 1024 * 1024
MODES: Final = ("point_in_time", "strict", "skip")
# Result fields that belong to the bytes, not to the behaviour (the model has none of them).
_BYTE_LEVEL: Final = frozenset({"i", "message", "wal_bytes_written"})
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4

Profile = Literal["crc32", "crc32c"]
DamageKind = Literal["xor", "zero", "set", "remove_file"]


class VectorError(Exception):
    """A case does not write what it was built to write, or a damage misses."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise VectorError(message)


@dataclass(frozen=True, slots=True)
class Damage:
    """One change to a vector's WAL image, at an absolute place.

    ``xor``: each of ``length`` bytes from ``offset`` is XORed with ``value``;
    ``zero``: ``length`` bytes from ``offset`` become zero; ``set``: ``length``
    bytes from ``offset`` become ``value``; ``remove_file``: the file is gone.
    """

    name: str
    description: str
    kind: DamageKind
    file_number: int
    offset: int = 0
    length: int = 1
    value: int = 0xFF


@dataclass(frozen=True, slots=True)
class VectorCase:
    """A golden vector: operations on a new log, and what they must write."""

    name: str
    description: str
    file_num_bytes: int
    checksum: Profile
    operations: tuple[Operation, ...]
    # Predicted from the format rules: each operation's wal_bytes_written
    # (None for one that reports none: persist, reopen, a refused call), the
    # files left after the last operation, and where the writer resumes.
    expected_bytes: tuple[int | None, ...]
    expected_wal_files: tuple[int, ...]
    expected_resume: tuple[int, int]
    damages: tuple[Damage, ...] = ()


# -- payloads -------------------------------------------------------------------


def _pattern(tag: str, size: int) -> bytes:
    """``size`` bytes that depend only on ``tag``."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{tag}/{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def _large(tag: str, size: int, *, tail: bool = True) -> bytes:
    """A large payload: a 256-byte patterned head, zeros, and (with ``tail``) a
    256-byte patterned tail. The zeros keep the images compact (trailing zeros
    of a block are not stored)."""
    ends = 512 if tail else 256
    _check(size >= ends, "payload too small")
    return _pattern(tag, 256) + bytes(size - ends) + (_pattern(tag + "/tail", 256) if tail else b"")


# -- the builder: the format's byte arithmetic -----------------------------------


@dataclass(frozen=True, slots=True)
class _Frame:
    at: int  # offset of the header in the byte stream (file number * file size + offset)
    frame_type: int
    length: int


@dataclass(frozen=True, slots=True)
class _Trace:
    start: int  # the writer's place in the byte stream before the operation
    padding: int  # zero bytes written before the operation's first frame
    frames: tuple[_Frame, ...]  # every frame it wrote, GC position records included


def _record_num_bytes(queue: str, payloads: Sequence[bytes] | None = None) -> int:
    body = 0 if payloads is None else sum(12 + len(payload) for payload in payloads)
    return 11 + len(queue.encode("utf-8")) + body


class _Builder:
    """Builds a case's operations while predicting their bytes from the format
    rules alone (``spec/FORMAT.md`` § 2, 3.5, 5.5; ``spec/SEMANTICS.md`` § 3).

    The writer's place is tracked as one byte stream over the files (file ``n``
    holds stream bytes ``n * file_num_bytes`` onwards); it rolls lazily, so at
    a file's exact end it is still in that file.
    """

    def __init__(self, file_num_bytes: int) -> None:
        _check(file_num_bytes > 0 and file_num_bytes % BLOCK == 0, "bad file size")
        self.file_num_bytes = file_num_bytes
        self.model = Model()
        self.cursor = 0
        self.files = [0]
        # queue -> position -> the file the record is attributed to (GC liveness)
        self.retained: dict[str, dict[int, int]] = {}
        self.operations: list[Operation] = []
        self.expected_bytes: list[int | None] = []
        self.traces: list[_Trace] = []

    # -- places ------------------------------------------------------------------

    def block_left(self) -> int:
        """Bytes left in the writer's current block (32768 at a block start)."""
        return BLOCK - self.cursor % BLOCK

    def current_file(self) -> int:
        return (self.cursor - 1) // self.file_num_bytes if self.cursor else 0

    def writer_place(self) -> tuple[int, int]:
        """(file number, offset) of the writer, as a reopen would resume."""
        cursor = self.cursor
        if self.block_left() < HEADER and not self._in_last_block_of_file():
            cursor += self.block_left()
        if cursor and cursor % self.file_num_bytes == 0:
            return cursor // self.file_num_bytes - 1, self.file_num_bytes
        return divmod(cursor, self.file_num_bytes)

    def _in_last_block_of_file(self) -> bool:
        return (self.cursor % self.file_num_bytes) // BLOCK == self.file_num_bytes // BLOCK - 1

    def locate(self, stream_offset: int) -> tuple[int, int]:
        """(file number, offset) of a byte of the stream."""
        return divmod(stream_offset, self.file_num_bytes)

    def trace(self, index: int = -1) -> _Trace:
        return self.traces[index]

    # -- writing -----------------------------------------------------------------

    def _write(self, record_num_bytes: int) -> tuple[int, int, list[_Frame]]:
        """Frame one record at the cursor: (bytes written, padding, frames)."""
        start = self.cursor
        padding = 0
        if self.block_left() < HEADER:
            padding = self.block_left()
            self.cursor += padding
        frames = []
        remaining = record_num_bytes
        first = True
        while True:
            size = min(self.block_left() - HEADER, remaining)
            remaining -= size
            last = remaining == 0
            frame_type = (_FULL if last else _FIRST) if first else (_LAST if last else _MIDDLE)
            frames.append(_Frame(self.cursor, frame_type, size))
            self.cursor += HEADER + size
            first = False
            if last:
                break
        last_file = (self.cursor - 1) // self.file_num_bytes
        while self.files[-1] < last_file:
            self.files.append(self.files[-1] + 1)
        return self.cursor - start, padding, frames

    def _gc(self) -> tuple[int, list[_Frame]]:
        """A GC pass: position records of the empty queues (by name), then the
        leading files that hold no retained record and are not current."""
        live = {number for positions in self.retained.values() for number in positions.values()}

        def collectable(keep_from: int | None) -> list[int]:
            found = []
            for number in self.files[:-1]:
                if number == self.current_file() or number in live or (keep_from is not None and number >= keep_from):
                    break
                found.append(number)
            return found

        if not collectable(None):
            return 0, []
        keep_from = self.current_file()
        written = 0
        frames: list[_Frame] = []
        for name in sorted(name for name, queue in self.model.queues.items() if not queue.records):
            num_bytes, _, record_frames = self._write(_record_num_bytes(name))
            written += num_bytes
            frames += record_frames
        for number in collectable(keep_from):
            self.files.remove(number)
        return written, frames

    def _add(self, operation: Operation, error: str | None) -> dict[str, Any]:
        start = self.cursor
        result = self.model.apply(operation_to_json(operation))
        _check(result.get("error") == error, f"op {len(self.operations)}: {result} (expected error {error})")
        written: int | None = None
        padding = 0
        frames: list[_Frame] = []
        if isinstance(operation, ReopenOp):
            if self.block_left() < HEADER and not self._in_last_block_of_file():
                self.cursor += self.block_left()
            frames = self._gc()[1]
        elif not result["ok"] or isinstance(operation, PersistOp):
            pass
        elif isinstance(operation, CreateQueueOp):
            written, padding, frames = self._write(_record_num_bytes(operation.queue))
            self.retained[operation.queue] = {}
        elif isinstance(operation, AppendOp):
            written = 0
            last = result["last_position"]
            if last is not None:
                attributed = self.current_file()
                written, padding, frames = self._write(_record_num_bytes(operation.queue, operation.payloads))
                first = last - len(operation.payloads) + 1
                for position in range(first, last + 1):
                    self.retained[operation.queue][position] = attributed
        elif isinstance(operation, TruncateOp):
            written, padding, frames = self._write(_record_num_bytes(operation.queue))
            positions = self.retained[operation.queue]
            for position in [p for p in positions if p <= operation.position]:
                del positions[position]
            gc_written, gc_frames = self._gc()
            written += gc_written
            frames += gc_frames
        elif isinstance(operation, DeleteQueueOp):
            written, padding, frames = self._write(_record_num_bytes(operation.queue))
            del self.retained[operation.queue]
            gc_written, gc_frames = self._gc()
            written += gc_written
            frames += gc_frames
        self.operations.append(operation)
        self.expected_bytes.append(written)
        self.traces.append(_Trace(start, padding, tuple(frames)))
        return result

    # -- operations --------------------------------------------------------------

    def create_queue(self, queue: str, *, error: str | None = None) -> dict[str, Any]:
        return self._add(CreateQueueOp(queue), error)

    def delete_queue(self, queue: str, *, error: str | None = None) -> dict[str, Any]:
        return self._add(DeleteQueueOp(queue), error)

    def append(
        self, queue: str, payloads: Sequence[bytes], position: int | None = None, *, error: str | None = None
    ) -> dict[str, Any]:
        return self._add(AppendOp(queue, position, tuple(payloads)), error)

    def truncate(self, queue: str, position: int, *, error: str | None = None) -> dict[str, Any]:
        return self._add(TruncateOp(queue, position), error)

    def persist(self, fsync: bool) -> dict[str, Any]:
        return self._add(PersistOp(fsync), None)

    def reopen(self) -> dict[str, Any]:
        return self._add(ReopenOp(), None)

    @property
    def last(self) -> int:
        """Index of the last operation."""
        return len(self.operations) - 1

    def fill(self, queue: str, left: int, tag: str) -> int:
        """Append one payload sized so that ``left`` bytes remain in the current
        block afterwards (0: the record ends exactly at the block's end); the
        operation's index."""
        size = self.block_left() - left - HEADER - _record_num_bytes(queue, [b""])
        _check(self.block_left() >= HEADER and size >= 0, f"no room to leave {left} bytes")
        self.append(queue, [_large(tag, size, tail=False) if size >= 256 else _pattern(tag, size)])
        _check(self.cursor % BLOCK == (BLOCK - left) % BLOCK, "fill missed")
        _check(len(self.trace().frames) == 1 and self.trace().padding == 0, "fill is not one frame")
        return self.last

    # -- damage ------------------------------------------------------------------

    def frame(self, operation: int, frame: int = 0) -> _Frame:
        return self.traces[operation].frames[frame]

    def _damage(self, name: str, description: str, kind: DamageKind, at: int, length: int, value: int) -> Damage:
        number, offset = self.locate(at)
        _check(self.locate(at + length - 1)[0] == number and number in self.files, "a damage stays in one kept file")
        return Damage(name, description, kind, number, offset, length, value)

    def xor(self, name: str, description: str, frame: _Frame, at: int, value: int = 0xFF) -> Damage:
        """XOR the byte ``at`` bytes from the frame's header."""
        _check(0 <= at < HEADER + frame.length, "xor outside its frame")
        return self._damage(name, description, "xor", frame.at + at, 1, value)

    def zero(self, name: str, description: str, frame: _Frame, at: int, length: int | None = None) -> Damage:
        """Zero ``length`` bytes (default: to the frame's end) from ``at`` bytes
        after the frame's header start."""
        length = HEADER + frame.length - at if length is None else length
        _check(at >= 0 and length > 0, "empty zero range")
        return self._damage(name, description, "zero", frame.at + at, length, 0)

    def set_type(self, name: str, description: str, frame: _Frame, value: int) -> Damage:
        """Replace the frame's type byte."""
        return self._damage(name, description, "set", frame.at + 6, 1, value)

    def remove_file(self, name: str, description: str, number: int) -> Damage:
        _check(number in self.files, f"no file {number}")
        return Damage(name, description, "remove_file", number, 0, 0, 0)

    def case(self, name: str, description: str, checksum: Profile, damages: Sequence[Damage] = ()) -> VectorCase:
        return VectorCase(
            name=name,
            description=description,
            file_num_bytes=self.file_num_bytes,
            checksum=checksum,
            operations=tuple(self.operations),
            expected_bytes=tuple(self.expected_bytes),
            expected_wal_files=tuple(self.files),
            expected_resume=self.writer_place(),
            damages=tuple(damages),
        )


# -- the cases -------------------------------------------------------------------


def _frame_types(trace: _Trace) -> list[int]:
    return [frame.frame_type for frame in trace.frames]


def _record_types(name: str, checksum: Profile, description: str, *, damaged: bool) -> VectorCase:
    b = _Builder(4 * BLOCK)
    b.create_queue("a")
    b.create_queue("")
    b.create_queue("b")
    b.append("a", [b"hello"])
    b.append("a", [b""])
    b.append("b", [b"\x00", b"", _pattern("record-types/b", 300)])
    batch = b.last
    b.append("", [b"x"])
    named_empty = b.last
    _check(b.append("a", [])["last_position"] is None and b.expected_bytes[-1] == 0, "an empty batch writes nothing")
    b.truncate("a", 0)
    b.persist(False)
    b.persist(True)
    b.delete_queue("b")
    b.reopen()
    b.truncate("", 0)
    b.append("a", [b"after reopen"])
    _check(b.files == [0] and b.cursor < BLOCK, "everything in block 0 of one file")
    damages = []
    if damaged:
        damages = [
            b.xor(
                "flipped_payload_byte",
                f"One payload byte of op {batch}'s frame (the 3-record batch of queue b, in the middle of the log) "
                "is flipped: its checksum fails. point_in_time stops there (state after the ops before it), strict "
                "refuses (valid records follow), skip drops only that record (b's batch is lost, the rest is kept).",
                b.frame(batch),
                HEADER + 40,
            ),
            b.set_type(
                "bad_frame_type",
                f'The type byte of op {named_empty}\'s frame (queue "" appends x) is 5, not a frame type. The '
                "reader abandons the rest of block 0, which holds every later frame: point_in_time and skip recover "
                "the state after the ops before it; strict refuses, since valid frames follow the damage.",
                b.frame(named_empty),
                5,
            ),
            b.zero(
                "torn_tail",
                f"The last frame (op {b.last}, the append to queue a) is cut in the middle of its payload (a torn "
                "write): its checksum fails and nothing follows. Every mode recovers the state before the last op.",
                b.frame(b.last),
                HEADER + b.frame(b.last).length - 6,
            ),
        ]
    return b.case(name, description, checksum, damages)


def _positions_and_errors() -> VectorCase:
    b = _Builder(4 * BLOCK)
    b.create_queue("q")
    b.create_queue("q", error="AlreadyExists")
    b.append("missing", [b"x"], error="MissingQueue")
    b.truncate("missing", 0, error="MissingQueue")
    b.delete_queue("missing", error="MissingQueue")
    b.append("q", [b"a"], 0)
    _check(b.append("q", [b"a"], 0)["last_position"] is None, "idempotent retry")
    b.append("q", [b"b"])
    b.append("q", [b"c"], 0, error="Past")
    _check(b.append("q", [b"d", b"e"], 5)["last_position"] == 6, "skip-ahead")
    _check(b.append("q", [], 10)["last_position"] is None, "empty batch")
    b.append("q", [], 3, error="Past")
    _check(b.truncate("q", 9)["evicted_records"] == 4, "truncate beyond the last record")
    _check(b.append("q", [b"f"], 9)["last_position"] is None, "idempotent on an emptied queue")
    b.reopen()
    _check(b.append("q", [b"g"], 9)["last_position"] is None, "idempotent after reopen")
    _check(b.append("q", [b"h"])["last_position"] == 10, "next position after reopen")
    b.create_queue("fresh")
    _check(b.append("fresh", [b"i"], 5)["last_position"] == 5, "a fresh queue skips ahead")
    _check(b.truncate("q", 0)["evicted_records"] == 0, "truncate below every record")
    b.delete_queue("fresh")
    b.append("fresh", [b"j"], error="MissingQueue")
    b.create_queue("fresh")
    _check(b.append("fresh", [b"k"])["last_position"] == 0, "a re-created queue restarts at 0")
    return b.case(
        "03_positions_and_errors",
        "Explicit positions and refused calls (crc32): create an existing queue (AlreadyExists); append, truncate "
        "and delete a missing queue (MissingQueue); append at position 0 twice (the second is the idempotent retry: "
        "last_position null, nothing written); a smaller position (Past); a skip-ahead to 5; an empty batch at a "
        "future position (null) and at a past one (Past: positions are checked first); truncate beyond the last "
        "record (empties the queue, next position 10) then the idempotent retry at 9, again after a reopen; a new "
        "queue whose first append is at 5; truncate below every record (evicts 0); delete and re-create a queue "
        "(positions restart at 0).",
        "crc32",
    )


def _block_padding() -> VectorCase:
    file_num_bytes = 4 * BLOCK
    b = _Builder(file_num_bytes)
    b.create_queue("p")

    def small(index: int) -> int:
        b.append("p", [_pattern(f"padding/small/{index}", 20)])
        return b.last

    for index, left in enumerate((6, 5, 4)):
        b.fill("p", left, f"padding/fill/{left}")
        small(index)
        _check(b.trace().padding == left and b.trace().frames[0].at == (index + 1) * BLOCK, f"padding {left}")
    b.fill("p", 3, "padding/fill/3")
    _check(b.cursor == file_num_bytes - 3, "3 bytes left at the end of file 0")
    b.reopen()
    _check(b.cursor == file_num_bytes - 3, "a reopen in the last block of the last file stays there")
    small(3)
    _check(b.trace().padding == 3 and b.locate(b.frame(b.last).at) == (1, 0), "padding 3 at a file end, then roll")
    _check(b.expected_bytes[-1] == 3 + HEADER + _record_num_bytes("p", [bytes(20)]), "the padding is counted")
    b.fill("p", 2, "padding/fill/2")
    after_padding_2 = small(4)
    _check(b.trace().padding == 2 and b.locate(b.frame(b.last).at) == (1, BLOCK), "padding 2")
    b.fill("p", 1, "padding/fill/1")
    reopen_at = b.cursor
    b.reopen()
    _check(b.cursor == reopen_at + 1, "a reopen at a block tail inside a file goes to the next block")
    small(5)
    _check(b.trace().padding == 0 and b.expected_bytes[-1] == HEADER + 44, "the skipped byte is not counted")
    fill_7 = b.fill("p", 7, "padding/fill/7")
    small(6)
    first, last = b.trace().frames
    _check(
        (first.frame_type, first.length, b.locate(first.at)) == (_FIRST, 0, (1, 3 * BLOCK - HEADER))
        and (last.frame_type, b.locate(last.at)) == (_LAST, (1, 3 * BLOCK)),
        "a zero-length First frame in the last 7 bytes of block 2 of file 1, the record in block 3",
    )
    b.fill("p", 0, "padding/fill/0")
    _check(b.cursor == 2 * file_num_bytes and b.files == [0, 1], "a record ending exactly at file 1's end")
    small(7)
    _check(b.trace().padding == 0 and b.locate(b.frame(b.last).at) == (2, 0), "the next record starts file 2")
    b.truncate("p", b.model.queues["p"].next_position - 2)
    _check(b.files == [1, 2], "GC deletes file 0 only: the record that starts file 2 is attributed to file 1")
    b.append("p", [b"end"])
    lost_file, lost_offset = b.locate(b.frame(after_padding_2).at)
    zeroed_file, zeroed_offset = b.locate(b.frame(fill_7).at)
    return b.case(
        "04_block_padding",
        "Block ends (crc32c, 4-block files). Records sized from the format rules leave 6, 5, 4 and 3 bytes in "
        "blocks 0 to 3 of file 0: the next append writes that many zero bytes of padding (counted in its "
        "wal_bytes_written) and starts the next block; a reopen when 3 bytes are left in the last block of the "
        "last file stays there (the next append pads and rolls to file 1). In file 1: 2 bytes left (padding); 1 "
        "byte left then a reopen (the writer resumes at the next block; the byte is not written or counted); "
        "exactly 7 bytes left at the end of block 2 (the next record writes a zero-length First frame there and "
        "a Last frame with the whole record in block 3); a record ending exactly at block 3's end, the end of file "
        "1 (the next record starts file 2 but is attributed to file 1). Truncating every record but that one "
        "makes GC delete file 0 only (file 1 stays live); one more append. Large payloads are a 256-byte "
        "patterned head and zeros.",
        "crc32c",
        [
            b.zero(
                "lost_write_zeroed_header",
                f"512 zero bytes from the header of the frame at offset {lost_offset} of {wal_file_name(lost_file)} "
                "(a lost sector write, over the next frame's header too): "
                "an all-zero frame header ends the log, so the valid frames after it in later blocks of its file "
                "are not replayed in any mode; since later files follow, that end is damage "
                "(end_before_later_files): point_in_time stops there, skip goes on with file 2, strict refuses "
                "since valid frames follow the end of the log.",
                b.frame(after_padding_2),
                0,
                512,
            ),
            b.zero(
                "zeroed_payload_bytes",
                f"64 bytes inside the payload of the frame at offset {zeroed_offset} of {wal_file_name(zeroed_file)} "
                "are zeroed: its checksum fails. point_in_time stops there, strict refuses (valid records follow), "
                "skip drops that record.",
                b.frame(fill_7),
                HEADER + 11 + 1 + 12 + 100,
                64,
            ),
        ],
    )


def _spanning_frames() -> VectorCase:
    b = _Builder(4 * BLOCK)
    b.create_queue("s")
    b.append("s", [_pattern("spanning/0", 100)])
    b.append("s", [_large("spanning/1", 70000)])
    spanning = b.trace()
    _check(_frame_types(spanning) == [_FIRST, _MIDDLE, _LAST], "First, Middle, Last")
    _check([frame.at // BLOCK for frame in spanning.frames] == [0, 1, 2], "over blocks 0, 1, 2")
    _check(spanning.frames[1].at == BLOCK and spanning.frames[1].length == BLOCK - HEADER, "the Middle fills block 1")
    b.append("s", [_pattern("spanning/2", 100)])
    b.truncate("s", 1)
    return b.case(
        "05_spanning_frames",
        f"A record over three blocks (crc32c, 4-block files): after a create ({b.expected_bytes[0]} bytes) and a "
        f"100-byte append, a 70000-byte payload (record of {_record_num_bytes('s', [bytes(70000)])} bytes) is "
        f"written as a First frame of {spanning.frames[0].length} bytes in block 0, a Middle frame filling block "
        f"1 (32761 bytes) and a Last frame of {spanning.frames[2].length} bytes in block 2; then a 100-byte "
        "append and a truncate up to the large record. The large payload has a 256-byte patterned head and tail "
        "and a zero interior.",
        "crc32c",
        [
            b.xor(
                "flipped_byte_in_middle_frame",
                "One byte of the Middle frame's payload (block 1) is flipped: the partial record is dropped. "
                "point_in_time stops at the record's First frame, strict refuses (a valid record follows in block "
                "2), skip drops the large record and keeps the later append and truncate.",
                spanning.frames[1],
                HEADER + 1000,
            )
        ],
    )


def _rolling_small_files() -> VectorCase:
    file_num_bytes = BLOCK
    b = _Builder(file_num_bytes)
    b.create_queue("keep")
    b.create_queue("r")
    b.append("keep", [_pattern("rolling/keep/0", 50)])
    b.append("r", [_pattern("rolling/0", 1000)])
    b.fill("r", 0, "rolling/fill/0")
    _check(b.cursor == file_num_bytes and b.files == [0], "file 0 ends exactly with a record")
    b.append("r", [_pattern("rolling/1", 200)])
    file_1_start = b.last
    _check(b.trace().padding == 0 and b.locate(b.frame(b.last).at) == (1, 0), "the next record rolls to file 1")

    def keep(index: int, file_number: int) -> None:
        b.append("keep", [_pattern(f"rolling/keep/{index}", 50)])
        _check(b.locate(b.frame(b.last).at)[0] == file_number, f"keep/{index} in file {file_number}")

    keep(1, 1)
    b.append("r", [_large("rolling/2", 45000)])
    _check(_frame_types(b.trace()) == [_FIRST, _LAST], "First, Last")
    _check([b.locate(f.at)[0] for f in b.trace().frames] == [1, 2], "a record across the end of file 1")
    keep(2, 2)
    b.fill("r", 3, "rolling/fill/3")
    _check(b.cursor == 3 * file_num_bytes - 3, "3 bytes left at the end of file 2")
    b.reopen()
    b.append("r", [_pattern("rolling/3", 300)])
    _check(b.trace().padding == 3 and b.locate(b.frame(b.last).at) == (3, 0), "padding 3, then file 3")
    b.fill("r", 7, "rolling/fill/7")
    b.append("r", [_pattern("rolling/4", 500)])
    first, last = b.trace().frames
    _check(
        (first.frame_type, first.length, b.locate(first.at)) == (_FIRST, 0, (3, file_num_bytes - HEADER))
        and (last.frame_type, b.locate(last.at)) == (_LAST, (4, 0)),
        "a zero-length First frame at the end of file 3, the whole record in file 4",
    )
    keep(3, 4)
    b.append("r", [_large("rolling/5", 70000)])
    _check(_frame_types(b.trace()) == [_FIRST, _MIDDLE, _LAST], "First, Middle, Last")
    _check([b.locate(f.at) for f in b.trace().frames[1:]] == [(5, 0), (6, 0)], "the Middle frame fills file 5")
    b.append("r", [_pattern("rolling/6", 100)])
    b.reopen()
    b.truncate("r", b.model.queues["r"].next_position - 1)
    _check(len(b.trace().frames) == 1, "no GC pass: file 0 holds queue keep's record")
    b.append("r", [b"last"])
    _check(b.files == list(range(7)), "7 files, none collected")
    return b.case(
        "06_rolling_small_files",
        "Rolling over one-block files (crc32, file_num_bytes 32768, so every block end is a file end). Queue "
        "keep gets a 50-byte record in files 0, 1, 2 and 4; queue r gets the others. A record "
        "ends exactly at the end of file 0 (the next one starts file 1, no padding); a 45000-byte record goes "
        "from file 1 (First) to file 2 (Last); file 2 ends with 3 bytes left, a reopen stays there and the next "
        "append pads 3 bytes and starts file 3; file 3 ends 7 bytes short (a zero-length First frame, the record "
        "in file 4); a 70000-byte record is First in file 4, a Middle frame filling file 5, Last in file 6; a "
        "reopen; a truncate that empties queue r (no file is collected: file 0 holds the record of queue keep) "
        "and one more append. 7 files.",
        "crc32",
        [
            b.remove_file(
                "missing_file",
                "wal-00000000000000000002 is missing. point_in_time and strict replay files 0 and 1 only (the "
                "later files are detached; the 45000-byte record's First frame ends file 1 and is dropped as a "
                "partial record): point_in_time recovers that prefix, strict refuses the gap, skip reads files 0, "
                "1, 3 to 6 and recovers a state with a hole (queue keep without its record in file 2).",
                2,
            ),
            b.set_type(
                "bad_frame_type",
                "The type byte of the first frame of wal-...01 is 5: the reader abandons the rest of that block, "
                "which is all of file 1. point_in_time recovers the ops before it, strict refuses (valid records "
                "follow in later files), skip goes on at file 2 (an orphan Last frame, ignored, then the rest) and "
                "recovers a state with a hole (queue keep without its record in file 1).",
                b.frame(file_1_start),
                5,
            ),
        ],
    )


def _gc_small_files() -> VectorCase:
    file_num_bytes = BLOCK
    b = _Builder(file_num_bytes)
    for queue in ("c", "a", "B", "é"):
        b.create_queue(queue)
    b.append("c", [_large("gc/c0", 12000)])
    b.append("a", [_large("gc/a0", 12000)])
    b.append("B", [_large("gc/B0", 12000)])
    _check([b.locate(f.at)[0] for f in b.trace().frames] == [0, 1], "B's record crosses into file 1")
    b.append("c", [_large("gc/c1", 12000)])
    b.append("a", [_large("gc/a1", 30000)])
    _check([b.locate(f.at)[0] for f in b.trace().frames] == [1, 2], "a's second record crosses into file 2")
    b.truncate("c", 1)
    b.truncate("a", 0)
    _check(b.files == [0, 1, 2] and all(not t.frames[1:] for t in b.traces[-2:]), "file 0 still live: no GC")
    b.delete_queue("B")
    _check(b.files == [1, 2] and len(b.trace().frames) == 3, "delete_queue's GC: c, é, then file 0 deleted")
    b.create_queue("B")
    b.truncate("a", 1)
    _check(b.files == [2] and len(b.trace().frames) == 5, "GC: position records B, a, c, é; file 1 deleted")
    b.append("c", [_large("gc/c2", 25000)])
    _check([b.locate(f.at)[0] for f in b.trace().frames] == [2, 3], "c's record crosses into file 3")
    b.fill("c", 19 + 40, "gc/fill")
    b.truncate("c", b.model.queues["c"].next_position - 1)
    gc = b.trace()
    _check(
        [b.locate(f.at)[0] for f in gc.frames] == [3, 3, 3, 4, 4] and gc.frames[3].at == 4 * file_num_bytes,
        "the position records of c and é roll into file 4 (after 2 bytes of padding)",
    )
    _check(b.files == [3, 4], "file 3 was current when the pass began: kept")
    b.reopen()
    _check(b.files == [4] and len(b.trace().frames) == 4, "open's GC: position records again, file 3 deleted")
    open_gc = b.last
    b.append("a", [b"kept"])
    return b.case(
        "07_gc_small_files",
        "File GC over one-block files (crc32c). Queues created as c, a, B, é; records of 12000 to 30000 bytes "
        "cross file ends. Truncations that leave file 0 live write no position record. delete_queue(B) frees "
        "file 0: its GC pass writes position records for the empty queues c and é, then deletes file 0. After "
        "re-creating B, truncate(a, 1) frees file 1: position records for B, a, c, é (code-point order: "
        "uppercase first, é last), file 1 deleted, and file 2 now starts with the Last frame of a dead record. "
        "Then a truncate whose position records do not fit in the current file: the last two (after 2 bytes of "
        "padding) start file 4, and file 3, current when the pass began, is kept though dead; the next open's "
        "GC pass writes the four position records again and deletes it.",
        "crc32c",
        [
            b.zero(
                "torn_tail",
                "The last frame (append of 'kept' to queue a) is cut after its first 19 bytes: every mode "
                "recovers the state before that append.",
                b.frame(b.last),
                HEADER + 12,
            ),
            b.xor(
                "flipped_position_record",
                "One byte of the position record of é written by the reopen's GC pass is flipped. point_in_time "
                "stops there (the append after it is lost), strict refuses, skip drops that position record "
                "(harmless: the queue is known from earlier records) and keeps the append.",
                b.frame(open_gc, 3),
                HEADER + 2,
            ),
        ],
    )


def _default_file_size() -> VectorCase:
    b = _Builder(DEFAULT_FILE_NUM_BYTES)
    b.create_queue("events")
    b.append("events", [b"hello"])
    b.append("events", [b"one", b"two", b"three"])
    batch = b.last
    b.truncate("events", 0)
    b.append("events", [b""])
    b.persist(True)
    return b.case(
        "08_default_file_size",
        "The default file size (134217728 bytes, crc32c): one file whose image stores only the non-zero start of "
        "block 0. A queue, an append, a 3-record batch, a truncate, an empty payload, a persist with fsync.",
        "crc32c",
        [
            b.xor(
                "flipped_checksum",
                "The first checksum byte of the batch's frame is flipped: point_in_time stops there, strict "
                "refuses, skip drops the batch.",
                b.frame(batch),
                0,
            )
        ],
    )


def _cases() -> list[VectorCase]:
    record_types = (
        'Every record type: RecordPosition (create_queue, including the queue named ""), AppendRecords (one '
        "payload, an empty payload, a batch of 3 payloads of 1, 0 and 300 bytes), Truncate, DeleteQueue; an "
        "empty batch (nothing written); persist without and with fsync; a reopen; a truncate that empties "
        'queue "" and one more append. One 4-block file'
    )
    return [
        _record_types("01_record_types", "crc32c", record_types + ", crc32c.", damaged=True),
        _record_types(
            "02_record_types_crc32",
            "crc32",
            record_types + ", crc32: the same operations as 01_record_types, only the checksums differ.",
            damaged=False,
        ),
        _positions_and_errors(),
        _block_padding(),
        _spanning_frames(),
        _rolling_small_files(),
        _gc_small_files(),
        _default_file_size(),
    ]


VECTOR_CASES: Final[list[VectorCase]] = _cases()


# -- generation ------------------------------------------------------------------


def _compact(value: object) -> bytes:
    return (json.dumps(value, sort_keys=True, separators=(",", ":")) + "\n").encode("ascii")


def _pretty(value: object) -> bytes:
    return (json.dumps(value, sort_keys=True, indent=1) + "\n").encode("ascii")


def _verify_results(case: VectorCase, results: list[dict[str, Any]]) -> None:
    _check(len(results) == len(case.operations), f"{case.name}: {len(results)} results for {len(case.operations)} ops")
    model = Model()
    for index, (operation, result) in enumerate(zip(case.operations, results, strict=True)):
        where = f"{case.name} op {index}"
        _check(result.get("i") == index, f"{where}: {result}")
        expected = model.apply(operation_to_json(operation))
        _check({k: v for k, v in result.items() if k not in _BYTE_LEVEL} == expected, f"{where}: {result} {expected}")
        _check(
            result.get("wal_bytes_written") == case.expected_bytes[index],
            f"{where}: wrote {result.get('wal_bytes_written')} bytes, predicted {case.expected_bytes[index]}",
        )


def _recovered(directory: str, mode: str) -> dict[str, Any]:
    """The canonical state value a recovery mode gives, or the error it raises."""
    try:
        return inspect_log(directory, recovery=mode).state.to_json_value()
    except CorruptionError as exc:
        return {"error": exc.kind, "file": exc.file, "offset": exc.offset}


def _image_changes(before: dict[str, Any], after: dict[str, Any]) -> bool | dict[str, list[str]]:
    """False when two images are equal, else the WAL files created, deleted, changed."""
    old = {entry["name"]: entry for entry in before["files"]}
    new = {entry["name"]: entry for entry in after["files"]}
    if old == new:
        return False
    return {
        "created": sorted(new.keys() - old.keys()),
        "deleted": sorted(old.keys() - new.keys()),
        "changed": sorted(name for name in old.keys() & new.keys() if old[name] != new[name]),
    }


def _reopen_check(image: dict[str, Any], checksum: Profile, state: str, directory: str) -> dict[str, Any]:
    """Open a copy of the image twice, as the recorded vectors' ``reopen_check``."""
    unpack_wal_image(image, directory)
    check: dict[str, Any] = {}
    for state_key, files_key in (
        ("state_after_reopen_equals_state_json", "reopen_changes_files"),
        ("second_reopen_state_equal", "second_reopen_changes_files"),
    ):
        before = pack_wal_image(directory)
        with MultiRecordLog.open(directory, checksum=checksum) as log:
            check[state_key] = log.state().to_canonical_json() == state
        check[files_key] = _image_changes(before, pack_wal_image(directory))
    return check


def _apply_damage(directory: str, damage: Damage) -> None:
    path = os.path.join(directory, wal_file_name(damage.file_number))
    if damage.kind == "remove_file":
        os.remove(path)
        return
    with open(path, "r+b") as handle:
        handle.seek(damage.offset)
        data = handle.read(damage.length)
        _check(len(data) == damage.length, f"{damage.name}: past the end of the file")
        if damage.kind == "xor":
            changed = bytes(byte ^ damage.value for byte in data)
        elif damage.kind == "zero":
            changed = bytes(damage.length)
        else:
            changed = bytes([damage.value]) * damage.length
        _check(changed != data, f"{damage.name}: changes no byte")
        handle.seek(damage.offset)
        handle.write(changed)


def build_vector(case: VectorCase) -> dict[str, bytes]:
    """Run a case against the reference, check it wrote what was predicted, and
    return its vector files (path relative to the case folder -> bytes)."""
    with tempfile.TemporaryDirectory(prefix="mrecordlog-vector-") as tmp:
        log_dir = os.path.join(tmp, "log")
        results = list(
            apply_operations(log_dir, case.operations, checksum=case.checksum, file_num_bytes=case.file_num_bytes)
        )
        _verify_results(case, results)
        image = pack_wal_image(log_dir)
        inspection = inspect_log(log_dir)
        state = inspection.state.to_canonical_json()
        report = inspection.report
        wal_files = [entry["name"] for entry in image["files"]]
        _check(wal_files == [wal_file_name(n) for n in case.expected_wal_files], f"{case.name}: files {wal_files}")
        _check(report.clean and report.checksum_profile in (None, case.checksum), f"{case.name}: {report.describe()}")
        resume_file, resume_offset = case.expected_resume
        _check(
            (report.resume_file, report.resume_offset) == (wal_file_name(resume_file), resume_offset),
            f"{case.name}: resumes at {report.resume_file} {report.resume_offset}, predicted {case.expected_resume}",
        )
        for mode in MODES:
            _check(_recovered(log_dir, mode) == inspection.state.to_json_value(), f"{case.name}: {mode} differs")
        reopen_check = _reopen_check(image, case.checksum, state, os.path.join(tmp, "reopen"))
        files: dict[str, bytes] = {
            "ops.jsonl": b"".join(_compact(operation_to_json(op)) for op in case.operations),
            "results.jsonl": "".join(result_line(result) + "\n" for result in results).encode("ascii"),
            "state.json": state.encode("ascii"),
            "wal.image.json": _compact(image),
        }
        for damage in case.damages:
            damaged_dir = os.path.join(tmp, "damaged", damage.name)
            unpack_wal_image(image, damaged_dir)
            _apply_damage(damaged_dir, damage)
            expected: dict[str, Any] = {"description": damage.description}
            for mode in MODES:
                expected[mode] = _recovered(damaged_dir, mode)
            _check(
                expected["point_in_time"] != inspection.state.to_json_value(),
                f"{case.name}/{damage.name}: the damage changes nothing point_in_time recovers",
            )
            files[f"damaged/{damage.name}.image.json"] = _compact(pack_wal_image(damaged_dir))
            files[f"damaged/{damage.name}.expected.json"] = _compact(expected)
    files["meta.json"] = _pretty(
        {
            "format": FORMAT,
            "generator": GENERATOR,
            "description": case.description,
            "checksum": case.checksum,
            "file_num_bytes": case.file_num_bytes,
            "policy": "default",
            "wal_files": wal_files,
            "reopen_check": reopen_check,
            "damaged": [damage.name for damage in case.damages],
        }
    )
    return files


def _index(cases: Sequence[VectorCase]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "generator": GENERATOR,
        "vectors": [
            {
                "name": case.name,
                "description": case.description,
                "checksum": case.checksum,
                "file_num_bytes": case.file_num_bytes,
                "operations": len(case.operations),
                "damaged": [damage.name for damage in case.damages],
            }
            for case in cases
        ],
    }


_README: Final = """\
# Golden vectors

Generated by `src/mrecordlog/oracle/vectors.py` from the reference writer: do not edit these files,
change the generator and regenerate them:

```sh
python -m mrecordlog.oracle.vectors spec/vectors
```

`tests/test_golden_vectors.py` checks that the files here equal what the generator produces today,
that the reference reproduces every vector (results, bytes, state), that the model
(`src/mrecordlog/model.py`) agrees with every vector, and that every damaged image recovers as
stated. The generator predicts every operation's `wal_bytes_written`, the files left and where the
writer resumes from the format rules alone, and refuses to write a vector the reference does not
match, so each vector covers what its description says.

## Layout

```text
spec/vectors/
  README.md            this file (generated too)
  index.json           every vector: name, description, checksum, file_num_bytes, damaged images
  NN_name/
    meta.json
    ops.jsonl
    results.jsonl
    state.json
    wal.image.json
    damaged/           in some vectors
      <damage>.image.json
      <damage>.expected.json
```

`ops.jsonl`, `results.jsonl`, `state.json` and `wal.image.json` have the formats of the recorded
mrecordlog 0.5 vectors, described in `tests/vectors/mrecordlog-0.5/README.md`. Apply `ops.jsonl` to
an empty directory with the vector's `checksum` profile and `file_num_bytes` (persist policy
`Always(Flush)`) to get `results.jsonl`, then `wal.image.json` (the files right after the last op)
and `state.json`. Differences from the recorded vectors:

- `meta.json` has `checksum` (`crc32` or `crc32c`: every frame's profile; mrecordlog 0.5 reads only
  `crc32`), `file_num_bytes`, `policy` (`default`), `description`, `wal_files`, `damaged` (the
  names in `damaged/`), `reopen_check` and `generator` / `format` instead of `peer`.
  `reopen_check` opens a copy of the image twice: `state_after_reopen_equals_state_json`,
  `second_reopen_state_equal`, and `reopen_changes_files` / `second_reopen_changes_files`: `false`,
  or the WAL files the open `created`, `deleted` or `changed`.
- `message` in `results.jsonl` is this implementation's wording, not part of the contract.
- A GC pass writes its position records in queue-name order (`spec/SEMANTICS.md`, deviation 3), so
  a vector whose GC pass records several empty queues (`07_gc_small_files`) is not what
  mrecordlog 0.5 writes byte for byte; its state and results are the same.

## Damaged images

`damaged/<damage>.image.json` is the vector's `wal.image.json` after one damage (a flipped byte, a
zeroed range, a torn frame, a bad frame type, a missing file). `damaged/<damage>.expected.json` is

```text
{"description": ..., "point_in_time": R, "strict": R, "skip": R}
```

where each `R` is what inspecting (or opening) the damaged image in that recovery mode
(`spec/DURABILITY.md`, section 4) recovers: the canonical state as a JSON value (the value of
`state.json`), or `{"error": "Corruption", "file": ..., "offset": ...}` where the mode refuses to
open, naming the file and offset of the damage. A writable open would also quarantine what it
discards (`spec/DURABILITY.md`, section 5); the expected states do not depend on that.

## Vectors

"""


def _readme(cases: Sequence[VectorCase]) -> bytes:
    lines = ["| vector | checksum | file size | ops | damaged |", "|---|---|---|---|---|"]
    for case in cases:
        damaged = ", ".join(f"`{damage.name}`" for damage in case.damages) or "-"
        lines.append(
            f"| `{case.name}` | {case.checksum} | {case.file_num_bytes} | {len(case.operations)} | {damaged} |"
        )
    lines.append("")
    lines.append("What each one covers (`meta.json` -> `description`):")
    lines.append("")
    for case in cases:
        lines.append(f"- `{case.name}`: {case.description}")
    return (_README + "\n".join(lines) + "\n").encode("utf-8")


def _remove_previous(destination: str) -> None:
    """Remove the vector folders a previous run of this generator wrote there."""
    for entry in sorted(os.listdir(destination)):
        meta = os.path.join(destination, entry, "meta.json")
        if os.path.isfile(meta):
            with open(meta, encoding="utf-8") as handle:
                generator = json.load(handle).get("generator")
            if generator == GENERATOR:
                shutil.rmtree(os.path.join(destination, entry))


def generate(destination: str, cases: Sequence[VectorCase] | None = None) -> list[str]:
    """Write the vectors of ``cases`` (default: every case) into ``destination``,
    replacing the folders an earlier run wrote; the paths written, relative to
    ``destination``, sorted."""
    chosen = VECTOR_CASES if cases is None else cases
    outputs: dict[str, bytes] = {"index.json": _pretty(_index(chosen)), "README.md": _readme(chosen)}
    for case in chosen:
        for path, data in build_vector(case).items():
            outputs[f"{case.name}/{path}"] = data
    os.makedirs(destination, exist_ok=True)
    _remove_previous(destination)
    for path, data in outputs.items():
        full = os.path.join(destination, *path.split("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as handle:
            handle.write(data)
    return sorted(outputs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mrecordlog.oracle.vectors",
        description="Regenerate the golden vectors from the reference writer.",
    )
    parser.add_argument(
        "destination", nargs="?", default=DEFAULT_DESTINATION, help=f"folder (default: {DEFAULT_DESTINATION})"
    )
    args = parser.parse_args(argv)
    written = generate(args.destination)
    total = sum(os.path.getsize(os.path.join(args.destination, *path.split("/"))) for path in written)
    print(f"{len(written)} files, {total} bytes, in {args.destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
