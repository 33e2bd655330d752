"""Adapters with one planted durability bug each, for the crash check.

Run as ``python tests/wrong_crash_adapters.py BUG [--recovery MODE]``; it
serves the adapter protocol like ``python -m mrecordlog.adapter --recovery
MODE`` (``hello`` announces MODE), with the reference core patched by BUG.
Only what reaches the disk, and when, is wrong: every answer is the
reference's, and the live, reader, writer and continuation checks pass, so
that only a check that builds crash images of the adapter's own writes can
tell. The exception is ``keeps-records-after-torn-frame``, a recovery bug: the
reader check's damaged images catch it too (``recovered_state``).

Each bug is a function ``plant(mp)`` that patches the core through
``mp.setattr(target, name, value)``: the tests pass pytest's ``monkeypatch``
(undone after each test), ``main`` an ``AlwaysOn`` patcher (for the life of the
adapter process). The bugs:

- ``no-fsync-on-persist``: ``persist(fsync=True)`` (``FLUSH_AND_FSYNC``)
  flushes the writer's buffer but never fsyncs. Patched:
  ``MultiRecordLog._persist``, the one place where ``persist`` (and a policy
  or ``close`` that fsyncs: not the adapter's) reaches ``WalWriter.sync``.
  ``create_queue``, ``delete_queue`` and a GC pass call ``WalWriter.sync``
  themselves and still fsync (and so make earlier appends durable too).
- ``no-dir-sync-after-create``: no directory fsync after the writer creates a
  WAL file. Patched: ``WalWriter._roll`` (the roll to a new file) runs with a
  storage whose ``sync_dir`` does nothing, and so does
  ``MultiRecordLog._open_locked`` when the directory holds no WAL file (the
  creation of ``wal-0``: both of that open's directory fsyncs are skipped, the
  one right after the creation and the end-of-recovery one, which would
  cover it as well). Reopening an existing log, file removals (GC,
  quarantine) and the files' own fsyncs are untouched.
- ``fsync-before-last-write``: on ``persist(fsync=True)`` the WAL file is
  fsynced before the batch's buffered bytes reach it: the acknowledged last
  write is not durable. Patched: ``WalWriter.sync`` fsyncs the files written
  since the last barrier (and the current file when bytes are buffered), then
  ``flush``es; and ``mrecordlog.adapter.reference_factory`` opens the log with
  the ``DoNothing`` persist policy, so that appends and truncates stay in the
  writer's buffer until the next ``persist`` (or a barrier of their own).

  Why the policy too: the reference adapter's ``Always(FLUSH)`` writes every
  append before answering it, so a ``persist`` finds nothing buffered and
  its fsync covers the whole batch whatever the order inside ``sync``.
  ``DoNothing`` is not a bug in itself: an operation under it is
  acknowledged only by the next persist (``spec/DURABILITY.md`` §2), which is
  how the crash check acknowledges every adapter's operations, and a
  ``persist`` of either kind still writes everything before it answers
  (a process crash loses nothing acknowledged). Only a power loss can show
  the bug, by dropping the write issued after the fsync that acknowledged
  it. Every fsync barrier goes through the same ``sync``: ``create_queue``
  and ``delete_queue`` write their own record after their fsync too, and a
  GC pass (truncate, open) writes its position records after the fsync and
  then deletes files durably.
- ``keeps-records-after-torn-frame``: recovery skips a damaged (torn) frame
  and goes on, as ``skip`` does, whatever mode is asked for and announced: in
  ``point_in_time`` the records after the damage are kept instead of
  discarded (a hole when a power loss kept a later write and tore an earlier
  one). Patched: ``mrecordlog.adapter.reference_factory`` opens with
  ``recovery="skip"``; ``hello`` still announces the requested mode.
"""

from __future__ import annotations

import argparse
import builtins
import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import mrecordlog.adapter as adapter_module
from mrecordlog._storage import DirectoryLock, EntryKind, Storage, StorageFile, sync_file
from mrecordlog._wal import WalWriter, list_wal_files
from mrecordlog.adapter import ReferenceLog, serve
from mrecordlog.log import MultiRecordLog
from mrecordlog.oracle.protocol import LogFactory
from mrecordlog.policy import DoNothing, PersistAction


class Patcher(Protocol):
    """What a bug needs to plant itself: pytest's ``MonkeyPatch`` is one."""

    def setattr(self, target: object, name: str, value: object) -> None: ...


class AlwaysOn:
    """A patcher whose patches stay for the life of the process (the adapter's)."""

    def setattr(self, target: object, name: str, value: object) -> None:
        builtins.setattr(target, name, value)


# -- no-fsync-on-persist -------------------------------------------------------------


