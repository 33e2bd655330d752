"""Read-only inspection: the state a log's files hold, without changing them.

``inspect_log`` replays a directory through ``ReadOnlyStorage``: it creates,
writes, renames and deletes nothing, even on an empty or damaged directory.
``replay_read_only`` is the same replay with what it read (the files, their
sizes, the replay's result), for the operator reports of ``diagnosis``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from mrecordlog._recovery import RecoveryMode, RecoveryReport, ReplayResult, replay
from mrecordlog._storage import OsStorage, ReadOnlyStorage, Storage, file_size
from mrecordlog._wal import DEFAULT_FILE_NUM_BYTES, infer_file_num_bytes, list_wal_files, wal_file_name
from mrecordlog.errors import StorageError
from mrecordlog.outcomes import Record


@dataclass(frozen=True, slots=True)
class QueueState:
    """One queue of a ``LogState``.

    :ivar next_position: the position its next append without an explicit
        position gets.
    :ivar records: its retained records, in position order.
    """

    next_position: int
    records: tuple[Record, ...]


@dataclass(frozen=True, slots=True)
class LogState:
    """Every queue's next position and records: what a log holds (a copy,
    from ``MultiRecordLog.state()`` or ``inspect_log``).

    :ivar queues: each queue's ``QueueState``, by queue name.
    """

    queues: dict[str, QueueState]

    def to_json_value(self) -> dict[str, object]:
        """The state as JSON values: ``{"queues": {name: {"next_position": N,
        "records": [[position, payload_hex], ...]}}}``, as ``state.json`` holds
        it (``to_canonical_json`` serializes it)."""
        return {
            "queues": {
                name: {
                    "next_position": queue.next_position,
                    "records": [[record.position, record.payload.hex()] for record in queue.records],
                }
                for name, queue in self.queues.items()
            }
        }

    def to_canonical_json(self) -> str:
        """The canonical state JSON of ``../shared/vectors/README.md``: sorted
        keys, no spaces, ASCII escapes, one trailing newline."""
        return json.dumps(self.to_json_value(), sort_keys=True, separators=(",", ":")) + "\n"


@dataclass(frozen=True, slots=True)
class Inspection:
    """What ``inspect_log`` found in a directory, without changing it.

    :ivar state: the state a writable ``open`` with the same recovery mode
        would recover.
    :ivar report: what the replay found: files, damage, what it discarded
        (its quarantine fields stay empty: an inspection moves nothing).
    """

    state: LogState
    report: RecoveryReport


@dataclass(frozen=True, slots=True)
class Replayed:
    """A directory replayed read-only: what ``inspect_log`` and the operator
    reports (``mrecordlog.diagnosis``) start from."""

    storage: Storage  # read-only
    directory: str
    file_numbers: list[int]
    file_sizes: dict[int, int]
    file_num_bytes: int
    result: ReplayResult


def replay_read_only(
    directory: str | os.PathLike[str],
    *,
    storage: Storage | None = None,
    recovery: RecoveryMode | str = RecoveryMode.POINT_IN_TIME,
    file_num_bytes: int | None = None,
) -> Replayed:
    """Replay ``directory`` as ``open`` would, writing nothing (raises
    ``CorruptionError`` where ``strict`` refuses, ``StorageError`` when the
    directory is missing or unreadable)."""
    read_only = ReadOnlyStorage(storage if storage is not None else OsStorage())
    path = os.fspath(directory)
    if not read_only.is_dir(path):
        raise StorageError("inspect", path, NotADirectoryError(20, "not a directory (or missing)"))
    file_numbers = list_wal_files(read_only, path)
    sizes = {n: file_size(read_only, os.path.join(path, wal_file_name(n))) for n in file_numbers}
    if file_num_bytes is None:
        file_num_bytes = infer_file_num_bytes(sizes) or DEFAULT_FILE_NUM_BYTES
    result = replay(read_only, path, file_numbers, RecoveryMode.parse(recovery), file_num_bytes=file_num_bytes)
    return Replayed(read_only, path, file_numbers, sizes, file_num_bytes, result)


def inspect_log(
    directory: str | os.PathLike[str],
    *,
    storage: Storage | None = None,
    recovery: RecoveryMode | str = RecoveryMode.POINT_IN_TIME,
    file_num_bytes: int | None = None,
) -> Inspection:
    """The state opening ``directory`` with this recovery mode would recover,
    and the recovery report (raises ``CorruptionError`` where ``strict``
    refuses). Nothing is written: no quarantine, no GC.

    Each file is read as ``file_num_bytes`` long: by default the size the
    files were created with (the most common size, as ``open`` infers it)."""
    result = replay_read_only(directory, storage=storage, recovery=recovery, file_num_bytes=file_num_bytes).result
    queues = result.queues
    state = LogState(
        {name: QueueState(queues.next_position(name), tuple(queues.range(name, None, None))) for name in queues.names()}
    )
    return Inspection(state, result.report)
