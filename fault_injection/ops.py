"""Pending operations: what a ``SimulatedDisk`` has accepted but not yet made
durable, and how a data operation changes a file's bytes.

Each mutating storage call appends one or two operations, each with a global
sequence number (``seq``) in issue order. Data operations (``WriteOp``,
``ResizeOp``) belong to an inode and become durable on that file's fsync;
directory operations (``LinkOp``, ``UnlinkOp``, ``RenameOp``) belong to
directories and become durable on ``sync_dir``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WriteOp:
    """``data`` written at ``offset`` of the inode (``path`` is its name when written)."""

    seq: int
    inode: int
    path: str
    offset: int
    data: bytes

    def __repr__(self) -> str:
        # A write may carry a whole file's bytes: show where, not what.
        where = f"seq={self.seq}, inode={self.inode}, path={self.path!r}, offset={self.offset}"
        return f"WriteOp({where}, len={len(self.data)})"


@dataclass(frozen=True, slots=True)
class ResizeOp:
    """The inode cut or zero-extended to ``size`` (``create_file``'s preallocation)."""

    seq: int
    inode: int
    path: str
    size: int


@dataclass(frozen=True, slots=True)
class LinkOp:
    """A new directory entry ``name`` -> ``inode`` (file creation)."""

    seq: int
    directory: str
    name: str
    inode: int


@dataclass(frozen=True, slots=True)
class UnlinkOp:
    """The directory entry ``name`` -> ``inode`` removed (file removal)."""

    seq: int
    directory: str
    name: str
    inode: int


@dataclass(frozen=True, slots=True)
class RenameOp:
    """The entry moved from ``source_directory/source_name`` to
    ``destination_directory/destination_name``, as one atomic operation: a
    crash image keeps or drops both halves together (journaling file systems
    commit a rename in one transaction). It is durable once every directory it
    touches has been synced after it."""

    seq: int
    inode: int
    source_directory: str
    source_name: str
    destination_directory: str
    destination_name: str

    @property
    def directories(self) -> frozenset[str]:
        return frozenset((self.source_directory, self.destination_directory))


DataOp = WriteOp | ResizeOp
DirectoryOp = LinkOp | UnlinkOp | RenameOp
PendingOp = WriteOp | ResizeOp | LinkOp | UnlinkOp | RenameOp


def write_into(content: bytearray, offset: int, data: bytes | bytearray | memoryview) -> None:
    """pwrite semantics: overwrite at ``offset``, zero-filling any gap past the end."""
    end = offset + len(data)
    if offset > len(content):
        content.extend(bytes(offset - len(content)))
    content[offset:end] = data


def resize(content: bytearray, size: int) -> None:
    """ftruncate semantics: cut, or extend with zeros."""
    if size < len(content):
        del content[size:]
    else:
        content.extend(bytes(size - len(content)))


def apply_data_op(content: bytearray, op: DataOp) -> None:
    if isinstance(op, WriteOp):
        write_into(content, op.offset, op.data)
    else:
        resize(content, op.size)
