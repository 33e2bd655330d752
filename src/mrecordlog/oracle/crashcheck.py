"""The crash-consistency campaign: every crash must recover an allowed prefix.

A workload runs on a ``SimulatedDisk`` beside the model. Before every mutating
storage call (every moment a crash can interrupt) the campaign builds crash
images of the disk: a process crash, power losses keeping random subsets of
the unsynced writes, torn writes, lost directory entries; injected faults
(fsync EIO, ENOSPC, an I/O error) strike some runs; at the end it flips bits,
crashes recovery itself, and recovers some images on the real file system.
Each image is recovered by ``MultiRecordLog.open`` and must give exactly the
model's state after a prefix of the issued operations that contains every
acknowledged one (``spec/DURABILITY.md``). After recovery the first operation
that was lost is retried, as a client would, and the log reopened: frames
from before the crash must not come back.

A violation is written as a reproducer file that ``replay_reproducer`` (and
``mrecordlog crashcheck --replay FILE``) runs again.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from fault_injection import (
    DROP,
    KEEP,
    Drop,
    FaultPlan,
    Keep,
    LinkOp,
    RenameOp,
    SimulatedDisk,
    Tear,
    UnlinkOp,
    WriteOp,
    enumerate_choices,
    materialize,
    power_loss_image,
    process_crash_image,
    random_choices,
)
from fault_injection.images import TORN_KINDS, Choice, sectors_touched
from mrecordlog.errors import CorruptionError, LogFailed, MRecordLogError, StorageError
from mrecordlog.inspection import inspect_log
from mrecordlog.interchange import AppendOp, Operation, PersistOp, TruncateOp, execute, operation_to_json
from mrecordlog.log import MultiRecordLog
from mrecordlog.model import Model
from mrecordlog.oracle.workloads import Workload, generate_workload, policy_of

LOG_DIR: Final = "/log"
MUTATING_CALLS: Final = frozenset({"write_at", "sync", "create_file", "remove_file", "rename", "sync_dir"})
FAULT_KINDS: Final = (
    "process_crash",
    "power_loss",
    "torn_write",
    "lost_dir_entry",
    "fsync_eio",
    "enospc",
    "io_error",
    "bit_flip",
    "crash_during_recovery",
    "os_storage",
)


class CrashDuringRecovery(Exception):
    """Raised from a storage hook to stop a recovery in the middle."""


# -- what was issued and acknowledged ------------------------------------------


class History:
    """The model's state after each issued operation, and how many are acknowledged."""

    def __init__(self, start: Model | None = None) -> None:
        first = start.copy() if start is not None else Model()
        self.models: list[Model] = [first]
        self.states: list[str] = [first.state_json()]
        self.acked_process = 0
        self.acked_power = 0
        self.in_flight: tuple[Model, str] | None = None
        # operations[i] took the log from states[i] to states[i + 1] (None: a
        # step pushed by a caller that keeps its own model).
        self.operations: list[Operation | None] = []
        self._in_flight_operation: Operation | None = None
        # An injected fault struck (the log is fail-stopped).
        self.fault_struck = False

    @property
    def issued(self) -> int:
        return len(self.states) - 1

    def begin(self, operation: Operation) -> dict[str, Any]:
        model = self.models[-1].copy()
        answer = model.apply(operation_to_json(operation))
        self.in_flight = (model, model.state_json())
        self._in_flight_operation = operation
        return answer

    def settle(self, *, applied: bool) -> None:
        """The in-flight operation returned (``applied``) or failed in the middle
        (it may or may not be on disk: it stays a possible next state)."""
        assert self.in_flight is not None
        assert self._in_flight_operation is not None
        model, state = self.in_flight
        self.in_flight = None
        if applied or state != self.states[-1]:
            self.models.append(model)
            self.states.append(state)
            self.operations.append(self._in_flight_operation)

    def push(self, model: Model) -> None:
        """A step its caller already applied to ``model``: record the state."""
        self.models.append(model.copy())
        self.states.append(model.state_json())
        self.operations.append(None)

    def acknowledge(self, *, process: bool, power: bool) -> None:
        if process or power:
            self.acked_process = self.issued
        if power:
            self.acked_power = self.issued

    def allowed(self, *, power_loss: bool) -> set[str]:
        low = self.acked_power if power_loss else self.acked_process
        states = set(self.states[low:])
        if self.in_flight is not None:
            states.add(self.in_flight[1])
        return states

    def after(self, state: str) -> tuple[Model, list[Operation]]:
        """The model in this state (the latest prefix that has it, or the
        in-flight operation's result) and the operations issued after it."""
        for index in range(len(self.states) - 1, -1, -1):
            if self.states[index] == state:
                lost = [op for op in self.operations[index:] if op is not None]
                if self._in_flight_operation is not None and self.in_flight is not None:
                    lost.append(self._in_flight_operation)
                return self.models[index].copy(), lost
        assert self.in_flight is not None, "not an allowed state"
        assert self.in_flight[1] == state, "not an allowed state"
        return self.in_flight[0].copy(), []


