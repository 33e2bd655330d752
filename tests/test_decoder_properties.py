"""The decoders take any bytes without an exception outside their contract,
written to run under symbolic execution too.

Under the default Hypothesis backend they are ordinary property tests. Under
the ``symbolic`` profile (``HYPOTHESIS_PROFILE=symbolic``, which needs the
``hypothesis-crosshair`` package: ``python3 tasks.py symbolic``) CrossHair
explores the paths of the decoders for inputs up to the sizes below, as
ShardStore proved its deserializers panic-free:

- ``decode_record``: any bytes give a record that encodes back to the same
  bytes, or ``RecordDecodeError``, nothing else (no ``IndexError``,
  ``struct.error``, ``UnicodeDecodeError``, ``OverflowError``...);
- ``FrameDecoder``: a block starting with any bytes (zeros after them) gives
  frame events whose offsets and sizes stay inside the block, and frames whose
  checksum matches;
- ``RecordAssembler``: any sequence of frame types gives records only from a
  Full frame or a complete First/Middle*/Last chain.
"""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given

from mrecordlog._codec import (
    BLOCK_NUM_BYTES,
    FRAME_HEADER_NUM_BYTES,
    ChecksumProfile,
    decode_record,
    encode_record,
    frame_checksum,
)
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
from mrecordlog.errors import RecordDecodeError

RECORD_BYTES = 48  # room for every record type's header, a short name and an entry
BLOCK_PREFIX_BYTES = 40  # a few frame headers and payloads


@given(data=st.binary(max_size=RECORD_BYTES))
def test_any_bytes_decode_to_a_record_that_encodes_back_or_to_a_decode_error(data: bytes) -> None:
    try:
        record = decode_record(data)
    except RecordDecodeError:
        return
    assert encode_record(record) == data


@given(
    prefix=st.binary(max_size=BLOCK_PREFIX_BYTES),
    profile=st.sampled_from([None, *ChecksumProfile]),
)
def test_any_block_decodes_to_frame_events_inside_the_block(prefix: bytes, profile: ChecksumProfile | None) -> None:
    block = prefix + bytes(BLOCK_NUM_BYTES - len(prefix))
    decoder = FrameDecoder(profile)
    decoder.feed_block(block)
    last = -1
    for _ in range(BLOCK_NUM_BYTES):
        event = decoder.next_event()
        if isinstance(event, NeedBlock | EndOfLog):
            break
        assert event.offset > last, "events go forward"
        last = event.offset
        assert 0 <= event.offset <= BLOCK_NUM_BYTES - FRAME_HEADER_NUM_BYTES
        if isinstance(event, DamagedFrame):
            assert 0 < event.skipped_num_bytes <= BLOCK_NUM_BYTES - event.offset
            continue
        assert isinstance(event, Frame)
        end = event.offset + FRAME_HEADER_NUM_BYTES + len(event.payload)
        assert end <= BLOCK_NUM_BYTES
        checksum = int.from_bytes(block[event.offset : event.offset + 4], "little")
        used = decoder.profile
        assert used is not None or profile is None
        assert any(frame_checksum(p, event.frame_type, event.payload) == checksum for p in ChecksumProfile)
    else:
        raise AssertionError("the decoder never asked for the next block")
    assert 0 <= decoder.resume_offset <= BLOCK_NUM_BYTES


@given(frame_types=st.lists(st.integers(1, 4), max_size=8))
def test_any_frame_sequence_assembles_only_full_frames_and_complete_chains(frame_types: list[int]) -> None:
    assembler = RecordAssembler()
    chain: list[int] = []  # the frame types of the record being assembled
    for index, frame_type in enumerate(frame_types):
        payload = memoryview(bytes([index]))
        _, outcome = assembler.feed_frame(frame_type, payload)
        if frame_type in (1, 2):  # Full, First: a new record
            chain = [frame_type]
        elif chain and chain[0] == 2:
            chain.append(frame_type)
        else:
            assert isinstance(outcome, OrphanFrame)
            continue
        if isinstance(outcome, AssembledRecord):
            assert chain == [1] or (chain[0] == 2 and chain[-1] == 4 and set(chain[1:-1]) <= {3})
            assert len(outcome.data) == len(chain)
            chain = []
        else:
            assert outcome is None
            assert chain != [1]
