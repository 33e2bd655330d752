"""Pure frame logic: records to frames over 32 KiB blocks, and back.

Writing: ``frame_record`` turns one encoded record into the exact bytes the
writer appends at a given offset in a block (zero padding when fewer than 7
bytes remain, then Full or First/Middle.../Last frames, never crossing a block).

Reading: ``FrameDecoder`` is a sans-IO state machine in the manner of h11: the
caller feeds it blocks and pulls events (a frame, a damaged frame, the end of
the log, or a request for the next block). ``RecordAssembler`` turns frames
into records. Neither reads a file; ``_wal`` does that.
"""

from __future__ import annotations

import enum
import re

# A module global for mypyc (the compiled build, setup.py): it looks the type
# of a dataclass field up in the module's globals, not in builtins.
from builtins import memoryview
from dataclasses import dataclass
from typing import Final

from mrecordlog._codec import (
    BLOCK_NUM_BYTES,
    FRAME_HEADER_NUM_BYTES,
    FRAME_HEADER_STRUCT,
    ChecksumProfile,
    FrameType,
    frame_checksum,
)

_ZERO_HEADER: Final = bytes(FRAME_HEADER_NUM_BYTES)
_pack_frame_header: Final = FRAME_HEADER_STRUCT.pack
_unpack_frame_header: Final = FRAME_HEADER_STRUCT.unpack_from
_FRAME_TYPE_BYTE: Final = re.compile(rb"[\x01-\x04]")
_MAX_FRAME_PAYLOAD: Final = BLOCK_NUM_BYTES - FRAME_HEADER_NUM_BYTES
_FULL: Final = int(FrameType.FULL)
_FIRST: Final = int(FrameType.FIRST)
_MIDDLE: Final = int(FrameType.MIDDLE)
_LAST: Final = int(FrameType.LAST)


def frame_record(record: bytes, block_offset: int, profile: ChecksumProfile) -> bytes:
    """The bytes that write ``record`` starting ``block_offset`` bytes into a block.

    ``block_offset`` is in ``[0, BLOCK_NUM_BYTES)``. The result's length is what
    mrecordlog 0.5 counts as the bytes written: padding, headers and payload.
    With exactly 7 bytes left in the block the first frame is a zero-length
    First frame (the header fills the block).
    """
    total = len(record)
    if 0 <= block_offset <= BLOCK_NUM_BYTES - FRAME_HEADER_NUM_BYTES - total:
        # The common case: one Full frame, no padding.
        return _pack_frame_header(frame_checksum(profile, _FULL, record), total, _FULL) + record
    if not 0 <= block_offset < BLOCK_NUM_BYTES:
        raise ValueError(f"block offset {block_offset} outside [0, {BLOCK_NUM_BYTES})")
    view = memoryview(record)
    parts: list[bytes | memoryview] = []
    consumed = 0
    offset = block_offset
    is_first = True
    while True:
        remaining = BLOCK_NUM_BYTES - offset
        if remaining < FRAME_HEADER_NUM_BYTES:
            parts.append(bytes(remaining))
            offset = 0
            remaining = BLOCK_NUM_BYTES
        size = min(remaining - FRAME_HEADER_NUM_BYTES, total - consumed)
        chunk = view[consumed : consumed + size]
        consumed += size
        is_last = consumed == total
        if is_first:
            frame_type = _FULL if is_last else _FIRST
        else:
            frame_type = _LAST if is_last else _MIDDLE
        checksum = frame_checksum(profile, frame_type, chunk)
        parts.append(
            bytes(
                (
                    checksum & 0xFF,
                    (checksum >> 8) & 0xFF,
                    (checksum >> 16) & 0xFF,
                    checksum >> 24,
                    size & 0xFF,
                    size >> 8,
                    frame_type,
                )
            )
        )
        parts.append(chunk)
        offset = (offset + FRAME_HEADER_NUM_BYTES + size) % BLOCK_NUM_BYTES
        is_first = False
        if is_last:
            return b"".join(parts)


def max_framed_num_bytes(record_num_bytes: int) -> int:
    """At most how many bytes ``frame_record`` writes for a record of that
    size, wherever it starts: padding (under 7 bytes) and a 7-byte header for
    each block the record touches."""
    blocks = record_num_bytes // _MAX_FRAME_PAYLOAD + 2
    return FRAME_HEADER_NUM_BYTES - 1 + record_num_bytes + FRAME_HEADER_NUM_BYTES * blocks


