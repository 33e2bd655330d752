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

import posixpath
import random
import re

from hypothesis import strategies as st
from hypothesis.stateful import rule

from mrecordlog import FileSizeMismatch, UnexpectedEntry
from mrecordlog._storage import EntryKind
from mrecordlog.fault_injection import (
    DROP,
    KEEP,
    SimulatedDisk,
    Tear,
    WriteOp,
    power_loss_image,
    process_crash_image,
)
from mrecordlog.fault_injection.images import TORN_KINDS, Choice, sectors_touched
from mrecordlog.fault_injection.ops import PendingOp
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


BLOCK = 32768
# Stray bytes past a file's length: a few (an odd-length file), up to and past
# a whole block (a file one block longer than its siblings).
STRAY_LENGTHS = (1, 5, 6, 7, 100, BLOCK - 1, BLOCK, BLOCK + 5)
FOREIGN_KINDS: tuple[EntryKind, ...] = ("directory", "symlink", "other")


def _wal_names(image: SimulatedDisk, directory: str) -> list[str]:
    """The WAL files of the log directory (not the quarantine's copies)."""
    return sorted(name for name in image.list_files(directory) if re.fullmatch(r"wal-\d{20}", name))


def _most_common_block_multiple(image: SimulatedDisk, directory: str) -> int | None:
    contents = image.visible_files(directory)
    sizes = [len(contents[posixpath.join(directory, name)]) for name in _wal_names(image, directory)]
    counts = {size: sizes.count(size) for size in sizes if size and size % BLOCK == 0}
    return max(counts, key=lambda size: (counts[size], size)) if counts else None


def _crash_image(disk: SimulatedDisk, power_loss: bool, data: st.DataObject) -> SimulatedDisk:
    if power_loss:
        choices = tuple(data.draw(choice_for(op), label=f"op {op.seq}") for op in disk.pending())
        return power_loss_image(disk, choices)
    return process_crash_image(disk)


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
        self._recover(_crash_image(self.disk, power_loss, data), power_loss=power_loss)

    @rule(
        power_loss=st.booleans(),
        data=st.data(),
        length=st.sampled_from(STRAY_LENGTHS),
        garbage=st.booleans(),
        foreign_quarantine=st.sampled_from((None, *FOREIGN_KINDS)),
    )
    def crash_with_stray_bytes(
        self, power_loss: bool, data: st.DataObject, length: int, garbage: bool, foreign_quarantine: EntryKind | None
    ) -> None:
        """A crash, then a hand that lengthens a WAL file past the log's file
        size (zeros or garbage) and may put an entry of another kind where the
        next quarantine folder goes. Neither touches the log's data: recovery
        must give an allowed prefix as after the crash alone, and the log must
        go on (roll past the lengthened file, reopen) without losing anything."""
        self.steps.append("crash_with_stray_bytes")
        image = _crash_image(self.disk, power_loss, data)
        files = [posixpath.join(self.directory, name) for name in _wal_names(image, self.directory)]
        path = data.draw(st.sampled_from(files), label="lengthened file")
        content = image.visible_files(self.directory)[path]
        stray = random.Random(length).randbytes(length) if garbage else bytes(length)
        image.tamper_set_content(path, content + stray)
        if foreign_quarantine is not None:
            quarantine = posixpath.join(self.directory, "quarantine")
            if not image.is_dir(quarantine):
                image.make_dirs(quarantine)
            taken = image.list_entries(quarantine)
            numbers = [int(name[9:]) for name in taken if name[9:].isdigit()]
            entry = posixpath.join(quarantine, f"recovery-{max(numbers, default=0) + 1}")
            image.tamper_add_entry(entry, foreign_quarantine)
        if garbage and _most_common_block_multiple(image, self.directory) not in (None, self.file_num_bytes):
            # Garbage that makes another size the most common one: as likely a
            # log made with that size as stray bytes. Refused, nothing changed.
            self.storage = image
            try:
                self._open(None).close()
            except FileSizeMismatch:
                pass
            else:
                raise AssertionError("open accepted garbage that makes another file size the most common one")
            image.tamper_set_content(path, content)
        self._recover(image, power_loss=power_loss)

    @rule(power_loss=st.booleans(), data=st.data(), kind=st.sampled_from(FOREIGN_KINDS))
    def crash_with_an_entry_under_the_next_wal_name(
        self, power_loss: bool, data: st.DataObject, kind: EntryKind
    ) -> None:
        """An entry of another kind named like the file the writer would
        create next: open must refuse it up front, naming it, and change
        nothing; once it is moved away, the log recovers as usual."""
        self.steps.append("crash_with_an_entry_under_the_next_wal_name")
        image = _crash_image(self.disk, power_loss, data)
        numbers = [int(name[4:]) for name in _wal_names(image, self.directory)]
        entry = posixpath.join(self.directory, f"wal-{max(numbers) + 1:020d}")
        image.tamper_add_entry(entry, kind)
        before = (image.visible_files(), image.foreign_entries(), image.directories())
        self.log = None  # the process died: its log is never closed
        self.storage = image
        try:
            self._open(None).close()
        except UnexpectedEntry as refused:
            refused_path = refused.path
        else:
            raise AssertionError(f"open accepted a {kind} named like the next WAL file")
        assert refused_path == entry
        assert (image.visible_files(), image.foreign_entries(), image.directories()) == before
        image.tamper_remove(entry)
        self._recover(image, power_loss=power_loss)

    def _recover(self, image: SimulatedDisk, *, power_loss: bool) -> None:
        allowed = self.history.allowed(power_loss=power_loss)
        self.log = None  # the process died: its log is never closed
        self.disk = image
        self.storage = image
        self._removals_seen = 0
        self.log = self._open(None)
        # Recovery may start a new file: an open is not bounded by the limit.
        self._allow_disk_figure()
        self.profile = self.log.checksum_profile.value
        recovered = self.log.state().to_canonical_json()
        low = self.history.acked_power if power_loss else self.history.acked_process
        assert recovered in allowed, f"recovered a state outside prefixes {low}..{self.history.issued}: {recovered}"
        self.model, _ = self.history.after(recovered)
        self.history = History(self.model)
        self.crashes += 1
