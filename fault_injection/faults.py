"""The fault plan: which storage call fails, which fsync loses its pages, how
much room the disk has.

A ``FaultPlan`` is plain data. ``SimulatedDisk`` consults it on every call, so
a test may replace ``disk.fault_plan`` (or change its fields) between calls,
e.g. to let a log open cleanly and only then arm a fault.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class FaultPlan:
    """Faults a ``SimulatedDisk`` injects. Counts are 1-based; None disables.

    - ``fail_at_call``: the N-th storage call (any protocol method of the disk,
      its open files included; see ``SimulatedDisk.call_count``) raises
      ``StorageError`` with EIO before having any effect.
    - ``fsync_eio_at``: the N-th call to a file's ``sync`` (counting calls
      that failed for another reason) raises EIO *and* drops that
      file's dirty pages, as Linux does: the pending writes leave the pending
      list without becoming durable, yet reads still see them. Later fsyncs
      succeed (and do not bring the dropped pages back).
    - ``capacity_bytes``: creating, resizing or writing a file so that the
      visible sizes of the files linked in directories would sum to more than
      this raises ENOSPC, with no effect.
    """

    fail_at_call: int | None = None
    fsync_eio_at: int | None = None
    capacity_bytes: int | None = None
