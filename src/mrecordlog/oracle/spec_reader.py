"""An independent reader of clean WAL directories, written from spec/FORMAT.md.

It shares no code with the core: it parses files with ``struct``, checks every
frame's checksum with ``zlib`` / ``crc32c`` directly, and replays records with
the rules of spec/SEMANTICS.md into the canonical state JSON value. It accepts
only logs a correct writer can produce (no damage; leading Middle/Last frames
are the tail of a record whose file GC deleted; a file cut short by a lost
preallocation reads as zeros), and raises ``FormatViolation`` on anything else.

Tests use it to check the writer's bytes against the spec; the fuzz campaign
uses ``prefix_states`` to know every state a prefix of a clean log's records
gives, the states ``point_in_time`` recovery may return from a damaged copy.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import struct
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import crc32c

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
_NAME = re.compile(r"wal-\d{20}")


class FormatViolation(AssertionError):
    pass


def _checksum(profile: str, frame_type: int, payload: bytes) -> int:
    data = bytes([frame_type]) + payload
    return zlib.crc32(data) if profile == "crc32" else int(crc32c.crc32c(data))


def directory_files(directory: str) -> dict[str, bytes]:
    """The WAL files of a real directory, by name."""
    files = {}
    for name in os.listdir(directory):
        if _NAME.fullmatch(name):
            with open(os.path.join(directory, name), "rb") as handle:
                files[name] = handle.read()
    return files


def is_valid_frame(data: bytes, offset: int, profile: str) -> bool:
    """Whether a checksum-valid frame (type 1-4, inside its block) starts at
    ``offset`` of a file's bytes."""
    block_end = (offset // BLOCK + 1) * BLOCK
    if offset + HEADER > min(block_end, len(data)):
        return False
    checksum, length, frame_type = struct.unpack_from("<IHB", data, offset)
    end = offset + HEADER + length
    if frame_type not in (FULL, FIRST, MIDDLE, LAST) or end > block_end or end > len(data):
        return False
    return bool(_checksum(profile, frame_type, data[offset + HEADER : end]) == checksum)


class _EndOfLog(Exception):
    """An all-zero frame header: nothing after it belongs to the log."""


def _segment_records(
    segment: Sequence[tuple[str, bytes]], profile: str, records: list[bytes], *, cut: bool = False
) -> None:
    """Append to ``records`` every record of a run of consecutive files,
    checking every frame; raises ``_EndOfLog`` at an all-zero header (after
    appending what came before it). With ``cut``, the file after the run is
    missing: a record still open at the run's end is dropped."""
    current: bytearray | None = None
    seen_start = False
    for name, content in segment:
        # A power loss can keep a write but lose the preallocation before it:
        # the missing bytes read as zeros (spec/FORMAT.md, 5.6).
        data = content + bytes(-len(content) % BLOCK)
        for block_start in range(0, len(data), BLOCK):
            cursor = 0
            while BLOCK - cursor >= HEADER:
                where = f"{name} at offset {block_start + cursor}"
                checksum, length, frame_type = struct.unpack_from("<IHB", data, block_start + cursor)
                if (checksum, length, frame_type) == (0, 0, 0):
                    if current is not None:
                        raise FormatViolation(f"log ends inside a record, {where}")
                    raise _EndOfLog
                if frame_type not in (FULL, FIRST, MIDDLE, LAST) or cursor + HEADER + length > BLOCK:
                    raise FormatViolation(f"bad frame header {(checksum, length, frame_type)} {where}")
                start = block_start + cursor + HEADER
                payload = data[start : start + length]
                if _checksum(profile, frame_type, payload) != checksum:
                    raise FormatViolation(f"checksum mismatch {where}")
                cursor += HEADER + length
                if frame_type in (FULL, FIRST):
                    if current is not None:
                        raise FormatViolation(f"record started inside another {where}")
                    seen_start = True
                    current = bytearray(payload)
                elif current is None:
                    if seen_start:
                        raise FormatViolation(f"orphan frame {where}")
                    continue  # the tail of a record whose beginning was collected
                else:
                    current += payload
                if frame_type in (FULL, LAST):
                    records.append(bytes(current))
                    current = None
            if any(data[block_start + cursor : block_start + BLOCK]):
                raise FormatViolation(f"non-zero padding in {name} block at {block_start}")
    if current is not None and not cut:
        raise FormatViolation("the files end inside a record")


def read_records(files: Mapping[str, bytes], profile: str) -> list[bytes]:
    """Every record of the log whose WAL files (by name) are given, in order,
    after checking every frame."""
    names = sorted(n for n in files if _NAME.fullmatch(n))
    records: list[bytes] = []
    with contextlib.suppress(_EndOfLog):
        _segment_records([(name, files[name]) for name in names], profile, records)
    return records


def _apply(queues: dict[str, dict[str, Any]], record: bytes) -> None:
    """Apply one record to the canonical state value's queues."""
    if len(record) < 11:
        raise FormatViolation(f"a record of {len(record)} bytes is shorter than its header")
    kind, position, name_length = struct.unpack_from("<BQH", record, 0)
    if 11 + name_length > len(record):
        raise FormatViolation("the queue name runs past the record")
    try:
        name = record[11 : 11 + name_length].decode("utf-8")
    except UnicodeDecodeError:
        raise FormatViolation("the queue name is not UTF-8") from None
    body = record[11 + name_length :]
    if kind == 4:
        previous = queues.get(name)
        queue = {"next_position": position, "records": []} if previous is None else previous
        entries = []
        next_position = queue["next_position"]
        cursor = 0
        while cursor < len(body):
            if cursor + 12 > len(body):
                raise FormatViolation("append body lengths do not add up")
            entry_position, size = struct.unpack_from("<QI", body, cursor)
            if entry_position < next_position:
                raise FormatViolation(f"record {entry_position} of {name!r} goes back in time")
            entries.append([entry_position, body[cursor + 12 : cursor + 12 + size].hex()])
            next_position = entry_position + 1
            cursor += 12 + size
        if cursor != len(body):
            raise FormatViolation("append body lengths do not add up")
        # Checked whole before it changes anything: a refused record leaves the state as it was.
        queues[name] = {"next_position": next_position, "records": queue["records"] + entries}
        return
    if body:
        raise FormatViolation(f"record type {kind} has a body")
    if kind == 1 and name in queues:
        queue = queues[name]
        queues[name] = {
            "next_position": max(queue["next_position"], min(position + 1, 2**64 - 1)),
            "records": [r for r in queue["records"] if r[0] > position],
        }
    elif kind == 2:
        if name not in queues or queues[name]["records"] or queues[name]["next_position"] != position:
            queues[name] = {"next_position": position, "records": []}
    elif kind == 3:
        queues.pop(name, None)
    elif kind not in (1, 2, 3):
        raise FormatViolation(f"unknown record type {kind}")


def replay(records: list[bytes]) -> dict[str, Any]:
    """The canonical state value the records rebuild."""
    queues: dict[str, dict[str, Any]] = {}
    for record in records:
        _apply(queues, record)
    return {"queues": queues}


def read_state(files: Mapping[str, bytes], profile: str) -> dict[str, Any]:
    return replay(read_records(files, profile))


def canonical_json(value: dict[str, Any]) -> str:
    """The canonical state JSON: sorted keys, no spaces, ASCII escapes, a newline."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")) + "\n"


def prefix_states(segments: Sequence[Sequence[tuple[str, bytes]]], profile: str) -> list[str]:
    """The canonical state JSON after each prefix (0, 1, ..., n records) of
    the records of a clean log's files.

    ``segments`` are runs of files (name, bytes) that followed each other in
    the log, in order; between two runs, files are missing. A record is never
    assembled across runs (its middle is missing), and each run may start with
    the tail of a record whose beginning is gone. An all-zero header ends the
    log. Records that cannot follow the state (an append going back in time,
    which the loss of a file between runs can cause) end the list there: no
    prefix goes past them.
    """
    records: list[bytes] = []
    with contextlib.suppress(_EndOfLog):
        for segment in segments:
            _segment_records(segment, profile, records, cut=True)
    queues: dict[str, dict[str, Any]] = {}
    states = [canonical_json({"queues": queues})]
    for record in records:
        try:
            _apply(queues, record)
        except FormatViolation:
            break
        states.append(canonical_json({"queues": queues}))
    return states
