"""Deliberately wrong adapters: the reference with one planted bug each.

Run as ``python tests/wrong_adapters.py BUG``; it serves the adapter protocol
like ``python -m mrecordlog.adapter``. The conformance tests point the oracle
at each and expect a failure with a short reproducer.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import mrecordlog._framing as framing
import mrecordlog.adapter as adapter_module
import mrecordlog.log as log_module
from mrecordlog import AppendOutcome, ChecksumProfile, MultiRecordLog
from mrecordlog._codec import BLOCK_NUM_BYTES, FRAME_HEADER_NUM_BYTES
from mrecordlog._wal import RawRecord, WalReader, list_wal_files
from mrecordlog.adapter import ReferenceLog, serve
from mrecordlog.inspection import inspect_log
from mrecordlog.oracle.protocol import LogFactory


def ignores_truncate() -> None:
    def truncate(self: ReferenceLog, queue: str, position: int) -> int:
        return 0

    ReferenceLog.truncate = truncate  # type: ignore[method-assign]


def off_by_one_idempotence() -> None:
    original = MultiRecordLog.append_records

    def append_records(
        self: MultiRecordLog,
        queue: str,
        payloads: Iterable[bytes | bytearray | memoryview],
        *,
        position: int | None = None,
    ) -> AppendOutcome:
        if position is not None and self.queue_exists(queue) and position == self.next_position(queue):
            return AppendOutcome(None, 0)
        return original(self, queue, payloads, position=position)

    MultiRecordLog.append_records = append_records  # type: ignore[method-assign]


def drops_last_frame_on_reopen() -> None:
    original = adapter_module.reference_factory

    def reference_factory(recovery: str = "point_in_time") -> LogFactory:
        open_log = original(recovery)

        def open_losing_the_last_record(directory: str, file_num_bytes: int | None, checksum: str | None) -> Any:
            _zero_last_record(directory)
            return open_log(directory, file_num_bytes, checksum)

        return open_losing_the_last_record

    adapter_module.reference_factory = reference_factory


def _zero_last_record(directory: str) -> None:
    from mrecordlog._storage import OsStorage

    if not os.path.isdir(directory):
        return
    files = list_wal_files(OsStorage(), directory)
    if not files:
        return
    size = os.path.getsize(os.path.join(directory, f"wal-{files[0]:020d}"))
    records = [item for item in WalReader(OsStorage(), directory, files, size) if isinstance(item, RawRecord)]
    report = inspect_log(directory).report
    if not records or report.resume_file is None or report.resume_offset is None:
        return
    last = records[-1].start
    if report.resume_file != f"wal-{last.file_number:020d}":
        return
    with open(os.path.join(directory, report.resume_file), "r+b") as handle:
        handle.seek(last.offset)
        handle.write(bytes(report.resume_offset - last.offset))


def returns_payloads_of_skipped_frames() -> None:
    original = framing.FrameDecoder.next_event

    def next_event(self: framing.FrameDecoder) -> framing.FrameEvent:
        event = original(self)
        if isinstance(event, framing.DamagedFrame) and event.kind is framing.DamageKind.CHECKSUM_MISMATCH:
            block = self._view
            frame_type = block[event.offset + 6]
            return framing.Frame(
                frame_type, block[event.offset + 7 : event.offset + event.skipped_num_bytes], event.offset
            )
        return event

    framing.FrameDecoder.next_event = next_event  # type: ignore[method-assign]


def writes_different_padding() -> None:
    original = framing.frame_record

    def frame_record(record: bytes, block_offset: int, profile: ChecksumProfile) -> bytes:
        framed = original(record, block_offset, profile)
        left = BLOCK_NUM_BYTES - block_offset
        if left < FRAME_HEADER_NUM_BYTES:
            return b"\xff" * left + framed[left:]  # padding that is not zeros
        return framed

    setattr(log_module, "frame_record", frame_record)  # noqa: B010 - the name is not re-exported


BUGS = {
    "ignores-truncate": ignores_truncate,
    "off-by-one-idempotence": off_by_one_idempotence,
    "drops-last-frame-on-reopen": drops_last_frame_on_reopen,
    "returns-payloads-of-skipped-frames": returns_payloads_of_skipped_frames,
    "writes-different-padding": writes_different_padding,
}


def main(argv: Sequence[str]) -> int:
    BUGS[argv[0]]()
    serve(adapter_module.reference_session(), sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
