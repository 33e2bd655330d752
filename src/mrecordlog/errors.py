"""The error hierarchy: one base exception, one typed subclass per failure.

Every error carries the facts a caller needs to act on it (queue, position,
file, offset) as attributes, and a ``kind`` string: the error name used in the
JSON interchange formats (``results.jsonl``, the adapter protocol). Kinds that
mrecordlog 0.5 also reports (``AlreadyExists``, ``MissingQueue``, ``Past``,
``IoError``, ``Corruption``) keep its spelling.
"""

from __future__ import annotations


class MRecordLogError(Exception):
    """Base of every error raised by this package.

    :cvar kind: the error's name in the JSON interchange formats
        (``results.jsonl``, the adapter protocol): ``"Error"`` here, one per
        subclass (``"AlreadyExists"``, ``"IoError"``, ...).
    """

    kind: str = "Error"


class QueueAlreadyExists(MRecordLogError):
    """``create_queue`` on a queue that exists.

    :ivar queue: the queue's name.
    """

    kind = "AlreadyExists"

    def __init__(self, queue: str) -> None:
        super().__init__(f"queue {queue!r} already exists")
        self.queue = queue


class MissingQueue(MRecordLogError):
    """An operation named a queue that does not exist.

    :ivar queue: the name it gave.
    """

    kind = "MissingQueue"

    def __init__(self, queue: str) -> None:
        super().__init__(f"missing queue {queue!r}")
        self.queue = queue


class PositionInPast(MRecordLogError):
    """An append at an explicit position below the queue's next position.

    ``position == next_position - 1`` is not an error (it is the idempotent
    retry of the last append); anything lower is.

    :ivar queue: the queue's name.
    :ivar position: the position the append asked for.
    :ivar next_position: the queue's next position when it was refused.
    """

    kind = "Past"

    def __init__(self, queue: str, position: int, next_position: int) -> None:
        super().__init__(
            f"append to queue {queue!r} at position {position} is in the past: "
            f"the queue's next position is {next_position}"
        )
        self.queue = queue
        self.position = position
        self.next_position = next_position


class PositionOverflow(MRecordLogError):
    """An append whose records would need positions beyond the largest one.

    Records may use positions up to ``MAX_RECORD_POSITION`` (2^64 - 2), so that
    the queue's next position always fits in the format's unsigned 64 bits.

    :ivar queue: the queue's name.
    :ivar position: the position of the batch's first record.
    :ivar num_records: the number of records in the batch.
    """

    kind = "PositionOverflow"

    def __init__(self, queue: str, position: int, num_records: int) -> None:
        super().__init__(
            f"append of {num_records} record(s) to queue {queue!r} at position "
            f"{position} would use positions beyond 2^64 - 2"
        )
        self.queue = queue
        self.position = position
        self.num_records = num_records


class InvalidArgument(MRecordLogError, ValueError):
    """An argument that can never be valid, whatever the log's state: a wrong
    type, a position outside u64, a queue name longer than 65535 UTF-8 bytes, a
    payload that is not a C-contiguous buffer or is 2^32 bytes or more, a file
    size that is not a positive multiple of 32 KiB, an unknown persist action.

    Also a ``ValueError``.

    :ivar argument: the name of the parameter refused (``"queue"``,
        ``"position"``, ``"payloads"``, ...), or None where the error is not
        about one parameter.
    :ivar queue: the queue involved, when the call names a valid one; else None.
    """

    kind = "InvalidArgument"

    def __init__(self, message: str, *, queue: str | None = None, argument: str | None = None) -> None:
        super().__init__(message)
        self.queue = queue
        self.argument = argument


class StorageError(MRecordLogError):
    """An I/O error from the storage layer, naming the file and offset involved.
    A mutating call that raises it leaves the log fail-stopped (see
    ``LogFailed``).

    :ivar operation: what failed, such as ``"write"``, ``"fsync"``,
        ``"create"`` or ``"rename to <destination>"``.
    :ivar path: the file or directory it failed on.
    :ivar offset: the byte offset in the file where it failed, or None.
    :ivar cause: the ``OSError`` the operating system raised.
    :ivar errno: that error's ``errno`` (``errno.ENOSPC``, ...), or None.
    """

    kind = "IoError"

    def __init__(
        self,
        operation: str,
        path: str,
        cause: OSError,
        *,
        offset: int | None = None,
    ) -> None:
        where = path if offset is None else f"{path} at offset {offset}"
        super().__init__(f"{operation} failed on {where}: {cause}")
        self.operation = operation
        self.path = path
        self.offset = offset
        self.cause = cause
        self.errno = cause.errno


