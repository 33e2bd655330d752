"""Replay a foreign implementation's traced file operations into ``SimulatedDisk``.

The events (``oracle.trace``) happened on a real directory tree under
``root``; the replayer applies them to a simulated disk under ``mount``, in
order, so that the fault layer's persistence model decides what a crash
could keep: unsynced writes lost, kept, torn at 512-byte sectors or
reordered; directory entries pending until their directory is synced. Before
each event that changes the disk, ``before`` is called with the disk and the
protocol position (requests read, answers written): a crash point.

What the model cannot follow is counted in ``unmodelled`` (hard links, and
whatever the tracer reported as ``Unmodelled``), never guessed; directories
are created durable, as in the rest of the fault layer.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mrecordlog._storage import StorageFile
from mrecordlog.fault_injection import SimulatedDisk
from mrecordlog.oracle.trace import (
    Answered,
    Create,
    Link,
    MakeDirectory,
    Rename,
    RequestRead,
    Sync,
    SyncAll,
    TraceEvent,
    Truncate,
    Unlink,
    Unmodelled,
    Write,
)


@dataclass(frozen=True)
class ProtocolPosition:
    """How far the adapter had got at a crash point: request lines read and
    answer lines written."""

    requests_read: int
    answers_written: int


@dataclass
class Replay:
    disk: SimulatedDisk
    root: str
    mount: str = "/"
    before: Callable[[SimulatedDisk, ProtocolPosition, int], None] | None = None
    position: ProtocolPosition = ProtocolPosition(0, 0)
    unmodelled: list[str] = field(default_factory=list)
    crash_points: int = 0
    _handles: dict[str, StorageFile] = field(default_factory=dict)

    def path(self, real: str) -> str:
        relative = posixpath.relpath(posixpath.normpath(real), posixpath.normpath(self.root))
        return posixpath.normpath(posixpath.join(self.mount, relative))

    def _handle(self, path: str) -> StorageFile:
        handle = self._handles.get(path)
        if handle is None:
            handle = self.disk.open_file(path, writable=True)
            self._handles[path] = handle
        return handle

    def _crash_point(self) -> None:
        if self.before is not None:
            self.before(self.disk, self.position, self.crash_points)
        self.crash_points += 1

    def apply(self, event: TraceEvent) -> None:
        if isinstance(event, RequestRead):
            self.position = ProtocolPosition(event.total, self.position.answers_written)
            return
        if isinstance(event, Answered):
            self.position = ProtocolPosition(self.position.requests_read, event.total)
            return
        if isinstance(event, Unmodelled):
            self.unmodelled.append(f"{event.syscall}: {event.detail}")
            return
        if isinstance(event, Link):
            self.unmodelled.append(f"link {event.source} -> {event.destination}")
            return
        if isinstance(event, SyncAll):
            self._crash_point()
            for handle in self._handles.values():
                handle.sync()
            for directory in self.disk.directories(self.mount):
                self.disk.sync_dir(directory)
            return
        if isinstance(event, MakeDirectory):
            self.disk.make_dirs(self.path(event.path))
            return
        self._crash_point()
        if isinstance(event, Create):
            path = self.path(event.path)
            if path not in self._handles and not self._exists(path):
                self.disk.make_dirs(posixpath.dirname(path))
                self._handles[path] = self.disk.create_file(path, 0)
        elif isinstance(event, Write):
            self._handle(self.path(event.path)).write_at(event.offset, event.data)
        elif isinstance(event, Truncate):
            self._handle(self.path(event.path)).truncate(event.size)
        elif isinstance(event, Sync):
            path = self.path(event.path)
            if event.is_directory:
                self.disk.sync_dir(path)
            else:
                self._handle(path).sync()
        elif isinstance(event, Rename):
            source, destination = self.path(event.source), self.path(event.destination)
            self._drop(destination)
            self.disk.rename(source, destination)
            if source in self._handles:
                self._handles[destination] = self._handles.pop(source)
        else:
            assert isinstance(event, Unlink)
            path = self.path(event.path)
            self._drop(path)
            if self._exists(path):
                self.disk.remove_file(path)

    def _exists(self, path: str) -> bool:
        directory, name = posixpath.split(path)
        return self.disk.is_dir(directory) and name in self.disk.list_files(directory)

    def _drop(self, path: str) -> None:
        handle = self._handles.pop(path, None)
        if handle is not None:
            handle.close()

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()


def replay(
    events: Sequence[TraceEvent],
    *,
    root: str,
    mount: str = "/",
    before: Callable[[SimulatedDisk, ProtocolPosition, int], None] | None = None,
) -> Replay:
    """Apply ``events`` to a fresh simulated disk; the ``Replay`` holds the
    disk as the events left it."""
    disk = SimulatedDisk()
    disk.make_dirs(mount)
    state = Replay(disk, root, mount, before)
    for event in events:
        state.apply(event)
    state.close()
    return state
