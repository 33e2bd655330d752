"""The pure codecs: records, frame headers and frame checksums.

Expected bytes are built here with ``struct`` from the format's rules (record:
type u8, position u64 LE, name length u16 LE, UTF-8 name, body; AppendRecords
body: repeated position u64 LE, length u32 LE, bytes), and expected checksums
with ``zlib.crc32`` / ``crc32c.crc32c`` (and a bitwise CRC written here) over the
frame-type byte followed by the payload, never from the code under test.
"""

from __future__ import annotations

import random
import struct
import zlib

import crc32c
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mrecordlog._codec import (
    AppendRecordsRecord,
    ChecksumProfile,
    DeleteQueueRecord,
    FrameHeader,
    MultiplexedRecord,
    RecordPositionRecord,
    TruncateRecord,
    decode_record,
    encode_append_records,
    encode_queue_name,
    encode_record,
    frame_checksum,
)
from mrecordlog.errors import InvalidArgument, RecordDecodeError

MAX_U64 = 2**64 - 1
TRUNCATE, RECORD_POSITION, DELETE_QUEUE, APPEND_RECORDS = 1, 2, 3, 4

# Names at the 65535-byte limit, built from 1-, 2-, 3- and 4-byte UTF-8 characters.
LONGEST_NAMES = (
    "a" * 65535,
    "é" * 32767 + "a",
    "日" * 21845,
    "🎉" * 16383 + "abc",
)
SPECIAL_NAMES = ("", "q", "é", "日本語のキュー", "🎉 party", "nul\x00inside", "\uffff", *LONGEST_NAMES)
SPECIAL_POSITIONS = (0, 1, 2**32, 2**63, MAX_U64 - 1, MAX_U64)

names = st.one_of(st.text(max_size=40), st.sampled_from(SPECIAL_NAMES))
positions = st.one_of(st.sampled_from(SPECIAL_POSITIONS), st.integers(min_value=0, max_value=MAX_U64))
LARGE_PAYLOADS = (bytes(70_000), bytes(range(256)) * 400, random.Random(7).randbytes(100_003))
payloads = st.one_of(st.binary(max_size=80), st.sampled_from((b"", *LARGE_PAYLOADS)))
entries = st.lists(st.tuples(positions, payloads), max_size=4).map(tuple)


def expected_header(record_type: int, position: int, name: str) -> bytes:
    raw = name.encode("utf-8")
    return struct.pack("<BQH", record_type, position, len(raw)) + raw


def expected_append_body(items: tuple[tuple[int, bytes], ...]) -> bytes:
    return b"".join(struct.pack("<QI", position, len(payload)) + payload for position, payload in items)


def simple_records(name: str, position: int) -> list[tuple[int, MultiplexedRecord]]:
    return [
        (TRUNCATE, TruncateRecord(name, position)),
        (RECORD_POSITION, RecordPositionRecord(name, position)),
        (DELETE_QUEUE, DeleteQueueRecord(name, position)),
    ]


# -- round trips ---------------------------------------------------------------


@given(name=names, position=positions)
@example(name="", position=0)
@example(name="a" * 65535, position=MAX_U64)
def test_header_only_records_round_trip_with_the_documented_layout(name: str, position: int) -> None:
    for record_type, record in simple_records(name, position):
        encoded = encode_record(record)
        assert encoded == expected_header(record_type, position, name)
        assert decode_record(encoded) == record
        assert decode_record(memoryview(encoded)) == record


@given(name=names, position=positions, items=entries)
@example(name="", position=0, items=())
@example(name="日" * 21845, position=MAX_U64, items=((MAX_U64, b""), (0, bytes(70_000))))
def test_append_records_round_trips_with_the_documented_layout(
    name: str, position: int, items: tuple[tuple[int, bytes], ...]
) -> None:
    record = AppendRecordsRecord(name, position, items)
    encoded = encode_record(record)
    assert encoded == expected_header(APPEND_RECORDS, position, name) + expected_append_body(items)
    assert decode_record(encoded) == record


@given(
    name=names,
    position=st.one_of(st.sampled_from((0, MAX_U64 - 5)), st.integers(min_value=0, max_value=MAX_U64 - 5)),
    batch=st.lists(payloads, max_size=5),
)
@example(name="", position=0, batch=[])
@example(name="q", position=MAX_U64 - 5, batch=[b"", b"x", bytes(70_000), b"", b"z"])
def test_append_hot_path_encodes_consecutive_positions(name: str, position: int, batch: list[bytes]) -> None:
    encoded = encode_append_records(name, position, batch)
    items = tuple((position + offset, payload) for offset, payload in enumerate(batch))
    assert encoded == expected_header(APPEND_RECORDS, position, name) + expected_append_body(items)
    assert decode_record(encoded) == AppendRecordsRecord(name, position, items)
    assert encoded == encode_record(AppendRecordsRecord(name, position, items))


