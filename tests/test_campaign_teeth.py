"""Evidence that the campaigns, not hand-written examples, find the classes
of issue 8 that hostile directories and crashes expose.

Each case reverts one fix (by patching it out for the duration of the test)
and runs the fuzz campaign's images (or the crash campaign's workloads) from a
fixed seed, one mutation kind or workload shape at a time, until a violation
of the expected kind appears; it must appear within a bounded number of
images. Run with ``-s`` to see how many it took.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import mrecordlog._quarantine as quarantine_module
import mrecordlog._recovery as recovery_module
from mrecordlog._framing import FrameDecoder
from mrecordlog._storage import StorageFile
from mrecordlog._wal import Location, ReadDamage, WalReader, WalWriter
from mrecordlog.log import MultiRecordLog
from mrecordlog.oracle import fuzz
from mrecordlog.oracle.crashcheck import Campaign
from mrecordlog.oracle.workloads import generate_workload
from tests.test_recovery_teeth import _files_read_past_their_length

pytestmark = pytest.mark.hunt

# -- the fixes, reverted ------------------------------------------------------------


def _writer_resumes_after_an_abandoning_header(mp: pytest.MonkeyPatch) -> None:
    """Class 3 as it was: skip resumes after a header whose length runs past its block."""
    mp.setattr(FrameDecoder, "resume_offset", property(lambda self: self.cursor))


def _rolls_past_the_last_file_name(mp: pytest.MonkeyPatch) -> None:
    """Class 4 as it was: nothing stops a roll past wal-18446744073709551615."""
    mp.setattr(WalWriter, "fits", lambda self, num_bytes: True)


def _gc_deletes_files_holding_damage(mp: pytest.MonkeyPatch) -> None:
    """Class 5 as it was: GC deletes a collected file whatever damage it held."""

    def take_out(self: MultiRecordLog, file_number: int) -> None:
        self._damaged_files.clear()
        original(self, file_number)

    original = MultiRecordLog._take_out_collected_file
    mp.setattr(MultiRecordLog, "_take_out_collected_file", take_out)


def _empty_files_passed_over(mp: pytest.MonkeyPatch) -> None:
    """Class 6 as it was: a file with no byte is passed over, silently."""
    original = WalReader._next_file

    def next_file(self: WalReader) -> bytes | None:
        block = original(self)
        while block is not None and self._file is not None and self._file.size() == 0:
            if self._file_index + 1 >= len(self._file_numbers):
                return block  # an empty last file still ends the log
            block = original(self)
        return block

    mp.setattr(WalReader, "_next_file", next_file)


def _strict_scans_only_with_a_known_profile(mp: pytest.MonkeyPatch) -> None:
    """Class 7 as it was: with no valid frame read, strict looks for none after the end."""
    original = recovery_module._valid_frame_after

    def valid_frame_after(*args: Any) -> Location | None:
        profiles = args[4]
        return None if len(profiles) > 1 else original(*args)

    mp.setattr(recovery_module, "_valid_frame_after", valid_frame_after)


def _strict_scans_from_the_torn_records_first_frame(mp: pytest.MonkeyPatch) -> None:
    """Class 8 as it was: strict looks for valid frames after a dropped
    record's first frame, and finds its own Middle frames."""
    mp.setattr(ReadDamage, "found_at", property(lambda self: self.location))


