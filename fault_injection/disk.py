"""``SimulatedDisk``: an in-memory ``Storage`` that keeps durable and volatile
state apart, like a POSIX file system over a page cache.

It owns the file system model (directories, entries, inodes), the pending
operation list, fsync and directory-sync semantics, fault injection at call
time (``FaultPlan``) and bit rot (``flip_bit``). Building crash images from a
disk is ``images``'s job.

The model:

- An inode holds ``visible`` bytes (what reads see: the page cache) and
  ``durable`` bytes (what survives a power loss).
- A directory maps names to inodes twice: ``visible`` entries (what lookups
  see) and ``durable`` entries. Directories themselves are created durable and
  are never removed; only regular files live in entries.
- Every mutation changes the visible state at once and appends a pending
  operation (``ops``) in issue order. A file's ``sync`` makes that inode's
  pending writes and resizes durable, not its directory entry; ``sync_dir``
  makes that directory's pending links and unlinks durable.
- A rename is one ``RenameOp`` (crash images keep or drop it whole). It is
  durable once every directory it touches was synced after it.
- Directory operations become durable in order for each inode and each entry:
  syncing one also makes durable the earlier pending ones it depends on (as a
  journal would), so a removal never becomes durable before the rename or
  creation it undoes.
- Once no crash image can show an unlinked inode, the disk forgets it and its
  pending data operations (open files keep working).
- Paths are '/'-separated. Relative paths are relative to '/', the only
  working directory there is, so ``"log/x"`` and ``"/log/x"`` name one file.
"""

from __future__ import annotations

import errno
import posixpath
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from mrecordlog._storage import DirectoryLock, EntryKind, StorageFile
from mrecordlog.errors import LogLocked, StorageError

from .faults import FaultPlan
from .ops import (
    DataOp,
    DirectoryOp,
    LinkOp,
    PendingOp,
    RenameOp,
    ResizeOp,
    UnlinkOp,
    WriteOp,
    apply_data_op,
    resize,
    write_into,
)

ROOT = "/"
PAGE_NUM_BYTES = 4096  # the granularity of holes (next_data)


def normalize(path: str) -> str:
    """The absolute, normalised form of ``path`` (relative paths start at '/')."""
    normalized = posixpath.normpath(posixpath.join(ROOT, path))
    # POSIX lets normpath keep exactly two leading slashes; here they mean '/'.
    return "/" + normalized.lstrip("/")


def _error(operation: str, path: str, code: int, message: str, offset: int | None = None) -> StorageError:
    # OSError(errno, ...) builds the matching subclass (FileNotFoundError for
    # ENOENT, FileExistsError for EEXIST, ...), as a real call would raise.
    return StorageError(operation, path, OSError(code, message, path), offset=offset)


def apply_directory_op(entries: Mapping[str, dict[str, int]], op: DirectoryOp) -> None:
    """Apply a directory operation to directory maps (durable ones, or an image's).

    An unlink or the source half of a rename only removes the entry if it
    still names the op's inode: in a crash image whose choices dropped the
    creation, or kept a later re-creation of the name, there is nothing (or
    another file) to remove.
    """
    if isinstance(op, LinkOp):
        entries[op.directory][op.name] = op.inode
    elif isinstance(op, UnlinkOp):
        _remove_entry(entries[op.directory], op.name, op.inode)
    else:
        _remove_entry(entries[op.source_directory], op.source_name, op.inode)
        entries[op.destination_directory][op.destination_name] = op.inode


def _remove_entry(entries: dict[str, int], name: str, inode: int) -> None:
    if entries.get(name) == inode:
        del entries[name]


