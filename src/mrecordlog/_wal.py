"""Rolling WAL files over a ``Storage``: file naming, the reader, the writer.

The reader walks the files' blocks in order through the pure frame decoder and
yields raw records and damage, remembering where a writer must resume. The
writer appends framed bytes, rolls to the next file at a file's end, buffers
until flushed, and tracks what an fsync barrier has to sync. Neither knows
about queues.
"""

from __future__ import annotations

import os

# A module global for mypyc (the compiled build, setup.py): it looks the type
# of a dataclass field up in the module's globals, not in builtins.
from builtins import memoryview
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from mrecordlog._codec import BLOCK_NUM_BYTES, FRAME_HEADER_NUM_BYTES, MAX_U64, ChecksumProfile, FrameType
from mrecordlog._framing import (
    AssembledRecord,
    DamagedFrame,
    EndOfLog,
    Frame,
    FrameDecoder,
    NeedBlock,
    OrphanFrame,
    RecordAssembler,
)
from mrecordlog._storage import EntryKind, Storage, StorageFile, sync_file
from mrecordlog.errors import FileNumbersExhausted, UnexpectedEntry

WAL_FILE_PREFIX: Final = "wal-"
DEFAULT_FILE_NUM_BYTES: Final = 128 * 1024 * 1024
# Bytes kept in user space before they are handed to the OS; a flush (every
# operation under the default policy) hands them over earlier.
WRITE_BUFFER_NUM_BYTES: Final = 64 * 1024
_FULL: Final = int(FrameType.FULL)
_RECORD_STARTS: Final = (_FULL, int(FrameType.FIRST))


def wal_file_name(file_number: int) -> str:
    return f"{WAL_FILE_PREFIX}{file_number:020d}"


def parse_wal_file_name(name: str) -> int | None:
    """The file number of ``wal-`` + 20 ASCII digits (at most 2^64 - 1), else None."""
    if len(name) != 24 or not name.startswith(WAL_FILE_PREFIX):
        return None
    digits = name[4:]
    if not (digits.isascii() and digits.isdigit()):
        return None
    number = int(digits)
    return number if number <= MAX_U64 else None


def wal_files_of(directory: str, entries: dict[str, EntryKind]) -> list[int]:
    """Sorted numbers of the WAL files among a directory's entries; entries
    with other names are ignored. An entry under a WAL name that is not a
    regular file (a directory, a symlink, a fifo) raises ``UnexpectedEntry``:
    the writer could never create that file, and nothing can tell whether a
    symlink's target belongs to this log."""
    numbers = []
    for name, kind in entries.items():
        number = parse_wal_file_name(name)
        if number is None:
            continue
        if kind != "file":
            raise UnexpectedEntry(os.path.join(directory, name), kind)
        numbers.append(number)
    return sorted(numbers)


def list_wal_files(storage: Storage, directory: str) -> list[int]:
    """Sorted numbers of the WAL files in ``directory`` (see ``wal_files_of``)."""
    return wal_files_of(directory, storage.list_entries(directory))


def infer_file_num_bytes(sizes: dict[int, int]) -> int | None:
    """The size the WAL files were created with, from their sizes (file number
    -> bytes): the most common positive multiple of the block size, the
    largest on a tie; None if no file has such a size.

    Every file is created at that size; a crash can leave the newest one
    shorter (its preallocation lost, a later write kept), and only a hostile
    hand makes one longer, so the most common size wins over any one file.
    """
    counts: dict[int, int] = {}
    for size in sizes.values():
        if size > 0 and size % BLOCK_NUM_BYTES == 0:
            counts[size] = counts.get(size, 0) + 1
    if not counts:
        return None
    return max(counts, key=lambda size: (counts[size], size))


@dataclass(frozen=True, slots=True)
class Location:
    """A byte in the log: file number and offset in that file."""

    file_number: int
    offset: int

    def describe(self) -> str:
        return f"{wal_file_name(self.file_number)} at offset {self.offset}"


@dataclass(slots=True)  # not frozen: one per record read (see ``_framing.Frame``)
class RawRecord:
    data: bytes | memoryview  # a view of the block when the record is one Full frame
    start: Location  # header of the record's first frame
    # The file this record keeps alive for GC: the file the reader was in when
    # it began looking for this record. mrecordlog 0.5's writer attributes a
    # record the same way (its current file before the write), and the bytes
    # of a position-record GC pass depend on this choice.
    attributed_file: int


