"""A Hypothesis state machine that runs the core and the model side by side.

Every rule performs one operation on both and compares the outcomes (values or
error kinds); the invariant compares the whole observable state after every
step. Files are a few blocks long, so rolling and file GC happen often. A
failure prints the shrunk steps as a replayable program.

``steps`` records the steps of the current run (its length after shrinking is
what ``test_stateful_teeth`` reports).
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mrecordlog import MRecordLogError, MultiRecordLog, PersistAction
from mrecordlog._storage import Storage
from mrecordlog.model import Model, ModelError
from mrecordlog.oracle.strategies import (
    APPEND_POSITIONS,
    TRUNCATE_POSITIONS,
    append_position,
    batches,
    block_filling_size,
    queue_names,
    truncate_position,
)
from mrecordlog.oracle.workloads import POLICIES, policy_of
from tests import spec_reader

BLOCK = 32768

Outcome = tuple[str, Any]


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


class LogVersusModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="mrecordlog-stateful-")
        self.model = Model()
        self.log: MultiRecordLog | None = None
        self.profile = "crc32c"
        self.file_num_bytes = BLOCK
        self.policy = "always_flush"
        self.storage: Storage | None = None  # None: the real file system
        self.steps: list[str] = []

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
            persist_policy=policy_of(self.policy),
            storage=self.storage,
        )

    def wal_files(self) -> dict[str, bytes]:
        """The WAL files as the OS shows them (written, maybe not durable)."""
        return spec_reader.directory_files(self.directory)

    @initialize(
        profile=st.sampled_from(["crc32c", "crc32"]), blocks=st.integers(1, 4), policy=st.sampled_from(POLICIES)
    )
    def open_log(self, profile: str, blocks: int, policy: str) -> None:
        self.profile = profile
        self.file_num_bytes = blocks * BLOCK
        self.policy = policy
        self.steps.append(f"open({profile}, {blocks} blocks, {policy})")
        self.log = self._open(profile)

    @rule(queue=queue_names)
    def create_queue(self, queue: str) -> None:
        self.steps.append("create_queue")
        self._check(
            _core(lambda: self.core.create_queue(queue) and None),
            _model(lambda: self.model.create_queue(queue)),
            "create_queue",
        )

    @rule(queue=queue_names)
    def delete_queue(self, queue: str) -> None:
        self.steps.append("delete_queue")
        self._check(
            _core(lambda: self.core.delete_queue(queue) and None),
            _model(lambda: self.model.delete_queue(queue)),
            "delete_queue",
        )

    @rule(queue=queue_names, kind=st.sampled_from(APPEND_POSITIONS), delta=st.integers(0, 3), batch=batches)
    def append(self, queue: str, kind: str, delta: int, batch: list[bytes]) -> None:
        self.steps.append("append")
        position = append_position(kind, delta, self._next_position(queue))
        self._check(
            _core(lambda: self.core.append_records(queue, batch, position=position).last_position),
            _model(lambda: self.model.append(queue, batch, position)),
            "append",
        )

    @rule(queue=queue_names, left=st.integers(0, 9))
    def append_filling_the_block(self, queue: str, left: int) -> None:
        """One record sized to leave exactly ``left`` bytes in the writer's
        block (the next block's, when it does not fit in this one): the
        padding cases (fewer than 7 left), the zero-length frame (exactly 7)
        and exact block and file ends."""
        self.steps.append("append_filling_the_block")
        size = block_filling_size(queue, self.core._writer.block_offset, left)
        batch = [random.Random(size).randbytes(size)]
        self._check(
            _core(lambda: self.core.append_records(queue, batch).last_position),
            _model(lambda: self.model.append(queue, batch)),
            "append",
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

    @rule(queue=queue_names, start=st.integers(-1, 12), length=st.integers(0, 6))
    def read_range(self, queue: str, start: int, length: int) -> None:
        self.steps.append("range")
        low = None if start < 0 else start
        high = None if start < 0 else start + length
        self._check(
            _core(lambda: [(r.position, r.payload) for r in self.core.range(queue, low, high)]),
            _model(lambda: self.model.range(queue, low, high)),
        )

    @rule(fsync=st.booleans())
    def persist(self, fsync: bool) -> None:
        self.steps.append("persist")
        self.core.persist(PersistAction.FLUSH_AND_FSYNC if fsync else PersistAction.FLUSH)
        self.after_mutation("persist_fsync" if fsync else "persist_flush", succeeded=True)

    @rule(keep_profile=st.booleans())
    def reopen(self, keep_profile: bool) -> None:
        self.steps.append("reopen")
        self.core.close()
        self.after_mutation("close", succeeded=True)
        # The closed log's bytes, read by an independent reader of the format,
        # hold exactly the model's state.
        assert spec_reader.read_state(self.wal_files(), self.profile) == self.model.state_json_value()
        self.log = self._open(self.profile if keep_profile else None)
        # A log without frames has no profile yet: it takes the one asked for.
        self.profile = self.log.checksum_profile.value
        report = self.log.recovery_report
        assert not report.damages, report.describe()

    @precondition(lambda self: self.log is not None)
    @invariant()
    def same_observable_state(self) -> None:
        log = self.core
        if self.policy != "do_nothing":
            # Every operation is flushed: the files, read by an independent
            # reader of the format, hold the model's state too.
            assert spec_reader.read_state(self.wal_files(), self.profile) == self.model.state_json_value()
        assert log.state().to_json_value() == self.model.state_json_value()
        for queue in self.model.queues:
            expected = self.model.last_record(queue)
            got = log.last_record(queue)
            assert (tuple(got) if got is not None else None) == expected
            assert log.last_position(queue) == self.model.last_position(queue)
            assert log.next_position(queue) == self.model.queues[queue].next_position