# -- images ------------------------------------------------------------------------


def _choices_to_json(choices: tuple[Choice, ...]) -> list[Any]:
    return [
        "k" if isinstance(c, Keep) else "d" if isinstance(c, Drop) else ["t", c.kept_sectors, c.torn, c.seed]
        for c in choices
    ]


def _choices_from_json(value: list[Any]) -> tuple[Choice, ...]:
    return tuple(KEEP if c == "k" else DROP if c == "d" else Tear(c[1], c[2], c[3]) for c in value)


@dataclass(frozen=True, slots=True)
class Image:
    kind: str
    power_loss: bool
    choices: tuple[Choice, ...] | None  # None: a process crash (everything the OS accepted)

    def build(self, disk: SimulatedDisk) -> SimulatedDisk:
        return process_crash_image(disk) if self.choices is None else power_loss_image(disk, self.choices)


def _dir_op_drops(disk: SimulatedDisk, rng: random.Random) -> tuple[Choice, ...] | None:
    pending = disk.pending()
    directory_ops = [i for i, op in enumerate(pending) if isinstance(op, (LinkOp, UnlinkOp, RenameOp))]
    if not directory_ops:
        return None
    dropped = {i for i in directory_ops if rng.random() < 0.7} or {rng.choice(directory_ops)}
    return tuple(DROP if i in dropped else KEEP for i in range(len(pending)))


def _torn(disk: SimulatedDisk, rng: random.Random) -> tuple[Choice, ...] | None:
    pending = disk.pending()
    writes = [i for i, op in enumerate(pending) if isinstance(op, WriteOp) and sectors_touched(op) > 0]
    if not writes:
        return None
    choices = list(random_choices(pending, rng, tear_probability=0.0, keep_probability=0.6))
    victim = rng.choice(writes)
    op = pending[victim]
    assert isinstance(op, WriteOp)
    sectors = sectors_touched(op)
    torn = rng.choice(TORN_KINDS)
    kept = rng.randrange(sectors)
    choices[victim] = Tear(kept, torn, rng.randrange(2**32))
    # Everything after the torn write may or may not have made it.
    return tuple(choices)


# -- running a workload -------------------------------------------------------------


@dataclass
class Violation:
    kind: str
    message: str
    reproducer: dict[str, Any]


@dataclass
class CampaignReport:
    seed: int
    images_checked: int = 0
    by_fault: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)
    workloads: int = 0
    seconds: float = 0.0

    def to_json_value(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "images_checked": self.images_checked,
            "violations": len(self.violations),
            "violation_details": [{"kind": v.kind, "message": v.message} for v in self.violations],
            "by_fault": {kind: self.by_fault.get(kind, 0) for kind in FAULT_KINDS},
            "workloads": self.workloads,
            "seconds": round(self.seconds, 3),
            "images_per_minute": round(60 * self.images_checked / self.seconds) if self.seconds else 0,
        }


CaptureHook = Callable[[SimulatedDisk, History, int], None]


