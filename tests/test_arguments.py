"""Hostile arguments: foreign buffers, persist actions spelled as strings, and
arguments that can never be valid (issue 8).

The state machine generates these classes (``foreign_payloads`` and
``never_valid_arguments``); these are the regression tests of the cases that
were found, named after the behaviour they pin down.
"""

from __future__ import annotations

import ctypes
import math
import os
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mrecordlog import (
    Always,
    DoNothing,
    InvalidArgument,
    LogClosed,
    MultiRecordLog,
    OnDelay,
    OsStorage,
    PersistAction,
    Record,
)
from mrecordlog._arguments import MAX_FILE_NUM_BYTES
from tests.storage_doubles import RecordingStorage


def _stable_id(value: object) -> str:
    """A test id that is the same in every process (no object addresses),
    so that parallel workers collect the same tests."""
    text = repr(value)
    return type(value).__name__ if " at 0x" in text else text[:40]


class LyingBytes(bytes):
    def __len__(self) -> int:
        return 1


class LyingByteArray(bytearray):
    def __len__(self) -> int:
        return 1000


def _payloads(log: MultiRecordLog, queue: str) -> list[bytes]:
    return [record.payload for record in log.range(queue)]


def _append_survives_reopen(directory: Path, payload: object, expected: bytes) -> None:
    """Append ``payload`` between two plain records; memory and a reopen must
    hold exactly ``expected`` for it, and the records around it intact."""
    with MultiRecordLog.open(directory) as log:
        log.create_queue("q")
        log.append_record("q", b"before")
        log.append_record("q", payload)  # type: ignore[arg-type]
        log.append_record("q", b"after")
        assert _payloads(log, "q") == [b"before", expected, b"after"]
    with MultiRecordLog.open(directory) as log:
        assert _payloads(log, "q") == [b"before", expected, b"after"]
        assert not log.recovery_report.damages


# -- payloads: any C-contiguous buffer, recorded as its bytes --------------------------


def test_a_memoryview_of_uint32_items_is_written_as_its_bytes_and_survives_reopen(tmp_path: Path) -> None:
    data = bytes(range(16))
    _append_survives_reopen(tmp_path, memoryview(data).cast("I"), data)


def test_an_array_of_uint64_is_written_as_its_bytes_not_its_item_count(tmp_path: Path) -> None:
    items = array("Q", [1, 2**63, 7])
    _append_survives_reopen(tmp_path, items, items.tobytes())


def test_a_memoryview_of_an_array_is_written_as_its_bytes(tmp_path: Path) -> None:
    items = array("H", [1, 2, 3])
    _append_survives_reopen(tmp_path, memoryview(items), items.tobytes())


def test_a_two_dimensional_view_is_written_as_its_bytes_in_row_order(tmp_path: Path) -> None:
    data = bytes(range(24))
    _append_survives_reopen(tmp_path, memoryview(data).cast("B", shape=[4, 6]), data)


def test_a_zero_dimensional_ctypes_buffer_is_written_as_its_bytes(tmp_path: Path) -> None:
    data = bytes(range(8))
    _append_survives_reopen(tmp_path, ctypes.c_uint64.from_buffer_copy(data), data)


def test_a_buffer_with_a_non_native_format_is_written_as_its_bytes(tmp_path: Path) -> None:
    data = bytes(range(6))
    _append_survives_reopen(tmp_path, (ctypes.c_uint16 * 3).from_buffer_copy(data), data)


def test_a_bytes_subclass_whose_len_lies_is_written_as_its_real_bytes(tmp_path: Path) -> None:
    _append_survives_reopen(tmp_path, LyingBytes(b"twelve bytes"), b"twelve bytes")


def test_a_bytearray_subclass_whose_len_lies_is_written_as_its_real_bytes(tmp_path: Path) -> None:
    _append_survives_reopen(tmp_path, LyingByteArray(b"abc"), b"abc")


def test_a_memoryview_slice_is_written_as_the_slice(tmp_path: Path) -> None:
    _append_survives_reopen(tmp_path, memoryview(b"--payload--")[2:9], b"payload")


