"""Replay: from the WAL's records to the in-memory queues, with a report.

The replay rules are mrecordlog 0.5's (``spec/SEMANTICS.md``, Replay): frames
and records that are damaged are skipped and reported, a position record
(re)sets an empty queue, an append to an unknown queue creates it at the
append's position, and an append below its queue's next position makes the
whole open fail, since no order of the log's own operations could produce it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mrecordlog._codec import (
    AppendRecordsRecord,
    ChecksumProfile,
    DeleteQueueRecord,
    RecordPositionRecord,
    TruncateRecord,
    decode_record,
)
from mrecordlog._queues import Queues
from mrecordlog._storage import Storage
from mrecordlog._wal import Location, RawRecord, ReadDamage, WalReader, wal_file_name
from mrecordlog.errors import CorruptionError, RecordDecodeError


@dataclass(frozen=True, slots=True)
class Damage:
    """Bytes that recovery could not use, and why."""

    kind: str  # checksum_mismatch, invalid_frame_type, length_past_block,
    # partial_record_dropped, orphan_frame, undecodable_record
    file: str
    offset: int
    num_bytes: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What opening (or inspecting) a log found."""

    files: tuple[str, ...]
    checksum_profile: str | None  # detected from the first valid frame; None if there is none
    profile_detected_in: str | None  # "wal-... at offset N"
    records_replayed: int
    damages: tuple[Damage, ...]
    # Middle/Last frames at the start of the log: the end of a record whose
    # beginning was in a file that GC deleted. Expected, not damage.
    collected_tail_num_bytes: int
    # Where the log ends: the next write goes there.
    resume_file: str | None
    resume_offset: int | None
    # True when an all-zero frame header ended the log, False when the files ran out.
    ended_at_end_marker: bool

    @property
    def damaged_num_bytes(self) -> int:
        return sum(damage.num_bytes for damage in self.damages)

    def describe(self) -> str:
        lines = [
            f"files: {', '.join(self.files) or '(none)'}",
            f"checksum profile: {self.checksum_profile or '(undetermined: no valid frame)'}",
            f"records replayed: {self.records_replayed}",
            f"damage: {len(self.damages)} place(s), {self.damaged_num_bytes} byte(s)",
        ]
        if self.collected_tail_num_bytes:
            lines.append(
                f"skipped {self.collected_tail_num_bytes} byte(s) at the start: the end of a record "
                "whose beginning was in a collected file"
            )
        lines.extend(
            f"  {d.kind} in {d.file} at offset {d.offset} ({d.num_bytes} bytes){': ' + d.detail if d.detail else ''}"
            for d in self.damages
        )
        return "\n".join(lines)


@dataclass(slots=True)
class ReplayResult:
    queues: Queues
    resume: Location | None
    profile: ChecksumProfile | None
    profile_detected_at: Location | None
    report: RecoveryReport


def replay(storage: Storage, directory: str, file_numbers: list[int]) -> ReplayResult:
    """Read every WAL file of ``directory`` and rebuild the queues.

    Reads only; the caller decides whether to write anything afterwards.
    """
    queues = Queues()
    reader = WalReader(storage, directory, file_numbers)
    damages: list[Damage] = []
    records_replayed = 0
    collected_tail_num_bytes = 0
    for item in reader:
        if isinstance(item, ReadDamage) and item.kind == "collected_record_tail":
            collected_tail_num_bytes += item.num_bytes
            continue
        if isinstance(item, ReadDamage):
            damages.append(
                Damage(item.kind, wal_file_name(item.location.file_number), item.location.offset, item.num_bytes)
            )
            continue
        try:
            record = decode_record(item.data)
        except RecordDecodeError as exc:
            damages.append(
                Damage(
                    "undecodable_record",
                    wal_file_name(item.start.file_number),
                    item.start.offset,
                    len(item.data),
                    exc.reason,
                )
            )
            continue
        _apply(queues, record, item)
        records_replayed += 1
    resume = reader.resume
    detected_at = reader.profile_detected_at
    report = RecoveryReport(
        files=tuple(wal_file_name(n) for n in file_numbers),
        checksum_profile=reader.profile.value if reader.profile is not None else None,
        profile_detected_in=detected_at.describe() if detected_at is not None else None,
        records_replayed=records_replayed,
        damages=tuple(damages),
        collected_tail_num_bytes=collected_tail_num_bytes,
        resume_file=wal_file_name(resume.file_number) if resume is not None else None,
        resume_offset=resume.offset if resume is not None else None,
        ended_at_end_marker=reader.reached_end_marker,
    )
    return ReplayResult(queues, resume, reader.profile, detected_at, report)


def _apply(
    queues: Queues,
    record: AppendRecordsRecord | TruncateRecord | RecordPositionRecord | DeleteQueueRecord,
    raw: RawRecord,
) -> None:
    queue = record.queue
    if isinstance(record, AppendRecordsRecord):
        if queue not in queues:
            # The queue's position record was in a file that GC deleted.
            queues.create(queue, record.position)
        for position, payload in record.entries:
            if not queues.append_replayed(queue, raw.attributed_file, position, payload):
                raise CorruptionError(
                    f"record at position {position} of queue {queue!r} cannot follow the queue's "
                    f"next position {queues.next_position(queue)}",
                    file=wal_file_name(raw.start.file_number),
                    offset=raw.start.offset,
                    queue=queue,
                    position=position,
                )
    elif isinstance(record, TruncateRecord):
        if queue in queues:
            queues.apply_truncate(queues.plan_truncate(queue, record.position))
    elif isinstance(record, RecordPositionRecord):
        if queue not in queues:
            queues.create(queue, record.position)
        elif queues.num_records(queue) or queues.next_position(queue) != record.position:
            queues.reset(queue, record.position)
    elif queue in queues:
        queues.delete(queue)
