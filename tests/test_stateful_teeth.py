"""Evidence that the state machine has teeth.

Each case plants one plausible bug into the core (by patching one function for
the duration of the test) and checks that the core-versus-model state machine
finds it, with a shrunk counterexample of a few steps. The number of examples
run until the first failure and the number of steps of each shrunk
counterexample are printed (run with ``-s`` to see them).

The hostile-input cases (issue 8) each revert one fix: they must be found by
the generators (``foreign_payloads``, ``never_valid_arguments``, the closing
iterator, the fork rule), never by a hand-written example. A durability bug
(an fsync that does not happen) is invisible on a file system that does not
crash: those cases run the crash machine.
"""

from __future__ import annotations

import bisect
import dataclasses
import os
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import crc32c
import pytest
from hypothesis import Verbosity, settings
from hypothesis.stateful import run_state_machine_as_test

import mrecordlog._arguments as arguments_module
import mrecordlog._framing as framing
import mrecordlog._queues as queues_module
import mrecordlog.log as log_module
from mrecordlog import AppendOutcome, ChecksumProfile, MRecordLogError, MultiRecordLog, _codec
from mrecordlog._queues import Queues, TruncatePlan
from mrecordlog._storage import OsDirectoryLock
from mrecordlog._wal import WalWriter
from mrecordlog.outcomes import Record
from tests.crash_machine import CrashingLogVersusModel
from tests.stateful_machine import LogVersusModel

pytestmark = pytest.mark.hunt

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

    def collect(self: MultiRecordLog, live_after: Any, empty_after: Callable[[], Sequence[tuple[str, int]]]) -> int:
        return original(self, live_after, list)

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

    def range_(
        self: Queues,
        queue: str,
        start: int | None,
        end: int | None,
        check_open: Callable[[], None] | None = None,
        lock: Any = None,
    ) -> Iterable[Record]:
        return original(self, queue, start, None if end is None else end + 1, check_open, lock)

    mp.setattr(Queues, "range", range_)


def _writer_resumes_at_the_start_of_the_last_block(mp: pytest.MonkeyPatch) -> None:
    original = WalWriter.__init__

    def init(self: WalWriter, *args: Any) -> None:
        *rest, offset = args
        original(self, *rest, offset - offset % 32768)  # type: ignore[call-arg]

    mp.setattr(WalWriter, "__init__", init)


# -- hostile input (issue 8): each plant reverts one fix ----------------------------


def _payload_written_as_the_callers_object(mp: pytest.MonkeyPatch) -> None:
    original = arguments_module.payload

    def payload(value: object, argument: str = "payload", queue: str | None = None, *, index: int | None = None) -> Any:
        original(value, argument, queue, index=index)  # the refusals stay
        return value  # but no flat view: the entry length is len(value), the bytes its buffer

    mp.setattr(arguments_module, "payload", payload)


def _persist_action_spelling_not_parsed(mp: pytest.MonkeyPatch) -> None:
    original = arguments_module.persist_action

    def persist_action(value: object, argument: str = "action") -> Any:
        original(value, argument)  # the refusals stay
        return value  # but "flush_and_fsync" stays a str, and the log compares with `is`

    mp.setattr(arguments_module, "persist_action", persist_action)


