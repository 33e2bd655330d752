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
    """What a persist does with the bytes written so far. Wherever an action is
    expected, its value (``"flush"`` or ``"flush_and_fsync"``) is accepted too.

    :cvar FLUSH: hand the buffered bytes to the OS (``"flush"``). They survive
        a crash of the process, not a power loss or a crash of the OS.
    :cvar FLUSH_AND_FSYNC: flush, then fsync every WAL file written since the
        last fsync, and the directory when files were created or removed
        (``"flush_and_fsync"``). The bytes survive a power loss.
    """

    FLUSH = "flush"
    FLUSH_AND_FSYNC = "flush_and_fsync"


# The string spellings of the actions, accepted wherever an action is.
PersistActionName = Literal["flush", "flush_and_fsync"]


@dataclass(frozen=True, slots=True)
class DoNothing:
    """Persist appends and truncates only on an explicit ``persist`` call (or
    when something else writes the buffer out: ``close``, ``create_queue``,
    ``delete_queue``, or the log's 64 KiB write buffer filling up); until then
    a crash of the process loses them.

    :ivar action: what ``close`` does (a ``PersistAction``; its value is
        accepted and stored as the enum).
    """

    action: PersistAction = PersistAction.FLUSH

    def __post_init__(self) -> None:
        # The log compares actions by identity: a spelling must become the enum.
        object.__setattr__(self, "action", _arguments.persist_action(self.action))


@dataclass(frozen=True, slots=True)
class OnDelay:
    """Persist after an append or truncate once more than ``interval_seconds``
    have passed since the last timed persist (the first falls due
    ``interval_seconds`` after ``open``). There is no background thread: after
    a quiet period, buffered appends wait for the next append, truncate,
    ``persist`` or ``close``.

    :ivar interval_seconds: seconds between timed persists: a finite ``int`` or
        ``float`` of at least 0, stored as a ``float``; anything else raises
        ``InvalidArgument``.
    :ivar action: what each timed persist, and ``close``, does.
    """

    interval_seconds: float
    action: PersistAction = PersistAction.FLUSH

    def __post_init__(self) -> None:
        object.__setattr__(self, "interval_seconds", _arguments.interval_seconds(self.interval_seconds))
        object.__setattr__(self, "action", _arguments.persist_action(self.action))


@dataclass(frozen=True, slots=True)
class Always:
    """Persist after every append and truncate, before the call returns (the
    default policy, with ``FLUSH``).

    :ivar action: what each of those persists, and ``close``, does.
    """

    action: PersistAction = PersistAction.FLUSH

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", _arguments.persist_action(self.action))


PersistPolicy = DoNothing | OnDelay | Always
"""The type of a persist policy: ``DoNothing``, ``OnDelay`` or ``Always``.
Whatever the policy, ``create_queue``, ``delete_queue`` and the position
records of garbage collection are flushed and fsynced before they return."""

DEFAULT_PERSIST_POLICY: PersistPolicy = Always(PersistAction.FLUSH)
