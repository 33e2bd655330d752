"""Discarding without destroying: what lies after the resume point leaves the log.

Before a writable open writes anything, no byte written earlier may remain
after the resume point where a later replay could read it: new frames written
at the resume point could otherwise end right where stale frames begin, and a
later replay would bring those stale operations back. So the rest of the
resume file is zeroed and later files are removed from the log. Nothing is
destroyed silently: the non-zero bytes and the files go to
``quarantine/recovery-N/`` inside the log directory, with the recovery report,
and are made durable there before the originals are changed.

Bytes past a file's length (``file_num_bytes``: a file the writer never made
that long) are not part of the log either: they go to the quarantine too and
the file is cut back. A WAL file that GC would delete while it holds bytes
recovery reported as damage is moved to the quarantine instead.

Everything is read, copied and zeroed in bounded chunks, skipping holes.
The files the log keeps are made exactly ``file_num_bytes`` long (a file cut
short is zero-extended back). A clean log (its tail is zeros, no later file,
every file of the right length) is left untouched.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Final

from mrecordlog._recovery import QuarantinedBytes, RecoveryReport
from mrecordlog._storage import EntryKind, Storage, file_size, nonzero_chunks
from mrecordlog._wal import Location, wal_file_name
from mrecordlog.errors import UnexpectedEntry

QUARANTINE_DIR: Final = "quarantine"


@dataclass(frozen=True, slots=True)
class _Cut:
    """Non-zero bytes of one WAL file that leave the log: ``[start, end)``.
    ``size`` is the file's size; past ``file_num_bytes`` it is cut off."""

    file_number: int
    start: int
    end: int
    size: int


def _find_cut(storage: Storage, directory: str, file_number: int, start: int) -> tuple[_Cut | None, int]:
    """The non-zero bytes of a file from ``start`` on (None if none), and its size."""
    handle = storage.open_file(os.path.join(directory, wal_file_name(file_number)), writable=False)
    try:
        size = handle.size()
        end = None
        for offset, chunk in nonzero_chunks(handle, start, size):
            end = offset + len(chunk.rstrip(b"\0"))
    finally:
        handle.close()
    return (None if end is None else _Cut(file_number, start, end, size)), size


def _next_quarantine_dir(storage: Storage, directory: str) -> str:
    """A ``recovery-N`` under ``quarantine/`` that no entry of any kind uses."""
    root = os.path.join(directory, QUARANTINE_DIR)
    taken = storage.list_entries(root) if storage.is_dir(root) else {}
    numbers = [int(name[9:]) for name in taken if name.startswith("recovery-") and name[9:].isdigit()]
    return os.path.join(root, f"recovery-{max(numbers, default=0) + 1}")


def check_quarantine_entry(directory: str, entries: dict[str, EntryKind]) -> None:
    """Raise ``UnexpectedEntry`` if ``quarantine`` exists but is not a directory:
    discarding anything would then fail at every open."""
    kind = entries.get(QUARANTINE_DIR)
    if kind is not None and kind != "directory":
        raise UnexpectedEntry(os.path.join(directory, QUARANTINE_DIR), kind)


def _write_report(storage: Storage, target: str, report: RecoveryReport) -> None:
    document = storage.create_file(os.path.join(target, "report.json"), 0)
    try:
        document.write_at(0, (json.dumps(report.to_json_value(), indent=2, sort_keys=True) + "\n").encode())
        document.sync()
    finally:
        document.close()


def _make_durable(storage: Storage, directory: str, target: str) -> None:
    storage.sync_dir(target)
    storage.sync_dir(os.path.dirname(target))
    storage.sync_dir(directory)