def run_workload(
    workload: Workload, capture: CaptureHook, *, check_answers: bool = True
) -> tuple[SimulatedDisk, History]:
    """Run a workload; call ``capture(disk, history, point)`` before every mutating
    storage call (``point`` counts them from 0) and once at the end."""
    disk = SimulatedDisk()
    history = History()
    point = 0

    def before_call(kind: str) -> None:
        nonlocal point
        if kind in MUTATING_CALLS:
            capture(disk, history, point)
            point += 1

    disk.before_call = before_call
    policy = policy_of(workload.policy)
    log = MultiRecordLog.open(
        LOG_DIR, storage=disk, persist_policy=policy, file_num_bytes=workload.file_num_bytes, checksum=workload.checksum
    )
    _arm_fault(disk, workload)
    flushes = workload.policy != "do_nothing"
    fsyncs = workload.policy == "always_fsync"
    try:
        for operation in workload.operations:
            expected = history.begin(operation)
            removals = disk.calls_by_kind["remove_file"]
            try:
                execute(log, operation)
            except (LogFailed, StorageError):
                # A failed call changes nothing in memory, whatever reached the disk.
                in_memory = log.state().to_canonical_json()
                if check_answers and in_memory != history.states[-1]:
                    raise AssertionError(
                        f"{operation_to_json(operation)['op']} failed but changed the log's memory"
                    ) from None
                history.settle(applied=False)  # maybe on disk, never acknowledged
                history.fault_struck = True
                break
            except MRecordLogError as exc:
                if check_answers and expected.get("error") != exc.kind:
                    raise AssertionError(
                        f"{operation_to_json(operation)}: the core raised {exc.kind}, the model answered {expected}"
                    ) from exc
                history.settle(applied=False)
                continue
            if check_answers and not expected["ok"]:
                raise AssertionError(
                    f"{operation_to_json(operation)}: the core succeeded, the model answered {expected}"
                )
            history.settle(applied=True)
            critical = expected["op"] in ("create_queue", "delete_queue")
            gc_ran = disk.calls_by_kind["remove_file"] > removals
            if isinstance(operation, PersistOp):
                history.acknowledge(process=True, power=operation.fsync)
            else:
                history.acknowledge(process=flushes or critical, power=fsyncs or critical or gc_ran)
        else:
            try:
                log.close()
            except StorageError:
                history.fault_struck = True
            else:
                history.acknowledge(process=True, power=fsyncs)
    finally:
        if not log.closed:  # a fail-stopped log: release its files without writing
            log.close()
        capture(disk, history, point)
        disk.before_call = None
    return disk, history


def _arm_fault(disk: SimulatedDisk, workload: Workload) -> None:
    if workload.fault == "fsync_eio":
        disk.fault_plan = FaultPlan(fsync_eio_at=disk.calls_by_kind["sync"] + workload.fault_after)
    elif workload.fault == "io_error":
        disk.fault_plan = FaultPlan(fail_at_call=disk.call_count + workload.fault_after)
    elif workload.fault == "enospc":
        used = sum(len(data) for data in disk.visible_files().values())
        disk.fault_plan = FaultPlan(capacity_bytes=used + workload.fault_after)


def recover(image: SimulatedDisk, workload: Workload, *, recovery: str = "point_in_time") -> str:
    """Open a crash image as the workload's next run would, and read its state."""
    with MultiRecordLog.open(LOG_DIR, storage=image, recovery=recovery, file_num_bytes=workload.file_num_bytes) as log:
        return log.state().to_canonical_json()


# -- the campaign ------------------------------------------------------------------


