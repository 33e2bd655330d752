"""The crash-consistency campaign: every crash must recover an allowed prefix,
in every recovery mode, and the log must go on working afterwards.

A workload runs on a ``SimulatedDisk`` beside the model. Before every mutating
storage call (every moment a crash can interrupt) the campaign builds crash
images of the disk: a process crash, power losses keeping random subsets of
the unsynced writes, torn writes, lost directory entries, and power losses
that end at a frame boundary inside a record spanning blocks. Injected faults
(fsync EIO, ENOSPC, an I/O error) strike some runs; some logs start at a file
number near 2^64. Hostile images (not crashes: an outside hand changed the
directory) add tamper edits to a crash image: a WAL file lengthened or cut,
emptied or removed, a directory, symlink or fifo where the log or its
quarantine will create something. At the end of a run the campaign flips
bits, crashes recovery itself, and recovers some images on the real file
system.

``judge_image`` recovers each image in one recovery mode (``point_in_time``
most often, ``strict``, ``skip``) and judges it against ``spec/DURABILITY.md``:

- a crash image must give exactly the model's state after a prefix of the
  issued operations that contains every acknowledged one. ``strict`` may
  refuse (``CorruptionError``) only an image whose writes a power loss kept
  out of order; ``skip`` may leave a hole there, but returns no record that was
  never written and loses none that was acknowledged and not removed since;
- a hostile image may be refused with one of the package's errors (for a
  foreign entry at a WAL name that is the expected outcome); when
  ``point_in_time`` or ``strict`` opens it, no queue may have a hole, and a
  state other than the untampered image's must come with a report that is not
  clean; an edit that cannot touch the log's data must change nothing;
- whenever ``strict`` opens, no checksum-valid frame follows the place it
  resumes at (the frames a torn record got to disk excepted).

On a share of the images the check goes on after recovery (the continuation
check): the first lost operation is retried, as a client would, appends cross
a block end and roll into the next file, a truncate collects files, an fsync
makes it all durable, and the log is closed and reopened in the same mode:
exactly the recovered state plus those operations must come back. Stale
frames after the resume point, or a writer that resumes where the reader will
not look, show up there.

A violation is written as a reproducer file (the workload, the crash point,
the image's choices and tamper edits, the mode and the continuation's seed)
that ``replay_reproducer`` (and ``mrecordlog crashcheck --replay FILE``) runs
again.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
import random
import re
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import crc32c

from mrecordlog._recovery import RecoveryReport
from mrecordlog._storage import EntryKind
from mrecordlog.errors import (
    CorruptionError,
    FileNumbersExhausted,
    FileSizeMismatch,
    LogFailed,
    MRecordLogError,
    StorageError,
)
from mrecordlog.fault_injection import (
    DROP,
    KEEP,
    Drop,
    FaultPlan,
    Keep,
    LinkOp,
    RenameOp,
    SimulatedDisk,
    Tear,
    UnlinkOp,
    WriteOp,
    enumerate_choices,
    materialize,
    power_loss_image,
    process_crash_image,
    random_choices,
)
from mrecordlog.fault_injection.images import TORN_KINDS, Choice, sectors_touched
from mrecordlog.fault_injection.ops import PendingOp
from mrecordlog.inspection import inspect_log
from mrecordlog.interchange import (
    AppendOp,
    CreateQueueOp,
    DeleteQueueOp,
    Operation,
    PersistOp,
    ReopenOp,
    TruncateOp,
    execute,
    op_name,
    operation_to_json,
)
from mrecordlog.log import MultiRecordLog
from mrecordlog.model import Model, ModelError, QueueModel
from mrecordlog.oracle.driver import WHOLE, Part, describe_scale, merge_shards, run_campaign_in_workers
from mrecordlog.oracle.workloads import BLOCK, MAX_FILE_NUMBER, Workload, generate_workload, policy_of

LOG_DIR: Final = "/log"
MUTATING_CALLS: Final = frozenset({"write_at", "sync", "create_file", "remove_file", "rename", "sync_dir"})
MODES: Final = ("point_in_time", "strict", "skip")
# point_in_time is the default and the mode the guarantee is about: it gets
# two thirds of the images, strict and skip a sixth each (a strict open scans
# the rest of its resume block at every offset: it costs most).
_MODE_WEIGHTS: Final = {"point_in_time": 4, "strict": 1, "skip": 1}
# Hostile images are few and each mode fails them in its own way: half go to
# strict and skip.
_HOSTILE_MODE_WEIGHTS: Final = {"point_in_time": 2, "strict": 1, "skip": 1}
HOSTILE_KINDS: Final = ("file_length", "zero_length_file", "missing_file", "foreign_entry")
# The kinds a campaign may leave out (``Campaign(kinds=...)``); the others
# come with every workload.
OPTIONAL_KINDS: Final = ("torn_multiblock", "high_file_numbers", *HOSTILE_KINDS)
FAULT_KINDS: Final = (
    "process_crash",
    "power_loss",
    "torn_write",
    "lost_dir_entry",
    "fsync_eio",
    "enospc",
    "io_error",
    "bit_flip",
    "crash_during_recovery",
    "os_storage",
    *OPTIONAL_KINDS,
)
# A campaign stops at this many violations (``Campaign(max_violations=...)``);
# merged reports keep as many.
MAX_VIOLATIONS: Final = 5
_HEADER: Final = 7
_NON_ZERO: Final = re.compile(b"[^\x00]")
_FIRST: Final = 2
_MIDDLE: Final = 3
_LAST: Final = 4
_ENTRY_KINDS: Final[dict[str, EntryKind]] = {
    "file": "file",
    "directory": "directory",
    "symlink": "symlink",
    "other": "other",
}


class CrashDuringRecovery(Exception):
    """Raised from a storage hook to stop a recovery in the middle."""


# -- what was issued and acknowledged ------------------------------------------


class History:
    """The model's state after each issued operation, and how many are acknowledged."""

    def __init__(self, start: Model | None = None) -> None:
        first = start.copy() if start is not None else Model()
        self.models: list[Model] = [first]
        self.states: list[str] = [first.state_json()]
        self.acked_process = 0
        self.acked_power = 0
        self.in_flight: tuple[Model, str] | None = None
        # operations[i] took the log from states[i] to states[i + 1] (None: a
        # step pushed by a caller that keeps its own model).
        self.operations: list[Operation | None] = []
        self._in_flight_operation: Operation | None = None
        # An injected fault struck (the log is fail-stopped).
        self.fault_struck = False
        self._runs_cache: tuple[tuple[int, str | None], list[dict[str, list[tuple[int, str]]]]] | None = None

    @property
    def issued(self) -> int:
        return len(self.states) - 1

    def begin(self, operation: Operation) -> dict[str, Any]:
        model = self.models[-1].copy()
        answer = model.apply(operation_to_json(operation))
        self.in_flight = (model, model.state_json())
        self._in_flight_operation = operation
        return answer

    def settle(self, *, applied: bool) -> None:
        """The in-flight operation returned (``applied``) or failed in the middle
        (it may or may not be on disk: it stays a possible next state)."""
        assert self.in_flight is not None
        assert self._in_flight_operation is not None
        model, state = self.in_flight
        self.in_flight = None
        if applied or state != self.states[-1]:
            self.models.append(model)
            self.states.append(state)
            self.operations.append(self._in_flight_operation)

    def refuse(self) -> None:
        """The in-flight operation was refused before it wrote anything a
        replay could use: it leaves no possible state."""
        self.in_flight = None
        self._in_flight_operation = None

    def push(self, model: Model) -> None:
        """A step its caller already applied to ``model``: record the state."""
        self.models.append(model.copy())
        self.states.append(model.state_json())
        self.operations.append(None)

    def acknowledge(self, *, process: bool, power: bool) -> None:
        if process or power:
            self.acked_process = self.issued
        if power:
            self.acked_power = self.issued

    def allowed(self, *, power_loss: bool) -> set[str]:
        low = self.acked_power if power_loss else self.acked_process
        states = set(self.states[low:])
        if self.in_flight is not None:
            states.add(self.in_flight[1])
        return states

    def after(self, state: str) -> tuple[Model, list[Operation]]:
        """The model in this state (the latest prefix that has it, or the
        in-flight operation's result) and the operations issued after it."""
        for index in range(len(self.states) - 1, -1, -1):
            if self.states[index] == state:
                lost = [op for op in self.operations[index:] if op is not None]
                if self._in_flight_operation is not None and self.in_flight is not None:
                    lost.append(self._in_flight_operation)
                return self.models[index].copy(), lost
        assert self.in_flight is not None, "not an allowed state"
        assert self.in_flight[1] == state, "not an allowed state"
        return self.in_flight[0].copy(), []

    def knows(self, state: str) -> bool:
        """Whether a prefix of the issued operations (or the in-flight one) gives ``state``."""
        return state in self.states or (self.in_flight is not None and self.in_flight[1] == state)

    def later_operations(self, index: int) -> list[Operation | None]:
        """The operations issued after the state ``index``, the in-flight one included."""
        later = list(self.operations[index:])
        if self.in_flight is not None:
            later.append(self._in_flight_operation)
        return later

    def queue_runs(self) -> list[dict[str, list[tuple[int, str]]]]:
        """For every state of the history (the in-flight one included), each
        queue's records as (position, payload hex)."""
        key = (len(self.models), None if self.in_flight is None else self.in_flight[1])
        if self._runs_cache is not None and self._runs_cache[0] == key:
            return self._runs_cache[1]
        models = self.models + ([self.in_flight[0]] if self.in_flight is not None else [])
        runs = [
            {
                name: [(position, payload.hex()) for position, payload in queue.records]
                for name, queue in m.queues.items()
            }
            for m in models
        ]
        self._runs_cache = (key, runs)
        return runs

    def written_records(self) -> set[tuple[str, int, str]]:
        """Every (queue, position, payload hex) some state of the history holds."""
        return {
            (name, position, payload)
            for run in self.queue_runs()
            for name, records in run.items()
            for position, payload in records
        }


