"""A test double of Quickwit's Rust mrecordlog 0.5 behind the adapter protocol.

Run as ``python tests/mrecordlog05_adapter.py [--without BEHAVIOUR]...``; it
serves the adapter protocol of ``spec/CONFORMANCE.md`` on stdin/stdout like
``python -m mrecordlog.adapter``. In-process, ``emulation_session(without=())``
builds the same session.

It is the reference core (recovery ``skip``, the ``crc32`` profile, files a
multiple of 32 KiB) with mrecordlog 0.5's three documented deviations and
without the reference's stale-tail cleanup. The behaviours, each behind the
function of the same name and each left out by ``--without NAME``:

- ``position_wrap``: positions wrap at 2^64 as Rust's wrapping add does:
  ``truncate(q, p)`` makes the next position ``max(next, (p + 1) mod 2^64)``
  instead of capping ``p + 1`` at 2^64 - 1 (live and in replay, so a reopen
  gives the same value). Only truncation is emulated: appends keep the
  reference's position checks.
- ``gc_record_order``: the position records a GC pass writes (one per empty
  queue) come in "hash-map order", emulated deterministically as the order of
  ``zlib.crc32(name)`` (then name); the reference writes them by name. This
  covers every GC pass: truncate, delete_queue and open.
- ``short_files``: before an existing directory is opened, a lowest-numbered
  ``wal-*`` file of 0 bytes makes ``open`` fail with ``IoError`` (0.5's open
  fails there); otherwise the incomplete last block of every file whose size
  is not a multiple of 32768 is ignored: its bytes are overwritten with zeros
  in place (file sizes are unchanged).
- ``stale_tail``: no stale-tail cleanup: a writable open resumes after the
  last valid frame but leaves whatever follows on disk (no zeroing, no
  quarantine, no removal of later files, no resizing of files).

The patches of the core are installed around each request the session
handles and removed afterwards, so the reference can run unpatched in the
same process (the tests compare the two).

The ``hello`` answer announces ``"checksums": ["crc32"]``, ``"recovery":
"skip"`` and ``"file_num_bytes": {"multiple_of": 32768}``; ``open`` with
``"checksum": "crc32c"`` answers ``Unsupported``, and a ``file_num_bytes``
that is not a positive multiple of 32768 ``InvalidArgument``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import stat
import sys
import zlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final

import mrecordlog.log as log_module
from mrecordlog._codec import BLOCK_NUM_BYTES
from mrecordlog._queues import Queues, TruncatePlan
from mrecordlog._recovery import RecoveryReport
from mrecordlog._storage import Storage
from mrecordlog._wal import Location, parse_wal_file_name, wal_file_name
from mrecordlog.adapter import ReferenceLog, serve
from mrecordlog.errors import InvalidArgument
from mrecordlog.log import MultiRecordLog
from mrecordlog.oracle.protocol import LOG_OPS, ProtocolSession

NAME: Final = "mrecordlog-0.5-emulation"
VERSION: Final = "0.5.0"
RECOVERY: Final = "skip"
CHECKSUM: Final = "crc32"
BEHAVIOURS: Final = ("position_wrap", "gc_record_order", "short_files", "stale_tail")
_U64_MODULUS: Final = 2**64


class Unsupported(Exception):
    """A request 0.5 has no counterpart for (the CRC-32C profile)."""

    kind = "Unsupported"


class OpenFailed(Exception):
    """0.5's open fails on this directory (an empty first file)."""

    kind = "IoError"


class _Patches:
    """Attributes replaced for the duration of one request, then restored."""

    def __init__(self) -> None:
        self._saved: list[tuple[object, str, object]] = []

    def set(self, target: object, name: str, value: object) -> None:
        self._saved.append((target, name, getattr(target, name)))
        setattr(target, name, value)

    def restore(self) -> None:
        while self._saved:
            target, name, value = self._saved.pop()
            setattr(target, name, value)


# -- the behaviours -------------------------------------------------------------


def position_wrap(patches: _Patches) -> None:
    """``truncate(q, p)``: next position ``max(next, (p + 1) mod 2^64)``.

    ``Queues.plan_truncate`` serves both a live truncate and the replay of a
    truncate record, so a reopen gives the same wrapped value."""
    original = Queues.plan_truncate

    def plan_truncate(self: Queues, queue: str, position: int) -> TruncatePlan:
        plan = original(self, queue, position)
        wrapped = max(self.next_position(queue), (position + 1) % _U64_MODULUS)
        if plan.new_next_position == wrapped:
            return plan
        return dataclasses.replace(plan, new_next_position=wrapped)

    patches.set(Queues, "plan_truncate", plan_truncate)


