"""Pure codecs: checksum profiles, frame headers and the multiplexed records.

Nothing here does I/O or knows about files; every function maps bytes to
values and back. The byte layout is specified in ``spec/FORMAT.md``.
"""

from __future__ import annotations

import enum
import operator
import struct
import zlib

# A module global for mypyc (the compiled build, setup.py): it looks the type
# of a dataclass field up in the module's globals, not in builtins.
from builtins import memoryview
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate, repeat
from typing import Final, NoReturn

import crc32c as _crc32c

from mrecordlog.errors import InvalidArgument, RecordDecodeError

BLOCK_NUM_BYTES: Final = 32768
FRAME_HEADER_NUM_BYTES: Final = 7
RECORD_HEADER_NUM_BYTES: Final = 11
APPEND_ENTRY_HEADER_NUM_BYTES: Final = 12

MAX_U64: Final = 2**64 - 1
# The next position of a queue must fit in u64 (it is written in position
# records), so the last position a record can take is one below MAX_U64.
MAX_RECORD_POSITION: Final = MAX_U64 - 1
MAX_QUEUE_NAME_BYTES: Final = 0xFFFF
MAX_PAYLOAD_BYTES: Final = 0xFFFFFFFF

_FRAME_HEADER = struct.Struct("<IHB")
# The frame header's layout, for the framing of the append hot path.
FRAME_HEADER_STRUCT: Final = _FRAME_HEADER
_RECORD_HEADER = struct.Struct("<BQH")
_ENTRY_HEADER = struct.Struct("<QI")
_pack_record_header: Final = _RECORD_HEADER.pack
_pack_entry_header: Final = _ENTRY_HEADER.pack


class ChecksumProfile(enum.Enum):
    """How a frame's checksum is computed (over the type byte, then the
    payload). A log has one profile, detected from its first valid frame; a
    new log gets the one ``open`` asks for, ``CRC32C`` by default. Given as a
    member or its value.

    :cvar CRC32: ``"crc32"``: CRC-32 (IEEE 802.3, as zlib computes it), what
        mrecordlog 0.5 writes.
    :cvar CRC32C: ``"crc32c"``: CRC-32C (Castagnoli).
    """

    CRC32 = "crc32"
    CRC32C = "crc32c"

    @classmethod
    def parse(cls, value: object) -> ChecksumProfile:
        """The profile ``value`` names: a ``ChecksumProfile`` or its value
        (``"crc32"``, ``"crc32c"``); anything else raises ``InvalidArgument``
        (in a compiled build too)."""
        if isinstance(value, ChecksumProfile):
            return value
        try:
            return cls(value)
        except ValueError:
            raise InvalidArgument(f"unknown checksum profile {value!r} (expected 'crc32' or 'crc32c')") from None


# The checksum of the one-byte frame type is the seed of the payload's checksum;
# precomputing the four seeds saves a call per frame.
_CRC32_SEEDS: Final = {t: zlib.crc32(bytes([t])) for t in range(256)}
_CRC32C_SEEDS: Final = {t: _crc32c.crc32c(bytes([t])) for t in range(256)}


# A module constant: reaching an enum member through its class costs more
# than the checksum of a small frame.
_CRC32: Final = ChecksumProfile.CRC32


def frame_checksum(profile: ChecksumProfile, frame_type: int, payload: bytes | memoryview) -> int:
    """Checksum of a frame: CRC over the frame-type byte followed by the payload."""
    if profile is _CRC32:
        return zlib.crc32(payload, _CRC32_SEEDS[frame_type])
    return _crc32c.crc32c(payload, _CRC32C_SEEDS[frame_type])


class FrameType(enum.IntEnum):
    FULL = 1
    FIRST = 2
    MIDDLE = 3
    LAST = 4


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """The 7-byte frame header: checksum u32 LE, payload length u16 LE, type u8.

    ``frame_type`` is kept as the raw byte so that a header with an unknown type
    can still be represented and reported.
    """

    checksum: int
    length: int
    frame_type: int

    def encode(self) -> bytes:
        return _FRAME_HEADER.pack(self.checksum, self.length, self.frame_type)

    @classmethod
    def decode(cls, data: bytes | memoryview, offset: int = 0) -> FrameHeader:
        checksum, length, frame_type = _FRAME_HEADER.unpack_from(data, offset)
        return cls(checksum, length, frame_type)


class RecordType(enum.IntEnum):
    TRUNCATE = 1
    RECORD_POSITION = 2
    DELETE_QUEUE = 3
    APPEND_RECORDS = 4


_APPEND_RECORDS: Final = int(RecordType.APPEND_RECORDS)


@dataclass(frozen=True, slots=True)
class TruncateRecord:
    """Removes the queue's records up to and including ``position``."""

    queue: str
    position: int


@dataclass(frozen=True, slots=True)
class RecordPositionRecord:
    """Creates the queue if needed and states its next position (for an empty queue)."""

    queue: str
    position: int


