"""Crash images: the disks a crash could leave behind, and how to choose them.

A crash image is a new ``SimulatedDisk`` whose whole state is durable, as
after a reboot. A power loss keeps the durable state plus any subset of the
pending operations (the page cache writes back in any order), and may tear a
write at a sector boundary; a process crash keeps everything the OS accepted.
This module owns those rules, the enumeration and random sampling of choices,
and ``materialize``, which copies a disk onto the real file system.
"""

from __future__ import annotations

import itertools
import os
import posixpath
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from .disk import ROOT, SimulatedDisk, apply_directory_op, normalize
from .ops import PendingOp, ResizeOp, WriteOp, apply_data_op, write_into

SECTOR_NUM_BYTES: Final = 512
TORN_KINDS: Final[tuple[Literal["old", "new", "garbage"], ...]] = ("old", "new", "garbage")


@dataclass(frozen=True, slots=True)
class Keep:
    """The pending operation reached the disk."""


@dataclass(frozen=True, slots=True)
class Drop:
    """The pending operation never reached the disk."""


@dataclass(frozen=True, slots=True)
class Tear:
    """A write that reached the disk in part (``WriteOp`` only).

    Of the sectors the write touches (sectors are 512 bytes at absolute file
    offsets), the first ``kept_sectors`` hold the new bytes, the next one is
    torn (its share of the write holds the ``old`` bytes, the ``new`` ones, or
    ``garbage`` from ``random.Random(seed)``) and the rest keep the old bytes.
    ``kept_sectors`` must be less than the number of sectors touched.
    """

    kept_sectors: int
    torn: Literal["old", "new", "garbage"]
    seed: int


Choice = Keep | Drop | Tear
CrashChoices = tuple[Choice, ...]
KEEP: Final = Keep()
DROP: Final = Drop()


def sectors_touched(op: WriteOp) -> int:
    """How many 512-byte sectors the write covers, even in part."""
    if not op.data:
        return 0
    end = op.offset + len(op.data)
    return (end - 1) // SECTOR_NUM_BYTES - op.offset // SECTOR_NUM_BYTES + 1