class Campaign:
    """Runs seeded workloads until the budget is spent, checking crash images."""

    def __init__(
        self,
        seed: int,
        budget_seconds: float,
        *,
        images_per_point: int = 3,
        progress: Callable[[CampaignReport, float], None] | None = None,
        max_violations: int = 5,
    ) -> None:
        self.seed = seed
        self.budget = budget_seconds
        self.images_per_point = images_per_point
        self.progress = progress
        self.max_violations = max_violations
        self.report = CampaignReport(seed)

    def run(self) -> CampaignReport:
        started = time.perf_counter()
        deadline = started + self.budget
        workload_seed = self.seed * 1_000_003
        last_progress = 0.0
        while time.perf_counter() < deadline and len(self.report.violations) < self.max_violations:
            workload = generate_workload(workload_seed)
            workload_seed += 1
            self.run_one(workload)
            now = time.perf_counter()
            self.report.seconds = now - started
            if self.progress is not None and now - last_progress > 0.2:
                self.progress(self.report, min(1.0, (now - started) / self.budget))
                last_progress = now
        self.report.seconds = time.perf_counter() - started
        return self.report

    def run_one(self, workload: Workload) -> None:
        self.report.workloads += 1
        rng = random.Random(workload.seed)

        def capture(disk: SimulatedDisk, history: History, point: int) -> None:
            fault_kind = self._fault_kind(history, workload)
            # After a fault only the final capture remains: take more images there.
            power_losses = (self.images_per_point - 1) * (6 if fault_kind else 1)
            images = [Image("process_crash", False, None)]
            for _ in range(power_losses):
                images.append(Image("power_loss", True, random_choices(disk.pending(), rng, tear_probability=0.0)))
            torn = _torn(disk, rng)
            if torn is not None:
                images.append(Image("torn_write", True, torn))
            dropped = _dir_op_drops(disk, rng)
            if dropped is not None:
                images.append(Image("lost_dir_entry", True, dropped))
            for image in images:
                self._check(workload, disk, history, point, image, fault_kind or image.kind, rng)

        try:
            disk, history = run_workload(workload, capture)
        except AssertionError as exc:
            self._violation("behaviour", str(exc), {"workload": workload.to_json_value()})
            return
        self._check_bit_flip(workload, disk, history, rng)
        self._check_crash_during_recovery(workload, disk, history, rng)
        if workload.seed % 10 == 0:
            self._check_on_the_real_file_system(workload, disk, history)

    def _fault_kind(self, history: History, workload: Workload) -> str | None:
        """Images taken once the workload's fault struck count for that fault."""
        return workload.fault if history.fault_struck and workload.fault != "none" else None

    def _count(self, kind: str) -> None:
        self.report.images_checked += 1
        self.report.by_fault[kind] += 1

    def _violation(self, kind: str, message: str, reproducer: dict[str, Any]) -> None:
        self.report.violations.append(Violation(kind, message, {"kind": kind, "message": message, **reproducer}))

    def _check(
        self,
        workload: Workload,
        disk: SimulatedDisk,
        history: History,
        point: int,
        image: Image,
        counted_as: str,
        rng: random.Random,
    ) -> None:
        allowed = history.allowed(power_loss=image.power_loss)
        crashed = image.build(disk)
        reproducer = {
            "workload": workload.to_json_value(),
            "point": point,
            "image": {
                "kind": image.kind,
                "power_loss": image.power_loss,
                "choices": None if image.choices is None else _choices_to_json(image.choices),
            },
        }
        try:
            got = recover(crashed, workload)
        except Exception as exc:  # any failure to recover is a violation
            self._count(counted_as)
            self._violation(counted_as, f"recovery failed: {type(exc).__name__}: {exc}", reproducer)
            return
        self._count(counted_as)
        if got not in allowed:
            self._violation(counted_as, _not_allowed(got, history, allowed), reproducer)
            return
        if image.power_loss and rng.random() < 0.5:
            self._check_retry(workload, crashed, history, got, reproducer)

    def _check_retry(
        self, workload: Workload, crashed: SimulatedDisk, history: History, got: str, reproducer: dict[str, Any]
    ) -> None:
        message = retry_violation(workload, crashed, history, got)
        if message is not None:
            self._violation("stale_frames", message, reproducer)

    def _check_bit_flip(self, workload: Workload, disk: SimulatedDisk, history: History, rng: random.Random) -> None:
        """Flip one bit of durable data. No recovery can match the model then
        (the state rebuilt from files that GC trimmed is exact only at their
        end), but in every mode: no record with a payload other than the one
        written at that position, and damage reported whenever the flip changed
        what recovery returns."""
        image = process_crash_image(disk)
        files = {path: data for path, data in image.visible_files(LOG_DIR).items() if "/wal-" in path}
        candidates = [(path, len(data.rstrip(b"\0"))) for path, data in files.items() if data.rstrip(b"\0")]
        if not candidates:
            return
        unflipped = recover(process_crash_image(image), workload)
        path, end = rng.choice(candidates)
        offset = rng.randrange(end)
        image.flip_bit(path, offset, rng.randrange(8))
        reproducer = {"workload": workload.to_json_value(), "bit_flip": {"path": path, "offset": offset}}
        known = _records_of(history)
        self._count("bit_flip")
        for mode in ("skip", "strict", "point_in_time"):
            try:
                if mode == "point_in_time":
                    with MultiRecordLog.open(LOG_DIR, storage=image, file_num_bytes=workload.file_num_bytes) as log:
                        state, report = log.state(), log.recovery_report
                else:
                    inspection = inspect_log(LOG_DIR, storage=image, recovery=mode)
                    state, report = inspection.state, inspection.report
            except CorruptionError:
                continue  # strict refuses corruption in the middle; skip an inconsistent append
            for name, queue in state.queues.items():
                for record in queue.records:
                    if (name, record.position, record.payload.hex()) not in known:
                        self._violation(
                            "bit_flip", f"{mode} returned a wrong payload at {name!r}:{record.position}", reproducer
                        )
                        return
            if state.to_canonical_json() != unflipped and report.clean:
                self._violation("bit_flip", f"{mode} lost records and reported no damage", reproducer)
                return

    def _check_crash_during_recovery(
        self, workload: Workload, disk: SimulatedDisk, history: History, rng: random.Random
    ) -> None:
        """Crash a recovery at one of its own writes; recovering that must still
        give an allowed state."""
        first = power_loss_image(disk, random_choices(disk.pending(), rng, tear_probability=0.1))
        allowed = history.allowed(power_loss=True)
        calls: list[SimulatedDisk] = []
        stop_at = rng.randrange(1, 12)

        def before_call(kind: str) -> None:
            if kind in MUTATING_CALLS:
                calls.append(power_loss_image(first, random_choices(first.pending(), rng, tear_probability=0.1)))
                if len(calls) == stop_at:
                    raise CrashDuringRecovery

        first.before_call = before_call
        try:
            recover(first, workload)
        except CrashDuringRecovery:
            pass
        except Exception as exc:
            self._violation("crash_during_recovery", f"recovery failed: {exc}", {"workload": workload.to_json_value()})
            return
        first.before_call = None
        for crashed in calls[-2:]:
            self._count("crash_during_recovery")
            try:
                got = recover(crashed, workload)
            except Exception as exc:
                self._violation(
                    "crash_during_recovery", f"second recovery failed: {exc}", {"workload": workload.to_json_value()}
                )
                return
            if got not in allowed:
                self._violation(
                    "crash_during_recovery", _not_allowed(got, history, allowed), {"workload": workload.to_json_value()}
                )
                return

    def _check_on_the_real_file_system(self, workload: Workload, disk: SimulatedDisk, history: History) -> None:
        rng = random.Random(workload.seed ^ 0x5EED)
        image = power_loss_image(disk, random_choices(disk.pending(), rng, tear_probability=0.2))
        expected = recover(process_crash_image(image), workload)
        with tempfile.TemporaryDirectory(prefix="mrecordlog-crashcheck-") as root:
            materialize(image, root, root=LOG_DIR)
            with MultiRecordLog.open(root, file_num_bytes=workload.file_num_bytes) as log:
                got = log.state().to_canonical_json()
        self._count("os_storage")
        if got != expected:
            self._violation(
                "os_storage",
                "the production OS storage recovered another state than the simulated disk",
                {"workload": workload.to_json_value()},
            )


