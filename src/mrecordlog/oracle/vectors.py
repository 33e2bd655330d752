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

from mrecordlog._recovery import RecoveryMode
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

    def fill(self, queue: str, left: int, tag: str) -> dict[str, Any]:
        """Append one payload sized so that ``left`` bytes remain in the current
        block afterwards (0: the record ends exactly at the block's end)."""
        size = self.block_left() - left - HEADER - _record_num_bytes(queue, [b""])
        _check(self.block_left() >= HEADER and size >= 0, f"no room to leave {left} bytes")
        result = self.append(queue, [_large(tag, size, tail=False) if size >= 256 else _pattern(tag, size)])
        _check(self.cursor % BLOCK == (BLOCK - left) % BLOCK, "fill missed")
        _check(len(self.trace().frames) == 1 and self.trace().padding == 0, "fill is not one frame")
        return result

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
