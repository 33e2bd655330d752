"""The reader fuzz campaign: hostile directories must be recovered safely.

Base images are real logs: seeded workloads (the crash campaign's, grown with
records over three blocks and with files rolled and collected by GC) run on a
``SimulatedDisk``, both checksum profiles, files of 1 to 8 blocks, final state.
Each is damaged by the catalogue of ``mrecordlog.fault_injection.mutations``,
sampled by name. Every mutated image is inspected read-only and opened
writable in every recovery mode, each on its own copy, and these promises are
checked; each broken one is a violation kind:

- ``untyped_error``: the only errors are this package's (``MRecordLogError``
  subclasses): never MemoryError, TypeError, AssertionError, OSError, ...
- ``hang``: every open, inspection and continuation ends within
  ``CALL_SECONDS`` (an interval timer; main thread only).
- ``memory``: on sampled images, the peak of traced allocations during the
  open stays under ``MEMORY_FACTOR`` x the recovered payload bytes +
  ``MEMORY_SLACK`` (4 x + 16 MiB).
- ``read_only_changed``: ``inspect_log`` changes no file, entry or directory
  and makes no mutating storage call.
- ``not_a_prefix``: ``point_in_time`` (and ``strict`` when it opens) returns
  the state of a prefix of the records of the unmutated versions of the files
  still in the directory, as the independent reader
  (``oracle.spec_reader``) replays them.
- ``wrong_payload``: in every mode, every record returned is one the workload
  wrote, at that position.
- ``inspect_differs``: ``inspect_log`` shows the state the writable open
  of the same mode recovers.
- ``strict_accepted_damage``: when ``strict`` opens, no checksum-valid frame
  follows the end it recovered (in the rest of its block, at any offset, or
  in the frame chain of a later block or file).
- ``strict_refusal_changed``: a ``strict`` refusal (``CorruptionError``)
  changes nothing on disk.
- ``not_idempotent``: a second writable open (same mode) recovers the same
  state; for ``point_in_time`` and ``strict`` it reports no damage.
- ``not_quarantined``: every non-zero byte a writable open took out of the
  log (tails zeroed, bytes cut, files moved out, files holding reported
  damage that disappeared) is in a file under ``quarantine/recovery-N/``,
  which holds a ``report.json``; an earlier quarantine stays as it was.
- ``lost_after_recovery``: after the open, records appended (one across a
  block end, one that rolls into a new file), fsynced and reopened come back
  exactly, after the recovered state.
- ``base_image``: the unmutated log is not what the model and the
  independent reader say (a bug in the writer or the reader, not the fuzzer).

Mutations that transplant intact frames (``TRANSPLANTING``: swapped and
duplicated blocks) are outside the fault model: the 0.5 format has no
record-level checksum (spec/DURABILITY.md, section 6), so a record spliced
from intact frames of the same sizes is valid to every reader. For them
``not_a_prefix``, ``wrong_payload`` and ``strict_accepted_damage`` are not
checked; every other promise is.

One more image runs on the real file system (``OsStorage`` in a temporary
directory, via ``materialize``): ``sparse_far_byte``, a stray byte 1 to 4 GiB
past a file's data in a sparse file, under an address-space limit of
``SPARSE_HEADROOM`` above the process's size, so that an unbounded
allocation fails fast with MemoryError instead of taking the machine.

Each violation is written as a reproducer (the workload, the mutation's name
and seed, the mode) that ``replay_reproducer`` runs again.
"""

from __future__ import annotations

import errno
import json
import os
import posixpath
import random
import re
import resource
import shutil
import signal
import stat
import tempfile
import threading
import time
import traceback
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from types import FrameType
from typing import Any, Final, Protocol, TypeVar

from mrecordlog import RecoveryReport
from mrecordlog._storage import OsStorage, Storage
from mrecordlog.errors import CorruptionError, LogFailed, MRecordLogError, StorageError
from mrecordlog.fault_injection import SimulatedDisk, materialize, process_crash_image
from mrecordlog.fault_injection.mutations import MUTATIONS, TRANSPLANTING, mutate, plant_sparse_byte
from mrecordlog.inspection import Inspection, LogState, QueueState, inspect_log
from mrecordlog.interchange import AppendOp, CreateQueueOp, Operation, TruncateOp
from mrecordlog.log import MultiRecordLog
from mrecordlog.oracle import spec_reader
from mrecordlog.oracle.crashcheck import LOG_DIR, History, run_workload
from mrecordlog.oracle.driver import WHOLE, Part, describe_scale, merge_shards, read_json_file, run_campaign_in_workers
from mrecordlog.oracle.workloads import BLOCK, Workload, generate_workload
from mrecordlog.outcomes import Record

MODES: Final = ("point_in_time", "strict", "skip")
CALL_SECONDS: Final = 10.0
MEMORY_FACTOR: Final = 4
MEMORY_SLACK: Final = 16 << 20
MEMORY_BOUND: Final = "4 x the recovered payload bytes + 16 MiB"
SPARSE_HEADROOM: Final = 512 << 20
SPARSE: Final = "sparse_far_byte"
BASE: Final = "(base log)"  # the mutation of a base_image violation: none
VIOLATION_KINDS: Final = (
    "untyped_error",
    "hang",
    "memory",
    "read_only_changed",
    "not_a_prefix",
    "wrong_payload",
    "strict_accepted_damage",
    "strict_refusal_changed",
    "not_idempotent",
    "not_quarantined",
    "lost_after_recovery",
    "inspect_differs",
    "base_image",
)
# Not a violation: quarantined bytes found by content under another name
# than their file's (the report says where).
QUARANTINED_ELSEWHERE: Final = "quarantined_elsewhere"
MUTATING_CALLS: Final = (
    "write_at",
    "sync",
    "create_file",
    "remove_file",
    "rename",
    "sync_dir",
    "truncate",
    "make_dirs",
)
CONTINUATION_QUEUE: Final = "fuzz-continuation"
QUARANTINE: Final = "quarantine"
REPRODUCER_FORMAT: Final = "mrecordlog-fuzz-reproducer/1"
_WAL_NAME: Final = re.compile(r"wal-\d{20}")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    mode: str
    message: str


# -- base images ---------------------------------------------------------------------