def retry_violation(workload: Workload, crashed: SimulatedDisk, history: History, got: str) -> str | None:
    """Retry the first lost operation on the recovered log (as a client would),
    sync and reopen: exactly the recovered prefix plus the retry must come
    back. Stale frames after the resume point would line up with the retried
    record's end and come back. The violation's message, or None."""
    model, after = history.after(got)
    lost = [op for op in after if isinstance(op, (AppendOp, TruncateOp))]
    retry: Operation = lost[0] if lost else AppendOp("a", None, (b"after recovery",))
    answer = model.apply(operation_to_json(retry))
    try:
        with MultiRecordLog.open(LOG_DIR, storage=crashed, file_num_bytes=workload.file_num_bytes) as log:
            try:
                execute(log, retry)
            except MRecordLogError as exc:
                if answer.get("error") != exc.kind:
                    raise AssertionError(f"retry answered {exc.kind}, the model {answer}") from exc
            log.persist()
        final = recover(crashed, workload)
    except Exception as exc:
        return f"retry after recovery failed: {type(exc).__name__}: {exc}"
    if final != model.state_json():
        return (
            f"after retrying {operation_to_json(retry)['op']} and reopening, the log holds a state that is "
            "not the recovered prefix plus the retry (frames from before the crash came back?)"
        )
    return None


