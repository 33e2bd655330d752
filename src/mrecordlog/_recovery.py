"""Replay and recovery modes: from the WAL's records to the in-memory queues.

Replay applies records with the rules of ``spec/SEMANTICS.md`` (a position
record (re)sets an empty queue, an append to an unknown queue creates it, ...).
What happens at damage depends on the recovery mode (``spec/DURABILITY.md``):

- ``point_in_time`` (default): replay stops at the first invalid frame or
  record; everything after it is discarded. The log is the state of a moment
  in its history, never one with a hole.
- ``strict``: like ``point_in_time`` for a torn tail (nothing valid follows
  the damage); any other corruption makes recovery fail with
  ``CorruptionError`` naming the file and offset.
- ``skip``: mrecordlog 0.5's behaviour: damaged frames and blocks are skipped,
  replay goes on.

This module only reads. Making the discarded bytes harmless (quarantine, then
zeroing) is ``_quarantine``'s job, done by a writable open.
"""

from __future__ import annotations

import enum
import operator
import os
from dataclasses import asdict, dataclass, field
from itertools import islice
from typing import Any

from mrecordlog._codec import (
    BLOCK_NUM_BYTES,
    MAX_U64,
    ChecksumProfile,
    PackedAppendRecords,
    PackedRecord,
    RecordPositionRecord,
    TruncateRecord,
    decode_record_packed,
)
from mrecordlog._framing import find_valid_frame
from mrecordlog._queues import Queues
from mrecordlog._storage import Storage
from mrecordlog._wal import Location, RawRecord, ReadDamage, WalReader, wal_file_name
from mrecordlog.errors import CorruptionError, InvalidArgument, RecordDecodeError


class RecoveryMode(enum.Enum):
    """What replay does at the first invalid frame or record (damage); given to
    ``open`` and ``inspect_log`` as a member or its value. The full contract is
    in ``spec/DURABILITY.md``, section 4.

    :cvar POINT_IN_TIME: the default (``"point_in_time"``): replay stops at the
        damage and everything after it is discarded (a writable ``open`` moves
        it to the quarantine). The log comes back as it was at one moment of
        its history, never with a hole; after a crash, that is a prefix of the
        operations issued holding every acknowledged one.
    :cvar STRICT: ``"strict"``: a torn tail (nothing valid after the damage) is
        handled as by ``POINT_IN_TIME``; any other damage (a valid frame after
        it, a gap in the file numbering, a record that cannot follow the state)
        makes ``open`` raise ``CorruptionError`` naming the file and offset,
        with nothing changed on disk.
    :cvar SKIP: ``"skip"``: mrecordlog 0.5's behaviour: the damaged frame (or
        the rest of its block, or of its file when later files follow) is
        skipped and replay goes on, so a queue can come back with a hole. A
        record that cannot follow the state still raises ``CorruptionError``.
    """

    POINT_IN_TIME = "point_in_time"
    STRICT = "strict"
    SKIP = "skip"

    @classmethod
    def parse(cls, value: object) -> RecoveryMode:
        """The mode ``value`` names: a ``RecoveryMode`` or its value
        (``"point_in_time"``, ``"strict"``, ``"skip"``); anything else raises
        ``InvalidArgument`` (in a compiled build too)."""
        if isinstance(value, RecoveryMode):
            return value
        try:
            return cls(value)
        except ValueError:
            raise InvalidArgument(f"unknown recovery mode {value!r} (expected point_in_time, strict or skip)") from None