def find_valid_frame(block: bytes, profile: ChecksumProfile, *, scan_from: int | None = None) -> int | None:
    """The offset of a checksum-valid frame in a block, or None.

    With ``scan_from`` every offset from there is tried (frame boundaries are
    unknown after damage); otherwise the block's frame chain is followed from
    offset 0 (every block that holds frames starts with one), stepping over
    frames whose checksum fails, until a header that cannot be a frame.
    """

    def valid_at(offset: int) -> tuple[bool, int]:
        frame_type = block[offset + 6]
        length = block[offset + 4] | (block[offset + 5] << 8)
        end = offset + FRAME_HEADER_NUM_BYTES + length
        if not _FULL <= frame_type <= _LAST or end > BLOCK_NUM_BYTES:
            return False, -1
        checksum = int.from_bytes(block[offset : offset + 4], "little")
        payload = memoryview(block)[offset + FRAME_HEADER_NUM_BYTES : end]
        return frame_checksum(profile, frame_type, payload) == checksum, end

    if scan_from is not None:
        # Only an offset whose type byte is 1-4 can hold a frame: find those
        # bytes in C rather than trying every offset in Python.
        for match in _FRAME_TYPE_BYTE.finditer(block, scan_from + FRAME_HEADER_NUM_BYTES - 1):
            offset = match.start() - (FRAME_HEADER_NUM_BYTES - 1)
            if valid_at(offset)[0]:
                return offset
        return None
    offset = 0
    while BLOCK_NUM_BYTES - offset >= FRAME_HEADER_NUM_BYTES:
        if block[offset : offset + FRAME_HEADER_NUM_BYTES] == _ZERO_HEADER:
            return None
        valid, end = valid_at(offset)
        if valid:
            return offset
        if end < 0:
            return None
        offset = end
    return None


class DamageKind(enum.Enum):
    """How a frame can be damaged, as the reader sees it."""

    INVALID_TYPE = "invalid_frame_type"  # type byte not 1..4: rest of block abandoned
    LENGTH_PAST_BLOCK = "length_past_block"  # declared length crosses the block: rest abandoned
    CHECKSUM_MISMATCH = "checksum_mismatch"  # frame dropped, reading continues after it


# Not frozen, like the other per-frame and per-record values of the read path
# (``RawRecord``, ``PackedAppendRecords``): a frozen dataclass's ``__init__``
# sets each field through ``object.__setattr__``, several times the cost of a
# plain one, and replay makes one for every frame. Nothing mutates them.
@dataclass(slots=True)
class Frame:
    frame_type: int
    payload: memoryview
    offset: int  # of the header, within the block


@dataclass(frozen=True, slots=True)
class DamagedFrame:
    kind: DamageKind
    offset: int  # of the header, within the block
    # Bytes of the block the reader skips because of this damage (the frame
    # itself, or the rest of the block).
    skipped_num_bytes: int


@dataclass(frozen=True, slots=True)
class EndOfLog:
    """An all-zero header: nothing after it is part of the log."""

    offset: int


@dataclass(frozen=True, slots=True)
class NeedBlock:
    """The decoder needs the next block (fewer than 7 bytes left, or the rest of
    the current block was abandoned)."""


NEED_BLOCK: Final = NeedBlock()

FrameEvent = Frame | DamagedFrame | EndOfLog | NeedBlock


