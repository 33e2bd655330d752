"""Hostile mutations of a log directory: the reader fuzz campaign's catalogue.

A crash leaves states the writer's protocol allows for; this module makes the
ones it does not: bit rot, runs of zeros, 0xFF or garbage, files cut short or
grown, blocks swapped or duplicated, empty, odd-sized and missing files,
entries that are not regular files under WAL names, a quarantine folder that
is in the way, impossible frame lengths, and file numbers at the end of their
range. ``plant_sparse_byte`` does one more on the real file system only: a
stray byte gigabytes past a file's data, in a sparse file.

Each mutation is a small function ``(image, directory, rng) -> Mutated | None``
that changes a ``SimulatedDisk`` image in place through its ``tamper_*``
primitives (a hostile state is durable at once, it is not a crash), choosing
everything with the seeded ``rng``; it returns what it did, or None when the
image holds nothing it could change (for instance a single block to swap).
``MUTATIONS`` maps each name to its function, so a campaign samples by name;
``mutate`` runs one by name and seed on a copy of an image, deterministically.

The module knows the format only as far as it must to aim (32 KiB blocks,
7-byte frame headers, ``wal-`` + 20 digits, from spec/FORMAT.md). It does not
import the core's reader: it must not share the blind spots of what it tests.
"""

from __future__ import annotations

import os
import posixpath
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from mrecordlog._storage import EntryKind

from .disk import SimulatedDisk, normalize
from .images import process_crash_image

BLOCK: Final = 32768
HEADER: Final = 7
MAX_FILE_NUMBER: Final = 2**64 - 1
QUARANTINE: Final = "quarantine"
_WAL_NAME: Final = re.compile(r"wal-(\d{20})")
_FOREIGN_KINDS: Final[tuple[EntryKind, ...]] = ("directory", "symlink", "other")


def wal_name(number: int) -> str:
    return f"wal-{number:020d}"


@dataclass(frozen=True, slots=True)
class Mutated:
    """What a mutation did.

    ``origins`` covers the WAL files whose content did not come from the file
    of the same name (``near_max_file_numbers`` renames them all): mutated
    name -> the original name, or None for a file that did not exist before.
    Every other WAL file holds (a damaged version of) its own original.
    """

    name: str
    description: str
    origins: Mapping[str, str | None] = field(default_factory=dict)

    def origin(self, wal: str) -> str | None:
        return self.origins.get(wal, wal)


MutationFunction = Callable[[SimulatedDisk, str, random.Random], Mutated | None]


# -- looking at an image -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Wal:
    number: int
    path: str
    data: bytes

    @property
    def name(self) -> str:
        return wal_name(self.number)

    @property
    def data_end(self) -> int:
        """One past the last non-zero byte."""
        return len(self.data.rstrip(b"\0"))


def _wal_files(image: SimulatedDisk, directory: str) -> list[_Wal]:
    """The regular WAL files directly in ``directory``, by number."""
    directory = normalize(directory)
    found = []
    for path, data in image.visible_files(directory).items():
        parent, name = posixpath.split(path)
        match = _WAL_NAME.fullmatch(name)
        if parent == directory and match is not None and int(match.group(1)) <= MAX_FILE_NUMBER:
            found.append(_Wal(int(match.group(1)), path, data))
    return sorted(found, key=lambda wal: wal.number)


def frame_headers(data: bytes) -> list[int]:
    """Offsets of the frame headers of a file, following each block's chain
    from its start until a header that cannot be a frame (all zero, a type
    outside 1..4, a length past the block)."""
    headers = []
    for block_start in range(0, len(data), BLOCK):
        cursor = 0
        while BLOCK - cursor >= HEADER and block_start + cursor + HEADER <= len(data):
            at = block_start + cursor
            header = data[at : at + HEADER]
            length = header[4] | header[5] << 8
            if header == bytes(HEADER) or not 1 <= header[6] <= 4 or cursor + HEADER + length > BLOCK:
                break
            headers.append(at)
            cursor += HEADER + length
    return headers


