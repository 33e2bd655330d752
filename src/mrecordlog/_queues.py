"""In-memory queues: every retained record, stored compactly.

Each queue keeps its payloads concatenated in one ``bytearray`` (the arena) and
two ``array('Q')`` columns (position, start offset), so a million small records
cost a few arrays rather than a million Python objects. Truncating the head
only moves an index; the dead prefix is dropped in one slice once it outweighs
what is live. Each queue also remembers which WAL file each of its records is
attributed to (as runs of (file, count)), and ``Queues`` keeps the number of
live records per file: a file with none can be garbage-collected.

Mutations that the log must be able to abandon (truncate, delete) are split
into a pure ``plan`` and an ``apply``, so the log can write to disk first and
change memory only once the write has succeeded.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Protocol

from mrecordlog._codec import MAX_U64, PackedAppendRecords
from mrecordlog.errors import QueueModifiedDuringIteration
from mrecordlog.outcomes import QueueSummary, Record

# ``Record(position, payload)`` without the Python-level ``__new__`` of a
# NamedTuple (what its ``_make`` does): one record per step of a range.
_new_record = tuple.__new__

# Compaction waits for at least this many dead records / bytes, so that a queue
# truncated one record at a time is not sliced on every call.
_MIN_DEAD_RECORDS = 1024
_MIN_DEAD_BYTES = 1 << 20

# What ``memory_used_bytes`` counts per retained record besides its payload:
# its position and its start offset (two 8-byte columns).
RECORD_OVERHEAD_NUM_BYTES = 16


class StepLock(Protocol):
    """What a range needs of its log's lock (a ``threading.RLock``)."""

    def acquire(self) -> bool: ...

    def release(self) -> None: ...


class _Queue:
    __slots__ = ("arena", "arena_base", "epoch", "head", "next_position", "positions", "runs", "starts")

    def __init__(self, next_position: int) -> None:
        self.next_position = next_position
        self.positions = array("Q")
        self.starts = array("Q")  # logical offset of each payload (arena_base + index in arena)
        self.arena = bytearray()
        self.arena_base = 0
        self.head = 0  # index of the first live record
        self.runs: deque[list[int]] = deque()  # [file_number, live record count], oldest first
        self.epoch = 0  # bumped whenever indexes of live records change

    def __len__(self) -> int:
        return len(self.positions) - self.head

    def payload(self, index: int) -> bytes:
        start = self.starts[index] - self.arena_base
        if index + 1 < len(self.starts):
            end = self.starts[index + 1] - self.arena_base
        else:
            end = len(self.arena)
        return bytes(self.arena[start:end])

    def live_payload_num_bytes(self) -> int:
        if self.head >= len(self.starts):
            return 0
        return len(self.arena) - (self.starts[self.head] - self.arena_base)

    def attribute(self, file_number: int, count: int) -> None:
        """The last ``count`` records added are attributed to ``file_number``."""
        runs = self.runs
        if runs and runs[-1][0] == file_number:
            runs[-1][1] += count
        else:
            runs.append([file_number, count])

    def compact_if_worthwhile(self) -> None:
        dead_records = self.head
        if self.head < len(self.starts):
            dead_bytes = self.starts[self.head] - self.arena_base
        else:
            dead_bytes = len(self.arena)
        live_records = len(self.positions) - self.head
        live_bytes = len(self.arena) - dead_bytes
        records_worth = dead_records >= _MIN_DEAD_RECORDS and dead_records >= live_records
        bytes_worth = dead_bytes >= _MIN_DEAD_BYTES and dead_bytes >= live_bytes
        if not (records_worth or bytes_worth or (live_records == 0 and dead_records)):
            return
        self.positions = self.positions[self.head :]
        self.starts = self.starts[self.head :]
        del self.arena[:dead_bytes]
        self.arena_base += dead_bytes
        self.head = 0
        self.epoch += 1


@dataclass(frozen=True, slots=True)
class TruncatePlan:
    """What ``truncate(queue, position)`` would change, computed without changing it."""

    queue: str
    new_head: int
    evicted_records: int
    new_next_position: int
    # Payload bytes of the evicted records.
    evicted_payload_num_bytes: int
    # (file_number, live records that file loses), oldest first.
    file_releases: tuple[tuple[int, int], ...]
    epoch: int