def fuzz_workload(seed: int) -> Workload:
    """The crash campaign's workload for ``seed`` without an injected fault,
    with files of 1 to 8 blocks, sometimes a record over three blocks or more,
    sometimes a queue filled first and truncated last so that GC collects
    the first files."""
    workload = generate_workload(seed, fault="none")
    rng = random.Random(seed ^ 0xF0221)
    operations: list[Operation] = list(workload.operations)
    if rng.random() < 0.4:
        count = rng.randint(2, 4)
        payloads = tuple(rng.randbytes(rng.choice((3000, 20000, 40000))) for _ in range(count))
        operations = [CreateQueueOp("gc"), AppendOp("gc", None, payloads), *operations, TruncateOp("gc", count - 1)]
    if rng.random() < 0.4:
        big = rng.randbytes(rng.randint(2 * BLOCK, 3 * BLOCK + 5000))
        at = rng.randint(0, len(operations))
        operations[at:at] = [CreateQueueOp("big"), AppendOp("big", None, (big,))]
    return replace(workload, operations=tuple(operations), file_num_bytes=rng.choice((1, 1, 2, 2, 3, 3, 4, 8)) * BLOCK)


def _known_records(history: History) -> frozenset[tuple[str, int, bytes]]:
    return frozenset(
        (name, position, payload)
        for model in history.models
        for name, queue in model.queues.items()
        for position, payload in queue.records
    )


class BaseImage:
    """A clean log written by the library, what the workload wrote, and the
    prefix states of its files (cached by the set of files kept)."""

    def __init__(self, workload: Workload, image: SimulatedDisk, history: History) -> None:
        self.workload = workload
        self.image = image
        self.profile = workload.checksum
        self.originals = {
            posixpath.basename(path): data
            for path, data in image.visible_files(LOG_DIR).items()
            if posixpath.dirname(path) == LOG_DIR and _WAL_NAME.fullmatch(posixpath.basename(path))
        }
        self.known = _known_records(history)
        self.final_state = history.states[-1]
        self._order = {name: index for index, name in enumerate(sorted(self.originals))}
        self._prefixes: dict[tuple[tuple[str, ...], ...], frozenset[str]] = {}

    def prefix_states(self, origins: Sequence[str | None]) -> frozenset[str]:
        """Every state a prefix of the records of these original files gives
        (in this order; a file missing between two breaks the run)."""
        runs: list[list[str]] = []
        previous = -2
        for origin in origins:
            if origin is None or origin not in self._order:
                continue
            index = self._order[origin]
            if index != previous + 1:
                runs.append([])
            runs[-1].append(origin)
            previous = index
        key = tuple(tuple(run) for run in runs)
        states = self._prefixes.get(key)
        if states is None:
            segments = [[(name, self.originals[name]) for name in run] for run in runs]
            states = frozenset(spec_reader.prefix_states(segments, self.profile))
            self._prefixes[key] = states
        return states


def build_base(workload: Workload) -> tuple[BaseImage | None, list[Finding]]:
    """Run the workload and check its final log: the independent reader and
    the core's inspection must both give the model's final state."""
    try:
        disk, history = run_workload(workload, lambda disk, history, point: None)
    except AssertionError as exc:
        return None, [Finding("base_image", "-", f"the workload itself failed: {exc}")]
    base = BaseImage(workload, process_crash_image(disk), history)
    try:
        independent = spec_reader.canonical_json(spec_reader.read_state(base.originals, base.profile))
    except (spec_reader.FormatViolation, ValueError) as exc:
        return None, [Finding("base_image", "-", f"the independent reader refuses the clean log: {exc}")]
    try:
        core = inspect_log(LOG_DIR, storage=process_crash_image(base.image)).state.to_canonical_json()
    except Exception as exc:
        return None, [Finding("base_image", "-", f"the core cannot inspect the clean log: {exc!r}")]
    if independent != base.final_state or core != base.final_state:
        which = "the independent reader" if independent != base.final_state else "the core's inspection"
        return None, [Finding("base_image", "-", f"{which} does not read the model's final state from the clean log")]
    return base, []


# -- guarded calls ---------------------------------------------------------------------


class _Hang(BaseException):
    """Raised by the interval timer in the call that overran."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise _Hang

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(slots=True)
class _Memory:
    """Peak traced allocations of the calls made under it."""

    peak: int = 0
    failed: bool = False


@contextmanager
def _traced(memory: _Memory | None) -> Iterator[None]:
    if memory is None:
        yield
        return
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        yield
    finally:
        memory.peak = max(memory.peak, tracemalloc.get_traced_memory()[1])
        if started:
            tracemalloc.stop()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _address_space() -> int | None:
    """The process's virtual size in bytes (Linux), or None."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def can_limit_address_space() -> bool:
    return _address_space() is not None


@contextmanager
def _address_space_limit() -> Iterator[None]:
    """Lower the soft RLIMIT_AS to the current size + ``SPARSE_HEADROOM`` (an
    allocation of gigabytes then fails at once), and restore it."""
    size = _address_space()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = None if size is None else size + SPARSE_HEADROOM
    if limit is None or (hard != resource.RLIM_INFINITY and limit > hard):
        yield
        return
    if soft != resource.RLIM_INFINITY and soft <= limit:
        yield
        return
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _guarded(
    call: Callable[[], _T], memory: _Memory | None = None, *, limit: bool = False
) -> tuple[_T | None, BaseException | None]:
    """Run a call of the core under the deadline (and memory tracing, and the
    address-space limit); its value, or the exception it raised."""
    try:
        with _traced(memory), _address_space_limit() if limit else _nothing(), _deadline(CALL_SECONDS):
            return call(), None
    except _Hang as exc:
        return None, exc
    except Exception as exc:
        if memory is not None and isinstance(exc, MemoryError):
            memory.failed = True
        return None, exc


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" (at {posixpath.basename(last.filename)}:{last.lineno} in {last.name})"


def _error_findings(mode: str, what: str, exc: BaseException) -> list[Finding]:
    """The violation an exception from the core is, if any (a typed error is none)."""
    if isinstance(exc, _Hang):
        return [Finding("hang", mode, f"{what} ran for more than {CALL_SECONDS:g} s")]
    if isinstance(exc, MRecordLogError):
        return []
    return [Finding("untyped_error", mode, f"{what} raised {type(exc).__name__}: {exc}{_where(exc)}")]


def _payload_bytes(state: LogState) -> int:
    return sum(len(record.payload) for queue in state.queues.values() for record in queue.records)


