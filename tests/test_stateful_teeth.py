"""Evidence that the state machine has teeth.

Each case plants one plausible bug into the core (by patching one function for
the duration of the test) and checks that the core-versus-model state machine
finds it, with a shrunk counterexample of a few steps. The number of steps of
each shrunk counterexample is printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import bisect
import dataclasses
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import crc32c
import pytest
from hypothesis import Verbosity, settings
from hypothesis.stateful import run_state_machine_as_test

import mrecordlog._framing as framing
import mrecordlog._queues as queues_module
import mrecordlog.log as log_module
from mrecordlog import AppendOutcome, ChecksumProfile, MRecordLogError, MultiRecordLog, _codec
from mrecordlog._queues import Queues, TruncatePlan
from mrecordlog._wal import WalWriter
from mrecordlog.outcomes import Record
from tests.stateful_machine import LogVersusModel

MAX_SHRUNK_STEPS = 12


def _truncate_keeps_the_record_at_the_position(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(queues_module, "bisect_right", bisect.bisect_left)


def _idempotent_retry_at_the_next_position(mp: pytest.MonkeyPatch) -> None:
    original = MultiRecordLog.append_records

    def append_records(
        self: MultiRecordLog, queue: str, payloads: Iterable[bytes], *, position: int | None = None
    ) -> AppendOutcome:
        if position is not None and self.queue_exists(queue) and position == self.next_position(queue):
            return AppendOutcome(None, 0)
        return original(self, queue, payloads, position=position)

    mp.setattr(MultiRecordLog, "append_records", append_records)


def _past_checked_before_idempotence(mp: pytest.MonkeyPatch) -> None:
    original = MultiRecordLog.append_records

    def append_records(
        self: MultiRecordLog, queue: str, payloads: Iterable[bytes], *, position: int | None = None
    ) -> AppendOutcome:
        if position is not None and self.queue_exists(queue) and position + 1 == self.next_position(queue):
            return original(self, queue, payloads, position=position - 1) if position else AppendOutcome(None, 0)
        return original(self, queue, payloads, position=position)

    mp.setattr(MultiRecordLog, "append_records", append_records)


def _batch_written_partly(mp: pytest.MonkeyPatch) -> None:
    original = _codec.encode_append_records

    def encode(queue: str, position: int, payloads: Sequence[bytes]) -> bytes:
        return original(queue, position, payloads[:1])

    mp.setattr(log_module, "encode_append_records", encode)


def _gc_deletes_files_with_live_records(mp: pytest.MonkeyPatch) -> None:
    original = WalWriter.collectable_files

    def collectable(self: WalWriter, is_live: Callable[[int], bool], keep_from: int | None = None) -> list[int]:
        return original(self, lambda file_number: False, keep_from)

    mp.setattr(WalWriter, "collectable_files", collectable)


def _padding_written_when_exactly_seven_bytes_are_left(mp: pytest.MonkeyPatch) -> None:
    original = framing.frame_record

    def frame_record(record: bytes, block_offset: int, profile: ChecksumProfile) -> bytes:
        if block_offset == 32768 - 7:
            return bytes(7) + original(record, 0, profile)
        return original(record, block_offset, profile)

    mp.setattr(log_module, "frame_record", frame_record)


def _no_position_records_before_gc(mp: pytest.MonkeyPatch) -> None:
    original = MultiRecordLog._collect_garbage

    def collect(self: MultiRecordLog, live_after: Any, empty_after: Sequence[tuple[str, int]]) -> int:
        return original(self, live_after, [])

    mp.setattr(MultiRecordLog, "_collect_garbage", collect)


def _checksum_over_the_payload_only(mp: pytest.MonkeyPatch) -> None:
    def checksum(profile: ChecksumProfile, frame_type: int, payload: bytes | memoryview) -> int:
        if profile is ChecksumProfile.CRC32:
            return zlib.crc32(payload)
        return int(crc32c.crc32c(payload))

    mp.setattr(framing, "frame_checksum", checksum)


def _truncate_beyond_keeps_the_next_position(mp: pytest.MonkeyPatch) -> None:
    original = Queues.plan_truncate

    def plan_truncate(self: Queues, queue: str, position: int) -> TruncatePlan:
        plan = original(self, queue, position)
        return dataclasses.replace(plan, new_next_position=self.next_position(queue))

    mp.setattr(Queues, "plan_truncate", plan_truncate)


def _delete_queue_record_not_written(mp: pytest.MonkeyPatch) -> None:
    original = MultiRecordLog._write

    def write(self: MultiRecordLog, record: bytes) -> int:
        return 0 if record[0] == 3 else original(self, record)

    mp.setattr(MultiRecordLog, "_write", write)


def _skip_ahead_ignored(mp: pytest.MonkeyPatch) -> None:
    original = MultiRecordLog.append_records

    def append_records(
        self: MultiRecordLog, queue: str, payloads: Iterable[bytes], *, position: int | None = None
    ) -> AppendOutcome:
        if position is not None and self.queue_exists(queue) and position > self.next_position(queue):
            position = self.next_position(queue)
        return original(self, queue, payloads, position=position)

    mp.setattr(MultiRecordLog, "append_records", append_records)


def _range_end_inclusive(mp: pytest.MonkeyPatch) -> None:
    original = Queues.range

    def range_(self: Queues, queue: str, start: int | None, end: int | None) -> Iterable[Record]:
        return original(self, queue, start, None if end is None else end + 1)

    mp.setattr(Queues, "range", range_)


def _writer_resumes_at_the_start_of_the_last_block(mp: pytest.MonkeyPatch) -> None:
    original = WalWriter.__init__

    def init(self: WalWriter, *args: Any) -> None:
        *rest, offset = args
        original(self, *rest, offset - offset % 32768)  # type: ignore[call-arg]

    mp.setattr(WalWriter, "__init__", init)


BUGS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "truncate keeps the record at the position": _truncate_keeps_the_record_at_the_position,
    "idempotent retry at the next position": _idempotent_retry_at_the_next_position,
    "past checked before idempotence": _past_checked_before_idempotence,
    "batch written partly": _batch_written_partly,
    "gc deletes files with live records": _gc_deletes_files_with_live_records,
    "padding when exactly seven bytes are left": _padding_written_when_exactly_seven_bytes_are_left,
    "no position records before gc": _no_position_records_before_gc,
    "checksum over the payload only": _checksum_over_the_payload_only,
    "truncate beyond keeps the next position": _truncate_beyond_keeps_the_next_position,
    "delete_queue record not written": _delete_queue_record_not_written,
    "skip-ahead ignored": _skip_ahead_ignored,
    "range end inclusive": _range_end_inclusive,
    "writer resumes at the start of the last block": _writer_resumes_at_the_start_of_the_last_block,
}


def shrunk_failure_length(machine: type[LogVersusModel]) -> int:
    """Run the machine until it fails; the number of steps of the shrunk failure."""
    lengths: list[int] = []

    class Probe(machine):  # type: ignore[valid-type,misc]
        def teardown(self) -> None:
            lengths.append(len(self.steps))
            super().teardown()

    # A disagreement fails an assertion; a log the core cannot reopen raises one
    # of its errors. Anything else is a fault of the test itself and propagates.
    with pytest.raises((AssertionError, MRecordLogError)):
        run_state_machine_as_test(Probe, settings=settings(settings.get_profile("teeth"), verbosity=Verbosity.quiet))
    return lengths[-1]


@pytest.mark.parametrize("plant", BUGS.values(), ids=list(BUGS))
def test_the_state_machine_finds_a_planted_bug(plant: Callable[[pytest.MonkeyPatch], None]) -> None:
    with pytest.MonkeyPatch.context() as mp:
        plant(mp)
        steps = shrunk_failure_length(LogVersusModel)
    print(f"planted bug {plant.__name__.strip('_')!r}: shrunk to {steps} steps (open included)")
    assert steps <= MAX_SHRUNK_STEPS