class CorruptionError(MRecordLogError):
    """The log's files cannot be replayed into a consistent state, or
    ``strict`` recovery refuses their damage. Raised by ``open`` (which has
    then changed nothing on disk) and ``inspect_log``. Each attribute is None
    when unknown or not relevant.

    :ivar file: the name of the WAL file where the problem is.
    :ivar offset: its byte offset in that file.
    :ivar queue: the queue of the record involved.
    :ivar position: the position of the record involved.
    """

    kind = "Corruption"

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        offset: int | None = None,
        queue: str | None = None,
        position: int | None = None,
    ) -> None:
        where = ""
        if file is not None:
            where = f" ({file}" + (f" at offset {offset}" if offset is not None else "") + ")"
        super().__init__(message + where)
        self.file = file
        self.offset = offset
        self.queue = queue
        self.position = position


class RecordDecodeError(CorruptionError):
    """Bytes that do not decode as a record. Recovery catches it and reports
    an ``undecodable_record`` damage: it does not escape ``open``.

    :ivar reason: why the bytes do not decode.
    :ivar offset: the byte offset within the record (not the file) where
        decoding failed.
    """

    def __init__(self, reason: str, *, offset: int) -> None:
        super().__init__(f"undecodable record: {reason} (at byte {offset} of the record)")
        self.reason = reason
        self.offset = offset


class ChecksumProfileMismatch(MRecordLogError):
    """``open`` was asked for one checksum profile and the log uses the other.

    :ivar requested: the profile asked for (``"crc32"`` or ``"crc32c"``).
    :ivar detected: the profile of the log's frames.
    :ivar file: the WAL file of the first valid frame, where it was detected.
    :ivar offset: that frame's byte offset in the file.
    """

    kind = "ChecksumProfileMismatch"

    def __init__(self, requested: str, detected: str, file: str, offset: int) -> None:
        super().__init__(
            f"the log was written with checksum profile {detected!r} "
            f"(first valid frame in {file} at offset {offset}), "
            f"but {requested!r} was requested"
        )
        self.requested = requested
        self.detected = detected
        self.file = file
        self.offset = offset


class FileSizeMismatch(MRecordLogError):
    """``open`` was asked for a file size other than the existing files' size.

    :ivar requested: the ``file_num_bytes`` asked for.
    :ivar found: the size the existing files were created with (their most
        common size), in bytes.
    :ivar file: the name of a file of that size.
    """

    kind = "FileSizeMismatch"

    def __init__(self, requested: int, found: int, file: str) -> None:
        super().__init__(f"file_num_bytes={requested} was requested but {file} is {found} bytes long")
        self.requested = requested
        self.found = found
        self.file = file


class LogFailed(MRecordLogError):
    """The log refuses mutations after an I/O error whose effect on disk is
    unknown (fail-stop); reopen it to recover from what the disk holds.
    ``close`` raises it too, after releasing the files, when calls that
    returned before the failure left bytes it could not persist.

    :ivar cause: the original error (a ``StorageError``, or a ``LogForked`` in
        a child process).
    :ivar unpersisted: from ``close``: the file and offset from which bytes of
        calls that returned were never written (or never fsynced, under a
        ``FLUSH_AND_FSYNC`` policy); None otherwise.
    """

    kind = "FailStop"

    def __init__(self, cause: BaseException, *, unpersisted: str | None = None) -> None:
        # A KeyboardInterrupt has no message: name the exception's type then.
        described = str(cause) or type(cause).__name__
        if unpersisted is None:
            message = f"the log stopped accepting writes after an earlier failure ({described}); reopen it"
        else:
            message = (
                f"closed without persisting {unpersisted}: the log had stopped accepting writes after an "
                f"earlier failure ({described}); reopen it to recover what the disk holds"
            )
        super().__init__(message)
        self.cause = cause
        self.unpersisted = unpersisted


