"""Values returned by the log: records, per-operation outcomes, summaries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class Record(NamedTuple):
    """One record of a queue, as ``range`` and ``last_record`` return it.

    :ivar position: its position in the queue (0 to 2^64 - 2).
    :ivar payload: its bytes, as appended.
    """

    position: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class CreateQueueOutcome:
    """What ``create_queue`` did: the bytes it pushed to the WAL.

    :ivar wal_bytes_written: bytes pushed to the WAL (block padding, frame
        headers and record bytes): the count mrecordlog 0.5 gives.
    """

    wal_bytes_written: int


@dataclass(frozen=True, slots=True)
class DeleteQueueOutcome:
    """What ``delete_queue`` did: the bytes it pushed to the WAL.

    :ivar wal_bytes_written: bytes pushed to the WAL by the DeleteQueue record
        and by the records of the file garbage collection it triggered.
    """

    wal_bytes_written: int


@dataclass(frozen=True, slots=True)
class AppendOutcome:
    """What an append did: the last position it gave, and the bytes it pushed to the WAL.

    :ivar last_position: the position of the batch's last record, or None when
        nothing was appended (an empty batch, or the idempotent retry of the
        last append).
    :ivar wal_bytes_written: frame headers, record bytes and block padding
        pushed to the WAL (0 when nothing was appended).
    """

    last_position: int | None
    wal_bytes_written: int


@dataclass(frozen=True, slots=True)
class TruncateOutcome:
    """What ``truncate`` did: how many records it removed, and the bytes it pushed to the WAL.

    :ivar evicted_records: the number of records removed from the queue.
    :ivar wal_bytes_written: bytes pushed to the WAL by the Truncate record and
        by the records of the file garbage collection it triggered.
    """

    evicted_records: int
    wal_bytes_written: int


@dataclass(frozen=True, slots=True)
class QueueSummary:
    """One queue in ``summary()``: its retained positions and oldest file.

    :ivar start: the first retained position, or the queue's next position
        when it is empty.
    :ivar end: the last retained position, or None when the queue is empty.
    :ivar file_number: the number of the oldest WAL file holding one of the
        queue's records (the file the queue keeps alive), or None when the
        queue is empty.
    """

    start: int
    end: int | None
    file_number: int | None


@dataclass(frozen=True, slots=True)
class ResourceUsage:
    """What ``resource_usage()`` reports; ``max_memory_bytes`` bounds
    ``memory_used_bytes`` and ``max_disk_bytes`` bounds ``disk_used_bytes``.

    :ivar memory_used_bytes: the UTF-8 bytes of the queue names, plus each
        retained record's payload bytes and 16 (its position and offset):
        exact, a function of the state alone.
    :ivar memory_allocated_bytes: what the queues' in-memory buffers hold
        allocated, as ``sys.getsizeof`` reports it (depends on the allocator).
    :ivar disk_used_bytes: the number of WAL files times their size
        (``file_num_bytes``): files are created at full size, so this is their
        apparent size, not the blocks the file system allocated.
    """

    memory_used_bytes: int
    memory_allocated_bytes: int
    disk_used_bytes: int