def torn_pieces(op: WriteOp, tear: Tear) -> list[tuple[int, bytes]]:
    """The (offset, bytes) pieces of ``op`` that a ``tear`` writes."""
    if not 0 <= tear.kept_sectors < sectors_touched(op):
        raise ValueError(f"{tear} does not fit {op!r} ({sectors_touched(op)} sector(s))")
    end = op.offset + len(op.data)
    torn_start = max(op.offset, (op.offset // SECTOR_NUM_BYTES + tear.kept_sectors) * SECTOR_NUM_BYTES)
    torn_end = min(end, (torn_start // SECTOR_NUM_BYTES + 1) * SECTOR_NUM_BYTES)
    pieces: list[tuple[int, bytes]] = []
    if torn_start > op.offset:
        pieces.append((op.offset, op.data[: torn_start - op.offset]))
    if tear.torn == "new":
        pieces.append((torn_start, op.data[torn_start - op.offset : torn_end - op.offset]))
    elif tear.torn == "garbage":
        pieces.append((torn_start, random.Random(tear.seed).randbytes(torn_end - torn_start)))
    return pieces


def _apply_kept(content: bytearray, op: WriteOp | ResizeOp, choice: Keep | Tear) -> None:
    if isinstance(choice, Keep):
        apply_data_op(content, op)
        return
    if not isinstance(op, WriteOp):
        raise ValueError(f"only a write can tear, not {op!r}")
    for offset, data in torn_pieces(op, choice):
        write_into(content, offset, data)


def power_loss_image(disk: SimulatedDisk, choices: Sequence[Choice]) -> SimulatedDisk:
    """The disk after a power loss that kept, dropped or tore each pending
    operation as ``choices`` (one per ``disk.pending()`` entry) says.

    Any subset may be kept, in any combination ("any order"): a later op may
    survive an earlier one. Kept ops apply in issue order on top of the
    durable state. Writes whose pages a failed fsync dropped are gone. Files
    that no surviving entry names are not carried over (nothing can see them).
    """
    pending = disk.pending()
    if len(choices) != len(pending):
        raise ValueError(f"{len(choices)} choice(s) for {len(pending)} pending operation(s)")
    entries = disk._directory_entries(durable=True)
    data_ops: dict[int, list[tuple[WriteOp | ResizeOp, Keep | Tear]]] = {}
    for op, choice in zip(pending, choices, strict=True):
        if isinstance(choice, Drop):
            continue
        if isinstance(op, WriteOp | ResizeOp):
            data_ops.setdefault(op.inode, []).append((op, choice))
        elif isinstance(choice, Tear):
            raise ValueError(f"only a write can tear, not {op!r}")
        else:
            apply_directory_op(entries, op)
    contents: dict[int, bytes | bytearray] = {}
    for inode in _linked(entries):
        durable = disk._inode(inode).durable
        kept = data_ops.get(inode)
        if kept is None:
            contents[inode] = durable  # never changed in place: the image shares it
            continue
        content = bytearray(durable)
        for op, choice in kept:
            _apply_kept(content, op, choice)
        contents[inode] = content
    return SimulatedDisk.restored(entries, contents, next_inode=disk._inode_high_water, foreign=disk._foreign)


def process_crash_image(disk: SimulatedDisk) -> SimulatedDisk:
    """The disk after the process died: everything the OS accepted survives,
    including pages a failed fsync dropped (they are still in the cache)."""
    entries = disk._directory_entries(durable=False)
    contents = {inode: disk._inode(inode).visible_snapshot() for inode in _linked(entries)}
    return SimulatedDisk.restored(entries, contents, next_inode=disk._inode_high_water, foreign=disk._foreign)


def durable_image(disk: SimulatedDisk) -> SimulatedDisk:
    """The disk after a power loss that lost every pending operation."""
    return power_loss_image(disk, (DROP,) * len(disk.pending()))


def _linked(entries: dict[str, dict[str, int]]) -> set[int]:
    return {inode for names in entries.values() for inode in names.values()}


# -- choosing crash images ------------------------------------------------------


def _tears(op: PendingOp, seed: int) -> list[Choice]:
    """A few tears of a multi-sector write: the first sector torn, or the last.

    Of the six combinations of kept_sectors in {0, last} and torn in {old,
    new, garbage}, two equal Drop (nothing kept, first sector old) and Keep
    (all but the last kept, last new); they are left out.
    """
    if not isinstance(op, WriteOp) or sectors_touched(op) < 2:
        return []
    last = sectors_touched(op) - 1
    return [
        Tear(kept, torn, seed)
        for kept in (0, last)
        for torn in TORN_KINDS
        if (kept, torn) not in ((0, "old"), (last, "new"))
    ]


def enumerate_choices(pending: Sequence[PendingOp], *, max_images: int, tear_variants: bool) -> Iterator[CrashChoices]:
    """Distinct choices for ``pending``, at most ``max_images`` of them, in a
    deterministic order: all kept, all dropped, then every prefix kept with
    the rest dropped (the crashes an in-order disk would have), then the
    remaining combinations of Keep/Drop (and, with ``tear_variants``, the
    tears of ``_tears``) in ``itertools.product`` order."""
    count = len(pending)
    options: list[list[Choice]] = [[KEEP, DROP, *(_tears(op, op.seq) if tear_variants else [])] for op in pending]
    candidates: Iterator[CrashChoices] = itertools.chain(
        [(KEEP,) * count, (DROP,) * count],
        ((KEEP,) * kept + (DROP,) * (count - kept) for kept in range(1, count)),
        itertools.product(*options),
    )
    seen: set[CrashChoices] = set()
    for candidate in candidates:
        if len(seen) >= max_images:
            return
        if candidate not in seen:
            seen.add(candidate)
            yield candidate


def random_choices(
    pending: Sequence[PendingOp],
    rng: random.Random,
    *,
    tear_probability: float,
    keep_probability: float = 0.5,
) -> CrashChoices:
    """One random choice per pending op: a write tears with
    ``tear_probability`` (at a random sector, with a random torn kind and
    seed); otherwise an op is kept with ``keep_probability``, else dropped."""
    choices: list[Choice] = []
    for op in pending:
        sectors = sectors_touched(op) if isinstance(op, WriteOp) else 0
        if sectors and rng.random() < tear_probability:
            choices.append(Tear(rng.randrange(sectors), rng.choice(TORN_KINDS), rng.getrandbits(32)))
        else:
            choices.append(KEEP if rng.random() < keep_probability else DROP)
    return tuple(choices)


# -- onto the real file system ------------------------------------------------------


def materialize(disk: SimulatedDisk, destination: str | os.PathLike[str], *, root: str = ROOT) -> None:
    """Write the disk's visible directories and files under ``root`` into the
    real directory ``destination`` (created if needed; files it already holds
    with the same names are overwritten), so ``OsStorage`` can open them.
    Foreign entries become dangling symlinks and fifos."""
    root = normalize(root)
    base = Path(destination)
    for directory in disk.directories(root):
        (base / posixpath.relpath(directory, root)).mkdir(parents=True, exist_ok=True)
    for path, content in disk.visible_files(root).items():
        (base / posixpath.relpath(path, root)).write_bytes(content)
    for path, kind in disk.foreign_entries(root).items():
        target = base / posixpath.relpath(path, root)
        if kind == "symlink":
            target.symlink_to("dangling-target-of-a-foreign-entry")
        else:
            os.mkfifo(target)