def _persist_action_not_validated(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(arguments_module, "persist_action", lambda value, argument="action": value)


def _queue_name_not_validated(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(arguments_module, "queue_name", lambda queue, argument="queue": queue)


def _range_bounds_not_validated(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(arguments_module, "range_bound", lambda value, argument, queue=None: value)


class _ConsumedLater(Sequence[Any]):
    """The caller's iterable, consumed only when the log first looks at it."""

    def __init__(self, consume: Callable[[], Sequence[Any]]) -> None:
        self._consume = consume
        self._items: Sequence[Any] | None = None

    def _get(self) -> Sequence[Any]:
        if self._items is None:
            self._items = self._consume()
        return self._items

    def __len__(self) -> int:
        return len(self._get())

    def __getitem__(self, index: Any) -> Any:
        return self._get()[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._get())


def _payloads_consumed_after_the_open_check(mp: pytest.MonkeyPatch) -> None:
    original = arguments_module.batch

    def batch(payloads: object, queue: str | None = None) -> Sequence[Any]:
        if isinstance(payloads, (list, tuple)):
            return original(payloads, queue)
        return _ConsumedLater(lambda: original(payloads, queue))

    mp.setattr(arguments_module, "batch", batch)


def _range_iterator_ignores_close(mp: pytest.MonkeyPatch) -> None:
    original = Queues.range

    def range_(
        self: Queues, queue: str, start: int | None, end: int | None, check_open: Any = None, lock: Any = None
    ) -> Any:
        return original(self, queue, start, end, None, lock)

    mp.setattr(Queues, "range", range_)


def _forked_child_keeps_the_directory_lock(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(OsDirectoryLock, "forget_in_forked_child", lambda self: None)


def _forked_child_may_write(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(MultiRecordLog, "_stop_in_forked_child", lambda self: None)


# -- limits (issue 13, item 1) -------------------------------------------------------


def _memory_limit_off_by_one(mp: pytest.MonkeyPatch) -> None:
    original = MultiRecordLog._check_limits

    def check(self: MultiRecordLog, operation: str, queue: str, memory_needed: int, framed_num_bytes: int) -> None:
        original(self, operation, queue, memory_needed + 1, framed_num_bytes)  # refuses at used + need == limit

    mp.setattr(MultiRecordLog, "_check_limits", check)


def _disk_need_ignores_new_files(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(log_module, "disk_needed", lambda writer, framed_num_bytes: 0)


def _limits_checked_after_the_write(mp: pytest.MonkeyPatch) -> None:
    original_check = MultiRecordLog._check_limits
    original_mutating = MultiRecordLog._mutating
    pending: list[tuple[MultiRecordLog, str, str, int, int]] = []

    def check(self: MultiRecordLog, operation: str, queue: str, memory_needed: int, framed_num_bytes: int) -> None:
        pending.append((self, operation, queue, memory_needed, framed_num_bytes))

    def mutating(self: MultiRecordLog, action: Callable[[], int | None]) -> int:
        written = original_mutating(self, action)
        while pending:
            log, operation, queue, memory_needed, framed_num_bytes = pending.pop()
            original_check(log, operation, queue, memory_needed, framed_num_bytes)
        return written

    mp.setattr(MultiRecordLog, "_check_limits", check)
    mp.setattr(MultiRecordLog, "_mutating", mutating)


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
    # hostile input
    "payload written as the caller's object": _payload_written_as_the_callers_object,
    "persist action not validated": _persist_action_not_validated,
    "queue name not validated": _queue_name_not_validated,
    "range bounds not validated": _range_bounds_not_validated,
    "payloads consumed after the open check": _payloads_consumed_after_the_open_check,
    "range iterator ignores close": _range_iterator_ignores_close,
    # limits
    "memory limit off by one": _memory_limit_off_by_one,
    "disk need ignores new files": _disk_need_ignores_new_files,
    "limits checked after the write": _limits_checked_after_the_write,
}
if hasattr(os, "fork"):
    BUGS["forked child keeps the directory lock"] = _forked_child_keeps_the_directory_lock
    BUGS["forked child may write"] = _forked_child_may_write

# Bugs only a crash shows: found by the crash machine.
CRASH_BUGS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "persist action spelling not parsed": _persist_action_spelling_not_parsed,
}


@dataclasses.dataclass
class Found:
    examples: int  # examples run until the first failure, that one included
    steps: int  # steps of the shrunk failure, open included


# A disagreement fails an assertion; a log the core cannot reopen raises one
# of its errors. Anything else is a fault of the test itself and propagates.
_FAILURES = (AssertionError, MRecordLogError)


def run_until_found(machine: type[LogVersusModel]) -> Found:
    """Run the machine until it fails and shrink the failure."""
    lengths: list[int] = []
    first_failure: list[int] = []

    class Probe(machine):  # type: ignore[valid-type,misc]
        def teardown(self) -> None:
            lengths.append(len(self.steps))
            # Teardown runs in a finally: the exception ending the run, if any, is current.
            if not first_failure and isinstance(sys.exc_info()[1], _FAILURES):
                first_failure.append(len(lengths))
            super().teardown()

    with pytest.raises(_FAILURES):
        run_state_machine_as_test(Probe, settings=settings(settings.get_profile("teeth"), verbosity=Verbosity.quiet))
    return Found(first_failure[0] if first_failure else -1, lengths[-1])


def _check_found(plant: Callable[[pytest.MonkeyPatch], None], machine: type[LogVersusModel]) -> None:
    with pytest.MonkeyPatch.context() as mp:
        plant(mp)
        found = run_until_found(machine)
    print(
        f"planted bug {plant.__name__.strip('_')!r}: found after {found.examples} example(s) "
        f"by {machine.__name__}, shrunk to {found.steps} steps (open included)"
    )
    assert found.steps <= MAX_SHRUNK_STEPS


@pytest.mark.parametrize("plant", BUGS.values(), ids=list(BUGS))
def test_the_state_machine_finds_a_planted_bug(plant: Callable[[pytest.MonkeyPatch], None]) -> None:
    _check_found(plant, LogVersusModel)


@pytest.mark.parametrize("plant", CRASH_BUGS.values(), ids=list(CRASH_BUGS))
def test_the_crash_machine_finds_a_planted_durability_bug(plant: Callable[[pytest.MonkeyPatch], None]) -> None:
    _check_found(plant, CrashingLogVersusModel)
