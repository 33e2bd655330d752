"""The executable specification: a pure in-memory model of a log's behaviour.

This module is normative for behaviour (``spec/SEMANTICS.md`` defers to it). It
imports nothing of the core, does no I/O and reads no clock, so that checking
the core against it never checks the core against itself. Bytes on disk
(``wal_bytes_written``, files, GC) are outside it: they are covered by the
format spec and the recorded vectors.

Operations and results use the JSON interchange forms (``ops.jsonl`` lines in,
``results.jsonl`` lines out, without ``i``, ``message`` and
``wal_bytes_written``), so that the model can also replay recorded vectors and
judge other implementations through the conformance oracle.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

MAX_U64 = 2**64 - 1
"""The largest position an argument may give (2^64 - 1): positions are
unsigned 64-bit integers."""
MAX_RECORD_POSITION = MAX_U64 - 1
"""The largest position a record may have (2^64 - 2), so that a queue's next
position stays representable in 64 bits; an append past it is refused
(``PositionOverflow``)."""
MAX_QUEUE_NAME_BYTES = 65535
"""The longest queue name, in UTF-8 bytes."""
MAX_PAYLOAD_BYTES = 2**32 - 1
"""The largest payload, in bytes (2^32 - 1)."""
RECORD_OVERHEAD_NUM_BYTES = 16
"""What ``memory_used_bytes`` counts per retained record besides its payload
bytes."""


class ModelError(Exception):
    """An operation the specification refuses.

    :ivar kind: the interchange name of the error (``"MissingQueue"``,
        ``"Past"``, ...), the ``kind`` of the exception the log raises.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class QueueModel:
    """One queue of a ``Model``.

    :ivar next_position: the position its next append without an explicit
        position gets.
    :ivar records: its retained records, ``(position, payload)`` in position
        order.
    """

    next_position: int = 0
    records: list[tuple[int, bytes]] = field(default_factory=list)


def _check_name(queue: object) -> str:
    if not isinstance(queue, str):
        raise ModelError("InvalidArgument", f"queue name must be a string: {queue!r}")
    try:
        encoded = queue.encode("utf-8")
    except UnicodeEncodeError:
        raise ModelError("InvalidArgument", "queue name is not encodable as UTF-8") from None
    if len(encoded) > MAX_QUEUE_NAME_BYTES:
        raise ModelError("InvalidArgument", "queue name longer than 65535 UTF-8 bytes")
    return queue


def _check_position(position: object) -> int:
    if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position <= MAX_U64:
        raise ModelError("InvalidArgument", f"position outside u64: {position!r}")
    return position