def test_an_empty_multi_byte_view_is_an_empty_payload(tmp_path: Path) -> None:
    _append_survives_reopen(tmp_path, memoryview(b"").cast("I"), b"")


def test_a_bytearray_changed_after_the_append_does_not_change_the_record(tmp_path: Path) -> None:
    payload = bytearray(b"first")
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        log.append_record("q", payload)
        payload[:] = b"later"
        assert _payloads(log, "q") == [b"first"]


def test_a_batch_mixing_buffer_kinds_is_one_record_of_their_bytes(tmp_path: Path) -> None:
    words = array("I", [1, 2])
    batch: list[Any] = [b"plain", memoryview(words), LyingBytes(b"liar"), bytearray(b"ba")]
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        assert log.append_records("q", batch).last_position == 3
    with MultiRecordLog.open(tmp_path) as log:
        assert _payloads(log, "q") == [b"plain", words.tobytes(), b"liar", b"ba"]


@pytest.mark.parametrize(
    "view",
    [memoryview(bytes(range(8)))[::2], memoryview(bytes(24)).cast("B", shape=[4, 6])[::2], memoryview(b"ab")[::-1]],
    ids=["strided", "strided_rows", "reversed"],
)
def test_a_non_contiguous_view_is_refused_and_nothing_is_written(tmp_path: Path, view: memoryview) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        with pytest.raises(InvalidArgument, match="C-contiguous") as raised:
            log.append_records("q", [b"ok", view])
        assert (raised.value.argument, raised.value.queue) == ("payloads", "q")
        assert "payloads[1]" in str(raised.value)
        with pytest.raises(InvalidArgument) as raised:
            log.append_record("q", view)
        assert raised.value.argument == "payload"
        assert log.next_position("q") == 0
        assert log.failed is None


@pytest.mark.parametrize("payload", [None, 5, 1.5, "text", [b"a"], object()], ids=_stable_id)
def test_a_payload_that_is_not_a_buffer_is_refused_naming_the_argument(tmp_path: Path, payload: object) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        with pytest.raises(InvalidArgument, match="bytes-like") as raised:
            log.append_record("q", payload)  # type: ignore[arg-type]
        assert (raised.value.argument, raised.value.queue) == ("payload", "q")
        assert log.next_position("q") == 0


def test_a_released_memoryview_is_refused(tmp_path: Path) -> None:
    view = memoryview(b"abc")
    view.release()
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        with pytest.raises(InvalidArgument) as raised:
            log.append_record("q", view)
        assert raised.value.argument == "payload"


# -- batches -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "batch", [b"abc", "abc", bytearray(b"abc"), memoryview(b"abc"), array("B", b"abc")], ids=_stable_id
)
def test_a_bare_bytes_like_or_str_is_refused_as_a_batch(tmp_path: Path, batch: object) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        with pytest.raises(InvalidArgument, match="a batch must be an iterable of bytes-like objects") as raised:
            log.append_records("q", batch)  # type: ignore[arg-type]
        assert "int" not in str(raised.value)
        assert (raised.value.argument, raised.value.queue) == ("payloads", "q")


@pytest.mark.parametrize("batch", [None, 5, 1.5], ids=_stable_id)
def test_a_batch_that_is_not_iterable_is_refused(tmp_path: Path, batch: object) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        with pytest.raises(InvalidArgument, match="iterable") as raised:
            log.append_records("q", batch)  # type: ignore[arg-type]
        assert raised.value.argument == "payloads"


def test_an_error_raised_by_the_callers_iterable_propagates_unchanged(tmp_path: Path) -> None:
    def payloads() -> Iterator[bytes]:
        yield b"a"
        raise TypeError("the caller's own bug")

    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        with pytest.raises(TypeError, match="the caller's own bug"):
            log.append_records("q", payloads())
        assert log.next_position("q") == 0