# -- images --------------------------------------------------------------------------


def _choices_to_json(choices: tuple[Choice, ...]) -> list[Any]:
    return [
        "k" if isinstance(c, Keep) else "d" if isinstance(c, Drop) else ["t", c.kept_sectors, c.torn, c.seed]
        for c in choices
    ]


def _choices_from_json(value: list[Any]) -> tuple[Choice, ...]:
    return tuple(KEEP if c == "k" else DROP if c == "d" else Tear(c[1], c[2], c[3]) for c in value)


@dataclass(frozen=True, slots=True)
class Tamper:
    """One hostile edit of an image: not a crash, an outside hand changing the
    directory. Edits are durable at once (``SimulatedDisk.tamper_*``).

    - ``extend``: ``size`` more bytes at the file's end, zeros or (``fill``
      ``garbage``) ``random.Random(seed)`` bytes;
    - ``cut``: the file keeps its first ``size`` bytes;
    - ``remove``: the file's entry goes;
    - ``add_entry``: an entry of kind ``fill`` (``directory``, ``symlink``,
      ``other``: a fifo, or ``file``) at ``path``, its parents made if needed.
    """

    action: str
    path: str
    size: int = 0
    fill: str = ""
    seed: int = 0

    def apply(self, disk: SimulatedDisk) -> None:
        if self.action == "remove":
            disk.tamper_remove(self.path)
        elif self.action == "add_entry":
            disk.make_dirs(posixpath.dirname(self.path))
            disk.tamper_add_entry(self.path, _ENTRY_KINDS[self.fill])
        elif self.action in ("extend", "cut"):
            handle = disk.open_file(self.path, writable=False)
            try:
                content = handle.read_at(0, handle.size())
            finally:
                handle.close()
            if self.action == "cut":
                disk.tamper_set_content(self.path, content[: self.size])
            else:
                added = random.Random(self.seed).randbytes(self.size) if self.fill == "garbage" else bytes(self.size)
                disk.tamper_set_content(self.path, content + added)
        else:
            raise ValueError(f"unknown tamper action {self.action!r}")

    def to_json_value(self) -> dict[str, Any]:
        return {"action": self.action, "path": self.path, "size": self.size, "fill": self.fill, "seed": self.seed}

    @classmethod
    def from_json_value(cls, value: dict[str, Any]) -> Tamper:
        return cls(value["action"], value["path"], value["size"], value["fill"], value["seed"])

    def describe(self) -> str:
        if self.action == "extend":
            return f"{self.path} extended by {self.size} byte(s) of {self.fill}"
        if self.action == "cut":
            return f"{self.path} cut to {self.size} byte(s)"
        if self.action == "remove":
            return f"{self.path} removed"
        return f"a {self.fill} at {self.path}"


@dataclass(frozen=True, slots=True)
class Image:
    """A crash image of a disk at a crash point, and how to judge its recovery.

    ``choices`` None is a process crash (everything the OS accepted), else a
    power loss keeping, dropping or tearing each pending operation. ``tamper``
    edits make it hostile. ``mode`` is the recovery mode it is opened in;
    ``continuation`` the seed of the continuation check (None: not run). The
    last three fields say how a hostile image is judged (the generator knows
    what its edits can do): ``exact``, the edits cannot touch the log's data,
    so every mode must recover what the untampered image does; ``clean_check``,
    a state other than the untampered image's must come with a report that is
    not clean (off where the edit can look like an ordinary crash, such as
    removing the first or the last file); ``refusal``, a refusal of open that
    is an expected outcome (``typed``: any of the package's errors but
    ``StorageError``; ``FileSizeMismatch``: a file's length became another
    multiple of the block size).
    """

    kind: str  # the fault kind it counts for
    power_loss: bool
    choices: tuple[Choice, ...] | None
    tamper: tuple[Tamper, ...] = ()
    mode: str = "point_in_time"
    continuation: int | None = None
    exact: bool = False
    clean_check: bool = False
    refusal: str = ""

    def build_base(self, disk: SimulatedDisk) -> SimulatedDisk:
        """The crash image without the tamper edits."""
        return process_crash_image(disk) if self.choices is None else power_loss_image(disk, self.choices)

    def build(self, disk: SimulatedDisk) -> SimulatedDisk:
        image = self.build_base(disk)
        for edit in self.tamper:
            edit.apply(image)
        return image

    def to_json_value(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "power_loss": self.power_loss,
            "choices": None if self.choices is None else _choices_to_json(self.choices),
            "tamper": [edit.to_json_value() for edit in self.tamper],
            "mode": self.mode,
            "continuation": self.continuation,
            "exact": self.exact,
            "clean_check": self.clean_check,
            "refusal": self.refusal,
        }

    @classmethod
    def from_json_value(cls, value: dict[str, Any], *, violation_kind: str | None = None) -> Image:
        choices = value["choices"]
        continuation = value.get("continuation")
        if "mode" not in value and violation_kind == "stale_frames":
            continuation = 0  # a reproducer from before modes: its violation came from the retry
        return cls(
            kind=value["kind"],
            power_loss=value["power_loss"],
            choices=None if choices is None else _choices_from_json(choices),
            tamper=tuple(Tamper.from_json_value(edit) for edit in value.get("tamper", ())),
            mode=value.get("mode", "point_in_time"),
            continuation=continuation,
            exact=value.get("exact", False),
            clean_check=value.get("clean_check", False),
            refusal=value.get("refusal", ""),
        )


def in_order(choices: Sequence[Choice]) -> bool:
    """Whether a power loss kept the pending operations in order: a prefix of
    them kept, the next one maybe torn, the rest dropped (what a disk that
    writes back in issue order leaves)."""
    index = 0
    while index < len(choices) and isinstance(choices[index], Keep):
        index += 1
    if index < len(choices) and isinstance(choices[index], Tear):
        index += 1
    return all(isinstance(choice, Drop) for choice in choices[index:])


def _dir_op_drops(disk: SimulatedDisk, rng: random.Random) -> tuple[Choice, ...] | None:
    pending = disk.pending()
    directory_ops = [i for i, op in enumerate(pending) if isinstance(op, (LinkOp, UnlinkOp, RenameOp))]
    if not directory_ops:
        return None
    dropped = {i for i in directory_ops if rng.random() < 0.7} or {rng.choice(directory_ops)}
    return tuple(DROP if i in dropped else KEEP for i in range(len(pending)))


def torn_choices(disk: SimulatedDisk, rng: random.Random) -> tuple[Choice, ...] | None:
    """A power loss that tears one pending write at a random sector and keeps
    or drops each other pending operation at random."""
    pending = disk.pending()
    writes = [i for i, op in enumerate(pending) if isinstance(op, WriteOp) and sectors_touched(op) > 0]
    if not writes:
        return None
    choices = list(random_choices(pending, rng, tear_probability=0.0, keep_probability=0.6))
    victim = rng.choice(writes)
    op = pending[victim]
    assert isinstance(op, WriteOp)
    sectors = sectors_touched(op)
    torn = rng.choice(TORN_KINDS)
    kept = rng.randrange(sectors)
    choices[victim] = Tear(kept, torn, rng.randrange(2**32))
    # Everything after the torn write may or may not have made it.
    return tuple(choices)


