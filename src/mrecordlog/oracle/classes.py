"""Failure classes and baselines: the names the oracle's reports are made of.

Every failure a check reports carries one class from ``FAILURE_CLASSES``.
The names are stable (``spec/CONFORMANCE.md`` §5 quotes this table; a test
keeps the two equal): implementations declare known differences by these
names, in a built-in baseline (``BASELINES``) or a baseline file, and a CI job
can fail only on a class it has not declared.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class FailureClass:
    name: str
    checks: tuple[str, ...]
    meaning: str


FAILURE_CLASSES: Final = {
    c.name: c
    for c in (
        FailureClass(
            "wrong_answer",
            ("live", "writer", "continuation"),
            "an operation's answer (ok, error kind, last_position, evicted_records) differs from the model's",
        ),
        FailureClass("wrong_state", ("live",), "the state answered while the log stayed open differs from the model's"),
        FailureClass(
            "reopen_state",
            ("live",),
            "after a clean close and open, the queue count or the state differs from the model's",
        ),
        FailureClass(
            "open_refused",
            ("live", "writer"),
            "open refused a fresh or cleanly closed directory with an announced profile and file size",
        ),
        FailureClass(
            "announced_unsupported",
            ("live", "reader", "writer", "continuation"),
            "an operation, profile or file size announced in hello was answered Unsupported",
        ),
        FailureClass(
            "nondeterministic",
            ("live",),
            "the same requests, sent again in a fresh directory, were answered differently",
        ),
        FailureClass(
            "crash_not_a_prefix",
            ("reader",),
            "point_in_time or strict recovered a crash image to a state that no acknowledged prefix has",
        ),
        FailureClass(
            "recovered_state",
            ("reader",),
            "a damaged image (or, for skip, a crash image) recovered another state than the mode gives",
        ),
        FailureClass(
            "wrong_refusal",
            ("reader",),
            "open refused an image the mode recovers, recovered one strict refuses, or refused with another kind",
        ),
        FailureClass("wal_bytes", ("writer",), "the WAL files differ from the reference's for the same operations"),
        FailureClass(
            "unreadable_files",
            ("writer",),
            "the reference reads another state than the model's from the implementation's WAL files",
        ),
        FailureClass(
            "stale_records",
            ("continuation",),
            "after recovering an image, writing on and reopening, records come back that neither the recovered "
            "state nor the new operations hold (stale frames after the resume point)",
        ),
        FailureClass(
            "continuation_state",
            ("continuation",),
            "after recovering an image, writing on and reopening, the state is not the recovered state plus "
            "the new operations (and no stale record explains it)",
        ),
        FailureClass(
            "lost_durable_write",
            ("crash",),
            "a crash image of the implementation's own writes recovered without an operation acknowledged "
            "before the crash (by a persist with fsync for a power loss, by any persist for a process crash)",
        ),
        FailureClass(
            "non_prefix_recovery",
            ("crash",),
            "point_in_time or strict recovered a crash image of the implementation's own writes to a state "
            "that no prefix of the issued operations gives",
        ),
        FailureClass(
            "unwritten_record",
            ("crash",),
            "skip recovered a record that was never written from a crash image of the implementation's own writes",
        ),
        FailureClass(
            "crash_refused",
            ("crash",),
            "open refused a crash image of the implementation's own writes (strict may refuse only an image a "
            "power loss kept out of order, with Corruption)",
        ),
        FailureClass(
            "position_wrap",
            ("live", "writer", "continuation"),
            "positions wrap at 2^64: truncating at 2^64 - 1 leaves next_position 0 (mrecordlog 0.5)",
        ),
        FailureClass(
            "gc_record_order",
            ("writer",),
            "a GC pass writes its position records in another order than by queue name (mrecordlog 0.5: "
            "hash-map order); the files hold the same records otherwise",
        ),
        FailureClass(
            "short_files",
            ("reader", "continuation", "crash"),
            "an incomplete last block of a file is ignored and a 0-byte first file is refused with IoError "
            "(mrecordlog 0.5)",
        ),
    )
}

BASELINES: Final = {
    # spec/SEMANTICS.md, "Deviations": what a faithful mrecordlog 0.5 does differently.
    "mrecordlog-0.5": frozenset({"position_wrap", "gc_record_order", "short_files"}),
}


class BaselineError(ValueError):
    """An unknown baseline or class name, or an unreadable baseline file."""


def baseline_classes(names: Iterable[str] = (), files: Iterable[str] = ()) -> frozenset[str]:
    """The union of the built-in baselines ``names`` and the baseline files
    ``files`` (one class name per line; ``#`` starts a comment)."""
    classes: set[str] = set()
    for name in names:
        if name not in BASELINES:
            raise BaselineError(f"unknown baseline {name!r} (built-in: {', '.join(sorted(BASELINES))})")
        classes |= BASELINES[name]
    for path in files:
        classes |= read_baseline_file(path)
    return frozenset(classes)


def read_baseline_file(path: str) -> frozenset[str]:
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"cannot read baseline file {path}: {exc}") from None
    classes = set()
    for number, line in enumerate(lines, start=1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        if name not in FAILURE_CLASSES:
            raise BaselineError(
                f"{path}:{number}: unknown failure class {name!r} (the classes are listed in spec/CONFORMANCE.md)"
            )
        classes.add(name)
    return frozenset(classes)
