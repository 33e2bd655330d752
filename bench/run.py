"""The benchmark suite: the log's throughput, latency and memory, next to the
machine's ceilings and to the durable stores a Python user might pick instead.

    python3 tasks.py bench [--quick] [--json FILE]      (or: python -m bench.run ...)

What runs, each workload on each store (``mrecordlog`` itself and the peers):

- appends: 64 MiB per case (4 MiB with ``--quick``) of 256 B or 16 KiB
  records, 1, 16 or 256 records per call, without fsync, one flush at the end
  (ours: ``persist_policy=DoNothing()`` then ``persist(PersistAction.FLUSH)``);
  payload MiB/s;
- append + fsync each call, 256 B (ours: ``Always(FLUSH_AND_FSYNC)``); the
  median latency of the calls, in microseconds;
- reopen of 100 MiB (8 MiB) of 1 KiB records, with the crc32c and the crc32
  checksum profiles; payload MiB/s. Ours replays every file into memory; a
  peer's reopen is its open plus one full scan of what it holds (reading
  every record is what replay does). Files are in the page cache (warm);
- range read of all the records of one queue (the reopened 1 KiB records);
  payload MiB/s;
- many queues: Q queues (10,000 and 100,000; 1,000 with ``--quick``), each
  created (durable on return, in every store), then 20 rounds (5) of one
  256 B append to each queue, one truncate of each queue up to its last
  record, and a reopen; seconds per phase. Ours uses 1 MiB files;
- memory (ours only; the peers keep nothing in RAM): tracemalloc bytes
  retained per 256 B record appended (one per call; the 256 payload bytes
  included, the caller's bytes object dropped) and per empty queue created
  (its name included);
- system calls (ours only): ``pwrite`` and ``fsync`` calls per call of the
  log, counted at the storage seam over 1,000 calls (200 with ``--quick``):
  a 256 B append under ``DoNothing`` (then one flush), ``Always(FLUSH)`` and
  ``Always(FLUSH_AND_FSYNC)``, and a queue creation;
- the crash campaign (ours only): crash images checked per second by
  ``mrecordlog crashcheck`` (seed 0, 20 s; 5 s with ``--quick``), one process.

The machine's ceilings, measured in the same run: raw ``os.write`` of 16 KiB
and 1 MiB chunks to a new file (MiB/s), ``os.write`` of 256 B then
``os.fdatasync`` (latency), and ``crc32c.crc32c`` and ``zlib.crc32`` over
32 KiB blocks (the WAL's block size) (MiB/s).

The peers: ``sqlite3`` (stdlib; WAL journal; one row per record in
``records(queue, position, payload)``, primary key ``(queue, position)``; one
transaction per call; ``synchronous=OFF`` for the throughput cases,
``FULL`` for the fsync case and for each queue creation) and ``lmdb`` (one
key per record, ``(queue id, position)`` big-endian; one write transaction per
call; ``sync=False`` for throughput, with a forced sync after each queue
creation; ``sync=True`` for the fsync case), when installed (the ``bench``
extra). Each figure is the median of 3 runs (1 with ``--quick``).

How to read the table: ``figure`` is ours, in ``unit``; a ``*`` after the unit
marks a figure where lower is better (latency, seconds, bytes). Every ratio
reads ">1 is better for us": ``vs ceiling`` is ours / ceiling for throughput
and ceiling / ours for latency, so it is the fraction of the machine's ceiling
that we reach (``ceiling`` names it; appends whose calls carry at most 64 KiB
are held to 16 KiB raw writes, larger ones to 1 MiB writes; a queue creation
phase is held to Q fdatasyncs). ``vs PEER`` is ours / peer for throughput and
peer / ours for latency, seconds and bytes: 2.00 means we do twice the MiB/s,
or take half the time, of that peer; 0.50 means the peer is twice as good.
``--json FILE`` writes the machine, the ceilings and every figure (the peers'
own figures and each run's figure too).

Scratch files go to ``--tmpdir``, else ``$TMPDIR`` if set, else ``.bench-tmp/``
in the repository (the project's file system); they are removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import sqlite3
import statistics
import struct
import sys
import tempfile
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import repeat
from pathlib import Path
from typing import Literal, Protocol

import crc32c

from mrecordlog import Always, DoNothing, MultiRecordLog, OsStorage, PersistAction, PersistPolicy
from mrecordlog._storage import StorageFile
from mrecordlog.oracle.crashcheck import Campaign

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20
KIB = 1 << 10
BLOCK = 32 * KIB  # the WAL's block size: the checksum ceilings run over blocks of it
OURS = "mrecordlog"
PEERS = ("sqlite3", "lmdb")
APPEND_CASES = ((256, 1), (256, 16), (256, 256), (16 * KIB, 1), (16 * KIB, 16), (16 * KIB, 256))
# Calls carrying at most this much are held to the 16 KiB raw write ceiling.
SMALL_CALL_BYTES = 64 * KIB
RECORD_BYTES_REOPEN = KIB
MANY_QUEUES_FILE_BYTES = MIB
LMDB_MAP_BYTES = 1 << 34  # address space only: the file grows with what is written

Better = Literal["higher", "lower"]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- sizes ----------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    runs: int
    append_mib: int
    fsync_calls: int
    reopen_mib: int
    queue_counts: tuple[int, ...]
    appends_per_queue: int
    memory_records: int
    memory_queues: int
    syscall_calls: int
    campaign_seconds: float


FULL = Sizes(
    runs=3,
    append_mib=64,
    fsync_calls=1000,
    reopen_mib=100,
    queue_counts=(10_000, 100_000),
    appends_per_queue=20,
    memory_records=20_000,
    memory_queues=2_000,
    syscall_calls=1000,
    campaign_seconds=20.0,
)
QUICK = Sizes(
    runs=1,
    append_mib=4,
    fsync_calls=200,
    reopen_mib=8,
    queue_counts=(1_000,),
    appends_per_queue=5,
    memory_records=2_000,
    memory_queues=500,
    syscall_calls=200,
    campaign_seconds=5.0,
)


# -- the stores -----------------------------------------------------------------


@dataclass(frozen=True)
class OpenOptions:
    fsync_each: bool = False  # every append durable on return
    checksum: str = "crc32c"  # ours only
    file_num_bytes: int | None = None  # ours only


class Store(Protocol):
    """One durable multi-queue store, as the workloads drive it."""

    def create_queue(self, queue: str) -> None:
        """Create an empty queue, durable on return."""

    def append(self, queue: str, payloads: Sequence[bytes]) -> None:
        """Append the records atomically at the queue's next positions."""

    def truncate(self, queue: str, position: int) -> None:
        """Drop the queue's records up to and including ``position``."""

    def read_all(self, queue: str) -> int:
        """Read every record of the queue in order; the payload bytes read."""

    def load(self) -> int:
        """After an open: read everything retained once; the payload bytes read."""

    def flush(self) -> None:
        """Hand every appended byte to the OS (no fsync)."""

    def close(self) -> None: ...


