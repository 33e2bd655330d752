"""The crash check: crash images of the implementation's own writes, judged
by its announced recovery mode (ALICE, OSDI '14, over the fault layer).

Each case runs a generated operation sequence (appends, truncates, queue
changes, persists with and without fsync, reopens, small files that roll)
through a second adapter process under ``strace`` (``oracle.tracer``). The
trace is replayed into ``SimulatedDisk`` (``oracle.replay``); before every
call that changes a file, a process crash and power losses (writes kept,
dropped or torn at sectors, in or out of order) leave images. The main
adapter opens each image and answers its state, which must be allowed:

- ``point_in_time``/``strict``: the model's state after a prefix of the
  issued operations containing every acknowledged one; ``strict`` may refuse
  with ``Corruption`` an image whose writes a power loss kept out of order;
- ``skip``: no record that was never written, none acknowledged lost.

An operation is acknowledged for a power loss once a later ``persist`` with
``fsync: true`` was answered ok before the crash, for a process crash once a
later ``persist`` (any) was. Classes: ``lost_durable_write`` (an
acknowledged operation missing), ``non_prefix_recovery`` (no prefix gives
the state), ``unwritten_record``, ``crash_refused``. The check is unavailable
(reported, never passed) without ``strace``, ptrace or an adapter command.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from mrecordlog.fault_injection import (
    SimulatedDisk,
    enumerate_choices,
    materialize,
    power_loss_image,
    process_crash_image,
    random_choices,
)
from mrecordlog.interchange import Operation, PersistOp, ReopenOp, operation_to_json, pack_wal_image
from mrecordlog.model import Model
from mrecordlog.oracle.checks._images import fit_workload
from mrecordlog.oracle.checks.reader import canonical, open_and_read, refused
from mrecordlog.oracle.conformance import CheckContext
from mrecordlog.oracle.crashcheck import History, in_order, judge_crash_state, torn_choices
from mrecordlog.oracle.deviations import matches_variant, predicted, short_files_expectation
from mrecordlog.oracle.replay import ProtocolPosition, Replay
from mrecordlog.oracle.trace import Link, TraceEvent, Unmodelled
from mrecordlog.oracle.tracer import TracingUnavailable, strace_unavailable, trace_adapter_session
from mrecordlog.oracle.workloads import generate_workload

NEEDED_OPS: Final = ("create_queue", "append", "persist")
POWER_LOSSES_PER_POINT: Final = 2
# Up to this many pending operations, a crash point's power losses are enumerated.
EXHAUSTIVE_PENDING: Final = 3
MAX_IMAGES_PER_CASE: Final = 120


@dataclass(frozen=True)
class TracedCase:
    """One traced run: the requests sent, the answers, the events, and for
    each request the operation it carries (None: hello, open, close)."""

    requests: list[dict[str, Any]]
    answers: list[dict[str, Any]]
    events: list[TraceEvent]
    operations: list[Operation | None]
    root: str
    log_dir: str
    file_num_bytes: int


@dataclass(frozen=True)
class CrashImage:
    kind: str  # "process_crash" | "power_loss"
    image: SimulatedDisk
    ordered: bool
    position: ProtocolPosition
    event_index: int


def unavailable(context: CheckContext) -> str | None:
    if context.adapter_command is None:
        return "it needs an adapter command (the in-process kit has none)"
    return strace_unavailable()


def run_crash_check(context: CheckContext) -> None:
    reason = unavailable(context)
    if reason is not None:
        context.report.notes.append(f"crash check unavailable: {reason}")
        return
    if not context.capabilities.supports_all(NEEDED_OPS):
        context.unsupported()
        return
    rng = random.Random(context.seed ^ 0xC4A54)
    workload_seed = context.seed * 1_000_003 + 300_000
    images_started = time.perf_counter()
    while context.time_left():
        workload = fit_workload(generate_workload(workload_seed, fault="none"), context.capabilities)
        workload_seed += 1
        operations = [op for op in workload.operations if operation_to_json(op)["op"] in context.capabilities.ops]
        operations = _with_persists_and_reopens(operations, rng)
        try:
            case = trace_case(context, operations, workload.file_num_bytes, workload.checksum)
        except TracingUnavailable as exc:
            context.report.notes.append(f"crash check unavailable: {exc}")
            return
        if case is None:
            continue
        unmodelled = unmodelled_effects(case)
        if unmodelled:
            # Images of effects the model cannot follow would be guesses.
            context.unsupported()
            for what in unmodelled[:3]:
                note = f"crash check: a case was not judged, its trace has what the model cannot follow: {what}"
                if note not in context.report.notes:
                    context.report.notes.append(note)
            continue
        seed = rng.getrandbits(32)
        shrink = shrinker(context, operations, workload.file_num_bytes, workload.checksum, seed)
        judge_traced_case(context, case, random.Random(seed), shrink)
        context.tick()
    seconds = time.perf_counter() - images_started
    stats = context.stats
    if stats.run:
        context.report.notes.append(
            f"crash check: {stats.run} images in {seconds:.1f} s ({stats.run / max(seconds, 1e-9):.1f} per second)"
        )


def _with_persists_and_reopens(operations: list[Operation], rng: random.Random) -> list[Operation]:
    result: list[Operation] = []
    for operation in operations:
        result.append(operation)
        roll = rng.random()
        if roll < 0.25:
            result.append(PersistOp(rng.random() < 0.6))
        elif roll < 0.3:
            result.append(ReopenOp())
    result.append(PersistOp(True))
    return result


def trace_case(
    context: CheckContext, operations: list[Operation], file_num_bytes: int, checksum: str
) -> TracedCase | None:
    """Run the operations through a traced adapter; None when its answers
    disagree with the model (the live check's question, not this one's)."""
    assert context.adapter_command is not None
    root = os.path.realpath(context.fresh_directory("traced"))
    os.makedirs(root)
    log_dir = os.path.join(root, "log")
    open_request = {"op": "open", "dir": log_dir, "file_num_bytes": file_num_bytes, "checksum": checksum}
    reopen_request = {key: value for key, value in open_request.items() if key != "checksum"}
    requests: list[dict[str, Any]] = [{"op": "hello"}, open_request]
    carried: list[Operation | None] = [None, None]
    for operation in operations:
        if isinstance(operation, ReopenOp):
            requests += [{"op": "close"}, reopen_request]
            carried += [None, None]
        else:
            requests.append(operation_to_json(operation))
            carried.append(operation)
    requests.append({"op": "close"})
    carried.append(None)
    answers, events = trace_adapter_session(context.adapter_command, requests, root=root, timeout=context.timeout)
    model = Model()
    for request, carried_operation, answer in zip(requests, carried, answers, strict=True):
        if carried_operation is None:
            if not answer.get("ok"):
                return None
            continue
        if model.apply(request) != predicted(answer):
            return None
    return TracedCase(requests, answers, events, carried, root, log_dir, file_num_bytes)


def unmodelled_effects(case: TracedCase) -> list[str]:
    """What the trace holds that the replay cannot model (``Unmodelled``
    events, hard links)."""
    return sorted(
        {f"{event.syscall}: {event.detail}" for event in case.events if isinstance(event, Unmodelled)}
        | {f"link {event.source} -> {event.destination}" for event in case.events if isinstance(event, Link)}
    )


def crash_images(case: TracedCase, rng: random.Random) -> list[CrashImage]:
    """The images of every crash point of the trace (sampled down to
    ``MAX_IMAGES_PER_CASE``)."""
    images: list[CrashImage] = []
    current = [0]  # the index of the event about to be applied

    def before(disk: SimulatedDisk, position: ProtocolPosition, point: int) -> None:
        images.append(CrashImage("process_crash", process_crash_image(disk), True, position, current[0]))
        pending = disk.pending()
        if not pending:
            return
        if len(pending) <= EXHAUSTIVE_PENDING:
            # Few unsynced operations: every keep/drop combination of them.
            every = enumerate_choices(pending, max_images=2 ** len(pending), tear_variants=False)
        else:
            every = (random_choices(pending, rng, tear_probability=0.2) for _ in range(POWER_LOSSES_PER_POINT))
        for choices in every:
            image = power_loss_image(disk, choices)
            images.append(CrashImage("power_loss", image, in_order(choices), position, current[0]))
        torn = torn_choices(disk, rng)
        if torn is not None:
            images.append(CrashImage("power_loss", power_loss_image(disk, torn), in_order(torn), position, current[0]))

    state = Replay(SimulatedDisk(), case.root, "/", before)
    state.disk.make_dirs("/")
    for index, event in enumerate(case.events):
        current[0] = index
        state.apply(event)
    final = state.disk
    images.append(CrashImage("process_crash", process_crash_image(final), True, state.position, len(case.events)))
    state.close()
    if len(images) > MAX_IMAGES_PER_CASE:
        # Keep the last image (everything answered) and a sample of the rest.
        images = [*rng.sample(images[:-1], MAX_IMAGES_PER_CASE - 1), images[-1]]
    return images


def history_at(case: TracedCase, position: ProtocolPosition) -> History:
    """The history of the operations issued by a crash at ``position``, with
    their acknowledgements."""
    history = History()
    for number, (operation, answer) in enumerate(zip(case.operations, case.answers, strict=True)):
        if number >= position.requests_read:
            break
        if operation is None:
            continue
        history.begin(operation)
        if number >= position.answers_written:
            break  # in flight: it may or may not be on disk
        history.settle(applied=bool(answer.get("ok")))
        if isinstance(operation, PersistOp) and answer.get("ok"):
            history.acknowledge(process=True, power=operation.fsync)
    return history


Judged = tuple["CrashImage", str, Any, "tuple[str, str] | None"]
Shrinker = Callable[[], tuple[str, dict[str, Any]]]


def judged_images(context: CheckContext, case: TracedCase, rng: random.Random) -> Iterator[Judged]:
    """Each crash image of the case, materialized, recovered by the adapter
    and judged: (image, its directory, the adapter's answer, the failure
    class and message or None)."""
    mode = context.capabilities.recovery
    answers_by_image: dict[str, Any] = {}
    log_path = "/" + os.path.relpath(case.log_dir, case.root)
    for crash in crash_images(case, rng):
        directory = context.fresh_directory("image")
        if crash.image.is_dir(log_path):
            materialize(crash.image, directory, root=log_path)
        else:
            os.makedirs(directory)
        key = _digest(directory)
        got = answers_by_image.get(key)
        if got is None:
            _, got = open_and_read(context, directory, case.file_num_bytes)
            answers_by_image[key] = got
        failure = _judge(mode, crash, got, history_at(case, crash.position))
        if failure is not None and matches_variant(short_files_expectation(directory, mode), got):
            failure = ("short_files", "an incomplete last block was ignored, or a 0-byte first file refused")
        yield crash, directory, got, failure


def judge_traced_case(
    context: CheckContext,
    case: TracedCase,
    rng: random.Random,
    shrink: Callable[[str, tuple[str, dict[str, Any]]], Shrinker],
) -> None:
    mode = context.capabilities.recovery
    for crash, directory, got, failure in judged_images(context, case, rng):
        if not context.time_left():
            return
        if failure is None:
            context.passed()
            continue
        failure_class, message = failure
        first = (message, _reproducer(case, crash, directory, mode, got, message))
        context.failed(failure_class, message, shrink(failure_class, first))


def shrinker(
    context: CheckContext, operations: list[Operation], file_num_bytes: int, checksum: str, seed: int
) -> Callable[[str, tuple[str, dict[str, Any]]], Shrinker]:
    """For a failure class, a function that removes operations (chunks
    halving down to single ones) while a traced run of the rest still has a
    crash image failing with that class; the last such image is kept."""

    def for_class(failure_class: str, first: tuple[str, dict[str, Any]]) -> Shrinker:
        def shrink() -> tuple[str, dict[str, Any]]:
            best = first
            remaining = list(operations)
            chunk = max(len(remaining) // 2, 1)
            while context.shrink_time_left():
                removed = False
                start = 0
                while start < len(remaining) and context.shrink_time_left():
                    candidate = remaining[:start] + remaining[start + chunk :]
                    found = _first_failure(context, candidate, file_num_bytes, checksum, seed, failure_class)
                    if found is not None:
                        remaining, best, removed = candidate, found, True
                    else:
                        start += chunk
                if chunk == 1 and not removed:
                    break
                chunk = max(chunk // 2, 1)
            return best

        return shrink

    return for_class


def _first_failure(
    context: CheckContext,
    operations: list[Operation],
    file_num_bytes: int,
    checksum: str,
    seed: int,
    failure_class: str,
) -> tuple[str, dict[str, Any]] | None:
    case = trace_case(context, operations, file_num_bytes, checksum)
    if case is None:
        return None
    mode = context.capabilities.recovery
    for crash, directory, got, failure in judged_images(context, case, random.Random(seed)):
        if failure is not None and failure[0] == failure_class:
            return failure[1], _reproducer(case, crash, directory, mode, got, failure[1])
        if not context.shrink_time_left():
            return None
    return None


def _judge(mode: str, crash: CrashImage, got: Any, history: History) -> tuple[str, str] | None:
    power_loss = crash.kind == "power_loss"
    if refused(got):
        if mode == "strict" and got.get("error") == "Corruption" and not crash.ordered:
            return None
        return "crash_refused", f"open refused a {crash.kind.replace('_', ' ')} image: {got.get('error')}"
    state = canonical(got)
    message = judge_crash_state(mode, state, history, power_loss=power_loss, ordered=crash.ordered)
    if message is None:
        return None
    if "never written" in message:
        return "unwritten_record", message
    low = history.acked_power if power_loss else history.acked_process
    if state in history.states[:low]:
        return "lost_durable_write", f"recovered an earlier state than the acknowledged one: {message}"
    if mode == "skip":
        return "lost_durable_write", message
    return "non_prefix_recovery", message


def _digest(directory: str) -> str:
    digest = hashlib.sha256()
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                digest.update(name.encode() + b"\0" + handle.read() + b"\0")
    return digest.hexdigest()


def _reproducer(
    case: TracedCase, crash: CrashImage, directory: str, mode: str, got: Any, message: str
) -> dict[str, Any]:
    excerpt = [_describe(event) for event in case.events[max(0, crash.event_index - 8) : crash.event_index + 1]]
    return {
        "image": pack_wal_image(directory),
        "recovery": mode,
        "requests": case.requests[: crash.position.requests_read],
        "crash": {
            "kind": crash.kind,
            "requests_read": crash.position.requests_read,
            "answers_written": crash.position.answers_written,
            "in_order": crash.ordered,
        },
        "trace": excerpt,
        "expected": message,
        "got": got,
    }


def _describe(event: TraceEvent) -> str:
    text = json.dumps(
        {
            key: (value.hex()[:64] + ("..." if len(value) > 32 else "")) if isinstance(value, bytes) else value
            for key, value in vars(event).items()
        }
    )
    return f"{type(event).__name__} {text}"
