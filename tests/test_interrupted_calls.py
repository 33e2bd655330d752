"""An exception of any kind (``KeyboardInterrupt`` included) raised inside a
mutating call, at every storage call it makes, leaves the log unchanged in
memory and fail-stopped, never half applied; the files then recover to the
state before the call or after it (nothing acknowledged lost), and ``close``
raises ``LogFailed`` exactly when calls that returned were not persisted.

Each case runs a fixed prefix of operations on a simulated disk, counts the
storage calls of the operation under test, then reruns the prefix once per
call index with the disk raising there.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mrecordlog import Always, DoNothing, LogFailed, MultiRecordLog, PersistAction, PersistPolicy
from mrecordlog.fault_injection import SimulatedDisk, process_crash_image
from mrecordlog.interchange import (
    AppendOp,
    CreateQueueOp,
    DeleteQueueOp,
    Operation,
    PersistOp,
    TruncateOp,
    execute,
    operation_to_json,
)
from mrecordlog.model import Model

DIRECTORY = "/log"
FILE_BYTES = 32768

# Three queues (one empty), the first file holding only records of queue a,
# the second one partly filled: the operations under test roll to a third
# file, collect the first one (a GC pass, with a position record for the
# empty queue) or write into the middle of a block.
PREFIX: tuple[Operation, ...] = (
    CreateQueueOp("a"),
    CreateQueueOp("b"),
    CreateQueueOp("empty"),
    AppendOp("a", None, (b"x" * 30000,)),
    AppendOp("a", None, (b"s" * 5000,)),  # starts in the first file, ends in the second
    AppendOp("b", None, (b"b0", b"b1")),
    AppendOp("a", None, (b"a2",)),
)
UNDER_TEST: dict[str, Operation] = {
    "create_queue": CreateQueueOp("c"),
    "delete_queue": DeleteQueueOp("b"),
    "append (rolls)": AppendOp("b", None, (b"y" * 31000,)),
    "append batch": AppendOp("a", None, (b"p", b"q", b"r")),
    "truncate (GC pass)": TruncateOp("a", 1),
    "truncate": TruncateOp("b", 0),
    "persist fsync": PersistOp(True),
    "persist flush": PersistOp(False),
}
POLICIES: dict[str, PersistPolicy] = {
    "do_nothing": DoNothing(),
    "always_flush": Always(PersistAction.FLUSH),
    "always_fsync": Always(PersistAction.FLUSH_AND_FSYNC),
}
# Exceptions a caller's signal handler or a library bug can raise anywhere.
RAISED: tuple[type[BaseException], ...] = (KeyboardInterrupt, RuntimeError)


class Interrupt(Exception):
    pass


@dataclass
class Run:
    disk: SimulatedDisk
    log: MultiRecordLog
    states: list[str]  # the model's state after each prefix operation (index 0: before any)


def _prepare(policy: PersistPolicy, operations: tuple[Operation, ...]) -> Run:
    disk = SimulatedDisk()
    disk.make_dirs(DIRECTORY)
    log = MultiRecordLog.open(DIRECTORY, storage=disk, persist_policy=policy, file_num_bytes=FILE_BYTES)
    model = Model()
    states = [model.state_json()]
    for operation in operations:
        execute(log, operation)
        model.apply(operation_to_json(operation))
        states.append(model.state_json())
    return Run(disk, log, states)


def _raise_at(disk: SimulatedDisk, index: int, raised: type[BaseException]) -> None:
    """Make the disk raise ``raised`` before its storage call number ``index`` (from 0)."""
    calls = 0

    def before_call(kind: str) -> None:
        nonlocal calls
        calls += 1
        if calls == index + 1:
            disk.before_call = None
            raise raised(f"before storage call {index} ({kind})")

    disk.before_call = before_call


def _count_calls(policy: PersistPolicy, operation: Operation) -> int:
    run = _prepare(policy, PREFIX)
    before = run.disk.call_count
    execute(run.log, operation)
    return run.disk.call_count - before


def _close(log: MultiRecordLog) -> str | None:
    """Close the log; what close reported as not persisted, or None."""
    try:
        log.close()
    except LogFailed as exc:
        return exc.unpersisted or "(LogFailed without unpersisted)"
    return None


def _recovered(disk: SimulatedDisk) -> str:
    with MultiRecordLog.open(DIRECTORY, storage=process_crash_image(disk), file_num_bytes=FILE_BYTES) as log:
        return log.state().to_canonical_json()


@pytest.mark.parametrize("policy_name", list(POLICIES))
@pytest.mark.parametrize("name", list(UNDER_TEST))
def test_an_exception_at_any_storage_call_leaves_the_call_undone_in_memory_and_the_log_stopped(
    name: str, policy_name: str
) -> None:
    policy = POLICIES[policy_name]
    operation = UNDER_TEST[name]
    calls = _count_calls(policy, operation)
    # Under DoNothing an append inside the current block only buffers; a
    # persist after an fsyncing policy's calls has nothing left to do.
    assert calls > 0 or policy_name == "do_nothing" or isinstance(operation, PersistOp), f"{name}: no storage call"
    after_model = Model()
    for op in (*PREFIX, operation):
        after_model.apply(operation_to_json(op))
    after = after_model.state_json()
    for index in range(calls):
        for raised in RAISED:
            run = _prepare(policy, PREFIX)
            before = run.states[-1]
            _raise_at(run.disk, index, raised)
            with pytest.raises(raised):
                execute(run.log, operation)
            where = f"{name}, {policy_name}, {raised.__name__} at storage call {index} of {calls}"
            assert run.log.state().to_canonical_json() == before, f"{where}: memory changed"
            assert isinstance(run.log.failed, raised), f"{where}: the log is not fail-stopped"
            with pytest.raises(LogFailed):
                execute(run.log, CreateQueueOp("z"))
            lost = _close(run.log)
            # When close returned, every returned call persisted; otherwise
            # they may be lost: any prefix.
            allowed = set(run.states) | {after} if lost else {before, after}
            assert run.log.closed
            recovered = _recovered(run.disk)
            assert recovered in allowed, f"{where}: recovered {recovered}"


def test_close_after_an_interrupted_call_reports_exactly_the_returned_calls_it_lost() -> None:
    run = _prepare(DoNothing(), PREFIX)  # the prefix is buffered, never flushed
    _raise_at(run.disk, 0, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        run.log.persist(PersistAction.FLUSH)
    with pytest.raises(LogFailed) as raised:
        run.log.close()
    assert raised.value.unpersisted is not None
    assert "wal-00000000000000000001" in raised.value.unpersisted

    run = _prepare(Always(PersistAction.FLUSH), PREFIX)  # every returned call is flushed
    _raise_at(run.disk, 0, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        execute(run.log, UNDER_TEST["append batch"])
    run.log.close()  # the interrupted call's own bytes are not a returned call's
    assert _recovered(run.disk) in {run.states[-1]}


def test_an_exception_from_the_callers_payloads_changes_nothing_and_stops_nothing() -> None:
    run = _prepare(Always(PersistAction.FLUSH), PREFIX)
    before = run.log.state().to_canonical_json()
    files = run.disk.visible_files(DIRECTORY)

    def payloads() -> object:
        yield b"fine"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run.log.append_records("a", payloads())  # type: ignore[arg-type]
    assert run.log.failed is None
    assert run.log.state().to_canonical_json() == before
    assert run.disk.visible_files(DIRECTORY) == files
    assert run.log.append_record("a", b"next").last_position == 3
    run.log.close()