def test_append_hot_path_accepts_bytearray_and_memoryview_payloads() -> None:
    encoded = encode_append_records("q", 3, [bytearray(b"ab"), memoryview(b"cde"), b""])
    assert decode_record(encoded) == AppendRecordsRecord("q", 3, ((3, b"ab"), (4, b"cde"), (5, b"")))


@given(data=st.binary(max_size=200))
def test_whatever_decodes_re_encodes_to_the_same_bytes(data: bytes) -> None:
    try:
        record = decode_record(data)
    except RecordDecodeError:
        return
    assert encode_record(record) == data


# -- frame headers -------------------------------------------------------------


@given(
    checksum=st.integers(min_value=0, max_value=2**32 - 1),
    length=st.integers(min_value=0, max_value=2**16 - 1),
    frame_type=st.integers(min_value=0, max_value=255),
    prefix=st.binary(max_size=9),
)
@example(checksum=0, length=0, frame_type=0, prefix=b"")
@example(checksum=2**32 - 1, length=2**16 - 1, frame_type=255, prefix=b"\xff")
def test_frame_header_is_checksum_u32_length_u16_type_u8_little_endian(
    checksum: int, length: int, frame_type: int, prefix: bytes
) -> None:
    header = FrameHeader(checksum, length, frame_type)
    expected = bytes(
        [
            checksum & 0xFF,
            (checksum >> 8) & 0xFF,
            (checksum >> 16) & 0xFF,
            checksum >> 24,
            length & 0xFF,
            length >> 8,
            frame_type,
        ]
    )
    assert header.encode() == expected
    assert FrameHeader.decode(expected) == header
    assert FrameHeader.decode(memoryview(prefix + expected + b"tail"), len(prefix)) == header


# -- invalid arguments ---------------------------------------------------------


@pytest.mark.parametrize("name", ["a" * 65536, "é" * 32768, "日" * 21845 + "a", "🎉" * 16384])
def test_names_longer_than_65535_utf8_bytes_are_invalid_arguments(name: str) -> None:
    assert len(name.encode("utf-8")) > 65535
    with pytest.raises(InvalidArgument):
        encode_queue_name(name)
    for _, record in simple_records(name, 0):
        with pytest.raises(InvalidArgument):
            encode_record(record)
    with pytest.raises(InvalidArgument):
        encode_record(AppendRecordsRecord(name, 0, ((0, b"x"),)))
    with pytest.raises(InvalidArgument):
        encode_append_records(name, 0, [b"x"])


@pytest.mark.parametrize("name", LONGEST_NAMES)
def test_names_of_exactly_65535_utf8_bytes_are_accepted(name: str) -> None:
    assert encode_queue_name(name) == name.encode("utf-8")
    assert len(encode_queue_name(name)) == 65535


def test_names_that_are_not_encodable_as_utf8_are_invalid_arguments() -> None:
    with pytest.raises(InvalidArgument):
        encode_queue_name("lone \ud800 surrogate")
    with pytest.raises(InvalidArgument):
        encode_record(TruncateRecord("\udfff", 0))


@pytest.mark.parametrize("position", [-1, -(2**64), 2**64, 2**64 + 1, 2**100])
def test_positions_outside_u64_are_invalid_arguments(position: int) -> None:
    for _, record in simple_records("q", position):
        with pytest.raises(InvalidArgument):
            encode_record(record)
    with pytest.raises(InvalidArgument):
        encode_record(AppendRecordsRecord("q", position, ()))
    with pytest.raises(InvalidArgument):
        encode_record(AppendRecordsRecord("q", 0, ((position, b"x"),)))
    with pytest.raises(InvalidArgument):
        encode_append_records("q", position, [b"x"])


def test_append_hot_path_entry_positions_beyond_u64_are_invalid_arguments() -> None:
    with pytest.raises(InvalidArgument):
        encode_append_records("q", MAX_U64, [b"a", b"b"])


# -- decoding damage -----------------------------------------------------------


def assert_undecodable(data: bytes | memoryview) -> None:
    with pytest.raises(RecordDecodeError) as info:
        decode_record(data)
    offset = info.value.offset
    assert offset is not None
    assert 0 <= offset <= max(len(data), 11)