@dataclass(frozen=True, slots=True)
class Damage:
    """Bytes that recovery could not use, and why.

    :ivar kind: why: ``checksum_mismatch``, ``invalid_frame_type``,
        ``length_past_block``, ``partial_record_dropped`` (a record whose frames
        did not all arrive), ``orphan_frame`` (a continuation frame with no
        start), ``undecodable_record``, ``inconsistent_record`` (a record that
        cannot follow the state), ``end_before_later_files`` (the log ends in a
        file that later files follow) or ``detached_file`` (files after a gap
        in the numbering).
    :ivar file: the name of the WAL file (``wal-...``) holding the bytes.
    :ivar offset: where they start in that file, in bytes.
    :ivar num_bytes: how many bytes (0 for ``detached_file`` and
        ``end_before_later_files``, which mark a place).
    :ivar detail: more about it, as text (the decoder's reason, say), or ``""``.
    """

    kind: str
    file: str
    offset: int
    num_bytes: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class QuarantinedBytes:
    """Bytes a writable open moved out of the log before writing to it.

    :ivar file: the name of the WAL file they came from.
    :ivar offset: where they started in it, in bytes (0 for a whole file).
    :ivar num_bytes: how many bytes: up to the last non-zero one, or the
        file's size for a whole file.
    :ivar stored_as: where they are now: a path relative to the log directory,
        such as ``quarantine/recovery-1/wal-00000000000000000000.from-55``; the
        copy of a range keeps its offsets from ``offset`` on.
    """

    file: str
    offset: int
    num_bytes: int
    stored_as: str


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What opening (or inspecting) a log found, and what it discarded.

    Places in the log are written ``"wal-... at offset N"`` (a file name and a
    byte offset in it).

    :ivar mode: the recovery mode's value: ``"point_in_time"``, ``"strict"`` or
        ``"skip"``.
    :ivar files: the names of the WAL files found, in order.
    :ivar checksum_profile: the checksum profile of the log's frames
        (``"crc32"`` or ``"crc32c"``), detected from the first valid frame;
        None when there is none.
    :ivar profile_detected_in: the place of that frame, or None.
    :ivar records_replayed: the WAL records applied (queue creations, appends,
        truncations, ...; an append of a batch is one record).
    :ivar damages: each place recovery could not use, in log order.
    :ivar collected_tail_num_bytes: bytes of continuation frames at the very
        start of the log: the end of a record whose beginning was in a file
        that garbage collection deleted. Expected, not damage.
    :ivar stopped_at: where ``point_in_time`` or ``strict`` stopped replay, or
        None if it read to the end.
    :ivar discarded_records: the complete, valid records after the stop point
        that were not replayed.
    :ivar queues_touched: the names of the queues those records belong to,
        sorted.
    :ivar detached_files: the names of the files after a gap in the numbering
        (a lost file), which were not replayed (``skip`` reads across the gap
        and lists none).
    :ivar resume_file: the name of the file the next write goes to, or None
        when there is no file.
    :ivar resume_offset: the offset in ``resume_file`` the next write goes to,
        or None.
    :ivar ended_at_end_marker: True when an all-zero frame header ended the
        log, False when the files ran out.
    :ivar quarantine_dir: where a writable ``open`` moved what it discarded,
        relative to the log directory (``quarantine/recovery-N``); None when it
        moved nothing, and always for ``inspect_log``.
    :ivar quarantined: what it moved there, each range or file as a
        ``QuarantinedBytes``.
    """

    mode: str
    files: tuple[str, ...]
    checksum_profile: str | None
    profile_detected_in: str | None
    records_replayed: int
    damages: tuple[Damage, ...]
    collected_tail_num_bytes: int
    stopped_at: str | None
    discarded_records: int
    queues_touched: tuple[str, ...]
    detached_files: tuple[str, ...]
    resume_file: str | None
    resume_offset: int | None
    ended_at_end_marker: bool
    quarantine_dir: str | None = None
    quarantined: tuple[QuarantinedBytes, ...] = field(default_factory=tuple)

    @property
    def damaged_num_bytes(self) -> int:
        """The bytes of all the damages (the sum of their ``num_bytes``)."""
        return sum(damage.num_bytes for damage in self.damages)

    @property
    def clean(self) -> bool:
        """Nothing was damaged, discarded or quarantined."""
        return not (self.damages or self.discarded_records or self.detached_files or self.quarantined)

    def to_json_value(self) -> dict[str, Any]:
        """The report as JSON values: a dict of the fields above, damages and
        quarantined ranges as dicts of theirs (the ``report.json`` of a
        quarantine, and the CLI's JSON)."""
        return asdict(self)

    def describe(self) -> str:
        """The report as text for a person, one fact a line: what
        ``mrecordlog dump --report`` prints."""
        lines = [
            f"recovery mode: {self.mode}",
            f"files: {', '.join(self.files) or '(none)'}",
            f"checksum profile: {self.checksum_profile or '(undetermined: no valid frame)'}",
            f"records replayed: {self.records_replayed}",
            f"damage: {len(self.damages)} place(s), {self.damaged_num_bytes} byte(s)",
        ]
        lines.extend(
            f"  {d.kind} in {d.file} at offset {d.offset} ({d.num_bytes} bytes){': ' + d.detail if d.detail else ''}"
            for d in self.damages
        )
        if self.stopped_at is not None:
            lines.append(
                f"replay stopped at {self.stopped_at}; {self.discarded_records} later record(s) discarded"
                + (f" (queues: {', '.join(repr(q) for q in self.queues_touched)})" if self.queues_touched else "")
            )
        if self.detached_files:
            lines.append(f"detached files (after a gap in the numbering): {', '.join(self.detached_files)}")
        if self.collected_tail_num_bytes:
            lines.append(
                f"skipped {self.collected_tail_num_bytes} byte(s) at the start: the end of a record "
                "whose beginning was in a collected file"
            )
        if self.quarantined:
            lines.append(f"quarantined into {self.quarantine_dir}:")
            lines.extend(
                f"  {q.num_bytes} byte(s) of {q.file} from offset {q.offset} -> {q.stored_as}" for q in self.quarantined
            )
        return "\n".join(lines)


@dataclass(slots=True)
class ReplayResult:
    queues: Queues
    resume: Location | None
    profile: ChecksumProfile | None
    profile_detected_at: Location | None
    report: RecoveryReport


def contiguous_prefix(file_numbers: list[int]) -> list[int]:
    """The files from the first up to the first gap in the numbering."""
    for index in range(1, len(file_numbers)):
        if file_numbers[index] != file_numbers[index - 1] + 1:
            return file_numbers[:index]
    return list(file_numbers)


def replay(
    storage: Storage,
    directory: str,
    file_numbers: list[int],
    mode: RecoveryMode = RecoveryMode.POINT_IN_TIME,
    *,
    file_num_bytes: int,
) -> ReplayResult:
    """Read the WAL files of ``directory``, each as ``file_num_bytes`` long,
    and rebuild the queues. Reads only."""
    readable = file_numbers if mode is RecoveryMode.SKIP else contiguous_prefix(file_numbers)
    detached = file_numbers[len(readable) :]
    queues = Queues()
    reader = WalReader(storage, directory, readable, file_num_bytes, across_ends=mode is RecoveryMode.SKIP)
    damages: list[Damage] = []
    records_replayed = 0
    collected_tail_num_bytes = 0
    stop: Location | None = None
    # Where the first problem was found: strict looks for valid frames from there.
    problem: Location | None = None
    discarded_records = 0
    touched: set[str] = set()
    for item in reader:
        if isinstance(item, ReadDamage):
            if item.kind == "collected_record_tail":
                collected_tail_num_bytes += item.num_bytes
                continue
            damages.append(_damage(item.kind, item.location, item.num_bytes))
            problem = problem or item.found_at
            if mode is not RecoveryMode.SKIP and stop is None:
                stop = item.location
            continue
        try:
            record = decode_record_packed(item.data)
        except RecordDecodeError as exc:
            damages.append(_damage("undecodable_record", item.start, len(item.data), exc.reason))
            problem = problem or item.start
            if mode is not RecoveryMode.SKIP and stop is None:
                stop = item.start
            continue
        if stop is not None:
            discarded_records += 1
            touched.add(record.queue)
            continue
        try:
            _apply(queues, record, item)
        except CorruptionError as exc:
            if mode is not RecoveryMode.POINT_IN_TIME:
                raise
            damages.append(_damage("inconsistent_record", item.start, len(item.data), str(exc)))
            stop = item.start
            continue
        records_replayed += 1
    if detached:
        damages.append(
            Damage("detached_file", wal_file_name(detached[0]), 0, 0, "a file is missing before it in the numbering")
        )
    if mode is RecoveryMode.STRICT and detached:
        raise CorruptionError(
            "strict recovery refuses a gap in the file numbering", file=wal_file_name(detached[0]), offset=0
        )
    resume = stop if stop is not None else reader.resume
    if mode is RecoveryMode.STRICT and resume is not None:
        # Anything valid after the end (damage, or an all-zero header that is
        # not the real end) means the damage is not a torn tail. With no valid
        # frame read, the profile is unknown: either one's frames count.
        profiles = (reader.profile,) if reader.profile is not None else tuple(ChecksumProfile)
        scan_from = problem if problem is not None else resume
        found = _valid_frame_after(storage, directory, readable, scan_from, profiles, file_num_bytes)
        if found is not None:
            where = stop if stop is not None else resume
            raise CorruptionError(
                f"strict recovery refuses {'damage' if stop is not None else 'an end of log'} "
                f"followed by a valid frame ({found.describe()})",
                file=wal_file_name(where.file_number),
                offset=where.offset,
            )
    detected_at = reader.profile_detected_at
    report = RecoveryReport(
        mode=mode.value,
        files=tuple(wal_file_name(n) for n in file_numbers),
        checksum_profile=reader.profile.value if reader.profile is not None else None,
        profile_detected_in=detected_at.describe() if detected_at is not None else None,
        records_replayed=records_replayed,
        damages=tuple(damages),
        collected_tail_num_bytes=collected_tail_num_bytes,
        stopped_at=stop.describe() if stop is not None else None,
        discarded_records=discarded_records,
        queues_touched=tuple(sorted(touched)),
        detached_files=tuple(wal_file_name(n) for n in detached),
        resume_file=wal_file_name(resume.file_number) if resume is not None else None,
        resume_offset=resume.offset if resume is not None else None,
        ended_at_end_marker=reader.reached_end_marker,
    )
    return ReplayResult(queues, resume, reader.profile, detected_at, report)


def _valid_frame_after(
    storage: Storage,
    directory: str,
    file_numbers: list[int],
    start: Location,
    profiles: tuple[ChecksumProfile, ...],
    file_num_bytes: int,
) -> Location | None:
    """The first frame valid in one of ``profiles`` at or after ``start``,
    looked for at every offset of the rest of ``start``'s block (its frame
    boundaries may be lost) and at the frame chain of every later block of
    each file's ``file_num_bytes``; None if there is none."""
    for number in (n for n in file_numbers if n >= start.file_number):
        handle = storage.open_file(os.path.join(directory, wal_file_name(number)), writable=False)
        try:
            size = min(handle.size(), file_num_bytes)
            block_start = start.offset - start.offset % BLOCK_NUM_BYTES if number == start.file_number else 0
            while block_start < size:
                following = handle.next_data(block_start)
                if following >= size:
                    break
                if following >= block_start + BLOCK_NUM_BYTES:
                    block_start = following - following % BLOCK_NUM_BYTES
                    continue
                block = handle.read_at(block_start, BLOCK_NUM_BYTES).ljust(BLOCK_NUM_BYTES, b"\0")
                first = start.offset % BLOCK_NUM_BYTES if (number, block_start) == _block_of(start) else None
                for profile in profiles:
                    offset = find_valid_frame(block, profile, scan_from=first)
                    if offset is not None:
                        return Location(number, block_start + offset)
                block_start += BLOCK_NUM_BYTES
        finally:
            handle.close()
    return None


def _block_of(location: Location) -> tuple[int, int]:
    return location.file_number, location.offset - location.offset % BLOCK_NUM_BYTES


def _damage(kind: str, location: Location, num_bytes: int, detail: str = "") -> Damage:
    return Damage(kind, wal_file_name(location.file_number), location.offset, num_bytes, detail)


def _apply(queues: Queues, record: PackedRecord, raw: RawRecord) -> None:
    """Apply one record; ``CorruptionError`` (nothing changed) if it cannot
    follow the state, which no sequence of the log's own operations produces."""
    queue = record.queue
    if isinstance(record, PackedAppendRecords):
        exists = queue in queues
        next_position = queues.next_position(queue) if exists else record.position
        positions = record.positions
        # Increasing from the next position on, each below the largest: checked
        # in C; the loop below only runs to name the offending entry.
        if positions and not (
            next_position <= positions[0]
            and positions[-1] < MAX_U64
            and (len(positions) == 1 or all(map(operator.lt, positions, islice(positions, 1, None))))
        ):
            expected = next_position
            for position in positions:
                if position < expected or position >= MAX_U64:
                    raise CorruptionError(
                        f"record at position {position} of queue {queue!r} cannot follow the queue's "
                        f"next position {expected}",
                        file=wal_file_name(raw.start.file_number),
                        offset=raw.start.offset,
                        queue=queue,
                        position=position,
                    )
                expected = position + 1
        if not exists:
            # The queue's position record was in a file that GC deleted.
            queues.create(queue, record.position)
        queues.append_replayed(raw.attributed_file, record)
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
