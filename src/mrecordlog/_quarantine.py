"""Discarding without destroying: what lies after the resume point leaves the log.

Before a writable open writes anything, no byte written earlier may remain
after the resume point where a later replay could read it: new frames written
at the resume point could otherwise end right where stale frames begin, and a
later replay would bring those stale operations back. So the rest of the
resume file is zeroed and later files are removed from the log. Nothing is
destroyed silently: the non-zero bytes and the files go to
``quarantine/recovery-N/`` inside the log directory, with the recovery report,
and are made durable there before the originals are changed.

A clean log (its tail is zeros, no later file) is left untouched.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Final

from mrecordlog._recovery import QuarantinedBytes, RecoveryReport
from mrecordlog._storage import Storage, file_size
from mrecordlog._wal import Location, wal_file_name

QUARANTINE_DIR: Final = "quarantine"
_SCAN_CHUNK: Final = 1 << 20


def _nonzero_extent(storage: Storage, path: str, start: int) -> tuple[int, int] | None:
    """(first, end) of the non-zero bytes of a file from ``start`` on, or None."""
    handle = storage.open_file(path, writable=False)
    try:
        size = handle.size()
        first: int | None = None
        end = start
        offset = handle.next_data(start) if start < size else size
        while offset < size:
            chunk = handle.read_at(offset, min(_SCAN_CHUNK, size - offset))
            if not chunk:
                break
            stripped = chunk.rstrip(b"\0")
            if stripped:
                if first is None:
                    first = offset + len(chunk) - len(chunk.lstrip(b"\0"))
                end = offset + len(stripped)
                offset += len(chunk)
            else:
                # A run of zeros: let a sparse-aware file skip the hole after it.
                offset = max(offset + len(chunk), handle.next_data(offset + len(chunk)))
    finally:
        handle.close()
    return None if first is None else (first, end)


def _next_quarantine_dir(storage: Storage, directory: str) -> str:
    root = os.path.join(directory, QUARANTINE_DIR)
    number = 1
    while storage.is_dir(os.path.join(root, f"recovery-{number}")):
        number += 1
    return os.path.join(root, f"recovery-{number}")


def discard_after(
    storage: Storage, directory: str, file_numbers: list[int], resume: Location, report: RecoveryReport
) -> tuple[list[int], RecoveryReport]:
    """Quarantine and remove everything after ``resume``; returns the files
    the log keeps and the report with what was quarantined."""
    resume_path = os.path.join(directory, wal_file_name(resume.file_number))
    extent = _nonzero_extent(storage, resume_path, resume.offset)
    later = [n for n in file_numbers if n > resume.file_number]
    kept = [n for n in file_numbers if n <= resume.file_number]
    if extent is None and not later:
        return kept, report
    target = _next_quarantine_dir(storage, directory)
    relative = os.path.relpath(target, directory)
    storage.make_dirs(target)
    quarantined: list[QuarantinedBytes] = []
    if extent is not None:
        # From the resume point (not from the first non-zero byte), so that the
        # quarantined bytes keep their offsets relative to the frame structure.
        start, end = resume.offset, extent[1]
        name = f"{wal_file_name(resume.file_number)}.from-{start}"
        source = storage.open_file(resume_path, writable=False)
        try:
            data = source.read_at(start, end - start)
        finally:
            source.close()
        copy = storage.create_file(os.path.join(target, name), 0)
        try:
            copy.write_at(0, data)
            copy.sync()
        finally:
            copy.close()
        quarantined.append(
            QuarantinedBytes(wal_file_name(resume.file_number), start, end - start, f"{relative}/{name}")
        )
    for number in later:
        name = wal_file_name(number)
        size = file_size(storage, os.path.join(directory, name))
        storage.rename(os.path.join(directory, name), os.path.join(target, name))
        quarantined.append(QuarantinedBytes(name, 0, size, f"{relative}/{name}"))
    report = dataclasses.replace(report, quarantine_dir=relative, quarantined=tuple(quarantined))
    document = storage.create_file(os.path.join(target, "report.json"), 0)
    try:
        document.write_at(0, (json.dumps(report.to_json_value(), indent=2, sort_keys=True) + "\n").encode())
        document.sync()
    finally:
        document.close()
    storage.sync_dir(target)
    storage.sync_dir(os.path.dirname(target))
    storage.sync_dir(directory)
    if extent is not None:
        start, end = resume.offset, extent[1]
        handle = storage.open_file(resume_path, writable=True)
        try:
            handle.write_at(start, bytes(end - start))
            handle.sync()
        finally:
            handle.close()
    return kept, report