class Inode:
    """A file's bytes: what reads see (``visible``, the page cache) and what a
    power loss would leave (``durable``).

    Copy on write keeps crash images cheap: ``durable`` is never changed in
    place (a change makes a new object), so images and the disks they come
    from share it freely; and the page cache is the very same object until
    its first change, which copies it into a private ``bytearray``. A
    successful fsync hands the cache over as the new durable bytes.
    """

    __slots__ = ("_cache", "_diverged", "durable", "number")

    def __init__(self, number: int, durable: bytes | bytearray = b"") -> None:
        self.number = number
        self.durable = durable
        self._cache: bytearray | None = None  # None: the same bytes as durable
        # Normally the cache is the durable bytes with the pending data ops
        # applied. Dropped pages (a failed fsync) or bit rot under pending ops
        # break that for good: then fsync must replay the ops on the durable bytes.
        self._diverged = False

    @property
    def visible(self) -> bytes | bytearray:
        return self.durable if self._cache is None else self._cache

    def visible_snapshot(self) -> bytes | bytearray:
        """The visible bytes, safe to keep: never changed in place later."""
        return self.durable if self._cache is None else bytes(self._cache)

    def cache_for_update(self) -> bytearray:
        """The visible bytes, private to this inode, to change in place."""
        if self._cache is None:
            self._cache = bytearray(self.durable)
        return self._cache

    def make_durable(self, ops: Sequence[DataOp]) -> None:
        """Apply the inode's pending data ops (all of them) to the durable bytes."""
        if not self._diverged:
            if self._cache is not None:
                # durable + every pending op == the cache: hand it over.
                self.durable, self._cache = self._cache, None
            return
        if ops:
            content = bytearray(self.durable)
            for op in ops:
                apply_data_op(content, op)
            self.durable = content

    def replace(self, data: bytes) -> None:
        """New content, visible and durable at once (tampering)."""
        self.durable = data
        self._cache = None
        self._diverged = False

    def drop_pending(self) -> None:
        """A failed fsync dropped the pending ops: the cache keeps their bytes,
        the durable bytes never get them."""
        self._diverged = True

    def flip_bit(self, offset: int, bit: int) -> bool:
        """Flip a bit wherever byte ``offset`` exists; False if it exists nowhere."""
        flipped = False
        if self._cache is not None:
            self._diverged = True  # pending ops may cover the byte in one copy only
            if offset < len(self._cache):
                self._cache[offset] ^= 1 << bit
                flipped = True
        if offset < len(self.durable):
            durable = bytearray(self.durable)
            durable[offset] ^= 1 << bit
            self.durable = durable
            flipped = True
        return flipped


@dataclass(slots=True)
class Directory:
    """A directory's entries (name -> inode number), visible and durable."""

    visible: dict[str, int] = field(default_factory=dict)
    durable: dict[str, int] = field(default_factory=dict)


class SimulatedLock:
    """The holder of a ``lock_dir``; ``release`` is idempotent."""

    def __init__(self, disk: SimulatedDisk, path: str) -> None:
        self._disk = disk
        self._path = path
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._disk._release_lock(self._path, self)