class Queues:
    """All queues of a log, plus live-record counts per WAL file."""

    def __init__(self) -> None:
        self._queues: dict[str, _Queue] = {}
        self._live_per_file: dict[int, int] = {}
        # ``memory_used_bytes``, kept up to date by every change (the log
        # compares it with ``max_memory_bytes`` on every append): queue names'
        # UTF-8 bytes, plus each retained record's payload and 16 bytes.
        self.used_num_bytes = 0

    # -- reading -------------------------------------------------------------

    def __contains__(self, queue: str) -> bool:
        return queue in self._queues

    def __len__(self) -> int:
        return len(self._queues)

    def names(self) -> list[str]:
        return sorted(self._queues)

    def next_position(self, queue: str) -> int:
        return self._queues[queue].next_position

    def num_records(self, queue: str) -> int:
        return len(self._queues[queue])

    def last_position(self, queue: str) -> int | None:
        q = self._queues[queue]
        return q.positions[-1] if len(q) else None

    def last_record(self, queue: str) -> Record | None:
        q = self._queues[queue]
        if not len(q):
            return None
        index = len(q.positions) - 1
        return Record(q.positions[index], q.payload(index))

    def range(
        self,
        queue: str,
        start: int | None,
        end: int | None,
        check_open: Callable[[], None] | None = None,
        lock: StepLock | None = None,
    ) -> Iterator[Record]:
        """Records with ``start <= position < end`` (either bound optional).

        ``check_open`` is called each time the iterator is advanced (the last,
        exhausting advance included): the log's check that it is still open,
        so that an iterator outliving its log raises instead of reading on.
        ``lock`` (the log's) is held during each step, never between steps:
        another thread may change the queues between two records."""
        q = self._queues[queue]
        epoch = q.epoch
        lo = q.head if start is None else bisect_left(q.positions, start, q.head)
        hi = len(q.positions) if end is None else bisect_left(q.positions, end, lo)
        if lock is None:
            return self._iterate(queue, q, epoch, lo, hi, check_open)
        return self._iterate_locked(queue, q, epoch, lo, hi, check_open, lock)

    def _iterate(
        self,
        name: str,
        q: _Queue,
        epoch: int,
        lo: int,
        hi: int,
        check_open: Callable[[], None] | None,
    ) -> Iterator[Record]:
        # The columns and the arena are changed in place by appends, and
        # replaced or shifted only by changes that bump the epoch (a deletion
        # included), so they can be held here while the epoch holds.
        positions, starts, arena, base = q.positions, q.starts, q.arena, q.arena_base
        for index in range(lo, hi):
            if check_open is not None:
                check_open()
            if q.epoch != epoch:
                raise QueueModifiedDuringIteration(name)
            end = starts[index + 1] - base if index + 1 < len(starts) else len(arena)
            yield _new_record(Record, (positions[index], bytes(arena[starts[index] - base : end])))
        if check_open is not None:
            check_open()

    def _iterate_locked(
        self,
        name: str,
        q: _Queue,
        epoch: int,
        lo: int,
        hi: int,
        check_open: Callable[[], None] | None,
        lock: StepLock,
    ) -> Iterator[Record]:
        """``_iterate`` holding ``lock`` during each step, never across a
        ``yield``. (A separate loop so that ranges no thread shares, replay's
        and ``state()``'s, pay nothing; bound ``acquire``/``release`` cost
        less than a ``with`` on every step.)"""
        positions, starts, arena, base = q.positions, q.starts, q.arena, q.arena_base
        acquire, release = lock.acquire, lock.release
        for index in range(lo, hi):
            acquire()
            try:
                if check_open is not None:
                    check_open()
                if q.epoch != epoch:
                    raise QueueModifiedDuringIteration(name)
                end = starts[index + 1] - base if index + 1 < len(starts) else len(arena)
                record = _new_record(Record, (positions[index], bytes(arena[starts[index] - base : end])))
            finally:
                release()
            yield record
        acquire()
        try:
            if check_open is not None:
                check_open()
        finally:
            release()

    def empty_queues(self) -> list[tuple[str, int]]:
        """(name, next position) of every queue without records, by name."""
        return sorted((name, q.next_position) for name, q in self._queues.items() if not len(q))

    def summary(self, queue: str) -> QueueSummary:
        q = self._queues[queue]
        if not len(q):
            return QueueSummary(start=q.next_position, end=None, file_number=None)
        return QueueSummary(start=q.positions[q.head], end=q.positions[-1], file_number=q.runs[0][0])

    def memory_num_bytes(self) -> tuple[int, int]:
        """(bytes used by live records, bytes allocated), payloads and columns included."""
        allocated = 0
        for name, q in self._queues.items():
            allocated += (
                sys.getsizeof(name) + sys.getsizeof(q.arena) + sys.getsizeof(q.positions) + sys.getsizeof(q.starts)
            )
        return self.used_num_bytes, allocated

    def queue_used_num_bytes(self, queue: str) -> int:
        """What the queue counts in ``used_num_bytes`` (computed, not kept)."""
        q = self._queues[queue]
        return len(queue.encode()) + q.live_payload_num_bytes() + RECORD_OVERHEAD_NUM_BYTES * len(q)

    # -- changing ------------------------------------------------------------

    def create(self, queue: str, next_position: int = 0) -> None:
        assert queue not in self._queues
        self._queues[queue] = _Queue(next_position)
        self.used_num_bytes += len(queue.encode())

    def delete(self, queue: str) -> None:
        self.used_num_bytes -= self.queue_used_num_bytes(queue)
        q = self._queues.pop(queue)
        for file_number, count in q.runs:
            self._release(file_number, count)
        q.epoch += 1

    def _release(self, file_number: int, count: int) -> None:
        left = self._live_per_file[file_number] - count
        if left:
            self._live_per_file[file_number] = left
        else:
            del self._live_per_file[file_number]

    def append_batch(
        self, queue: str, file_number: int, first_position: int, payloads: Sequence[bytes | bytearray | memoryview]
    ) -> None:
        """Records at consecutive positions from ``first_position`` (which the
        caller checked is at least the queue's next position)."""
        # The append hot path: a few C calls, and ``_Queue.attribute`` inlined.
        q = self._queues[queue]
        count = len(payloads)
        arena = q.arena
        arena_num_bytes = len(arena)
        if count == 1:
            q.positions.append(first_position)
            q.starts.append(q.arena_base + len(arena))
            arena += payloads[0]
        elif count:
            q.positions.extend(range(first_position, first_position + count))
            q.starts.extend(accumulate(map(len, payloads[:-1]), initial=q.arena_base + len(arena)))
            for payload in payloads:
                arena += payload
        q.next_position = first_position + count
        if not count:
            return
        self.used_num_bytes += len(arena) - arena_num_bytes + RECORD_OVERHEAD_NUM_BYTES * count
        runs = q.runs
        if runs and runs[-1][0] == file_number:
            runs[-1][1] += count
        else:
            runs.append([file_number, count])
        live = self._live_per_file
        live[file_number] = live.get(file_number, 0) + count

    def append_replayed(self, file_number: int, record: PackedAppendRecords) -> None:
        """The entries of an AppendRecords record read back from the log, whose
        positions the caller checked (increasing, from the queue's next
        position on, each below the largest), in a few C calls."""
        positions = record.positions
        if not positions:
            return
        q = self._queues[record.queue]
        q.positions.extend(positions)
        q.starts.extend(accumulate(record.sizes[:-1], initial=q.arena_base + len(q.arena)))
        q.arena += record.payloads
        self.used_num_bytes += len(record.payloads) + RECORD_OVERHEAD_NUM_BYTES * len(positions)
        q.attribute(file_number, len(positions))
        q.next_position = positions[-1] + 1
        self._live_per_file[file_number] = self._live_per_file.get(file_number, 0) + len(positions)

    def reset(self, queue: str, next_position: int) -> None:
        """Make the queue exist, empty, with this next position (replay of a
        position record)."""
        if queue in self._queues:
            self.delete(queue)
        self.create(queue, next_position)

    def plan_truncate(self, queue: str, position: int) -> TruncatePlan:
        q = self._queues[queue]
        new_head = bisect_right(q.positions, position, q.head)
        evicted = new_head - q.head
        releases: list[tuple[int, int]] = []
        remaining = evicted
        for file_number, count in q.runs:
            if not remaining:
                break
            taken = min(count, remaining)
            releases.append((file_number, taken))
            remaining -= taken
        new_next = max(q.next_position, min(position + 1, MAX_U64))
        if not evicted:
            evicted_num_bytes = 0
        elif new_head < len(q.starts):
            evicted_num_bytes = q.starts[new_head] - q.starts[q.head]
        else:
            evicted_num_bytes = q.live_payload_num_bytes()
        return TruncatePlan(queue, new_head, evicted, new_next, evicted_num_bytes, tuple(releases), q.epoch)

    def apply_truncate(self, plan: TruncatePlan) -> None:
        q = self._queues[plan.queue]
        assert q.epoch == plan.epoch, "a truncate plan must be applied to the state it was made from"
        for file_number, taken in plan.file_releases:
            self._release(file_number, taken)
            run = q.runs[0]
            run[1] -= taken
            if not run[1]:
                q.runs.popleft()
        q.head = plan.new_head
        q.next_position = plan.new_next_position
        self.used_num_bytes -= plan.evicted_payload_num_bytes + RECORD_OVERHEAD_NUM_BYTES * plan.evicted_records
        if plan.evicted_records:
            q.epoch += 1
            q.compact_if_worthwhile()

    def file_live_counts_after(self, releases: Sequence[tuple[int, int]]) -> dict[int, int]:
        """Live records per file once ``releases`` are applied (for a GC decision
        made before memory changes)."""
        counts = dict(self._live_per_file)
        for file_number, count in releases:
            counts[file_number] -= count
        return counts

    def live_runs(self, queue: str) -> list[tuple[int, int]]:
        """The queue's retained records as runs of (file number, record count),
        oldest first: which file each record is attributed to."""
        return [(file_number, count) for file_number, count in self._queues[queue].runs]