def _discarded_bytes_read_in_one_piece(mp: pytest.MonkeyPatch) -> None:
    """Class 10 as it was: the discarded tail is read (and zeroed) in one piece."""

    def chunks(handle: StorageFile, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        if start < end:
            data = handle.read_at(start, end - start)
            if data.strip(b"\0"):
                yield start, data

    mp.setattr(quarantine_module, "nonzero_chunks", chunks)


def _refusal_at_the_last_file_name_fail_stops(mp: pytest.MonkeyPatch) -> None:
    """Seed 62's first half as it was: any exception of a mutation fail-stops
    the log, the refusal to roll past the last file name included."""

    def mutating(self: MultiRecordLog, action: Callable[[], int | None]) -> int:
        try:
            return action() or 0
        except BaseException as exc:
            self._failure = exc
            raise

    mp.setattr(MultiRecordLog, "_mutating", mutating)


def _fail_stopped_close_returns_as_if_persisted(mp: pytest.MonkeyPatch) -> None:
    """Seed 62's second half as it was: closing a fail-stopped log drops what
    it would have flushed and returns normally."""
    mp.setattr(WalWriter, "unpersisted", lambda self, upto, *, fsync: None)


# -- the campaigns, one kind at a time ------------------------------------------------


@dataclass(frozen=True)
class Hunt:
    plant: Callable[[pytest.MonkeyPatch], None]
    mutation: str  # a fuzz mutation, or "crash:<shape>" for crash campaign workloads
    violation: str  # the violation kind expected
    max_images: int


def _fuzz_until(mutation: str, violation: str | None, max_images: int) -> int | None:
    """Images of one mutation, from seeded base logs, until ``violation``
    (None: any violation) shows; None if it did not within ``max_images``."""
    rng = random.Random(8)
    images = 0
    for workload_seed in range(10_000):
        base, _ = fuzz.build_base(fuzz.fuzz_workload(workload_seed))
        if base is None:
            continue
        if mutation == fuzz.SPARSE:
            image = fuzz.sparse_image(base, rng.getrandbits(32))
        else:
            image = fuzz.mutated_image(base, mutation, rng.getrandbits(32), memory_sample=False)
        if image is None:
            continue
        images += 1
        if any(violation in (None, finding.kind) for finding in fuzz.check_image(image)):
            return images
        if images >= max_images:
            return None
    return None


def _crash_until(shape: str, violation: str, max_images: int) -> int | None:
    """Crash campaign workloads of one shape until a violation of that fault kind."""
    campaign = Campaign(seed=0, budget_seconds=0, kinds=("torn_multiblock", "high_file_numbers"))
    for workload_seed in range(10_000):
        campaign.run_one(generate_workload(workload_seed, shape=shape))
        if any(v.kind == violation for v in campaign.report.violations):
            return campaign.report.images_checked
        if campaign.report.images_checked >= max_images:
            return None
    return None


HUNTS: dict[str, Hunt] = {
    "class 2, fuzz: a file longer than the file size": Hunt(
        _files_read_past_their_length, "extend_zeros", "lost_after_recovery", 40
    ),
    "class 3, fuzz: skip resumes after a huge declared length": Hunt(
        _writer_resumes_after_an_abandoning_header, "huge_length", "lost_after_recovery", 200
    ),
    "class 4, fuzz: a roll past the last file name": Hunt(
        _rolls_past_the_last_file_name, "near_max_file_numbers", "lost_after_recovery", 40
    ),
    "class 5, fuzz: GC deletes a damaged file": Hunt(
        _gc_deletes_files_holding_damage, "random_run", "not_quarantined", 400
    ),
    "class 6, fuzz: an empty file passed over": Hunt(_empty_files_passed_over, "zero_length_file", "not_a_prefix", 200),
    "class 7, fuzz: strict and a zeroed first header": Hunt(
        _strict_scans_only_with_a_known_profile, "zero_frame_header", "strict_accepted_damage", 200
    ),
    "class 8, crash campaign: strict refuses a torn multi-block record": Hunt(
        _strict_scans_from_the_torn_records_first_frame, "crash:multiblock", "process_crash", 3000
    ),
    "seed 62, crash campaign: a refusal at the last file name fail-stops the log": Hunt(
        _refusal_at_the_last_file_name_fail_stops, "crash:high_file_numbers", "behaviour", 3000
    ),
    "seed 62, crash campaign: a fail-stopped close acknowledges what it dropped": Hunt(
        _fail_stopped_close_returns_as_if_persisted, "crash:plain", "io_error", 30000
    ),
    "class 10, fuzz: a sparse byte gigabytes out": Hunt(_discarded_bytes_read_in_one_piece, fuzz.SPARSE, "memory", 2),
}


@pytest.mark.parametrize("hunt", HUNTS.values(), ids=list(HUNTS))
def test_a_campaign_finds_the_class_with_its_fix_reverted(hunt: Hunt) -> None:
    if hunt.mutation == fuzz.SPARSE and not fuzz.can_limit_address_space():
        pytest.skip("the sparse image needs an address-space limit")
    started = time.perf_counter()
    with pytest.MonkeyPatch.context() as mp:
        hunt.plant(mp)
        if hunt.mutation.startswith("crash:"):
            images = _crash_until(hunt.mutation.removeprefix("crash:"), hunt.violation, hunt.max_images)
        else:
            images = _fuzz_until(hunt.mutation, hunt.violation, hunt.max_images)
    seconds = time.perf_counter() - started
    print(f"{hunt.plant.__name__.strip('_')}: {hunt.violation} after {images} image(s), {seconds:.1f} s")
    assert images is not None, f"no {hunt.violation} within {hunt.max_images} images"


@pytest.mark.parametrize("mutation", ["extend_zeros", "huge_length", "zero_length_file", "zero_frame_header"])
def test_the_same_images_show_no_violation_with_the_fixes_in(mutation: str) -> None:
    assert _fuzz_until(mutation, None, 20) is None