class FrameDecoder:
    """Turns blocks into frame events, following mrecordlog 0.5's reader.

    With ``profile=None`` the decoder detects the checksum profile: the first
    frame whose checksum matches exactly one profile fixes it
    (``detected_profile``, ``detected_at``).
    """

    def __init__(self, profile: ChecksumProfile | None = None) -> None:
        self._block: bytes | None = None
        self._view = memoryview(b"")
        self.cursor = 0
        self._abandoned = False
        self._abandoned_at = 0
        self.profile = profile
        self.detected_at: int | None = None  # block-relative offset; the caller adds the block's place

    def needs_block(self) -> bool:
        return self._block is None or self._abandoned or BLOCK_NUM_BYTES - self.cursor < FRAME_HEADER_NUM_BYTES

    @property
    def resume_offset(self) -> int:
        """Where a writer may continue in the current block: the cursor, or the
        header that made the decoder abandon the block (bytes written after
        it would be abandoned again by the next reader)."""
        return self._abandoned_at if self._abandoned else self.cursor

    def feed_block(self, block: bytes) -> None:
        if len(block) != BLOCK_NUM_BYTES:
            raise ValueError(f"a block is {BLOCK_NUM_BYTES} bytes, got {len(block)}")
        self._block = block
        self._view = memoryview(block)
        self.cursor = 0
        self._abandoned = False

    def next_event(self) -> FrameEvent:
        block = self._block
        start = self.cursor
        if block is None or self._abandoned or BLOCK_NUM_BYTES - start < FRAME_HEADER_NUM_BYTES:  # needs_block()
            return NEED_BLOCK
        header_end = start + FRAME_HEADER_NUM_BYTES
        checksum, length, frame_type = _unpack_frame_header(block, start)
        if not (checksum or length or frame_type):
            return EndOfLog(start)
        if not _FULL <= frame_type <= _LAST:
            self._abandoned = True
            self._abandoned_at = start
            return DamagedFrame(DamageKind.INVALID_TYPE, start, BLOCK_NUM_BYTES - start)
        end = header_end + length
        if end > BLOCK_NUM_BYTES:
            # mrecordlog 0.5 consumes the header before finding this out (and
            # resumes writing after it); ``resume_offset`` does not.
            self.cursor = header_end
            self._abandoned = True
            self._abandoned_at = start
            return DamagedFrame(DamageKind.LENGTH_PAST_BLOCK, start, BLOCK_NUM_BYTES - start)
        self.cursor = end
        payload = self._view[header_end:end]
        if self.profile is not None:
            if frame_checksum(self.profile, frame_type, payload) != checksum:
                return DamagedFrame(DamageKind.CHECKSUM_MISMATCH, start, end - start)
            return Frame(frame_type, payload, start)
        matches = [p for p in ChecksumProfile if frame_checksum(p, frame_type, payload) == checksum]
        if not matches:
            return DamagedFrame(DamageKind.CHECKSUM_MISMATCH, start, end - start)
        if len(matches) == 1:
            self.profile = matches[0]
            self.detected_at = start
        return Frame(frame_type, payload, start)


@dataclass(frozen=True, slots=True)
class AssembledRecord:
    # A Full frame's payload as a view of its block (read-only bytes: no
    # copy), or the joined payloads of a First/Middle.../Last chain.
    data: bytes | memoryview


@dataclass(frozen=True, slots=True)
class DroppedPartialRecord:
    """A First frame (and maybe Middles) whose record never completed: a new
    First/Full frame or damage came before its Last frame."""

    num_bytes: int


@dataclass(frozen=True, slots=True)
class OrphanFrame:
    """A Middle or Last frame with no record open; ignored."""

    frame_type: int
    num_bytes: int


class RecordAssembler:
    """Joins Full, or First/Middle*/Last, frames into records (mrecordlog 0.5 rules)."""

    def __init__(self) -> None:
        self._parts: list[memoryview] = []  # views of immutable blocks
        self._open = False
        self._open_num_bytes = 0

    @property
    def has_open_record(self) -> bool:
        return self._open

    def feed_frame(
        self, frame_type: int, payload: memoryview
    ) -> tuple[DroppedPartialRecord | None, AssembledRecord | OrphanFrame | None]:
        """Returns (the partial record this frame drops, the record it completes
        or the orphan it is); either may be None."""
        dropped: DroppedPartialRecord | None = None
        if frame_type in (_FULL, _FIRST):
            if self._open:
                dropped = DroppedPartialRecord(self._open_num_bytes)
            if frame_type == _FULL:
                self._open = False
                self._parts = []
                return dropped, AssembledRecord(payload)
            self._open = True
            self._parts = [payload]
            self._open_num_bytes = len(payload)
            return dropped, None
        if not self._open:
            return None, OrphanFrame(frame_type, len(payload))
        self._parts.append(payload)
        self._open_num_bytes += len(payload)
        if frame_type == _LAST:
            self._open = False
            data = b"".join(self._parts)
            self._parts = []
            return None, AssembledRecord(data)
        return None, None

    def on_damage(self) -> DroppedPartialRecord | None:
        """A damaged frame drops the record being assembled, if any."""
        if not self._open:
            return None
        self._open = False
        self._parts = []
        return DroppedPartialRecord(self._open_num_bytes)