Opener = Callable[[Path, OpenOptions], Store]


class OursStore:
    def __init__(self, directory: Path, options: OpenOptions) -> None:
        policy = Always(PersistAction.FLUSH_AND_FSYNC) if options.fsync_each else DoNothing()
        self._log = MultiRecordLog.open(
            directory, persist_policy=policy, checksum=options.checksum, file_num_bytes=options.file_num_bytes
        )

    def create_queue(self, queue: str) -> None:
        self._log.create_queue(queue)

    def append(self, queue: str, payloads: Sequence[bytes]) -> None:
        self._log.append_records(queue, payloads)

    def truncate(self, queue: str, position: int) -> None:
        self._log.truncate(queue, position)

    def read_all(self, queue: str) -> int:
        return sum(len(record.payload) for record in self._log.range(queue))

    def load(self) -> int:
        return 0  # open replayed every file: everything retained is in memory

    def flush(self) -> None:
        self._log.persist(PersistAction.FLUSH)

    def close(self) -> None:
        self._log.close()


class SqliteStore:
    _INSERT = "INSERT INTO records (queue, position, payload) VALUES (?, ?, ?)"

    def __init__(self, directory: Path, options: OpenOptions) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._fsync_each = options.fsync_each
        # Autocommit: a lone statement is its own transaction; batches use BEGIN/COMMIT.
        self._db = sqlite3.connect(directory / "queues.sqlite3", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if options.fsync_each else 'OFF'}")
        self._db.execute("CREATE TABLE IF NOT EXISTS queues (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS records (queue INTEGER NOT NULL, position INTEGER NOT NULL,"
            " payload BLOB NOT NULL, PRIMARY KEY (queue, position))"
        )
        self._ids: dict[str, int] = {}
        self._next: dict[str, int] = {}
        for queue_id, name in self._db.execute("SELECT id, name FROM queues"):
            self._ids[name] = queue_id
            self._next[name] = 0

    def create_queue(self, queue: str) -> None:
        if not self._fsync_each:
            self._db.execute("PRAGMA synchronous=FULL")
        cursor = self._db.execute("INSERT INTO queues (name) VALUES (?)", (queue,))
        if not self._fsync_each:
            self._db.execute("PRAGMA synchronous=OFF")
        assert cursor.lastrowid is not None
        self._ids[queue] = cursor.lastrowid
        self._next[queue] = 0

    def append(self, queue: str, payloads: Sequence[bytes]) -> None:
        queue_id, first = self._ids[queue], self._next[queue]
        if len(payloads) == 1:
            self._db.execute(self._INSERT, (queue_id, first, payloads[0]))
        else:
            self._db.execute("BEGIN")
            self._db.executemany(self._INSERT, zip(repeat(queue_id), range(first, first + len(payloads)), payloads))
            self._db.execute("COMMIT")
        self._next[queue] = first + len(payloads)

    def truncate(self, queue: str, position: int) -> None:
        self._db.execute("DELETE FROM records WHERE queue = ? AND position <= ?", (self._ids[queue], position))
        self._next[queue] = max(self._next[queue], position + 1)

    def read_all(self, queue: str) -> int:
        rows = self._db.execute("SELECT payload FROM records WHERE queue = ? ORDER BY position", (self._ids[queue],))
        return sum(len(payload) for (payload,) in rows)

    def load(self) -> int:
        names = {queue_id: name for name, queue_id in self._ids.items()}
        total = 0
        for queue_id, position, payload in self._db.execute("SELECT queue, position, payload FROM records"):
            total += len(payload)
            name = names[queue_id]
            if position >= self._next[name]:
                self._next[name] = position + 1
        return total

    def flush(self) -> None:
        pass  # every commit wrote its pages to the WAL file

    def close(self) -> None:
        self._db.close()


