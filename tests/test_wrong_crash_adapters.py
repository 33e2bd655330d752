"""The durability bugs of ``tests/wrong_crash_adapters.py``, seen at the files.

Each test runs the adapter's protocol session in-process over a real
directory, with the bug planted (through ``monkeypatch``, undone afterwards)
or not, records the calls the core makes to the file system (``OsStorage``
and its files, wrapped), and checks that the bug shows exactly when planted:
the unplanted reference does the right thing in the same run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import mrecordlog.adapter as adapter_module
from mrecordlog import MultiRecordLog
from mrecordlog._storage import OsFile, OsStorage, StorageFile
from mrecordlog._wal import RawRecord, WalReader, parse_wal_file_name
from mrecordlog.oracle.adapters import InProcessAdapter, SubprocessAdapter
from mrecordlog.policy import DoNothing, PersistAction
from tests.wrong_crash_adapters import BUGS

HERE = Path(__file__).resolve().parent
BLOCK = 32768
WAL0 = "wal-00000000000000000000"
WAL1 = "wal-00000000000000000001"

# (kind, path): "create" (a file was created), "write" (bytes handed to the OS),
# "sync" (a file's fsync), "sync_dir" (a directory's fsync).
Event = tuple[str, str]


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[Event]:
    """The file system calls the core makes from now on, in order."""
    recorded: list[Event] = []
    write_at, sync = OsFile.write_at, OsFile.sync
    create_file, sync_dir = OsStorage.create_file, OsStorage.sync_dir

    def recording_write_at(self: OsFile, offset: int, data: bytes | bytearray | memoryview) -> None:
        write_at(self, offset, data)
        recorded.append(("write", self.path))

    def recording_sync(self: OsFile) -> None:
        sync(self)
        recorded.append(("sync", self.path))

    def recording_create_file(self: OsStorage, path: str, size: int) -> StorageFile:
        handle = create_file(self, path, size)
        recorded.append(("create", path))
        return handle

    def recording_sync_dir(self: OsStorage, path: str) -> None:
        sync_dir(self, path)
        recorded.append(("sync_dir", path))

    monkeypatch.setattr(OsFile, "write_at", recording_write_at)
    monkeypatch.setattr(OsFile, "sync", recording_sync)
    monkeypatch.setattr(OsStorage, "create_file", recording_create_file)
    monkeypatch.setattr(OsStorage, "sync_dir", recording_sync_dir)
    return recorded


def _is_wal(path: str) -> bool:
    return parse_wal_file_name(os.path.basename(path)) is not None


def unsynced_wal_writes(events: list[Event]) -> list[str]:
    """Names of the WAL files written and not fsynced after that write."""
    pending: set[str] = set()
    for kind, path in events:
        if kind == "write" and _is_wal(path):
            pending.add(path)
        elif kind == "sync":
            pending.discard(path)
    return sorted(os.path.basename(path) for path in pending)


def undurable_wal_creations(events: list[Event]) -> list[str]:
    """Names of the WAL files created and not followed by an fsync of their directory."""
    pending: set[str] = set()
    for kind, path in events:
        if kind == "create" and _is_wal(path):
            pending.add(path)
        elif kind == "sync_dir":
            pending = {p for p in pending if os.path.normpath(os.path.dirname(p)) != os.path.normpath(path)}
    return sorted(os.path.basename(path) for path in pending)


def names(events: list[Event]) -> list[Event]:
    return [(kind, os.path.basename(path)) for kind, path in events]


class Session:
    """The adapter's session in-process (built after the bug is planted);
    ``must`` returns the answer and the file system calls it made."""

    def __init__(self, events: list[Event], recovery: str = "point_in_time") -> None:
        self.adapter = InProcessAdapter(adapter_module.reference_session(recovery))
        self.events = events

    def must(self, op: str, **request: Any) -> tuple[dict[str, Any], list[Event]]:
        start = len(self.events)
        answer = self.adapter.request({"op": op, **request})
        assert answer["ok"], answer
        return answer, self.events[start:]

    def close(self) -> None:
        self.adapter.close()


@pytest.fixture
def session_for(events: list[Event]) -> Iterator[Callable[..., Session]]:
    sessions: list[Session] = []

    def make(recovery: str = "point_in_time") -> Session:
        sessions.append(Session(events, recovery))
        return sessions[-1]

    yield make
    for session in sessions:
        session.close()


PLANTED = pytest.mark.parametrize("planted", [False, True], ids=["reference", "planted"])


@PLANTED
def test_no_fsync_on_persist_leaves_the_acknowledged_appends_unsynced(
    planted: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_for: Callable[..., Session]
) -> None:
    if planted:
        BUGS["no-fsync-on-persist"](monkeypatch)
    log = session_for()
    log.must("open", dir=str(tmp_path / "log"))
    _, created = log.must("create_queue", queue="q")
    assert unsynced_wal_writes(created) == []  # create_queue still fsyncs
    _, appended = log.must("append", queue="q", payloads=["aa", "bb"])
    assert unsynced_wal_writes(appended) == [WAL0]  # flushed, not yet synced: both
    _, persisted = log.must("persist", fsync=True)
    everything = log.events
    if planted:
        assert persisted == []
        assert unsynced_wal_writes(everything) == [WAL0]
    else:
        assert names(persisted) == [("sync", WAL0)]
        assert unsynced_wal_writes(everything) == []
    # A flush without fsync is the same in both.
    log.must("append", queue="q", payloads=["cc"])
    _, flushed = log.must("persist", fsync=False)
    assert flushed == []


@PLANTED
def test_no_dir_sync_after_creating_wal0_at_the_open_of_an_empty_directory(
    planted: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_for: Callable[..., Session]
) -> None:
    if planted:
        BUGS["no-dir-sync-after-create"](monkeypatch)
    directory = tmp_path / "log"
    log = session_for()
    _, opened = log.must("open", dir=str(directory))
    assert ("create", WAL0) in names(opened)
    assert ("sync", WAL0) in names(opened)  # the file's own fsync stays
    if planted:
        assert undurable_wal_creations(opened) == [WAL0]
        assert "sync_dir" not in {kind for kind, _ in opened}
    else:
        assert undurable_wal_creations(opened) == []
    log.must("create_queue", queue="q")
    log.must("close")
    # Reopening an existing log creates nothing and syncs the directory in both.
    _, reopened = log.must("open", dir=str(directory))
    assert ("sync_dir", "log") in names(reopened)
    assert undurable_wal_creations(reopened) == []


@PLANTED
def test_no_dir_sync_after_rolling_to_a_new_file(
    planted: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_for: Callable[..., Session]
) -> None:
    if planted:
        BUGS["no-dir-sync-after-create"](monkeypatch)
    log = session_for()
    log.must("open", dir=str(tmp_path / "log"), file_num_bytes=BLOCK)
    log.must("create_queue", queue="q")
    _, appended = log.must("append", queue="q", payloads=["ab" * (BLOCK + 100)])
    assert ("create", WAL1) in names(appended)
    # The finished file is fsynced at the roll in both; the append is
    # acknowledged (flushed) with bytes in the new file.
    assert ("sync", WAL0) in names(appended)
    assert names(appended)[-1] == ("write", WAL1)
    if planted:
        assert undurable_wal_creations(appended) == [WAL1]
    else:
        assert undurable_wal_creations(appended) == []
        assert names(appended).index(("sync_dir", "log")) < names(appended).index(("write", WAL1))
    # The persist makes wal-1's data durable, never its directory entry.
    _, persisted = log.must("persist", fsync=True)
    assert names(persisted) == [("sync", WAL1)]
    assert undurable_wal_creations(log.events) == ([WAL0, WAL1] if planted else [])


@PLANTED
def test_fsync_before_last_write_leaves_the_persisted_batch_unsynced(
    planted: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_for: Callable[..., Session]
) -> None:
    if planted:
        BUGS["fsync-before-last-write"](monkeypatch)
    log = session_for()
    log.must("open", dir=str(tmp_path / "log"))
    _, created = log.must("create_queue", queue="q")
    # create_queue is an fsync barrier of its own: write, then fsync.
    if planted:
        assert names(created) == [("sync", WAL0), ("write", WAL0)]
    else:
        assert names(created) == [("write", WAL0), ("sync", WAL0)]
    appends = [log.must("append", queue="q", payloads=[payload])[1] for payload in ("aa", "bbbb", "cc")]
    # The planted adapter buffers its appends until a persist (DoNothing), the
    # reference writes each before answering (Always(FLUSH)).
    assert [names(events) for events in appends] == ([[]] * 3 if planted else [[("write", WAL0)]] * 3)
    _, persisted = log.must("persist", fsync=True)
    if planted:
        assert names(persisted) == [("sync", WAL0), ("write", WAL0)]
        assert unsynced_wal_writes(log.events) == [WAL0]
    else:
        assert names(persisted) == [("sync", WAL0)]
        assert unsynced_wal_writes(log.events) == []
    # A persist without fsync writes the batch before answering in both: a
    # process crash after the answer loses nothing.
    log.must("append", queue="q", payloads=["dd"])
    _, flushed = log.must("persist", fsync=False)
    assert names(flushed) == ([("write", WAL0)] if planted else [])
    # The next fsync covers what the last one missed.
    _, persisted = log.must("persist", fsync=True)
    assert names(persisted) == ([("sync", WAL0)])
    assert unsynced_wal_writes(log.events) == []


@PLANTED
def test_fsync_before_last_write_on_persist_of_buffered_appends(
    planted: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, events: list[Event]
) -> None:
    """The core under the planted adapter's policy: only the order within
    the barrier differs from the reference's (write, then fsync)."""
    if planted:
        BUGS["fsync-before-last-write"](monkeypatch)
    with MultiRecordLog.open(tmp_path / "log", persist_policy=DoNothing()) as log:
        log.create_queue("q")
        start = len(events)
        log.append_records("q", [b"a", b"b"])
        log.append_records("q", [b"c"])
        assert events[start:] == []  # buffered under DoNothing
        log.persist(PersistAction.FLUSH_AND_FSYNC)
        persisted = names(events[start:])
    if planted:
        assert persisted == [("sync", WAL0), ("write", WAL0)]
    else:
        assert persisted == [("write", WAL0), ("sync", WAL0)]