@pytest.mark.parametrize("name", ["", "q", "é日🎉", "a" * 300, "日" * 21845])
@pytest.mark.parametrize("position", [0, 12345, MAX_U64])
def test_every_truncation_of_a_header_only_record_is_a_decode_error(name: str, position: int) -> None:
    for _, record in simple_records(name, position):
        encoded = memoryview(encode_record(record))
        for cut in range(len(encoded)):
            assert_undecodable(encoded[:cut])


@pytest.mark.parametrize("name", ["", "q", "é日🎉"])
def test_append_records_cut_inside_an_entry_is_a_decode_error_and_cut_between_entries_a_shorter_batch(
    name: str,
) -> None:
    items = ((7, b""), (8, b"x"), (9, bytes(range(40))), (MAX_U64, b"\xff" * 13), (0, b""))
    encoded = encode_record(AppendRecordsRecord(name, 7, items))
    name_end = 11 + len(name.encode("utf-8"))
    boundaries = {name_end: 0}
    offset = name_end
    for index, (_, payload) in enumerate(items):
        offset += 12 + len(payload)
        boundaries[offset] = index + 1
    assert offset == len(encoded)
    for cut in range(len(encoded) + 1):
        if cut in boundaries:
            assert decode_record(encoded[:cut]) == AppendRecordsRecord(name, 7, items[: boundaries[cut]])
        else:
            assert_undecodable(encoded[:cut])


def test_append_records_cut_ten_or_eleven_bytes_into_an_entry_header_is_a_decode_error() -> None:
    encoded = encode_record(AppendRecordsRecord("q", 0, ((0, b"abc"),)))
    name_end = 12
    for into in (10, 11):
        assert_undecodable(encoded[: name_end + into])


def test_append_records_entry_length_larger_than_the_rest_is_a_decode_error() -> None:
    body = struct.pack("<QI", 0, 5) + b"abcd"
    assert_undecodable(expected_header(APPEND_RECORDS, 0, "q") + body)
    huge = struct.pack("<QI", 0, 2**32 - 1) + b"abcd"
    assert_undecodable(expected_header(APPEND_RECORDS, 0, "q") + huge)


@pytest.mark.parametrize("record_type", [TRUNCATE, RECORD_POSITION, DELETE_QUEUE])
def test_header_only_records_with_trailing_bytes_are_decode_errors(record_type: int) -> None:
    assert_undecodable(expected_header(record_type, 3, "q") + b"\x00")
    assert_undecodable(expected_header(record_type, 3, "q") + b"extra")


INVALID_UTF8_NAMES = (
    b"\xff",
    b"\x80",
    b"\xc3",  # truncated two-byte sequence
    b"abc\xe6\x97",  # truncated three-byte sequence at the end
    b"\xc0\xaf",  # overlong
    b"\xed\xa0\x80",  # surrogate
    b"\xf4\x90\x80\x80",  # beyond U+10FFFF
    b"a\xf5b",
)


def record_with_raw_name(record_type: int, raw_name: bytes, body: bytes = b"") -> bytes:
    return struct.pack("<BQH", record_type, 5, len(raw_name)) + raw_name + body


@pytest.mark.parametrize("raw_name", INVALID_UTF8_NAMES)
@pytest.mark.parametrize("record_type", [TRUNCATE, RECORD_POSITION, DELETE_QUEUE, APPEND_RECORDS])
def test_names_that_are_not_utf8_are_decode_errors(record_type: int, raw_name: bytes) -> None:
    assert_undecodable(record_with_raw_name(record_type, raw_name))
    if record_type == APPEND_RECORDS:
        assert_undecodable(record_with_raw_name(record_type, raw_name, struct.pack("<QI", 5, 1) + b"x"))


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@given(raw_name=st.binary(min_size=1, max_size=30).filter(lambda b: not _is_utf8(b)), record_type=st.integers(1, 4))
def test_any_non_utf8_name_is_a_decode_error(raw_name: bytes, record_type: int) -> None:
    assert_undecodable(record_with_raw_name(record_type, raw_name))


@pytest.mark.parametrize("record_type", [0, 5, 6, 16, 127, 128, 255])
def test_unknown_record_types_are_decode_errors(record_type: int) -> None:
    assert_undecodable(record_with_raw_name(record_type, b"q"))
    assert_undecodable(record_with_raw_name(record_type, b"q", struct.pack("<QI", 5, 1) + b"x"))


@given(
    record_type=st.integers(0, 255).filter(lambda t: t not in (1, 2, 3, 4)),
    name=names,
    body=st.binary(max_size=30),
)
def test_any_unknown_record_type_is_a_decode_error(record_type: int, name: str, body: bytes) -> None:
    raw = name.encode("utf-8")
    assert_undecodable(struct.pack("<BQH", record_type, 0, len(raw)) + raw + body)