class LmdbStore:
    _KEY = struct.Struct(">IQ")  # queue id, position: a queue's records are adjacent, in order
    _ID = struct.Struct(">I")

    def __init__(self, directory: Path, options: OpenOptions) -> None:
        import lmdb

        self._fsync_each = options.fsync_each
        self._env = lmdb.open(
            str(directory),
            map_size=LMDB_MAP_BYTES,
            max_dbs=2,
            sync=options.fsync_each,
            metasync=options.fsync_each,
        )
        self._queues = self._env.open_db(b"queues")
        self._records = self._env.open_db(b"records")
        self._ids: dict[str, int] = {}
        self._next: dict[str, int] = {}
        with self._env.begin(db=self._queues) as txn:
            for key, value in txn.cursor():
                self._ids[key.decode()] = self._ID.unpack(value)[0]
                self._next[key.decode()] = 0

    def create_queue(self, queue: str) -> None:
        queue_id = len(self._ids) + 1
        with self._env.begin(write=True, db=self._queues) as txn:
            txn.put(queue.encode(), self._ID.pack(queue_id))
        if not self._fsync_each:
            self._env.sync(True)
        self._ids[queue] = queue_id
        self._next[queue] = 0

    def append(self, queue: str, payloads: Sequence[bytes]) -> None:
        queue_id, first = self._ids[queue], self._next[queue]
        pack = self._KEY.pack
        with self._env.begin(write=True, db=self._records) as txn:
            put = txn.put
            for offset, payload in enumerate(payloads):
                put(pack(queue_id, first + offset), payload)
        self._next[queue] = first + len(payloads)

    def truncate(self, queue: str, position: int) -> None:
        queue_id = self._ids[queue]
        end = self._KEY.pack(queue_id, position)
        with self._env.begin(write=True, db=self._records) as txn:
            cursor = txn.cursor()
            found = cursor.set_range(self._KEY.pack(queue_id, 0))
            while found:
                key = cursor.key()
                if not key or key > end:
                    break
                found = cursor.delete()
        self._next[queue] = max(self._next[queue], position + 1)

    def read_all(self, queue: str) -> int:
        prefix = self._ID.pack(self._ids[queue])
        total = 0
        with self._env.begin(db=self._records) as txn:
            cursor = txn.cursor()
            if cursor.set_range(prefix):
                for key, value in cursor:
                    if key[:4] != prefix:
                        break
                    total += len(value)
        return total

    def load(self) -> int:
        names = {queue_id: name for name, queue_id in self._ids.items()}
        unpack = self._KEY.unpack
        total = 0
        with self._env.begin(db=self._records) as txn:
            for key, value in txn.cursor():
                total += len(value)
                queue_id, position = unpack(key)
                name = names[queue_id]
                if position >= self._next[name]:
                    self._next[name] = position + 1
        return total

    def flush(self) -> None:
        pass  # every commit wrote its pages to the file

    def close(self) -> None:
        self._env.close()


def lmdb_available() -> bool:
    return importlib.util.find_spec("lmdb") is not None


OPENERS: dict[str, Opener] = {OURS: OursStore, "sqlite3": SqliteStore, "lmdb": LmdbStore}


