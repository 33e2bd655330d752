"""The writer check: the same operations through the implementation and the
reference must leave byte-identical WAL files.

Operations: the short exhaustive traces, workloads whose appends end 0-9
bytes before a block end, then random workloads with reopens, in announced
profiles and file sizes (a workload that needs an operation the
implementation does not announce is unsupported). Each answer is compared
with the model's (``wrong_answer``, or ``position_wrap`` when that deviation
explains it); then the WAL files with the reference's (``wal_bytes``, or
``gc_record_order`` when only the order of a GC pass's position records
differs), and the state the reference reads from them with the model's
(``unreadable_files``). A failure is shrunk by removing operations while the
case still fails with the same class.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any

from mrecordlog.errors import MRecordLogError
from mrecordlog.inspection import inspect_log
from mrecordlog.interchange import Operation, ReopenOp, apply_operations, operation_to_json, pack_wal_image
from mrecordlog.model import Model
from mrecordlog.oracle.checks._images import fit_workload
from mrecordlog.oracle.conformance import CheckContext
from mrecordlog.oracle.deviations import (
    Exchange,
    explaining_answer_deviation,
    only_gc_record_order_differs,
    predicted,
)
from mrecordlog.oracle.workloads import Workload, exhaustive_workloads, generate_workload, padding_workloads

Outcome = tuple[str | None, str, list[dict[str, Any]]]  # (class or None, summary, requests)


def run_writer_check(context: CheckContext) -> None:
    rng = random.Random(context.seed ^ 0xBEEF)
    workload_seed = context.seed * 1_000_003 + 900_000
    curated = [workload for _, workload in exhaustive_workloads()] + padding_workloads()
    while context.time_left():
        if curated:
            workload = curated.pop(0)
            operations: list[Operation] = list(workload.operations)
        else:
            workload = generate_workload(workload_seed, fault="none")
            workload_seed += 1
            operations = []
            for operation in workload.operations:
                operations.append(operation)
                if rng.random() < 0.1:
                    operations.append(ReopenOp())
        workload = fit_workload(workload, context.capabilities)
        needed = {operation_to_json(op)["op"] for op in operations if not isinstance(op, ReopenOp)}
        if not context.capabilities.supports_all(sorted(needed)):
            context.unsupported()
            continue
        failure_class, summary, requests = writer_case(context, workload, operations, context.fresh_directory())
        if failure_class is None:
            context.passed()
        else:
            context.failed(
                failure_class, summary, _shrinker(context, workload, operations, failure_class, summary, requests)
            )
        context.tick()


def _shrinker(
    context: CheckContext,
    workload: Workload,
    operations: list[Operation],
    failure_class: str,
    summary: str,
    requests: list[dict[str, Any]],
) -> Callable[[], tuple[str, dict[str, Any]]]:
    return lambda: _shrink(context, workload, operations, failure_class, summary, requests)


def _shrink(
    context: CheckContext,
    workload: Workload,
    operations: list[Operation],
    failure_class: str,
    summary: str,
    requests: list[dict[str, Any]],
) -> tuple[str, dict[str, Any]]:
    """Remove operations while the case still fails with the same class
    (greedy delta debugging, chunks halving down to single operations)."""
    chunk = max(len(operations) // 2, 1)
    while True:
        removed = False
        start = 0
        while start < len(operations) and context.shrink_time_left():
            candidate = operations[:start] + operations[start + chunk :]
            result, candidate_summary, candidate_requests = writer_case(
                context, workload, candidate, context.fresh_directory("shrink")
            )
            if result == failure_class:
                operations, summary, requests, removed = candidate, candidate_summary, candidate_requests, True
            else:
                start += chunk
        if (chunk == 1 and not removed) or not context.shrink_time_left():
            return summary, {"requests": requests, "checksum": workload.checksum}
        chunk = max(chunk // 2, 1)


def writer_case(context: CheckContext, workload: Workload, operations: list[Operation], case: str) -> Outcome:
    reference = os.path.join(case, "reference")
    theirs = os.path.join(case, "implementation")
    list(apply_operations(reference, operations, checksum=workload.checksum, file_num_bytes=workload.file_num_bytes))
    open_request = {
        "op": "open",
        "dir": theirs,
        "file_num_bytes": workload.file_num_bytes,
        "checksum": workload.checksum,
    }
    requests: list[dict[str, Any]] = []
    exchanges: list[Exchange] = []
    model = Model()

    def send(request: dict[str, Any]) -> dict[str, Any]:
        requests.append(request)
        return context.request(request)

    def opened() -> Outcome | None:
        answer = send(open_request)
        if answer.get("ok"):
            exchanges.append(Exchange("open", open_request, answer.get("num_queues")))
            return None
        failure_class = "announced_unsupported" if answer.get("error") == "Unsupported" else "open_refused"
        return failure_class, f"open answered {answer.get('error')}: {str(answer.get('message'))[:200]}", requests

    refusal = opened()
    if refusal is not None:
        return refusal
    deviation: str | None = None
    for operation in operations:
        if isinstance(operation, ReopenOp):
            send({"op": "close"})
            refusal = opened()
            if refusal is not None:
                return refusal
            continue
        request = operation_to_json(operation)
        answer = send(request)
        exchanges.append(Exchange("op", request, answer))
        if answer.get("error") == "Unsupported":
            send({"op": "close"})
            return "announced_unsupported", f"{request['op']} is announced but answered Unsupported", requests
        expected = model.apply(request)
        if predicted(answer) != expected:
            explained = explaining_answer_deviation(exchanges)
            if explained is None:
                send({"op": "close"})
                return "wrong_answer", f"{request['op']}: expected {expected}, got {predicted(answer)}", requests
            deviation, model = explained
    send({"op": "close"})
    if deviation is not None:
        return deviation, "positions wrap at 2^64 (mrecordlog 0.5)", requests
    if not os.path.isdir(theirs):
        return "wal_bytes", f"open answered ok but no directory {theirs} exists", requests
    ours = pack_wal_image(reference)
    try:
        mine = pack_wal_image(theirs)
    except MRecordLogError as exc:
        return "wal_bytes", f"the implementation's directory cannot be read as WAL files: {exc}", requests
    if ours != mine:
        if only_gc_record_order_differs(reference, theirs, workload.checksum):
            return (
                "gc_record_order",
                f"position records of a GC pass in another order: {_first_difference(ours, mine)}",
                requests,
            )
        return "wal_bytes", f"WAL files differ from the reference's: {_first_difference(ours, mine)}", requests
    try:
        state = inspect_log(theirs).state.to_json_value()
    except MRecordLogError as exc:
        return "unreadable_files", f"the reference cannot read the implementation's files: {exc.kind}: {exc}", requests
    if state != model.state_json_value():
        return "unreadable_files", "the reference reads another state from the implementation's files", requests
    return None, "", requests


def _first_difference(ours: dict[str, Any], theirs: dict[str, Any]) -> str:
    names = [f["name"] for f in ours["files"]], [f["name"] for f in theirs["files"]]
    if names[0] != names[1]:
        return f"files {names[1]} instead of {names[0]}"
    for mine, other in zip(ours["files"], theirs["files"], strict=True):
        if mine["size"] != other["size"]:
            return f"{mine['name']} is {other['size']} bytes instead of {mine['size']}"
        a = _expand(mine)
        b = _expand(other)
        for offset in range(min(len(a), len(b))):
            if a[offset] != b[offset]:
                return f"{mine['name']} differs first at offset {offset}"
        if len(a) != len(b):
            return f"{mine['name']} differs first at offset {min(len(a), len(b))}"
    return "images differ"


def _expand(entry: dict[str, Any]) -> bytes:
    data = bytearray()
    for extent in entry["extents"]:
        offset = extent["offset"]
        chunk = bytes.fromhex(extent["hex"])
        if len(data) < offset:
            data.extend(bytes(offset - len(data)))
        data[offset : offset + len(chunk)] = chunk
    return bytes(data)
