"""An independent reader of clean WAL directories, written from spec/FORMAT.md.

It shares no code with the core: it parses files with ``struct``, checks every
frame's checksum with ``zlib`` / ``crc32c`` directly, and replays records with
the rules of spec/SEMANTICS.md into the canonical state JSON value. It accepts
only logs a correct writer can produce (no damage; leading Middle/Last frames
are the tail of a record whose file GC deleted; a file cut short by a lost
preallocation reads as zeros), and raises ``FormatViolation`` on anything else.
Tests use it to check the writer's bytes against the spec.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections.abc import Mapping
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


def read_records(files: Mapping[str, bytes], profile: str) -> list[bytes]:
    """Every record of the log whose WAL files (by name) are given, in order,
    after checking every frame."""
    names = sorted(n for n in files if _NAME.fullmatch(n))
    records: list[bytes] = []
    current: bytearray | None = None
    seen_start = False
    for name in names:
        data = files[name]
        if len(data) % BLOCK:
            # A power loss can keep a write but lose the preallocation before
            # it: the missing bytes read as zeros (spec/FORMAT.md, 5.6).
            data += bytes(BLOCK - len(data) % BLOCK)
        for block_start in range(0, len(data), BLOCK):
            cursor = 0
            while BLOCK - cursor >= HEADER:
                where = f"{name} at offset {block_start + cursor}"
                checksum, length, frame_type = struct.unpack_from("<IHB", data, block_start + cursor)
                if (checksum, length, frame_type) == (0, 0, 0):
                    if current is not None:
                        raise FormatViolation(f"log ends inside a record, {where}")
                    return records
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
    if current is not None:
        raise FormatViolation("the files end inside a record")
    return records


def replay(records: list[bytes]) -> dict[str, Any]:
    """The canonical state value the records rebuild."""
    queues: dict[str, dict[str, Any]] = {}
    for record in records:
        kind, position, name_length = struct.unpack_from("<BQH", record, 0)
        name = record[11 : 11 + name_length].decode("utf-8")
        body = record[11 + name_length :]
        if kind == 4:
            queue = queues.setdefault(name, {"next_position": position, "records": []})
            cursor = 0
            while cursor < len(body):
                entry_position, size = struct.unpack_from("<QI", body, cursor)
                if entry_position < queue["next_position"]:
                    raise FormatViolation(f"record {entry_position} of {name!r} goes back in time")
                queue["records"].append([entry_position, body[cursor + 12 : cursor + 12 + size].hex()])
                queue["next_position"] = entry_position + 1
                cursor += 12 + size
            if cursor != len(body):
                raise FormatViolation("append body lengths do not add up")
            continue
        if body:
            raise FormatViolation(f"record type {kind} has a body")
        if kind == 1 and name in queues:
            queue = queues[name]
            queue["records"] = [r for r in queue["records"] if r[0] > position]
            queue["next_position"] = max(queue["next_position"], min(position + 1, 2**64 - 1))
        elif kind == 2:
            if name not in queues or queues[name]["records"] or queues[name]["next_position"] != position:
                queues[name] = {"next_position": position, "records": []}
        elif kind == 3:
            queues.pop(name, None)
        elif kind not in (1, 2, 3):
            raise FormatViolation(f"unknown record type {kind}")
    return {"queues": queues}


def read_state(files: Mapping[str, bytes], profile: str) -> dict[str, Any]:
    return replay(read_records(files, profile))