# -- the workloads --------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    name: str
    unit: str
    better: Better
    ceiling: str | None = None  # a key of the ceilings
    ceiling_scale: float = 1.0  # turns the ceiling's figure into this workload's unit
    peers: bool = True


def size_label(num_bytes: int) -> str:
    return f"{num_bytes // KIB} KiB" if num_bytes >= KIB and num_bytes % KIB == 0 else f"{num_bytes} B"


def append_name(size: int, count: int) -> str:
    return f"append {size_label(size)} x {count}"


FSYNC_NAME = "append+fsync 256 B x 1"
RANGE_NAME = "range read 1 KiB records"
MEMORY_RECORD_NAME = "memory per 256 B record"
MEMORY_QUEUE_NAME = "memory per empty queue"
# (row name, what is counted, the policy of the appends or None for create_queue)
SYSCALL_CASES: tuple[tuple[str, str, PersistPolicy | None], ...] = (
    ("pwrite per append, DoNothing", "write_at", DoNothing()),
    ("pwrite per append, Always(FLUSH)", "write_at", Always(PersistAction.FLUSH)),
    ("fsync per append, Always(FSYNC)", "sync", Always(PersistAction.FLUSH_AND_FSYNC)),
    ("fsync per create_queue", "sync", None),
)
CAMPAIGN_NAME = "crashcheck images"
WRITE_16K = "os.write 16 KiB"
WRITE_1M = "os.write 1 MiB"
FDATASYNC = "os.write 256 B + os.fdatasync"
CRC32C = "crc32c.crc32c"
CRC32 = "zlib.crc32"
MANY_QUEUES_PHASES = ("create", "append", "truncate", "reopen")


def reopen_name(checksum: str) -> str:
    return f"reopen 1 KiB records ({checksum})"


def queues_name(count: int, phase: str, sizes: Sizes) -> str:
    detail = f" {sizes.appends_per_queue} x 256 B" if phase == "append" else ""
    return f"queues {count}: {phase}{detail}"


def workloads(sizes: Sizes) -> list[Workload]:
    """Every row of the table, in order."""
    rows = [
        Workload(
            append_name(size, count),
            "MiB/s",
            "higher",
            ceiling=WRITE_16K if size * count <= SMALL_CALL_BYTES else WRITE_1M,
        )
        for size, count in APPEND_CASES
    ]
    rows.append(Workload(FSYNC_NAME, "us/call", "lower", ceiling=FDATASYNC))
    rows.append(Workload(reopen_name("crc32c"), "MiB/s", "higher", ceiling=CRC32C))
    rows.append(Workload(reopen_name("crc32"), "MiB/s", "higher", ceiling=CRC32))
    rows.append(Workload(RANGE_NAME, "MiB/s", "higher"))
    for count in sizes.queue_counts:
        for phase in MANY_QUEUES_PHASES:
            if phase == "create":  # each creation is durable: at least one fdatasync each
                row = Workload(
                    queues_name(count, phase, sizes), "s", "lower", ceiling=FDATASYNC, ceiling_scale=count / 1e6
                )
            else:
                row = Workload(queues_name(count, phase, sizes), "s", "lower")
            rows.append(row)
    rows.append(Workload(MEMORY_RECORD_NAME, "B/record", "lower", peers=False))
    rows.append(Workload(MEMORY_QUEUE_NAME, "B/queue", "lower", peers=False))
    rows.extend(Workload(name, "calls/op", "lower", peers=False) for name, _, _ in SYSCALL_CASES)
    rows.append(Workload(CAMPAIGN_NAME, "images/s", "higher", peers=False))
    return rows


