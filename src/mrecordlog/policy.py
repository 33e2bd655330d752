"""Persist policies: when appends and truncates are flushed and fsynced.

Critical records (a queue's creation, its deletion, and the position records a
file GC writes before deleting files) are always flushed and fsynced,
whatever the policy.

An action may be given as a ``PersistAction`` or exactly as its value
(``"flush"``, ``"flush_and_fsync"``); a policy stores the ``PersistAction``,
and refuses anything else (a bool included) with ``InvalidArgument``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from mrecordlog import _arguments


class PersistAction(enum.Enum):
    FLUSH = "flush"  # hand the bytes to the OS: survives a process crash
    FLUSH_AND_FSYNC = "flush_and_fsync"  # and fsync: survives a power loss


# The string spellings of the actions, accepted wherever an action is.
PersistActionName = Literal["flush", "flush_and_fsync"]


@dataclass(frozen=True, slots=True)
class DoNothing:
    """Persist appends and truncates only on an explicit ``persist`` call;
    ``action`` is what ``close`` does."""

    action: PersistAction = PersistAction.FLUSH

    def __post_init__(self) -> None:
        # The log compares actions by identity: a spelling must become the enum.
        object.__setattr__(self, "action", _arguments.persist_action(self.action))


@dataclass(frozen=True, slots=True)
class OnDelay:
    """Persist after an append or truncate once ``interval_seconds`` have passed
    since the last persist."""

    interval_seconds: float
    action: PersistAction = PersistAction.FLUSH

    def __post_init__(self) -> None:
        object.__setattr__(self, "interval_seconds", _arguments.interval_seconds(self.interval_seconds))
        object.__setattr__(self, "action", _arguments.persist_action(self.action))


@dataclass(frozen=True, slots=True)
class Always:
    """Persist after every append and truncate."""

    action: PersistAction = PersistAction.FLUSH

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", _arguments.persist_action(self.action))


PersistPolicy = DoNothing | OnDelay | Always

DEFAULT_PERSIST_POLICY: PersistPolicy = Always(PersistAction.FLUSH)
