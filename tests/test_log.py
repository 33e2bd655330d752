"""MultiRecordLog behaviour: operations, errors, policies, fail-stop."""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from pathlib import Path

import crc32c
import pytest

from mrecordlog import (
    Always,
    ChecksumProfileMismatch,
    DoNothing,
    FileSizeMismatch,
    InvalidArgument,
    LogClosed,
    LogFailed,
    LogLocked,
    MissingQueue,
    MultiRecordLog,
    OnDelay,
    OsStorage,
    PersistAction,
    PositionInPast,
    PositionOverflow,
    QueueAlreadyExists,
    QueueModifiedDuringIteration,
    Record,
    StorageError,
)
from mrecordlog._queues import Queues
from tests.storage_doubles import Call, CallLog, RecordingStorage

MAX_U64 = 2**64 - 1
SMALL = 2 * 32768


def _files(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in sorted(os.listdir(directory))}


def _records(log: MultiRecordLog, queue: str) -> list[tuple[int, bytes]]:
    return [(r.position, r.payload) for r in log.range(queue)]


# -- queues ------------------------------------------------------------------


def test_create_queue_writes_one_position_record_and_fsyncs(tmp_path: Path) -> None:
    storage = RecordingStorage(OsStorage())
    with MultiRecordLog.open(tmp_path, storage=storage) as log:
        syncs_before = storage.calls.count("sync")
        outcome = log.create_queue("q")
        # header 7 + record header 11 + name 1
        assert outcome.wal_bytes_written == 7 + 11 + 1
        assert storage.calls.count("sync") == syncs_before + 1
        assert log.list_queues() == ["q"]
        assert log.next_position("q") == 0