class SimulatedFile:
    """An open file of a ``SimulatedDisk``; it keeps its inode even if the
    file is removed or renamed (as a file descriptor does)."""

    __slots__ = ("_closed", "_disk", "_inode", "_path", "_writable")

    def __init__(self, disk: SimulatedDisk, inode: Inode, path: str, *, writable: bool) -> None:
        self._disk = disk
        self._inode = inode
        self._path = path
        self._writable = writable
        self._closed = False

    @property
    def path(self) -> str:
        return self._path

    @property
    def inode(self) -> int:
        return self._inode.number

    def _check_open(self, operation: str, offset: int | None = None) -> None:
        if self._closed:
            raise _error(operation, self._path, errno.EBADF, "file is closed", offset)

    def read_at(self, offset: int, size: int) -> bytes:
        self._disk._enter("read_at", "read", self._path, offset)
        self._check_open("read", offset)
        if offset < 0 or size < 0:
            raise _error("read", self._path, errno.EINVAL, "negative offset or size", offset)
        return bytes(self._inode.visible[offset : offset + size])

    def write_at(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        self._disk._enter("write_at", "write", self._path, offset)
        self._check_open("write", offset)
        if not self._writable:
            raise _error("write", self._path, errno.EBADF, "file is open read-only", offset)
        if offset < 0:
            raise _error("write", self._path, errno.EINVAL, "negative offset", offset)
        self._disk._write(self._inode, self._path, offset, bytes(data))

    def sync(self) -> None:
        self._disk._enter("sync", "fsync", self._path)
        self._check_open("fsync")
        self._disk._sync_inode(self._inode, self._path)

    def truncate(self, size: int) -> None:
        self._disk._enter("truncate", "truncate", self._path, size)
        self._check_open("truncate", size)
        if not self._writable:
            raise _error("truncate", self._path, errno.EBADF, "file is open read-only", size)
        if size < 0:
            raise _error("truncate", self._path, errno.EINVAL, "negative size", size)
        self._disk._resize(self._inode, self._path, size)

    def size(self) -> int:
        self._disk._enter("size", "stat", self._path)
        self._check_open("stat")
        return len(self._inode.visible)

    def next_data(self, offset: int) -> int:
        """Like ``lseek(SEEK_DATA)`` on a file system with 4 KiB pages: the
        start of the first page at or after ``offset`` holding a non-zero
        byte (never before ``offset``), else the size. Zero pages read as
        holes, so the caller's hole skipping gets exercised."""
        self._disk._enter("next_data", "seek data", self._path, offset)
        self._check_open("seek data", offset)
        content = self._inode.visible
        page = max(offset, 0) // PAGE_NUM_BYTES * PAGE_NUM_BYTES
        rest = bytes(content[page:])
        nonzero = len(rest) - len(rest.lstrip(b"\0"))  # index of the first non-zero byte
        if nonzero == len(rest):
            return max(len(content), offset)
        return max((page + nonzero) // PAGE_NUM_BYTES * PAGE_NUM_BYTES, offset)

    def close(self) -> None:
        self._disk._enter("close", "close", self._path)
        self._closed = True


class SimulatedDisk:
    """An in-memory ``Storage`` with a page cache, pending operations and faults.

    ``call_count`` counts every protocol call on the disk and on its open
    files (``path`` and ``DirectoryLock.release`` excepted), failed ones
    included; ``calls_by_kind`` counts them by method name (``"sync"`` for a
    file's fsync, ``"sync_dir"``, ``"write_at"``, ...). ``fault_plan`` may be
    replaced at any time. ``lost_on_power_loss`` holds the writes and resizes
    whose pages a failed fsync dropped: still visible, never durable.
    ``faults_injected`` counts the errors the fault plan raised.
    """

    def __init__(self, fault_plan: FaultPlan | None = None) -> None:
        self.fault_plan = fault_plan if fault_plan is not None else FaultPlan()
        # Called with the call's kind before every protocol call is counted:
        # a crash campaign takes its crash images there (the state between
        # two calls is every state a crash can interrupt).
        self.before_call: Callable[[str], None] | None = None
        self.call_count = 0
        self.calls_by_kind: Counter[str] = Counter()
        self.lost_on_power_loss: list[DataOp] = []
        # Errors the fault plan raised so far: a harness tells an injected
        # failure from one the code under test caused itself.
        self.faults_injected = 0
        self._directories: dict[str, Directory] = {ROOT: Directory()}
        self._inodes: dict[int, Inode] = {}
        self._pending: list[PendingOp] = []
        # Directories each pending rename still waits for before it is durable.
        self._rename_waits: dict[int, set[str]] = {}
        self._locks: dict[str, SimulatedLock] = {}
        # Entries that are neither regular files nor directories (symlinks,
        # fifos, ...): path -> kind. A hostile state, not something the log
        # makes: they are durable at once and never change.
        self._foreign: dict[str, EntryKind] = {}
        self._next_seq = 1
        self._next_inode = 1

    @classmethod
    def restored(
        cls,
        entries: Mapping[str, dict[str, int]],
        contents: Mapping[int, bytes | bytearray],
        *,
        next_inode: int,
        foreign: Mapping[str, EntryKind] | None = None,
    ) -> SimulatedDisk:
        """A disk whose whole state is durable, as after a reboot: ``entries``
        maps every directory to its entries, ``contents`` every inode to its
        bytes. The disk takes ownership of the dicts, and shares the contents
        (it never changes them in place)."""
        disk = cls()
        disk._directories = {path: Directory(dict(names), names) for path, names in entries.items()}
        disk._inodes = {number: Inode(number, data) for number, data in contents.items()}
        disk._next_inode = next_inode
        disk._foreign = dict(foreign or {})
        return disk

    # -- the Storage protocol ------------------------------------------------

    def list_files(self, directory: str) -> list[str]:
        path = normalize(directory)
        self._enter("list_files", "list", path)
        return sorted(self._existing_directory(path, "list").visible)

    def list_entries(self, directory: str) -> dict[str, EntryKind]:
        path = normalize(directory)
        self._enter("list_entries", "list", path)
        entries: dict[str, EntryKind] = dict.fromkeys(self._existing_directory(path, "list").visible, "file")
        for child in self._directories:
            parent, name = posixpath.split(child)
            if parent == path and name:
                entries[name] = "directory"
        for foreign, kind in self._foreign.items():
            parent, name = posixpath.split(foreign)
            if parent == path:
                entries[name] = kind
        return dict(sorted(entries.items()))

    def is_dir(self, path: str) -> bool:
        path = normalize(path)
        self._enter("is_dir", "stat", path)
        return path in self._directories

    def make_dirs(self, path: str) -> None:
        path = normalize(path)
        self._enter("make_dirs", "mkdir", path)
        missing: list[str] = []
        current = path
        while current not in self._directories:
            parent, name = posixpath.split(current)
            if name in self._directories.get(parent, Directory()).visible or current in self._foreign:
                code = errno.EEXIST if current == path else errno.ENOTDIR
                raise _error("mkdir", path, code, f"{current} is not a directory")
            missing.append(current)
            current = parent
        # Directory creation is durable at once: the model has no pending mkdir.
        for directory in reversed(missing):
            self._directories[directory] = Directory()

    def create_file(self, path: str, size: int) -> StorageFile:
        path = normalize(path)
        self._enter("create_file", "create", path)
        directory, name = posixpath.split(path)
        parent = self._existing_directory(directory, "create")
        if name in parent.visible or path in self._directories or path in self._foreign:
            raise _error("create", path, errno.EEXIST, "file exists")
        if size < 0:
            raise _error("preallocate", path, errno.EINVAL, "negative size", size)
        self._check_space("create", path, size)
        inode = Inode(self._next_inode)
        self._next_inode += 1
        self._inodes[inode.number] = inode
        parent.visible[name] = inode.number
        self._append(LinkOp(self._take_seq(), directory, name, inode.number))
        if size:
            resize(inode.cache_for_update(), size)
            self._append(ResizeOp(self._take_seq(), inode.number, path, size))
        return SimulatedFile(self, inode, path, writable=True)

    def open_file(self, path: str, *, writable: bool) -> StorageFile:
        path = normalize(path)
        self._enter("open_file", "open", path)
        _, _, inode = self._existing_file(path, "open")
        return SimulatedFile(self, self._inodes[inode], path, writable=writable)

    def remove_file(self, path: str) -> None:
        path = normalize(path)
        self._enter("remove_file", "remove", path)
        directory, name, inode = self._existing_file(path, "remove")
        del self._directories[directory].visible[name]
        self._append(UnlinkOp(self._take_seq(), directory, name, inode))
        self._forget_unobservable({inode})

    def rename(self, source: str, destination: str) -> None:
        source = normalize(source)
        destination = normalize(destination)
        operation = f"rename to {destination}"
        self._enter("rename", operation, source)
        source_directory, source_name, inode = self._existing_file(source, operation)
        destination_directory, destination_name = posixpath.split(destination)
        target = self._existing_directory(destination_directory, operation)
        if destination_name in target.visible or destination in self._directories or destination in self._foreign:
            raise _error(operation, source, errno.EEXIST, "destination exists")
        del self._directories[source_directory].visible[source_name]
        target.visible[destination_name] = inode
        op = RenameOp(self._take_seq(), inode, source_directory, source_name, destination_directory, destination_name)
        self._append(op)
        self._rename_waits[op.seq] = set(op.directories)

    def sync_dir(self, path: str) -> None:
        path = normalize(path)
        self._enter("sync_dir", "fsync directory", path)
        self._existing_directory(path, "open directory")
        selected = self._with_dependencies({op.seq for op in self._pending if self._synced_by(op, path)})
        durable = {name: directory.durable for name, directory in self._directories.items()}
        remaining: list[PendingOp] = []
        touched: set[int] = set()
        for op in self._pending:
            if op.seq in selected:
                assert isinstance(op, LinkOp | UnlinkOp | RenameOp)
                apply_directory_op(durable, op)
                self._rename_waits.pop(op.seq, None)
                touched.add(op.inode)
            else:
                remaining.append(op)
        self._pending = remaining
        self._forget_unobservable(touched)

    def lock_dir(self, path: str) -> DirectoryLock:
        path = normalize(path)
        self._enter("lock_dir", "lock directory", path)
        self._existing_directory(path, "open directory")
        if path in self._locks:
            raise LogLocked(path)
        lock = SimulatedLock(self, path)
        self._locks[path] = lock
        return lock

    # -- inspection and bit rot ----------------------------------------------

    def pending(self) -> tuple[PendingOp, ...]:
        """The operations not yet durable, in issue order."""
        return tuple(self._pending)

    def directories(self, root: str = ROOT) -> list[str]:
        """Every directory at or under ``root``, sorted."""
        root = normalize(root)
        return sorted(path for path in self._directories if _is_under(path, root))

    def visible_files(self, root: str = ROOT) -> dict[str, bytes]:
        """Path -> content of every file under ``root``, as reads see them."""
        return {path: bytes(self._inodes[inode].visible) for path, inode in self._files(root, durable=False)}

    def durable_files(self, root: str = ROOT) -> dict[str, bytes]:
        """Path -> content of every file under ``root`` that a power loss with
        no pending operation kept would leave."""
        return {path: bytes(self._inodes[inode].durable) for path, inode in self._files(root, durable=True)}

    def foreign_entries(self, root: str = ROOT) -> dict[str, EntryKind]:
        """Path -> kind of every entry under ``root`` that is neither a regular
        file nor a directory."""
        root = normalize(root)
        return {path: kind for path, kind in sorted(self._foreign.items()) if _is_under(path, root)}

    def flip_bit(self, path: str, offset: int, bit: int) -> None:
        """Bit rot: flip bit ``bit`` (0-7) of byte ``offset`` of the file's
        durable and visible content (wherever the byte exists)."""
        path = normalize(path)
        if not 0 <= bit < 8:
            raise ValueError(f"bit must be in 0..7, got {bit}")
        _, _, number = self._existing_file(path, "flip bit")
        if offset < 0 or not self._inodes[number].flip_bit(offset, bit):
            raise ValueError(f"offset {offset} is beyond the end of {path}")

    # -- tampering: hostile states (not crashes), durable at once --------------

    def tamper_set_content(self, path: str, data: bytes) -> None:
        """Give an existing file (or a new one) exactly ``data``, visible and
        durable, as an outside hand editing the disk would. Pending data
        operations of that file are forgotten."""
        path = normalize(path)
        directory, name = posixpath.split(path)
        parent = self._existing_directory(directory, "tamper")
        number = parent.visible.get(name)
        if number is None:
            if path in self._directories or path in self._foreign:
                raise _error("tamper", path, errno.EEXIST, "not a regular file")
            number = self._next_inode
            self._next_inode += 1
            parent.visible[name] = number
            parent.durable[name] = number
        inode = self._inodes.get(number)
        if inode is None:
            self._inodes[number] = Inode(number, bytes(data))
        else:
            # In place: an open file keeps its inode object and sees the change.
            inode.replace(bytes(data))
        self._pending = [op for op in self._pending if not (isinstance(op, WriteOp | ResizeOp) and op.inode == number)]

    def tamper_remove(self, path: str) -> None:
        """Remove an entry, visibly and durably: a file, a foreign entry, or an
        empty directory."""
        path = normalize(path)
        if path in self._foreign:
            del self._foreign[path]
            return
        if path in self._directories:
            if any(_is_under(other, path) and other != path for other in self._directories) or any(
                self._directories[path].visible.values()
            ):
                raise _error("tamper", path, errno.ENOTEMPTY, "directory not empty")
            del self._directories[path]
            return
        directory, name, number = self._existing_file(path, "tamper")
        entries = self._directories[directory]
        del entries.visible[name]
        if entries.durable.get(name) == number:
            del entries.durable[name]

    def tamper_add_entry(self, path: str, kind: EntryKind) -> None:
        """An entry of another kind at ``path`` (which must be free): a
        directory, or a symlink or fifo ("symlink", "other") that opens as
        nothing readable."""
        path = normalize(path)
        directory, name = posixpath.split(path)
        parent = self._existing_directory(directory, "tamper")
        if name in parent.visible or path in self._directories or path in self._foreign:
            raise _error("tamper", path, errno.EEXIST, "entry exists")
        if kind == "directory":
            self._directories[path] = Directory()
        elif kind == "file":
            self.tamper_set_content(path, b"")
        else:
            self._foreign[path] = kind

    # -- package-internal: state for images ----------------------------------

    def _directory_entries(self, *, durable: bool) -> dict[str, dict[str, int]]:
        """A copy of every directory's entries."""
        return {
            path: dict(directory.durable if durable else directory.visible)
            for path, directory in self._directories.items()
        }

    def _inode(self, number: int) -> Inode:
        return self._inodes[number]

    @property
    def _inode_high_water(self) -> int:
        return self._next_inode

    # -- internals -------------------------------------------------------------

    def _enter(self, kind: str, operation: str, path: str, offset: int | None = None) -> None:
        """Count a protocol call; fail it if the plan says so (before any effect)."""
        if self.before_call is not None:
            self.before_call(kind)
        self.call_count += 1
        self.calls_by_kind[kind] += 1
        if self.fault_plan.fail_at_call == self.call_count:
            self.faults_injected += 1
            raise _error(operation, path, errno.EIO, "injected I/O error", offset)

    def _take_seq(self) -> int:
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def _append(self, op: PendingOp) -> None:
        self._pending.append(op)

    def _existing_directory(self, path: str, operation: str) -> Directory:
        directory = self._directories.get(path)
        if directory is not None:
            return directory
        parent, name = posixpath.split(path)
        if name in self._directories.get(parent, Directory()).visible:
            raise _error(operation, path, errno.ENOTDIR, "not a directory")
        raise _error(operation, path, errno.ENOENT, "no such directory")

    def _existing_file(self, path: str, operation: str) -> tuple[str, str, int]:
        """(directory, name, inode) of a visible regular file."""
        if path in self._directories:
            raise _error(operation, path, errno.EISDIR, "is a directory")
        if path in self._foreign:
            # A dangling symlink or a fifo nobody writes to: as open would fail.
            raise _error(operation, path, errno.ENXIO, f"not a regular file ({self._foreign[path]})")
        directory, name = posixpath.split(path)
        inode = self._existing_directory(directory, operation).visible.get(name)
        if inode is None:
            raise _error(operation, path, errno.ENOENT, "no such file")
        return directory, name, inode

    def _linked_inodes(self) -> set[int]:
        return {inode for directory in self._directories.values() for inode in directory.visible.values()}

    def _check_space(
        self, operation: str, path: str, growth: int, offset: int | None = None, inode: int | None = None
    ) -> None:
        """ENOSPC if ``growth`` more bytes (for ``inode``, or a new file) would
        not fit. Space is charged to the files linked in a directory: an
        unlinked file that is still open is about to disappear."""
        capacity = self.fault_plan.capacity_bytes
        if capacity is None or growth <= 0:
            return
        linked = self._linked_inodes()
        if inode is not None and inode not in linked:
            return
        used = sum(len(self._inodes[number].visible) for number in linked)
        if used + growth > capacity:
            self.faults_injected += 1
            raise _error(operation, path, errno.ENOSPC, "no space left on device", offset)

    def _write(self, inode: Inode, path: str, offset: int, data: bytes) -> None:
        if not data:
            return  # pwrite of nothing changes nothing, not even the size
        self._check_space("write", path, offset + len(data) - len(inode.visible), offset, inode.number)
        write_into(inode.cache_for_update(), offset, data)
        if inode.number in self._inodes:  # else no crash image can show it
            self._append(WriteOp(self._take_seq(), inode.number, path, offset, data))

    def _resize(self, inode: Inode, path: str, size: int) -> None:
        self._check_space("truncate", path, size - len(inode.visible), size, inode.number)
        resize(inode.cache_for_update(), size)
        if inode.number in self._inodes:
            self._append(ResizeOp(self._take_seq(), inode.number, path, size))

    def _sync_inode(self, inode: Inode, path: str) -> None:
        ops: list[DataOp] = []
        remaining: list[PendingOp] = []
        for op in self._pending:
            if isinstance(op, WriteOp | ResizeOp) and op.inode == inode.number:
                ops.append(op)
            else:
                remaining.append(op)
        self._pending = remaining
        if self.fault_plan.fsync_eio_at == self.calls_by_kind["sync"]:
            # Linux marks the pages clean after a writeback error: they are no
            # longer pending, never reach the disk, and reads still see them.
            self.lost_on_power_loss.extend(ops)
            inode.drop_pending()
            self.faults_injected += 1
            raise _error("fsync", path, errno.EIO, "injected writeback error")
        inode.make_durable(ops)

    def _forget_unobservable(self, candidates: set[int]) -> None:
        """Forget the inodes among ``candidates`` that no crash image can show:
        linked nowhere, visibly or durably, and named by no pending directory
        operation (which a crash image could keep). Their pending data
        operations go too, so they do not multiply crash images for nothing;
        open files keep their inode object and still work."""
        linked = self._linked_inodes() | {
            inode for directory in self._directories.values() for inode in directory.durable.values()
        }
        named = {op.inode for op in self._pending if isinstance(op, LinkOp | UnlinkOp | RenameOp)}
        dead = candidates - linked - named
        if not dead:
            return
        for inode in dead:
            del self._inodes[inode]
        self._pending = [op for op in self._pending if not (isinstance(op, WriteOp | ResizeOp) and op.inode in dead)]

    def _synced_by(self, op: PendingOp, path: str) -> bool:
        """Whether syncing directory ``path`` makes ``op`` durable by itself
        (a rename needs every directory it touches synced after it)."""
        if isinstance(op, LinkOp | UnlinkOp):
            return op.directory == path
        if isinstance(op, RenameOp) and path in op.directories:
            waits = self._rename_waits[op.seq]
            waits.discard(path)
            return not waits
        return False

    def _with_dependencies(self, selected: set[int]) -> set[int]:
        """``selected`` (sequence numbers of directory ops) plus every earlier
        pending directory op that one of them depends on, transitively: an op
        on the same inode or the same directory entry. A journal commits
        metadata in order, so an entry cannot durably change before its
        earlier changes do (a removal synced in one directory drags along the
        rename that brought the file there). This makes more durable than
        asked, never less, and keeps the durable state one that the visible
        history passes through for every inode and entry."""
        keys: set[object] = set()
        closed: set[int] = set()
        for op in reversed(self._pending):
            if not isinstance(op, LinkOp | UnlinkOp | RenameOp):
                continue
            op_keys = _directory_op_keys(op)
            if op.seq in selected or not keys.isdisjoint(op_keys):
                closed.add(op.seq)
                keys |= op_keys
        return closed

    def _files(self, root: str, *, durable: bool) -> Iterator[tuple[str, int]]:
        root = normalize(root)
        for directory_path in sorted(self._directories):
            if not _is_under(directory_path, root):
                continue
            directory = self._directories[directory_path]
            entries = directory.durable if durable else directory.visible
            for name in sorted(entries):
                yield posixpath.join(directory_path, name), entries[name]

    def _release_lock(self, path: str, lock: SimulatedLock) -> None:
        if self._locks.get(path) is lock:
            del self._locks[path]


def _directory_op_keys(op: DirectoryOp) -> set[object]:
    """What a directory op depends on: its inode and the entries it changes."""
    if isinstance(op, RenameOp):
        return {op.inode, (op.source_directory, op.source_name), (op.destination_directory, op.destination_name)}
    return {op.inode, (op.directory, op.name)}


def _is_under(path: str, root: str) -> bool:
    return root in (ROOT, path) or path.startswith(root + "/")
