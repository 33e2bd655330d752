"""The continuation check: recover an image, write on, reopen, and get exactly
the recovered state plus what was written.

From crash and damaged images (``checks._images``; a share of the damaged
ones have a frame whose length points past its block, which makes every
reader abandon the block there), the implementation opens the image in its
announced mode and answers its state S. Then it gets the operations of the
reference's own continuation check (``crashcheck.continuation_operations``):
the first lost operation retried (or, when S is no prefix of the history, an
append of a lost record's size to its queue), so that the new frame ends
exactly where stale frames after the resume point would begin, an fsync and a
reopen; then appends across a block end and into the next file, a truncate
that lets GC collect files, an append and an fsync, and a final reopen. Every
answer must be the model's from S, and every reopen must give S plus the
operations so far. Records that come back that neither S nor the operations
hold are ``stale_records``; any other difference after a reopen is
``continuation_state``; a wrong answer is ``wrong_answer``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from mrecordlog.fault_injection import materialize
from mrecordlog.interchange import (
    AppendOp,
    CreateQueueOp,
    Operation,
    PersistOp,
    ReopenOp,
    operation_to_json,
    pack_wal_image,
)
from mrecordlog.model import Model
from mrecordlog.oracle.checks._images import ImageCase, fit_workload, image_cases
from mrecordlog.oracle.checks.reader import canonical
from mrecordlog.oracle.conformance import CheckContext
from mrecordlog.oracle.crashcheck import LOG_DIR, continuation_operations
from mrecordlog.oracle.deviations import (
    Exchange,
    explaining_answer_deviation,
    matches_variant,
    model_from_state,
    predicted,
    short_files_expectation,
)
from mrecordlog.oracle.workloads import generate_workload

# Stands for the directory the image is unpacked in, in a reproducer's requests.
IMAGE_DIR = "<the image>"
NEEDED_OPS = ("create_queue", "append", "truncate", "persist")
# (class or None, summary, requests, expected, got)
Outcome = tuple[str | None, str, list[dict[str, Any]], Any, Any]


def run_continuation_check(context: CheckContext) -> None:
    if not context.capabilities.supports_all(NEEDED_OPS):
        context.unsupported()
        return
    rng = random.Random(context.seed ^ 0xC0471)
    workload_seed = context.seed * 1_000_003 + 700_000
    while context.time_left():
        shape = rng.choice(("plain", "multiblock"))
        workload = fit_workload(generate_workload(workload_seed, fault="none", shape=shape), context.capabilities)
        workload_seed += 1
        for case in image_cases(workload, rng, crash_share=0.05):
            if not context.time_left():
                return
            continuation_case(context, case, rng.getrandbits(32))
        context.tick()


def _lost_record_append(case: ImageCase, recovered: dict[str, Any], rng: random.Random) -> Operation | None:
    """An append to a recovered queue of a payload as long as the first record
    of that queue that the image held and the recovery lost."""
    fuller = case.history.models[-1].state_json_value()
    candidates = []
    for name, queue in recovered["queues"].items():
        kept = {position for position, _ in queue["records"]}
        lost = [
            payload for position, payload in fuller["queues"].get(name, {}).get("records", []) if position not in kept
        ]
        if lost:
            candidates.append((name, len(bytes.fromhex(lost[0]))))
    if not candidates:
        return None
    name, size = rng.choice(sorted(candidates))
    return AppendOp(name, None, (rng.randbytes(size),))


@dataclass
class Plan:
    model: Model  # of the recovered state
    operations: list[Operation]
    # The operations lost in the crash after the retried one: frames of
    # theirs left after the resume point are what a writer must not revive.
    later_lost: list[Operation]


def plan(case: ImageCase, recovered: dict[str, Any], seed: int) -> Plan:
    """The model of the recovered state and the continuation's operations."""
    rng = random.Random(seed)
    state = canonical(recovered)
    retry: Operation | None = None
    later_lost: list[Operation] = []
    if case.history.knows(state):
        model, lost = case.history.after(state)
        # The first lost operation that writes a record: its record is byte
        # for byte the lost one, so it ends where stale frames would begin.
        writes: list[Operation] = [op for op in lost if not isinstance(op, PersistOp)]
        retry = writes[0] if writes else None
        later_lost = writes[1:]
    else:
        model = model_from_state(recovered)
        retry = _lost_record_append(case, recovered, rng)
    operations = [*continuation_operations(model, retry, case.workload.file_num_bytes, seed), ReopenOp()]
    return Plan(model, operations, later_lost)