class Model:
    """Queues: name -> (next position, ordered records).

    ``max_memory_bytes`` is the limit given to ``open`` (None: none): an
    append or a create_queue that would take ``memory_used_bytes`` past it is
    refused with ``CapacityExceeded`` and changes nothing. (The disk limit is
    measured on files, which the model does not have: the state machine
    checks it against the core's file figures.)

    An operation the specification refuses raises ``ModelError`` and changes
    nothing.

    :ivar queues: each queue's ``QueueModel``, by name.
    :ivar max_memory_bytes: the memory limit, or None.
    """

    def __init__(self, max_memory_bytes: int | None = None) -> None:
        self.queues: dict[str, QueueModel] = {}
        self.max_memory_bytes = max_memory_bytes

    def memory_used_bytes(self) -> int:
        """The figure ``max_memory_bytes`` bounds: each queue name's UTF-8
        bytes, plus each retained record's payload bytes and 16."""
        return sum(
            len(name.encode())
            + sum(len(payload) for _, payload in q.records)
            + RECORD_OVERHEAD_NUM_BYTES * len(q.records)
            for name, q in self.queues.items()
        )

    def _check_memory(self, needed: int) -> None:
        limit = self.max_memory_bytes
        if limit is not None and self.memory_used_bytes() + needed > limit:
            raise ModelError("CapacityExceeded", f"{needed} more bytes of memory would pass max_memory_bytes={limit}")

    def copy(self) -> Model:
        """An independent (deep) copy."""
        return copy.deepcopy(self)

    def _queue(self, queue: str) -> QueueModel:
        if queue not in self.queues:
            raise ModelError("MissingQueue", f"missing queue {queue!r}")
        return self.queues[queue]

    # -- operations ----------------------------------------------------------

    def create_queue(self, queue: str) -> None:
        """Create an empty queue at next position 0 (``AlreadyExists`` if it
        exists)."""
        _check_name(queue)
        if queue in self.queues:
            raise ModelError("AlreadyExists", f"queue {queue!r} already exists")
        self._check_memory(len(queue.encode()))
        self.queues[queue] = QueueModel()

    def delete_queue(self, queue: str) -> None:
        """Delete the queue and its records (``MissingQueue`` if it does not
        exist)."""
        _check_name(queue)
        self._queue(queue)
        del self.queues[queue]

    def append(self, queue: str, payloads: list[bytes], position: int | None = None) -> int | None:
        """Returns the last position appended, or None when nothing was appended."""
        _check_name(queue)
        if position is not None:
            _check_position(position)
        if any(len(p) > MAX_PAYLOAD_BYTES for p in payloads):
            raise ModelError("InvalidArgument", "payload too large")
        q = self._queue(queue)
        if position is not None:
            if position + 1 == q.next_position:
                return None  # the idempotent retry of the last append
            if position < q.next_position:
                raise ModelError("Past", f"position {position} < next position {q.next_position}")
        if not payloads:
            return None
        start = q.next_position if position is None else position
        last = start + len(payloads) - 1
        if last > MAX_RECORD_POSITION:
            raise ModelError("PositionOverflow", f"positions up to {last} exceed 2^64 - 2")
        self._check_memory(sum(len(p) for p in payloads) + RECORD_OVERHEAD_NUM_BYTES * len(payloads))
        q.records.extend((start + i, bytes(p)) for i, p in enumerate(payloads))
        q.next_position = last + 1
        return last

    def truncate(self, queue: str, position: int) -> int:
        """Removes records at positions <= position; returns how many."""
        _check_name(queue)
        _check_position(position)
        q = self._queue(queue)
        kept = [(p, payload) for p, payload in q.records if p > position]
        evicted = len(q.records) - len(kept)
        q.records = kept
        q.next_position = max(q.next_position, min(position + 1, MAX_U64))
        return evicted

    # -- observation ---------------------------------------------------------

    def last_position(self, queue: str) -> int | None:
        """The position of the queue's last retained record, or None when it
        is empty."""
        records = self._queue(queue).records
        return records[-1][0] if records else None

    def last_record(self, queue: str) -> tuple[int, bytes] | None:
        """The queue's last retained record as ``(position, payload)``, or None
        when it is empty."""
        records = self._queue(queue).records
        return records[-1] if records else None

    def range(self, queue: str, start: int | None = None, end: int | None = None) -> list[tuple[int, bytes]]:
        """The queue's records with ``start <= position < end`` (a bound of
        None: no bound), as ``(position, payload)`` in position order."""
        return [
            (p, payload)
            for p, payload in self._queue(queue).records
            if (start is None or p >= start) and (end is None or p < end)
        ]

    def state_json_value(self) -> dict[str, Any]:
        """The canonical state (as in ``state.json``)."""
        return {
            "queues": {
                name: {
                    "next_position": q.next_position,
                    "records": [[p, payload.hex()] for p, payload in q.records],
                }
                for name, q in self.queues.items()
            }
        }

    def state_json(self) -> str:
        """The canonical state JSON, as text: sorted keys, no spaces, one
        trailing newline (what ``LogState.to_canonical_json`` gives)."""
        return json.dumps(self.state_json_value(), sort_keys=True, separators=(",", ":")) + "\n"

    # -- interchange ---------------------------------------------------------

    def apply(self, op: dict[str, Any]) -> dict[str, Any]:
        """Apply one ``ops.jsonl`` operation; answer its result line (without
        ``i``, ``message`` and ``wal_bytes_written``). A refused operation
        leaves the model unchanged. ``reopen`` answers the queue count: a clean
        reopen recovers exactly this state; ``persist`` changes nothing."""
        name = op.get("op")
        try:
            if name == "create_queue":
                self.create_queue(op["queue"])
                return {"ok": True, "op": name}
            if name == "delete_queue":
                self.delete_queue(op["queue"])
                return {"ok": True, "op": name}
            if name == "append":
                payloads = [bytes.fromhex(p) for p in op["payloads"]]
                last = self.append(op["queue"], payloads, op.get("position"))
                return {"ok": True, "op": name, "last_position": last}
            if name == "truncate":
                evicted = self.truncate(op["queue"], op["position"])
                return {"ok": True, "op": name, "evicted_records": evicted}
            if name == "persist":
                return {"ok": True, "op": name}
            if name == "reopen":
                return {"ok": True, "op": name, "num_queues": len(self.queues)}
        except ModelError as exc:
            return {"ok": False, "op": name, "error": exc.kind}
        return {"ok": False, "op": name, "error": "Unsupported"}