def _pick_file(rng: random.Random, files: list[_Wal], *, with_data: bool = False) -> _Wal | None:
    candidates = [wal for wal in files if wal.data_end] if with_data else files
    return rng.choice(candidates) if candidates else None


def _pick_position(rng: random.Random, files: list[_Wal]) -> tuple[str, _Wal]:
    """The first, a middle or the last file (a middle one only if there are three)."""
    places = ["first", "last"] + (["middle"] if len(files) >= 3 else [])
    place = rng.choice(places)
    if place == "first":
        return place, files[0]
    if place == "last":
        return place, files[-1]
    return place, files[rng.randrange(1, len(files) - 1)]


def _pick_offset(rng: random.Random, wal: _Wal) -> int:
    """An offset in the file, aimed at the places a reader decides things:
    frame headers, block boundaries, the end of the data, or anywhere."""
    size = len(wal.data)
    if size == 0:
        return 0
    aim = rng.randrange(5)
    if aim == 0:
        offset = rng.randrange(size)
    elif aim == 1 and wal.data_end:
        offset = rng.randrange(wal.data_end)
    elif aim == 2 and (headers := frame_headers(wal.data)):
        offset = rng.choice(headers) + rng.randrange(HEADER)
    elif aim == 3:
        offset = rng.randrange(0, size, BLOCK) + rng.randint(-8, 8)
    else:
        offset = wal.data_end + rng.randint(-8, 8)
    return min(max(offset, 0), size - 1)


def _pick_run_length(rng: random.Random, offset: int) -> int:
    return rng.choice(
        (1, 2, HEADER, rng.randint(1, 64), rng.randint(1, BLOCK), BLOCK - offset % BLOCK + rng.randint(1, 16))
    )


def _replace(data: bytes, offset: int, piece: bytes) -> bytes:
    """``data`` with ``piece`` written over it at ``offset``, clipped to its size."""
    piece = piece[: max(len(data) - offset, 0)]
    return data[:offset] + piece + data[offset + len(piece) :]


# -- byte damage ---------------------------------------------------------------------


def bit_flip(image: SimulatedDisk, directory: str, rng: random.Random) -> Mutated | None:
    """Flip one bit, mostly inside the data."""
    wal = _pick_file(rng, _wal_files(image, directory), with_data=True)
    if wal is None:
        return None
    offset = min(_pick_offset(rng, wal), wal.data_end - 1) if rng.random() < 0.8 else _pick_offset(rng, wal)
    bit = rng.randrange(8)
    image.flip_bit(wal.path, offset, bit)
    return Mutated("bit_flip", f"flipped bit {bit} of {wal.name} at offset {offset}")


def _run(name: str, fill: Callable[[random.Random, int], bytes]) -> MutationFunction:
    def mutation(image: SimulatedDisk, directory: str, rng: random.Random) -> Mutated | None:
        wal = _pick_file(rng, [w for w in _wal_files(image, directory) if w.data])
        if wal is None:
            return None
        offset = _pick_offset(rng, wal)
        length = min(_pick_run_length(rng, offset), len(wal.data) - offset)
        image.tamper_set_content(wal.path, _replace(wal.data, offset, fill(rng, length)))
        return Mutated(name, f"{name.replace('_', ' ')} of {length} byte(s) in {wal.name} at offset {offset}")

    mutation.__name__ = name
    mutation.__doc__ = f"A run of {name.split('_', maxsplit=1)[0]} bytes at any offset, of any length."
    return mutation


zero_run = _run("zero_run", lambda rng, n: bytes(n))
ff_run = _run("ff_run", lambda rng, n: b"\xff" * n)
random_run = _run("random_run", lambda rng, n: rng.randbytes(n))