def _memory_findings(mode: str, what: str, memory: _Memory | None, state: LogState | None) -> list[Finding]:
    if memory is None:
        return []
    if memory.failed:
        return [Finding("memory", mode, f"{what} failed to allocate (MemoryError) under the address-space limit")]
    bound = MEMORY_FACTOR * (_payload_bytes(state) if state is not None else 0) + MEMORY_SLACK
    if memory.peak > bound:
        return [Finding("memory", mode, f"{what} peaked at {memory.peak} traced bytes, over {MEMORY_BOUND} = {bound}")]
    return []


# -- file contents -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Content:
    """A file's bytes: its size and the pieces holding every non-zero byte
    (the rest reads as zeros), so a sparse file of gigabytes stays small."""

    size: int
    pieces: tuple[tuple[int, bytes], ...]

    @classmethod
    def of(cls, data: bytes) -> Content:
        return cls(len(data), ((0, data),))

    def read(self, offset: int, length: int) -> bytes:
        length = max(min(length, self.size - offset), 0)
        out = bytearray(length)
        for start, data in self.pieces:
            low, high = max(start, offset), min(start + len(data), offset + length)
            if low < high:
                out[low - offset : high - offset] = data[low - start : high - start]
        return bytes(out)

    def contains(self, needle: bytes) -> bool:
        return any(needle in data for _, data in self.pieces)


def _regions(old: bytes, new: bytes) -> Iterator[tuple[int, int]]:
    """Maximal runs of 4 KiB chunks of ``old`` that ``new`` does not repeat."""
    chunk = 4096
    start: int | None = None
    for offset in range(0, len(old), chunk):
        differs = old[offset : offset + chunk] != new[offset : offset + chunk]
        if differs and start is None:
            start = offset
        elif not differs and start is not None:
            yield start, offset
            start = None
    if start is not None:
        yield start, len(old)


def _first_difference(old: bytes, new: bytes, low: int, high: int) -> int:
    """The first index in [low, high) where they differ (there is one)."""
    while high - low > 1:
        middle = (low + high) // 2
        if old[low:middle] == new[low:middle]:
            low = middle
        else:
            high = middle
    return low


def discarded_ranges(old: bytes, new: bytes) -> list[tuple[int, int]]:
    """Ranges [low, high) of ``old`` covering every non-zero byte that
    ``new`` changed or cut, each starting and ending with such a byte."""
    ranges = []
    for low, high in _regions(old, new):
        new_part = new[low:high].ljust(high - low, b"\0") if len(new) < high else new[low:high]
        old_part = old[low:high]
        first = _first_difference(old_part, new_part, 0, len(old_part))
        last = len(old_part) - 1 - _first_difference(old_part[::-1], new_part[::-1], 0, len(old_part))
        if len(new) < high:
            last = len(old_part) - 1  # bytes cut off count whatever they are
        piece = old_part[first : last + 1]
        stripped = piece.lstrip(b"\0")
        if not stripped:
            continue
        begin = low + first + len(piece) - len(stripped)
        ranges.append((begin, begin + len(stripped.rstrip(b"\0"))))
    return ranges


# -- targets: where a check runs -------------------------------------------------------------


class _Target(Protocol):
    storage: Storage
    directory: str
    limit_address_space: bool

    def files(self) -> dict[str, Content]:
        """Every regular file under the log directory, by relative path."""
        ...

    def tree(self) -> object:
        """Something equal before and after iff nothing under the directory changed."""
        ...

    def mutating_calls(self) -> int: ...


class _SimulatedTarget:
    limit_address_space = False

    def __init__(self, disk: SimulatedDisk) -> None:
        self.disk = disk
        self.storage: Storage = disk
        self.directory = LOG_DIR

    def files(self) -> dict[str, Content]:
        return {
            posixpath.relpath(path, LOG_DIR): Content.of(data)
            for path, data in self.disk.visible_files(LOG_DIR).items()
        }

    def tree(self) -> object:
        return (
            self.disk.visible_files(LOG_DIR),
            self.disk.directories(LOG_DIR),
            self.disk.foreign_entries(LOG_DIR),
        )

    def mutating_calls(self) -> int:
        return sum(self.disk.calls_by_kind[kind] for kind in MUTATING_CALLS)


