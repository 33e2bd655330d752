"""Values returned by the log: records, per-operation outcomes, summaries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class Record(NamedTuple):
    """One record of a queue."""

    position: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class CreateQueueOutcome:
    wal_bytes_written: int


@dataclass(frozen=True, slots=True)
class DeleteQueueOutcome:
    # The DeleteQueue record plus the records of the GC pass it triggered.
    wal_bytes_written: int


@dataclass(frozen=True, slots=True)
class AppendOutcome:
    # Position of the batch's last record; None when nothing was appended (an
    # empty batch, or the idempotent retry of the last append).
    last_position: int | None
    # Frame headers, record bytes and block padding pushed to the WAL.
    wal_bytes_written: int


@dataclass(frozen=True, slots=True)
class TruncateOutcome:
    evicted_records: int
    # The Truncate record plus the records of the GC pass it triggered.
    wal_bytes_written: int


@dataclass(frozen=True, slots=True)
class QueueSummary:
    # First retained position, or the next position when the queue is empty.
    start: int
    # Last retained position, None when empty.
    end: int | None
    # Number of the oldest WAL file holding one of its records, None when empty.
    file_number: int | None


@dataclass(frozen=True, slots=True)
class ResourceUsage:
    memory_used_bytes: int
    memory_allocated_bytes: int
    disk_used_bytes: int