def zero_frame_header(image: SimulatedDisk, directory: str, rng: random.Random) -> Mutated | None:
    """Zero a frame header (often the log's first): an end-of-log marker
    before frames that are still valid, as a lost write of one sector leaves."""
    files = [wal for wal in _wal_files(image, directory) if frame_headers(wal.data)]
    if not files:
        return None
    wal = files[0] if rng.random() < 0.3 else rng.choice(files)
    headers = frame_headers(wal.data)
    offset = headers[0] if rng.random() < 0.4 else rng.choice(headers)
    image.tamper_set_content(wal.path, _replace(wal.data, offset, bytes(HEADER)))
    return Mutated("zero_frame_header", f"zeroed the frame header of {wal.name} at offset {offset}")


def huge_length(image: SimulatedDisk, directory: str, rng: random.Random) -> Mutated | None:
    """Declare an impossible frame length: 0xFFFF, a length running past the
    block, or one in the last block of the last file running past its end."""
    files = [wal for wal in _wal_files(image, directory) if frame_headers(wal.data)]
    if not files:
        return None
    variant = rng.choice(("0xffff", "past_block", "past_last_block"))
    if variant == "past_last_block":
        wal = files[-1]
        last_block = (wal.data_end - 1) // BLOCK * BLOCK if wal.data_end else 0
        headers = [h for h in frame_headers(wal.data) if h >= last_block] or frame_headers(wal.data)
    else:
        wal = rng.choice(files)
        headers = frame_headers(wal.data)
    offset = rng.choice(headers)
    cursor = offset % BLOCK
    length = 0xFFFF if variant == "0xffff" else min(BLOCK - cursor - HEADER + rng.randint(1, 64), 0xFFFF)
    image.tamper_set_content(wal.path, _replace(wal.data, offset + 4, length.to_bytes(2, "little")))
    return Mutated("huge_length", f"declared length {length} ({variant}) in the frame of {wal.name} at {offset}")


# -- file sizes ----------------------------------------------------------------------


def truncate_file(image: SimulatedDisk, directory: str, rng: random.Random) -> Mutated | None:
    """Cut a WAL file at any offset (a block boundary, inside a frame, ...)."""
    wal = _pick_file(rng, [w for w in _wal_files(image, directory) if w.data])
    if wal is None:
        return None
    size = len(wal.data)
    headers = frame_headers(wal.data)
    size_after = rng.choice(
        (
            0,
            rng.randrange(size),
            rng.randrange(0, size, BLOCK),
            (rng.choice(headers) + rng.randint(1, HEADER - 1)) if headers else 0,
            wal.data_end,
            size - 1,
        )
    )
    size_after = min(size_after, size - 1)
    image.tamper_set_content(wal.path, wal.data[:size_after])
    return Mutated("truncate_file", f"cut {wal.name} from {size} to {size_after} byte(s)")


def _extend(name: str, garbage: bool) -> MutationFunction:
    def mutation(image: SimulatedDisk, directory: str, rng: random.Random) -> Mutated | None:
        wal = _pick_file(rng, _wal_files(image, directory))
        if wal is None:
            return None
        length = rng.choice((rng.randint(1, 16), BLOCK, BLOCK + rng.randint(1, 16), rng.randint(1, 2 * BLOCK)))
        tail = rng.randbytes(length) if garbage else bytes(length)
        image.tamper_set_content(wal.path, wal.data + tail)
        return Mutated(name, f"grew {wal.name} by {length} {'garbage' if garbage else 'zero'} byte(s)")

    mutation.__name__ = name
    mutation.__doc__ = (
        f"Grow a WAL file by {'garbage' if garbage else 'zeros'}: a few bytes, a block, a block and a few."
    )
    return mutation


extend_zeros = _extend("extend_zeros", garbage=False)
extend_garbage = _extend("extend_garbage", garbage=True)