def _tear_the_frame_of(directory: Path, index: int) -> None:
    """Zero the second half of the ``index``-th record's frame (a torn write
    into the preallocated file)."""
    records = [item for item in WalReader(OsStorage(), str(directory), [0], BLOCK * 4) if isinstance(item, RawRecord)]
    start = records[index].start
    assert start.file_number == 0
    frame_end = records[index + 1].start.offset
    middle = (start.offset + frame_end) // 2
    with open(directory / WAL0, "r+b") as handle:
        handle.seek(middle)
        handle.write(bytes(frame_end - middle))


@PLANTED
def test_keeps_records_after_torn_frame_in_point_in_time(
    planted: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_for: Callable[..., Session]
) -> None:
    directory = tmp_path / "log"
    writer = session_for()
    writer.must("open", dir=str(directory), file_num_bytes=BLOCK * 4)
    writer.must("create_queue", queue="q")
    for payload in ("a1" * 40, "b2" * 40, "c3" * 40):
        writer.must("append", queue="q", payloads=[payload])
    writer.must("close")
    _tear_the_frame_of(directory, 2)  # records: the queue's creation, a1..., b2..., c3...

    if planted:
        BUGS["keeps-records-after-torn-frame"](monkeypatch)
    reader = session_for("point_in_time")
    hello, _ = reader.must("hello")
    assert hello["recovery"] == "point_in_time"
    reader.must("open", dir=str(directory))
    answer, _ = reader.must("state")
    records = answer["state"]["queues"]["q"]["records"]
    if planted:
        assert records == [[0, "a1" * 40], [2, "c3" * 40]]  # a hole where the torn frame was
    else:
        assert records == [[0, "a1" * 40]]  # replay stops at the torn frame


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_the_script_serves_the_protocol_with_the_requested_recovery(bug: str, tmp_path: Path) -> None:
    command = f"{sys.executable} {HERE / 'wrong_crash_adapters.py'} {bug} --recovery strict"
    adapter = SubprocessAdapter(command, timeout_seconds=10.0)
    try:
        assert adapter.request({"op": "hello"})["recovery"] == "strict"
        for request in (
            {"op": "open", "dir": str(tmp_path / "log"), "file_num_bytes": BLOCK},
            {"op": "create_queue", "queue": "q"},
            {"op": "append", "queue": "q", "payloads": ["ab" * BLOCK]},
            {"op": "persist", "fsync": True},
            {"op": "close"},
            {"op": "open", "dir": str(tmp_path / "log")},
        ):
            assert adapter.request(request)["ok"], request
        state = adapter.request({"op": "state"})["state"]
        assert state["queues"]["q"]["records"] == [[0, "ab" * BLOCK]]
    finally:
        adapter.close()
