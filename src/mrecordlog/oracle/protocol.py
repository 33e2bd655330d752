"""The adapter protocol (``spec/CONFORMANCE.md``), on the implementation side.

An implementation under test answers one JSON request with one JSON answer.
``ProtocolSession`` does that for any Python implementation given as a
``LogFactory``: the reference's own adapter (``python -m mrecordlog.adapter``)
serves it on stdin/stdout, and the conformance kit calls it in-process.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

from mrecordlog.interchange import (
    AppendOp,
    CreateQueueOp,
    DeleteQueueOp,
    PersistOp,
    TruncateOp,
    parse_operation,
)

PROTOCOL_VERSION: Final = 1
LOG_OPS: Final = ("open", "close", "state", "create_queue", "delete_queue", "append", "truncate", "persist")


class LogUnderTest(Protocol):
    """What a Python implementation offers the conformance kit.

    Refusals raise an exception whose ``kind`` attribute is the error kind of
    the interchange format (``AlreadyExists``, ``MissingQueue``, ``Past``,
    ...); any other exception is reported as a ``Panic``.
    """

    def create_queue(self, queue: str) -> object: ...

    def delete_queue(self, queue: str) -> object: ...

    def append_records(self, queue: str, payloads: Sequence[bytes], position: int | None) -> int | None:
        """The last position appended, or None when nothing was appended."""
        ...

    def truncate(self, queue: str, position: int) -> int:
        """The number of records removed."""
        ...

    def persist(self, fsync: bool) -> None: ...

    def state(self) -> dict[str, Any]:
        """The canonical state JSON value: ``{"queues": {name: {"next_position":
        n, "records": [[position, hex], ...]}}}``."""
        ...

    def close(self) -> None: ...


# (directory, file_num_bytes or None, checksum profile or None) -> an open log
LogFactory = Callable[[str, "int | None", "str | None"], LogUnderTest]


def _error(op: str, exc: BaseException) -> dict[str, Any]:
    kind = getattr(exc, "kind", None)
    return {
        "ok": False,
        "op": op,
        "error": kind if isinstance(kind, str) else "Panic",
        "message": f"{type(exc).__name__}: {exc}",
    }


class ProtocolSession:
    """Answers protocol requests for one implementation (one log open at a time)."""

    def __init__(
        self,
        factory: LogFactory,
        *,
        name: str,
        version: str,
        recovery: str,
        checksums: Sequence[str] = ("crc32", "crc32c"),
        ops: Sequence[str] = LOG_OPS,
        file_num_bytes: dict[str, int] | Sequence[int] | None = None,
    ) -> None:
        self._factory = factory
        self._ops = tuple(ops)
        self._hello = {
            "ok": True,
            "op": "hello",
            "name": name,
            "version": version,
            "protocol": PROTOCOL_VERSION,
            "ops": list(ops),
            "checksums": list(checksums),
            "recovery": recovery,
        }
        if file_num_bytes is not None:
            # The sizes open accepts: {"multiple_of": N} or a list (spec/CONFORMANCE.md §2).
            self._hello["file_num_bytes"] = (
                dict(file_num_bytes) if isinstance(file_num_bytes, dict) else list(file_num_bytes)
            )
        self._log: LogUnderTest | None = None

    def handle(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict):
            return {"ok": False, "error": "BadRequest", "message": "a request is a JSON object"}
        op = request.get("op")
        if op == "hello":
            return dict(self._hello)
        if not isinstance(op, str) or op not in self._ops:
            return {"ok": False, "op": op, "error": "Unsupported"}
        try:
            return {"ok": True, "op": op, **self._run(op, request)}
        except Exception as exc:
            return _error(op, exc)

    def _run(self, op: str, request: dict[str, Any]) -> dict[str, Any]:
        if op == "open":
            if self._log is not None:
                # Forgotten first: a close that raises (LogFailed, for returned
                # calls it could not persist) leaves no log open either.
                previous, self._log = self._log, None
                previous.close()
            directory = request["dir"]
            os.makedirs(directory, exist_ok=True)
            self._log = self._factory(directory, request.get("file_num_bytes"), request.get("checksum"))
            return {"num_queues": len(self._log.state()["queues"])}
        log = self._log
        if log is None:
            raise _NotOpen(op)
        if op == "close":
            self._log = None
            log.close()
            return {}
        if op == "state":
            return {"state": log.state()}
        operation = parse_operation(request, f"{op} request")
        if isinstance(operation, CreateQueueOp):
            log.create_queue(operation.queue)
            return {}
        if isinstance(operation, DeleteQueueOp):
            log.delete_queue(operation.queue)
            return {}
        if isinstance(operation, AppendOp):
            return {"last_position": log.append_records(operation.queue, list(operation.payloads), operation.position)}
        if isinstance(operation, TruncateOp):
            return {"evicted_records": log.truncate(operation.queue, operation.position)}
        assert isinstance(operation, PersistOp)
        log.persist(operation.fsync)
        return {}


class _NotOpen(Exception):
    kind = "NotOpen"

    def __init__(self, op: str) -> None:
        super().__init__(f"{op} before open")