def odd_length_file(image: SimulatedDisk, directory: str, rng: random.Random) -> Mutated | None:
    """Give a WAL file an odd size (so not a whole number of blocks), cut or grown with zeros."""
    wal = _pick_file(rng, _wal_files(image, directory))
    if wal is None:
        return None
    size_after = rng.randrange(1, len(wal.data) + 2 * BLOCK) | 1
    data = wal.data[:size_after] + bytes(max(size_after - len(wal.data), 0))
    image.tamper_set_content(wal.path, data)
    return Mutated("odd_length_file", f"resized {wal.name} from {len(wal.data)} to {size_after} byte(s)")


def zero_length_file(image: SimulatedDisk, directory: str, rng: random.Random) -> Mutated | None:
    """An empty WAL file anywhere in the sequence: an existing one emptied
    (first, middle or last), or a new one before the first or after the last."""
    files = _wal_files(image, directory)
    if not files:
        return None
    variant = rng.choice(("existing", "existing", "before_first", "after_last"))
    if variant == "before_first" and files[0].number > 0:
        name = wal_name(files[0].number - 1)
    elif variant == "after_last" and files[-1].number < MAX_FILE_NUMBER:
        name = wal_name(files[-1].number + 1)
    else:
        place, wal = _pick_position(rng, files)
        image.tamper_set_content(wal.path, b"")
        return Mutated("zero_length_file", f"emptied {wal.name} (the {place} file)")
    image.tamper_set_content(posixpath.join(normalize(directory), name), b"")
    return Mutated("zero_length_file", f"added an empty {name}", {name: None})


# -- whole blocks and files --------------------------------------------------------------


def _full_blocks(files: list[_Wal]) -> list[tuple[_Wal, int]]:
    return [(wal, start) for wal in files for start in range(0, len(wal.data) - BLOCK + 1, BLOCK)]


def _pick_two_blocks(rng: random.Random, files: list[_Wal]) -> tuple[tuple[_Wal, int], tuple[_Wal, int]] | None:
    """Two different whole blocks, the first holding data; in one file or in two."""
    blocks = _full_blocks(files)
    with_data = [(wal, start) for wal, start in blocks if any(wal.data[start : start + BLOCK])]
    if len(blocks) < 2 or not with_data:
        return None
    first = rng.choice(with_data)
    same_file = [b for b in blocks if b[0].number == first[0].number and b[1] != first[1]]
    other_files = [b for b in blocks if b[0].number != first[0].number]
    pool = same_file if same_file and (not other_files or rng.random() < 0.5) else other_files
    return first, rng.choice(pool)


def _set_blocks(image: SimulatedDisk, changes: list[tuple[_Wal, int, bytes]]) -> None:
    contents: dict[str, bytes] = {}
    for wal, start, block in changes:
        current = contents.get(wal.path, wal.data)
        contents[wal.path] = current[:start] + block + current[start + BLOCK :]
    for path, data in contents.items():
        image.tamper_set_content(path, data)


def swap_blocks(image: SimulatedDisk, directory: str, rng: random.Random) -> Mutated | None:
    """Swap two whole blocks, in one file or across files (intact frames
    moved: outside the checksum's reach)."""
    pair = _pick_two_blocks(rng, _wal_files(image, directory))
    if pair is None:
        return None
    (a, a_start), (b, b_start) = pair
    a_block, b_block = a.data[a_start : a_start + BLOCK], b.data[b_start : b_start + BLOCK]
    if a.number == b.number:
        _set_blocks(image, [(a, a_start, b_block), (a, b_start, a_block)])
    else:
        _set_blocks(image, [(a, a_start, b_block), (b, b_start, a_block)])
    return Mutated("swap_blocks", f"swapped block {a.name}@{a_start} with {b.name}@{b_start}")