def _records_of(history: History) -> set[tuple[str, int, str]]:
    records = set()
    for model in history.models:
        for name, queue in model.queues.items():
            for position, payload in queue.records:
                records.add((name, position, payload.hex()))
    return records


def _not_allowed(got: str, history: History, allowed: set[str]) -> str:
    known = [index for index, state in enumerate(history.states) if state == got]
    where = f"the state after {known[-1]} operation(s)" if known else "a state no prefix of the operations has"
    return (
        f"recovered {where}; allowed: prefixes {history.acked_process}..{history.issued} (process crash) / "
        f"{history.acked_power}..{history.issued} (power loss); got {got.strip()[:200]}"
    )


@dataclass
class ExhaustiveReport:
    crash_points: int = 0
    images_checked: int = 0
    violations: list[Violation] = field(default_factory=list)


def exhaustive_check(workload: Workload, *, max_images_per_point: int, tear_variants: bool) -> ExhaustiveReport:
    """Every crash point of the workload, and at each one every combination of
    kept, dropped (and torn) unsynced operations, up to ``max_images_per_point``
    (``enumerate_choices`` order: all kept, all dropped, in-order prefixes, then
    the rest), plus the process crash."""
    report = ExhaustiveReport()

    def capture(disk: SimulatedDisk, history: History, point: int) -> None:
        report.crash_points += 1
        images = [Image("process_crash", False, None)]
        images.extend(
            Image("power_loss", True, choices)
            for choices in enumerate_choices(
                disk.pending(), max_images=max_images_per_point, tear_variants=tear_variants
            )
        )
        for image in images:
            allowed = history.allowed(power_loss=image.power_loss)
            report.images_checked += 1
            try:
                got = recover(image.build(disk), workload)
            except Exception as exc:
                message = f"recovery failed: {type(exc).__name__}: {exc}"
            else:
                if got in allowed:
                    continue
                message = _not_allowed(got, history, allowed)
            choices = None if image.choices is None else _choices_to_json(image.choices)
            reproducer = {
                "workload": workload.to_json_value(),
                "point": point,
                "image": {"kind": image.kind, "power_loss": image.power_loss, "choices": choices},
            }
            report.violations.append(Violation(image.kind, message, {"kind": image.kind, **reproducer}))

    run_workload(workload, capture)
    return report


def replay_reproducer(reproducer: dict[str, Any]) -> str | None:
    """Run a reproducer again; the violation message, or None if it passes now."""
    workload = Workload.from_json_value(reproducer["workload"])
    image_spec = reproducer.get("image")
    if image_spec is None:
        campaign = Campaign(seed=0, budget_seconds=0)
        campaign.run_one(workload)
        return campaign.report.violations[0].message if campaign.report.violations else None
    found: list[str] = []

    def capture(disk: SimulatedDisk, history: History, point: int) -> None:
        if point != reproducer["point"]:
            return
        choices = image_spec["choices"]
        image = Image(
            image_spec["kind"], image_spec["power_loss"], None if choices is None else _choices_from_json(choices)
        )
        allowed = history.allowed(power_loss=image.power_loss)
        crashed = image.build(disk)
        try:
            got = recover(crashed, workload)
        except Exception as exc:
            found.append(f"recovery failed: {type(exc).__name__}: {exc}")
            return
        if got not in allowed:
            found.append(_not_allowed(got, history, allowed))
        elif reproducer.get("kind") == "stale_frames":
            message = retry_violation(workload, crashed, history, got)
            if message is not None:
                found.append(message)

    run_workload(workload, capture)
    return found[0] if found else None


def iter_report_lines(report: CampaignReport) -> Iterator[str]:
    value = report.to_json_value()
    yield (
        f"seed {report.seed}: {report.workloads} workloads, "
        f"{report.images_checked} crash images in {report.seconds:.1f} s"
    )
    yield f"({value['images_per_minute']} images per minute)"
    yield ""
    yield f"{'fault kind':<24}{'images':>10}"
    for kind in FAULT_KINDS:
        yield f"{kind:<24}{report.by_fault.get(kind, 0):>10}"
    yield f"{'violations':<24}{len(report.violations):>10}"
    for violation in report.violations:
        yield f"  {violation.kind}: {violation.message}"


def write_reproducer(violation: Violation, path: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(violation.reproducer, handle, indent=1, sort_keys=True)
        handle.write("\n")