@dataclass(frozen=True, slots=True)
class DeleteQueueRecord:
    """Deletes the queue; ``position`` is its next position at deletion."""

    queue: str
    position: int


@dataclass(frozen=True, slots=True)
class AppendRecordsRecord:
    """One atomic batch: ``entries`` are (position, payload) in write order."""

    queue: str
    position: int
    entries: tuple[tuple[int, bytes], ...]


MultiplexedRecord = TruncateRecord | RecordPositionRecord | DeleteQueueRecord | AppendRecordsRecord


def encode_queue_name(queue: str) -> bytes:
    """UTF-8 bytes of a queue name, checked against the u16 length field."""
    try:
        name = queue.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgument(f"queue name is not encodable as UTF-8: {exc}", queue=queue) from None
    if len(name) > MAX_QUEUE_NAME_BYTES:
        raise InvalidArgument(
            f"queue name is {len(name)} UTF-8 bytes long; the limit is {MAX_QUEUE_NAME_BYTES}",
            queue=queue,
        )
    return name


def _check_u64(position: int, what: str) -> None:
    if not 0 <= position <= MAX_U64:
        raise InvalidArgument(f"{what} {position} is outside the unsigned 64-bit range")


def _header(record_type: RecordType, position: int, queue: str) -> bytes:
    _check_u64(position, "position")
    name = encode_queue_name(queue)
    return _RECORD_HEADER.pack(record_type, position, len(name)) + name


def encode_append_records(queue: str, position: int, payloads: Sequence[bytes | bytearray | memoryview]) -> bytes:
    """Encode an AppendRecords record whose entries take consecutive positions
    from ``position``. This is the append hot path: one join, no intermediate
    record object, no helper call per entry."""
    last = position + len(payloads) - 1 if payloads else position
    if not 0 <= position <= last <= MAX_U64:
        _check_u64(last, "last entry position")
        _check_u64(position, "position")
    try:
        name = queue.encode("utf-8")
    except UnicodeEncodeError:
        name = encode_queue_name(queue)  # raises the typed error
    name_num_bytes = len(name)
    if name_num_bytes > MAX_QUEUE_NAME_BYTES:
        encode_queue_name(queue)  # raises the typed error
    pack = _pack_entry_header
    parts: list[bytes | bytearray | memoryview] = [_pack_record_header(_APPEND_RECORDS, position, name_num_bytes), name]
    for payload in payloads:
        size = len(payload)
        if size > MAX_PAYLOAD_BYTES:
            raise InvalidArgument(f"payload of {size} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte limit", queue=queue)
        parts += (pack(position, size), payload)
        position += 1
    return b"".join(parts)


def encode_record(record: MultiplexedRecord) -> bytes:
    """Encode any multiplexed record (see ``spec/FORMAT.md``, Records)."""
    if isinstance(record, AppendRecordsRecord):
        parts: list[bytes] = [_header(RecordType.APPEND_RECORDS, record.position, record.queue)]
        for position, payload in record.entries:
            _check_u64(position, "entry position")
            if len(payload) > MAX_PAYLOAD_BYTES:
                raise InvalidArgument(f"payload of {len(payload)} bytes is too large", queue=record.queue)
            parts.append(_ENTRY_HEADER.pack(position, len(payload)))
            parts.append(payload)
        return b"".join(parts)
    if isinstance(record, TruncateRecord):
        return _header(RecordType.TRUNCATE, record.position, record.queue)
    if isinstance(record, RecordPositionRecord):
        return _header(RecordType.RECORD_POSITION, record.position, record.queue)
    return _header(RecordType.DELETE_QUEUE, record.position, record.queue)


@dataclass(slots=True)  # not frozen: one per record replayed (see ``_framing.Frame``)
class PackedAppendRecords:
    """An AppendRecords record as replay decodes it (``decode_record_packed``):
    no object per entry, but the entries' positions and sizes, and their
    payloads laid end to end in ``payloads``. Replay copies them into a
    queue in a few C calls."""

    queue: str
    position: int
    positions: list[int]
    sizes: list[int]
    payloads: bytes | memoryview  # a view of the record's bytes for a lone entry

    def entries(self) -> tuple[tuple[int, bytes], ...]:
        """(position, payload) of each entry."""
        cuts = map(slice, accumulate(self.sizes, initial=0), accumulate(self.sizes))
        return tuple(zip(self.positions, map(bytes, map(self.payloads.__getitem__, cuts)), strict=False))


PackedRecord = TruncateRecord | RecordPositionRecord | DeleteQueueRecord | PackedAppendRecords


