"""Storage wrappers for tests: record every call, or fail a chosen one.

They wrap a real ``Storage`` (``OsStorage`` on a tmp_path), so the bytes
still reach a directory the test can inspect.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass, field

from mrecordlog import StorageError
from mrecordlog._storage import DirectoryLock, EntryKind, Storage, StorageFile


@dataclass
class Call:
    operation: str  # write, sync, create, remove, sync_dir, read, open
    path: str
    offset: int | None = None
    size: int | None = None


@dataclass
class CallLog:
    calls: list[Call] = field(default_factory=list)
    # Return True to make that call fail with EIO (before it has any effect).
    fail_when: Callable[[Call], bool] = lambda call: False

    def record(self, call: Call) -> None:
        self.calls.append(call)
        if self.fail_when(call):
            raise StorageError(call.operation, call.path, OSError(errno.EIO, "injected failure"), offset=call.offset)

    def count(self, operation: str) -> int:
        return sum(1 for call in self.calls if call.operation == operation)


class RecordingFile:
    def __init__(self, inner: StorageFile, log: CallLog) -> None:
        self._inner = inner
        self._log = log

    @property
    def path(self) -> str:
        return self._inner.path

    def read_at(self, offset: int, size: int) -> bytes:
        self._log.record(Call("read", self.path, offset, size))
        return self._inner.read_at(offset, size)

    def write_at(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        self._log.record(Call("write", self.path, offset, len(data)))
        self._inner.write_at(offset, data)

    def sync(self) -> None:
        self._log.record(Call("sync", self.path))
        self._inner.sync()

    def truncate(self, size: int) -> None:
        self._log.record(Call("truncate", self.path, size=size))
        self._inner.truncate(size)

    def size(self) -> int:
        return self._inner.size()

    def next_data(self, offset: int) -> int:
        return self._inner.next_data(offset)

    def close(self) -> None:
        self._inner.close()


class RecordingStorage:
    """A ``Storage`` that records calls into ``calls`` and can fail some."""

    def __init__(self, inner: Storage, calls: CallLog | None = None) -> None:
        self._inner = inner
        self.calls = calls if calls is not None else CallLog()

    def list_files(self, directory: str) -> list[str]:
        return self._inner.list_files(directory)

    def list_entries(self, directory: str) -> dict[str, EntryKind]:
        return self._inner.list_entries(directory)

    def is_dir(self, path: str) -> bool:
        return self._inner.is_dir(path)

    def make_dirs(self, path: str) -> None:
        self.calls.record(Call("mkdir", path))
        self._inner.make_dirs(path)

    def create_file(self, path: str, size: int) -> StorageFile:
        self.calls.record(Call("create", path, size=size))
        return RecordingFile(self._inner.create_file(path, size), self.calls)

    def open_file(self, path: str, *, writable: bool) -> StorageFile:
        self.calls.record(Call("open", path))
        return RecordingFile(self._inner.open_file(path, writable=writable), self.calls)

    def remove_file(self, path: str) -> None:
        self.calls.record(Call("remove", path))
        self._inner.remove_file(path)

    def sync_dir(self, path: str) -> None:
        self.calls.record(Call("sync_dir", path))
        self._inner.sync_dir(path)

    def rename(self, source: str, destination: str) -> None:
        self.calls.record(Call("rename", source))
        self._inner.rename(source, destination)

    def lock_dir(self, path: str) -> DirectoryLock:
        return self._inner.lock_dir(path)