@dataclass(frozen=True, slots=True)
class ReadDamage:
    """Bytes the reader could not use: a damaged frame, a dropped partial
    record, an orphan Middle/Last frame, or an end of the log that later
    files follow (``end_before_later_files``).

    ``detected_at`` is where the reader found the problem: for a dropped
    partial record, the place its next frame should have been (a damaged
    frame, a new record, the end), not its first frame; elsewhere the
    location itself. Whether anything valid follows is judged from there.
    """

    kind: str
    location: Location
    num_bytes: int
    detected_at: Location | None = None

    @property
    def found_at(self) -> Location:
        return self.detected_at if self.detected_at is not None else self.location


class WalReader:
    """Reads records from WAL files as mrecordlog 0.5 does.

    Every file is read as exactly ``file_num_bytes`` long: a shorter file (a
    lost preallocation, or damage) reads as if zero-filled, and bytes past
    that length are not part of the log. An all-zero header ends the log; if
    later files follow, that is damage (``end_before_later_files``), after
    which ``across_ends`` (the ``skip`` mode) goes on with the next file.

    Iterate it once. Afterwards ``resume`` is where a writer continues,
    ``reached_end_marker`` tells whether an all-zero header ended the log, and
    ``profile`` / ``profile_detected_at`` tell the checksum profile found.
    """

    def __init__(
        self,
        storage: Storage,
        directory: str,
        file_numbers: list[int],
        file_num_bytes: int,
        profile: ChecksumProfile | None = None,
        *,
        across_ends: bool = False,
    ) -> None:
        self._storage = storage
        self._directory = directory
        self._file_numbers = file_numbers
        self._file_num_bytes = file_num_bytes
        self._across_ends = across_ends
        self._decoder = FrameDecoder(profile)
        self._file_index = -1
        self._file: StorageFile | None = None
        self._block_index = 0
        self.resume: Location | None = None
        self.reached_end_marker = False
        self.profile_detected_at: Location | None = None

    @property
    def profile(self) -> ChecksumProfile | None:
        return self._decoder.profile

    @property
    def current_file(self) -> int:
        return self._file_numbers[self._file_index]

    def _path(self, file_number: int) -> str:
        return os.path.join(self._directory, wal_file_name(file_number))

    def _read_block(self, block_index: int) -> bytes | None:
        """Block ``block_index`` of the current file, zero-filled where the
        file is short; None past the file's length."""
        assert self._file is not None
        start = block_index * BLOCK_NUM_BYTES
        if start >= self._file_num_bytes:
            return None
        data = self._file.read_at(start, BLOCK_NUM_BYTES)
        if len(data) < BLOCK_NUM_BYTES:
            data += bytes(BLOCK_NUM_BYTES - len(data))
        return data

    def _next_block(self) -> bytes | None:
        """The next block of the current file, else the first block of the
        next file, else None (the reader stays where it is)."""
        if self._file is not None:
            block = self._read_block(self._block_index + 1)
            if block is not None:
                self._block_index += 1
                return block
        return self._next_file()

    def _next_file(self) -> bytes | None:
        index = self._file_index + 1
        if index >= len(self._file_numbers):
            return None
        handle = self._storage.open_file(self._path(self._file_numbers[index]), writable=False)
        if self._file is not None:
            self._file.close()
        self._file = handle
        self._file_index = index
        self._block_index = 0
        return self._read_block(0)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __iter__(self) -> Iterator[RawRecord | ReadDamage]:
        try:
            yield from self._read()
        finally:
            self.close()

    def _here(self, offset_in_block: int) -> Location:
        return Location(self._file_numbers[self._file_index], self._block_index * BLOCK_NUM_BYTES + offset_in_block)

    def _read(self) -> Iterator[RawRecord | ReadDamage]:
        if not self._file_numbers:
            return
        decoder = self._decoder
        assembler = RecordAssembler()
        first_block = self._next_file()
        assert first_block is not None  # every file has at least one block
        decoder.feed_block(first_block)
        call_start_file = self.current_file
        record_start: Location | None = None
        seen_record_start = False
        while True:
            event = decoder.next_event()
            if isinstance(event, Frame):
                if event.frame_type == _FULL and record_start is None:
                    # The common case, a whole record in one frame while no
                    # record is open (``record_start`` is None exactly then):
                    # what the assembler would make of it, without it.
                    seen_record_start = True
                    if decoder.detected_at is not None and self.profile_detected_at is None:
                        self.profile_detected_at = self._here(decoder.detected_at)
                    here = self._here(event.offset)
                    yield RawRecord(event.payload, here, call_start_file)
                    call_start_file = here.file_number  # the current file
                    continue
                if event.frame_type in _RECORD_STARTS:
                    seen_record_start = True
                    started_at = self._here(event.offset)
                    dropped, done = assembler.feed_frame(event.frame_type, event.payload)
                    if dropped is not None and record_start is not None:
                        yield ReadDamage("partial_record_dropped", record_start, dropped.num_bytes, started_at)
                    record_start = started_at
                else:
                    dropped, done = assembler.feed_frame(event.frame_type, event.payload)
                if decoder.detected_at is not None and self.profile_detected_at is None:
                    self.profile_detected_at = self._here(decoder.detected_at)
                if isinstance(done, AssembledRecord):
                    assert record_start is not None
                    yield RawRecord(done.data, record_start, call_start_file)
                    record_start = None
                    call_start_file = self.current_file
                elif isinstance(done, OrphanFrame):
                    # Before the first record start, these are the tail of a
                    # record whose head was in a file that GC deleted.
                    kind = "orphan_frame" if seen_record_start else "collected_record_tail"
                    yield ReadDamage(kind, self._here(event.offset), done.num_bytes + FRAME_HEADER_NUM_BYTES)
            elif isinstance(event, DamagedFrame):
                here = self._here(event.offset)
                partial = assembler.on_damage()
                if partial is not None and record_start is not None:
                    yield ReadDamage("partial_record_dropped", record_start, partial.num_bytes, here)
                record_start = None
                yield ReadDamage(event.kind.value, here, event.skipped_num_bytes)
                call_start_file = self.current_file
            elif isinstance(event, EndOfLog):
                here = self._here(event.offset)
                partial = assembler.on_damage()
                if partial is not None and record_start is not None:
                    yield ReadDamage("partial_record_dropped", record_start, partial.num_bytes, here)
                record_start = None
                if self._file_index + 1 < len(self._file_numbers):
                    # The writer fills a file before it creates the next one:
                    # an end with files after it is damage (a file cut short,
                    # emptied, or zeroed), never a torn tail.
                    yield ReadDamage("end_before_later_files", here, 0)
                    if self._across_ends:
                        block = self._next_file()
                        assert block is not None
                        decoder.feed_block(block)
                        call_start_file = self.current_file
                        continue
                self.reached_end_marker = True
                self.resume = here
                return
            else:
                assert isinstance(event, NeedBlock)
                block = self._next_block()
                if block is None:
                    # Never inside a block the decoder abandoned: its damaged
                    # header would abandon whatever a writer put after it.
                    self.resume = self._here(decoder.resume_offset)
                    partial = assembler.on_damage()
                    if partial is not None and record_start is not None:
                        yield ReadDamage("partial_record_dropped", record_start, partial.num_bytes, self.resume)
                    return
                decoder.feed_block(block)