@contextlib.contextmanager
def scratch(base: Path, label: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def opened(opener: Opener, directory: Path, options: OpenOptions) -> Iterator[Store]:
    store = opener(directory, options)
    try:
        yield store
    finally:
        store.close()


def append_throughput(opener: Opener, base: Path, sizes: Sizes, size: int, count: int) -> float:
    payloads = [os.urandom(size)] * count
    calls = max(1, sizes.append_mib * MIB // (size * count))
    with scratch(base, "append") as directory, opened(opener, directory / "store", OpenOptions()) as store:
        store.create_queue("q")
        gc.collect()
        started = time.perf_counter()
        for _ in range(calls):
            store.append("q", payloads)
        store.flush()
        elapsed = time.perf_counter() - started
    return calls * count * size / MIB / elapsed


def fsync_latency(opener: Opener, base: Path, sizes: Sizes) -> float:
    payloads = [os.urandom(256)]
    latencies: list[float] = []
    with (
        scratch(base, "fsync") as directory,
        opened(opener, directory / "store", OpenOptions(fsync_each=True)) as store,
    ):
        store.create_queue("q")
        for _ in range(sizes.fsync_calls):
            started = time.perf_counter()
            store.append("q", payloads)
            latencies.append(time.perf_counter() - started)
    return statistics.median(latencies) * 1e6


def reopen_and_range(opener: Opener, base: Path, sizes: Sizes, checksum: str) -> tuple[float, float]:
    """Reopen MiB/s and range read MiB/s of ``reopen_mib`` of 1 KiB records in one queue."""
    batch = [os.urandom(RECORD_BYTES_REOPEN) for _ in range(64)]
    calls = max(1, sizes.reopen_mib * MIB // (RECORD_BYTES_REOPEN * len(batch)))
    mib = calls * len(batch) * RECORD_BYTES_REOPEN / MIB
    options = OpenOptions(checksum=checksum)
    with scratch(base, "reopen") as directory:
        path = directory / "store"
        with opened(opener, path, options) as store:
            store.create_queue("q")
            for _ in range(calls):
                store.append("q", batch)
        gc.collect()
        started = time.perf_counter()
        store = opener(path, options)
        try:
            store.load()
            reopen = time.perf_counter() - started
            started = time.perf_counter()
            read = store.read_all("q")
            ranged = time.perf_counter() - started
        finally:
            store.close()
    assert read == mib * MIB, f"range read {read} bytes, expected {mib * MIB}"
    return mib / reopen, mib / ranged


def many_queues(opener: Opener, base: Path, sizes: Sizes, count: int) -> dict[str, float]:
    """Seconds per phase: create, append rounds, truncate, reopen."""
    names = [f"queue-{index:06d}" for index in range(count)]
    payloads = [os.urandom(256)]
    rounds = sizes.appends_per_queue
    options = OpenOptions(file_num_bytes=MANY_QUEUES_FILE_BYTES)
    phases: dict[str, float] = {}
    with scratch(base, "queues") as directory:
        path = directory / "store"
        with opened(opener, path, options) as store:
            gc.collect()
            started = time.perf_counter()
            for name in names:
                store.create_queue(name)
            phases["create"] = time.perf_counter() - started
            gc.collect()
            started = time.perf_counter()
            for _ in range(rounds):
                for name in names:
                    store.append(name, payloads)
            store.flush()
            phases["append"] = time.perf_counter() - started
            gc.collect()
            started = time.perf_counter()
            for name in names:
                store.truncate(name, rounds - 1)
            store.flush()
            phases["truncate"] = time.perf_counter() - started
        gc.collect()
        started = time.perf_counter()
        with opened(opener, path, options) as store:
            store.load()
            phases["reopen"] = time.perf_counter() - started
    return {queues_name(count, phase, sizes): seconds for phase, seconds in phases.items()}


def memory(base: Path, sizes: Sizes) -> dict[str, float]:
    """Ours only: tracemalloc bytes retained per 256 B record and per empty queue."""
    figures: dict[str, float] = {}
    with scratch(base, "memory") as directory:
        with opened(OursStore, directory / "records", OpenOptions()) as store:
            store.create_queue("q")
            gc.collect()
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                for _ in range(sizes.memory_records):
                    store.append("q", [os.urandom(256)])
                store.flush()
                gc.collect()
                figures[MEMORY_RECORD_NAME] = (tracemalloc.get_traced_memory()[0] - before) / sizes.memory_records
            finally:
                tracemalloc.stop()
        with opened(OursStore, directory / "queues", OpenOptions()) as store:
            gc.collect()
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                for index in range(sizes.memory_queues):
                    store.create_queue(f"queue-{index:06d}")
                gc.collect()
                figures[MEMORY_QUEUE_NAME] = (tracemalloc.get_traced_memory()[0] - before) / sizes.memory_queues
            finally:
                tracemalloc.stop()
    return figures


class CountingFile:
    """A ``StorageFile`` that counts its calls by method name into ``counts``."""

    def __init__(self, file: StorageFile, counts: dict[str, int]) -> None:
        self._file = file
        self._counts = counts

    def _count(self, name: str) -> None:
        self._counts[name] = self._counts.get(name, 0) + 1

    @property
    def path(self) -> str:
        return self._file.path

    def read_at(self, offset: int, size: int) -> bytes:
        self._count("read_at")
        return self._file.read_at(offset, size)

    def write_at(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        self._count("write_at")
        self._file.write_at(offset, data)

    def sync(self) -> None:
        self._count("sync")
        self._file.sync()

    def truncate(self, size: int) -> None:
        self._count("truncate")
        self._file.truncate(size)

    def size(self) -> int:
        return self._file.size()

    def next_data(self, offset: int) -> int:
        return self._file.next_data(offset)

    def close(self) -> None:
        self._file.close()


class CountingStorage(OsStorage):
    """The OS storage, counting the calls of the files it hands out (and
    directory fsyncs, as ``sync``): the log's system calls, at its one seam."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}

    def create_file(self, path: str, size: int) -> StorageFile:
        return CountingFile(super().create_file(path, size), self.counts)

    def open_file(self, path: str, *, writable: bool) -> StorageFile:
        return CountingFile(super().open_file(path, writable=writable), self.counts)

    def sync_dir(self, path: str) -> None:
        self.counts["sync"] = self.counts.get("sync", 0) + 1
        super().sync_dir(path)


def syscalls(base: Path, sizes: Sizes) -> dict[str, float]:
    """Ours only: pwrite or fsync calls per log call (``SYSCALL_CASES``)."""
    figures: dict[str, float] = {}
    payload = [os.urandom(256)]
    calls = sizes.syscall_calls
    for index, (name, counted, policy) in enumerate(SYSCALL_CASES):
        with scratch(base, f"syscalls-{index}") as directory:
            storage = CountingStorage()
            log = MultiRecordLog.open(directory, storage=storage, persist_policy=policy or DoNothing())
            try:
                log.create_queue("q")
                storage.counts.clear()
                for call in range(calls):
                    if policy is None:
                        log.create_queue(f"queue-{call:06d}")
                    else:
                        log.append_records("q", payload)
                if policy is not None:
                    log.persist(PersistAction.FLUSH)  # a DoNothing log's bytes are counted too
                figures[name] = storage.counts.get(counted, 0) / calls
            finally:
                log.close()
    return figures


def campaign_rate(sizes: Sizes) -> float:
    """Ours only: crash images the crash campaign checks per second."""
    report = Campaign(seed=0, budget_seconds=sizes.campaign_seconds).run()
    return report.images_checked / report.seconds


def store_run(name: str, base: Path, sizes: Sizes) -> Iterator[tuple[str, float]]:
    """One run of every workload on one store: (workload, figure) as each ends."""
    opener = OPENERS[name]
    for size, count in APPEND_CASES:
        yield append_name(size, count), append_throughput(opener, base, sizes, size, count)
    yield FSYNC_NAME, fsync_latency(opener, base, sizes)
    reopen, ranged = reopen_and_range(opener, base, sizes, "crc32c")
    yield reopen_name("crc32c"), reopen
    yield RANGE_NAME, ranged
    if name == OURS:
        yield reopen_name("crc32"), reopen_and_range(opener, base, sizes, "crc32")[0]
    else:  # a peer has no checksum profiles: the same reopen stands for both rows
        yield reopen_name("crc32"), reopen
    for count in sizes.queue_counts:
        yield from many_queues(opener, base, sizes, count).items()
    if name == OURS:
        yield from memory(base, sizes).items()
        yield from syscalls(base, sizes).items()
        yield CAMPAIGN_NAME, campaign_rate(sizes)


# -- the ceilings ---------------------------------------------------------------


def raw_write(base: Path, chunk: int, total: int) -> float:
    data = os.urandom(chunk)
    calls = max(1, total // chunk)
    with scratch(base, "ceiling") as directory:
        fd = os.open(directory / "raw", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            started = time.perf_counter()
            for _ in range(calls):
                os.write(fd, data)
            elapsed = time.perf_counter() - started
        finally:
            os.close(fd)
    return calls * chunk / MIB / elapsed


def fdatasync_latency(base: Path, calls: int) -> float:
    """Median microseconds of a 256 B write into a preallocated file then fdatasync."""
    data = os.urandom(256)
    latencies: list[float] = []
    with scratch(base, "ceiling") as directory:
        fd = os.open(directory / "sync", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.ftruncate(fd, max(MIB, calls * len(data)))  # as the log's files are
            for index in range(calls):
                started = time.perf_counter()
                os.pwrite(fd, data, index * len(data))
                os.fdatasync(fd)
                latencies.append(time.perf_counter() - started)
        finally:
            os.close(fd)
    return statistics.median(latencies) * 1e6


def checksum_throughput(function: Callable[[bytes], int], total: int) -> float:
    block = os.urandom(BLOCK)
    calls = max(1, total // BLOCK)
    started = time.perf_counter()
    for _ in range(calls):
        function(block)
    return calls * BLOCK / MIB / (time.perf_counter() - started)


CEILING_UNITS = {WRITE_16K: "MiB/s", WRITE_1M: "MiB/s", FDATASYNC: "us/call", CRC32C: "MiB/s", CRC32: "MiB/s"}


def ceilings_run(base: Path, sizes: Sizes) -> dict[str, float]:
    total = sizes.append_mib * MIB
    return {
        WRITE_16K: raw_write(base, 16 * KIB, total),
        WRITE_1M: raw_write(base, MIB, total),
        FDATASYNC: fdatasync_latency(base, sizes.fsync_calls),
        CRC32C: checksum_throughput(crc32c.crc32c, total),
        CRC32: checksum_throughput(zlib.crc32, total),
    }


# -- running and reporting ------------------------------------------------------


def median_of(runs: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in runs.items()}


def ratio(ours: float, other: float, better: Better) -> float | None:
    """>1 is better for us: ours / other for throughput, other / ours otherwise."""
    if ours <= 0 or other <= 0:
        return None
    return ours / other if better == "higher" else other / ours


def machine_info(parent: Path, sizes: Sizes, peers: Sequence[str], quick: bool) -> dict[str, object]:
    info: dict[str, object] = {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "mrecordlog": importlib.metadata.version("mrecordlog"),
        "sqlite3": sqlite3.sqlite_version,
        "scratch_dir": str(parent),
        "quick": quick,
        "runs": sizes.runs,
        "sizes": {
            "append_mib": sizes.append_mib,
            "fsync_calls": sizes.fsync_calls,
            "reopen_mib": sizes.reopen_mib,
            "queue_counts": list(sizes.queue_counts),
            "appends_per_queue": sizes.appends_per_queue,
            "memory_records": sizes.memory_records,
            "memory_queues": sizes.memory_queues,
        },
        "peers": list(peers),
    }
    if "lmdb" in peers:
        import lmdb

        info["lmdb"] = f"{lmdb.__version__} (liblmdb {'.'.join(map(str, lmdb.version()))})"
    return info


def format_figure(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def format_ratio(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2g}" if value < 0.1 else f"{value:.2f}"


def render_table(results: Sequence[dict[str, object]], peers: Sequence[str]) -> str:
    header = ["workload", "figure", "unit", "vs ceiling", "ceiling", *(f"vs {peer}" for peer in peers)]
    rows: list[list[str]] = []
    for result in results:
        figure, ceiling_ratio, peer_ratios = result["figure"], result["ratio_to_ceiling"], result["peers"]
        assert isinstance(figure, float)
        assert isinstance(peer_ratios, dict)
        assert ceiling_ratio is None or isinstance(ceiling_ratio, float)
        unit = f"{result['unit']}{'*' if result['better'] == 'lower' else ''}"
        rows.append(
            [
                str(result["workload"]),
                format_figure(figure),
                unit,
                format_ratio(ceiling_ratio),
                str(result["ceiling"] or "-"),
                *(format_ratio(peer_ratios.get(peer)) for peer in peers),
            ]
        )
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    left = {0, 2, 4}  # text columns; numbers align right

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) if column in left else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(header), line(["-" * width for width in widths]), *(line(row) for row in rows)])


def default_scratch_parent() -> Path:
    return Path(os.environ["TMPDIR"]) if os.environ.get("TMPDIR") else ROOT / ".bench-tmp"


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="The log's benchmarks, next to the machine's ceilings and to sqlite3 and lmdb.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one run (about a minute)")
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write every figure as JSON to FILE")
    parser.add_argument("--runs", type=int, help="runs per figure (the median is kept)")
    parser.add_argument("--append-mib", type=int, help="MiB written per append case")
    parser.add_argument("--reopen-mib", type=int, help="MiB of 1 KiB records reopened")
    parser.add_argument("--queues", metavar="Q[,Q...]", help="queue counts of the many-queues workload")
    parser.add_argument("--fsync-calls", type=int, help="calls of the append+fsync workload")
    parser.add_argument("--syscall-calls", type=int, help="log calls over which system calls are counted")
    parser.add_argument("--campaign-seconds", type=float, help="seconds of the crash campaign's rate")
    parser.add_argument("--peers", metavar="NAME[,NAME...]", help=f"peers among {', '.join(PEERS)} (default: all)")
    parser.add_argument("--tmpdir", type=Path, help="where scratch directories go (default: $TMPDIR or .bench-tmp/)")
    return parser.parse_args(argv)


def sizes_from(arguments: argparse.Namespace) -> Sizes:
    sizes = QUICK if arguments.quick else FULL
    if arguments.runs is not None:
        sizes = replace(sizes, runs=arguments.runs)
    if arguments.append_mib is not None:
        sizes = replace(sizes, append_mib=arguments.append_mib)
    if arguments.reopen_mib is not None:
        sizes = replace(sizes, reopen_mib=arguments.reopen_mib)
    if arguments.queues is not None:
        sizes = replace(sizes, queue_counts=tuple(int(count) for count in arguments.queues.split(",")))
    if arguments.fsync_calls is not None:
        sizes = replace(sizes, fsync_calls=arguments.fsync_calls)
    if arguments.syscall_calls is not None:
        sizes = replace(sizes, syscall_calls=arguments.syscall_calls)
    if arguments.campaign_seconds is not None:
        sizes = replace(sizes, campaign_seconds=arguments.campaign_seconds)
    counts = (
        sizes.runs,
        sizes.append_mib,
        sizes.reopen_mib,
        sizes.fsync_calls,
        sizes.syscall_calls,
        *sizes.queue_counts,
    )
    if min(counts) < 1 or not sizes.campaign_seconds > 0:
        raise SystemExit("bench: every size and count must be at least 1")
    return sizes


def peers_from(arguments: argparse.Namespace) -> list[str]:
    if arguments.peers is None:
        peers = [peer for peer in PEERS if peer != "lmdb" or lmdb_available()]
        if "lmdb" not in peers:
            log("bench: lmdb is not installed (pip install -e '.[bench]'): no lmdb peer")
        return peers
    peers = [peer for peer in arguments.peers.split(",") if peer]
    unknown = [peer for peer in peers if peer not in PEERS]
    if unknown:
        raise SystemExit(f"bench: unknown peer {unknown[0]!r} (known: {', '.join(PEERS)})")
    if "lmdb" in peers and not lmdb_available():
        raise SystemExit("bench: lmdb is not installed (pip install -e '.[bench]')")
    return peers


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    sizes = sizes_from(arguments)
    peers = peers_from(arguments)
    parent = arguments.tmpdir if arguments.tmpdir is not None else default_scratch_parent()
    parent_created = not parent.exists()
    parent.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="mrecordlog-bench-", dir=parent))
    started = time.monotonic()
    try:
        ceiling_runs: dict[str, list[float]] = {}
        figure_runs: dict[str, dict[str, list[float]]] = {store: {} for store in (OURS, *peers)}
        for run in range(1, sizes.runs + 1):
            log(f"bench: run {run}/{sizes.runs}: ceilings")
            for name, value in ceilings_run(base, sizes).items():
                ceiling_runs.setdefault(name, []).append(value)
            for store in (OURS, *peers):
                for name, value in store_run(store, base, sizes):
                    log(f"bench: run {run}/{sizes.runs}: {store:<10} {name:<34} {format_figure(value)}")
                    figure_runs[store].setdefault(name, []).append(value)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        if parent_created:
            with contextlib.suppress(OSError):  # something else put files there
                parent.rmdir()
    ceilings = median_of(ceiling_runs)
    figures = {store: median_of(runs) for store, runs in figure_runs.items()}
    results: list[dict[str, object]] = []
    for workload in workloads(sizes):
        ours = figures[OURS][workload.name]
        ceiling = ceilings[workload.ceiling] * workload.ceiling_scale if workload.ceiling is not None else None
        peer_figures = {peer: figures[peer][workload.name] for peer in peers} if workload.peers else {}
        results.append(
            {
                "workload": workload.name,
                "figure": ours,
                "unit": workload.unit,
                "better": workload.better,
                "ceiling": workload.ceiling,
                "ratio_to_ceiling": None if ceiling is None else ratio(ours, ceiling, workload.better),
                "peers": {peer: ratio(ours, value, workload.better) for peer, value in peer_figures.items()},
                "peer_figures": peer_figures,
                "runs": figure_runs[OURS][workload.name],
            }
        )
    machine = machine_info(parent, sizes, peers, arguments.quick)
    machine["seconds"] = round(time.monotonic() - started, 1)
    print(
        f"machine: {machine['cpu_count']} CPUs, Python {machine['python']} ({machine['platform']}),"
        f" sqlite {machine['sqlite3']}" + (f", lmdb {machine['lmdb']}" if "lmdb" in machine else "")
    )
    print(f"runs: {sizes.runs} (median kept); scratch under {parent}; {machine['seconds']} s")
    print(
        "ceilings: "
        + ", ".join(f"{name} {format_figure(value)} {CEILING_UNITS[name]}" for name, value in ceilings.items())
    )
    print()
    print(render_table(results, peers))
    print()
    print("* lower is better. Every ratio >1 is better for us: ours/other for MiB/s, other/ours for the rest.")
    if arguments.json is not None:
        document = {
            "machine": machine,
            "ceilings": {name: {"figure": value, "unit": CEILING_UNITS[name]} for name, value in ceilings.items()},
            "results": results,
        }
        arguments.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
