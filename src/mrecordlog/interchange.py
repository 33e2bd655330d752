"""The JSON interchange formats: operations, results and WAL images.

These are the formats of the vectors recorded from mrecordlog 0.5
(``../shared/vectors/README.md``, restated in ``spec/FORMAT.md``): ``ops.jsonl``
lines, ``results.jsonl`` lines and ``wal.image.json``. ``apply_operations``
runs operations against the reference and answers one result per operation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from mrecordlog._codec import BLOCK_NUM_BYTES, ChecksumProfile
from mrecordlog._recovery import RecoveryMode
from mrecordlog._storage import OsStorage, ReadOnlyStorage, Storage
from mrecordlog._wal import list_wal_files, parse_wal_file_name, wal_file_name
from mrecordlog.errors import InvalidArgument, MRecordLogError
from mrecordlog.log import MultiRecordLog
from mrecordlog.policy import PersistAction

IMAGE_FORMAT = "wal-image/1"


@dataclass(frozen=True, slots=True)
class CreateQueueOp:
    queue: str


@dataclass(frozen=True, slots=True)
class DeleteQueueOp:
    queue: str


@dataclass(frozen=True, slots=True)
class AppendOp:
    queue: str
    position: int | None
    payloads: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class TruncateOp:
    queue: str
    position: int


@dataclass(frozen=True, slots=True)
class PersistOp:
    fsync: bool


@dataclass(frozen=True, slots=True)
class ReopenOp:
    pass


Operation = CreateQueueOp | DeleteQueueOp | AppendOp | TruncateOp | PersistOp | ReopenOp

_OP_NAMES: dict[type, str] = {
    CreateQueueOp: "create_queue",
    DeleteQueueOp: "delete_queue",
    AppendOp: "append",
    TruncateOp: "truncate",
    PersistOp: "persist",
    ReopenOp: "reopen",
}


def op_name(operation: Operation) -> str:
    return _OP_NAMES[type(operation)]


def operation_to_json(operation: Operation) -> dict[str, Any]:
    """The ``ops.jsonl`` value of an operation."""
    value: dict[str, Any] = {"op": op_name(operation)}
    if isinstance(operation, (CreateQueueOp, DeleteQueueOp)):
        value["queue"] = operation.queue
    elif isinstance(operation, AppendOp):
        value.update(
            queue=operation.queue,
            position=operation.position,
            payloads=[payload.hex() for payload in operation.payloads],
        )
    elif isinstance(operation, TruncateOp):
        value.update(queue=operation.queue, position=operation.position)
    elif isinstance(operation, PersistOp):
        value["fsync"] = operation.fsync
    return value


def _field(line: dict[str, Any], name: str, kind: type, where: str) -> Any:
    if name not in line:
        raise InvalidArgument(f"{where}: missing field {name!r}")
    value = line[name]
    if kind is int and isinstance(value, bool):
        raise InvalidArgument(f"{where}: field {name!r} must be an integer, got {value!r}")
    if not isinstance(value, kind):
        raise InvalidArgument(f"{where}: field {name!r} must be {kind.__name__}, got {value!r}")
    return value


def parse_operation(line: object, where: str = "operation") -> Operation:
    """Validate one decoded ``ops.jsonl`` line."""
    if not isinstance(line, dict):
        raise InvalidArgument(f"{where}: an operation is a JSON object, got {line!r}")
    op = line.get("op")
    if op == "create_queue":
        return CreateQueueOp(_field(line, "queue", str, where))
    if op == "delete_queue":
        return DeleteQueueOp(_field(line, "queue", str, where))
    if op == "truncate":
        return TruncateOp(_field(line, "queue", str, where), _field(line, "position", int, where))
    if op == "append":
        queue = _field(line, "queue", str, where)
        position = None if line.get("position") is None else _field(line, "position", int, where)
        payloads = []
        for index, payload in enumerate(_field(line, "payloads", list, where)):
            if not isinstance(payload, str):
                raise InvalidArgument(f"{where}: payload {index} must be a hex string")
            try:
                payloads.append(bytes.fromhex(payload))
            except ValueError:
                raise InvalidArgument(f"{where}: payload {index} is not valid hex") from None
        return AppendOp(queue, position, tuple(payloads))
    if op == "persist":
        return PersistOp(_field(line, "fsync", bool, where))
    if op == "reopen":
        return ReopenOp()
    raise InvalidArgument(f"{where}: unknown op {op!r} (expected one of {', '.join(_OP_NAMES.values())})")


def read_operations(lines: Iterable[str], source: str = "ops.jsonl") -> list[Operation]:
    """Parse JSONL operations; blank lines are ignored."""
    operations = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        where = f"{source} line {number}"
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"{where}: not JSON: {exc}") from None
        operations.append(parse_operation(value, where))
    return operations


def result_line(value: dict[str, Any]) -> str:
    """One results line: sorted keys, no spaces (as the recorded vectors)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _error_result(exc: BaseException, op: str, index: int | None) -> dict[str, Any]:
    kind = exc.kind if isinstance(exc, MRecordLogError) else "Panic"
    value: dict[str, Any] = {"ok": False, "op": op, "error": kind, "message": str(exc)}
    if index is not None:
        value["i"] = index
    return value


