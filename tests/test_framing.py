"""Frames over 32 KiB blocks: ``frame_record``, ``FrameDecoder`` and ``RecordAssembler``.

Expected frame layouts are computed here from the format's rules (7-byte
header; frames never cross a block; fewer than 7 bytes left: that many zero
bytes, then the next block; exactly 7 left: a zero-length frame; Full, or
First, Middle..., Last), and expected bytes are built with ``struct`` and
``zlib`` / ``crc32c``, never taken from the code under test.
"""

from __future__ import annotations

import random
import struct
import zlib
from dataclasses import dataclass, field

import crc32c
import pytest

from mrecordlog._codec import ChecksumProfile
from mrecordlog._framing import (
    AssembledRecord,
    DamagedFrame,
    DamageKind,
    EndOfLog,
    Frame,
    FrameDecoder,
    NeedBlock,
    OrphanFrame,
    RecordAssembler,
    frame_record,
)

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
PROFILES = [ChecksumProfile.CRC32, ChecksumProfile.CRC32C]


def crc(profile: ChecksumProfile, frame_type: int, payload: bytes) -> int:
    data = bytes([frame_type]) + payload
    return zlib.crc32(data) if profile is ChecksumProfile.CRC32 else int(crc32c.crc32c(data))


@dataclass(frozen=True)
class PlannedFrame:
    padding: int  # zero bytes written before the header (fewer than 7 were left in the block)
    frame_type: int
    length: int


def expected_layout(record_size: int, block_offset: int) -> list[PlannedFrame]:
    """One frame per block touched: what the format's rules say the writer does."""
    frames: list[PlannedFrame] = []
    left_in_block = BLOCK - block_offset
    remaining = record_size
    while True:
        padding = 0
        if left_in_block < HEADER:
            padding = left_in_block
            left_in_block = BLOCK
        length = min(left_in_block - HEADER, remaining)
        remaining -= length
        first, last = not frames, remaining == 0
        frame_type = (FULL if last else FIRST) if first else (LAST if last else MIDDLE)
        frames.append(PlannedFrame(padding, frame_type, length))
        if last:
            return frames
        # A non-last frame always fills its block: the next frame starts a new block.
        assert length == left_in_block - HEADER
        left_in_block = BLOCK


def expected_bytes(record: bytes, block_offset: int, profile: ChecksumProfile) -> bytes:
    out = bytearray()
    consumed = 0
    for frame in expected_layout(len(record), block_offset):
        chunk = record[consumed : consumed + frame.length]
        consumed += frame.length
        out += bytes(frame.padding)
        out += struct.pack("<IHB", crc(profile, frame.frame_type, chunk), frame.length, frame.frame_type)
        out += chunk
    assert consumed == len(record)
    return bytes(out)


def test_layout_model_examples() -> None:
    # A few layouts worked out by hand, to check the model itself.
    assert expected_layout(10, 0) == [PlannedFrame(0, FULL, 10)]
    assert expected_layout(32761, 0) == [PlannedFrame(0, FULL, 32761)]
    assert expected_layout(32762, 0) == [PlannedFrame(0, FIRST, 32761), PlannedFrame(0, LAST, 1)]
    assert expected_layout(10, 32761) == [PlannedFrame(0, FIRST, 0), PlannedFrame(0, LAST, 10)]
    assert expected_layout(10, 32762) == [PlannedFrame(6, FULL, 10)]
    assert expected_layout(10, 32767) == [PlannedFrame(1, FULL, 10)]
    assert expected_layout(70000, 0) == [
        PlannedFrame(0, FIRST, 32761),
        PlannedFrame(0, MIDDLE, 32761),
        PlannedFrame(0, LAST, 70000 - 2 * 32761),
    ]


def deterministic_record(size: int, seed: int) -> bytes:
    data = bytearray(random.Random(seed).randbytes(size))
    if data:
        data[-1] |= 1  # a non-zero last byte: cutting it off is always visible
    return bytes(data)


# -- decoding helper -----------------------------------------------------------