class WalWriter:
    """Appends bytes to the rolling WAL files.

    ``offset`` counts bytes appended to the current file, buffered or not. The
    writer rolls lazily: the first byte that does not fit in the current file
    moves it to the next one (an existing later file, else a new one), so a
    record that starts exactly at a file's end is still written while the
    writer's current file is the earlier one.
    """

    def __init__(
        self,
        storage: Storage,
        directory: str,
        file_numbers: list[int],
        file_num_bytes: int,
        current_file: int,
        offset: int,
    ) -> None:
        self._storage = storage
        self._directory = directory
        self.file_numbers = file_numbers
        self.file_num_bytes = file_num_bytes
        self.current_file = current_file
        self.offset = offset
        self._handle: StorageFile | None = storage.open_file(self._path(current_file), writable=True)
        self._buffer = bytearray()
        self._buffer_offset = offset  # file offset of the buffer's first byte
        self._unsynced_files: set[int] = set()
        # (file, offset) before which every byte is fsynced (as far as this
        # writer knows: what it found at open counts as persisted).
        self.synced_upto = (current_file, offset)

    def _path(self, file_number: int) -> str:
        return os.path.join(self._directory, wal_file_name(file_number))

    @property
    def block_offset(self) -> int:
        return self.offset % BLOCK_NUM_BYTES

    def append(self, data: bytes) -> None:
        """Append one record's framed bytes, rolling to the next file as needed.

        Raises ``FileNumbersExhausted``, having written nothing, if the bytes
        would need a file after ``wal-18446744073709551615``."""
        size = len(data)
        if size <= self.file_num_bytes - self.offset:
            # The common case: no roll. What reaches the storage is the same
            # as through the loop below, without slicing the bytes.
            buffer = self._buffer
            self.offset += size
            if buffer or size < WRITE_BUFFER_NUM_BYTES:
                buffer += data
                if len(buffer) >= WRITE_BUFFER_NUM_BYTES:
                    self.flush()
            else:
                try:
                    self._write_out(data)  # large and alone: no copy into the buffer
                except BaseException:
                    buffer += data  # as if buffered, then the flush failed
                    raise
            return
        if not self.fits(size):
            raise FileNumbersExhausted(wal_file_name(self.current_file))
        view = memoryview(data)
        while view:
            room = self.file_num_bytes - self.offset
            if room <= 0:
                self._roll()
                room = self.file_num_bytes
            chunk = view[:room]
            self._buffer += chunk
            self.offset += len(chunk)
            view = view[len(chunk) :]
            if len(self._buffer) >= WRITE_BUFFER_NUM_BYTES:
                self.flush()

    def fits(self, num_bytes: int) -> bool:
        """Whether ``num_bytes`` more can be appended without needing a file
        after the last name the format has."""
        overflow = self.offset + num_bytes - self.file_num_bytes
        rolls = -(-overflow // self.file_num_bytes) if overflow > 0 else 0
        return self.current_file + rolls <= MAX_U64

    def flush(self) -> None:
        """Hand buffered bytes to the OS (not durable until ``sync``)."""
        if not self._buffer:
            return
        self._write_out(self._buffer)
        self._buffer.clear()

    def _write_out(self, data: bytes | bytearray) -> None:
        """Hand ``data``, which follows the buffered bytes' place, to the OS
        (the buffer being empty or ``data`` itself)."""
        assert self._handle is not None
        self._handle.write_at(self._buffer_offset, data)
        self._unsynced_files.add(self.current_file)
        self._buffer_offset += len(data)

    def sync(self) -> None:
        """Flush, then fsync every file written since the last sync. (Creations
        and removals of files are made durable when they happen.)"""
        self.flush()
        for file_number in sorted(self._unsynced_files):
            if file_number == self.current_file:
                assert self._handle is not None
                self._handle.sync()
            else:
                sync_file(self._storage, self._path(file_number))
        self._unsynced_files.clear()
        self.synced_upto = (self.current_file, self.offset)

    def unpersisted(self, upto: tuple[int, int], *, fsync: bool) -> str | None:
        """Which bytes before ``upto`` (a file number and offset) a flush
        (and, with ``fsync``, a sync) would still have to persist, named by
        file and offset; None if none."""
        flushed_upto = (self.current_file, self._buffer_offset)
        if flushed_upto < upto:  # a flush writes the whole buffer or nothing: it is in one file
            return f"bytes {self._buffer_offset}..{upto[1]} of {wal_file_name(self.current_file)} (never written)"
        if fsync and self.synced_upto < upto:
            file_number, offset = self.synced_upto
            return f"writes to {wal_file_name(file_number)} from offset {offset} on (never fsynced)"
        return None

    def _roll(self) -> None:
        self.flush()
        assert self._handle is not None
        if self.current_file in self._unsynced_files:
            # mrecordlog 0.5 fsyncs a finished file when it moves on.
            self._handle.sync()
            self._unsynced_files.discard(self.current_file)
        if not self._unsynced_files:
            self.synced_upto = (self.current_file, self.offset)
        self._handle.close()
        self._handle = None
        # Recovery removed every file after the resume point, so the next file
        # is always new (creating it fails if something put a file there).
        next_file = self.current_file + 1
        self._handle = self._storage.create_file(self._path(next_file), self.file_num_bytes)
        self.file_numbers.append(next_file)
        self._unsynced_files.add(next_file)
        # The new file's entry is made durable before any data goes into it: a
        # later file must never survive a crash that loses an earlier one.
        self._storage.sync_dir(self._directory)
        self.current_file = next_file
        self.offset = 0
        self._buffer_offset = 0

    def collectable_files(self, is_live: Callable[[int], bool], keep_from: int | None = None) -> list[int]:
        """The leading files that are neither live nor current (nor numbered
        ``keep_from`` or more): the files GC may delete. Never the last file."""
        files = self.file_numbers
        count = 0
        while (
            count < len(files) - 1
            and files[count] != self.current_file
            and not is_live(files[count])
            and (keep_from is None or files[count] < keep_from)
        ):
            count += 1
        return files[:count]

    def remove_files(self, file_numbers: list[int], remove: Callable[[int], None]) -> None:
        """Take leading files (as chosen by ``collectable_files``) out of the
        directory with ``remove`` (a deletion, or a move to the quarantine),
        oldest first, each made durable before the next: a crash must never
        bring back an older file while a newer one stays gone."""
        for file_number in file_numbers:
            assert file_number == self.file_numbers[0]
            assert file_number != self.current_file
            remove(file_number)
            self.file_numbers.pop(0)
            self._unsynced_files.discard(file_number)
            self._storage.sync_dir(self._directory)

    def close(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            handle.close()
