"""A log inherited through ``os.fork``: the child holds no lock and cannot write.

Each test forks for real. The child reports what it saw through a pipe and
then waits, still alive, until the parent has done its part (closing and
reopening the log): the order is fixed by the pipes, not by sleeping.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mrecordlog import LogFailed, MultiRecordLog, Record
from mrecordlog.errors import LogForked

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the platform has no fork")


def _in_a_forked_child(child: Callable[[], str], while_the_child_lives: Callable[[], None]) -> str:
    """Run ``child`` in a forked child; return its report once the parent ran
    ``while_the_child_lives`` (the child is alive all that time)."""
    from_child, to_parent = os.pipe()
    from_parent, to_child = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(from_child)
            os.close(to_child)
            try:
                report = child()
            except BaseException as exc:
                report = f"the child raised {exc!r}"
            os.write(to_parent, report.encode()[:4096] or b"-")
            os.read(from_parent, 1)  # end of file once the parent is done
        finally:
            os._exit(0)
    os.close(to_parent)
    os.close(from_parent)
    try:
        report = os.read(from_child, 4096).decode()
        while_the_child_lives()
    finally:
        os.close(to_child)
        os.close(from_child)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return report


def test_a_forked_child_does_not_keep_the_directory_locked_after_the_parent_closes(tmp_path: Path) -> None:
    log = MultiRecordLog.open(tmp_path)
    log.create_queue("q")
    reopened: list[MultiRecordLog] = []

    def close_and_reopen() -> None:
        log.close()
        reopened.append(MultiRecordLog.open(tmp_path))  # LogLocked if the child kept the lock

    _in_a_forked_child(lambda: "alive", close_and_reopen)
    with reopened[0] as again:
        assert again.list_queues() == ["q"]


def test_a_mutation_in_a_forked_child_is_refused_with_log_forked_and_writes_nothing(tmp_path: Path) -> None:
    log = MultiRecordLog.open(tmp_path)
    log.create_queue("q")
    log.append_record("q", b"parent")

    def mutate() -> str:
        outcomes = []
        for mutation in (
            lambda: log.append_record("q", b"child"),
            lambda: log.create_queue("child"),
            lambda: log.truncate("q", 0),
            log.persist,
        ):
            try:
                mutation()
                outcomes.append("accepted")
            except LogFailed as exc:
                outcomes.append(type(exc.cause).__name__)
        return ",".join(outcomes)

    report = _in_a_forked_child(mutate, log.close)
    assert report == ",".join([LogForked.__name__] * 4)
    with MultiRecordLog.open(tmp_path) as again:
        assert again.list_queues() == ["q"]
        assert list(again.range("q")) == [Record(0, b"parent")]


def test_reads_in_a_forked_child_still_work(tmp_path: Path) -> None:
    log = MultiRecordLog.open(tmp_path)
    log.create_queue("q")
    log.append_records("q", [b"a", b"b"])

    def read() -> str:
        failed = log.failed
        return repr(([tuple(r) for r in log.range("q")], log.last_position("q"), type(failed).__name__))

    report = _in_a_forked_child(read, log.close)
    assert report == repr(([(0, b"a"), (1, b"b")], 1, "LogForked"))


def test_the_parent_log_is_unaffected_by_a_fork(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        _in_a_forked_child(lambda: "alive", lambda: None)
        assert log.failed is None
        log.append_record("q", b"after the fork")
        assert log.last_record("q") == Record(0, b"after the fork")