def no_fsync_on_persist(mp: Patcher) -> None:
    original = MultiRecordLog._persist

    def _persist(self: MultiRecordLog, action: PersistAction) -> None:
        if action is PersistAction.FLUSH_AND_FSYNC:
            self._writer.flush()  # the bug: the fsync of the barrier is left out
        else:
            original(self, action)

    mp.setattr(MultiRecordLog, "_persist", _persist)


# -- no-dir-sync-after-create ------------------------------------------------------


class _WithoutDirSync:
    """A ``Storage`` that forwards every call but ``sync_dir``, which it drops."""

    def __init__(self, inner: Storage) -> None:
        self._inner = inner

    def list_files(self, directory: str) -> list[str]:
        return self._inner.list_files(directory)

    def list_entries(self, directory: str) -> dict[str, EntryKind]:
        return self._inner.list_entries(directory)

    def is_dir(self, path: str) -> bool:
        return self._inner.is_dir(path)

    def make_dirs(self, path: str) -> None:
        self._inner.make_dirs(path)

    def create_file(self, path: str, size: int) -> StorageFile:
        return self._inner.create_file(path, size)

    def open_file(self, path: str, *, writable: bool) -> StorageFile:
        return self._inner.open_file(path, writable=writable)

    def remove_file(self, path: str) -> None:
        self._inner.remove_file(path)

    def rename(self, source: str, destination: str) -> None:
        self._inner.rename(source, destination)

    def sync_dir(self, path: str) -> None:
        pass  # the bug: the new file's directory entry is left unsynced

    def lock_dir(self, path: str) -> DirectoryLock:
        return self._inner.lock_dir(path)


def no_dir_sync_after_create(mp: Patcher) -> None:
    original_roll = WalWriter._roll
    original_open_locked: Callable[..., MultiRecordLog] = MultiRecordLog.__dict__["_open_locked"].__func__

    def _roll(self: WalWriter) -> None:
        storage = self._storage
        self._storage = _WithoutDirSync(storage)
        try:
            original_roll(self)
        finally:
            self._storage = storage

    def _open_locked(cls: type[MultiRecordLog], storage: Storage, path: str, *rest: Any) -> MultiRecordLog:
        if list_wal_files(storage, path):
            return original_open_locked(cls, storage, path, *rest)
        # The open creates wal-0: it runs without directory fsyncs, then the
        # log gets the real storage back for everything after the open.
        log = original_open_locked(cls, _WithoutDirSync(storage), path, *rest)
        log._storage = storage
        log._writer._storage = storage
        return log

    mp.setattr(WalWriter, "_roll", _roll)
    mp.setattr(MultiRecordLog, "_open_locked", classmethod(_open_locked))


# -- fsync-before-last-write -------------------------------------------------------


def fsync_before_last_write(mp: Patcher) -> None:
    def sync(self: WalWriter) -> None:
        files = set(self._unsynced_files)
        if self._buffer:
            files.add(self.current_file)
        for file_number in sorted(files):
            if file_number == self.current_file:
                assert self._handle is not None
                self._handle.sync()
            else:
                sync_file(self._storage, self._path(file_number))
        self._unsynced_files.clear()
        # The bug: the buffered bytes (the batch's last write) reach the file
        # after its fsync. The flush marks the file unsynced again, so a later
        # barrier covers them.
        self.flush()

    def reference_factory(recovery: str = "point_in_time") -> LogFactory:
        def open_log(directory: str, file_num_bytes: int | None, checksum: str | None) -> ReferenceLog:
            return ReferenceLog(
                MultiRecordLog.open(
                    directory,
                    file_num_bytes=file_num_bytes,
                    checksum=checksum,
                    recovery=recovery,
                    persist_policy=DoNothing(),  # appends stay buffered until a persist
                )
            )

        return open_log

    mp.setattr(WalWriter, "sync", sync)
    mp.setattr(adapter_module, "reference_factory", reference_factory)


# -- keeps-records-after-torn-frame --------------------------------------------------


def keeps_records_after_torn_frame(mp: Patcher) -> None:
    original = adapter_module.reference_factory

    def reference_factory(recovery: str = "point_in_time") -> LogFactory:
        return original("skip")  # the bug: whatever mode the session announces

    mp.setattr(adapter_module, "reference_factory", reference_factory)


BUGS: dict[str, Callable[[Patcher], None]] = {
    "no-fsync-on-persist": no_fsync_on_persist,
    "no-dir-sync-after-create": no_dir_sync_after_create,
    "fsync-before-last-write": fsync_before_last_write,
    "keeps-records-after-torn-frame": keeps_records_after_torn_frame,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tests/wrong_crash_adapters.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bug", choices=sorted(BUGS))
    parser.add_argument("--recovery", choices=["point_in_time", "strict", "skip"], default="point_in_time")
    args = parser.parse_args(argv)
    BUGS[args.bug](AlwaysOn())
    serve(adapter_module.reference_session(args.recovery), sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
