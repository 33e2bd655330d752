"""Persist policies: when appends and truncates are flushed and fsynced.

Critical records (a queue's creation, its deletion, and the position records a
file GC writes before deleting files) are always flushed and fsynced,
whatever the policy.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class PersistAction(enum.Enum):
    FLUSH = "flush"  # hand the bytes to the OS: survives a process crash
    FLUSH_AND_FSYNC = "flush_and_fsync"  # and fsync: survives a power loss


@dataclass(frozen=True, slots=True)
class DoNothing:
    """Persist appends and truncates only on an explicit ``persist`` call;
    ``action`` is what ``close`` does."""

    action: PersistAction = PersistAction.FLUSH


@dataclass(frozen=True, slots=True)
class OnDelay:
    """Persist after an append or truncate once ``interval_seconds`` have passed
    since the last persist."""

    interval_seconds: float
    action: PersistAction = PersistAction.FLUSH

    def __post_init__(self) -> None:
        if not self.interval_seconds >= 0:
            raise ValueError(f"interval_seconds must be >= 0, got {self.interval_seconds}")


@dataclass(frozen=True, slots=True)
class Always:
    """Persist after every append and truncate."""

    action: PersistAction = PersistAction.FLUSH


PersistPolicy = DoNothing | OnDelay | Always

DEFAULT_PERSIST_POLICY: PersistPolicy = Always(PersistAction.FLUSH)