class QueueModifiedDuringIteration(MRecordLogError, RuntimeError):
    """A ``range`` iterator was advanced after its queue was truncated or
    deleted. Also a ``RuntimeError``.

    :ivar queue: the queue's name.
    """

    kind = "ConcurrentModification"

    def __init__(self, queue: str) -> None:
        super().__init__(f"queue {queue!r} was truncated or deleted while a range over it was being read")
        self.queue = queue


class LogLocked(MRecordLogError):
    """Another open log (in this process or another) holds the directory.

    :ivar directory: the log directory.
    """

    kind = "Locked"

    def __init__(self, directory: str) -> None:
        super().__init__(f"the log directory {directory} is in use by another open log")
        self.directory = directory


class LogClosed(MRecordLogError):
    """An operation on a log that was closed, or a ``range`` iterator advanced
    after its log was closed.

    :ivar directory: the log's directory.
    """

    kind = "Closed"

    def __init__(self, directory: str) -> None:
        super().__init__(f"the log at {directory} is closed")
        self.directory = directory


class UnexpectedEntry(MRecordLogError):
    """The log directory holds an entry the log cannot own under one of its
    names: a directory, symlink or fifo named like a WAL file, or a
    ``quarantine`` that is not a directory. Nothing was changed; move the
    entry away and open again.

    :ivar path: the entry's path.
    :ivar entry_kind: what it is: ``"directory"``, ``"symlink"``, ``"file"``
        or ``"other"``.
    """

    kind = "UnexpectedEntry"

    def __init__(self, path: str, entry_kind: str) -> None:
        super().__init__(f"{path} is a {entry_kind}, not what the log keeps under that name; move it away")
        self.path = path
        self.entry_kind = entry_kind


class FileNumbersExhausted(MRecordLogError):
    """An append would need a WAL file after ``wal-18446744073709551615``, the
    last name the format has; nothing was written, and the log stays usable.

    :ivar file: the name of the last file.
    """

    kind = "FileNumbersExhausted"

    def __init__(self, file: str) -> None:
        super().__init__(f"the log reached its last file name ({file}): no later WAL file can be created")
        self.file = file


class LogForked(MRecordLogError):
    """The log object was inherited by a child process made by ``os.fork``.

    The child's copy is fail-stopped at the fork (mutations raise ``LogFailed``
    whose ``cause`` is this error; reads still work) and holds no lock: the
    files belong to the process that opened them. A child opens its own log.

    :ivar directory: the log's directory.
    :ivar parent_pid: the process id of the process that opened it.
    """

    kind = "Forked"

    def __init__(self, directory: str, parent_pid: int) -> None:
        super().__init__(
            f"the log at {directory} was opened by process {parent_pid} and inherited through fork; "
            "open it again in this process"
        )
        self.directory = directory
        self.parent_pid = parent_pid


class CapacityExceeded(MRecordLogError):
    """An append or a ``create_queue`` would take the log past a limit given to
    ``open`` (``max_memory_bytes`` or ``max_disk_bytes``). Nothing was written
    or changed; the log stays usable, and truncating or deleting queues makes
    room.

    :ivar limit_kind: which limit: ``"memory"`` (measured against
        ``resource_usage().memory_used_bytes``) or ``"disk"`` (against
        ``disk_used_bytes``).
    :ivar limit: the limit, in bytes.
    :ivar used: the figure before the call, in bytes.
    :ivar needed: what the call would add to it, in bytes.
    :ivar queue: the queue of the call.
    :ivar operation: the call refused: ``"append"`` or ``"create_queue"``.
    """

    kind = "CapacityExceeded"

    def __init__(self, limit_kind: str, *, operation: str, queue: str, limit: int, used: int, needed: int) -> None:
        super().__init__(
            f"{operation} on queue {queue!r} refused: it needs {needed} more bytes of {limit_kind} "
            f"while {used} are used and max_{limit_kind}_bytes is {limit}"
        )
        self.operation = operation
        self.limit_kind = limit_kind
        self.queue = queue
        self.limit = limit
        self.used = used
        self.needed = needed
