"""A Hypothesis state machine that runs the core and the model side by side.

Every rule performs one operation on both and compares the outcomes (values or
error kinds); the invariant compares the whole observable state after every
step. Files are a few blocks long, so rolling and file GC happen often. A
failure prints the shrunk steps as a replayable program.

Hostile input is generated as classes too: payloads of every buffer kind
(``append_foreign_buffers``), arguments that can never be valid
(``call_with_never_valid_arguments``), persist actions spelled as strings,
caller code that closes the log in the middle of a call, range iterators that
outlive their log (``reopen``), and a fork of the process holding the log.

Logs are opened with small limits sometimes (``max_memory_bytes``,
``max_disk_bytes``), so that refusals (``CapacityExceeded``) happen often: the
model states the memory rule; the disk rule, measured on files the model does
not have, is checked against the core's own figures (``_expect_disk_rule``).

``steps`` records the steps of the current run (its length after shrinking is
what ``test_stateful_teeth`` reports).
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mrecordlog import (
    Always,
    CapacityExceeded,
    DoNothing,
    InvalidArgument,
    LogFailed,
    MRecordLogError,
    MultiRecordLog,
    OnDelay,
    PersistAction,
    PersistPolicy,
)
from mrecordlog._codec import RecordPositionRecord, encode_append_records, encode_record
from mrecordlog._framing import frame_record
from mrecordlog._storage import Storage
from mrecordlog.errors import LogForked
from mrecordlog.model import Model, ModelError
from mrecordlog.oracle.strategies import (
    APPEND_POSITIONS,
    TRUNCATE_POSITIONS,
    NeverValidCall,
    append_position,
    batches,
    block_filling_size,
    foreign_payloads,
    never_valid_arguments,
    queue_names,
    truncate_position,
)
from mrecordlog.oracle.workloads import POLICIES, policy_of
from tests import spec_reader

BLOCK = 32768

Outcome = tuple[str, Any]

# The policies of ``policy_of`` with their action spelled as a string, built at
# open time (so that a policy class under test parses them).
_SPELLED_POLICIES: dict[str, Callable[[], PersistPolicy]] = {
    "always_flush": lambda: Always("flush"),  # type: ignore[arg-type]
    "always_fsync": lambda: Always("flush_and_fsync"),  # type: ignore[arg-type]
    "do_nothing": lambda: DoNothing("flush"),  # type: ignore[arg-type]
}
_POLICY_CLASSES: dict[str, Callable[..., object]] = {"Always": Always, "DoNothing": DoNothing, "OnDelay": OnDelay}
# Persist actions and whether each one fsyncs, spelled every accepted way.
_PERSIST_ACTIONS: dict[PersistAction | str, bool] = {
    PersistAction.FLUSH: False,
    PersistAction.FLUSH_AND_FSYNC: True,
    "flush": False,
    "flush_and_fsync": True,
}


def _limited(call: Callable[[], Any]) -> tuple[Outcome, CapacityExceeded | None]:
    """``_core``, and the ``CapacityExceeded`` refusal when there is one."""
    try:
        return ("ok", call()), None
    except CapacityExceeded as exc:
        return ("error", exc.kind), exc
    except MRecordLogError as exc:
        return ("error", exc.kind), None


def _memory_need(batch: list[bytes]) -> int:
    return sum(map(len, batch)) + 16 * len(batch)


def _core(call: Callable[[], Any]) -> Outcome:
    try:
        return ("ok", call())
    except MRecordLogError as exc:
        return ("error", exc.kind)


def _model(call: Callable[[], Any]) -> Outcome:
    try:
        return ("ok", call())
    except ModelError as exc:
        return ("error", exc.kind)


# Free space a RAM file system must have for the machine's logs to go there.
_RAM_MIN_FREE_BYTES = 1 << 30


@functools.cache
def scratch_root() -> str | None:
    """Where the machine makes its log directories: a RAM file system
    (``/dev/shm``) when there is one with room, else the default temporary
    directory (None).

    The machine compares the core's answers and the bytes it hands the OS
    with the model; what survives a crash is the crash machine's question,
    asked of a simulated disk. On a disk file system the fsyncs, unlinks and
    rmdirs of the real OS are about a third of the machine's time, and the
    planted-bug tests run it through hundreds of shrinking steps."""
    candidate = "/dev/shm"
    try:
        stats = os.statvfs(candidate)
    except OSError:
        return None
    if not os.access(candidate, os.W_OK | os.X_OK) or stats.f_bavail * stats.f_frsize < _RAM_MIN_FREE_BYTES:
        return None
    return candidate


def sometimes(strategy: st.SearchStrategy[int]) -> st.SearchStrategy[int | None]:
    """None in four runs of five, else a value of ``strategy``; shrinks to None.

    A limit in every other run starved the other rules: refused appends left
    queues nearly empty, and the planted range bugs took 5 to 6 times as long
    to find and shrink (138 s instead of 22 s for one of them)."""
    return st.integers(0, 4).flatmap(lambda k: strategy if k == 4 else st.none())


class LogVersusModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="mrecordlog-stateful-", dir=scratch_root())
        self.max_memory_bytes: int | None = None
        self.max_disk_bytes: int | None = None
        self.model = Model()
        self.log: MultiRecordLog | None = None
        self.profile = "crc32c"
        self.file_num_bytes = BLOCK
        self.policy = "always_flush"
        self.policy_spelled = False  # the policy's action given as a string
        self.storage: Storage | None = None  # None: the real file system
        self.steps: list[str] = []
        self.forked = False
        self._never_valid: st.SearchStrategy[NeverValidCall] | None = None
        # The disk figure may pass max_disk_bytes only through a truncate or
        # delete_queue (never refused: they make room, but their own records
        # may roll into a new file) or an open: the highest figure since.
        self.disk_allowance = 0

    @property
    def model(self) -> Model:
        return self._model

    @model.setter
    def model(self, model: Model) -> None:
        # Whatever model a subclass puts here (the crash machine's, recovered
        # from its history) follows the memory limit the log was opened with.
        model.max_memory_bytes = self.max_memory_bytes
        self._model = model

    def teardown(self) -> None:
        if self.log is not None:
            self.log.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def core(self) -> MultiRecordLog:
        assert self.log is not None
        return self.log

    def _next_position(self, queue: str) -> int:
        q = self.model.queues.get(queue)
        return q.next_position if q is not None else 0

    def _check(self, core: Outcome, model: Outcome, mutation: str | None = None) -> None:
        assert core == model, f"core answered {core!r}, the model {model!r}"
        if mutation is not None:
            self.after_mutation(mutation, succeeded=core[0] == "ok")

    def after_mutation(self, mutation: str, *, succeeded: bool) -> None:
        """Called after each mutating step (a hook for the crash machine)."""

    def _open(self, checksum: str | None) -> MultiRecordLog:
        return MultiRecordLog.open(
            self.directory,
            checksum=checksum,
            file_num_bytes=self.file_num_bytes,
            persist_policy=_SPELLED_POLICIES[self.policy]() if self.policy_spelled else policy_of(self.policy),
            storage=self.storage,
            max_memory_bytes=self.max_memory_bytes,
            max_disk_bytes=self.max_disk_bytes,
        )

    def wal_files(self) -> dict[str, bytes]:
        """The WAL files as the OS shows them (written, maybe not durable)."""
        return spec_reader.directory_files(self.directory)

    def files_state(self) -> Any:
        """The state the WAL files hold, by the independent reader of the format.

        Bytes the reader cannot even parse (an entry longer than its record,
        say, which a payload written with the wrong length makes) are a
        disagreement like any other, whatever the reader raises."""
        files = self.wal_files()
        try:
            return spec_reader.read_state(files, self.profile)
        except AssertionError:
            raise
        except Exception as exc:
            raise spec_reader.FormatViolation(f"the WAL files do not parse: {exc!r}") from exc

    @initialize(
        profile=st.sampled_from(["crc32c", "crc32"]),
        blocks=st.integers(1, 4),
        policy=st.sampled_from(POLICIES),
        spelled=st.booleans(),
        # Small: a few queues and records fill them, so refusals are common.
        memory=sometimes(st.integers(0, 4000)),
        # In files of the log's size, and between (a limit need not be a multiple).
        disk_files=sometimes(st.integers(1, 4)),
        disk_slack=st.integers(-3, 3).map(lambda n: n * 4096),
    )
    def open_log(
        self,
        profile: str,
        blocks: int,
        policy: str,
        spelled: bool,
        memory: int | None,
        disk_files: int | None,
        disk_slack: int,
    ) -> None:
        self.profile = profile
        self.file_num_bytes = blocks * BLOCK
        self.policy = policy
        self.policy_spelled = spelled
        self.max_memory_bytes = memory
        self.max_disk_bytes = None if disk_files is None else max(0, disk_files * self.file_num_bytes + disk_slack)
        self.model = Model()  # (given the limit by ``model``'s setter)
        limits = f", max_memory_bytes={memory}, max_disk_bytes={self.max_disk_bytes}"
        self.steps.append(f"open({profile}, {blocks} blocks, {policy}{', spelled' if spelled else ''}{limits})")
        self.log = self._open(profile)
        self._allow_disk_figure()

    def _allow_disk_figure(self) -> None:
        """After a call the disk limit does not bound (an open, a truncate, a
        delete_queue): the figure it left is allowed until it falls."""
        self.disk_allowance = self.core.resource_usage().disk_used_bytes

    def _check_limited(
        self,
        operation: str,
        core_call: Callable[[], Any],
        model_call: Callable[[], Any],
        memory_need: int,
        record: Callable[[Any], bytes | None],
    ) -> None:
        """A create_queue or append, with the limits' rules.

        ``memory_need`` is what the call adds to the memory figure (a name's
        bytes, or the payloads' bytes plus 16 per record); ``record`` gives,
        from the model's answer, the record the call writes (None when it
        writes none). The model decides the memory rule; the
        disk rule is the figure before the call plus the size of the new files
        the record's frames roll into, against the limit. A refusal must name
        the rule, the figure and the need, and change nothing: not the state,
        not the files' bytes, not the writer's offset; the log stays usable.
        After a call that succeeded, the memory figure is within its limit, and
        so is the disk figure if the call added a file."""
        if self.max_memory_bytes is None and self.max_disk_bytes is None:
            self._check(_core(core_call), _model(model_call), operation)
            return
        core = self.core
        usage = core.resource_usage()
        writer = core._writer
        offset = writer.offset
        files = self.wal_files()
        state = core.state()
        model_before = self.model.copy()
        expected = _model(model_call)
        expected_refusal: tuple[str, int, int] | None = None
        if expected == ("error", "CapacityExceeded"):
            expected_refusal = ("memory", usage.memory_used_bytes, memory_need)
        elif expected[0] == "ok" and self.max_disk_bytes is not None:
            written = record(expected[1])
            if written is not None:
                framed = len(frame_record(written, offset % BLOCK, core.checksum_profile))
                overflow = offset + framed - self.file_num_bytes
                new_files = (overflow + self.file_num_bytes - 1) // self.file_num_bytes if overflow > 0 else 0
                need = new_files * self.file_num_bytes
                if usage.disk_used_bytes + need > self.max_disk_bytes:
                    self.model = model_before
                    expected = ("error", "CapacityExceeded")
                    expected_refusal = ("disk", usage.disk_used_bytes, need)
        outcome, refusal = _limited(core_call)
        self._check(outcome, expected, operation)
        if refusal is not None:
            assert expected_refusal is not None
            kind, used, need = expected_refusal
            assert (refusal.limit_kind, refusal.used, refusal.operation) == (kind, used, operation), repr(refusal)
            assert refusal.limit == (self.max_memory_bytes if kind == "memory" else self.max_disk_bytes)
            assert refusal.needed == need, f"{refusal}: the call needs {need}"
            assert refusal.used + refusal.needed > refusal.limit, f"refused within the limit: {refusal}"
            assert core.failed is None, "a refusal fail-stopped the log"
            assert core.state() == state, "a refusal changed the state"
            assert writer.offset == offset, "a refusal wrote to the log"
            assert self.wal_files() == files, "a refusal changed the files"
            assert core.resource_usage().disk_used_bytes == usage.disk_used_bytes
        elif outcome[0] == "ok":
            after = core.resource_usage()
            if self.max_memory_bytes is not None:
                assert after.memory_used_bytes <= self.max_memory_bytes, f"memory {after} past {self.max_memory_bytes}"
            if self.max_disk_bytes is not None and after.disk_used_bytes > usage.disk_used_bytes:
                # A call that adds no file (an empty batch, a record that fits)
                # leaves a figure that a truncate or an open took past the limit.
                assert after.disk_used_bytes <= self.max_disk_bytes, f"disk {after} past {self.max_disk_bytes}"

    @rule(queue=queue_names)
    def create_queue(self, queue: str) -> None:
        self.steps.append("create_queue")
        self._check_limited(
            "create_queue",
            lambda: self.core.create_queue(queue) and None,
            lambda: self.model.create_queue(queue),
            len(queue.encode()),
            lambda _: encode_record(RecordPositionRecord(queue, 0)),
        )

    @rule(queue=queue_names)
    def delete_queue(self, queue: str) -> None:
        self.steps.append("delete_queue")
        self._check(
            _core(lambda: self.core.delete_queue(queue) and None),
            _model(lambda: self.model.delete_queue(queue)),
            "delete_queue",
        )
        self._allow_disk_figure()

    @rule(queue=queue_names, kind=st.sampled_from(APPEND_POSITIONS), delta=st.integers(0, 3), batch=batches)
    def append(self, queue: str, kind: str, delta: int, batch: list[bytes]) -> None:
        self.steps.append("append")
        position = append_position(kind, delta, self._next_position(queue))
        self._check_limited(
            "append",
            lambda: self.core.append_records(queue, batch, position=position).last_position,
            lambda: self.model.append(queue, batch, position),
            _memory_need(batch),
            self._appended_record(queue, batch),
        )

    @staticmethod
    def _appended_record(queue: str, batch: list[bytes]) -> Callable[[Any], bytes | None]:
        """The record an append writes, from the model's answer (its last position)."""
        return lambda last: None if last is None else encode_append_records(queue, last - len(batch) + 1, batch)

    @rule(queue=queue_names, left=st.integers(0, 9))
    def append_filling_the_block(self, queue: str, left: int) -> None:
        """One record sized to leave exactly ``left`` bytes in the writer's
        block (the next block's, when it does not fit in this one): the
        padding cases (fewer than 7 left), the zero-length frame (exactly 7)
        and exact block and file ends."""
        self.steps.append("append_filling_the_block")
        size = block_filling_size(queue, self.core._writer.block_offset, left)
        batch = [random.Random(size).randbytes(size)]
        self._check_limited(
            "append",
            lambda: self.core.append_records(queue, batch).last_position,
            lambda: self.model.append(queue, batch),
            _memory_need(batch),
            self._appended_record(queue, batch),
        )

    # Under a disk limit, appends must roll into new files often: the small
    # batches of ``append`` seldom fill a file.
    @precondition(lambda self: self.max_disk_bytes is not None)
    @rule(queue=queue_names, halves=st.integers(1, 5))
    def append_half_blocks(self, queue: str, halves: int) -> None:
        self.steps.append("append_half_blocks")
        if queue not in self.model.queues:
            self.create_queue(queue)  # (a rule of its own would seldom come first)
        batch = [random.Random(halves).randbytes(halves * BLOCK // 2)]
        self._check_limited(
            "append",
            lambda: self.core.append_records(queue, batch).last_position,
            lambda: self.model.append(queue, batch),
            _memory_need(batch),
            self._appended_record(queue, batch),
        )

    @rule(queue=queue_names, kind=st.sampled_from(TRUNCATE_POSITIONS), delta=st.integers(0, 2))
    def truncate(self, queue: str, kind: str, delta: int) -> None:
        self.steps.append("truncate")
        position = truncate_position(kind, delta, self.model.queues.get(queue))
        self._check(
            _core(lambda: self.core.truncate(queue, position).evicted_records),
            _model(lambda: self.model.truncate(queue, position)),
            "truncate",
        )
        self._allow_disk_figure()

    @rule(queue=queue_names, start=st.integers(-1, 12), length=st.integers(0, 6))
    def read_range(self, queue: str, start: int, length: int) -> None:
        self.steps.append("range")
        low = None if start < 0 else start
        high = None if start < 0 else start + length
        self._check(
            _core(lambda: [(r.position, r.payload) for r in self.core.range(queue, low, high)]),
            _model(lambda: self.model.range(queue, low, high)),
        )

    @rule(action=st.sampled_from(list(_PERSIST_ACTIONS)))
    def persist(self, action: PersistAction | str) -> None:
        self.steps.append("persist")
        self.core.persist(action)  # type: ignore[arg-type]
        self.after_mutation("persist_fsync" if _PERSIST_ACTIONS[action] else "persist_flush", succeeded=True)

    @rule(keep_profile=st.booleans())
    def reopen(self, keep_profile: bool) -> None:
        self.steps.append("reopen")
        # A range over the first queue, not exhausted (one record in, if it has
        # two): once its log is closed, advancing it raises Closed.
        reading = None
        if self.model.queues:
            first = min(self.model.queues)
            reading = self.core.range(first)
            if len(self.model.queues[first].records) > 1:
                next(reading)
        self._reopen(keep_profile)
        if reading is not None:
            self._check(_core(lambda: next(reading, None)), ("error", "Closed"))

    def _reopen(self, keep_profile: bool) -> None:
        self.core.close()
        self.after_mutation("close", succeeded=True)
        # The closed log's bytes, read by an independent reader of the format,
        # hold exactly the model's state.
        assert self.files_state() == self.model.state_json_value()
        self.log = self._open(self.profile if keep_profile else None)
        # A log without frames has no profile yet: it takes the one asked for.
        self.profile = self.log.checksum_profile.value
        report = self.log.recovery_report
        assert not report.damages, report.describe()
        self._allow_disk_figure()

    # -- hostile input ---------------------------------------------------------

    @rule(queue=queue_names, foreign=st.lists(foreign_payloads(), min_size=1, max_size=4), one=st.booleans())
    def append_foreign_buffers(self, queue: str, foreign: list[tuple[object, bytes]], one: bool) -> None:
        """The core gets buffers of every kind, the model the bytes each one
        carries: a record is its buffer's bytes, whatever its len() says."""
        self.steps.append("append_foreign_buffers")
        objects = [obj for obj, _ in foreign]
        expected = [data for _, data in foreign]
        if one:
            self._check_limited(
                "append",
                lambda: self.core.append_record(queue, objects[0]).last_position,  # type: ignore[arg-type]
                lambda: self.model.append(queue, expected[:1]),
                _memory_need(expected[:1]),
                self._appended_record(queue, expected[:1]),
            )
        else:
            self._check_limited(
                "append",
                lambda: self.core.append_records(queue, objects).last_position,  # type: ignore[arg-type]
                lambda: self.model.append(queue, expected),
                _memory_need(expected),
                self._appended_record(queue, expected),
            )

    def _never_valid_target(self, target: str) -> Callable[..., object]:
        if target == "MultiRecordLog.open":
            return functools.partial(MultiRecordLog.open, storage=self.storage)
        if target in _POLICY_CLASSES:
            return _POLICY_CLASSES[target]
        method: Callable[..., object] = getattr(self.core, target.removeprefix("log."))
        return method

    # Hypothesis orders rules by their number of arguments and shrinks steps
    # towards the first one: a rule that changes nothing must not be first
    # (one-argument rules are), or shrunk failures keep many no-op steps.
    @rule(data=st.data(), reopen_after=st.integers(0, 7).map(lambda n: n == 7))  # reopening is the slow part
    def call_with_never_valid_arguments(self, data: st.DataObject, reopen_after: bool) -> None:
        """The model of such a call: refused with InvalidArgument naming the
        argument (and the queue), nothing changed (in memory, in the files, and
        so after a reopen), the log still usable."""
        if self._never_valid is None:
            self._never_valid = never_valid_arguments(self.directory)
        call: NeverValidCall = data.draw(self._never_valid, label="call")
        self.steps.append(f"never valid: {call!r}")
        files = self.wal_files()
        state = self.core.state()
        written = self.core._writer.offset  # buffered bytes included
        refusal: InvalidArgument | None = None
        try:
            result = self._never_valid_target(call.target)(*call.args, **call.kwargs)
        except InvalidArgument as exc:
            refusal = exc
        except Exception as exc:
            raise AssertionError(f"{call!r} raised {type(exc).__name__}: {exc}") from exc
        else:
            if isinstance(result, MultiRecordLog):
                result.close()
            raise AssertionError(f"{call!r} was accepted: {result!r:.200}")
        assert refusal.argument == call.argument, f"{call!r} refused naming {refusal.argument!r}: {refusal}"
        assert call.queue is None or refusal.queue == call.queue, f"{call!r} named queue {refusal.queue!r}"
        assert self.core.failed is None, f"{call!r} fail-stopped the log"
        assert not self.core.closed
        assert self.core.state() == state
        assert self.core._writer.offset == written, f"{call!r} wrote to the log"
        assert self.wal_files() == files, f"{call!r} changed the files"
        if reopen_after:
            self._reopen(keep_profile=True)

    @rule(queue=queue_names, batch=batches)
    def append_from_an_iterator_that_closes_the_log(self, queue: str, batch: list[bytes]) -> None:
        """The caller's iterable runs before anything is written: when it closes
        the log, the append is refused (Closed) and writes nothing."""
        self.steps.append("append_from_an_iterator_that_closes_the_log")
        log = self.core

        def payloads_then_close() -> Iterator[bytes]:
            yield from batch
            log.close()

        self._check(_core(lambda: log.append_records(queue, payloads_then_close()).last_position), ("error", "Closed"))
        self._reopen(keep_profile=True)

    # At most one fork per example, and only on the real file system (the lock
    # is an flock there): forking a test process of hundreds of MiB is costly.
    @precondition(lambda self: hasattr(os, "fork") and self.storage is None and not self.forked)
    @rule(keep_profile=st.booleans())
    def fork_then_reopen_in_the_parent(self, keep_profile: bool) -> None:
        """A child made by fork neither keeps the directory locked nor writes:
        while it is alive, the parent closes and reopens the log; the child's
        mutation is refused (LogFailed caused by LogForked), its reads work."""
        self.steps.append("fork_then_reopen_in_the_parent")
        self.forked = True
        expected = self.model.state_json_value()
        from_child, to_parent = os.pipe()
        from_parent, to_child = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(from_child)
            os.close(to_child)
            self._forked_child(expected, to_parent, from_parent)
        os.close(to_parent)
        os.close(from_parent)
        try:
            report = os.read(from_child, 4096).decode()
            self._reopen(keep_profile)  # the child is still alive: it waits for us
        finally:
            os.close(to_child)  # the child exits on end of file
            os.close(from_child)
            _, status = os.waitpid(pid, 0)
        assert report == "ok", f"in the forked child: {report or 'no report'}"
        assert os.waitstatus_to_exitcode(status) == 0

    def _forked_child(self, expected: dict[str, Any], report_to: int, wait_on: int) -> NoReturn:
        try:
            try:
                self.core.create_queue("made by a forked child")
                report = "a mutation was accepted"
            except LogFailed as exc:
                report = "ok" if isinstance(exc.cause, LogForked) else f"LogFailed caused by {exc.cause!r}"
            except BaseException as exc:
                report = f"a mutation raised {exc!r}"
            if report == "ok" and self.core.state().to_json_value() != expected:
                report = "the child's reads differ from the state at the fork"
            os.write(report_to, report.encode()[:4096])
            os.read(wait_on, 1)
        finally:
            os._exit(0)

    @precondition(lambda self: self.log is not None)
    @invariant()
    def same_observable_state(self) -> None:
        log = self.core
        if self.policy != "do_nothing":
            # Every operation is flushed: the files, read by an independent
            # reader of the format, hold the model's state too.
            assert self.files_state() == self.model.state_json_value()
        assert log.state().to_json_value() == self.model.state_json_value()
        usage = log.resource_usage()
        assert usage.memory_used_bytes == self.model.memory_used_bytes(), f"{usage}, the model's memory figure differs"
        if self.max_memory_bytes is not None:
            assert usage.memory_used_bytes <= self.max_memory_bytes
        if self.max_disk_bytes is not None:
            # Only a call the limit does not bound takes the figure past it.
            self.disk_allowance = min(self.disk_allowance, max(usage.disk_used_bytes, self.max_disk_bytes))
            assert usage.disk_used_bytes <= max(self.max_disk_bytes, self.disk_allowance), usage
        for queue in self.model.queues:
            expected = self.model.last_record(queue)
            got = log.last_record(queue)
            assert (tuple(got) if got is not None else None) == expected
            assert log.last_position(queue) == self.model.last_position(queue)
            assert log.next_position(queue) == self.model.queues[queue].next_position