def _read_sparse(path: str) -> Content:
    """A real file's non-zero bytes, reading only its data extents."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        pieces: list[tuple[int, bytes]] = []
        offset = 0
        while offset < size:
            try:
                data_start = os.lseek(fd, offset, os.SEEK_DATA)
                hole = os.lseek(fd, data_start, os.SEEK_HOLE)
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    break
                data_start, hole = offset, size
            position = data_start
            while position < hole:
                chunk = os.pread(fd, min(1 << 20, hole - position), position)
                if not chunk:
                    break
                if chunk.strip(b"\0"):
                    pieces.append((position, chunk))
                position += len(chunk)
            offset = max(hole, offset + 1)
        return Content(size, tuple(pieces))
    finally:
        os.close(fd)


class _OsTarget:
    limit_address_space = True

    def __init__(self, directory: str) -> None:
        self.storage: Storage = OsStorage()
        self.directory = directory

    def _walk(self) -> Iterator[tuple[str, os.stat_result]]:
        for parent, directories, names in os.walk(self.directory):
            for name in sorted(directories + names):
                path = os.path.join(parent, name)
                yield os.path.relpath(path, self.directory), os.lstat(path)

    def files(self) -> dict[str, Content]:
        return {
            relative: _read_sparse(os.path.join(self.directory, relative))
            for relative, status in self._walk()
            if stat.S_ISREG(status.st_mode)
        }

    def tree(self) -> object:
        return [
            (relative, stat.S_IFMT(status.st_mode), status.st_size, status.st_mtime_ns, status.st_ino)
            for relative, status in self._walk()
        ]

    def mutating_calls(self) -> int:
        return 0  # the real file system counts nothing; tree() sees every change


# -- the checks -----------------------------------------------------------------------


@dataclass
class ImageUnderTest:
    """A mutated image and what the checks need to know about it."""

    base: BaseImage
    mutation: str
    transplant: bool
    # Regular WAL files of the mutated directory: name -> bytes, and where each came from.
    wal_files: dict[str, bytes]
    origins: Sequence[str | None]
    make_target: Callable[[], AbstractContextManager[_Target]]  # a fresh copy to check
    memory_sample: bool
    _reference: frozenset[str] | None = field(default=None, repr=False)

    @property
    def reference(self) -> frozenset[str]:
        if self._reference is None:
            self._reference = self.base.prefix_states(self.origins)
        return self._reference


def state_findings(image: ImageUnderTest, mode: str, what: str, inspection: Inspection) -> list[Finding]:
    state, report = inspection.state, inspection.report
    findings: list[Finding] = []
    if image.transplant:
        return findings
    known = image.base.known
    wrong = next(
        (
            (name, record)
            for name, queue in state.queues.items()
            for record in queue.records
            if (name, record.position, bytes(record.payload)) not in known
        ),
        None,
    )
    if wrong is not None:
        name, record = wrong
        findings.append(
            Finding(
                "wrong_payload",
                mode,
                f"{what} returned a payload the workload never wrote at {name!r}:{record.position}",
            )
        )
    if mode == "skip":
        return findings
    if state.to_canonical_json() not in image.reference:
        records = sum(len(queue.records) for queue in state.queues.values())
        damage = ", ".join(sorted({d.kind for d in report.damages})) or "none"
        findings.append(
            Finding(
                "not_a_prefix",
                mode,
                f"{what} recovered {records} record(s) in a state that no prefix of the kept files' "
                f"{len(image.reference) - 1} record(s) gives (damage reported: {damage}; stopped at "
                f"{report.stopped_at or '-'})",
            )
        )
    if mode == "strict" and report.resume_file is not None and report.resume_offset is not None:
        found = valid_frame_after(image, report.resume_file, report.resume_offset)
        if found is not None:
            findings.append(
                Finding(
                    "strict_accepted_damage",
                    mode,
                    f"{what} accepted the log ending at {report.resume_file} offset {report.resume_offset}, "
                    f"but a checksum-valid frame follows at {found}",
                )
            )
    return findings


_TYPE_BYTES: Final = re.compile(rb"[\x01-\x04]")


def valid_frame_after(image: ImageUnderTest, resume_file: str, resume_offset: int) -> str | None:
    """A checksum-valid frame after the resume point that ``strict`` should
    have refused the log for (independent of the core); None if there is none.

    Looked for at every offset of the rest of the resume block (frame
    boundaries are unknown after damage), then along the frame chain of every
    later block, of that file and the later ones. The tail of the record torn
    at the resume point is excepted: the Middle frames and the Last frame
    that start the next blocks belong to it (a torn write that kept them is
    still a torn tail); any frame after them counts.
    """
    profile = image.base.profile
    tail_over = False
    for name in sorted(image.wal_files):
        if name < resume_file:
            continue
        content = image.wal_files[name]
        data = content + bytes(-len(content) % BLOCK)
        first_block = 0
        if name == resume_file:
            block_end = resume_offset - resume_offset % BLOCK + BLOCK
            for match in _TYPE_BYTES.finditer(data, resume_offset + 1 + 6, block_end):
                if spec_reader.is_valid_frame(data, match.start() - 6, profile):
                    return f"{name} offset {match.start() - 6}"
            first_block = block_end
        for block_start in range(first_block, len(data), BLOCK):
            cursor = block_start
            while block_start + BLOCK - cursor >= spec_reader.HEADER:
                header = data[cursor : cursor + spec_reader.HEADER]
                frame_type, length = header[6], header[4] | header[5] << 8
                if header == bytes(7) or not 1 <= frame_type <= 4 or cursor + 7 + length > block_start + BLOCK:
                    break
                if not tail_over and cursor == block_start and frame_type in (spec_reader.MIDDLE, spec_reader.LAST):
                    tail_over = frame_type == spec_reader.LAST
                elif spec_reader.is_valid_frame(data, cursor, profile):
                    return f"{name} offset {cursor}"
                cursor += 7 + length
            tail_over = tail_over or cursor == block_start  # a block that does not go on with the record
    return None


def check_inspect(image: ImageUnderTest, mode: str) -> tuple[list[Finding], LogState | None]:
    with image.make_target() as target:
        before = target.tree()
        limit = target.limit_address_space
        memory = _Memory() if limit else None
        inspection, error = _guarded(
            lambda: inspect_log(
                target.directory,
                storage=target.storage,
                recovery=mode,
                file_num_bytes=image.base.workload.file_num_bytes,
            ),
            memory,
            limit=limit,
        )
        findings = []
        if target.tree() != before:
            findings.append(Finding("read_only_changed", mode, "inspect_log changed the directory"))
        if target.mutating_calls():
            findings.append(Finding("read_only_changed", mode, "inspect_log made a mutating storage call"))
        if error is not None:
            if isinstance(error, StorageError) and error.errno == errno.EROFS:
                findings.append(Finding("read_only_changed", mode, f"inspect_log tried to change something: {error}"))
            findings += _error_findings(mode, f"inspect_log({mode})", error)
            return findings + _memory_findings(mode, f"inspect_log({mode})", memory, None), None
        assert inspection is not None
        findings += _memory_findings(mode, f"inspect_log({mode})", memory, inspection.state)
        return findings + state_findings(image, mode, f"inspect_log({mode})", inspection), inspection.state


def _open(target: _Target, image: ImageUnderTest, mode: str) -> MultiRecordLog:
    return MultiRecordLog.open(
        target.directory, storage=target.storage, recovery=mode, file_num_bytes=image.base.workload.file_num_bytes
    )


def _close(log: MultiRecordLog, mode: str, what: str, limit: bool) -> list[Finding]:
    _, error = _guarded(log.close, limit=limit)
    return [] if error is None else _error_findings(mode, f"close after {what}", error)


def check_open(image: ImageUnderTest, mode: str) -> tuple[list[Finding], LogState | None]:
    with image.make_target() as target:
        before = target.files()
        limit = target.limit_address_space
        memory = _Memory() if image.memory_sample or limit else None
        what = f"open({mode})"
        log, error = _guarded(lambda: _open(target, image, mode), memory, limit=limit)
        if error is not None or log is None:
            assert error is not None
            findings = _error_findings(mode, what, error) + _memory_findings(mode, what, memory, None)
            after = target.files()
            if mode == "strict" and isinstance(error, CorruptionError) and after != before:
                findings.append(Finding("strict_refusal_changed", mode, f"{what} refused ({error}) but changed files"))
            return findings + quarantine_findings(image, mode, before, after, None), None
        state, report = log.state(), log.recovery_report
        findings = _memory_findings(mode, what, memory, state)
        findings += _close(log, mode, what, limit)
        findings += state_findings(image, mode, what, Inspection(state, report))
        findings += quarantine_findings(image, mode, before, target.files(), report)
        return findings + check_again(image, mode, target, state), state


def check_again(image: ImageUnderTest, mode: str, target: _Target, state: LogState) -> list[Finding]:
    """Open a second time: the same state (and, but in skip mode, no damage);
    then append, fsync, close and open a third time: the appends are there."""
    limit = target.limit_address_space
    log, error = _guarded(lambda: _open(target, image, mode), limit=limit)
    if error is not None or log is None:
        assert error is not None
        return _error_findings(mode, f"second open({mode})", error) or [
            Finding("not_idempotent", mode, f"the second open({mode}) refused: {type(error).__name__}: {error}")
        ]
    findings = []
    if log.state() != state:
        findings.append(Finding("not_idempotent", mode, f"the second open({mode}) recovered another state"))
    damages = log.recovery_report.damages
    if mode != "skip" and damages:
        kinds = ", ".join(sorted({d.kind for d in damages}))
        findings.append(Finding("not_idempotent", mode, f"the second open({mode}) still reports damage: {kinds}"))
    payloads = _continuation_payloads(image.base.workload.file_num_bytes)
    done, error = _guarded(lambda: _continue(log, payloads), limit=limit)
    findings += _close(log, mode, "the appends", limit)
    if error is not None or done is None:
        assert error is not None
        return findings + (
            _error_findings(mode, f"appending after open({mode})", error)
            or [Finding("lost_after_recovery", mode, f"appending after open({mode}) failed: {error}")]
        )
    final, error = _guarded(lambda: _state_after_reopen(target, image, mode), limit=limit)
    if error is not None or final is None:
        assert error is not None
        return findings + (
            _error_findings(mode, f"the reopen({mode}) after appending", error)
            or [Finding("lost_after_recovery", mode, f"the reopen({mode}) after appending refused: {error}")]
        )
    expected = dict(state.queues)
    if done.created:
        records = tuple(Record(position, payload) for position, payload in enumerate(payloads[: done.appended]))
        expected[CONTINUATION_QUEUE] = QueueState(done.appended, records)
    if final.queues != expected:
        findings.append(Finding("lost_after_recovery", mode, _continuation_difference(final, expected)))
    return findings


def _continuation_payloads(file_num_bytes: int) -> list[bytes]:
    """A small record, one across a block end, one that fills more than a file."""
    pattern = bytes(range(1, 256))
    return [
        b"after recovery",
        (pattern * (BLOCK // 255 + 1))[:BLOCK],
        (pattern * (file_num_bytes // 255 + 1))[:file_num_bytes],
    ]


@dataclass(slots=True)
class _Continued:
    created: bool = False
    appended: int = 0


def _continue(log: MultiRecordLog, payloads: list[bytes]) -> _Continued:
    """Create a queue, append ``payloads`` one by one, fsync. A typed refusal
    (the log says no and writes nothing, as when no file number is left) ends
    the appends, and if the log stopped after it there is no fsync: what was
    acknowledged before must come back all the same. A failure to write
    (``StorageError``, ``LogFailed``) is raised."""
    done = _Continued()
    try:
        log.create_queue(CONTINUATION_QUEUE)
        done.created = True
        for payload in payloads:
            log.append_record(CONTINUATION_QUEUE, payload)
            done.appended += 1
    except (StorageError, LogFailed):
        raise
    except MRecordLogError:
        if log.failed is not None:
            return done
    log.persist()
    return done


def _state_after_reopen(target: _Target, image: ImageUnderTest, mode: str) -> LogState:
    with _open(target, image, mode) as log:
        return log.state()


def _continuation_difference(final: LogState, expected: dict[str, QueueState]) -> str:
    appended, wanted = final.queues.get(CONTINUATION_QUEUE), expected.get(CONTINUATION_QUEUE)
    if wanted is not None and appended is None:
        return "after appending, fsync and reopening, the appended queue is gone"
    if wanted is not None and appended is not None and appended != wanted:
        return (
            f"after appending, fsync and reopening, {len(appended.records)} of "
            f"{len(wanted.records)} appended record(s) came back"
        )
    changed = sorted(name for name in set(final.queues) | set(expected) if final.queues.get(name) != expected.get(name))
    return f"after appending, fsync and reopening, queue(s) {', '.join(map(repr, changed))} changed"


def quarantine_findings(
    image: ImageUnderTest,
    mode: str,
    before: dict[str, Content],
    after: dict[str, Content],
    report: RecoveryReport | None,
) -> list[Finding]:
    """Whatever left the log must be in a new quarantine folder."""
    quarantine = {
        path: content
        for path, content in after.items()
        if path.startswith(QUARANTINE + "/") and before.get(path) != content
    }
    missing: list[str] = []
    elsewhere: list[str] = []

    def look_for(name: str, offset: int, data: bytes) -> bool:
        found = _quarantined(quarantine, name, offset, data)
        if found is not None and not found[1]:
            elsewhere.append(f"{len(data)} byte(s) of {name} from offset {offset} as {found[0]}")
        return found is not None

    for name, old in before.items():
        if not _WAL_NAME.fullmatch(name):
            continue
        new = after.get(name)
        if new is None:
            why = _must_keep(name, report)
            if why is None or not any(data.strip(b"\0") for _, data in old.pieces):
                continue
            for start, data in old.pieces:
                if not all(look_for(name, start + low, data[low:high]) for low, high in discarded_ranges(data, b"")):
                    missing.append(f"{name} ({old.size} bytes; {why}) is gone")
                    break
            continue
        if new == old:
            continue
        for start, data in old.pieces:
            for low, high in discarded_ranges(data, new.read(start, len(data))):
                if not look_for(name, start + low, data[low:high]):
                    missing.append(f"{high - low} byte(s) of {name} from offset {start + low}")
    findings = [Finding(QUARANTINED_ELSEWHERE, mode, f"open({mode}) quarantined {where}") for where in elsewhere[:1]]
    touched = sorted(
        path for path, content in before.items() if path.startswith(QUARANTINE + "/") and after.get(path) != content
    )
    if touched:
        findings.append(Finding("not_quarantined", mode, f"open({mode}) changed an earlier quarantine: {touched[:3]}"))
    if missing:
        findings.append(
            Finding(
                "not_quarantined",
                mode,
                f"open({mode}) took out of the log and did not quarantine: {'; '.join(missing[:3])}",
            )
        )
    folders = {path.split("/")[1] for path in quarantine}
    without_report = sorted(f for f in folders if f"{QUARANTINE}/{f}/report.json" not in after)
    if without_report:
        findings.append(Finding("not_quarantined", mode, f"quarantine folder(s) without report.json: {without_report}"))
    return findings


def _must_keep(name: str, report: RecoveryReport | None) -> str | None:
    """Why a WAL file that disappeared had to go to the quarantine (it came
    after the resume point, was detached, or held reported damage), or None
    (GC may delete it)."""
    if report is None:
        return "the open failed"
    if report.resume_file is not None and name > report.resume_file:
        return "it came after the resume point"
    if name in report.detached_files:
        return "it was detached"
    damages = sorted({damage.kind for damage in report.damages if damage.file == name})
    return f"it held reported damage: {', '.join(damages)}" if damages else None


def _quarantined(quarantine: dict[str, Content], name: str, offset: int, data: bytes) -> tuple[str, bool] | None:
    """The quarantine file that holds ``data`` from offset ``offset`` of WAL
    file ``name``, and whether it is named for it: ``name`` itself (moved
    whole) or ``name.from-N`` (the bytes from N on); else any file holding
    the bytes (bytes past a file's extent may be copied under another name);
    None if there is none."""
    for path, content in quarantine.items():
        base = posixpath.basename(path)
        if base == name and content.read(offset, len(data)) == data:
            return path, True
        if base.startswith(name + ".from-"):
            suffix = base[len(name) + 6 :]
            if suffix.isdigit() and int(suffix) <= offset and content.read(offset - int(suffix), len(data)) == data:
                return path, True
    return next(((path, False) for path, content in quarantine.items() if content.contains(data)), None)


def check_image(image: ImageUnderTest) -> list[Finding]:
    """Every promise, in every recovery mode."""
    findings = []
    for mode in MODES:
        inspected, shown = check_inspect(image, mode)
        opened, recovered = check_open(image, mode)
        findings += inspected + opened
        if shown is not None and recovered is not None and shown != recovered:
            findings.append(
                Finding("inspect_differs", mode, f"inspect_log({mode}) and open({mode}) recovered different states")
            )
    return findings


@contextmanager
def simulated_target(disk: SimulatedDisk) -> Iterator[_SimulatedTarget]:
    yield _SimulatedTarget(process_crash_image(disk))


def clean_image(base: BaseImage, *, memory_sample: bool = False) -> ImageUnderTest:
    """The base image itself, unmutated: every promise must hold on it."""
    return ImageUnderTest(
        base=base,
        mutation=BASE,
        transplant=False,
        wal_files=dict(base.originals),
        origins=sorted(base.originals),
        make_target=lambda: simulated_target(base.image),
        memory_sample=memory_sample,
    )


def mutated_image(base: BaseImage, name: str, seed: int, *, memory_sample: bool) -> ImageUnderTest | None:
    """Mutation ``name`` (seeded) of the base image, ready to check; None if
    the mutation found nothing to change."""
    done = mutate(base.image, LOG_DIR, name, seed)
    if done is None:
        return None
    disk, mutated = done
    wal_files = {
        posixpath.basename(path): data
        for path, data in disk.visible_files(LOG_DIR).items()
        if posixpath.dirname(path) == LOG_DIR and _WAL_NAME.fullmatch(posixpath.basename(path))
    }
    return ImageUnderTest(
        base=base,
        mutation=name,
        transplant=name in TRANSPLANTING,
        wal_files=wal_files,
        origins=[mutated.origin(wal) for wal in sorted(wal_files)],
        make_target=lambda: simulated_target(disk),
        memory_sample=memory_sample,
    )


def sparse_image(base: BaseImage, seed: int) -> ImageUnderTest | None:
    """The base image on the real file system with a stray byte 1 to 4 GiB
    past a file's data (the same byte for every copy); None if the file
    system cannot hold it sparsely or has no room, or the address space
    cannot be limited."""
    if not can_limit_address_space():
        return None
    with tempfile.TemporaryDirectory(prefix="mrecordlog-fuzz-") as probe:
        if shutil.disk_usage(probe).free < 1 << 30:
            return None
        materialize(base.image, probe, root=LOG_DIR)
        if plant_sparse_byte(probe, random.Random(seed)) is None:
            return None

    @contextmanager
    def make_target() -> Iterator[_OsTarget]:
        with tempfile.TemporaryDirectory(prefix="mrecordlog-fuzz-") as root:
            materialize(base.image, root, root=LOG_DIR)
            plant_sparse_byte(root, random.Random(seed))
            yield _OsTarget(root)

    return ImageUnderTest(
        base=base,
        mutation=SPARSE,
        transplant=False,
        wal_files=dict(base.originals),
        origins=sorted(base.originals),
        make_target=make_target,
        memory_sample=True,
    )


# -- the campaign -------------------------------------------------------------------------


@dataclass
class FuzzViolation:
    kind: str
    mutation: str
    mode: str
    message: str
    image: int  # how many images the campaign had checked when it found this one
    mutation_image: int  # and how many of them had this mutation
    count: int
    reproducer: dict[str, Any]


@dataclass
class FuzzReport:
    seed: int
    images: int = 0
    base_images: int = 0
    by_mutation: Counter[str] = field(default_factory=Counter)
    violations: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    violations_by_mutation: Counter[str] = field(default_factory=Counter)
    # The first violation of each (kind, mutation), with how often it happened.
    details: dict[tuple[str, str], FuzzViolation] = field(default_factory=dict)
    # Informational findings (not violations), counted, with the first message.
    notes: Counter[str] = field(default_factory=Counter)
    first_notes: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    # The shards run (``K/N``, a merged report lists several) and the processes.
    shards: list[str] = field(default_factory=lambda: ["1/1"])
    workers: int = 1

    def add(self, finding: Finding, mutation: str, reproducer: dict[str, Any]) -> None:
        if finding.kind == QUARANTINED_ELSEWHERE:
            self.notes[finding.kind] += 1
            self.first_notes.setdefault(finding.kind, finding.message)
            return
        self.violations += 1
        self.by_kind[finding.kind] += 1
        self.violations_by_mutation[mutation] += 1
        key = (finding.kind, mutation)
        known = self.details.get(key)
        if known is None:
            self.details[key] = FuzzViolation(
                finding.kind,
                mutation,
                finding.mode,
                finding.message,
                self.images,
                self.by_mutation[mutation],
                1,
                {**reproducer, "kind": finding.kind, "mode": finding.mode, "message": finding.message},
            )
        else:
            known.count += 1

    def to_json_value(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "shards": list(self.shards),
            "workers": self.workers,
            "images": self.images,
            "base_images": self.base_images,
            "by_mutation": {name: self.by_mutation.get(name, 0) for name in (*MUTATIONS, SPARSE)},
            "violations": self.violations,
            "by_kind": {kind: self.by_kind.get(kind, 0) for kind in VIOLATION_KINDS},
            "violation_details": [
                {
                    "kind": v.kind,
                    "mutation": v.mutation,
                    "mode": v.mode,
                    "message": v.message,
                    "first_at_image": v.image,
                    "first_at_mutation_image": v.mutation_image,
                    "count": v.count,
                }
                for v in self.details.values()
            ],
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.images / self.seconds, 1) if self.seconds else 0,
            "notes": {kind: {"count": count, "first": self.first_notes[kind]} for kind, count in self.notes.items()},
            "memory_bound": MEMORY_BOUND,
            "call_seconds": CALL_SECONDS,
        }

    @classmethod
    def from_json_value(cls, value: dict[str, Any]) -> FuzzReport:
        """The report of a ``--json`` object (violations without their reproducers)."""
        details = {
            (str(d["kind"]), str(d["mutation"])): FuzzViolation(
                str(d["kind"]),
                str(d["mutation"]),
                str(d["mode"]),
                str(d["message"]),
                int(d["first_at_image"]),
                int(d["first_at_mutation_image"]),
                int(d["count"]),
                {},
            )
            for d in value["violation_details"]
        }
        by_mutation: Counter[str] = Counter()
        for violation in details.values():
            by_mutation[violation.mutation] += violation.count
        notes = value.get("notes", {})
        return cls(
            int(value["seed"]),
            images=int(value["images"]),
            base_images=int(value["base_images"]),
            by_mutation=Counter({name: int(count) for name, count in value["by_mutation"].items() if count}),
            violations=int(value["violations"]),
            by_kind=Counter({kind: int(count) for kind, count in value["by_kind"].items() if count}),
            violations_by_mutation=by_mutation,
            details=details,
            notes=Counter({kind: int(note["count"]) for kind, note in notes.items()}),
            first_notes={kind: str(note["first"]) for kind, note in notes.items()},
            seconds=float(value["seconds"]),
            shards=[str(shard) for shard in value.get("shards", ["1/1"])],
            workers=int(value.get("workers", 1)),
        )

    @classmethod
    def merge(cls, reports: Sequence[FuzzReport]) -> FuzzReport:
        """One report of several runs of the same seed (workers or shards):
        counts summed, the shards listed, for each (kind, mutation) the first
        violation (of the lowest workload seed when the reproducers say) with
        the counts summed, the longest ``seconds`` (the caller sets the wall
        time of runs it timed)."""
        if not reports:
            raise ValueError("no report to merge")
        merged = cls(reports[0].seed, shards=merge_shards(r.shards for r in reports), workers=0)
        found: dict[tuple[str, str], list[FuzzViolation]] = {}
        for report in reports:
            merged.images += report.images
            merged.base_images += report.base_images
            merged.by_mutation.update(report.by_mutation)
            merged.violations += report.violations
            merged.by_kind.update(report.by_kind)
            merged.violations_by_mutation.update(report.violations_by_mutation)
            merged.notes.update(report.notes)
            for kind, message in report.first_notes.items():
                merged.first_notes.setdefault(kind, message)
            merged.seconds = max(merged.seconds, report.seconds)
            merged.workers += report.workers
            for key, violation in report.details.items():
                found.setdefault(key, []).append(violation)

        def workload_seed(violation: FuzzViolation) -> tuple[int, int]:
            seed = violation.reproducer.get("workload", {}).get("seed")
            return (0, int(seed)) if seed is not None else (1, 0)

        firsts = {key: min(violations, key=workload_seed) for key, violations in found.items()}
        for key in sorted(firsts, key=lambda key: workload_seed(firsts[key])):  # stable: report order otherwise
            merged.details[key] = replace(firsts[key], count=sum(v.count for v in found[key]))
        return merged


class FuzzCampaign:
    """Mutates seeded base logs until the budget is spent, checking every promise.

    The base logs are those of seed indices 0, 1, 2, ... (the workload seed
    ``seed * 1_000_003 + index``) that ``part`` owns (a shard and a worker,
    ``oracle.driver``), in increasing order, below ``max_workloads`` if set,
    until the budget is spent or ``stop()`` says so. Everything about a base
    log depends only on its index: its ``images_per_base`` mutations take
    their names in turn from seeded shuffles of the catalogue (image k of the
    campaign, k = index * images_per_base + j, has the name at k in the
    concatenation of one shuffle per round of the catalogue) and their seeds
    from the base log's own generator; every ``memory_every``-th image is
    opened under tracemalloc; base logs 0, ``sparse_every``, ... also make a
    ``sparse_far_byte`` image on the real file system.
    """

    def __init__(
        self,
        seed: int,
        budget_seconds: float,
        *,
        images_per_base: int = 12,
        memory_every: int = 16,
        sparse_every: int = 100,
        progress: Callable[[FuzzReport, float], None] | None = None,
        max_workloads: int | None = None,
        part: Part = WHOLE,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        self.seed = seed
        self.budget = budget_seconds
        self.images_per_base = images_per_base
        self.memory_every = memory_every
        self.sparse_every = sparse_every
        self.progress = progress
        self.max_workloads = max_workloads
        self.part = part
        self.stop = stop
        self.report = FuzzReport(seed, shards=[part.label])
        self._rounds: dict[int, list[str]] = {}

    def mutation_at(self, image: int) -> str:
        """The mutation of the campaign's image ``image`` (index * images_per_base + j)."""
        names = sorted(MUTATIONS)
        round_, place = divmod(image, len(names))
        order = self._rounds.get(round_)
        if order is None:
            order = names
            random.Random(f"fuzz-mutation-order/{self.seed}/{round_}").shuffle(order)
            self._rounds = {round_: order}
        return order[place]

    def run(self) -> FuzzReport:
        started = time.perf_counter()
        deadline = started + self.budget
        last_progress = 0.0
        for index in self.part.indices(self.max_workloads):
            if time.perf_counter() >= deadline or (self.stop is not None and self.stop()):
                break
            workload_seed = self.seed * 1_000_003 + index
            workload = fuzz_workload(workload_seed)
            rng = random.Random(f"fuzz-mutation-seeds/{workload_seed}")
            base, findings = build_base(workload)
            self.report.base_images += 1
            for finding in findings:
                reproducer = {"format": REPRODUCER_FORMAT, "workload": workload.to_json_value(), "mutation": BASE}
                self.report.add(finding, BASE, {**reproducer, "mutation_seed": 0})
            if base is None:
                continue
            if index % self.sparse_every == 0:
                self._check(base, SPARSE, rng.getrandbits(32))
            for image in range(index * self.images_per_base, (index + 1) * self.images_per_base):
                if time.perf_counter() >= deadline:
                    break
                sample = self.memory_every > 0 and image % self.memory_every == 0
                self._check(base, self.mutation_at(image), rng.getrandbits(32), memory_sample=sample)
                now = time.perf_counter()
                if self.progress is not None and now - last_progress > 0.2:
                    self.report.seconds = now - started
                    self.progress(self.report, min(1.0, (now - started) / self.budget))
                    last_progress = now
        self.report.seconds = time.perf_counter() - started
        return self.report

    def _check(self, base: BaseImage, name: str, seed: int, *, memory_sample: bool = False) -> None:
        if name == SPARSE:
            image = sparse_image(base, seed)
        else:
            image = mutated_image(base, name, seed, memory_sample=memory_sample)
        if image is None:
            return
        findings = check_image(image)
        self.report.images += 1
        self.report.by_mutation[name] += 1
        reproducer = {
            "format": REPRODUCER_FORMAT,
            "workload": base.workload.to_json_value(),
            "mutation": name,
            "mutation_seed": seed,
        }
        for finding in findings:
            self.report.add(finding, name, reproducer)


# -- reproducers --------------------------------------------------------------------------


class ReproducerError(ValueError):
    """A file that is not a fuzz reproducer."""


def load_reproducer(path: str) -> dict[str, Any]:
    try:
        value = read_json_file(path)
    except ValueError as exc:
        raise ReproducerError(str(exc)) from None
    if not isinstance(value, dict) or value.get("format") != REPRODUCER_FORMAT:
        raise ReproducerError(f'not a fuzz reproducer (no "format": "{REPRODUCER_FORMAT}")')
    name = value.get("mutation")
    if name not in (BASE, SPARSE) and name not in MUTATIONS:
        raise ReproducerError(f"unknown mutation {name!r}")
    if not isinstance(value.get("mutation_seed"), int) or not isinstance(value.get("workload"), dict):
        raise ReproducerError("a reproducer needs an integer mutation_seed and a workload object")
    try:
        Workload.from_json_value(value["workload"])
    except (KeyError, TypeError, ValueError, MRecordLogError) as exc:
        raise ReproducerError(f"its workload is malformed: {exc}") from None
    return value


def replay_reproducer(reproducer: dict[str, Any]) -> list[Finding]:
    """Rebuild the reproducer's image and run every check again; the
    violations found now (none: fixed)."""
    workload = Workload.from_json_value(reproducer["workload"])
    base, findings = build_base(workload)
    name, seed = reproducer["mutation"], reproducer["mutation_seed"]
    if base is None or name == BASE:
        return findings
    image = sparse_image(base, seed) if name == SPARSE else mutated_image(base, name, seed, memory_sample=True)
    if image is None:
        return []
    return [finding for finding in check_image(image) if finding.kind != QUARANTINED_ELSEWHERE]


def write_reproducer(violation: FuzzViolation, path: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(violation.reproducer, handle, indent=1, sort_keys=True)
        handle.write("\n")


def iter_report_lines(report: FuzzReport) -> Iterator[str]:
    value = report.to_json_value()
    yield (
        f"seed {report.seed}{describe_scale(report.shards, report.workers)}: {report.base_images} base logs, "
        f"{report.images} mutated images "
        f"in {report.seconds:.1f} s ({value['images_per_second']} images per second)"
    )
    yield f"memory bound: {MEMORY_BOUND}; time limit per call: {CALL_SECONDS:g} s"
    yield ""
    yield f"{'mutation':<24}{'images':>10}{'violations':>12}"
    for name, count in value["by_mutation"].items():
        yield f"{name:<24}{count:>10}{report.violations_by_mutation.get(name, 0):>12}"
    yield ""
    yield f"{'violation kind':<24}{'count':>10}"
    for kind, count in value["by_kind"].items():
        yield f"{kind:<24}{count:>10}"
    for kind, count in report.notes.items():
        yield f"{kind + ' (a note)':<24}{count:>10}  e.g. {report.first_notes[kind]}"
    yield f"{'violations':<24}{report.violations:>10}"
    for v in report.details.values():
        yield (
            f"  {v.kind} [{v.mutation}, {v.mode}] first at image {v.image} ({v.mutation} image "
            f"{v.mutation_image}), {v.count} time(s): {v.message}"
        )


# -- scaling out: worker processes -------------------------------------------------------


def run_fuzz_campaign(
    seed: int,
    budget_seconds: float,
    *,
    workers: int = 1,
    part: Part = WHOLE,
    max_workloads: int | None = None,
    progress: Callable[[FuzzReport, float], None] | None = None,
    initializer: Callable[[], None] | None = None,
    **options: Any,
) -> FuzzReport:
    """The fuzz campaign over the shard of ``part``, in ``workers`` processes
    (``driver.run_campaign_in_workers``). ``options`` are ``FuzzCampaign``'s
    keyword arguments."""
    return run_campaign_in_workers(
        FuzzCampaign,
        seed,
        budget_seconds,
        workers=workers,
        part=part,
        max_workloads=max_workloads,
        progress=progress,
        initializer=initializer,
        options=options,
        merge=FuzzReport.merge,
        cases_done=lambda report: report.base_images,
    )