def discard_after(
    storage: Storage,
    directory: str,
    file_numbers: list[int],
    resume: Location,
    report: RecoveryReport,
    file_num_bytes: int,
) -> tuple[list[int], RecoveryReport]:
    """Quarantine and remove everything after ``resume``, and whatever lies
    past ``file_num_bytes`` in the files the log keeps, which are all made
    ``file_num_bytes`` long; returns the files the log keeps and the report
    with what was quarantined."""
    later = [n for n in file_numbers if n > resume.file_number]
    kept = [n for n in file_numbers if n <= resume.file_number]
    cuts: list[_Cut] = []
    resized: list[int] = []
    for number in kept:
        start = resume.offset if number == resume.file_number else file_num_bytes
        cut, size = _find_cut(storage, directory, number, start)
        if cut is not None:
            cuts.append(cut)
        if size != file_num_bytes:
            resized.append(number)
    if not cuts and not later and not resized:
        return kept, report
    if cuts or later:
        report = _quarantine(storage, directory, cuts, later, report)
    # Only now, with the copies durable, are the originals changed.
    for number in sorted({cut.file_number for cut in cuts} | set(resized)):
        handle = storage.open_file(os.path.join(directory, wal_file_name(number)), writable=True)
        try:
            for cut in (c for c in cuts if c.file_number == number):
                for offset, chunk in nonzero_chunks(handle, cut.start, min(cut.end, file_num_bytes)):
                    handle.write_at(offset, bytes(len(chunk)))
            if number in resized:
                # Back to the length every file was created with: a shorter
                # file (a lost preallocation, or damage) would otherwise make
                # the next open infer another file size.
                handle.truncate(file_num_bytes)
            handle.sync()
        finally:
            handle.close()
    return kept, report


def _quarantine(
    storage: Storage, directory: str, cuts: list[_Cut], later: list[int], report: RecoveryReport
) -> RecoveryReport:
    target = _next_quarantine_dir(storage, directory)
    relative = os.path.relpath(target, directory)
    storage.make_dirs(target)
    quarantined: list[QuarantinedBytes] = []
    for cut in cuts:
        # From the cut's start (not from its first non-zero byte), so that the
        # copy keeps its offsets relative to the frame structure.
        name = f"{wal_file_name(cut.file_number)}.from-{cut.start}"
        source = storage.open_file(os.path.join(directory, wal_file_name(cut.file_number)), writable=False)
        copy = storage.create_file(os.path.join(target, name), 0)
        try:
            for offset, chunk in nonzero_chunks(source, cut.start, cut.end):
                copy.write_at(offset - cut.start, chunk)
            copy.sync()
        finally:
            copy.close()
            source.close()
        quarantined.append(
            QuarantinedBytes(wal_file_name(cut.file_number), cut.start, cut.end - cut.start, f"{relative}/{name}")
        )
    for number in later:
        name = wal_file_name(number)
        size = file_size(storage, os.path.join(directory, name))
        storage.rename(os.path.join(directory, name), os.path.join(target, name))
        quarantined.append(QuarantinedBytes(name, 0, size, f"{relative}/{name}"))
    report = dataclasses.replace(report, quarantine_dir=relative, quarantined=tuple(quarantined))
    _write_report(storage, target, report)
    _make_durable(storage, directory, target)
    return report


def quarantine_collected_file(storage: Storage, directory: str, file_number: int, report: RecoveryReport) -> None:
    """Move a WAL file that GC would delete to the quarantine instead: it holds
    bytes recovery reported as damage, which are never destroyed silently."""
    target = _next_quarantine_dir(storage, directory)
    relative = os.path.relpath(target, directory)
    storage.make_dirs(target)
    name = wal_file_name(file_number)
    size = file_size(storage, os.path.join(directory, name))
    storage.rename(os.path.join(directory, name), os.path.join(target, name))
    moved = QuarantinedBytes(name, 0, size, f"{relative}/{name}")
    _write_report(storage, target, dataclasses.replace(report, quarantine_dir=relative, quarantined=(moved,)))
    _make_durable(storage, directory, target)


@dataclass(frozen=True, slots=True)
class StaleBytes:
    """Bytes after the end of the log that a writable open would quarantine."""

    file: str
    offset: int
    num_bytes: int  # from ``offset`` to the last non-zero byte (a whole file: its size)
    whole_file: bool  # a file after the resume file


def stale_after(
    storage: Storage, directory: str, file_numbers: list[int], resume: Location | None, file_num_bytes: int
) -> list[StaleBytes]:
    """What ``discard_after`` would move out of the log, found by reading only:
    the non-zero bytes after ``resume`` in its file and past ``file_num_bytes``
    in the earlier files, and every later file."""
    if resume is None:
        return []
    stale: list[StaleBytes] = []
    for number in file_numbers:
        if number > resume.file_number:
            size = file_size(storage, os.path.join(directory, wal_file_name(number)))
            stale.append(StaleBytes(wal_file_name(number), 0, size, whole_file=True))
            continue
        start = resume.offset if number == resume.file_number else file_num_bytes
        cut, _ = _find_cut(storage, directory, number, start)
        if cut is not None:
            stale.append(StaleBytes(wal_file_name(number), cut.start, cut.end - cut.start, whole_file=False))
    return stale
