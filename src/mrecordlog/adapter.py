"""The reference's own conformance adapter: ``python -m mrecordlog.adapter``.

It serves the adapter protocol of ``spec/CONFORMANCE.md`` on stdin/stdout for
the reference implementation (``--recovery`` picks the recovery mode it
announces and uses). ``reference_factory`` is also what the in-process
conformance kit runs against the core.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TextIO

from mrecordlog.log import MultiRecordLog
from mrecordlog.oracle.protocol import LogFactory, ProtocolSession
from mrecordlog.policy import PersistAction


class ReferenceLog:
    """``MultiRecordLog`` seen through the kit's ``LogUnderTest`` protocol."""

    def __init__(self, log: MultiRecordLog) -> None:
        self._log = log

    def create_queue(self, queue: str) -> object:
        return self._log.create_queue(queue)

    def delete_queue(self, queue: str) -> object:
        return self._log.delete_queue(queue)

    def append_records(self, queue: str, payloads: Sequence[bytes], position: int | None) -> int | None:
        return self._log.append_records(queue, payloads, position=position).last_position

    def truncate(self, queue: str, position: int) -> int:
        return self._log.truncate(queue, position).evicted_records

    def persist(self, fsync: bool) -> None:
        self._log.persist(PersistAction.FLUSH_AND_FSYNC if fsync else PersistAction.FLUSH)

    def state(self) -> dict[str, Any]:
        return self._log.state().to_json_value()

    def close(self) -> None:
        self._log.close()


def reference_factory(recovery: str = "point_in_time") -> LogFactory:
    def open_log(directory: str, file_num_bytes: int | None, checksum: str | None) -> ReferenceLog:
        return ReferenceLog(
            MultiRecordLog.open(directory, file_num_bytes=file_num_bytes, checksum=checksum, recovery=recovery)
        )

    return open_log


def _version() -> str:
    try:
        return version("mrecordlog")
    except PackageNotFoundError:
        return "unknown"


def reference_session(recovery: str = "point_in_time") -> ProtocolSession:
    return ProtocolSession(
        reference_factory(recovery), name="mrecordlog-python (reference)", version=_version(), recovery=recovery
    )


def serve(session: ProtocolSession, source: TextIO, sink: TextIO) -> None:
    """Answer each request line until end of input; a line that is not JSON
    gets a BadRequest answer."""
    for line in source:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except json.JSONDecodeError as exc:
            answer: dict[str, Any] = {"ok": False, "error": "BadRequest", "message": f"not JSON: {exc}"}
        else:
            answer = session.handle(request)
        sink.write(json.dumps(answer, sort_keys=True, separators=(",", ":")) + "\n")
        sink.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mrecordlog.adapter", description=__doc__)
    parser.add_argument("--recovery", choices=["point_in_time", "strict", "skip"], default="point_in_time")
    args = parser.parse_args(argv)
    serve(reference_session(args.recovery), sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
