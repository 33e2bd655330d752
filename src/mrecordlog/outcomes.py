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
    """What ``create_queue`` did: the bytes it pushed to the WAL."""

    wal_bytes_written: int


@dataclass(frozen=True, slots=True)
class DeleteQueueOutcome:
    """What ``delete_queue`` did: the bytes it pushed to the WAL."""

    # The DeleteQueue record plus the records of the GC pass it triggered.
    wal_bytes_written: int


@dataclass(frozen=True, slots=True)
class AppendOutcome:
    """What an append did: the last position it gave, and the bytes it pushed to the WAL."""

    # Position of the batch's last record; None when nothing was appended (an
    # empty batch, or the idempotent retry of the last append).
    last_position: int | None
    # Frame headers, record bytes and block padding pushed to the WAL.
    wal_bytes_written: int


@dataclass(frozen=True, slots=True)
class TruncateOutcome:
    """What ``truncate`` did: how many records it removed, and the bytes it pushed to the WAL."""

    evicted_records: int
    # The Truncate record plus the records of the GC pass it triggered.
    wal_bytes_written: int


@dataclass(frozen=True, slots=True)
class QueueSummary:
    """One queue in ``summary()``: its retained positions and oldest file."""

    # First retained position, or the next position when the queue is empty.
    start: int
    # Last retained position, None when empty.
    end: int | None
    # Number of the oldest WAL file holding one of its records, None when empty.
    file_number: int | None


@dataclass(frozen=True, slots=True)
class ResourceUsage:
    """What ``resource_usage()`` reports; ``max_memory_bytes`` bounds
    ``memory_used_bytes`` and ``max_disk_bytes`` bounds ``disk_used_bytes``."""

    # UTF-8 bytes of the queue names, plus each retained record's payload
    # bytes and 16 (its position and offset): exact, a function of the state.
    memory_used_bytes: int
    # What the queues' buffers hold allocated (depends on the allocator).
    memory_allocated_bytes: int
    # Number of WAL files times their size (files are created at full size).
    disk_used_bytes: int
