"""``MultiRecordLog``: the public facade over the WAL and the in-memory queues.

It validates arguments, writes each operation's record through the framing and
the rolling writer, persists according to the policy, runs the file GC, and
only then changes the in-memory queues: a call that fails changes nothing in
memory. After a failure whose effect on disk is unknown (any error while
writing, syncing or deleting) the log is fail-stopped: reads still work, every
mutation raises ``LogFailed`` until the log is reopened.

A log may be shared between threads: every public method runs under the log's
one re-entrant lock (a range iterator takes it for each step), so concurrent
calls take effect in one order, the order in which they took the lock.
"""

from __future__ import annotations

import contextlib
import operator
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType

from mrecordlog import _arguments
from mrecordlog._codec import (
    BLOCK_NUM_BYTES,
    MAX_RECORD_POSITION,
    MAX_U64,
    ChecksumProfile,
    DeleteQueueRecord,
    RecordPositionRecord,
    TruncateRecord,
    encode_append_records,
    encode_record,
)
from mrecordlog._framing import frame_record, max_framed_num_bytes
from mrecordlog._quarantine import check_quarantine_entry, discard_after, quarantine_collected_file
from mrecordlog._queues import RECORD_OVERHEAD_NUM_BYTES, Queues
from mrecordlog._recovery import RecoveryMode, RecoveryReport, replay
from mrecordlog._storage import DirectoryLock, OsStorage, Storage, file_size, has_data_from, sync_file
from mrecordlog._wal import (
    DEFAULT_FILE_NUM_BYTES,
    WalWriter,
    infer_file_num_bytes,
    parse_wal_file_name,
    wal_file_name,
    wal_files_of,
)
from mrecordlog.errors import (
    CapacityExceeded,
    ChecksumProfileMismatch,
    FileNumbersExhausted,
    FileSizeMismatch,
    InvalidArgument,
    LogClosed,
    LogFailed,
    LogForked,
    MissingQueue,
    PositionInPast,
    PositionOverflow,
    QueueAlreadyExists,
)
from mrecordlog.inspection import LogState, QueueState
from mrecordlog.outcomes import (
    AppendOutcome,
    CreateQueueOutcome,
    DeleteQueueOutcome,
    QueueSummary,
    Record,
    ResourceUsage,
    TruncateOutcome,
)
from mrecordlog.policy import (
    DEFAULT_PERSIST_POLICY,
    Always,
    OnDelay,
    PersistAction,
    PersistActionName,
    PersistPolicy,
)

Payload = bytes | bytearray | memoryview

# Reaching an enum member through its class is slow (it runs on every append
# under the default policy).
_FLUSH_AND_FSYNC = PersistAction.FLUSH_AND_FSYNC

# The command line checks --file-num-bytes with the rule ``open`` applies.
check_file_num_bytes = _arguments.file_num_bytes

# The logs this process opened (weakly: a closed or dropped log is skipped or
# gone), for the fork hooks below.
_OPEN_LOGS: weakref.WeakSet[MultiRecordLog] = weakref.WeakSet()
# The logs whose thread lock ``_lock_logs_before_fork`` took, in order.
_LOCKED_FOR_FORK: list[MultiRecordLog] = []


def _lock_logs_before_fork() -> None:
    """Before ``os.fork``: wait for every call in flight on an open log (in
    other threads) to end, and hold each log's lock across the fork, so that
    the child's copy of a log is the state between two calls, never half a
    call. (The forking thread may already hold a lock: it is re-entrant.)"""
    logs = list(_OPEN_LOGS)
    for log in logs:
        log._mutex.acquire()
        _LOCKED_FOR_FORK.append(log)


def _unlock_logs_after_fork() -> None:
    """After ``os.fork``, in the parent and in the child: release what
    ``_lock_logs_before_fork`` took. In the child the forking thread, the
    owner of these locks, is the one thread, and no other thread held a log's
    lock at the fork: the child's locks are free, none can deadlock it."""
    while _LOCKED_FOR_FORK:
        _LOCKED_FOR_FORK.pop()._mutex.release()