def duplicate_block(image: SimulatedDisk, directory: str, rng: random.Random) -> Mutated | None:
    """Copy a whole block over another, in one file or across files."""
    pair = _pick_two_blocks(rng, _wal_files(image, directory))
    if pair is None:
        return None
    (a, a_start), (b, b_start) = pair
    _set_blocks(image, [(b, b_start, a.data[a_start : a_start + BLOCK])])
    return Mutated("duplicate_block", f"copied block {a.name}@{a_start} over {b.name}@{b_start}")


def missing_file(image: SimulatedDisk, directory: str, rng: random.Random) -> Mutated | None:
    """Remove a WAL file: the first, a middle one or the last."""
    files = _wal_files(image, directory)
    if not files:
        return None
    place, wal = _pick_position(rng, files)
    image.tamper_remove(wal.path)
    return Mutated("missing_file", f"removed {wal.name} (the {place} file)")


def foreign_wal_entry(image: SimulatedDisk, directory: str, rng: random.Random) -> Mutated | None:
    """A directory, symlink or fifo under a WAL name: in place of a file (first,
    middle or last), at the number the writer would create next, or before the first."""
    files = _wal_files(image, directory)
    if not files:
        return None
    kind = rng.choice(_FOREIGN_KINDS)
    variant = rng.choice(("existing", "next", "next", "before_first"))
    if variant == "next" and files[-1].number < MAX_FILE_NUMBER:
        name, what = wal_name(files[-1].number + 1), "the next file number"
    elif variant == "before_first" and files[0].number > 0:
        name, what = wal_name(files[0].number - 1), "the number before the first"
    else:
        place, wal = _pick_position(rng, files)
        image.tamper_remove(wal.path)
        name, what = wal.name, f"in place of the {place} file"
    image.tamper_add_entry(posixpath.join(normalize(directory), name), kind)
    return Mutated("foreign_wal_entry", f"a {kind} named {name} ({what})")


def garbage_after_end(image: SimulatedDisk, directory: str, rng: random.Random) -> Mutated | None:
    """Garbage right after the end of the log (or a little further): what
    recovery must quarantine and zero before it writes there."""
    files = _wal_files(image, directory)
    if not files:
        return None
    wal = files[-1]
    offset = wal.data_end + rng.choice((0, 0, rng.randint(1, 64)))
    garbage = rng.randbytes(rng.randint(1, 300))
    if offset >= len(wal.data):
        image.tamper_set_content(wal.path, wal.data + garbage)
    else:
        image.tamper_set_content(wal.path, _replace(wal.data, offset, garbage))
    return Mutated("garbage_after_end", f"{len(garbage)} garbage byte(s) in {wal.name} at offset {offset}")


def quarantine_blocked(image: SimulatedDisk, directory: str, rng: random.Random) -> Mutated | None:
    """Garbage after the end of the log, so that recovery must quarantine, and
    earlier recoveries' folders (each holding its ``report.json``, which must
    stay as it is) and something that is not a directory (a file, a dangling
    symlink, a fifo) where the quarantine folder or its next ``recovery-N``
    would go."""
    done = garbage_after_end(image, directory, rng)
    if done is None:
        return None
    root = posixpath.join(normalize(directory), QUARANTINE)
    kind: EntryKind = rng.choice(("file", "symlink", "other"))
    if rng.random() < 0.3:
        target = root
    else:
        image.tamper_add_entry(root, "directory")
        number = rng.randint(1, 3)
        for earlier in range(1, number):
            folder = posixpath.join(root, f"recovery-{earlier}")
            image.tamper_add_entry(folder, "directory")
            image.tamper_set_content(posixpath.join(folder, "report.json"), b'{"earlier": %d}\n' % earlier)
        target = posixpath.join(root, f"recovery-{number}")
    image.tamper_add_entry(target, kind)
    where = posixpath.relpath(target, normalize(directory))
    return Mutated("quarantine_blocked", f"{done.description}; a {kind} at {where}")