def test_an_iterable_that_closes_the_log_makes_the_append_raise_log_closed_and_write_nothing(tmp_path: Path) -> None:
    log = MultiRecordLog.open(tmp_path)
    log.create_queue("q")

    def payloads() -> Iterator[bytes]:
        yield b"written?"
        log.close()

    with pytest.raises(LogClosed):
        log.append_records("q", payloads())
    with MultiRecordLog.open(tmp_path) as again:
        assert again.next_position("q") == 0
        assert not again.recovery_report.damages


def test_a_range_iterator_advanced_after_close_raises_log_closed(tmp_path: Path) -> None:
    log = MultiRecordLog.open(tmp_path)
    log.create_queue("q")
    log.append_records("q", [b"a", b"b"])
    records = log.range("q")
    assert next(records) == Record(0, b"a")
    exhausted = log.range("q", 5)
    log.close()
    with pytest.raises(LogClosed):
        next(records)
    with pytest.raises(LogClosed):
        next(exhausted)  # even one with nothing left to yield


# -- persist actions -----------------------------------------------------------------


def test_persist_with_the_string_flush_and_fsync_fsyncs(tmp_path: Path) -> None:
    storage = RecordingStorage(OsStorage())
    with MultiRecordLog.open(tmp_path, storage=storage, persist_policy=DoNothing()) as log:
        log.create_queue("q")
        log.append_record("q", b"a")
        syncs = storage.calls.count("sync")
        log.persist("flush_and_fsync")
        assert storage.calls.count("sync") == syncs + 1
        log.append_record("q", b"b")
        log.persist("flush")
        assert storage.calls.count("sync") == syncs + 1


def test_always_with_the_string_flush_and_fsync_fsyncs_every_append(tmp_path: Path) -> None:
    storage = RecordingStorage(OsStorage())
    policy = Always("flush_and_fsync")  # type: ignore[arg-type]
    assert policy == Always(PersistAction.FLUSH_AND_FSYNC)
    with MultiRecordLog.open(tmp_path, storage=storage, persist_policy=policy) as log:
        log.create_queue("q")
        syncs = storage.calls.count("sync")
        log.append_record("q", b"a")
        log.append_record("q", b"b")
        assert storage.calls.count("sync") == syncs + 2


def test_policies_store_the_action_parsed_from_its_string_value() -> None:
    assert DoNothing("flush_and_fsync").action is PersistAction.FLUSH_AND_FSYNC  # type: ignore[arg-type]
    assert OnDelay(2, "flush").action is PersistAction.FLUSH  # type: ignore[arg-type]
    assert OnDelay(2).interval_seconds == 2.0


@pytest.mark.parametrize("action", [True, False, None, 1, "FLUSH", "fsync", "flush ", b"flush"], ids=_stable_id)
def test_persist_refuses_anything_but_an_action_or_its_value(tmp_path: Path, action: object) -> None:
    storage = RecordingStorage(OsStorage())
    with MultiRecordLog.open(tmp_path, storage=storage, persist_policy=DoNothing()) as log:
        log.create_queue("q")
        log.append_record("q", b"buffered")
        calls = len(storage.calls.calls)
        with pytest.raises(InvalidArgument) as raised:
            log.persist(action)  # type: ignore[arg-type]
        assert raised.value.argument == "action"
        assert len(storage.calls.calls) == calls  # nothing flushed
        assert log.failed is None


@pytest.mark.parametrize(
    "policy", [Always, DoNothing, lambda action: OnDelay(1.0, action)], ids=["Always", "DoNothing", "OnDelay"]
)
@pytest.mark.parametrize("action", [True, "FLUSH", None, 0], ids=_stable_id)
def test_policies_refuse_anything_but_an_action_or_its_value(policy: Callable[[Any], object], action: object) -> None:
    with pytest.raises(InvalidArgument) as raised:
        policy(action)
    assert raised.value.argument == "action"


@pytest.mark.parametrize("interval", [-1, -0.5, "5", None, True, math.nan, math.inf, 10**400], ids=_stable_id)
def test_on_delay_refuses_an_interval_that_is_not_a_finite_number_of_seconds(interval: object) -> None:
    with pytest.raises(InvalidArgument) as raised:
        OnDelay(interval)  # type: ignore[arg-type]
    assert raised.value.argument == "interval_seconds"


