"""Known deviations, as executable definitions: what an implementation that
has one would answer, write or recover.

A check that sees a difference asks this module whether a known deviation
explains it; if one does, the failure gets the deviation's class
(``oracle.classes``), and a baseline that lists the class makes it a known
difference. Each definition is a variant of the spec (a model, a recovery of
a transformed image, a comparison of records), never a pattern over messages,
so that a difference the deviation does not explain keeps its generic class.

- ``position_wrap``: ``WrappingModel``, the model with positions that wrap at
  2^64 on truncate (Rust's wrapping add in mrecordlog 0.5);
- ``short_files``: ``short_files_expectation``, the mode's recovery of the
  image with every incomplete last block ignored, and a 0-byte first file
  refused with ``IoError``;
- ``gc_record_order``: ``only_gc_record_order_differs``, the same records in
  the same files, except for the order inside runs of position records.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from mrecordlog.errors import MRecordLogError
from mrecordlog.inspection import inspect_log
from mrecordlog.model import MAX_U64, Model, QueueModel
from mrecordlog.oracle.spec_reader import FormatViolation, directory_files, read_records

BLOCK: Final = 32768
RECORD_POSITION: Final = 2
# The fields of an answer that the model predicts.
COMPARED: Final = ("ok", "op", "error", "last_position", "evicted_records", "num_queues")


def predicted(answer: dict[str, Any]) -> dict[str, Any]:
    return {key: answer[key] for key in COMPARED if key in answer}


# -- answers: model variants ------------------------------------------------------


class WrappingModel(Model):
    """The model with mrecordlog 0.5's wrapping positions: truncating at
    ``p`` sets the next position to ``max(next, (p + 1) mod 2^64)``."""

    def truncate(self, queue: str, position: int) -> int:
        q = self._queue(queue)
        before = q.next_position
        evicted = super().truncate(queue, position)
        q.next_position = max(before, (position + 1) % (MAX_U64 + 1))
        return evicted


@dataclass(frozen=True)
class Exchange:
    """One thing the implementation told us: an operation's answer, a state,
    or the queue count after an open."""

    kind: str  # "op" | "state" | "open"
    request: dict[str, Any]
    answer: Any


ANSWER_DEVIATIONS: Final[dict[str, Callable[[], Model]]] = {"position_wrap": WrappingModel}


def model_from_state(state: dict[str, Any], factory: Callable[[], Model] = Model) -> Model:
    model = factory()
    for name, queue in state["queues"].items():
        records = [(position, bytes.fromhex(payload)) for position, payload in queue["records"]]
        model.queues[name] = QueueModel(queue["next_position"], records)
    return model


def replay_agrees(exchanges: Sequence[Exchange], model: Model) -> bool:
    """Whether ``model``, fed the operations of ``exchanges``, gives every
    answer, state and queue count the implementation gave."""
    for exchange in exchanges:
        if exchange.kind == "op":
            if model.apply(exchange.request) != predicted(exchange.answer):
                return False
        elif exchange.kind == "state":
            if exchange.answer != model.state_json_value():
                return False
        elif exchange.answer != len(model.queues):
            return False
    return True


def explaining_answer_deviation(
    exchanges: Sequence[Exchange], start: dict[str, Any] | None = None
) -> tuple[str, Model] | None:
    """The first answer deviation whose model agrees with every exchange (from
    the empty state, or from ``start``), with that model after them."""
    for name, factory in ANSWER_DEVIATIONS.items():
        model = factory() if start is None else model_from_state(start, factory)
        if replay_agrees(exchanges, model):
            return name, model
    return None


# -- recovery: short files --------------------------------------------------------


def _wal_names(directory: str) -> list[str]:
    return sorted(directory_files(directory))


def short_files_expectation(directory: str, mode: str) -> Any:
    """What an implementation with 0.5's short-file handling recovers from the
    log in ``directory`` (the canonical state value, or an ``{"error": kind}``
    refusal), or None when the directory has no short file (the deviation
    cannot show)."""
    names = _wal_names(directory)
    sizes = {name: os.path.getsize(os.path.join(directory, name)) for name in names}
    if names and sizes[names[0]] == 0:
        return {"error": "IoError"}
    if not any(size % BLOCK for size in sizes.values()):
        return None
    with tempfile.TemporaryDirectory(prefix="mrecordlog-short-files-") as scratch:
        copy = os.path.join(scratch, "log")
        shutil.copytree(directory, copy)
        for name, size in sizes.items():
            cut = size - size % BLOCK
            if cut != size:
                with open(os.path.join(copy, name), "r+b") as handle:
                    handle.seek(cut)
                    handle.write(bytes(size - cut))
        try:
            return inspect_log(copy, recovery=mode).state.to_json_value()
        except MRecordLogError as exc:
            return {"error": exc.kind}


def matches_variant(variant: Any, got: Any) -> bool:
    """Whether ``got`` is what a deviation's variant (None: it cannot show) expects."""
    if variant is None:
        return False
    if _refused(variant):
        return _refused(got) and got["error"] == variant["error"]
    return bool(variant == got)


def _refused(value: Any) -> bool:
    return isinstance(value, dict) and "error" in value


# -- bytes: GC record order -------------------------------------------------------


def _segments(records: list[bytes]) -> list[list[bytes]]:
    """Records cut into maximal runs of position records and single others."""
    segments: list[list[bytes]] = []
    for record in records:
        is_position = bool(record) and record[0] == RECORD_POSITION
        if is_position and segments and segments[-1] and segments[-1][0][0] == RECORD_POSITION:
            segments[-1].append(record)
        else:
            segments.append([record])
    return segments


def only_gc_record_order_differs(ours: str, theirs: str, profile: str) -> bool:
    """Whether the WAL files in ``theirs`` have the names of ours and the same
    records, except that at least one run of position records comes in
    another order. (A byte difference elsewhere in such a log is not seen:
    the comparison is by records.)"""
    if _wal_names(ours) != _wal_names(theirs):
        return False
    try:
        mine = read_records(directory_files(ours), profile)
        other = read_records(directory_files(theirs), profile)
    except FormatViolation:
        return False
    if mine == other or len(mine) != len(other):
        return False
    cursor = 0
    for segment in _segments(mine):
        theirs_segment = other[cursor : cursor + len(segment)]
        cursor += len(segment)
        if segment[0][0] == RECORD_POSITION:
            if Counter(segment) != Counter(theirs_segment):
                return False
        elif segment != theirs_segment:
            return False
    return True
