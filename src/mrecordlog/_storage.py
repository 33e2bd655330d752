"""The one I/O seam: the ``Storage`` protocol and ``OsStorage``, its OS implementation.

The core reaches the disk only through these few calls; ``OsStorage`` is the
only code in the package that calls ``os`` for file I/O. The fault-injecting
disk in ``mrecordlog.fault_injection`` implements the same protocol. Every
method raises ``StorageError`` (never a bare ``OSError``), naming the path and
offset.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import weakref
from collections.abc import Iterator
from typing import Literal, Protocol

from mrecordlog.errors import LogLocked, StorageError


class StorageFile(Protocol):
    """An open file, as a ``Storage`` opens or creates it. Offsets and sizes are
    in bytes from the start of the file; nothing depends on a file cursor.
    Every method raises ``StorageError`` on failure, never a bare ``OSError``."""

    @property
    def path(self) -> str:
        """The path the file was opened at (what errors name)."""
        ...

    def read_at(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``offset``; fewer only at the end of the file."""
        ...

    def write_at(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data`` at ``offset`` (into the page cache: not durable)."""
        ...

    def sync(self) -> None:
        """Make the file's written data and size durable (fsync)."""
        ...

    def truncate(self, size: int) -> None:
        """Cut the file to ``size`` bytes, or extend it with zeros (ftruncate;
        durable once synced)."""
        ...

    def size(self) -> int:
        """The file's current size, in bytes."""
        ...

    def next_data(self, offset: int) -> int:
        """An offset at or after ``offset`` before which every byte is zero
        (the size when the rest is zeros). Returning ``offset`` itself is
        always correct; a sparse-aware file can skip holes."""
        ...

    def close(self) -> None:
        """Release the file; the log does not use it afterwards."""
        ...


class Storage(Protocol):
    """A directory tree of regular files: the only way the log reaches the
    disk. Give one to ``open`` or ``inspect_log`` as ``storage=`` (the default
    is ``OsStorage``): to inject faults, or to keep the files elsewhere. Paths
    are ``str``; every method raises ``StorageError`` on failure (never a bare
    ``OSError``), naming the path and, where there is one, the offset."""

    def list_files(self, directory: str) -> list[str]:
        """Names of the regular files (not symlinks, not directories) in ``directory``."""
        ...

    def list_entries(self, directory: str) -> dict[str, EntryKind]:
        """Every entry of ``directory``, whatever its kind (symlinks not followed)."""
        ...

    def is_dir(self, path: str) -> bool:
        """Whether ``path`` is an existing directory (False when nothing is
        there)."""
        ...

    def make_dirs(self, path: str) -> None:
        """Create ``path`` and missing parents (no error if it exists)."""
        ...

    def create_file(self, path: str, size: int) -> StorageFile:
        """Create a new file (it must not exist) of ``size`` zero bytes, opened read-write."""
        ...

    def open_file(self, path: str, *, writable: bool) -> StorageFile:
        """Open an existing file, read-write when ``writable``, else read-only."""
        ...

    def remove_file(self, path: str) -> None:
        """Delete a file; durable once its directory is synced."""
        ...

    def rename(self, source: str, destination: str) -> None:
        """Atomically move a file (``destination`` must not exist); durable once
        both directories are synced."""
        ...

    def sync_dir(self, path: str) -> None:
        """Make the directory's entries (creations, removals) durable."""
        ...

    def lock_dir(self, path: str) -> DirectoryLock:
        """Take the directory for exclusive use by one open log; raises
        ``LogLocked`` if another holder has it. Returns a lock whose
        ``release()`` gives the directory back (the log calls it on ``close``)."""
        ...


EntryKind = Literal["file", "directory", "symlink", "other"]


class DirectoryLock(Protocol):
    def release(self) -> None: ...


def file_size(storage: Storage, path: str) -> int:
    """The size of the file at ``path`` (opened, measured, closed)."""
    handle = storage.open_file(path, writable=False)
    try:
        return handle.size()
    finally:
        handle.close()


# Bytes read at a time by the scans below: memory stays bounded whatever the
# files' sizes (a sparse file can claim terabytes).
_CHUNK = 1 << 20


def nonzero_chunks(handle: StorageFile, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) of the chunks of ``[start, end)`` that hold a non-zero
    byte, read in bounded pieces, skipping the holes the file reports."""
    offset = handle.next_data(start) if start < end else end
    while offset < end:
        chunk = handle.read_at(offset, min(_CHUNK, end - offset))
        if not chunk:
            return
        if chunk.count(0) != len(chunk):
            yield offset, chunk
        following = offset + len(chunk)
        offset = max(following, handle.next_data(following)) if following < end else following


def has_data_from(storage: Storage, path: str, offset: int) -> bool:
    """Whether the file at ``path`` holds a non-zero byte at or after ``offset``."""
    handle = storage.open_file(path, writable=False)
    try:
        return next(nonzero_chunks(handle, offset, handle.size()), None) is not None
    finally:
        handle.close()


def sync_file(storage: Storage, path: str) -> None:
    """fsync the file at ``path`` (opened, synced, closed)."""
    handle = storage.open_file(path, writable=True)
    try:
        handle.sync()
    finally:
        handle.close()


class OsDirectoryLock:
    """An ``flock`` on the directory itself: no lock file is created, and the
    lock dies with the process.

    An ``flock`` belongs to the open file description, which a child made by
    ``os.fork`` shares: as long as the child kept its copy of the descriptor,
    the directory would stay locked after the parent released it. So a child
    closes its copies at the fork (``forget_in_forked_child``); it never unlocks
    them, which would release the parent's lock."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        _HELD_LOCKS.add(self)

    def release(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            _HELD_LOCKS.discard(self)
            os.close(fd)

    def forget_in_forked_child(self) -> None:
        """Close this process's copy of the descriptor, leaving the lock to the parent."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            _HELD_LOCKS.discard(self)
            with contextlib.suppress(OSError):
                os.close(fd)


# The locks this process holds, for the fork hook.
_HELD_LOCKS: weakref.WeakSet[OsDirectoryLock] = weakref.WeakSet()


def _close_inherited_locks() -> None:
    for lock in list(_HELD_LOCKS):
        lock.forget_in_forked_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited_locks)


class OsFile:
    """A file descriptor with positioned reads and writes.

    It seeks then reads or writes rather than calling ``pread``/``pwrite``: the
    descriptor is private to one file object of a log used from one thread, so
    the two are equivalent here, and ``lseek``/``read``/``write`` also run on
    pyfakefs (whose disk-size limit gives ENOSPC on this very code path).
    """

    __slots__ = ("_fd", "_path")

    def __init__(self, fd: int, path: str) -> None:
        self._fd = fd
        self._path = path

    @property
    def path(self) -> str:
        return self._path

    def read_at(self, offset: int, size: int) -> bytes:
        chunks: list[bytes] = []
        remaining = size
        position = offset
        try:
            os.lseek(self._fd, position, os.SEEK_SET)
            while remaining > 0:
                chunk = os.read(self._fd, remaining)
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
                position += len(chunk)
        except OSError as exc:
            raise StorageError("read", self._path, exc, offset=position) from exc
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def write_at(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        position = offset
        try:
            os.lseek(self._fd, position, os.SEEK_SET)
            while view:
                written = os.write(self._fd, view)
                if written == 0:
                    raise OSError(errno.EIO, "pwrite wrote nothing")
                view = view[written:]
                position += written
        except OSError as exc:
            raise StorageError("write", self._path, exc, offset=position) from exc

    def sync(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise StorageError("fsync", self._path, exc) from exc

    def truncate(self, size: int) -> None:
        try:
            os.ftruncate(self._fd, size)
        except OSError as exc:
            raise StorageError("truncate", self._path, exc, offset=size) from exc

    def size(self) -> int:
        try:
            return os.fstat(self._fd).st_size
        except OSError as exc:
            raise StorageError("stat", self._path, exc) from exc

    def next_data(self, offset: int) -> int:
        try:
            return os.lseek(self._fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data at or after offset: a hole to the end
                return self.size()
            return offset  # the file system cannot tell: assume data
        except ValueError:
            return offset  # an emulated file system without SEEK_DATA (pyfakefs)

    def close(self) -> None:
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        try:
            os.close(fd)
        except OSError as exc:
            raise StorageError("close", self._path, exc) from exc


def _entry_kind(entry: os.DirEntry[str]) -> EntryKind:
    if entry.is_symlink():
        return "symlink"
    if entry.is_dir(follow_symlinks=False):
        return "directory"
    if entry.is_file(follow_symlinks=False):
        return "file"
    return "other"


class OsStorage:
    """``Storage`` on the real file system, through ``os`` calls: the default
    storage of ``open`` and ``inspect_log``. Subclass it to change a few calls
    (to inject faults, say) and keep the others."""

    def list_files(self, directory: str) -> list[str]:
        """Names of the regular files in ``directory`` (``os.scandir``; symlinks
        and directories left out)."""
        try:
            with os.scandir(directory) as entries:
                return [entry.name for entry in entries if entry.is_file(follow_symlinks=False)]
        except OSError as exc:
            raise StorageError("list", directory, exc) from exc

    def list_entries(self, directory: str) -> dict[str, EntryKind]:
        """Every entry of ``directory`` and its kind (``"file"``,
        ``"directory"``, ``"symlink"`` or ``"other"``), symlinks not followed."""
        try:
            with os.scandir(directory) as entries:
                return {entry.name: _entry_kind(entry) for entry in entries}
        except OSError as exc:
            raise StorageError("list", directory, exc) from exc

    def is_dir(self, path: str) -> bool:
        """Whether ``path`` is a directory (``os.stat``, following symlinks);
        False when it does not exist."""
        try:
            return stat.S_ISDIR(os.stat(path).st_mode)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StorageError("stat", path, exc) from exc

    def make_dirs(self, path: str) -> None:
        """Create ``path`` and its missing parents (``os.makedirs``); nothing if
        it exists."""
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise StorageError("mkdir", path, exc) from exc

    def create_file(self, path: str, size: int) -> StorageFile:
        """Create ``path`` (it must not exist) and give it ``size`` zero bytes
        with ``ftruncate``, opened read-write. If sizing it fails, the file is
        removed again (best effort) before the error is raised."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StorageError("create", path, exc) from exc
        try:
            os.ftruncate(fd, size)
        except OSError as exc:
            os.close(fd)
            # Do not leave a file of the wrong size behind (best effort: the
            # error reported is the preallocation's).
            with contextlib.suppress(OSError):
                os.remove(path)
            raise StorageError("preallocate", path, exc, offset=size) from exc
        return OsFile(fd, path)

    def open_file(self, path: str, *, writable: bool) -> StorageFile:
        """Open an existing file, read-write when ``writable``, else read-only."""
        flags = (os.O_RDWR if writable else os.O_RDONLY) | os.O_CLOEXEC
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            raise StorageError("open", path, exc) from exc
        return OsFile(fd, path)

    def remove_file(self, path: str) -> None:
        """Delete a file (``os.remove``)."""
        try:
            os.remove(path)
        except OSError as exc:
            raise StorageError("remove", path, exc) from exc

    def lock_dir(self, path: str) -> DirectoryLock:
        """Take an exclusive ``flock`` on the directory itself, without waiting:
        no lock file is created and the lock dies with the process; raises
        ``LogLocked`` when another open log, in this process or another, holds
        it. A child made by ``os.fork`` closes its copy, leaving the lock to
        the parent."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise StorageError("open directory", path, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise LogLocked(path) from exc
            raise StorageError("lock directory", path, exc) from exc
        return OsDirectoryLock(fd)

    def rename(self, source: str, destination: str) -> None:
        """Move a file with ``os.rename`` (atomic within a file system); a
        ``destination`` that exists is refused first."""
        try:
            if os.path.lexists(destination):
                raise FileExistsError(errno.EEXIST, "destination exists", destination)
            os.rename(source, destination)
        except OSError as exc:
            raise StorageError(f"rename to {destination}", source, exc) from exc

    def sync_dir(self, path: str) -> None:
        """fsync the directory, making its entries (creations, removals,
        renames) durable."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise StorageError("open directory", path, exc) from exc
        try:
            os.fsync(fd)
        except OSError as exc:
            raise StorageError("fsync directory", path, exc) from exc
        finally:
            os.close(fd)


class ReadOnlyStorage:
    """Wraps a storage and refuses every call that could change it.

    ``mrecordlog dump`` and ``inspect`` replay through this wrapper, so being
    read-only is a property of the types, not a promise of the code paths.
    """

    def __init__(self, inner: Storage) -> None:
        self._inner = inner

    def _refuse(self, operation: str, path: str) -> StorageError:
        return StorageError(operation, path, PermissionError(errno.EROFS, "read-only inspection"))

    def list_files(self, directory: str) -> list[str]:
        return self._inner.list_files(directory)

    def list_entries(self, directory: str) -> dict[str, EntryKind]:
        return self._inner.list_entries(directory)

    def is_dir(self, path: str) -> bool:
        return self._inner.is_dir(path)

    def make_dirs(self, path: str) -> None:
        raise self._refuse("mkdir", path)

    def create_file(self, path: str, size: int) -> StorageFile:
        raise self._refuse("create", path)

    def open_file(self, path: str, *, writable: bool) -> StorageFile:
        if writable:
            raise self._refuse("open for writing", path)
        return self._inner.open_file(path, writable=False)

    def remove_file(self, path: str) -> None:
        raise self._refuse("remove", path)

    def rename(self, source: str, destination: str) -> None:
        raise self._refuse("rename", source)

    def sync_dir(self, path: str) -> None:
        raise self._refuse("fsync directory", path)

    def lock_dir(self, path: str) -> DirectoryLock:
        raise self._refuse("lock directory", path)