def spanning_boundaries(pending: Sequence[PendingOp]) -> list[tuple[int, int]]:
    """Every frame boundary inside a record that spans blocks, as (index of the
    pending write, sectors of it before the boundary): the block starts inside
    a pending write where a Middle or Last frame begins. Frames never cross a
    block, so a spanning record's frames meet exactly there, at a sector
    boundary."""
    boundaries = []
    for index, op in enumerate(pending):
        if not isinstance(op, WriteOp):
            continue
        start, end = op.offset, op.offset + len(op.data)
        boundary = -(-start // BLOCK) * BLOCK
        while boundary + _HEADER <= end:
            if op.data[boundary - start + 6] in (_MIDDLE, _LAST):
                boundaries.append((index, boundary // 512 - start // 512))
            boundary += BLOCK
    return boundaries


TORN_AT_BOUNDARY: Final = ("old", "garbage", "long_header")


def boundary_choices(pending: Sequence[PendingOp], index: int, kept: int, torn: str, seed: int) -> tuple[Choice, ...]:
    """A power loss that kept the pending operations in order up to a frame
    boundary (``spanning_boundaries``) and dropped the rest. With ``torn``
    ``old`` the write ends exactly there; with ``garbage`` the sector after
    the boundary holds garbage; with ``long_header`` the garbage reads as a
    frame header (type 1 to 4) whose length crosses the block (the worst
    garbage for ``skip``, which can only abandon the block; random garbage is
    that one time in 128). The seed of that garbage is searched from ``seed``
    and kept in the choice, so the choices replay without the search."""
    op = pending[index]
    cut: Choice
    if torn == "old":
        cut = DROP if kept == 0 else Tear(kept, "old", seed)
    elif torn == "garbage":
        cut = Tear(kept, "garbage", seed)
    elif torn == "long_header" and isinstance(op, WriteOp):
        boundary = (op.offset // 512 + kept) * 512
        length = min(512 - boundary % 512, op.offset + len(op.data) - boundary)
        cut = Tear(kept, "garbage", _long_header_seed(seed, length))
    else:
        raise ValueError(f"cannot tear {op!r} {torn!r}")
    return (KEEP,) * index + (cut,) + (DROP,) * (len(pending) - index - 1)


def _long_header_seed(seed: int, length: int) -> int:
    """The first seed from ``seed`` on whose ``length`` bytes of garbage (as
    ``Tear`` makes them) start with a frame header whose type is 1 to 4 and
    whose length crosses a block it starts."""
    while True:
        header = random.Random(seed).randbytes(length)[:_HEADER]
        if len(header) == _HEADER and 1 <= header[6] <= 4 and _HEADER + (header[4] | header[5] << 8) > BLOCK:
            return seed
        seed += 1


def _parse_wal_name(name: str) -> int | None:
    if len(name) != 24 or not name.startswith("wal-") or not (name[4:].isascii() and name[4:].isdigit()):
        return None
    number = int(name[4:])
    return number if number <= MAX_FILE_NUMBER else None


def wal_path(number: int) -> str:
    return f"{LOG_DIR}/wal-{number:020d}"


def wal_files(disk: SimulatedDisk) -> dict[int, bytes]:
    """The content of the regular files with a WAL name in the log directory, by number."""
    files = {}
    for path, data in disk.visible_files(LOG_DIR).items():
        directory, name = posixpath.split(path)
        number = _parse_wal_name(name) if directory == LOG_DIR else None
        if number is not None:
            files[number] = data
    return files


def _pick_file(numbers: Sequence[int], rng: random.Random) -> int:
    """The first, a middle or the last file of the sequence, equally likely."""
    categories = [c for c in (numbers[:1], numbers[1:-1], numbers[-1:]) if c]
    return rng.choice(rng.choice(categories))


def _cut_offset(size: int, data_end: int, rng: random.Random) -> int:
    """Where to cut a file of ``size`` bytes (``data_end``: the end of its
    non-zero bytes): anywhere, in its first frame (the first header), inside
    its data, or around a block boundary."""
    where = rng.randrange(4)
    if where == 1:
        return rng.randrange(min(size, 32))
    if where == 2 and data_end > 0:
        return rng.randrange(data_end)
    if where == 3:
        around = rng.randrange(size // BLOCK + 1) * BLOCK + rng.randint(-8, 8)
        return min(max(around, 0), size - 1)
    return rng.randrange(size)


def _next_recovery_number(disk: SimulatedDisk) -> int:
    prefix = f"{LOG_DIR}/quarantine/recovery-"
    taken = [path[len(prefix) :] for path in disk.directories(LOG_DIR) if path.startswith(prefix)]
    return max((int(n) for n in taken if n.isdigit()), default=0) + 1


def hostile_image(kind: str, workload: Workload, disk: SimulatedDisk, rng: random.Random) -> Image | None:
    """A hostile image of ``kind`` (one of ``HOSTILE_KINDS``): a process crash
    or a power loss, then tamper edits; None when the crash image has no WAL
    file to edit. Its judging fields say what the edits can change."""
    power_loss = rng.random() < (0.8 if kind == "foreign_entry" else 0.5)
    # A power loss often leaves bytes after the end of the log: recovery then
    # needs the quarantine, which a foreign entry may stand in the way of.
    choices = random_choices(disk.pending(), rng, tear_probability=0.1) if power_loss else None
    image = Image(kind, power_loss, choices)
    base = image.build_base(disk)
    files = wal_files(base)
    if not files:
        return None
    numbers = sorted(files)
    ends = (numbers[0], numbers[-1])
    if kind == "file_length":
        # The first, a middle or the last file: cut in the first file's first
        # frame, recovery knows no checksum profile yet.
        number = _pick_file(numbers, rng)
        size = len(files[number])
        if size == 0 or rng.random() < 0.5:
            added = rng.randint(1, 64) if rng.random() < 0.3 else rng.randint(1, BLOCK + 64)
            fill = rng.choice(("zeros", "garbage"))
            edit = Tamper("extend", wal_path(number), added, fill, rng.getrandbits(32))
            # Zeros read as the zero-fill of a short file; past the file's
            # extent nothing is part of the log, whatever the bytes.
            exact = fill == "zeros" or size >= workload.file_num_bytes
            refusal = "FileSizeMismatch" if (size + added) % BLOCK == 0 else ""
            return replace(image, tamper=(edit,), exact=exact, clean_check=True, refusal=refusal)
        cut = _cut_offset(size, len(files[number].rstrip(b"\0")), rng)
        refusal = "FileSizeMismatch" if cut and cut % BLOCK == 0 else ""
        edit = Tamper("cut", wal_path(number), cut)
        # A cut of the last file can look like a crash that wrote less.
        return replace(image, tamper=(edit,), clean_check=number != numbers[-1], refusal=refusal)
    if kind == "zero_length_file":
        number = _pick_file(numbers, rng)
        edits: tuple[Tamper, ...] = (Tamper("cut", wal_path(number), 0),)
        if rng.random() < 0.3:
            # Or its data lost but its size kept: what a short file reads as
            # (all zeros), without the short file.
            edits += (Tamper("extend", wal_path(number), len(files[number]), "zeros"),)
        # A power loss can leave the last file empty (its preallocation lost).
        return replace(image, tamper=edits, clean_check=number != numbers[-1])
    if kind == "missing_file":
        number = _pick_file(numbers, rng)
        # Without its first file a log looks collected; without its last one,
        # like a crash before the roll.
        return replace(image, tamper=(Tamper("remove", wal_path(number)),), clean_check=number not in ends)
    if kind != "foreign_entry":
        raise ValueError(f"not a hostile kind: {kind!r}")
    entry = rng.choice(("directory", "symlink", "other"))
    roll = rng.random()
    if roll < 0.5:
        # The next name the writer would create, or the one before the first.
        after = numbers[-1] < MAX_FILE_NUMBER and (roll < 0.35 or numbers[0] == 0)
        number = numbers[-1] + 1 if after else numbers[0] - 1
        edit = Tamper("add_entry", wal_path(number), fill=entry)
        return replace(image, tamper=(edit,), exact=True, clean_check=True, refusal="typed")
    if roll < 0.65:
        number = _pick_file(numbers, rng)
        edits = (Tamper("remove", wal_path(number)), Tamper("add_entry", wal_path(number), fill=entry))
        return replace(image, tamper=edits, clean_check=number not in ends, refusal="typed")
    recovery = f"{LOG_DIR}/quarantine/recovery-{_next_recovery_number(base)}"
    edit = Tamper("add_entry", recovery, fill=rng.choice(("symlink", "file", "directory")))
    return replace(image, tamper=(edit,), exact=True, clean_check=True)


# -- judging an image ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Judgement:
    """What recovering an image gave: the violation's message (None: it
    holds), and the error class of a refusal that was accepted."""

    message: str | None
    refused_with: str | None = None


def _outcome(storage: SimulatedDisk, mode: str) -> str:
    """What a read-only recovery in ``mode`` gives: the state, or the refusal."""
    try:
        return inspect_log(LOG_DIR, storage=storage, recovery=mode).state.to_canonical_json()
    except MRecordLogError as exc:
        return f"refused ({type(exc).__name__})"


def _summary(state: str) -> str:
    if state.startswith("refused"):
        return state
    queues = json.loads(state)["queues"]
    return "{" + ", ".join(f"{name}: {[r[0] for r in q['records']]}" for name, q in sorted(queues.items())) + "}"


def judge_image(workload: Workload, disk: SimulatedDisk, history: History, image: Image) -> str | None:
    """Recover ``image`` of ``disk`` (at a crash point of ``workload``) in the
    image's mode, judge it (and run the continuation check if the image asks
    for it); the violation's message, or None."""
    return judge(workload, disk, history, image).message


def judge(workload: Workload, disk: SimulatedDisk, history: History, image: Image) -> Judgement:
    """``judge_image``, also telling which refusal was accepted."""
    ordered = not image.tamper and not disk.lost_on_power_loss and (image.choices is None or in_order(image.choices))
    crashed = image.build(disk)
    before = wal_files(crashed) if image.mode == "strict" else None
    untampered: str | None = None
    same_mode: str | None = None
    if image.tamper:
        base = image.build_base(disk)
        untampered = _outcome(base, "point_in_time")
        same_mode = untampered if image.mode == "point_in_time" else _outcome(base, image.mode)
    try:
        log = MultiRecordLog.open(LOG_DIR, storage=crashed, recovery=image.mode, file_num_bytes=workload.file_num_bytes)
    except MRecordLogError as exc:
        return _judge_refusal(image, exc, ordered, same_mode)
    except Exception as exc:  # anything but the package's errors is a bug
        return Judgement(f"{image.mode} recovery failed: {type(exc).__name__}: {exc}")
    try:
        got = log.state().to_canonical_json()
        report = log.recovery_report
        if image.tamper:
            message = _judge_hostile_state(image, got, report, history, untampered, same_mode)
        else:
            message = _judge_crash_state(image.mode, got, history, power_loss=image.power_loss, ordered=ordered)
        if message is None and before is not None:
            message = _valid_frame_after_resume(before, report, workload)
        if message is None and image.continuation is not None:
            message = _continue(log, crashed, workload, history, got, image.mode, image.continuation)
    except Exception as exc:
        message = f"{image.mode}: checking the recovered log failed: {type(exc).__name__}: {exc}"
    finally:
        try:
            log.close()
        except Exception as exc:
            message = message or f"{image.mode}: closing the recovered log failed: {type(exc).__name__}: {exc}"
    return Judgement(message)


def _judge_refusal(image: Image, exc: MRecordLogError, ordered: bool, same_mode: str | None) -> Judgement:
    refused = Judgement(None, type(exc).__name__)
    what = f"{image.mode} recovery raised {type(exc).__name__}: {exc}"
    if not image.tamper:
        if image.mode == "strict" and isinstance(exc, CorruptionError) and not ordered:
            return refused  # writes a power loss kept out of order look like corruption
        if image.mode == "strict" and isinstance(exc, CorruptionError):
            crash = "a process crash" if image.choices is None else "an in-order power loss"
            return Judgement(f"{what}, on {crash} (only a reordering power loss may be refused)")
        return Judgement(what)
    if image.refusal == "typed":
        if not isinstance(exc, StorageError):
            return refused
        # An I/O error on every open is how the log used to fail there.
        return Judgement(f"{what}: an entry at a WAL name calls for a typed refusal naming it")
    if image.refusal == "FileSizeMismatch" and isinstance(exc, FileSizeMismatch):
        return refused
    if image.exact and f"refused ({type(exc).__name__})" != same_mode:
        assert same_mode is not None
        return Judgement(
            f"{what}, where the untampered image gives {_summary(same_mode)} (the edit cannot touch the log's data)"
        )
    return refused  # a hostile image may be refused with a typed error


def _judge_crash_state(mode: str, got: str, history: History, *, power_loss: bool, ordered: bool) -> str | None:
    allowed = history.allowed(power_loss=power_loss)
    if got in allowed:
        return None
    if mode == "skip" and not ordered:
        return _skip_violation(got, history, power_loss=power_loss)
    return f"{mode}: {_not_allowed(got, history, allowed)}"


def judge_crash_state(mode: str, got: str, history: History, *, power_loss: bool, ordered: bool) -> str | None:
    """Whether ``mode`` may recover ``got`` from a crash image (None) or why
    not: an acknowledged prefix for point_in_time and strict, and for skip
    after an out-of-order power loss, no record never written and none of the
    acknowledged ones lost."""
    return _judge_crash_state(mode, got, history, power_loss=power_loss, ordered=ordered)


def _judge_hostile_state(
    image: Image, got: str, report: RecoveryReport, history: History, untampered: str | None, same_mode: str | None
) -> str | None:
    if image.exact:
        if got != same_mode:
            assert same_mode is not None
            return (
                f"{image.mode} recovered {_summary(got)}, the untampered image {_summary(same_mode)}, "
                "though the edit cannot touch the log's data"
            )
        return None
    if image.mode == "skip":
        return _unwritten_record(got, history)
    hole = _hole(got, history)
    if hole is not None:
        return f"{image.mode}: {hole}"
    if image.clean_check and untampered is not None and got != untampered and report.clean:
        return (
            f"{image.mode} recovered {_summary(got)}, the untampered image {_summary(untampered)}, "
            "and the report says the recovery was clean"
        )
    return None


def _unwritten_record(got: str, history: History) -> str | None:
    known = history.written_records()
    for name, queue in json.loads(got)["queues"].items():
        for position, payload in queue["records"]:
            if (name, position, payload) not in known:
                return f"returned a record never written: {name!r} at position {position}"
    return None


def _skip_violation(got: str, history: History, *, power_loss: bool) -> str | None:
    """Skip after a reordering power loss: no record that was never written,
    and every record of the acknowledged state still there unless an
    operation issued later removed it."""
    unwritten = _unwritten_record(got, history)
    if unwritten is not None:
        return f"skip {unwritten}"
    low = history.acked_power if power_loss else history.acked_process
    later = history.later_operations(low)
    if any(op is None for op in later):
        return None  # a step without its operation: what it removed is unknown
    queues = json.loads(got)["queues"]
    for name, queue in history.models[low].queues.items():
        if any(isinstance(op, DeleteQueueOp) and op.queue == name for op in later):
            continue
        removed_up_to = max(
            (op.position for op in later if isinstance(op, TruncateOp) and op.queue == name), default=-1
        )
        if name not in queues:
            return f"skip lost queue {name!r}, acknowledged and never deleted"
        present = {(position, payload) for position, payload in queues[name]["records"]}
        for position, payload in queue.records:
            if position > removed_up_to and (position, payload.hex()) not in present:
                return f"skip lost the acknowledged record {name!r} at position {position}"
    return None


def _hole(got: str, history: History) -> str | None:
    """A queue whose records are no contiguous run of that queue's records in
    any state of the history: a hole, or a record never written. (A damaged
    log may recover an earlier moment, or lose its head as a collected log
    does, but never a queue with a gap.)"""
    runs = history.queue_runs()
    for name, queue in json.loads(got)["queues"].items():
        records = [(position, payload) for position, payload in queue["records"]]
        if records and not any(_is_run(records, run.get(name)) for run in runs):
            positions = [position for position, _ in records]
            return f"queue {name!r} recovered positions {positions}, no contiguous run of the queue in any state"
    return None


def _is_run(records: list[tuple[int, str]], full: list[tuple[int, str]] | None) -> bool:
    if not full or records[0] not in full:
        return False
    start = full.index(records[0])
    return full[start : start + len(records)] == records


def _frame_checksum(profile: str, frame_type: int, payload: bytes) -> int:
    data = bytes((frame_type,)) + payload
    return zlib.crc32(data) if profile == "crc32" else int(crc32c.crc32c(data))


def _valid_frame_type(content: bytes, start: int, profile: str, *, within: int | None = None) -> int | None:
    """The type of the checksum-valid frame at ``start`` of a file's content
    read as zero-filled, or None. ``start`` is a block start, or an offset in
    a block of ``within`` bytes (the frame must end inside it)."""
    header = content[start : start + _HEADER].ljust(_HEADER, b"\0")
    frame_type = header[6]
    length = header[4] | header[5] << 8
    room = BLOCK if within is None else within - start
    if header == bytes(_HEADER) or not 1 <= frame_type <= 4 or _HEADER + length > room:
        return None
    payload = content[start + _HEADER : start + _HEADER + length].ljust(length, b"\0")
    checksum = int.from_bytes(header[:4], "little")
    return frame_type if _frame_checksum(profile, frame_type, payload) == checksum else None


def _valid_frame_in_block(content: bytes, block_start: int, after: int, profile: str) -> int | None:
    """The offset of a checksum-valid frame that starts after ``after`` in the
    block at ``block_start``, looked for at every offset (frame boundaries are
    unknown after damage); None if there is none. Runs of zeros are skipped: a
    header holds a non-zero byte."""
    block = content[block_start : block_start + BLOCK].ljust(BLOCK, b"\0")
    position = after - block_start + 1
    while position <= BLOCK - _HEADER:
        found = _NON_ZERO.search(block, position)
        if found is None:
            return None
        for start in range(max(position, found.start() - _HEADER + 1), min(found.start(), BLOCK - _HEADER) + 1):
            if _valid_frame_type(block, start, profile, within=BLOCK) is not None:
                return block_start + start
        position = found.start() + 1
    return None


def _valid_frame_after_resume(files: dict[int, bytes], report: RecoveryReport, workload: Workload) -> str | None:
    """Strict opened: no checksum-valid frame may follow the place it resumes
    at, in the rest of its block (at any offset) or at the start of any later
    block. The Middle frames that follow a First frame at the resume point in
    consecutive blocks are the part of a torn record that reached the disk:
    they are not damage."""
    if report.resume_file is None or report.resume_offset is None:
        return None
    resume_file = _parse_wal_name(report.resume_file)
    if resume_file is None:
        return None
    offset = report.resume_offset
    blocks = workload.file_num_bytes // BLOCK
    resume_content = files.get(resume_file, b"")
    header = resume_content[offset : offset + _HEADER]
    torn_record = len(header) == _HEADER and header[6] == _FIRST
    found: tuple[int, int] | None = None
    if not torn_record and offset < workload.file_num_bytes:
        # (A First frame fills its block: the rest is its payload.)
        within = _valid_frame_in_block(resume_content, offset - offset % BLOCK, offset, workload.checksum)
        found = None if within is None else (resume_file, within)
    chain = torn_record
    previous = offset // BLOCK
    for number in sorted(n for n in files if n >= resume_file):
        if found is not None:
            break
        content = files[number]
        for block in range(offset // BLOCK + 1 if number == resume_file else 0, blocks):
            frame_type = _valid_frame_type(content, block * BLOCK, workload.checksum)
            index = (number - resume_file) * blocks + block
            if chain and frame_type == _MIDDLE and index == previous + 1:
                previous = index
                continue
            chain = False
            if frame_type is not None:
                found = (number, block * BLOCK)
                break
    if found is None:
        return None
    return (
        f"strict opened, resuming at {report.resume_file} offset {offset}, though a checksum-valid "
        f"frame follows at wal-{found[0]:020d} offset {found[1]}"
    )


# -- the continuation check ---------------------------------------------------------


def _model_of(state: str) -> Model:
    model = Model()
    for name, queue in json.loads(state)["queues"].items():
        records = [(position, bytes.fromhex(payload)) for position, payload in queue["records"]]
        model.queues[name] = QueueModel(queue["next_position"], records)
    return model


def continuation_operations(model: Model, retry: Operation | None, file_num_bytes: int, seed: int) -> list[Operation]:
    """The operations of the continuation check after recovering ``model``'s
    state: the retry of the first lost operation, an fsync and a reopen (if
    there is a lost operation: its record is byte for byte the lost one, so it
    ends exactly where stale frames after it would begin), then an append
    longer than a block (it crosses a block end), one longer than a file (the
    writer rolls), a truncate that evicts the first of them and everything
    before (GC may delete files), a small append, and an fsync."""
    rng = random.Random(seed)
    operations: list[Operation] = [] if retry is None else [retry, PersistOp(True), ReopenOp()]
    scratch = model.copy()
    if retry is not None:
        _apply(scratch, retry)
    names = sorted(scratch.queues)
    if names:
        queue = rng.choice(names)
    else:
        queue = "c"
        operations.append(CreateQueueOp(queue))
        _apply(scratch, operations[-1])
    first_new = scratch.queues[queue].next_position
    operations += [
        AppendOp(queue, None, (rng.randbytes(BLOCK + rng.randint(1, 2000)),)),
        AppendOp(queue, None, (rng.randbytes(file_num_bytes),)),
        TruncateOp(queue, first_new),
        AppendOp(queue, None, (b"after the truncate",)),
        PersistOp(True),
    ]
    return operations


def _at_last_file_name(log: MultiRecordLog, error: MRecordLogError) -> bool:
    """A refusal for want of file names, by a log near the last one (a record
    of a workload needs at most a few files)."""
    numbers = log.wal_file_numbers()
    return isinstance(error, FileNumbersExhausted) and bool(numbers) and numbers[-1] > MAX_FILE_NUMBER - 8


def _continue(
    log: MultiRecordLog, disk: SimulatedDisk, workload: Workload, history: History, got: str, mode: str, seed: int
) -> str | None:
    """The continuation check on a log just recovered (and still open) from
    ``disk``: run ``continuation_operations``, reopening in the same mode at
    each ``ReopenOp`` and at the end; each reopen must give the recovered
    state plus the operations so far. The violation's message, or None. An
    operation refused because the log reached the last file name counts as
    refused (it and the rest are not acknowledged)."""
    retry: Operation | None = None
    if history.knows(got):
        model, lost = history.after(got)
        lost_writes = [op for op in lost if isinstance(op, (AppendOp, TruncateOp))]
        retry = lost_writes[0] if lost_writes else None
    else:
        model = _model_of(got)
    operations = [*continuation_operations(model, retry, workload.file_num_bytes, seed), ReopenOp()]
    expected = [_snapshot(model)]
    done: list[str] = []
    refused = False
    current: MultiRecordLog | None = log
    try:
        for operation in operations:
            name = op_name(operation)
            if isinstance(operation, ReopenOp):
                assert current is not None
                current.close()
                current = None
                try:
                    current = MultiRecordLog.open(
                        LOG_DIR, storage=disk, recovery=mode, file_num_bytes=workload.file_num_bytes
                    )
                except Exception as exc:
                    return f"continuation after {mode} recovery: reopening failed: {type(exc).__name__}: {exc}"
                state = _snapshot(current)
                if state not in expected:
                    return (
                        f"continuation after {mode} recovery: after {', '.join(done)} and a reopen, the log holds "
                        f"{_describe(state)}, not the recovered state plus those operations "
                        f"({' or '.join(_describe(s) for s in expected)})"
                    )
                expected = [state]
                continue
            if refused:
                continue  # the log may be fail-stopped: only the reopens remain
            assert current is not None
            before = expected[0]
            error = _apply(model, operation)
            done.append(name)
            try:
                execute(current, operation)
            except MRecordLogError as exc:
                if error == exc.kind:
                    continue
                if error is None and _at_last_file_name(current, exc):
                    # The roll past the last file name was refused: the operation
                    # may have left a torn record, never one a replay applies.
                    expected = [before, _snapshot(model)]
                    refused = True
                    continue
                return f"continuation after {mode} recovery: {name} raised {type(exc).__name__}: {exc}"
            if error is not None:
                return f"continuation after {mode} recovery: {name} succeeded, the model answers {error}"
            expected = [_snapshot(model)]
    finally:
        if current is not None and current is not log:
            current.close()
    return None


# A state to compare without encoding payloads: queue -> (next position, records).
Snapshot = dict[str, tuple[int, list[tuple[int, bytes]]]]


def _snapshot(source: Model | MultiRecordLog) -> Snapshot:
    if isinstance(source, Model):
        return {name: (queue.next_position, list(queue.records)) for name, queue in source.queues.items()}
    return {
        name: (queue.next_position, [(record.position, bytes(record.payload)) for record in queue.records])
        for name, queue in source.state().queues.items()
    }


def _describe(snapshot: Snapshot) -> str:
    return (
        "{" + ", ".join(f"{name}: {[p for p, _ in records]}" for name, (_, records) in sorted(snapshot.items())) + "}"
    )


def _apply(model: Model, operation: Operation) -> str | None:
    """``Model.apply`` without the JSON round trip of the payloads: the error
    kind the model answers, or None."""
    try:
        if isinstance(operation, CreateQueueOp):
            model.create_queue(operation.queue)
        elif isinstance(operation, DeleteQueueOp):
            model.delete_queue(operation.queue)
        elif isinstance(operation, AppendOp):
            model.append(operation.queue, list(operation.payloads), operation.position)
        elif isinstance(operation, TruncateOp):
            model.truncate(operation.queue, operation.position)
    except ModelError as exc:
        return exc.kind
    return None


def retry_violation(workload: Workload, crashed: SimulatedDisk, history: History, got: str) -> str | None:
    """The continuation check (seed 0, point_in_time) on an image already
    recovered into ``got`` and closed: reopen it and continue."""
    try:
        log = MultiRecordLog.open(LOG_DIR, storage=crashed, file_num_bytes=workload.file_num_bytes)
    except Exception as exc:
        return f"retry after recovery failed: {type(exc).__name__}: {exc}"
    try:
        return _continue(log, crashed, workload, history, got, "point_in_time", 0)
    finally:
        log.close()


# -- running a workload -------------------------------------------------------------


@dataclass
class Violation:
    kind: str
    message: str
    reproducer: dict[str, Any]
    # Images checked when it was found (this one included).
    found_after: int = 0


@dataclass
class CampaignReport:
    seed: int
    images_checked: int = 0
    by_fault: Counter[str] = field(default_factory=Counter)
    by_mode: Counter[str] = field(default_factory=Counter)
    # Accepted refusals of hostile images (and strict ones of reordered
    # crash images), as "kind/mode/Error".
    refusals: Counter[str] = field(default_factory=Counter)
    continuations: int = 0
    violations: list[Violation] = field(default_factory=list)
    workloads: int = 0
    seconds: float = 0.0
    # The shards run (``K/N``, a merged report lists several) and the processes.
    shards: list[str] = field(default_factory=lambda: ["1/1"])
    workers: int = 1

    def to_json_value(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "shards": list(self.shards),
            "workers": self.workers,
            "images_checked": self.images_checked,
            "violations": len(self.violations),
            "violation_details": [
                {"kind": v.kind, "message": v.message, "found_after": v.found_after} for v in self.violations
            ],
            "by_fault": {kind: self.by_fault.get(kind, 0) for kind in FAULT_KINDS},
            "by_mode": {mode: self.by_mode.get(mode, 0) for mode in MODES},
            "refusals": dict(sorted(self.refusals.items())),
            "continuations": self.continuations,
            "workloads": self.workloads,
            "seconds": round(self.seconds, 3),
            "images_per_minute": round(60 * self.images_checked / self.seconds) if self.seconds else 0,
        }

    @classmethod
    def from_json_value(cls, value: dict[str, Any]) -> CampaignReport:
        """The report of a ``--json`` object (violations without their reproducers)."""
        return cls(
            int(value["seed"]),
            images_checked=int(value["images_checked"]),
            by_fault=Counter({kind: int(count) for kind, count in value["by_fault"].items() if count}),
            by_mode=Counter({mode: int(count) for mode, count in value["by_mode"].items() if count}),
            refusals=Counter({name: int(count) for name, count in value.get("refusals", {}).items()}),
            continuations=int(value.get("continuations", 0)),
            violations=[
                Violation(str(d["kind"]), str(d["message"]), {}, int(d.get("found_after", 0)))
                for d in value["violation_details"]
            ],
            workloads=int(value["workloads"]),
            seconds=float(value["seconds"]),
            shards=[str(shard) for shard in value.get("shards", ["1/1"])],
            workers=int(value.get("workers", 1)),
        )

    @classmethod
    def merge(cls, reports: Sequence[CampaignReport], *, max_violations: int = MAX_VIOLATIONS) -> CampaignReport:
        """One report of several runs of the same seed (workers or shards):
        counts summed, the shards listed, the violations in workload order up
        to ``max_violations``, the longest ``seconds`` (the caller sets the
        wall time of runs it timed)."""
        if not reports:
            raise ValueError("no report to merge")
        merged = cls(reports[0].seed, shards=merge_shards(r.shards for r in reports), workers=0)
        for report in reports:
            merged.images_checked += report.images_checked
            merged.by_fault.update(report.by_fault)
            merged.by_mode.update(report.by_mode)
            merged.refusals.update(report.refusals)
            merged.continuations += report.continuations
            merged.violations.extend(report.violations)
            merged.workloads += report.workloads
            merged.seconds = max(merged.seconds, report.seconds)
            merged.workers += report.workers
        # A workload runs in one process: sorting by its seed (stable) gives
        # the order of a single process.
        merged.violations.sort(key=lambda v: int(v.reproducer.get("workload", {}).get("seed", -1)))
        del merged.violations[max_violations:]
        return merged


CaptureHook = Callable[[SimulatedDisk, History, int], None]


def run_workload(
    workload: Workload,
    capture: CaptureHook,
    *,
    check_answers: bool = True,
    on_armed: Callable[[SimulatedDisk], None] | None = None,
) -> tuple[SimulatedDisk, History]:
    """Run a workload; call ``capture(disk, history, point)`` before every mutating
    storage call (``point`` counts them from 0) and once at the end."""
    disk = SimulatedDisk()
    if workload.first_file_number is not None:
        # A log near the end of the file numbering: one all-zero file, durable
        # before the first open, as if earlier files had all been collected.
        disk.make_dirs(LOG_DIR)
        disk.tamper_set_content(wal_path(workload.first_file_number), bytes(workload.file_num_bytes))
    history = History()
    point = 0

    def before_call(kind: str) -> None:
        nonlocal point
        if kind in MUTATING_CALLS:
            capture(disk, history, point)
            point += 1

    disk.before_call = before_call
    policy = policy_of(workload.policy)
    log = MultiRecordLog.open(
        LOG_DIR, storage=disk, persist_policy=policy, file_num_bytes=workload.file_num_bytes, checksum=workload.checksum
    )
    _arm_fault(disk, workload)
    if on_armed is not None:
        on_armed(disk)
    flushes = workload.policy != "do_nothing"
    fsyncs = workload.policy == "always_fsync"
    try:
        for operation in workload.operations:
            expected = history.begin(operation)
            removals = disk.calls_by_kind["remove_file"]
            try:
                execute(log, operation)
            except (LogFailed, StorageError) as exc:
                if check_answers and not disk.faults_injected:
                    raise AssertionError(
                        f"{operation_to_json(operation)['op']}: the log failed though no fault was injected: {exc}"
                    ) from exc
                # A failed call changes nothing in memory, whatever reached the disk.
                _check_memory_unchanged(log, history, operation, check_answers)
                succeeded = history.issued
                history.settle(applied=False)  # maybe on disk, never acknowledged
                history.fault_struck = True
                _close_failed_log(log, history, succeeded, fsyncs=fsyncs)
                break
            except MRecordLogError as exc:
                if check_answers and expected.get("error") != exc.kind:
                    if expected["ok"] and _at_last_file_name(log, exc):
                        # The log cannot roll past the last file name: a
                        # refused operation, acknowledged by nobody, that
                        # leaves the log as usable as before.
                        _check_memory_unchanged(log, history, operation, check_answers)
                        if log.failed is not None:
                            raise AssertionError(
                                f"{operation_to_json(operation)['op']}: refused at the last file name "
                                f"({exc}), and the refusal fail-stopped the log"
                            ) from exc
                        history.refuse()
                        continue
                    raise AssertionError(
                        f"{operation_to_json(operation)}: the core raised {exc.kind}, the model answered {expected}"
                    ) from exc
                history.settle(applied=False)
                continue
            if check_answers and not expected["ok"]:
                raise AssertionError(
                    f"{operation_to_json(operation)}: the core succeeded, the model answered {expected}"
                )
            history.settle(applied=True)
            critical = expected["op"] in ("create_queue", "delete_queue")
            gc_ran = disk.calls_by_kind["remove_file"] > removals
            if isinstance(operation, PersistOp):
                history.acknowledge(process=True, power=operation.fsync)
            else:
                history.acknowledge(process=flushes or critical, power=fsyncs or critical or gc_ran)
        else:
            try:
                log.close()
            except StorageError:
                history.fault_struck = True
            else:
                history.acknowledge(process=True, power=fsyncs)
    finally:
        if not log.closed:  # an exception escaped: release the files
            with contextlib.suppress(MRecordLogError):
                log.close()
        capture(disk, history, point)
        disk.before_call = None
    return disk, history


def _close_failed_log(log: MultiRecordLog, history: History, succeeded: int, *, fsyncs: bool) -> None:
    """Close a log an injected fault fail-stopped, as its user would.

    ``close`` persists per the policy's action; on a fail-stopped log it can
    persist nothing, so returning normally promises that nothing it would have
    persisted is missing: every operation that succeeded before the failure
    is then acknowledged, as a normal close acknowledges them (the failed one
    is not: its effect on disk is unknown)."""
    try:
        log.close()
    except (LogFailed, StorageError):
        return
    history.acked_process = max(history.acked_process, succeeded)
    if fsyncs:
        history.acked_power = max(history.acked_power, succeeded)


def _check_memory_unchanged(log: MultiRecordLog, history: History, operation: Operation, check: bool) -> None:
    if check and log.state().to_canonical_json() != history.states[-1]:
        raise AssertionError(f"{operation_to_json(operation)['op']} failed but changed the log's memory")


def aim_fault(workload: Workload) -> Workload:
    """The workload with its I/O error or fsync error placed on a storage call
    it really makes: a call index drawn (from the workload's seed) among the
    calls of a fault-free run after the open, or among its fsyncs.

    A fixed range would leave most faults past the end of short or quiet
    workloads (a ``do_nothing`` log makes few calls), so the failures of a
    flush carrying earlier operations' bytes would hardly ever be tried.
    Deterministic, so aiming an aimed workload changes nothing."""
    if workload.fault not in ("io_error", "fsync_eio"):
        return workload
    armed: list[tuple[int, int]] = []

    def note_armed(disk: SimulatedDisk) -> None:
        armed.append((disk.call_count, disk.calls_by_kind["sync"]))

    probe = replace(workload, fault="none", fault_after=0)
    disk, _ = run_workload(probe, lambda *_: None, check_answers=False, on_armed=note_armed)
    calls, syncs = armed[0]
    available = disk.call_count - calls if workload.fault == "io_error" else disk.calls_by_kind["sync"] - syncs
    if available <= 0:
        return workload
    return replace(workload, fault_after=random.Random(workload.seed ^ 0xFA17).randint(1, available))


def _arm_fault(disk: SimulatedDisk, workload: Workload) -> None:
    if workload.fault == "fsync_eio":
        disk.fault_plan = FaultPlan(fsync_eio_at=disk.calls_by_kind["sync"] + workload.fault_after)
    elif workload.fault == "io_error":
        disk.fault_plan = FaultPlan(fail_at_call=disk.call_count + workload.fault_after)
    elif workload.fault == "enospc":
        used = sum(len(data) for data in disk.visible_files().values())
        disk.fault_plan = FaultPlan(capacity_bytes=used + workload.fault_after)


def recover(image: SimulatedDisk, workload: Workload, *, recovery: str = "point_in_time") -> str:
    """Open a crash image as the workload's next run would, and read its state."""
    with MultiRecordLog.open(LOG_DIR, storage=image, recovery=recovery, file_num_bytes=workload.file_num_bytes) as log:
        return log.state().to_canonical_json()


# -- the campaign ------------------------------------------------------------------


def _reproducer(workload: Workload, point: int, image: Image) -> dict[str, Any]:
    return {"workload": workload.to_json_value(), "point": point, "image": image.to_json_value()}


class Campaign:
    """Runs seeded workloads until the budget is spent, checking crash images.

    ``kinds`` lists the optional kinds (``OPTIONAL_KINDS``) to generate: the
    others come with every workload. Images are recovered in ``modes``; the
    continuation check runs on ``continuation_share`` of the images of the
    optional kinds and a quarter of that share of the others (it costs as much
    as three recoveries, and the optional kinds are where it finds most), and
    a hostile image is added at ``hostile_share`` of the crash points.

    The workloads are those of seed indices 0, 1, 2, ... (the workload seed
    ``seed * 1_000_003 + index``) that ``part`` owns (a shard and a worker,
    ``oracle.driver``), in increasing order, below ``max_workloads`` if set,
    until the budget is spent, ``max_violations`` are found or ``stop()``
    says so. A workload depends only on its seed.
    """

    def __init__(
        self,
        seed: int,
        budget_seconds: float,
        *,
        images_per_point: int = 3,
        progress: Callable[[CampaignReport, float], None] | None = None,
        max_violations: int = MAX_VIOLATIONS,
        kinds: Collection[str] = FAULT_KINDS,
        modes: Sequence[str] = MODES,
        continuation_share: float = 0.4,
        hostile_share: float = 0.3,
        max_workloads: int | None = None,
        part: Part = WHOLE,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        unknown = (set(kinds) - set(FAULT_KINDS)) | (set(modes) - set(MODES))
        if unknown or not modes:
            raise ValueError(f"unknown fault kinds or recovery modes: {sorted(unknown)}")
        self.seed = seed
        self.budget = budget_seconds
        self.images_per_point = images_per_point
        self.progress = progress
        self.max_violations = max_violations
        self.kinds = frozenset(kinds)
        self.modes = tuple(modes)
        self._mode_weights = [_MODE_WEIGHTS[mode] for mode in self.modes]
        self._hostile_mode_weights = [_HOSTILE_MODE_WEIGHTS[mode] for mode in self.modes]
        self.continuation_share = continuation_share
        self.hostile_share = hostile_share
        self._hostile = [kind for kind in HOSTILE_KINDS if kind in self.kinds]
        self.max_workloads = max_workloads
        self.part = part
        self.stop = stop
        self.report = CampaignReport(seed, shards=[part.label])

    def run(self) -> CampaignReport:
        started = time.perf_counter()
        deadline = started + self.budget
        last_progress = 0.0
        for index in self.part.indices(self.max_workloads):
            if time.perf_counter() >= deadline or len(self.report.violations) >= self.max_violations:
                break
            if self.stop is not None and self.stop():
                break
            workload_seed = self.seed * 1_000_003 + index
            workload = generate_workload(workload_seed, shape=self.shape_for(workload_seed))
            self.run_one(workload)
            now = time.perf_counter()
            self.report.seconds = now - started
            if self.progress is not None and now - last_progress > 0.2:
                self.progress(self.report, min(1.0, (now - started) / self.budget))
                last_progress = now
        self.report.seconds = time.perf_counter() - started
        return self.report

    def shape_for(self, workload_seed: int) -> str:
        """The workload shape of a seed: one in eight multiblock, one in ten
        near the last file number (when those kinds are on)."""
        roll = random.Random(workload_seed ^ 0x5EA5).random()
        if roll < 0.125 and "torn_multiblock" in self.kinds:
            return "multiblock"
        if roll > 0.9 and "high_file_numbers" in self.kinds:
            return "high_file_numbers"
        return "plain"

    def run_one(self, workload: Workload) -> None:
        workload = aim_fault(workload)
        self.report.workloads += 1
        rng = random.Random(workload.seed)

        def capture(disk: SimulatedDisk, history: History, point: int) -> None:
            fault_kind = self._fault_kind(history, workload)
            counted = fault_kind or ("high_file_numbers" if workload.first_file_number is not None else None)
            # After a fault only the final capture remains: take more images there.
            power_losses = (self.images_per_point - 1) * (6 if fault_kind else 1)
            pending = disk.pending()
            images = [Image(counted or "process_crash", False, None)]
            for _ in range(power_losses):
                images.append(Image(counted or "power_loss", True, random_choices(pending, rng, tear_probability=0.0)))
            torn = torn_choices(disk, rng)
            if torn is not None:
                images.append(Image(counted or "torn_write", True, torn))
            dropped = _dir_op_drops(disk, rng)
            if dropped is not None:
                images.append(Image(counted or "lost_dir_entry", True, dropped))
            if "torn_multiblock" in self.kinds:
                boundaries = spanning_boundaries(pending)
                for index, kept in rng.sample(boundaries, min(len(boundaries), 2)):
                    how = rng.choice(TORN_AT_BOUNDARY)
                    choices = boundary_choices(pending, index, kept, how, rng.getrandbits(32))
                    images.append(Image("torn_multiblock", True, choices))
            if self._hostile and rng.random() < self.hostile_share:
                hostile = hostile_image(rng.choice(self._hostile), workload, disk, rng)
                if hostile is not None:
                    images.append(hostile)
            for image in images:
                weights = self._hostile_mode_weights if image.tamper else self._mode_weights
                mode = rng.choices(self.modes, weights)[0]
                share = self.continuation_share * (1.0 if image.kind in OPTIONAL_KINDS else 0.25)
                continuation = rng.getrandbits(32) if rng.random() < share else None
                self._check(workload, disk, history, point, replace(image, mode=mode, continuation=continuation))

        try:
            disk, history = run_workload(workload, capture)
        except AssertionError as exc:
            self._violation("behaviour", str(exc), {"workload": workload.to_json_value()})
            return
        self._check_bit_flip(workload, disk, history, rng)
        self._check_crash_during_recovery(workload, disk, history, rng)
        if workload.seed % 10 == 0:
            self._check_on_the_real_file_system(workload, disk, history)

    def _fault_kind(self, history: History, workload: Workload) -> str | None:
        """Images taken once the workload's fault struck count for that fault."""
        return workload.fault if history.fault_struck and workload.fault != "none" else None

    def _count(self, kind: str, mode: str = "point_in_time") -> None:
        self.report.images_checked += 1
        self.report.by_fault[kind] += 1
        self.report.by_mode[mode] += 1

    def _violation(self, kind: str, message: str, reproducer: dict[str, Any]) -> None:
        self.report.violations.append(
            Violation(kind, message, {"kind": kind, "message": message, **reproducer}, self.report.images_checked)
        )

    def _check(self, workload: Workload, disk: SimulatedDisk, history: History, point: int, image: Image) -> None:
        judgement = judge(workload, disk, history, image)
        self._count(image.kind, image.mode)
        if image.continuation is not None:
            self.report.continuations += 1
        if judgement.refused_with is not None:
            self.report.refusals[f"{image.kind}/{image.mode}/{judgement.refused_with}"] += 1
        if judgement.message is not None:
            self._violation(image.kind, judgement.message, _reproducer(workload, point, image))

    def _check_bit_flip(self, workload: Workload, disk: SimulatedDisk, history: History, rng: random.Random) -> None:
        """Flip one bit of durable data. No recovery can match the model then
        (the state rebuilt from files that GC trimmed is exact only at their
        end), but in every mode: no record with a payload other than the one
        written at that position, and damage reported whenever the flip changed
        what recovery returns."""
        image = process_crash_image(disk)
        files = {path: data for path, data in image.visible_files(LOG_DIR).items() if "/wal-" in path}
        candidates = [(path, len(data.rstrip(b"\0"))) for path, data in files.items() if data.rstrip(b"\0")]
        if not candidates:
            return
        unflipped = recover(process_crash_image(image), workload)
        path, end = rng.choice(candidates)
        offset = rng.randrange(end)
        image.flip_bit(path, offset, rng.randrange(8))
        reproducer = {"workload": workload.to_json_value(), "bit_flip": {"path": path, "offset": offset}}
        known = history.written_records()
        self._count("bit_flip")
        for mode in ("skip", "strict", "point_in_time"):
            try:
                if mode == "point_in_time":
                    with MultiRecordLog.open(LOG_DIR, storage=image, file_num_bytes=workload.file_num_bytes) as log:
                        state, report = log.state(), log.recovery_report
                else:
                    inspection = inspect_log(LOG_DIR, storage=image, recovery=mode)
                    state, report = inspection.state, inspection.report
            except CorruptionError:
                continue  # strict refuses corruption in the middle; skip an inconsistent append
            for name, queue in state.queues.items():
                for record in queue.records:
                    if (name, record.position, record.payload.hex()) not in known:
                        self._violation(
                            "bit_flip", f"{mode} returned a wrong payload at {name!r}:{record.position}", reproducer
                        )
                        return
            if state.to_canonical_json() != unflipped and report.clean:
                self._violation("bit_flip", f"{mode} lost records and reported no damage", reproducer)
                return

    def _check_crash_during_recovery(
        self, workload: Workload, disk: SimulatedDisk, history: History, rng: random.Random
    ) -> None:
        """Crash a recovery (in one of the modes) at one of its own writes;
        recovering that in the same mode must still give what the mode
        promises after a power loss."""
        mode = rng.choices(self.modes, self._mode_weights)[0]
        first = power_loss_image(disk, random_choices(disk.pending(), rng, tear_probability=0.1))
        calls: list[SimulatedDisk] = []
        stop_at = rng.randrange(1, 12)
        reproducer = {"workload": workload.to_json_value()}

        def before_call(kind: str) -> None:
            if kind in MUTATING_CALLS:
                calls.append(power_loss_image(first, random_choices(first.pending(), rng, tear_probability=0.1)))
                if len(calls) == stop_at:
                    raise CrashDuringRecovery

        first.before_call = before_call
        try:
            recover(first, workload, recovery=mode)
        except CrashDuringRecovery:
            pass
        except CorruptionError:
            if mode != "strict":
                self._violation("crash_during_recovery", f"{mode} recovery failed: refused", reproducer)
            return  # strict refused before writing anything: no recovery to crash
        except Exception as exc:
            self._violation("crash_during_recovery", f"{mode} recovery failed: {exc}", reproducer)
            return
        first.before_call = None
        for crashed in calls[-2:]:
            self._count("crash_during_recovery", mode)
            try:
                got = recover(crashed, workload, recovery=mode)
            except CorruptionError as exc:
                if mode == "strict":
                    continue
                self._violation("crash_during_recovery", f"second {mode} recovery failed: {exc}", reproducer)
                return
            except Exception as exc:
                self._violation("crash_during_recovery", f"second {mode} recovery failed: {exc}", reproducer)
                return
            message = _judge_crash_state(mode, got, history, power_loss=True, ordered=False)
            if message is not None:
                self._violation("crash_during_recovery", message, reproducer)
                return

    def _check_on_the_real_file_system(self, workload: Workload, disk: SimulatedDisk, history: History) -> None:
        rng = random.Random(workload.seed ^ 0x5EED)
        image = power_loss_image(disk, random_choices(disk.pending(), rng, tear_probability=0.2))
        expected = recover(process_crash_image(image), workload)
        with tempfile.TemporaryDirectory(prefix="mrecordlog-crashcheck-") as root:
            materialize(image, root, root=LOG_DIR)
            with MultiRecordLog.open(root, file_num_bytes=workload.file_num_bytes) as log:
                got = log.state().to_canonical_json()
        self._count("os_storage")
        if got != expected:
            self._violation(
                "os_storage",
                "the production OS storage recovered another state than the simulated disk",
                {"workload": workload.to_json_value()},
            )


def _not_allowed(got: str, history: History, allowed: set[str]) -> str:
    known = [index for index, state in enumerate(history.states) if state == got]
    where = f"the state after {known[-1]} operation(s)" if known else "a state no prefix of the operations has"
    return (
        f"recovered {where}; allowed: prefixes {history.acked_process}..{history.issued} (process crash) / "
        f"{history.acked_power}..{history.issued} (power loss); got {got.strip()[:200]}"
    )


@dataclass
class ExhaustiveReport:
    crash_points: int = 0
    images_checked: int = 0
    violations: list[Violation] = field(default_factory=list)


def exhaustive_check(workload: Workload, *, max_images_per_point: int, tear_variants: bool) -> ExhaustiveReport:
    """Every crash point of the workload, and at each one every combination of
    kept, dropped (and torn) unsynced operations, up to ``max_images_per_point``
    (``enumerate_choices`` order: all kept, all dropped, in-order prefixes, then
    the rest), plus the process crash."""
    report = ExhaustiveReport()

    def capture(disk: SimulatedDisk, history: History, point: int) -> None:
        report.crash_points += 1
        images = [Image("process_crash", False, None)]
        images.extend(
            Image("power_loss", True, choices)
            for choices in enumerate_choices(
                disk.pending(), max_images=max_images_per_point, tear_variants=tear_variants
            )
        )
        for image in images:
            allowed = history.allowed(power_loss=image.power_loss)
            report.images_checked += 1
            try:
                got = recover(image.build(disk), workload)
            except Exception as exc:
                message = f"recovery failed: {type(exc).__name__}: {exc}"
            else:
                if got in allowed:
                    continue
                message = _not_allowed(got, history, allowed)
            reproducer = _reproducer(workload, point, image)
            report.violations.append(Violation(image.kind, message, {"kind": image.kind, **reproducer}))

    run_workload(workload, capture)
    return report


def replay_reproducer(reproducer: dict[str, Any]) -> str | None:
    """Run a reproducer again; the violation message, or None if it passes now."""
    workload = Workload.from_json_value(reproducer["workload"])
    image_spec = reproducer.get("image")
    if image_spec is None:
        campaign = Campaign(seed=0, budget_seconds=0)
        campaign.run_one(workload)
        return campaign.report.violations[0].message if campaign.report.violations else None
    image = Image.from_json_value(image_spec, violation_kind=reproducer.get("kind"))
    found: list[str] = []

    def capture(disk: SimulatedDisk, history: History, point: int) -> None:
        if point == reproducer["point"]:
            message = judge_image(workload, disk, history, image)
            if message is not None:
                found.append(message)

    run_workload(workload, capture)
    return found[0] if found else None


def iter_report_lines(report: CampaignReport) -> Iterator[str]:
    value = report.to_json_value()
    yield (
        f"seed {report.seed}{describe_scale(report.shards, report.workers)}: {report.workloads} workloads, "
        f"{report.images_checked} crash images in {report.seconds:.1f} s"
    )
    yield f"({value['images_per_minute']} images per minute; {report.continuations} continuation checks)"
    yield ""
    yield f"{'fault kind':<24}{'images':>10}"
    for kind in FAULT_KINDS:
        yield f"{kind:<24}{report.by_fault.get(kind, 0):>10}"
    yield ""
    yield f"{'recovery mode':<24}{'images':>10}"
    for mode in MODES:
        yield f"{mode:<24}{report.by_mode.get(mode, 0):>10}"
    yield f"{'violations':<24}{len(report.violations):>10}"
    for violation in report.violations:
        yield f"  {violation.kind}: {violation.message}"


def write_reproducer(violation: Violation, path: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(violation.reproducer, handle, indent=1, sort_keys=True)
        handle.write("\n")


# -- scaling out: worker processes ---------------------------------------------------


def run_campaign(
    seed: int,
    budget_seconds: float,
    *,
    workers: int = 1,
    part: Part = WHOLE,
    max_workloads: int | None = None,
    progress: Callable[[CampaignReport, float], None] | None = None,
    initializer: Callable[[], None] | None = None,
    **options: Any,
) -> CampaignReport:
    """The crash campaign over the shard of ``part``, in ``workers``
    processes (``driver.run_campaign_in_workers``); the workers stop together
    once ``max_violations`` are found. ``options`` are ``Campaign``'s keyword
    arguments."""
    max_violations = int(options.get("max_violations", MAX_VIOLATIONS))

    def merge(reports: Sequence[CampaignReport]) -> CampaignReport:
        return CampaignReport.merge(reports, max_violations=max_violations)

    return run_campaign_in_workers(
        Campaign,
        seed,
        budget_seconds,
        workers=workers,
        part=part,
        max_workloads=max_workloads,
        progress=progress,
        initializer=initializer,
        options=options,
        merge=merge,
        cases_done=lambda report: report.workloads,
        stop_when=lambda report: len(report.violations) >= max_violations,
    )