def near_max_file_numbers(image: SimulatedDisk, directory: str, rng: random.Random) -> Mutated | None:
    """Renumber the files (gaps kept) so that the last is 2^64 - 1, or just below."""
    files = _wal_files(image, directory)
    if not files:
        return None
    last = MAX_FILE_NUMBER - rng.choice((0, 0, 1, 2))
    shift = last - files[-1].number
    if shift <= 0:
        return None
    base = normalize(directory)
    origins: dict[str, str | None] = {}
    for wal in files:
        image.tamper_remove(wal.path)
    for wal in files:
        renamed = wal_name(wal.number + shift)
        image.tamper_set_content(posixpath.join(base, renamed), wal.data)
        origins[renamed] = wal.name
    return Mutated("near_max_file_numbers", f"renumbered {len(files)} file(s), the last is now {last}", origins)


MUTATIONS: Final[Mapping[str, MutationFunction]] = {
    "bit_flip": bit_flip,
    "zero_run": zero_run,
    "ff_run": ff_run,
    "random_run": random_run,
    "zero_frame_header": zero_frame_header,
    "huge_length": huge_length,
    "truncate_file": truncate_file,
    "extend_zeros": extend_zeros,
    "extend_garbage": extend_garbage,
    "odd_length_file": odd_length_file,
    "zero_length_file": zero_length_file,
    "swap_blocks": swap_blocks,
    "duplicate_block": duplicate_block,
    "missing_file": missing_file,
    "foreign_wal_entry": foreign_wal_entry,
    "garbage_after_end": garbage_after_end,
    "quarantine_blocked": quarantine_blocked,
    "near_max_file_numbers": near_max_file_numbers,
}
# Mutations that move intact, checksum-valid frames to other places. The 0.5
# format has no record-level checksum (spec/DURABILITY.md, section 6): no reader
# can tell them from frames the writer put there.
TRANSPLANTING: Final = frozenset({"swap_blocks", "duplicate_block"})


def mutate(image: SimulatedDisk, directory: str, name: str, seed: int) -> tuple[SimulatedDisk, Mutated] | None:
    """Mutation ``name`` with ``random.Random(seed)`` on a copy of ``image``
    (the image is unchanged); None if it found nothing to change."""
    copy = process_crash_image(image)
    done = MUTATIONS[name](copy, directory, random.Random(seed))
    return None if done is None else (copy, done)


# -- on the real file system ------------------------------------------------------------

SPARSE_MIN_DISTANCE: Final = 1 << 30
SPARSE_MAX_DISTANCE: Final = 4 << 30


@dataclass(frozen=True, slots=True)
class SparseByte:
    """A stray non-zero byte planted far past a file's data."""

    path: str
    offset: int
    value: int
    description: str


def plant_sparse_byte(directory: str, rng: random.Random) -> SparseByte | None:
    """Write one non-zero byte 1 to 4 GiB past the end of a WAL file of a real
    directory (mostly the last file), which makes it a sparse file of
    gigabytes holding a few kilobytes. None if there is no WAL file, or the
    file system stores the hole (it does not support sparse files): the byte
    is then taken back."""
    names = sorted(name for name in os.listdir(directory) if _WAL_NAME.fullmatch(name))
    files = [name for name in names if os.path.isfile(os.path.join(directory, name))]
    if not files:
        return None
    name = files[-1] if rng.random() < 0.75 else rng.choice(files)
    path = os.path.join(directory, name)
    size = os.path.getsize(path)
    offset = size + rng.randint(SPARSE_MIN_DISTANCE, SPARSE_MAX_DISTANCE)
    value = rng.randint(1, 255)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, bytes([value]), offset)
        if os.fstat(fd).st_blocks * 512 > size + (64 << 20):
            os.ftruncate(fd, size)
            return None
    finally:
        os.close(fd)
    return SparseByte(path, offset, value, f"byte {value:#04x} planted in {name} at offset {offset} (size was {size})")