def decode_packed_entries(
    body: bytes | memoryview, base_offset: int = 0
) -> tuple[list[int], list[int], bytes | memoryview]:
    """Decode an AppendRecords body, repeated (position u64, length u32,
    bytes), into the entries' positions, sizes, and payloads end to end.

    Raises ``RecordDecodeError`` if the lengths do not add up exactly.
    """
    view = memoryview(body)
    end = len(view)
    if end >= APPEND_ENTRY_HEADER_NUM_BYTES:
        position, size = _ENTRY_HEADER.unpack_from(view, 0)
        if APPEND_ENTRY_HEADER_NUM_BYTES + size == end:  # one entry: the common case of small appends
            return [position], [size], view[APPEND_ENTRY_HEADER_NUM_BYTES:]
    # Replay's hot loop: per entry, one header read and two list appends; the
    # bounds are checked once at the end (the careful walk only runs to name
    # a defect), and the payloads are cut out and joined in C.
    positions: list[int] = []
    ends: list[int] = []  # where each entry ends in ``body``
    add_position = positions.append
    add_end = ends.append
    unpack = _ENTRY_HEADER.unpack_from
    cursor = 0
    try:
        while cursor < end:
            position, size = unpack(view, cursor)
            add_position(position)
            cursor += APPEND_ENTRY_HEADER_NUM_BYTES + size
            add_end(cursor)
    except struct.error:  # fewer bytes left than a header
        cursor = -1
    if cursor != end:
        _raise_entries_error(view, base_offset)
    if not ends:
        return [], [], b""
    starts = [APPEND_ENTRY_HEADER_NUM_BYTES, *map(operator.add, ends[:-1], repeat(APPEND_ENTRY_HEADER_NUM_BYTES))]
    payloads = b"".join(map(view.__getitem__, map(slice, starts, ends)))
    return positions, list(map(operator.sub, ends, starts)), payloads


def _raise_entries_error(body: memoryview, base_offset: int) -> NoReturn:
    """Walk the entries of a body whose lengths do not add up and raise the
    ``RecordDecodeError`` that names the first defect."""
    cursor = 0
    end = len(body)
    while cursor < end:
        if end - cursor < APPEND_ENTRY_HEADER_NUM_BYTES:
            raise RecordDecodeError(
                f"{end - cursor} trailing bytes cannot hold an entry header",
                offset=base_offset + cursor,
            )
        _, size = _ENTRY_HEADER.unpack_from(body, cursor)
        cursor += APPEND_ENTRY_HEADER_NUM_BYTES
        if end - cursor < size:
            raise RecordDecodeError(
                f"entry declares {size} payload bytes but {end - cursor} remain",
                offset=base_offset + cursor - APPEND_ENTRY_HEADER_NUM_BYTES,
            )
        cursor += size
    raise AssertionError("the entries add up")


def decode_append_entries(body: bytes | memoryview, base_offset: int = 0) -> tuple[tuple[int, bytes], ...]:
    """``decode_packed_entries``, as (position, payload) pairs."""
    return PackedAppendRecords("", 0, *decode_packed_entries(body, base_offset)).entries()


def decode_record(data: bytes | memoryview) -> MultiplexedRecord:
    """Decode one multiplexed record; raises ``RecordDecodeError`` on any defect."""
    record = decode_record_packed(data)
    if isinstance(record, PackedAppendRecords):
        return AppendRecordsRecord(record.queue, record.position, record.entries())
    return record


def decode_record_packed(data: bytes | memoryview) -> PackedRecord:
    """``decode_record``, an AppendRecords record's entries packed (replay's
    decoder: no object per entry); raises ``RecordDecodeError`` on any defect."""
    if len(data) < RECORD_HEADER_NUM_BYTES:
        raise RecordDecodeError(
            f"{len(data)} bytes are shorter than the {RECORD_HEADER_NUM_BYTES}-byte record header",
            offset=0,
        )
    record_type, position, name_len = _RECORD_HEADER.unpack_from(data, 0)
    name_end = RECORD_HEADER_NUM_BYTES + name_len
    if len(data) < name_end:
        raise RecordDecodeError(
            f"queue name of {name_len} bytes runs past the record's end",
            offset=RECORD_HEADER_NUM_BYTES - 2,
        )
    try:
        queue = str(data[RECORD_HEADER_NUM_BYTES:name_end], "utf-8")
    except UnicodeDecodeError as exc:
        raise RecordDecodeError("queue name is not valid UTF-8", offset=RECORD_HEADER_NUM_BYTES + exc.start) from None
    if record_type == _APPEND_RECORDS:
        return PackedAppendRecords(queue, position, *decode_packed_entries(memoryview(data)[name_end:], name_end))
    if record_type in (RecordType.TRUNCATE, RecordType.RECORD_POSITION, RecordType.DELETE_QUEUE):
        # mrecordlog 0.5 ignores trailing bytes after these records' names; a
        # correct writer never produces them, so they mark damage.
        if len(data) > name_end:
            raise RecordDecodeError(f"{len(data) - name_end} unexpected bytes after the queue name", offset=name_end)
        if record_type == RecordType.TRUNCATE:
            return TruncateRecord(queue, position)
        if record_type == RecordType.RECORD_POSITION:
            return RecordPositionRecord(queue, position)
        return DeleteQueueRecord(queue, position)
    raise RecordDecodeError(f"unknown record type {record_type}", offset=0)
