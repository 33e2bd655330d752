"""Seeded random workloads for the crash campaign.

A workload is a short sequence of operations (the interchange operation types)
with a persist policy, a file size, a checksum profile, at most one injected
fault and, for some, a log that starts at a file number near 2^64. It is a
plain value: it serialises to JSON, so a reproducer file can carry it.

Shapes (``SHAPES``): ``plain`` workloads; ``multiblock`` ones, whose appends
include records spanning three or four blocks (so that crash images can end at
every frame boundary inside a record); ``high_file_numbers`` ones, which run
on a log whose first file is numbered 2^64 - 4 .. 2^64 - 1, so that the writer
reaches the last file name the format has.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from mrecordlog.interchange import (
    AppendOp,
    CreateQueueOp,
    DeleteQueueOp,
    Operation,
    PersistOp,
    TruncateOp,
    operation_to_json,
    parse_operation,
)
from mrecordlog.policy import Always, DoNothing, PersistAction, PersistPolicy

BLOCK = 32768
MAX_FILE_NUMBER = 2**64 - 1
SHAPES = ("plain", "multiblock", "high_file_numbers")
# Payload sizes of the records a multiblock workload adds: 3 and 4 blocks.
_SPANNING_PAYLOADS = (2 * BLOCK + 100, 2 * BLOCK + 20000, 3 * BLOCK + 3000)
POLICIES = ("always_flush", "always_fsync", "do_nothing")
# none, or the fault injected into the run (the crash itself is always there).
FAULTS = ("none", "fsync_eio", "enospc", "io_error")
_QUEUES = ("a", "b", "c")


def policy_of(name: str) -> PersistPolicy:
    if name == "always_flush":
        return Always(PersistAction.FLUSH)
    if name == "always_fsync":
        return Always(PersistAction.FLUSH_AND_FSYNC)
    return DoNothing(PersistAction.FLUSH)


@dataclass(frozen=True, slots=True)
class Workload:
    seed: int
    operations: tuple[Operation, ...]
    policy: str
    file_num_bytes: int
    checksum: str
    fault: str
    # How far into the run the fault strikes: the N-th storage call (io_error),
    # the N-th fsync (fsync_eio), or the bytes of headroom left (enospc),
    # counted from the end of the first open.
    fault_after: int
    # An all-zero WAL file of this number is made durable before the first
    # open (None: the log starts empty, at file 0).
    first_file_number: int | None = None

    def to_json_value(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "operations": [operation_to_json(op) for op in self.operations],
            "policy": self.policy,
            "file_num_bytes": self.file_num_bytes,
            "checksum": self.checksum,
            "fault": self.fault,
            "fault_after": self.fault_after,
            "first_file_number": self.first_file_number,
        }

    @classmethod
    def from_json_value(cls, value: dict[str, Any]) -> Workload:
        return cls(
            seed=value["seed"],
            operations=tuple(parse_operation(op) for op in value["operations"]),
            policy=value["policy"],
            file_num_bytes=value["file_num_bytes"],
            checksum=value["checksum"],
            fault=value["fault"],
            fault_after=value["fault_after"],
            first_file_number=value.get("first_file_number"),
        )


def _payload(rng: random.Random) -> bytes:
    size = rng.choice((0, 1, 9, 100, 500, 3000, 20000, BLOCK - 40, 45000))
    return rng.randbytes(size)


def generate_workload(seed: int, *, fault: str | None = None, shape: str = "plain") -> Workload:
    """A workload of 6 to 24 operations over three queues, mostly appends.

    The shape's changes draw from the seed's generator after everything a
    plain workload draws, so the plain workload of a seed never changes."""
    if shape not in SHAPES:
        raise ValueError(f"unknown workload shape {shape!r}")
    rng = random.Random(seed)
    operations: list[Operation] = []
    next_positions: dict[str, int] = {}
    for _ in range(rng.randint(6, 24)):
        roll = rng.random()
        queue = rng.choice(_QUEUES)
        if roll < 0.15 or not next_positions:
            operations.append(CreateQueueOp(queue))
            next_positions.setdefault(queue, 0)
        elif roll < 0.20:
            operations.append(DeleteQueueOp(queue))
            next_positions.pop(queue, None)
        elif roll < 0.70:
            count = rng.choice((1, 1, 2, 3))
            payloads = tuple(_payload(rng) for _ in range(count))
            nxt = next_positions.get(queue, 0)
            position = rng.choice((None, None, None, nxt, max(nxt - 1, 0), nxt + 3))
            operations.append(AppendOp(queue, position, payloads))
            if queue in next_positions:
                next_positions[queue] = max(nxt, (position or nxt) + count)
        elif roll < 0.88:
            nxt = next_positions.get(queue, 0)
            operations.append(TruncateOp(queue, max(0, nxt - rng.randint(0, 3))))
        else:
            operations.append(PersistOp(rng.random() < 0.5))
    chosen_fault = fault if fault is not None else rng.choice(("none", "none", "none", *FAULTS[1:]))
    fault_after = {"none": 0, "fsync_eio": rng.randint(1, 6), "enospc": rng.randint(0, 3 * BLOCK)}.get(
        chosen_fault, rng.randint(1, 60)
    )
    policy = rng.choice(POLICIES)
    file_num_bytes = rng.choice((1, 2, 3)) * BLOCK
    checksum = rng.choice(("crc32", "crc32c"))
    first_file_number: int | None = None
    if shape == "multiblock":
        operations = _with_spanning_records(operations, rng)
    elif shape == "high_file_numbers":
        # Two to five file names left: a few rolls reach the last one. No
        # injected fault: the refusal at the last name is the event under test.
        first_file_number = MAX_FILE_NUMBER - rng.randint(0, 3)
        chosen_fault, fault_after = "none", 0
    return Workload(
        seed=seed,
        operations=tuple(operations),
        policy=policy,
        file_num_bytes=file_num_bytes,
        checksum=checksum,
        fault=chosen_fault,
        fault_after=fault_after,
        first_file_number=first_file_number,
    )


def _with_spanning_records(operations: list[Operation], rng: random.Random) -> list[Operation]:
    """The operations with one to three appends' first payload replaced by a
    record of three or four blocks (an append that has none is added). The
    batch sizes stay, so explicit positions keep their meaning."""
    appends = [index for index, op in enumerate(operations) if isinstance(op, AppendOp)]
    if not appends:
        first = operations[0]
        queue = first.queue if isinstance(first, CreateQueueOp) else _QUEUES[0]
        operations = [*operations, AppendOp(queue, None, (b"",))]
        appends = [len(operations) - 1]
    for index in rng.sample(appends, min(len(appends), rng.randint(1, 3))):
        op = operations[index]
        assert isinstance(op, AppendOp)
        spanning = rng.randbytes(rng.choice(_SPANNING_PAYLOADS))
        operations[index] = AppendOp(op.queue, op.position, (spanning, *op.payloads[1:]))
    return operations


def short_traces() -> dict[str, tuple[Operation, ...]]:
    """Short traces for the exhaustive mode: few operations, small files, every
    kind of write (rolling, collection, deletion, skip-ahead)."""
    return {
        "appends, a roll and a truncate that collects a file": (
            CreateQueueOp("a"),
            AppendOp("a", None, (b"x" * 100,)),
            AppendOp("a", None, (b"y" * 3000, b"w" * 600)),
            AppendOp("a", None, (b"z" * 40000,)),
            TruncateOp("a", 1),
            AppendOp("a", None, (b"q" * 10,)),
            PersistOp(True),
        ),
        "two queues, a delete and a re-creation": (
            CreateQueueOp("a"),
            CreateQueueOp("b"),
            AppendOp("a", 5, (b"skip", b"ahead")),
            AppendOp("b", None, (b"", b"b" * 33000)),
            DeleteQueueOp("a"),
            CreateQueueOp("a"),
            AppendOp("a", None, (b"again",)),
            PersistOp(False),
        ),
        "unsynced appends under one barrier": (
            CreateQueueOp("a"),
            AppendOp("a", None, (b"1" * 700,)),
            PersistOp(False),
            AppendOp("a", None, (b"2" * 1500, b"3")),
            PersistOp(False),
            AppendOp("a", None, (b"4" * 5000,)),
            PersistOp(False),
            AppendOp("a", None, (b"5" * 20,)),
            PersistOp(True),
        ),
    }


def exhaustive_workloads() -> list[tuple[str, Workload]]:
    """Every short trace under every persist policy, one-block files."""
    return [
        (
            f"{name} / {policy}",
            Workload(
                seed=0,
                operations=operations,
                policy=policy,
                file_num_bytes=BLOCK,
                checksum="crc32c",
                fault="none",
                fault_after=0,
            ),
        )
        for name, operations in short_traces().items()
        for policy in POLICIES
    ]


def block_filling_size(queue: str, block_offset: int, left: int) -> int:
    """The payload size of a one-record append, written at ``block_offset``,
    that leaves exactly ``left`` bytes in its last block (in the next block
    when it does not fit in this one): the padding cases, the zero-length
    frame, and exact block and file ends."""
    remaining = BLOCK - block_offset
    if remaining < 7:
        remaining = BLOCK  # the writer pads, then starts the next block
    record_overhead = 11 + len(queue.encode()) + 12
    size = remaining - 7 - record_overhead - left
    if size < 0:
        # A First frame fills this block; a Last frame leaves `left` in the next.
        size = max((remaining - 7) + (BLOCK - 7 - left) - record_overhead, 0)
    return size


def padding_workloads() -> list[Workload]:
    """Workloads whose appends leave 0 to 9 bytes at a block's (and a file's)
    end, so that the next record needs padding, a zero-length First frame, or
    starts a new block or file: what random workloads rarely hit exactly. No
    truncation: the files keep those bytes for a writer check to compare."""
    workloads = []
    after_create = 7 + 11 + 1  # create_queue("a") at offset 0
    for left in range(10):
        first = block_filling_size("a", after_create, left)
        operations: tuple[Operation, ...] = (
            CreateQueueOp("a"),
            AppendOp("a", None, (bytes(range(256)) * (first // 256) + bytes(first % 256),)),
            AppendOp("a", None, (b"after the block end",)),
            CreateQueueOp("b"),
            AppendOp("b", None, (b"\x5a" * 40000,)),
            PersistOp(True),
        )
        for file_blocks in (1, 2):
            workloads.append(
                Workload(
                    seed=left,
                    operations=operations,
                    policy="always_flush",
                    file_num_bytes=file_blocks * BLOCK,
                    checksum="crc32" if left % 2 else "crc32c",
                    fault="none",
                    fault_after=0,
                )
            )
    return workloads