@given(
    record=st.one_of(
        st.builds(TruncateRecord, names, positions),
        st.builds(RecordPositionRecord, names, positions),
        st.builds(DeleteQueueRecord, names, positions),
        st.builds(AppendRecordsRecord, st.text(max_size=10), positions, entries),
    ),
    data=st.data(),
)
def test_damaged_records_decode_to_a_record_or_a_decode_error_and_nothing_else(
    record: MultiplexedRecord, data: st.DataObject
) -> None:
    encoded = bytearray(encode_record(record))
    if len(encoded) > 100_000:
        encoded = encoded[:100_000]
    index = data.draw(st.integers(0, len(encoded) - 1))
    encoded[index] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(0, len(encoded)))
    try:
        decoded = decode_record(bytes(encoded[:cut]))
    except RecordDecodeError:
        return
    assert encode_record(decoded) == bytes(encoded[:cut])


# -- checksums -----------------------------------------------------------------


def bitwise_reflected_crc32(data: bytes, polynomial: int) -> int:
    """Textbook reflected CRC-32 (init and final xor 0xFFFFFFFF), one bit at a time."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (polynomial if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


CRC32_POLYNOMIAL = 0xEDB88320
CRC32C_POLYNOMIAL = 0x82F63B78


def test_reference_crc_functions_are_the_named_standards() -> None:
    # The catalogued check values of CRC-32/ISO-HDLC and CRC-32/ISCSI.
    assert zlib.crc32(b"123456789") == 0xCBF43926
    assert crc32c.crc32c(b"123456789") == 0xE3069283
    assert bitwise_reflected_crc32(b"123456789", CRC32_POLYNOMIAL) == 0xCBF43926
    assert bitwise_reflected_crc32(b"123456789", CRC32C_POLYNOMIAL) == 0xE3069283


def expected_checksum(profile: ChecksumProfile, frame_type: int, payload: bytes) -> int:
    data = bytes([frame_type]) + payload
    if profile is ChecksumProfile.CRC32:
        return zlib.crc32(data)
    return int(crc32c.crc32c(data))


KNOWN_PAYLOADS = (
    b"",
    b"\x00",
    b"123456789",
    bytes(range(256)),
    bytes(32761),
    random.Random(11).randbytes(70_000),
)


@pytest.mark.parametrize("profile", list(ChecksumProfile))
@pytest.mark.parametrize("frame_type", [1, 2, 3, 4])
@pytest.mark.parametrize("payload", KNOWN_PAYLOADS, ids=lambda p: f"{len(p)}B")
def test_frame_checksum_is_the_crc_of_the_type_byte_then_the_payload(
    profile: ChecksumProfile, frame_type: int, payload: bytes
) -> None:
    expected = expected_checksum(profile, frame_type, payload)
    assert frame_checksum(profile, frame_type, payload) == expected
    assert frame_checksum(profile, frame_type, memoryview(payload)) == expected
    if len(payload) <= 256:
        polynomial = CRC32_POLYNOMIAL if profile is ChecksumProfile.CRC32 else CRC32C_POLYNOMIAL
        assert bitwise_reflected_crc32(bytes([frame_type]) + payload, polynomial) == expected


def test_zero_length_frame_checksums_are_the_crc_of_the_type_byte_alone() -> None:
    for frame_type in (1, 2, 3, 4):
        byte = bytes([frame_type])
        assert frame_checksum(ChecksumProfile.CRC32, frame_type, b"") == bitwise_reflected_crc32(byte, CRC32_POLYNOMIAL)
        assert frame_checksum(ChecksumProfile.CRC32C, frame_type, b"") == bitwise_reflected_crc32(
            byte, CRC32C_POLYNOMIAL
        )


def test_the_two_profiles_give_different_checksums() -> None:
    for frame_type in (1, 2, 3, 4):
        assert frame_checksum(ChecksumProfile.CRC32, frame_type, b"abc") != frame_checksum(
            ChecksumProfile.CRC32C, frame_type, b"abc"
        )


def test_checksum_profile_parses_its_names_and_rejects_others() -> None:
    assert ChecksumProfile.parse("crc32") is ChecksumProfile.CRC32
    assert ChecksumProfile.parse("crc32c") is ChecksumProfile.CRC32C
    assert ChecksumProfile.parse(ChecksumProfile.CRC32C) is ChecksumProfile.CRC32C
    for bad in ("CRC32", "crc64", "", "crc32 "):
        with pytest.raises(InvalidArgument):
            ChecksumProfile.parse(bad)
