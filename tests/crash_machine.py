"""The conformance machine on the simulated disk, with crash rules.

Everything ``LogVersusModel`` does still holds; on top, at any step the machine
may crash: a process crash (everything the OS accepted survives) or a power
loss, Hypothesis choosing for every unsynced operation whether it reached the
disk, was lost, or was torn at a sector (so failures shrink to a few steps and
a few choices). The log is reopened from the crash image (the crashed process
never closes it) and its state must be the model's after a prefix of the
operations containing every acknowledged one; the model then continues from
that prefix.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import rule

from fault_injection import (
    DROP,
    KEEP,
    SimulatedDisk,
    Tear,
    WriteOp,
    power_loss_image,
    process_crash_image,
)
from fault_injection.images import TORN_KINDS, Choice, sectors_touched
from fault_injection.ops import PendingOp
from mrecordlog.oracle.crashcheck import History
from tests.stateful_machine import LogVersusModel


def choice_for(op: PendingOp) -> st.SearchStrategy[Choice]:
    """Keep (the simplest: shrinking goes there), drop, or tear a write."""
    keep_or_drop: st.SearchStrategy[Choice] = st.sampled_from([KEEP, DROP])
    if isinstance(op, WriteOp) and sectors_touched(op) > 1:
        tears: st.SearchStrategy[Choice] = st.builds(
            Tear, st.integers(0, sectors_touched(op) - 1), st.sampled_from(TORN_KINDS), st.integers(0, 255)
        )
        return keep_or_drop | tears
    return keep_or_drop


class CrashingLogVersusModel(LogVersusModel):
    def __init__(self) -> None:
        super().__init__()
        self.disk = SimulatedDisk()
        self.storage = self.disk
        self.directory = "/log"
        self.history = History()
        self.crashes = 0
        self._removals_seen = 0

    def teardown(self) -> None:
        if self.log is not None:
            self.log.close()

    def wal_files(self) -> dict[str, bytes]:
        prefix = self.directory + "/"
        return {
            path[len(prefix) :]: data
            for path, data in self.disk.visible_files(self.directory).items()
            if "/" not in path[len(prefix) :]  # not the quarantine's copies
        }

    def after_mutation(self, mutation: str, *, succeeded: bool) -> None:
        removals = self.disk.calls_by_kind["remove_file"]
        collected, self._removals_seen = removals != self._removals_seen, removals
        if not succeeded:
            return
        if mutation not in ("persist_fsync", "persist_flush", "close"):
            self.history.push(self.model)
        flushes = self.policy != "do_nothing"
        fsyncs = self.policy == "always_fsync"
        if mutation in ("create_queue", "delete_queue", "persist_fsync"):
            self.history.acknowledge(process=True, power=True)
        elif mutation in ("persist_flush", "close"):
            self.history.acknowledge(process=True, power=fsyncs and mutation == "close")
        elif mutation == "truncate" and collected:
            self.history.acknowledge(process=True, power=True)  # the GC pass synced
        else:
            self.history.acknowledge(process=flushes, power=fsyncs)

    @rule(power_loss=st.booleans(), data=st.data())
    def crash(self, power_loss: bool, data: st.DataObject) -> None:
        self.steps.append("crash")
        if power_loss:
            choices = tuple(data.draw(choice_for(op), label=f"op {op.seq}") for op in self.disk.pending())
            image = power_loss_image(self.disk, choices)
        else:
            image = process_crash_image(self.disk)
        allowed = self.history.allowed(power_loss=power_loss)
        self.log = None  # the process died: its log is never closed
        self.disk = image
        self.storage = image
        self._removals_seen = 0
        self.log = self._open(None)
        self.profile = self.log.checksum_profile.value
        recovered = self.log.state().to_canonical_json()
        low = self.history.acked_power if power_loss else self.history.acked_process
        assert recovered in allowed, f"recovered a state outside prefixes {low}..{self.history.issued}: {recovered}"
        self.model, _ = self.history.after(recovered)
        self.history = History(self.model)
        self.crashes += 1
