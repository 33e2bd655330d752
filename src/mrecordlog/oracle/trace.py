"""A typed trace of what an implementation did to its files, from outside.

The tracer (``oracle.tracer``) turns the system calls of an adapter process
into these events, with the operating system's bookkeeping already done:
file descriptors resolved to absolute paths (through ``dup``, ``fcntl`` and
``-y`` annotations), file offsets tracked (``lseek``, ``O_APPEND``, plain
``write``), vectored writes joined. The replayer (``oracle.replay``) applies
them to ``mrecordlog.fault_injection.SimulatedDisk``, so that crash images of
a foreign implementation come from the same persistence model as the
reference's.

``Answered`` and ``RequestRead`` place the adapter's protocol exchanges in the
same order as the file operations: an operation is acknowledged once its
answer line was written to stdout.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Create:
    """A file came into existence (open with ``O_CREAT`` of a missing path, ``creat``)."""

    path: str


@dataclass(frozen=True)
class Write:
    path: str
    offset: int
    data: bytes


@dataclass(frozen=True)
class Truncate:
    """``ftruncate``/``truncate``, ``O_TRUNC``, or a ``fallocate`` that extends the file."""

    path: str
    size: int


@dataclass(frozen=True)
class Sync:
    """``fsync``/``fdatasync`` of a file or directory (``path`` says which)."""

    path: str
    is_directory: bool


@dataclass(frozen=True)
class SyncAll:
    """``sync``/``syncfs``: everything becomes durable."""


@dataclass(frozen=True)
class Rename:
    source: str
    destination: str


@dataclass(frozen=True)
class Unlink:
    path: str


@dataclass(frozen=True)
class MakeDirectory:
    path: str


@dataclass(frozen=True)
class Link:
    source: str
    destination: str


@dataclass(frozen=True)
class RequestRead:
    """The adapter read ``count`` more request lines from stdin (in total: ``total``)."""

    count: int
    total: int


@dataclass(frozen=True)
class Answered:
    """The adapter wrote ``count`` more answer lines to stdout (in total: ``total``)."""

    count: int
    total: int


@dataclass(frozen=True)
class Unmodelled:
    """A call whose effect on the files the model cannot follow (``mmap`` of a
    file for writing, ``O_DIRECT``, ``io_uring``, ``sync_file_range`` ...):
    reported, never guessed."""

    syscall: str
    detail: str


TraceEvent = (
    Create
    | Write
    | Truncate
    | Sync
    | SyncAll
    | Rename
    | Unlink
    | MakeDirectory
    | Link
    | RequestRead
    | Answered
    | Unmodelled
)
