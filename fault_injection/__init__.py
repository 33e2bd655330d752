"""Fault injection for mrecordlog's storage seam.

- ``disk``: ``SimulatedDisk``, an in-memory ``mrecordlog._storage.Storage``
  modelled on a POSIX file system with a page cache: visible and durable
  state kept apart, every unsynced mutation a pending operation, fsync and
  directory sync making them durable, injected faults, bit rot.
- ``faults``: ``FaultPlan``: fail the N-th call, fail the N-th fsync and drop
  its pages, run out of space.
- ``ops``: the pending operations (``WriteOp``, ``ResizeOp``, ``LinkOp``,
  ``UnlinkOp``, ``RenameOp``).
- ``images``: crash images (power loss with any subset of the pending
  operations kept or torn, process crash, durable state only), enumeration
  and random sampling of crash choices, and ``materialize`` onto the real
  file system.

It uses only the standard library, and from the core only the Storage
protocol (``mrecordlog._storage``) and the error types (``mrecordlog.errors``).

Import it as ``mrecordlog.fault_injection``: its source is the repository's
top-level ``fault_injection/`` directory, which ``src/mrecordlog/fault_injection``
links to (a relative symlink), and the wheel installs it there. Its modules
import each other relatively, so they work under that name (ruff forbids the
bare ``fault_injection`` import).
"""

from .disk import SimulatedDisk, SimulatedFile, SimulatedLock
from .faults import FaultPlan
from .images import (
    DROP,
    KEEP,
    SECTOR_NUM_BYTES,
    Choice,
    CrashChoices,
    Drop,
    Keep,
    Tear,
    durable_image,
    enumerate_choices,
    materialize,
    power_loss_image,
    process_crash_image,
    random_choices,
    sectors_touched,
)
from .ops import LinkOp, PendingOp, RenameOp, ResizeOp, UnlinkOp, WriteOp

__all__ = [
    "DROP",
    "KEEP",
    "SECTOR_NUM_BYTES",
    "Choice",
    "CrashChoices",
    "Drop",
    "FaultPlan",
    "Keep",
    "LinkOp",
    "PendingOp",
    "RenameOp",
    "ResizeOp",
    "SimulatedDisk",
    "SimulatedFile",
    "SimulatedLock",
    "Tear",
    "UnlinkOp",
    "WriteOp",
    "durable_image",
    "enumerate_choices",
    "materialize",
    "power_loss_image",
    "process_crash_image",
    "random_choices",
    "sectors_touched",
]
