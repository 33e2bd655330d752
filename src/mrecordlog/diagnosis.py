"""Operator reports over a log directory: ``summarize_log`` and ``verify_log``.

All three read only (through ``inspection.replay_read_only``): they open nothing
for writing and leave every byte as it was, so they are safe on a log another
process has open, on a copy taken from a failed machine, or on files written
by mrecordlog 0.5.

- ``summarize_log``: what the log holds, as ``open`` would recover it: the
  checksum profile, each file (size, the records attributed to it, their
  payload bytes), and each queue (first and last retained positions, record
  count, payload bytes, the oldest file holding one of its records).
- ``read_records``: one queue's records in a range of positions.
- ``verify_log``: a health check. It counts the frames of each file (valid
  and damaged, up to the file's end marker), replays the files in every
  recovery mode and reports every damage (file, offset, reason), what each
  mode keeps and discards, the bytes after the end of the log (as a mode
  recovers it) that a writable ``open`` would move to the quarantine, and
  files of another size than the log's. ``clean`` is true only when none of
  this was found.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mrecordlog import _arguments
from mrecordlog._codec import BLOCK_NUM_BYTES, ChecksumProfile
from mrecordlog._framing import DamagedFrame, EndOfLog, Frame, FrameDecoder
from mrecordlog._quarantine import StaleBytes, stale_after
from mrecordlog._recovery import Damage, RecoveryMode, RecoveryReport
from mrecordlog._storage import Storage
from mrecordlog._wal import wal_file_name
from mrecordlog.errors import CorruptionError, MissingQueue
from mrecordlog.inspection import replay_read_only
from mrecordlog.outcomes import Record

# -- summary --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileSummary:
    """One WAL file in a ``LogSummary``.

    :ivar name: the file's name (``wal-...``).
    :ivar size: its size, in bytes.
    :ivar live_records: the retained records attributed to it (for garbage
        collection: the file it keeps alive is the one a record's writing
        began in).
    :ivar live_payload_bytes: the payload bytes of those records.
    """

    name: str
    size: int
    live_records: int
    live_payload_bytes: int


@dataclass(frozen=True, slots=True)
class QueueReport:
    """One queue in a ``LogSummary``.

    :ivar name: the queue's name.
    :ivar next_position: the position its next append would get.
    :ivar first_position: its first retained position, or None when it is
        empty.
    :ivar last_position: its last retained position, or None when it is empty.
    :ivar records: the number of records it retains.
    :ivar payload_bytes: their payload bytes.
    :ivar oldest_file: the name of the oldest file holding one of its records
        (the file it keeps from being collected), or None when it is empty.
    """

    name: str
    next_position: int
    first_position: int | None
    last_position: int | None
    records: int
    payload_bytes: int
    oldest_file: str | None


@dataclass(frozen=True, slots=True)
class LogSummary:
    """What ``summarize_log`` found: what ``open`` with its recovery mode would
    recover, file by file and queue by queue.

    :ivar directory: the log directory, as given.
    :ivar recovery: the recovery mode's value (``"point_in_time"``, ...).
    :ivar checksum_profile: ``"crc32"`` or ``"crc32c"``; None when no valid
        frame was read.
    :ivar file_num_bytes: the size each file was read as, in bytes.
    :ivar files: each WAL file, in order.
    :ivar queues: each queue, sorted by name.
    :ivar report: the recovery report of the replay.
    """

    directory: str
    recovery: str
    checksum_profile: str | None
    file_num_bytes: int
    files: tuple[FileSummary, ...]
    queues: tuple[QueueReport, ...]
    report: RecoveryReport

    def to_json_value(self) -> dict[str, object]:
        """The summary as JSON values: what ``mrecordlog summary --json``
        prints (the fields above but ``report``, and ``clean``: the report's)."""
        return {
            "directory": self.directory,
            "recovery": self.recovery,
            "checksum_profile": self.checksum_profile,
            "file_num_bytes": self.file_num_bytes,
            "files": [
                {
                    "name": f.name,
                    "size": f.size,
                    "live_records": f.live_records,
                    "live_payload_bytes": f.live_payload_bytes,
                }
                for f in self.files
            ],
            "queues": [
                {
                    "name": q.name,
                    "next_position": q.next_position,
                    "first_position": q.first_position,
                    "last_position": q.last_position,
                    "records": q.records,
                    "payload_bytes": q.payload_bytes,
                    "oldest_file": q.oldest_file,
                }
                for q in self.queues
            ],
            "clean": self.report.clean,
        }

    def describe(self) -> str:
        """The summary as text for a person: what ``mrecordlog summary`` prints."""
        live = sum(f.live_records for f in self.files)
        lines = [
            f"log: {self.directory}",
            f"checksum profile: {self.checksum_profile or '(undetermined: no valid frame)'}",
            f"files: {len(self.files)} of {self.file_num_bytes} bytes; {live} retained record(s)",
        ]
        lines.extend(
            f"  {f.name}  {f.size:>12} bytes  {f.live_records:>10} record(s)  {f.live_payload_bytes:>12} payload bytes"
            for f in self.files
        )
        lines.append(f"queues: {len(self.queues)}")
        for q in self.queues:
            span = "empty" if q.first_position is None else f"positions {q.first_position}..{q.last_position}"
            oldest = f", oldest file {q.oldest_file}" if q.oldest_file else ""
            lines.append(
                f"  {q.name!r}: {span}, next {q.next_position}, {q.records} record(s), "
                f"{q.payload_bytes} payload bytes{oldest}"
            )
        if not self.report.clean:
            lines.append(f"recovery ({self.recovery}) found damage or discarded data: run `mrecordlog verify`")
        return "\n".join(lines)


def summarize_log(
    directory: str | os.PathLike[str],
    *,
    storage: Storage | None = None,
    recovery: RecoveryMode | str = RecoveryMode.POINT_IN_TIME,
    file_num_bytes: int | None = None,
) -> LogSummary:
    """What ``open`` with this recovery mode would recover, file by file and
    queue by queue. Reads only; raises as ``inspect_log`` does."""
    replayed = replay_read_only(directory, storage=storage, recovery=recovery, file_num_bytes=file_num_bytes)
    queues = replayed.result.queues
    per_file: dict[int, list[int]] = {number: [0, 0] for number in replayed.file_numbers}
    reports: list[QueueReport] = []
    for name in queues.names():
        records = list(queues.range(name, None, None))
        index = 0
        for file_number, count in queues.live_runs(name):
            totals = per_file.setdefault(file_number, [0, 0])
            totals[0] += count
            totals[1] += sum(len(record.payload) for record in records[index : index + count])
            index += count
        summary = queues.summary(name)
        reports.append(
            QueueReport(
                name=name,
                next_position=queues.next_position(name),
                first_position=records[0].position if records else None,
                last_position=records[-1].position if records else None,
                records=len(records),
                payload_bytes=sum(len(record.payload) for record in records),
                oldest_file=wal_file_name(summary.file_number) if summary.file_number is not None else None,
            )
        )
    files = tuple(
        FileSummary(wal_file_name(number), replayed.file_sizes.get(number, 0), totals[0], totals[1])
        for number, totals in sorted(per_file.items())
    )
    report = replayed.result.report
    return LogSummary(
        replayed.directory, report.mode, report.checksum_profile, replayed.file_num_bytes, files, tuple(reports), report
    )


def read_records(
    directory: str | os.PathLike[str],
    queue: str,
    *,
    start: int | None = None,
    end: int | None = None,
    storage: Storage | None = None,
    recovery: RecoveryMode | str = RecoveryMode.POINT_IN_TIME,
    file_num_bytes: int | None = None,
) -> list[Record]:
    """The records of ``queue`` with ``start <= position < end`` that ``open``
    with this recovery mode would recover. Reads only; raises
    ``MissingQueue`` when the log has no such queue."""
    queue = _arguments.queue_name(queue)
    start = None if start is None else _arguments.position(start, queue=queue, argument="start")
    end = None if end is None else _arguments.position(end, queue=queue, argument="end")
    replayed = replay_read_only(directory, storage=storage, recovery=recovery, file_num_bytes=file_num_bytes)
    queues = replayed.result.queues
    if queue not in queues:
        raise MissingQueue(queue)
    return list(queues.range(queue, start, end))


# -- verify ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModeOutcome:
    """What one recovery mode makes of the files (in a ``Verification``).

    :ivar mode: the recovery mode's value (``"point_in_time"``, ...).
    :ivar refusal: why the mode refuses to open the log (``strict``'s
        ``CorruptionError``, as text), or None; a refusing mode's counts are 0.
    :ivar queues: the number of queues it recovers.
    :ivar records: the number of retained records it recovers.
    :ivar records_replayed: the WAL records it applies (an append of several
        records is one).
    :ivar discarded_records: the complete WAL records after its stop point.
    :ivar damages: every damage it reports.
    :ivar resume: where the next write would go (``"wal-... at offset N"``),
        or None.
    """

    mode: str
    refusal: str | None
    queues: int
    records: int
    records_replayed: int
    discarded_records: int
    damages: tuple[Damage, ...]
    resume: str | None


@dataclass(frozen=True, slots=True)
class FileFrames:
    """One file's frames, read block by block up to its end marker (an
    all-zero frame header) or its end.

    :ivar name: the file's name (``wal-...``).
    :ivar size: its size, in bytes.
    :ivar frames: the valid frames.
    :ivar damaged_frames: the damaged frames (or rests of a block) a reader
        skips.
    """

    name: str
    size: int
    frames: int
    damaged_frames: int


@dataclass(frozen=True, slots=True)
class Verification:
    """What ``verify_log`` found: each file's frames, what each recovery mode
    makes of the files, and every finding.

    :ivar directory: the log directory, as given.
    :ivar recovery: the value of the mode whose end of the log defines
        ``stale``.
    :ivar checksum_profile: ``"crc32"`` or ``"crc32c"``; None when no valid
        frame was read.
    :ivar file_num_bytes: the log's file size, in bytes.
    :ivar files: each WAL file's frames, in order.
    :ivar modes: what each recovery mode makes of the files, one per mode.
    :ivar stale: the non-zero bytes after the end of the log (as ``recovery``
        finds it), which a writable ``open`` would move to the quarantine:
        each with ``file``, ``offset``, ``num_bytes`` (up to its last non-zero
        byte) and ``whole_file`` (a file after the one writing resumes in).
    :ivar findings: what is wrong, one line each: damage, records a mode
        discards, a refusal, data after the end, a file of another size than
        the log's, modes that keep different records. Empty when clean.
    """

    directory: str
    recovery: str
    checksum_profile: str | None
    file_num_bytes: int
    files: tuple[FileFrames, ...]
    modes: tuple[ModeOutcome, ...]
    stale: tuple[StaleBytes, ...]
    findings: tuple[str, ...]

    @property
    def clean(self) -> bool:
        """Nothing was found (``findings`` is empty)."""
        return not self.findings

    def to_json_value(self) -> dict[str, object]:
        """The verification as JSON values: what ``mrecordlog verify --json``
        prints (``stale`` as ``stale_after_end``)."""
        return {
            "directory": self.directory,
            "recovery": self.recovery,
            "clean": self.clean,
            "checksum_profile": self.checksum_profile,
            "file_num_bytes": self.file_num_bytes,
            "files": [
                {"name": f.name, "size": f.size, "frames": f.frames, "damaged_frames": f.damaged_frames}
                for f in self.files
            ],
            "modes": [
                {
                    "mode": m.mode,
                    "refusal": m.refusal,
                    "queues": m.queues,
                    "records": m.records,
                    "records_replayed": m.records_replayed,
                    "discarded_records": m.discarded_records,
                    "damages": [
                        {
                            "kind": d.kind,
                            "file": d.file,
                            "offset": d.offset,
                            "num_bytes": d.num_bytes,
                            "detail": d.detail,
                        }
                        for d in m.damages
                    ],
                    "resume": m.resume,
                }
                for m in self.modes
            ],
            "stale_after_end": [
                {"file": s.file, "offset": s.offset, "num_bytes": s.num_bytes, "whole_file": s.whole_file}
                for s in self.stale
            ],
            "findings": list(self.findings),
        }

    def describe(self) -> str:
        """The verification as text for a person, ending with the verdict
        (``clean``, or ``damaged`` and the findings): what ``mrecordlog
        verify`` prints."""
        lines = [
            f"log: {self.directory}",
            f"checksum profile: {self.checksum_profile or '(undetermined: no valid frame)'}",
            f"files: {len(self.files)} (file size {self.file_num_bytes})",
        ]
        lines.extend(
            f"  {f.name}  {f.size} bytes  {f.frames} frame(s)"
            + (f", {f.damaged_frames} damaged" if f.damaged_frames else "")
            for f in self.files
        )
        for m in self.modes:
            if m.refusal is not None:
                lines.append(f"{m.mode}: refuses to open: {m.refusal}")
                continue
            lines.append(
                f"{m.mode}: keeps {m.records} record(s) in {m.queues} queue(s) "
                f"(from {m.records_replayed} WAL record(s)), discards {m.discarded_records} WAL record(s) "
                f"after its stop point, {len(m.damages)} damage(s); writing resumes at {m.resume or '(no file)'}"
            )
            lines.extend(f"  {_describe_damage(d)}" for d in m.damages)
        for s in self.stale:
            what = "the whole file" if s.whole_file else f"{s.num_bytes} byte(s) from offset {s.offset}"
            lines.append(
                f"after the end ({self.recovery}): {s.file}: {what} (a writable open moves it to the quarantine)"
            )
        if self.findings:
            lines.append(f"verdict: damaged ({len(self.findings)} finding(s))")
            lines.extend(f"  - {finding}" for finding in self.findings)
        else:
            lines.append("verdict: clean")
        return "\n".join(lines)


def _describe_damage(damage: Damage) -> str:
    detail = f": {damage.detail}" if damage.detail else ""
    return f"{damage.kind} in {damage.file} at offset {damage.offset} ({damage.num_bytes} bytes){detail}"


def _count_frames(storage: Storage, path: str, size: int, profile: str | None) -> tuple[int, int]:
    """The valid and damaged frames of one file, block by block up to its end
    marker (with the log's profile, or detecting one as a reader does)."""
    decoder = FrameDecoder(ChecksumProfile(profile) if profile is not None else None)
    frames = damaged = 0
    handle = storage.open_file(path, writable=False)
    try:
        for offset in range(0, size - size % BLOCK_NUM_BYTES, BLOCK_NUM_BYTES):
            decoder.feed_block(handle.read_at(offset, BLOCK_NUM_BYTES))
            while True:
                event = decoder.next_event()
                if isinstance(event, Frame):
                    frames += 1
                elif isinstance(event, DamagedFrame):
                    damaged += 1
                elif isinstance(event, EndOfLog):
                    return frames, damaged
                else:
                    break
    finally:
        handle.close()
    return frames, damaged


def verify_log(
    directory: str | os.PathLike[str],
    *,
    storage: Storage | None = None,
    file_num_bytes: int | None = None,
    recovery: RecoveryMode | str = RecoveryMode.POINT_IN_TIME,
) -> Verification:
    """Count the frames of each file, replay the files in every recovery mode
    and report what is wrong with them, if anything; the data after the end
    of the log is what follows the end ``recovery`` recovers. Reads only.
    Raises ``StorageError`` when the directory cannot be read,
    ``UnexpectedEntry`` for an entry of another kind under a WAL name; a log
    no mode can make sense of is a finding, not an error."""
    chosen = RecoveryMode.parse(recovery)
    outcomes: list[ModeOutcome] = []
    findings: list[str] = []
    stale: list[StaleBytes] = []
    profile: str | None = None
    sizes: dict[int, int] = {}
    size = 0
    read_only: Storage | None = None
    path = os.fspath(directory)
    for mode in RecoveryMode:
        try:
            replayed = replay_read_only(directory, storage=storage, recovery=mode, file_num_bytes=file_num_bytes)
        except CorruptionError as exc:
            outcomes.append(ModeOutcome(mode.value, str(exc), 0, 0, 0, 0, (), None))
            findings.append(f"{mode.value} recovery refuses to open the log: {exc}")
            continue
        result = replayed.result
        report = result.report
        sizes, size = replayed.file_sizes, replayed.file_num_bytes
        read_only, path = replayed.storage, replayed.directory
        profile = profile or report.checksum_profile
        queues = result.queues
        records = sum(queues.num_records(name) for name in queues.names())
        resume = result.resume.describe() if result.resume is not None else None
        outcomes.append(
            ModeOutcome(
                mode.value,
                None,
                len(queues),
                records,
                report.records_replayed,
                report.discarded_records,
                report.damages,
                resume,
            )
        )
        for damage in report.damages:
            finding = _describe_damage(damage)
            if finding not in findings:
                findings.append(finding)
        if report.discarded_records:
            findings.append(
                f"{mode.value} recovery discards {report.discarded_records} complete record(s) after "
                f"{report.stopped_at} (queues: {', '.join(repr(q) for q in report.queues_touched)})"
            )
        if mode is chosen:
            stale = stale_after(
                replayed.storage, replayed.directory, replayed.file_numbers, result.resume, replayed.file_num_bytes
            )
    for piece in stale:
        what = (
            "a whole file"
            if piece.whole_file
            else f"{piece.num_bytes} byte(s) from offset {piece.offset} up to its last non-zero byte"
        )
        findings.append(f"after the end of the log: {piece.file}: {what}")
    for number, file_bytes in sorted(sizes.items()):
        if file_bytes != size:
            findings.append(f"{wal_file_name(number)} is {file_bytes} bytes long, not the log's {size}")
    kept = {m.mode: m.records for m in outcomes if m.refusal is None}
    if len(set(kept.values())) > 1:
        findings.append(
            "the recovery modes keep different records: "
            + ", ".join(f"{mode} {count}" for mode, count in sorted(kept.items()))
        )
    files = []
    for number, file_bytes in sorted(sizes.items()):
        assert read_only is not None  # sizes come from a replay
        name = wal_file_name(number)
        frames, damaged = _count_frames(read_only, os.path.join(path, name), file_bytes, profile)
        files.append(FileFrames(name, file_bytes, frames, damaged))
    return Verification(
        os.fspath(directory),
        chosen.value,
        profile,
        size,
        tuple(files),
        tuple(outcomes),
        tuple(stale),
        tuple(findings),
    )