# -- queue names and positions ----------------------------------------------------------


@pytest.mark.parametrize("method", ["queue_exists", "last_position", "last_record", "next_position", "range"])
@pytest.mark.parametrize("name", [["a"], {"a": 1}, None, 5, b"a", "\ud800", "n" * 65536], ids=_stable_id)
def test_read_calls_refuse_names_that_are_never_queue_names(tmp_path: Path, method: str, name: object) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        with pytest.raises(InvalidArgument) as raised:
            getattr(log, method)(name)
        assert raised.value.argument == "queue"


def test_a_str_subclass_queue_name_is_kept_as_a_plain_str(tmp_path: Path) -> None:
    class Name(str):
        pass

    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue(Name("q"))
        assert [type(name) for name in log.list_queues()] == [str]
        assert log.queue_exists("q")


@pytest.mark.parametrize("bound", ["start", "end"])
@pytest.mark.parametrize("value", [-5, -1, 1.5, "1", True, 2**64], ids=_stable_id)
def test_range_refuses_bounds_that_are_not_positions(tmp_path: Path, bound: str, value: object) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        log.append_record("q", b"a")
        with pytest.raises(InvalidArgument) as raised:
            log.range("q", **{bound: value})  # type: ignore[arg-type]
        assert (raised.value.argument, raised.value.queue) == (bound, "q")


@pytest.mark.parametrize("position", [-1, 2**64, 1.5, "3", True, None], ids=_stable_id)
def test_truncate_refuses_a_position_that_is_not_a_u64(tmp_path: Path, position: object) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        with pytest.raises(InvalidArgument) as raised:
            log.truncate("q", position)  # type: ignore[arg-type]
        assert (raised.value.argument, raised.value.queue) == ("position", "q")


def test_positions_may_be_int_subclasses(tmp_path: Path) -> None:
    class Position(int):
        pass

    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        assert log.append_record("q", b"a", position=Position(4)).last_position == 4
        assert type(log.last_position("q")) is int


# -- open ------------------------------------------------------------------------------


class _BytesPath:
    def __fspath__(self) -> bytes:
        return b"/tmp/never-created-by-mrecordlog"


@pytest.mark.parametrize("directory", [None, 5, b"/tmp/never-created", "a\0b", "", _BytesPath()], ids=_stable_id)
def test_open_refuses_a_directory_that_is_not_a_str_path(tmp_path: Path, directory: object) -> None:
    with pytest.raises(InvalidArgument) as raised:
        MultiRecordLog.open(directory)  # type: ignore[arg-type]
    assert raised.value.argument == "directory"
    assert not os.path.exists("/tmp/never-created-by-mrecordlog")


@pytest.mark.parametrize("size", [2**70, MAX_FILE_NUM_BYTES + 32768, 1.5, "32768", True], ids=_stable_id)
def test_open_refuses_file_sizes_that_are_not_sane_multiples_of_a_block(tmp_path: Path, size: object) -> None:
    with pytest.raises(InvalidArgument) as raised:
        MultiRecordLog.open(tmp_path / "log", file_num_bytes=size)  # type: ignore[arg-type]
    assert raised.value.argument == "file_num_bytes"
    assert not (tmp_path / "log").exists()


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("persist_policy", "always"),
        ("persist_policy", None),
        ("checksum", "crc64"),
        ("checksum", ["crc32"]),
        ("recovery", "lenient"),
        ("recovery", None),
        ("clock", None),
    ],
)
def test_open_refuses_never_valid_options_naming_them(tmp_path: Path, argument: str, value: object) -> None:
    with pytest.raises(InvalidArgument) as raised:
        MultiRecordLog.open(tmp_path / "log", **{argument: value})  # type: ignore[arg-type]
    assert raised.value.argument == argument
    assert not (tmp_path / "log").exists()