def continuation_case(context: CheckContext, case: ImageCase, seed: int) -> None:
    directory = context.fresh_directory()
    materialize(case.image, directory, root=LOG_DIR)
    image = pack_wal_image(directory)
    mode = context.capabilities.recovery
    file_num_bytes = case.workload.file_num_bytes
    open_request = {"op": "open", "dir": directory, "file_num_bytes": file_num_bytes}
    opened = context.request(open_request)
    if not opened.get("ok"):
        return  # what it recovers (or refuses) is the reader check's question
    answer = context.request({"op": "state"})
    if not answer.get("ok") or not isinstance(answer.get("state"), dict):
        context.request({"op": "close"})
        return
    recovered = answer["state"]
    steps = plan(case, recovered, seed)
    operations = steps.operations
    outcome = run_operations(context, directory, file_num_bytes, recovered, steps.model, operations, steps.later_lost)
    failure_class, summary, requests, expected, got = outcome
    if failure_class is None:
        context.passed()
        return
    del expected, got, requests

    def shrink() -> tuple[str, dict[str, Any]]:
        return shrink_case(context, case, image, mode, file_num_bytes, recovered, steps, outcome)

    context.failed(failure_class, summary, shrink)


def shrink_case(
    context: CheckContext,
    case: ImageCase,
    image: dict[str, Any],
    mode: str,
    file_num_bytes: int,
    recovered: dict[str, Any],
    steps: Plan,
    outcome: Outcome,
) -> tuple[str, dict[str, Any]]:
    """Remove operations one at a time while the case, run again from a fresh
    copy of the image, fails with the same class."""
    failure_class = outcome[0]
    operations = steps.operations
    index = 0
    while index < len(operations) and context.shrink_time_left():
        candidate = operations[:index] + operations[index + 1 :]
        directory = context.fresh_directory("shrink")
        materialize(case.image, directory, root=LOG_DIR)
        opened = context.request({"op": "open", "dir": directory, "file_num_bytes": file_num_bytes})
        again: Outcome | None = None
        if opened.get("ok"):
            answer = context.request({"op": "state"})
            if answer.get("ok") and answer.get("state") == recovered:
                model = model_from_state(recovered)
                again = run_operations(
                    context, directory, file_num_bytes, recovered, model, candidate, steps.later_lost
                )
            else:
                context.request({"op": "close"})
        if again is not None and again[0] == failure_class:
            operations, outcome = candidate, again
        else:
            index += 1
    _, summary, requests, expected, got = outcome
    open_request = {"op": "open", "dir": IMAGE_DIR, "file_num_bytes": file_num_bytes}
    requests = [{**request, "dir": IMAGE_DIR} if "dir" in request else request for request in requests]
    return summary, {
        "image": image,
        "recovery": mode,
        "recovered": recovered,
        "requests": [open_request, {"op": "state"}, *requests],
        "expected": expected,
        "got": got,
    }