def hash_order(empty_queues: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """(name, next position) pairs in the emulated hash-map order."""
    return sorted(empty_queues, key=lambda entry: (zlib.crc32(entry[0].encode()), entry[0]))


def gc_record_order(patches: _Patches) -> None:
    """A GC pass writes its position records in hash order (``hash_order``).

    Every GC pass (truncate, delete_queue, open) goes through
    ``MultiRecordLog._collect_garbage``, which writes one record per pair that
    ``empty_after()`` lists, in that order: reordering them is enough."""
    original = MultiRecordLog._collect_garbage

    def collect_garbage(
        self: MultiRecordLog, live_after: Mapping[int, int], empty_after: Callable[[], Sequence[tuple[str, int]]]
    ) -> int:
        return original(self, live_after, lambda: hash_order(empty_after()))

    patches.set(MultiRecordLog, "_collect_garbage", collect_garbage)


def short_files(directory: str) -> None:
    """Before an existing directory is opened: an empty lowest-numbered WAL
    file raises ``OpenFailed`` (``IoError``); otherwise the bytes of every
    file's incomplete last block are zeroed in place."""
    if not os.path.isdir(directory):
        return
    # Regular files only: the reference refuses anything else under a WAL name.
    numbers = sorted(
        number
        for number, name in ((parse_wal_file_name(name), name) for name in os.listdir(directory))
        if number is not None and stat.S_ISREG(os.lstat(os.path.join(directory, name)).st_mode)
    )
    if not numbers:
        return
    paths = [os.path.join(directory, wal_file_name(number)) for number in numbers]
    if os.path.getsize(paths[0]) == 0:
        raise OpenFailed(f"mrecordlog 0.5 cannot open a log whose first file is empty: {paths[0]}")
    for path in paths:
        size = os.path.getsize(path)
        if size % BLOCK_NUM_BYTES == 0:
            continue
        start = size - size % BLOCK_NUM_BYTES
        with open(path, "r+b") as handle:
            handle.seek(start)
            handle.write(bytes(size - start))


def stale_tail(patches: _Patches) -> None:
    """A writable open keeps the files up to the resume point in the log and
    touches nothing on disk: what follows the resume point stays there."""

    def discard_after(
        storage: Storage,
        directory: str,
        file_numbers: list[int],
        resume: Location,
        report: RecoveryReport,
        file_num_bytes: int,
    ) -> tuple[list[int], RecoveryReport]:
        return [n for n in file_numbers if n <= resume.file_number], report

    patches.set(log_module, "discard_after", discard_after)


_CORE_PATCHES: Final[dict[str, Callable[[_Patches], None]]] = {
    "position_wrap": position_wrap,
    "gc_record_order": gc_record_order,
    "stale_tail": stale_tail,
}


# -- the session ----------------------------------------------------------------


def _check_without(without: Collection[str]) -> frozenset[str]:
    unknown = set(without) - set(BEHAVIOURS)
    if unknown:
        raise ValueError(f"unknown behaviour(s) {sorted(unknown)} (expected some of {', '.join(BEHAVIOURS)})")
    return frozenset(without)


def emulation_factory(without: Collection[str] = ()) -> Callable[[str, int | None, str | None], ReferenceLog]:
    """The ``LogFactory`` of the emulation (the core patches must be in place
    while the log it returns is used: ``EmulationSession`` does that)."""
    left_out = _check_without(without)

    def open_log(directory: str, file_num_bytes: int | None, checksum: str | None) -> ReferenceLog:
        if checksum == "crc32c":
            raise Unsupported("mrecordlog 0.5 writes CRC-32 frames only")
        if file_num_bytes is not None and (
            isinstance(file_num_bytes, bool)
            or not isinstance(file_num_bytes, int)
            or file_num_bytes <= 0
            or file_num_bytes % BLOCK_NUM_BYTES
        ):
            raise InvalidArgument(
                f"file_num_bytes must be a positive multiple of {BLOCK_NUM_BYTES}, got {file_num_bytes!r}",
                argument="file_num_bytes",
            )
        if "short_files" not in left_out:
            short_files(directory)
        return ReferenceLog(
            MultiRecordLog.open(
                directory, file_num_bytes=file_num_bytes, checksum=checksum or CHECKSUM, recovery=RECOVERY
            )
        )

    return open_log


class EmulationSession(ProtocolSession):
    """The protocol session of the emulation: the core patches are in place
    while each request is handled, and ``hello`` announces the file sizes."""

    def __init__(self, without: Collection[str] = ()) -> None:
        self.without = _check_without(without)
        super().__init__(
            emulation_factory(self.without),
            name=NAME,
            version=VERSION,
            recovery=RECOVERY,
            checksums=(CHECKSUM,),
            ops=LOG_OPS,
        )

    @contextmanager
    def patched(self) -> Iterator[None]:
        patches = _Patches()
        try:
            for name, install in _CORE_PATCHES.items():
                if name not in self.without:
                    install(patches)
            yield
        finally:
            patches.restore()

    def handle(self, request: Any) -> dict[str, Any]:
        with self.patched():
            answer = super().handle(request)
        if isinstance(request, dict) and request.get("op") == "hello":
            answer["file_num_bytes"] = {"multiple_of": BLOCK_NUM_BYTES}
        return answer


def emulation_session(without: Collection[str] = ()) -> EmulationSession:
    return EmulationSession(without)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tests/mrecordlog05_adapter.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--without", action="append", choices=BEHAVIOURS, default=[], help="leave this behaviour out (repeatable)"
    )
    args = parser.parse_args(argv)
    serve(emulation_session(args.without), sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