def execute(log: MultiRecordLog, operation: Operation) -> dict[str, Any]:
    """Run one operation other than ``reopen``; its outcome fields (as in
    ``results.jsonl``). Raises the log's errors."""
    if isinstance(operation, CreateQueueOp):
        return {"wal_bytes_written": log.create_queue(operation.queue).wal_bytes_written}
    if isinstance(operation, DeleteQueueOp):
        return {"wal_bytes_written": log.delete_queue(operation.queue).wal_bytes_written}
    if isinstance(operation, AppendOp):
        appended = log.append_records(operation.queue, operation.payloads, position=operation.position)
        return {"last_position": appended.last_position, "wal_bytes_written": appended.wal_bytes_written}
    if isinstance(operation, TruncateOp):
        truncated = log.truncate(operation.queue, operation.position)
        return {"evicted_records": truncated.evicted_records, "wal_bytes_written": truncated.wal_bytes_written}
    if isinstance(operation, PersistOp):
        log.persist(PersistAction.FLUSH_AND_FSYNC if operation.fsync else PersistAction.FLUSH)
        return {}
    raise InvalidArgument("reopen is not a log operation: the caller closes and opens the log")


def apply_operations(
    directory: str,
    operations: Iterable[Operation],
    *,
    checksum: ChecksumProfile | str | None = None,
    file_num_bytes: int | None = None,
    storage: Storage | None = None,
    on_open: Callable[[MultiRecordLog], None] | None = None,
    recovery: RecoveryMode | str = RecoveryMode.POINT_IN_TIME,
) -> Iterator[dict[str, Any]]:
    """Open the log in ``directory``, run ``operations``, yield one result each.

    As the recording driver did: an open that fails yields an ``op: open``
    error and stops; a ``reopen`` that fails yields its error and stops; an
    exception that is not one of this package's errors yields a ``Panic`` and
    stops. The log is closed at the end.
    """

    def open_log() -> MultiRecordLog:
        log = MultiRecordLog.open(
            directory, checksum=checksum, file_num_bytes=file_num_bytes, storage=storage, recovery=recovery
        )
        if on_open is not None:
            on_open(log)
        return log

    try:
        log = open_log()
    except MRecordLogError as exc:
        yield _error_result(exc, "open", None)
        return
    try:
        for index, operation in enumerate(operations):
            op = op_name(operation)
            try:
                if isinstance(operation, ReopenOp):
                    log.close()
                    log = open_log()
                    result: dict[str, Any] = {"i": index, "ok": True, "op": op, "num_queues": len(log.list_queues())}
                else:
                    result = {"i": index, "ok": True, "op": op, **execute(log, operation)}
                yield result
            except MRecordLogError as exc:
                yield _error_result(exc, op, index)
                if isinstance(operation, ReopenOp):
                    return
            except Exception as exc:  # a bug: report it as the driver reports a panic
                yield _error_result(exc, op, index)
                return
    finally:
        log.close()


# -- WAL images ---------------------------------------------------------------


def pack_wal_image(directory: str, storage: Storage | None = None) -> dict[str, Any]:
    """The ``wal-image/1`` JSON value of a directory's WAL files (read-only)."""
    storage = ReadOnlyStorage(storage if storage is not None else OsStorage())
    files = []
    for number in list_wal_files(storage, directory):
        name = wal_file_name(number)
        handle = storage.open_file(os.path.join(directory, name), writable=False)
        try:
            size = handle.size()
            extents = []
            for offset in range(0, size, BLOCK_NUM_BYTES):
                block = handle.read_at(offset, BLOCK_NUM_BYTES).rstrip(b"\0")
                if block:
                    extents.append({"offset": offset, "hex": block.hex()})
        finally:
            handle.close()
        files.append({"name": name, "size": size, "extents": extents})
    return {"format": IMAGE_FORMAT, "files": files}


def unpack_wal_image(image: dict[str, Any], directory: str, storage: Storage | None = None) -> None:
    """Create the image's files in ``directory`` (zero-filled, then the extents)."""
    if image.get("format") != IMAGE_FORMAT:
        raise InvalidArgument(f"not a {IMAGE_FORMAT} image: format is {image.get('format')!r}")
    storage = storage if storage is not None else OsStorage()
    storage.make_dirs(directory)
    for entry in image["files"]:
        name = entry["name"]
        if parse_wal_file_name(name) is None:
            raise InvalidArgument(f"image file name {name!r} is not a WAL file name")
        handle = storage.create_file(os.path.join(directory, name), entry["size"])
        try:
            for extent in entry["extents"]:
                handle.write_at(extent["offset"], bytes.fromhex(extent["hex"]))
        finally:
            handle.close()