def run_operations(
    context: CheckContext,
    directory: str,
    file_num_bytes: int,
    recovered: dict[str, Any],
    model: Model,
    operations: list[Operation],
    later_lost: list[Operation],
) -> Outcome:
    """Send ``operations`` to the open log, comparing with ``model``; closes the log."""
    requests: list[dict[str, Any]] = []
    exchanges: list[Exchange] = []
    written: set[tuple[str, int, str]] = set()
    open_request = {"op": "open", "dir": directory, "file_num_bytes": file_num_bytes}

    def send(request: dict[str, Any]) -> dict[str, Any]:
        requests.append(request)
        return context.request(request)

    for operation in operations:
        if isinstance(operation, ReopenOp):
            send({"op": "close"})
            answer = send(open_request)
            if not answer.get("ok"):
                return (
                    "continuation_state",
                    f"reopening after the continuation failed: {answer.get('error')}",
                    requests,
                    model.state_json_value(),
                    answer,
                )
            state_answer = send({"op": "state"})
            got = state_answer.get("state") if state_answer.get("ok") else state_answer
            expected = model.state_json_value()
            if got != expected:
                send({"op": "close"})
                if matches_variant(short_files_expectation(directory, context.capabilities.recovery), got):
                    summary = "the files the implementation wrote end in an incomplete block, which it then ignores"
                    return "short_files", summary, requests, expected, got
                return _state_difference(recovered, written, operations, later_lost, expected, got, requests)
            continue
        request = operation_to_json(operation)
        answer = send(request)
        exchanges.append(Exchange("op", request, answer))
        if answer.get("error") == "Unsupported":
            send({"op": "close"})
            summary = f"{request['op']} is announced but answered Unsupported"
            return "announced_unsupported", summary, requests, None, answer
        expected_answer = model.apply(request)
        if predicted(answer) != expected_answer:
            explained = explaining_answer_deviation(exchanges, start=recovered)
            if explained is None:
                send({"op": "close"})
                return (
                    "wrong_answer",
                    f"{request['op']} after recovery: expected {expected_answer}, got {predicted(answer)}",
                    requests,
                    expected_answer,
                    predicted(answer),
                )
            failure_class, model = explained
            send({"op": "close"})
            return failure_class, "a known answer deviation", requests, expected_answer, predicted(answer)
        if request["op"] == "append" and answer.get("ok") and answer.get("last_position") is not None:
            last = answer["last_position"]
            for offset, payload in enumerate(reversed(request["payloads"])):
                written.add((request["queue"], last - offset, payload))
    send({"op": "close"})
    return None, "", requests, None, None


def _state_difference(
    recovered: dict[str, Any],
    written: set[tuple[str, int, str]],
    operations: list[Operation],
    later_lost: list[Operation],
    expected: dict[str, Any],
    got: Any,
    requests: list[dict[str, Any]],
) -> Outcome:
    if not isinstance(got, dict) or not isinstance(got.get("queues"), dict):
        return "continuation_state", "the state after the reopen is not a state", requests, expected, got
    stale = _stale_records(recovered, written, operations, got) or _revived_operations(expected, later_lost, got)
    if stale:
        return (
            "stale_records",
            f"after writing on and reopening, {stale} came back: neither the recovered state nor the new "
            "operations hold them (stale frames after the resume point)",
            requests,
            expected,
            got,
        )
    return (
        "continuation_state",
        "after writing on and reopening, the state is not the recovered state plus the new operations",
        requests,
        expected,
        got,
    )


def _stale_records(
    recovered: dict[str, Any], written: set[tuple[str, int, str]], operations: list[Operation], got: dict[str, Any]
) -> str | None:
    """Records or queues in ``got`` that neither the recovered state nor the operations made."""
    held = {
        (name, position, payload)
        for name, queue in recovered["queues"].items()
        for position, payload in queue["records"]
    } | written
    created = {op.queue for op in operations if isinstance(op, CreateQueueOp)} | set(recovered["queues"])
    stale = [
        f"record {name!r}@{position}"
        for name, queue in got["queues"].items()
        for position, payload in queue.get("records", [])
        if (name, position, payload) not in held
    ] + [f"queue {name!r}" for name in got["queues"] if name not in created]
    if not stale:
        return None
    return ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")


def _revived_operations(expected: dict[str, Any], later_lost: list[Operation], got: dict[str, Any]) -> str | None:
    """Whether ``got`` is the expected state plus the first operations lost in
    the crash after the retried one (their frames replayed again)."""
    model = model_from_state(expected)
    for count, operation in enumerate(later_lost, start=1):
        model.apply(operation_to_json(operation))
        if model.state_json_value() == got:
            names = ", ".join(operation_to_json(op)["op"] for op in later_lost[:count])
            return f"the effect of {count} operation(s) lost in the crash ({names})"
    return None