def test_creating_an_existing_queue_fails_and_writes_nothing(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        before = _files(tmp_path)
        with pytest.raises(QueueAlreadyExists) as raised:
            log.create_queue("q")
        assert raised.value.queue == "q"
        assert raised.value.kind == "AlreadyExists"
        assert _files(tmp_path) == before


def test_operations_on_a_missing_queue_name_it(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        calls: list[Callable[[], object]] = [
            lambda: log.append_record("ghost", b"x"),
            lambda: log.truncate("ghost", 0),
            lambda: log.delete_queue("ghost"),
            lambda: log.range("ghost"),
            lambda: log.last_position("ghost"),
            lambda: log.last_record("ghost"),
        ]
        for call in calls:
            with pytest.raises(MissingQueue) as raised:
                call()
            assert raised.value.queue == "ghost"


def test_queue_names_may_be_empty_or_non_ascii_up_to_65535_bytes(tmp_path: Path) -> None:
    longest = "é" * (65535 // 2) + "a"  # 65535 UTF-8 bytes
    with MultiRecordLog.open(tmp_path) as log:
        for name in ("", "ünïcödé-🦀", longest):
            log.create_queue(name)
            log.append_record(name, name.encode())
        with pytest.raises(InvalidArgument):
            log.create_queue(longest + "a")
    with MultiRecordLog.open(tmp_path) as log:
        assert sorted(log.list_queues()) == sorted(["", "ünïcödé-🦀", longest])
        assert log.last_record(longest) == Record(0, longest.encode())


def test_delete_then_recreate_restarts_positions_at_zero(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        log.append_records("q", [b"a", b"b"])
        log.delete_queue("q")
        assert not log.queue_exists("q")
        log.create_queue("q")
        assert log.append_record("q", b"c").last_position == 0
    with MultiRecordLog.open(tmp_path) as log:
        assert _records(log, "q") == [(0, b"c")]


# -- appends -----------------------------------------------------------------


def test_append_without_position_takes_the_next_positions(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        first = log.append_records("q", [b"a", b"", b"ccc"])
        assert first.last_position == 2
        # 7 + 11 + 1 + 3 * 12 + 1 + 0 + 3
        assert first.wal_bytes_written == 7 + 11 + 1 + 36 + 4
        assert log.append_record("q", b"d").last_position == 3
        assert _records(log, "q") == [(0, b"a"), (1, b""), (2, b"ccc"), (3, b"d")]


def test_retry_at_the_last_position_is_an_idempotent_no_op(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        log.append_records("q", [b"a", b"b"], position=0)
        before = _files(tmp_path)
        outcome = log.append_records("q", [b"a", b"b"], position=1)
        assert (outcome.last_position, outcome.wal_bytes_written) == (None, 0)
        assert _files(tmp_path) == before
        assert _records(log, "q") == [(0, b"a"), (1, b"b")]


def test_append_below_the_last_position_is_in_the_past(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        log.append_records("q", [b"a", b"b", b"c"])
        with pytest.raises(PositionInPast) as raised:
            log.append_record("q", b"x", position=1)
        assert (raised.value.queue, raised.value.position, raised.value.next_position) == ("q", 1, 3)
        # the position checks come before the empty-batch rule
        with pytest.raises(PositionInPast):
            log.append_records("q", [], position=0)


def test_append_beyond_the_next_position_leaves_a_gap(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        log.append_record("q", b"a")
        assert log.append_records("q", [b"j", b"k"], position=10).last_position == 11
        assert log.append_record("q", b"l").last_position == 12
    with MultiRecordLog.open(tmp_path) as log:
        assert _records(log, "q") == [(0, b"a"), (10, b"j"), (11, b"k"), (12, b"l")]
        assert list(log.range("q", 5, 12)) == [Record(10, b"j"), Record(11, b"k")]


def test_empty_batch_appends_nothing_even_at_a_future_position(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        before = _files(tmp_path)
        assert log.append_records("q", [], position=20).last_position is None
        assert log.append_records("q", []).wal_bytes_written == 0
        assert _files(tmp_path) == before
        assert log.next_position("q") == 0


def test_append_that_would_pass_the_largest_position_fails_without_effect(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        with pytest.raises(PositionOverflow) as raised:
            log.append_records("q", [b"a", b"b"], position=MAX_U64 - 1)
        assert (raised.value.queue, raised.value.position, raised.value.num_records) == ("q", MAX_U64 - 1, 2)
        assert log.next_position("q") == 0
        assert log.append_record("q", b"last", position=MAX_U64 - 1).last_position == MAX_U64 - 1
        assert log.next_position("q") == MAX_U64
        with pytest.raises(PositionOverflow):
            log.append_record("q", b"more")
        # a retry of the last append is still recognised
        assert log.append_record("q", b"last", position=MAX_U64 - 1).last_position is None
    with MultiRecordLog.open(tmp_path) as log:
        assert log.last_record("q") == Record(MAX_U64 - 1, b"last")


@pytest.mark.parametrize("position", [-1, 2**64, True])
def test_positions_outside_u64_are_invalid_arguments(tmp_path: Path, position: int) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        with pytest.raises(InvalidArgument):
            log.append_record("q", b"x", position=position)
        with pytest.raises(InvalidArgument):
            log.truncate("q", position)


def test_payloads_must_be_bytes_like(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        with pytest.raises(InvalidArgument):
            log.append_records("q", [b"ok", "text"])  # type: ignore[list-item]
        assert log.next_position("q") == 0
        log.append_records("q", [bytearray(b"ba"), memoryview(b"mv")])
        assert _records(log, "q") == [(0, b"ba"), (1, b"mv")]


# -- truncation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("position", "evicted", "remaining", "next_position"),
    [
        (2, 0, [3, 4, 5], 6),  # before the head
        (3, 1, [4, 5], 6),  # the head itself
        (4, 2, [5], 6),  # inside
        (5, 3, [], 6),  # the last record
        (9, 3, [], 10),  # beyond: the next position moves to p + 1
        (MAX_U64, 3, [], MAX_U64),  # the largest position empties the queue
    ],
)
def test_truncate_removes_up_to_and_including_the_position(
    tmp_path: Path, position: int, evicted: int, remaining: list[int], next_position: int
) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        log.append_records("q", [b"3", b"4", b"5"], position=3)
        outcome = log.truncate("q", position)
        assert outcome.evicted_records == evicted
        assert [r.position for r in log.range("q")] == remaining
        assert log.next_position("q") == next_position
    with MultiRecordLog.open(tmp_path) as log:
        assert [r.position for r in log.range("q")] == remaining
        assert log.next_position("q") == next_position


def test_truncate_writes_one_record_when_no_file_is_collected(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("queue")
        log.append_record("queue", b"x")
        assert log.truncate("queue", 0).wal_bytes_written == 7 + 11 + len("queue")


def test_gc_writes_position_records_of_empty_queues_in_name_order(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path, file_num_bytes=SMALL) as log:
        for name in ("zeta", "alpha", "mid", "data"):
            log.create_queue(name)
        log.append_record("data", bytes(70000))  # fills file 0 and rolls into file 1
        log.append_record("data", b"tail")
        assert log.wal_file_numbers() == [0, 1]
        outcome = log.truncate("data", 0)
        assert log.wal_file_numbers() == [1]
        truncate_frame = 7 + 11 + 4
        position_frames = sum(7 + 11 + len(name) for name in ("alpha", "mid", "zeta"))
        assert outcome.wal_bytes_written == truncate_frame + position_frames
        tail = (tmp_path / "wal-00000000000000000001").read_bytes()
    names = []
    cursor = tail.index(b"\x01" + (0).to_bytes(8, "little") + (4).to_bytes(2, "little") + b"data")
    cursor += 11 + 4
    while tail[cursor : cursor + 7] != bytes(7):
        length = int.from_bytes(tail[cursor + 4 : cursor + 6], "little")
        record = tail[cursor + 7 : cursor + 7 + length]
        name_length = int.from_bytes(record[9:11], "little")
        names.append((record[0], record[11 : 11 + name_length].decode()))
        cursor += 7 + length
    assert names == [(2, "alpha"), (2, "mid"), (2, "zeta")]


def test_a_call_that_collects_no_file_never_lists_the_empty_queues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Truncates and deletes cost nothing per other queue unless a GC pass
    actually collects a file (else many queues make them quadratic)."""
    listed: list[int] = []
    original = Queues.empty_queues

    def empty_queues(self: Queues) -> list[tuple[str, int]]:
        listed.append(1)
        return original(self)

    with MultiRecordLog.open(tmp_path, file_num_bytes=SMALL) as log:
        for number in range(50):
            log.create_queue(f"q{number}")
            log.append_record(f"q{number}", b"x")
        monkeypatch.setattr(Queues, "empty_queues", empty_queues)
        for number in range(40):
            log.truncate(f"q{number}", 0)
        for number in range(40, 45):
            log.delete_queue(f"q{number}")
        log.append_record("q49", bytes(70000))  # rolls into the next files
        for number in range(45, 49):
            log.truncate(f"q{number}", 0)
        assert 0 in log.wal_file_numbers()
        assert listed == []
        log.truncate("q49", 1)  # nothing live is left in the first files: GC collects them
        assert 0 not in log.wal_file_numbers()
        assert listed == [1]


# -- reads -------------------------------------------------------------------


def test_range_is_half_open_and_last_record_is_the_newest(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        assert log.last_position("q") is None
        assert log.last_record("q") is None
        log.append_records("q", [bytes([i]) for i in range(10)])
        assert [r.position for r in log.range("q", 3, 6)] == [3, 4, 5]
        assert [r.position for r in log.range("q", start=8)] == [8, 9]
        assert [r.position for r in log.range("q", end=2)] == [0, 1]
        assert list(log.range("q", 20)) == []
        assert log.last_record("q") == Record(9, b"\x09")


def test_range_iterator_refuses_to_continue_after_a_truncate(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        log.append_records("q", [b"a", b"b", b"c"])
        iterator = log.range("q")
        assert next(iterator) == Record(0, b"a")
        log.append_record("q", b"d")  # appends do not disturb a running range
        assert next(iterator) == Record(1, b"b")
        log.truncate("q", 1)
        with pytest.raises(QueueModifiedDuringIteration):
            next(iterator)


def test_summary_and_resource_usage_describe_the_log(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path, file_num_bytes=SMALL) as log:
        log.create_queue("a")
        log.create_queue("b")
        log.append_records("a", [b"x" * 100, b"y" * 100], position=5)
        summary = log.summary()
        assert (summary["a"].start, summary["a"].end, summary["a"].file_number) == (5, 6, 0)
        assert (summary["b"].start, summary["b"].end, summary["b"].file_number) == (0, None, None)
        usage = log.resource_usage()
        assert usage.disk_used_bytes == SMALL
        assert usage.memory_used_bytes >= 200
        assert usage.memory_allocated_bytes >= usage.memory_used_bytes - 2 * 16


# -- checksum profiles and file sizes ------------------------------------------


def _first_frame_checksum(directory: Path) -> tuple[int, int, bytes]:
    data = (directory / "wal-00000000000000000000").read_bytes()
    length = int.from_bytes(data[4:6], "little")
    return int.from_bytes(data[0:4], "little"), data[6], data[7 : 7 + length]


def test_a_new_log_uses_crc32c_unless_asked_otherwise(tmp_path: Path) -> None:
    for profile, crc in (
        (None, crc32c.crc32c),
        ("crc32c", crc32c.crc32c),
        ("crc32", zlib.crc32),
    ):
        directory = tmp_path / str(profile)
        with MultiRecordLog.open(directory, checksum=profile) as log:
            log.create_queue("q")
        checksum, frame_type, payload = _first_frame_checksum(directory)
        assert checksum == crc(bytes([frame_type]) + payload)


def test_an_existing_log_keeps_its_profile_and_refuses_the_other(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path, checksum="crc32") as log:
        log.create_queue("q")
    with MultiRecordLog.open(tmp_path) as log:
        assert log.checksum_profile.value == "crc32"
        log.append_record("q", b"more")
    with pytest.raises(ChecksumProfileMismatch) as raised:
        MultiRecordLog.open(tmp_path, checksum="crc32c")
    assert (raised.value.requested, raised.value.detected) == ("crc32c", "crc32")
    assert (raised.value.file, raised.value.offset) == ("wal-00000000000000000000", 0)


def test_an_existing_log_keeps_its_file_size(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path, file_num_bytes=SMALL) as log:
        log.create_queue("q")
    with MultiRecordLog.open(tmp_path) as log:
        assert log.file_num_bytes == SMALL
    with pytest.raises(FileSizeMismatch):
        MultiRecordLog.open(tmp_path, file_num_bytes=4 * 32768)


@pytest.mark.parametrize("size", [0, 1000, 32768 + 1, -32768])
def test_file_sizes_must_be_positive_multiples_of_a_block(tmp_path: Path, size: int) -> None:
    with pytest.raises(InvalidArgument):
        MultiRecordLog.open(tmp_path, file_num_bytes=size)
    assert not tmp_path.joinpath("wal-00000000000000000000").exists()


# -- persist policies --------------------------------------------------------


def test_do_nothing_keeps_appends_in_user_space_until_persist(tmp_path: Path) -> None:
    storage = RecordingStorage(OsStorage())
    with MultiRecordLog.open(tmp_path, storage=storage, persist_policy=DoNothing()) as log:
        log.create_queue("q")
        writes = storage.calls.count("write")
        log.append_record("q", b"a")
        log.truncate("q", 0)
        assert storage.calls.count("write") == writes
        log.persist(PersistAction.FLUSH)
        assert storage.calls.count("write") == writes + 1


def test_always_flush_and_fsync_syncs_every_append(tmp_path: Path) -> None:
    storage = RecordingStorage(OsStorage())
    with MultiRecordLog.open(tmp_path, storage=storage, persist_policy=Always(PersistAction.FLUSH_AND_FSYNC)) as log:
        log.create_queue("q")
        syncs = storage.calls.count("sync")
        log.append_record("q", b"a")
        log.append_record("q", b"b")
        assert storage.calls.count("sync") == syncs + 2


def test_on_delay_persists_once_the_interval_has_passed(tmp_path: Path) -> None:
    now = [100.0]
    storage = RecordingStorage(OsStorage())
    policy = OnDelay(interval_seconds=5.0, action=PersistAction.FLUSH)
    with MultiRecordLog.open(tmp_path, storage=storage, persist_policy=policy, clock=lambda: now[0]) as log:
        log.create_queue("q")
        writes = storage.calls.count("write")
        log.append_record("q", b"a")
        now[0] = 104.0
        log.append_record("q", b"b")
        assert storage.calls.count("write") == writes
        now[0] = 105.5
        log.append_record("q", b"c")
        assert storage.calls.count("write") == writes + 1
        now[0] = 106.0
        log.append_record("q", b"d")
        assert storage.calls.count("write") == writes + 1


# -- failures ----------------------------------------------------------------


def test_an_io_error_during_append_changes_nothing_and_stops_the_log(tmp_path: Path) -> None:
    calls = CallLog()
    storage = RecordingStorage(OsStorage(), calls)
    log = MultiRecordLog.open(tmp_path, storage=storage)
    log.create_queue("q")
    log.append_record("q", b"kept")
    calls.fail_when = lambda call: call.operation == "write"
    with pytest.raises(StorageError) as raised:
        log.append_record("q", b"lost?")
    assert raised.value.path.endswith("wal-00000000000000000000")
    assert raised.value.offset is not None
    assert _records(log, "q") == [(0, b"kept")]
    calls.fail_when = lambda call: False
    with pytest.raises(LogFailed) as refused:
        log.append_record("q", b"refused")
    assert isinstance(refused.value.cause, StorageError)
    for mutation in (lambda: log.create_queue("other"), lambda: log.truncate("q", 0), log.persist):
        with pytest.raises(LogFailed):
            mutation()
    assert log.last_record("q") == Record(0, b"kept")  # reads still work
    log.close()
    with MultiRecordLog.open(tmp_path) as reopened:
        assert _records(reopened, "q") == [(0, b"kept")]


def test_closing_a_fail_stopped_log_raises_when_returned_calls_were_never_written(tmp_path: Path) -> None:
    calls = CallLog()
    log = MultiRecordLog.open(tmp_path, storage=RecordingStorage(OsStorage(), calls), persist_policy=DoNothing())
    log.create_queue("q")  # flushed and synced: 19 bytes
    log.append_record("q", b"returned")  # buffered only
    calls.fail_when = lambda call: call.operation == "write"
    with pytest.raises(StorageError):
        log.persist("flush")
    with pytest.raises(LogFailed) as raised:
        log.close()
    assert raised.value.unpersisted is not None
    assert "wal-00000000000000000000" in raised.value.unpersisted
    assert "bytes 19.." in raised.value.unpersisted
    assert isinstance(raised.value.cause, StorageError)
    assert log.closed
    log.close()  # a second close is harmless
    with MultiRecordLog.open(tmp_path) as reopened:  # the files and the lock were released
        assert _records(reopened, "q") == []


def test_closing_a_fail_stopped_log_raises_when_returned_calls_were_never_fsynced(tmp_path: Path) -> None:
    calls = CallLog()
    policy = Always(PersistAction.FLUSH_AND_FSYNC)
    log = MultiRecordLog.open(tmp_path, storage=RecordingStorage(OsStorage(), calls), persist_policy=policy)
    log.create_queue("q")
    calls.fail_when = lambda call: call.operation == "sync"
    with pytest.raises(StorageError):
        log.append_record("q", b"flushed, fsync failed")
    with pytest.raises(LogFailed):
        log.persist()
    log.close()  # the failed call's own bytes are not a returned call's: nothing to report

    calls = CallLog()
    log = MultiRecordLog.open(
        tmp_path,
        storage=RecordingStorage(OsStorage(), calls),
        persist_policy=OnDelay(3600, PersistAction.FLUSH_AND_FSYNC),
    )
    log.append_record("q", b"returned")  # flushed by nobody yet
    log.persist("flush")  # written, not fsynced
    calls.fail_when = lambda call: call.operation == "sync"
    with pytest.raises(StorageError):
        log.create_queue("r")
    with pytest.raises(LogFailed) as raised:
        log.close()
    assert raised.value.unpersisted is not None
    assert "never fsynced" in raised.value.unpersisted


def test_a_with_block_that_raised_keeps_its_exception_when_close_reports_lost_bytes(tmp_path: Path) -> None:
    calls = CallLog()
    log = MultiRecordLog.open(tmp_path, storage=RecordingStorage(OsStorage(), calls), persist_policy=DoNothing())

    def block() -> None:
        with log:
            log.create_queue("q")
            log.append_record("q", b"returned")
            calls.fail_when = lambda call: call.operation == "write"
            log.persist("flush")

    with pytest.raises(StorageError):  # not the LogFailed of the close
        block()
    assert log.closed


def test_a_failed_fsync_is_not_retried_as_success(tmp_path: Path) -> None:
    calls = CallLog()
    log = MultiRecordLog.open(tmp_path, storage=RecordingStorage(OsStorage(), calls))
    calls.fail_when = lambda call: call.operation == "sync"
    with pytest.raises(StorageError):
        log.create_queue("q")
    assert not log.queue_exists("q")
    calls.fail_when = lambda call: False
    with pytest.raises(LogFailed):
        log.persist()
    log.close()


def test_an_io_error_while_collecting_files_keeps_the_queue_untruncated(tmp_path: Path) -> None:
    calls = CallLog()
    log = MultiRecordLog.open(tmp_path, file_num_bytes=SMALL, storage=RecordingStorage(OsStorage(), calls))
    log.create_queue("q")
    log.append_record("q", bytes(70000))
    log.append_record("q", b"tail")

    def fail_remove(call: Call) -> bool:
        return call.operation == "remove"

    calls.fail_when = fail_remove
    with pytest.raises(StorageError):
        log.truncate("q", 0)
    assert [r.position for r in log.range("q")] == [0, 1]
    log.close()
    calls.fail_when = lambda call: False
    with MultiRecordLog.open(tmp_path) as reopened:
        # the truncate record reached the disk before the removal failed
        assert [r.position for r in reopened.range("q")] == [1]


def test_a_directory_is_used_by_one_open_log_at_a_time(tmp_path: Path) -> None:
    first = MultiRecordLog.open(tmp_path)
    with pytest.raises(LogLocked) as raised:
        MultiRecordLog.open(tmp_path)
    assert raised.value.directory == str(tmp_path)
    first.create_queue("q")
    first.close()
    with MultiRecordLog.open(tmp_path) as second:
        assert second.list_queues() == ["q"]


def test_a_closed_log_refuses_every_call(tmp_path: Path) -> None:
    log = MultiRecordLog.open(tmp_path)
    log.create_queue("q")
    log.close()
    log.close()
    with pytest.raises(LogClosed):
        log.append_record("q", b"x")
    with pytest.raises(LogClosed):
        log.list_queues()
