"""Evidence that the crash machine finds the hostile-state classes of issue 8.

Each case reverts one fix (by patching it out for the duration of the test)
and checks that the crash state machine, which lengthens files and puts
entries of other kinds under the log's names at random, finds the bug from
scratch (the ``teeth`` profile) and shrinks it to a few steps. Run with ``-s``
to see the shrunk length and the time each took.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest

import mrecordlog._quarantine as quarantine_module
import mrecordlog.log as log_module
from mrecordlog._storage import EntryKind, OsFile, Storage
from mrecordlog._wal import WalReader, parse_wal_file_name
from mrecordlog.fault_injection import SimulatedFile
from tests.crash_machine import CrashingLogVersusModel
from tests.test_stateful_teeth import run_until_found

pytestmark = pytest.mark.hunt

MAX_SHRUNK_STEPS = 12
BLOCK = 32768


def _files_read_past_their_length(mp: pytest.MonkeyPatch) -> None:
    """Class 2 as it was: the reader reads whatever a file holds (a partial
    last block as zeros), and recovery never cuts a file back to its length
    (truncate serves nothing else)."""

    def read_block(self: WalReader, block_index: int) -> bytes | None:
        assert self._file is not None
        data = self._file.read_at(block_index * BLOCK, BLOCK)
        if not data:
            return None
        return data + bytes(BLOCK - len(data))

    def no_truncate(self: object, size: int) -> None:
        pass

    mp.setattr(WalReader, "_read_block", read_block)
    mp.setattr(SimulatedFile, "truncate", no_truncate)
    mp.setattr(OsFile, "truncate", no_truncate)


def _entries_of_other_kinds_ignored(mp: pytest.MonkeyPatch) -> None:
    """Class 11 as it was: only regular files are looked at."""

    def wal_files_of(directory: str, entries: dict[str, EntryKind]) -> list[int]:
        numbers = (parse_wal_file_name(name) for name, kind in entries.items() if kind == "file")
        return sorted(number for number in numbers if number is not None)

    mp.setattr(log_module, "wal_files_of", wal_files_of)


def _first_quarantine_folder_not_a_directory(mp: pytest.MonkeyPatch) -> None:
    """Class 11, the quarantine side, as it was: the first recovery-N that is
    not a directory, whatever else it may be."""

    def next_dir(storage: Storage, directory: str) -> str:
        number = 1
        while storage.is_dir(os.path.join(directory, "quarantine", f"recovery-{number}")):
            number += 1
        return os.path.join(directory, "quarantine", f"recovery-{number}")

    mp.setattr(quarantine_module, "_next_quarantine_dir", next_dir)


BUGS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "files read past their length (class 2)": _files_read_past_their_length,
    "entries of other kinds under WAL names ignored (class 11)": _entries_of_other_kinds_ignored,
    "quarantine folder taken by another kind of entry (class 11)": _first_quarantine_folder_not_a_directory,
}


@pytest.mark.parametrize("plant", BUGS.values(), ids=list(BUGS))
def test_the_crash_machine_finds_a_reverted_hostile_state_fix(plant: Callable[[pytest.MonkeyPatch], None]) -> None:
    started = time.perf_counter()
    with pytest.MonkeyPatch.context() as mp:
        plant(mp)
        found = run_until_found(CrashingLogVersusModel)
    seconds = time.perf_counter() - started
    print(
        f"reverted fix {plant.__name__.strip('_')!r}: found after {found.examples} example(s), "
        f"shrunk to {found.steps} steps, in {seconds:.1f} s"
    )
    assert found.steps <= MAX_SHRUNK_STEPS