def _fail_stop_logs_in_forked_child() -> None:
    """In a child made by ``os.fork``: every inherited log refuses mutations.

    The child shares the parent's files, not its writer: a write from the
    child would land in the middle of what the parent writes. Reads of the
    child's in-memory copy still work. (The child's copies of the directory
    lock descriptors are closed by ``_storage``'s own fork hook.)
    """
    _unlock_logs_after_fork()
    for log in list(_OPEN_LOGS):
        log._stop_in_forked_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_lock_logs_before_fork,
        after_in_parent=_unlock_logs_after_fork,
        after_in_child=_fail_stop_logs_in_forked_child,
    )


def _limit(value: object, argument: str) -> int | None:
    """A limit given to ``open``: None (unlimited) or an int (not a bool) >= 0."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        number = operator.index(value)  # an exact int, whatever the subclass overrides
        if number >= 0:
            return number
        raise InvalidArgument(f"{argument} must be at least 0 (or None: no limit), got {number}", argument=argument)
    raise InvalidArgument(
        f"{argument} must be an int or None, got {type(value).__name__}: {value!r:.80}", argument=argument
    )


def disk_needed(writer: WalWriter, framed_num_bytes: int) -> int:
    """What appending ``framed_num_bytes`` adds to ``disk_used_bytes``: the
    size of each new file the writer would roll into (files are created at
    their full size)."""
    file_num_bytes = writer.file_num_bytes
    overflow = writer.offset + framed_num_bytes - file_num_bytes
    return -(-overflow // file_num_bytes) * file_num_bytes if overflow > 0 else 0


class MultiRecordLog:
    """Many independent queues multiplexed into one set of rolling WAL files.

    Open with ``MultiRecordLog.open(directory)``; use as a context manager or
    call ``close``. Safe to share between threads: every public method holds
    the log's lock while it runs (a range iterator, during each step).
    """

    def __init__(
        self,
        *,
        directory: str,
        storage: Storage,
        writer: WalWriter,
        queues: Queues,
        profile: ChecksumProfile,
        persist_policy: PersistPolicy,
        clock: Callable[[], float],
        recovery_report: RecoveryReport,
        lock: DirectoryLock,
        max_memory_bytes: int | None = None,
        max_disk_bytes: int | None = None,
    ) -> None:
        """Use ``MultiRecordLog.open``."""
        # Serialises the calls of threads sharing the log. Re-entrant: a
        # public method may call another, and the caller's code that a call
        # runs (a clock, a storage) may call the log.
        self._mutex = threading.RLock()
        self._lock = lock
        self._max_memory_bytes = max_memory_bytes
        self._max_disk_bytes = max_disk_bytes
        # One test on the append path when no limit is set.
        self._limited = max_memory_bytes is not None or max_disk_bytes is not None
        self._directory = directory
        self._storage = storage
        self._writer = writer
        self._queues = queues
        self._profile = profile
        self._policy = persist_policy
        self._clock = clock
        self._next_timed_persist = (
            clock() + persist_policy.interval_seconds if isinstance(persist_policy, OnDelay) else 0.0
        )
        self._recovery_report = recovery_report
        self._damaged_files = {
            number for number in (parse_wal_file_name(d.file) for d in recovery_report.damages) if number is not None
        }
        self._failure: BaseException | None = None
        # Where the bytes of the calls that returned before the failure end
        # (file number, offset); None for a forked child's copy.
        self._failed_at: tuple[int, int] | None = None
        self._closed = False
        _OPEN_LOGS.add(self)

    # -- opening and closing -------------------------------------------------

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        *,
        persist_policy: PersistPolicy = DEFAULT_PERSIST_POLICY,
        checksum: ChecksumProfile | str | None = None,
        file_num_bytes: int | None = None,
        storage: Storage | None = None,
        clock: Callable[[], float] = time.monotonic,
        recovery: RecoveryMode | str = RecoveryMode.POINT_IN_TIME,
        max_memory_bytes: int | None = None,
        max_disk_bytes: int | None = None,
    ) -> MultiRecordLog:
        """Open the log in ``directory`` (created if missing), replaying its files.

        ``recovery`` decides what damage does (``spec/DURABILITY.md``):
        ``point_in_time`` (default) stops replay at the first invalid frame,
        ``strict`` refuses any corruption but a torn tail, ``skip`` skips
        damaged frames as mrecordlog 0.5 does. Whatever recovery discards is
        moved to ``quarantine/`` in the directory before anything is written;
        ``recovery_report`` tells what happened.

        ``checksum`` is the profile of a new log (default ``crc32c``); an
        existing log keeps the profile it was written with, and asking for the
        other one raises ``ChecksumProfileMismatch``. ``file_num_bytes`` is the
        size of the files the writer creates (default 128 MiB, any multiple of
        32 KiB, at most 2^62); for an existing log it defaults to the size its
        files were created with (their most common size), and asking for
        another raises ``FileSizeMismatch`` (unless it is smaller and the files
        hold only zeros past it). ``directory`` is a str or an ``os.PathLike`` of
        str (bytes paths are refused).

        ``max_memory_bytes`` and ``max_disk_bytes`` (None: no limit) bound
        ``resource_usage().memory_used_bytes`` and ``disk_used_bytes``: an
        append or a ``create_queue`` that would take a figure past its limit
        raises ``CapacityExceeded`` having changed nothing (see
        ``docs/push-back.md``). A log may be opened over its limits: it then
        refuses those calls until truncations make room.

        Every argument is checked before anything on disk is touched: one that
        can never be valid raises ``InvalidArgument`` naming it.
        """
        path = _arguments.directory(directory)
        persist_policy = _arguments.persist_policy(persist_policy)
        requested_profile = _arguments.checksum_profile(checksum)
        mode = _arguments.recovery_mode(recovery)
        if file_num_bytes is not None:
            file_num_bytes = _arguments.file_num_bytes(file_num_bytes)
        clock = _arguments.clock(clock)
        max_memory = _limit(max_memory_bytes, "max_memory_bytes")
        max_disk = _limit(max_disk_bytes, "max_disk_bytes")
        storage = storage if storage is not None else OsStorage()
        if not storage.is_dir(path):
            storage.make_dirs(path)
            # The new directory's entry must survive a crash like its files.
            storage.sync_dir(os.path.dirname(path.rstrip("/")) or ".")
        lock = storage.lock_dir(path)
        try:
            return cls._open_locked(
                storage,
                path,
                lock,
                persist_policy,
                requested_profile,
                file_num_bytes,
                clock,
                mode,
                max_memory,
                max_disk,
            )
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _open_locked(
        cls,
        storage: Storage,
        path: str,
        lock: DirectoryLock,
        persist_policy: PersistPolicy,
        requested_profile: ChecksumProfile | None,
        file_num_bytes: int | None,
        clock: Callable[[], float],
        mode: RecoveryMode,
        max_memory_bytes: int | None,
        max_disk_bytes: int | None,
    ) -> MultiRecordLog:
        entries = storage.list_entries(path)
        file_numbers = wal_files_of(path, entries)
        check_quarantine_entry(path, entries)
        if file_numbers:
            sizes = {n: file_size(storage, os.path.join(path, wal_file_name(n))) for n in file_numbers}
            existing = infer_file_num_bytes(sizes)
            if file_num_bytes is not None and existing is not None and existing != file_num_bytes:
                _check_requested_file_num_bytes(storage, path, sizes, file_num_bytes, existing)
            size = file_num_bytes or existing or DEFAULT_FILE_NUM_BYTES
        else:
            size = file_num_bytes or DEFAULT_FILE_NUM_BYTES
            first = storage.create_file(os.path.join(path, wal_file_name(0)), size)
            try:
                first.sync()
            finally:
                first.close()
            storage.sync_dir(path)
            file_numbers = [0]
        result = replay(storage, path, file_numbers, mode, file_num_bytes=size)
        if result.profile is not None and requested_profile is not None and result.profile is not requested_profile:
            where = result.profile_detected_at
            raise ChecksumProfileMismatch(
                requested_profile.value,
                result.profile.value,
                wal_file_name(where.file_number) if where else "?",
                where.offset if where else 0,
            )
        profile = result.profile or requested_profile or ChecksumProfile.CRC32C
        resume = result.resume
        assert resume is not None
        file_numbers, report = discard_after(storage, path, file_numbers, resume, result.report, size)
        # What was recovered may sit unsynced in the page cache (after a process
        # crash): make it durable before any new operation can be acknowledged.
        for number in file_numbers:
            sync_file(storage, os.path.join(path, wal_file_name(number)))
        storage.sync_dir(path)
        writer = WalWriter(storage, path, file_numbers, size, resume.file_number, resume.offset)
        log = cls(
            directory=path,
            storage=storage,
            writer=writer,
            queues=result.queues,
            profile=profile,
            persist_policy=persist_policy,
            clock=clock,
            recovery_report=report,
            lock=lock,
            max_memory_bytes=max_memory_bytes,
            max_disk_bytes=max_disk_bytes,
        )
        try:
            log._collect_garbage(log._queues.file_live_counts_after(()), log._queues.empty_queues)
        except BaseException:
            writer.close()
            raise
        return log

    def close(self) -> None:
        """Flush (and fsync if the policy's action does) and release the files.

        Closing a fail-stopped log writes nothing: it releases the files, then
        raises ``LogFailed`` (its ``unpersisted`` names the file and offset) if
        the flush (or fsync) it skipped had something to persist, since calls
        that returned may then be lost. Closing twice is harmless.
        """
        with self._mutex:
            if self._closed:
                return
            failure = self._failure
            skipped: str | None = None
            try:
                if failure is None:
                    self._persist(self._policy.action)
                elif self._failed_at is not None:  # (a forked child's buffer is its parent's to write)
                    fsync = self._policy.action is PersistAction.FLUSH_AND_FSYNC
                    skipped = self._writer.unpersisted(self._failed_at, fsync=fsync)
            finally:
                self._closed = True
                try:
                    self._writer.close()
                finally:
                    self._lock.release()
            if failure is not None and skipped is not None:
                raise LogFailed(failure, unpersisted=skipped)

    def __enter__(self) -> MultiRecordLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        # The block's own exception is the one to see: a close that finds
        # nothing persisted after it must not replace it.
        with contextlib.suppress(LogFailed):
            self.close()

    def __repr__(self) -> str:
        # No lock: a repr must never wait (a debugger or a log line may ask
        # for it while another thread holds the log). Each field is read once.
        if self._closed:
            status = "closed"
        elif self._failure is not None:
            status = f"failed: {type(self._failure).__name__}"
        else:
            status = "open"
        limits = "".join(
            f", {name}={value}"
            for name, value in (("max_memory_bytes", self._max_memory_bytes), ("max_disk_bytes", self._max_disk_bytes))
            if value is not None
        )
        return (
            f"<MultiRecordLog {self._directory!r} {status}, {len(self._queues)} queue(s), "
            f"checksum {self._profile.value}{limits}>"
        )

    # -- properties ----------------------------------------------------------
    # Each reads one attribute that is set once (or atomically replaced), so
    # none takes the lock.

    @property
    def directory(self) -> str:
        """The log's directory, as ``open`` resolved it (a str)."""
        return self._directory

    @property
    def checksum_profile(self) -> ChecksumProfile:
        """The checksum profile the log's frames use (``crc32c`` or ``crc32``)."""
        return self._profile

    @property
    def file_num_bytes(self) -> int:
        """The size of each WAL file (a multiple of 32 KiB)."""
        return self._writer.file_num_bytes

    @property
    def persist_policy(self) -> PersistPolicy:
        """The policy deciding what each mutating call persists before it returns."""
        return self._policy

    @property
    def max_memory_bytes(self) -> int | None:
        """The limit on ``resource_usage().memory_used_bytes``, or None."""
        return self._max_memory_bytes

    @property
    def max_disk_bytes(self) -> int | None:
        """The limit on ``resource_usage().disk_used_bytes``, or None."""
        return self._max_disk_bytes

    @property
    def recovery_report(self) -> RecoveryReport:
        """What ``open`` found: files, checksum profile, damage skipped."""
        return self._recovery_report

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called (every later call raises ``LogClosed``)."""
        return self._closed

    @property
    def failed(self) -> BaseException | None:
        """The error that fail-stopped the log, or None."""
        return self._failure

    def wal_file_numbers(self) -> list[int]:
        """Numbers of the WAL files the log currently holds, in order."""
        with self._mutex:
            return list(self._writer.file_numbers)

    # -- queues --------------------------------------------------------------

    def create_queue(self, queue: str) -> CreateQueueOutcome:
        """Create an empty queue whose first position is 0; durable on return.

        Refused with ``CapacityExceeded`` if its name (memory) or its record
        (disk) would take the log past a limit."""
        with self._mutex:
            self._check_can_mutate()
            queue = _arguments.queue_name(queue)
            if queue in self._queues:
                raise QueueAlreadyExists(queue)
            writer = self._writer
            framed = frame_record(encode_record(RecordPositionRecord(queue, 0)), writer.block_offset, self._profile)
            if self._limited:
                self._check_limits("create_queue", queue, len(queue.encode()), len(framed))

            def write() -> int:
                writer.append(framed)
                writer.sync()
                return len(framed)

            written = self._mutating(write)
            self._queues.create(queue, 0)
            return CreateQueueOutcome(written)

    def delete_queue(self, queue: str) -> DeleteQueueOutcome:
        """Delete a queue and its records; durable on return. Never refused by
        a limit: it makes room."""
        with self._mutex:
            self._check_can_mutate()
            queue = _arguments.queue_name(queue)
            self._require(queue)
            next_position = self._queues.next_position(queue)
            releases = self._queue_releases(queue)
            live_after = self._queues.file_live_counts_after(releases)

            def empty_after() -> list[tuple[str, int]]:
                return [(name, nxt) for name, nxt in self._queues.empty_queues() if name != queue]

            def write() -> int:
                written = self._write(encode_record(DeleteQueueRecord(queue, next_position)))
                written += self._collect_garbage(live_after, empty_after)
                self._writer.sync()
                return written

            written = self._mutating(write)
            self._queues.delete(queue)
            return DeleteQueueOutcome(written)

    def queue_exists(self, queue: str) -> bool:
        """Whether a queue of that name exists."""
        with self._mutex:
            self._check_open()
            return _arguments.queue_name(queue) in self._queues

    def list_queues(self) -> list[str]:
        """Names of the existing queues, sorted."""
        with self._mutex:
            self._check_open()
            return self._queues.names()

    # -- appending -----------------------------------------------------------

    def append_record(self, queue: str, payload: Payload, *, position: int | None = None) -> AppendOutcome:
        """Append one record; see ``append_records``."""
        kind = type(payload)
        if kind is not bytes and kind is not bytearray:
            # Checked here so that a refusal names this call's parameter.
            payload = _arguments.payload(payload, queue=queue if isinstance(queue, str) else None)
        return self.append_records(queue, (payload,), position=position)

    def append_records(self, queue: str, payloads: Iterable[Payload], *, position: int | None = None) -> AppendOutcome:
        """Append a batch of records atomically (all of them or none, on disk too).

        Without ``position`` the records take the queue's next positions. With
        ``position = p``: if ``p + 1`` is the queue's next position the call is
        an idempotent retry and appends nothing; a smaller ``p`` raises
        ``PositionInPast``; otherwise the records take ``p, p + 1, ...`` (a
        ``p`` beyond the next position leaves a gap). An empty batch appends
        nothing (after the position checks). Durable per the persist policy.
        A batch that would take the log past ``max_memory_bytes`` (its payload
        bytes plus 16 per record) or ``max_disk_bytes`` (the files its frames
        would roll into) raises ``CapacityExceeded``, having changed nothing.

        ``payloads`` is an iterable (not a bare ``bytes`` or ``str``) of
        bytes-like objects: ``bytes``, ``bytearray``, or any C-contiguous
        buffer (an ``array``, a ``memoryview`` of any format or shape), whose
        record is its bytes (``nbytes`` of them, whatever its ``len``).
        """
        if self._closed or self._failure is not None:  # (``_check_can_mutate``'s test, inlined)
            self._check_can_mutate()
        # The arguments are checked, and the caller's iterable consumed,
        # before the lock is taken: the caller's code never runs under it.
        queue = _arguments.queue_name(queue)
        if position is not None:
            position = _arguments.position(position, queue=queue)
        batch = _arguments.batch(payloads, queue)
        with self._mutex:
            # Consuming the caller's iterable ran the caller's code, and other
            # threads may have run: check again before anything is written.
            if self._closed or self._failure is not None:
                self._check_can_mutate()
            try:
                next_position = self._queues.next_position(queue)
            except KeyError:
                raise MissingQueue(queue) from None
            if position is not None:
                if position + 1 == next_position:
                    return AppendOutcome(None, 0)
                if position < next_position:
                    raise PositionInPast(queue, position, next_position)
            if not batch:
                return AppendOutcome(None, 0)
            first = next_position if position is None else position
            last = first + len(batch) - 1
            if last > MAX_RECORD_POSITION:
                raise PositionOverflow(queue, first, len(batch))
            writer = self._writer
            framed = frame_record(
                encode_append_records(queue, first, batch), writer.offset % BLOCK_NUM_BYTES, self._profile
            )
            if self._limited:
                needed = sum(map(len, batch)) + RECORD_OVERHEAD_NUM_BYTES * len(batch)
                self._check_limits("append", queue, needed, len(framed))
            file_number = writer.current_file

            def write() -> int:
                writer.append(framed)
                self._persist_on_policy()
                return len(framed)

            written = self._mutating(write)
            self._queues.append_batch(queue, file_number, first, batch)
            return AppendOutcome(last, written)

    # -- truncating ----------------------------------------------------------

    def truncate(self, queue: str, position: int) -> TruncateOutcome:
        """Remove the queue's records up to and including ``position``.

        A ``position`` at or beyond the last record empties the queue, and the
        queue's next position becomes at least ``position + 1`` (capped at
        2^64 - 1). WAL files that no longer hold a live record are deleted.
        Never refused by a limit: it makes room (its own record may still need
        a new file, see ``docs/push-back.md``).
        """
        with self._mutex:
            self._check_can_mutate()
            queue = _arguments.queue_name(queue)
            position = _arguments.position(position, queue=queue)
            self._require(queue)
            plan = self._queues.plan_truncate(queue, position)
            live_after = self._queues.file_live_counts_after(plan.file_releases)
            becomes_empty = self._queues.num_records(queue) == plan.evicted_records

            def empty_after() -> list[tuple[str, int]]:
                empty = self._queues.empty_queues()
                if not becomes_empty:
                    return empty
                return sorted([(name, nxt) for name, nxt in empty if name != queue] + [(queue, plan.new_next_position)])

            def write() -> int:
                written = self._write(encode_record(TruncateRecord(queue, position)))
                written += self._collect_garbage(live_after, empty_after)
                self._persist_on_policy()
                return written

            written = self._mutating(write)
            self._queues.apply_truncate(plan)
            return TruncateOutcome(plan.evicted_records, written)

    # -- reading -------------------------------------------------------------

    def range(self, queue: str, start: int | None = None, end: int | None = None) -> Iterator[Record]:
        """Records with ``start <= position < end`` (bounds optional), in order.

        The iterator raises ``QueueModifiedDuringIteration`` if the queue is
        truncated or deleted before it is exhausted (appends are fine), and
        ``LogClosed`` if it is advanced after the log was closed. Each step
        holds the log's lock; other threads' calls may run between steps.
        """
        with self._mutex:
            self._check_open()
            queue = _arguments.queue_name(queue)
            start = _arguments.range_bound(start, "start", queue)
            end = _arguments.range_bound(end, "end", queue)
            self._require(queue)
            return self._queues.range(queue, start, end, self._check_open, self._mutex)

    def last_position(self, queue: str) -> int | None:
        """The position of the queue's last retained record, or None when it has none."""
        with self._mutex:
            self._check_open()
            queue = _arguments.queue_name(queue)
            self._require(queue)
            return self._queues.last_position(queue)

    def last_record(self, queue: str) -> Record | None:
        """The queue's last retained record, or None when it has none."""
        with self._mutex:
            self._check_open()
            queue = _arguments.queue_name(queue)
            self._require(queue)
            return self._queues.last_record(queue)

    def next_position(self, queue: str) -> int:
        """The position an append without an explicit position would take."""
        with self._mutex:
            self._check_open()
            queue = _arguments.queue_name(queue)
            self._require(queue)
            return self._queues.next_position(queue)

    def state(self) -> LogState:
        """A copy of every queue's next position and records."""
        with self._mutex:
            self._check_open()
            queues = self._queues
            return LogState(
                {
                    name: QueueState(queues.next_position(name), tuple(queues.range(name, None, None)))
                    for name in queues.names()
                }
            )

    def summary(self) -> dict[str, QueueSummary]:
        """Per queue, by name: first and last retained positions and oldest file."""
        with self._mutex:
            self._check_open()
            return {name: self._queues.summary(name) for name in self._queues.names()}

    def resource_usage(self) -> ResourceUsage:
        """Memory and disk the log uses; the limits of ``open`` bound two figures.

        ``memory_used_bytes``: the UTF-8 bytes of the queue names plus, per
        retained record, its payload bytes and 16 (its position and offset),
        which ``max_memory_bytes`` bounds. ``memory_allocated_bytes``: what the
        queues' buffers hold allocated (it depends on the allocator). ``disk_used_bytes``:
        the number of WAL files times their size (files are created at full
        size), which ``max_disk_bytes`` bounds.
        """
        with self._mutex:
            self._check_open()
            used, allocated = self._queues.memory_num_bytes()
            disk = len(self._writer.file_numbers) * self._writer.file_num_bytes
            return ResourceUsage(used, allocated, disk)

    # -- persisting ----------------------------------------------------------

    def persist(self, action: PersistAction | PersistActionName = PersistAction.FLUSH_AND_FSYNC) -> None:
        """Flush buffered writes to the OS, and fsync them if asked
        (``action`` is a ``PersistAction`` or its value, ``"flush"`` or
        ``"flush_and_fsync"``)."""
        with self._mutex:
            self._check_can_mutate()
            parsed = _arguments.persist_action(action)
            self._mutating(lambda: self._persist(parsed))

    # -- fork ----------------------------------------------------------------

    def _stop_in_forked_child(self) -> None:
        """Run in a child made by ``os.fork`` (see ``_fail_stop_logs_in_forked_child``)."""
        if not self._closed:
            self._failure = LogForked(self._directory, os.getppid())

    # -- internals -----------------------------------------------------------

    def _check_limits(self, operation: str, queue: str, memory_needed: int, framed_num_bytes: int) -> None:
        """Raise ``CapacityExceeded`` if a call adding ``memory_needed`` to
        ``memory_used_bytes`` and appending ``framed_num_bytes`` to the WAL
        would take a figure past its limit. Runs before anything is written."""
        limit = self._max_memory_bytes
        if limit is not None:
            used = self._queues.used_num_bytes
            if used + memory_needed > limit:
                raise CapacityExceeded(
                    "memory", operation=operation, queue=queue, limit=limit, used=used, needed=memory_needed
                )
        limit = self._max_disk_bytes
        if limit is not None:
            writer = self._writer
            size = writer.file_num_bytes
            used = len(writer.file_numbers) * size
            # Most calls fit in the current file: no call to work out new files.
            needed = disk_needed(writer, framed_num_bytes) if writer.offset + framed_num_bytes > size else 0
            if used + needed > limit:
                raise CapacityExceeded("disk", operation=operation, queue=queue, limit=limit, used=used, needed=needed)

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosed(self._directory)

    def _check_can_mutate(self) -> None:
        if self._closed:  # ``_check_open``, inlined: this runs twice per append
            raise LogClosed(self._directory)
        if self._failure is not None:
            raise LogFailed(self._failure)

    def _require(self, queue: str) -> None:
        if queue not in self._queues:
            raise MissingQueue(queue)

    def _mutating(self, action: Callable[[], int | None]) -> int:
        """Run the disk part of a mutation; any exception fail-stops the log,
        except a refusal at the last file name raised before a byte was
        appended: the call then changed nothing, in memory or on disk."""
        writer = self._writer
        start = (writer.current_file, writer.offset)
        try:
            return action() or 0
        except FileNumbersExhausted as refusal:
            if (writer.current_file, writer.offset) != start:
                self._failure, self._failed_at = refusal, start
            raise
        except BaseException as exc:
            # Where the bytes of the calls that returned end: what close
            # must report if they never reached the file (or an fsync).
            self._failure, self._failed_at = exc, start
            raise

    def _write(self, record: bytes) -> int:
        writer = self._writer
        framed = frame_record(record, writer.offset % BLOCK_NUM_BYTES, self._profile)
        writer.append(framed)
        return len(framed)

    def _persist(self, action: PersistAction) -> None:
        if action is _FLUSH_AND_FSYNC:
            self._writer.sync()
        else:
            self._writer.flush()

    def _persist_on_policy(self) -> None:
        policy = self._policy
        if isinstance(policy, Always):
            self._persist(policy.action)
        elif isinstance(policy, OnDelay):
            now = self._clock()
            if now > self._next_timed_persist:
                self._persist(policy.action)
                self._next_timed_persist = now + policy.interval_seconds

    def _queue_releases(self, queue: str) -> list[tuple[int, int]]:
        plan = self._queues.plan_truncate(queue, MAX_U64)
        return list(plan.file_releases)

    def _take_out_collected_file(self, file_number: int) -> None:
        """Delete a file GC collected, unless recovery reported damage in it:
        that one goes to the quarantine (damaged bytes are never destroyed
        silently, even when no live record remains in the file)."""
        if file_number in self._damaged_files:
            quarantine_collected_file(self._storage, self._directory, file_number, self._recovery_report)
            self._damaged_files.discard(file_number)
        else:
            self._storage.remove_file(os.path.join(self._directory, wal_file_name(file_number)))

    def _collect_garbage(
        self, live_after: Mapping[int, int], empty_after: Callable[[], Sequence[tuple[str, int]]]
    ) -> int:
        """Delete leading files without live records; returns bytes written.

        Before deleting, it writes a position record for every empty queue
        (by name) and syncs, so that no queue's position lives only in a
        deleted file and nothing written earlier can be lost while a later
        deletion survives. The file that is current when the pass starts is
        kept even if these records roll the writer past it: it may hold the
        beginning of one of them (mrecordlog 0.5 keeps it too).
        """
        writer = self._writer

        def is_live(file_number: int) -> bool:
            return bool(live_after.get(file_number, 0))

        if not writer.collectable_files(is_live):
            return 0
        # Only now, with a file to collect, are the empty queues listed: a call
        # that collects nothing costs nothing per queue.
        records = [encode_record(RecordPositionRecord(name, next_position)) for name, next_position in empty_after()]
        if not writer.fits(sum(max_framed_num_bytes(len(record)) for record in records)):
            # At the last file name: collecting is only an economy, so the pass
            # is skipped rather than refusing the operation (or the open).
            return 0
        keep_from = writer.current_file
        written = 0
        for record in records:
            written += self._write(record)
        writer.sync()
        writer.remove_files(writer.collectable_files(is_live, keep_from), self._take_out_collected_file)
        return written


def _check_requested_file_num_bytes(
    storage: Storage, directory: str, sizes: dict[int, int], requested: int, existing: int
) -> None:
    """Accept a ``file_num_bytes`` smaller than the files' most common size
    only if every file is at least that long and holds nothing but zeros past
    it: zero blocks appended to a file are no different file size, and
    reading each file as ``requested`` long then loses nothing. Otherwise
    raise ``FileSizeMismatch``."""
    for number in sorted(sizes):
        path = os.path.join(directory, wal_file_name(number))
        if sizes[number] < requested or (sizes[number] > requested and has_data_from(storage, path, requested)):
            example = next(n for n in sorted(sizes) if sizes[n] == existing)
            raise FileSizeMismatch(requested, existing, wal_file_name(example))