@dataclass
class Decoded:
    records: list[bytes] = field(default_factory=list)
    frames: list[tuple[int, int, int, int]] = field(default_factory=list)  # (block, offset, type, length)
    damage: list[object] = field(default_factory=list)
    ended_at_marker: bool = False


def decode_blocks(blocks: list[bytes], profile: ChecksumProfile | None, start_cursor: int = 0) -> Decoded:
    """Feed blocks to FrameDecoder + RecordAssembler as the WAL reader does
    (``profile=None``: the decoder detects it, as when a log is opened)."""
    result = Decoded()
    decoder = FrameDecoder(profile)
    assembler = RecordAssembler()
    index = 0
    decoder.feed_block(blocks[0])
    decoder.cursor = start_cursor
    while True:
        event = decoder.next_event()
        if isinstance(event, Frame):
            result.frames.append((index, event.offset, event.frame_type, len(event.payload)))
            dropped, done = assembler.feed_frame(event.frame_type, event.payload)
            if dropped is not None:
                result.damage.append(dropped)
            if isinstance(done, AssembledRecord):
                result.records.append(bytes(done.data))
            elif isinstance(done, OrphanFrame):
                result.damage.append(done)
        elif isinstance(event, DamagedFrame):
            result.damage.append(event)
            partial = assembler.on_damage()
            if partial is not None:
                result.damage.append(partial)
        elif isinstance(event, EndOfLog):
            result.ended_at_marker = True
            if assembler.has_open_record:
                result.damage.append("record still open at the end of the log")
            return result
        else:
            assert isinstance(event, NeedBlock)
            index += 1
            if index == len(blocks):
                if assembler.has_open_record:
                    result.damage.append("record still open at the end of the blocks")
                return result
            decoder.feed_block(blocks[index])


