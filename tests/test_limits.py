"""Limits given to ``open`` (issue 13, item 1): ``max_memory_bytes`` and
``max_disk_bytes`` refuse an append or a create_queue with ``CapacityExceeded``
before anything is written; truncation and deletion make room. The state
machine (``tests/stateful_machine.py``) checks the rules over generated
sequences; these are the worked examples, one per rule."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mrecordlog import CapacityExceeded, DoNothing, InvalidArgument, MRecordLogError, MultiRecordLog, PersistAction

BLOCK = 32768


def _files(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in sorted(os.listdir(directory))}


@pytest.mark.parametrize("argument", ["max_memory_bytes", "max_disk_bytes"])
@pytest.mark.parametrize("value", [-1, True, 1.5, "100", b"1"])
def test_a_limit_that_can_never_be_valid_is_refused_naming_it(tmp_path: Path, argument: str, value: object) -> None:
    with pytest.raises(InvalidArgument) as refused:
        MultiRecordLog.open(tmp_path / "log", **{argument: value})  # type: ignore[arg-type]
    assert refused.value.argument == argument
    assert not (tmp_path / "log").exists(), "the directory was made before the arguments were checked"


def test_limits_are_optional_and_reported(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        assert (log.max_memory_bytes, log.max_disk_bytes) == (None, None)
    with MultiRecordLog.open(tmp_path, max_memory_bytes=0, max_disk_bytes=10 * BLOCK) as log:
        assert (log.max_memory_bytes, log.max_disk_bytes) == (0, 10 * BLOCK)


def test_memory_used_counts_names_payloads_and_16_bytes_per_record_and_survives_reopening(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")  # 1
        log.create_queue("é")  # 2 (UTF-8)
        log.append_records("q", [b"abc", b"", b"defgh"])  # 8 + 3 * 16
        log.append_records("é", [b"x" * 100])  # 100 + 16
        assert log.resource_usage().memory_used_bytes == 3 + 8 + 48 + 116
        log.truncate("q", 0)  # evicts b"abc"
        assert log.resource_usage().memory_used_bytes == 3 + 5 + 32 + 116
    with MultiRecordLog.open(tmp_path) as log:
        assert log.resource_usage().memory_used_bytes == 3 + 5 + 32 + 116
        log.delete_queue("é")
        assert log.resource_usage().memory_used_bytes == 1 + 5 + 32


def test_an_append_past_the_memory_limit_is_refused_naming_the_figures_and_changes_nothing(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path, max_memory_bytes=1 + 2 * (100 + 16)) as log:
        log.create_queue("q")
        log.append_records("q", [b"x" * 100, b"y" * 100])  # exactly at the limit: accepted
        assert log.resource_usage().memory_used_bytes == log.max_memory_bytes
        files, state = _files(tmp_path), log.state()
        with pytest.raises(CapacityExceeded) as refused:
            log.append_record("q", b"")  # 16 bytes of metadata is one byte too many
        error = refused.value
        assert isinstance(error, MRecordLogError)
        assert (error.limit_kind, error.operation, error.queue) == ("memory", "append", "q")
        assert (error.limit, error.used, error.needed) == (233, 233, 16)
        assert "queue 'q'" in str(error)
        assert "max_memory_bytes is 233" in str(error)
        log.persist(PersistAction.FLUSH)
        assert _files(tmp_path) == files
        assert log.state() == state
        assert log.failed is None, "a refusal must not fail-stop the log"
        log.truncate("q", 0)  # makes room: 116 bytes
        assert log.append_record("q", b"z" * 50).last_position == 2


def test_a_queue_name_counts_against_the_memory_limit(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path, max_memory_bytes=5) as log:
        log.create_queue("abc")
        with pytest.raises(CapacityExceeded) as refused:
            log.create_queue("def")
        assert (refused.value.limit_kind, refused.value.operation, refused.value.queue) == (
            "memory",
            "create_queue",
            "def",
        )
        assert (refused.value.used, refused.value.needed) == (3, 3)
        assert log.list_queues() == ["abc"]
        log.create_queue("")  # an empty name needs nothing
        log.delete_queue("abc")
        log.create_queue("def")


def test_an_append_that_would_roll_into_a_file_past_the_disk_limit_is_refused(tmp_path: Path) -> None:
    # Files of one block, records of three quarters of one: the second append
    # rolls into a second file, the third would need a third one.
    with MultiRecordLog.open(tmp_path, file_num_bytes=BLOCK, max_disk_bytes=2 * BLOCK) as log:
        log.create_queue("q")
        big = b"x" * (BLOCK * 3 // 4)
        log.append_record("q", big)
        log.append_record("q", big)
        assert log.wal_file_numbers() == [0, 1]
        files, offset = _files(tmp_path), log._writer.offset
        with pytest.raises(CapacityExceeded) as refused:
            log.append_record("q", big)
        error = refused.value
        assert (error.limit_kind, error.limit, error.used, error.needed) == ("disk", 2 * BLOCK, 2 * BLOCK, BLOCK)
        assert _files(tmp_path) == files
        assert log._writer.offset == offset
        assert log.failed is None
        log.truncate("q", 1)  # every record evicted: file 0 is collected
        assert log.wal_file_numbers() == [1]
        assert log.append_record("q", big).last_position == 2
        assert log.resource_usage().disk_used_bytes <= 2 * BLOCK


def test_a_log_opened_over_its_limits_refuses_growth_until_truncated(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        log.append_records("q", [b"a" * 1000, b"b" * 1000])
    with MultiRecordLog.open(tmp_path, max_memory_bytes=1500) as log:
        assert log.resource_usage().memory_used_bytes == 1 + 2032
        with pytest.raises(CapacityExceeded):
            log.append_record("q", b"")
        log.truncate("q", 0)
        log.append_record("q", b"c" * 100)


def test_the_repr_names_directory_status_queues_and_profile(tmp_path: Path) -> None:
    log = MultiRecordLog.open(tmp_path, checksum="crc32", max_memory_bytes=1000)
    log.create_queue("q")
    assert repr(log) == f"<MultiRecordLog {str(tmp_path)!r} open, 1 queue(s), checksum crc32, max_memory_bytes=1000>"
    log._failure = OSError("injected")  # what a failed write leaves
    assert "failed: OSError" in repr(log)
    log._failure = None
    log.close()
    assert repr(log).startswith(f"<MultiRecordLog {str(tmp_path)!r} closed, 1 queue(s), checksum crc32")


def test_buffered_bytes_do_not_count_twice_against_the_disk_limit(tmp_path: Path) -> None:
    # The disk figure is files x file size, whatever the writer still buffers.
    with MultiRecordLog.open(
        tmp_path, file_num_bytes=BLOCK, max_disk_bytes=BLOCK, persist_policy=DoNothing(PersistAction.FLUSH)
    ) as log:
        log.create_queue("q")
        for _ in range(10):
            log.append_record("q", b"x" * 1000)
        assert log.resource_usage().disk_used_bytes == BLOCK