def split_blocks(data: bytes | bytearray, extra_blocks: int = 1) -> list[bytes]:
    """Cut into blocks, zero-filling the last one and adding ``extra_blocks`` zero blocks."""
    num_blocks = -(-len(data) // BLOCK) + extra_blocks
    padded = bytes(data) + bytes(num_blocks * BLOCK - len(data))
    return [padded[i * BLOCK : (i + 1) * BLOCK] for i in range(num_blocks)]


def filler_frame(block_offset: int, profile: ChecksumProfile) -> bytes:
    """A valid Full frame from the block start up to ``block_offset`` (which is >= 7)."""
    payload = bytes((i * 7 + 3) & 0xFF for i in range(block_offset - HEADER))
    return struct.pack("<IHB", crc(profile, FULL, payload), len(payload), FULL) + payload


def placed(block_offset: int, profile: ChecksumProfile) -> tuple[bytes, list[bytes]]:
    """(bytes before the record in its first block, the records those bytes hold)."""
    if block_offset == 0:
        return b"", []
    filler = filler_frame(block_offset, profile)
    return filler, [filler[HEADER:]]


# -- layout around block boundaries ----------------------------------------------

OFFSETS = [0, 1, 6, 7, 8, 100, *range(32754, 32768)]


def sizes_for(block_offset: int) -> list[int]:
    left = BLOCK - block_offset
    sizes = set()
    # Records whose end (7 + size from the header) falls at 32768 - k, for k in 0..8, in the first block...
    for k in range(9):
        sizes.add(left - HEADER - k)
    # ... and in the second block, and a record exactly one byte into the second block.
    first_payload = left - HEADER if left >= HEADER else BLOCK - HEADER
    for k in range(9):
        sizes.add(first_payload + BLOCK - HEADER - k)
    sizes.update({first_payload + 1, 1, 11, 40_000, 2 * BLOCK + 5, 3 * BLOCK - 1})
    return sorted(size for size in sizes if size > 0)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("block_offset", OFFSETS)
def test_frame_record_matches_the_layout_rules_and_decodes_back(block_offset: int, profile: ChecksumProfile) -> None:
    for size in sizes_for(block_offset):
        record = deterministic_record(size, seed=size * 31 + block_offset)
        layout = expected_layout(size, block_offset)
        framed = frame_record(record, block_offset, profile)
        assert framed == expected_bytes(record, block_offset, profile), (block_offset, size)
        padding = sum(frame.padding for frame in layout)
        assert len(framed) == padding + HEADER * len(layout) + size

        if 0 < block_offset < HEADER:
            # No frame fits before these offsets: start the decoder there directly.
            before_records: list[bytes] = []
            blocks = split_blocks(bytes(block_offset) + framed)
            decoded = decode_blocks(blocks, profile, start_cursor=block_offset)
        else:
            before, before_records = placed(block_offset, profile)
            blocks = split_blocks(before + framed)
            decoded = decode_blocks(blocks, profile)
        assert decoded.records == [*before_records, record]
        assert decoded.damage == []
        assert decoded.ended_at_marker
        # Frame by frame, as the decoder saw them: one frame per block.
        ours = decoded.frames[len(before_records) :]
        # Padding (only ever before the first frame) moves every frame one block on.
        shift = 1 if layout[0].padding else 0
        expected_frames = [
            (index + shift, block_offset if index == 0 and not shift else 0, frame.frame_type, frame.length)
            for index, frame in enumerate(layout)
        ]
        assert ours == expected_frames


@pytest.mark.parametrize("profile", PROFILES)
def test_zero_length_first_frame_when_exactly_seven_bytes_left(profile: ChecksumProfile) -> None:
    record = b"0123456789"
    framed = frame_record(record, BLOCK - 7, profile)
    first = struct.pack("<IHB", crc(profile, FIRST, b""), 0, FIRST)
    last = struct.pack("<IHB", crc(profile, LAST, record), len(record), LAST) + record
    assert framed == first + last


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("left", [1, 2, 3, 4, 5, 6])
def test_zero_padding_then_next_block_when_fewer_than_seven_bytes_left(left: int, profile: ChecksumProfile) -> None:
    record = b"abc"
    framed = frame_record(record, BLOCK - left, profile)
    assert framed == bytes(left) + struct.pack("<IHB", crc(profile, FULL, record), 3, FULL) + record


@pytest.mark.parametrize("profile", PROFILES)
def test_frame_filling_the_block_exactly_leaves_the_next_write_at_a_block_start(profile: ChecksumProfile) -> None:
    record = bytes(100 - 7)
    framed = frame_record(record, BLOCK - 100, profile)
    assert len(framed) == 100
    assert framed[6] == FULL


@pytest.mark.parametrize("block_offset", [-1, BLOCK, BLOCK + 1])
def test_frame_record_rejects_offsets_outside_the_block(block_offset: int) -> None:
    with pytest.raises(ValueError, match="block offset"):
        frame_record(b"x", block_offset, ChecksumProfile.CRC32)


@pytest.mark.parametrize("size", [0, 1, BLOCK - 1, BLOCK + 1])
def test_decoder_accepts_only_whole_blocks(size: int) -> None:
    with pytest.raises(ValueError, match="block"):
        FrameDecoder(ChecksumProfile.CRC32).feed_block(bytes(size))


# -- every single-byte corruption and every truncation ----------------------------


@dataclass(frozen=True)
class Case:
    name: str
    block_offset: int
    record_size: int


CORRUPTION_CASES = [
    Case("full_at_block_start", 0, 60),
    Case("full_after_another_frame", 100, 60),
    Case("padding_then_full", BLOCK - 4, 60),
    Case("zero_length_first_then_last", BLOCK - 7, 60),
    Case("first_then_last", BLOCK - 100, 300),
    Case("first_middle_last", BLOCK - 800, 793 + (BLOCK - 7) + 250),
]


@dataclass
class Scene:
    """A record framed at an offset in a block, after a filler frame, zero-filled after."""

    record: bytes
    before: bytes
    before_records: list[bytes]
    framed: bytes
    padding_positions: frozenset[int]  # indexes in ``framed`` that are block padding

    @property
    def start(self) -> int:
        return len(self.before)


def make_scene(case: Case, profile: ChecksumProfile) -> Scene:
    record = deterministic_record(case.record_size, seed=case.record_size)
    before, before_records = placed(case.block_offset, profile)
    framed = frame_record(record, case.block_offset, profile)
    assert framed == expected_bytes(record, case.block_offset, profile)
    padding: set[int] = set()
    position = 0
    for frame in expected_layout(len(record), case.block_offset):
        padding.update(range(position, position + frame.padding))
        position += frame.padding + HEADER + frame.length
    return Scene(record, before, before_records, framed, frozenset(padding))


def check_outcome(scene: Scene, decoded: Decoded, *, record_changed: bool, all_zero: bool, what: str) -> None:
    """``record_changed``: a byte of the framed record other than block padding differs;
    ``all_zero``: nothing but zero bytes is left of the framed record."""
    assert decoded.records[: len(scene.before_records)] == scene.before_records, what
    ours = decoded.records[len(scene.before_records) :]
    # Never a record other than the original, never more than one.
    assert all(record == scene.record for record in ours), what
    assert len(ours) <= 1, what
    if not record_changed:
        assert ours == [scene.record], what
        assert decoded.damage == [], what
    elif all_zero:
        # Nothing of the record is left: an empty log past the filler.
        assert ours == [], what
        assert decoded.damage == [], what
    else:
        assert ours == [], what
        assert decoded.damage, what


@pytest.mark.parametrize("detect", [False, True], ids=["known_profile", "detected_profile"])
@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("case", CORRUPTION_CASES, ids=lambda case: case.name)
def test_every_single_byte_change_is_detected_or_harmless(case: Case, profile: ChecksumProfile, detect: bool) -> None:
    scene = make_scene(case, profile)
    image = bytearray(scene.before + scene.framed)
    blocks = split_blocks(image)
    for index in range(len(scene.framed)):
        absolute = scene.start + index
        block_index = absolute // BLOCK
        for mask in (0x01, 0xFF):
            image[absolute] ^= mask
            corrupted = list(blocks)
            corrupted[block_index] = bytes(image[block_index * BLOCK : (block_index + 1) * BLOCK].ljust(BLOCK, b"\0"))
            image[absolute] ^= mask
            decoded = decode_blocks(corrupted, None if detect else profile)
            check_outcome(
                scene,
                decoded,
                record_changed=index not in scene.padding_positions,
                all_zero=False,
                what=f"byte {index} ^ {mask:#x}",
            )


@pytest.mark.parametrize("detect", [False, True], ids=["known_profile", "detected_profile"])
@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("case", CORRUPTION_CASES, ids=lambda case: case.name)
def test_every_truncation_is_detected_or_an_empty_log(case: Case, profile: ChecksumProfile, detect: bool) -> None:
    scene = make_scene(case, profile)
    image = scene.before + scene.framed
    blocks = split_blocks(image)
    # Padding is zero, so a cut changes the record exactly when it cuts away a non-zero byte.
    size = len(scene.framed)
    nonzero_from = [False] * (size + 1)
    nonzero_before = [False] * (size + 1)
    for i in range(size - 1, -1, -1):
        nonzero_from[i] = nonzero_from[i + 1] or scene.framed[i] != 0
    for i in range(size):
        nonzero_before[i + 1] = nonzero_before[i] or scene.framed[i] != 0
    for cut in range(size):
        absolute = scene.start + cut
        first_block = absolute // BLOCK
        corrupted = list(blocks)
        kept = image[first_block * BLOCK : absolute]
        corrupted[first_block] = kept + bytes(BLOCK - len(kept))
        for later in range(first_block + 1, len(blocks)):
            corrupted[later] = bytes(BLOCK)
        decoded = decode_blocks(corrupted, None if detect else profile)
        check_outcome(
            scene,
            decoded,
            record_changed=nonzero_from[cut],
            all_zero=not nonzero_before[cut],
            what=f"cut at {cut}",
        )


# -- the reader's recovery rules, one by one --------------------------------------


def two_full_frames(profile: ChecksumProfile) -> tuple[bytes, bytes, bytes]:
    first, second = b"first record", b"second record"
    return (
        first,
        second,
        frame_record(first, 0, profile) + frame_record(second, HEADER + len(first), profile),
    )


@pytest.mark.parametrize("profile", PROFILES)
def test_checksum_mismatch_drops_only_that_frame(profile: ChecksumProfile) -> None:
    first, second, data = two_full_frames(profile)
    damaged = bytearray(data)
    damaged[HEADER] ^= 0x20
    decoded = decode_blocks(split_blocks(damaged), profile)
    assert decoded.records == [second]
    assert len(decoded.damage) == 1
    event = decoded.damage[0]
    assert isinstance(event, DamagedFrame)
    assert event.kind is DamageKind.CHECKSUM_MISMATCH
    assert (event.offset, event.skipped_num_bytes) == (0, HEADER + len(first))


@pytest.mark.parametrize("profile", PROFILES)
def test_invalid_frame_type_abandons_the_rest_of_the_block(profile: ChecksumProfile) -> None:
    _first, _second, data = two_full_frames(profile)
    next_block_record = b"in the next block"
    image = bytearray(data.ljust(BLOCK, b"\0") + frame_record(next_block_record, 0, profile))
    image[6] = 9
    decoded = decode_blocks(split_blocks(image), profile)
    assert decoded.records == [next_block_record]
    event = decoded.damage[0]
    assert isinstance(event, DamagedFrame)
    assert event.kind is DamageKind.INVALID_TYPE
    assert (event.offset, event.skipped_num_bytes) == (0, BLOCK)


@pytest.mark.parametrize("profile", PROFILES)
def test_length_past_the_block_abandons_the_rest_of_the_block(profile: ChecksumProfile) -> None:
    _first, _second, data = two_full_frames(profile)
    next_block_record = b"in the next block"
    image = bytearray(data.ljust(BLOCK, b"\0") + frame_record(next_block_record, 0, profile))
    image[4:6] = struct.pack("<H", BLOCK - HEADER + 1)
    decoded = decode_blocks(split_blocks(image), profile)
    assert decoded.records == [next_block_record]
    event = decoded.damage[0]
    assert isinstance(event, DamagedFrame)
    assert event.kind is DamageKind.LENGTH_PAST_BLOCK


@pytest.mark.parametrize("profile", PROFILES)
def test_all_zero_header_ends_the_log_even_if_later_blocks_hold_frames(profile: ChecksumProfile) -> None:
    image = bytes(BLOCK) + frame_record(b"unreachable", 0, profile)
    decoded = decode_blocks(split_blocks(image), profile)
    assert decoded.records == []
    assert decoded.ended_at_marker
    assert decoded.damage == []


@pytest.mark.parametrize("profile", PROFILES)
def test_orphan_middle_and_last_frames_are_reported_and_ignored(profile: ChecksumProfile) -> None:
    middle = struct.pack("<IHB", crc(profile, MIDDLE, b"mm"), 2, MIDDLE) + b"mm"
    last = struct.pack("<IHB", crc(profile, LAST, b"ll"), 2, LAST) + b"ll"
    full = frame_record(b"whole", len(middle) + len(last), profile)
    decoded = decode_blocks(split_blocks(middle + last + full), profile)
    assert decoded.records == [b"whole"]
    assert [type(d) for d in decoded.damage] == [OrphanFrame, OrphanFrame]


@pytest.mark.parametrize("profile", PROFILES)
def test_a_new_record_start_drops_the_open_partial_record(profile: ChecksumProfile) -> None:
    first = struct.pack("<IHB", crc(profile, FIRST, b"part"), 4, FIRST) + b"part"
    full = frame_record(b"whole", len(first), profile)
    decoded = decode_blocks(split_blocks(first + full), profile)
    assert decoded.records == [b"whole"]
    assert len(decoded.damage) == 1


@pytest.mark.parametrize("profile", PROFILES)
def test_decoder_without_a_profile_detects_it_from_the_first_frame(profile: ChecksumProfile) -> None:
    data = frame_record(b"x" * 50, 0, profile) + frame_record(b"y", 57, profile)
    decoder = FrameDecoder(None)
    decoder.feed_block(split_blocks(data)[0])
    assert isinstance(decoder.next_event(), Frame)
    assert decoder.profile is profile
    assert decoder.detected_at == 0
    assert isinstance(decoder.next_event(), Frame)
    assert isinstance(decoder.next_event(), EndOfLog)
