"""The conformance runner: live, reader and writer checks against the spec.

- *live*: Hypothesis-generated operations sent to the implementation and to
  the model (``oracle.live``); answers and states must agree.
- *reader*: directories written by the reference (both checksum profiles):
  crash images from the fault layer and damaged images. The implementation
  opens each and answers ``state``: a crash image must recover one of the
  states the spec allows (an acknowledged prefix, for ``point_in_time`` and
  ``strict``), a damaged image exactly what its recovery mode gives.
- *writer*: the same operations through the implementation and the reference
  must leave byte-identical WAL files, readable by the reference with the
  model's state.

The report is a table per check kind: cases run, passed, failed, unsupported,
with a short reproducer for each failure.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fault_injection import SimulatedDisk, materialize, power_loss_image, process_crash_image, random_choices
from mrecordlog.errors import CorruptionError
from mrecordlog.inspection import inspect_log
from mrecordlog.interchange import (
    Operation,
    ReopenOp,
    apply_operations,
    operation_to_json,
    pack_wal_image,
)
from mrecordlog.model import Model
from mrecordlog.oracle.adapters import Adapter, AdapterFailure
from mrecordlog.oracle.crashcheck import LOG_DIR, History, run_workload
from mrecordlog.oracle.workloads import Workload, exhaustive_workloads, generate_workload, padding_workloads

CHECKS = ("live", "reader", "writer")
_BUDGET_SHARES = {"live": 0.5, "reader": 0.25, "writer": 0.25}


@dataclass
class CheckStats:
    run: int = 0
    passed: int = 0
    failed: int = 0
    unsupported: int = 0


@dataclass
class Failure:
    check: str
    message: str
    # The requests that reproduce it (JSONL), or for reader cases the image.
    reproducer: list[dict[str, Any]]


@dataclass
class ConformanceReport:
    implementation: dict[str, Any]
    seed: int
    checks: dict[str, CheckStats] = field(default_factory=lambda: {check: CheckStats() for check in CHECKS})
    failures: list[Failure] = field(default_factory=list)
    unsupported_ops: set[str] = field(default_factory=set)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json_value(self) -> dict[str, Any]:
        return {
            "implementation": self.implementation,
            "seed": self.seed,
            "checks": {name: vars(stats) for name, stats in self.checks.items()},
            "failures": [{"check": f.check, "message": f.message, "reproducer": f.reproducer} for f in self.failures],
            "unsupported_ops": sorted(self.unsupported_ops),
            "seconds": round(self.seconds, 3),
        }

    def lines(self) -> Iterator[str]:
        name = self.implementation.get("name", "?")
        yield (
            f"{name} {self.implementation.get('version', '')} (recovery: "
            f"{self.implementation.get('recovery', '?')}), seed {self.seed}, {self.seconds:.1f} s"
        )
        yield ""
        yield f"{'check':<8}{'run':>8}{'passed':>8}{'failed':>8}{'unsupported':>13}"
        for check, stats in self.checks.items():
            yield f"{check:<8}{stats.run:>8}{stats.passed:>8}{stats.failed:>8}{stats.unsupported:>13}"
        if self.unsupported_ops:
            yield f"unsupported ops: {', '.join(sorted(self.unsupported_ops))}"
        for failure in self.failures:
            yield ""
            yield f"FAILED {failure.check}: {failure.message}"
            yield "reproducer (JSONL requests):" if failure.check != "reader" else "reproducer (the case):"
            for line in failure.reproducer:
                yield "  " + json.dumps(line, sort_keys=True)[:2000]


def _canonical(state: Any) -> str:
    return json.dumps(state, sort_keys=True, separators=(",", ":")) + "\n"


class ConformanceRunner:
    def __init__(
        self,
        adapter: Adapter,
        *,
        seed: int,
        budget_seconds: float,
        workdir: str,
        checks: tuple[str, ...] = CHECKS,
        progress: Callable[[ConformanceReport], None] | None = None,
    ) -> None:
        self.adapter = adapter
        self.seed = seed
        self.budget = budget_seconds
        self.workdir = workdir
        self.checks = checks
        self.progress = progress

    def run(self) -> ConformanceReport:
        started = time.perf_counter()
        hello = self.adapter.request({"op": "hello"})
        report = ConformanceReport(hello if hello.get("ok") else {"name": "?", "hello": hello}, self.seed)
        supported = set(hello.get("ops", [])) if hello.get("ok") else set()
        report.unsupported_ops = {
            op for op in ("open", "close", "state", "create_queue", "delete_queue", "append", "truncate", "persist")
        } - supported
        mode = str(hello.get("recovery", "point_in_time"))
        essential = {"open", "close", "state"}
        for check in self.checks:
            stats = report.checks[check]
            budget = self.budget * _BUDGET_SHARES[check] / sum(_BUDGET_SHARES[c] for c in self.checks)
            if not essential <= supported:
                stats.unsupported += 1
                continue
            try:
                if check == "live":
                    self._live(report, supported, budget)
                elif check == "reader":
                    self._reader(report, mode, budget)
                else:
                    self._writer(report, supported, budget)
            except AdapterFailure as exc:
                stats.failed += 1
                report.failures.append(Failure(check, f"adapter {exc}", [exc.request]))
        report.seconds = time.perf_counter() - started
        return report

    # -- live ----------------------------------------------------------------------

    def _live(self, report: ConformanceReport, supported: set[str], budget: float) -> None:
        from mrecordlog.oracle.live import run_live  # needs Hypothesis: import only when asked

        stats = report.checks["live"]
        progress = self.progress

        def tick() -> None:
            if progress is not None:
                progress(report)

        outcome = run_live(
            self.adapter,
            supported=supported,
            workdir=os.path.join(self.workdir, "live"),
            seed=self.seed,
            budget_seconds=budget,
            progress=tick,
        )
        stats.run = outcome.examples
        stats.unsupported = len(outcome.unsupported)
        report.unsupported_ops |= outcome.unsupported
        if outcome.failure is not None:
            stats.failed = 1
            stats.passed = outcome.examples - 1
            report.failures.append(Failure("live", str(outcome.failure), outcome.reproducer))
        else:
            stats.passed = outcome.examples

    # -- reader --------------------------------------------------------------------

    def _reader_cases(self, rng: random.Random, workload: Workload) -> Iterator[tuple[str, SimulatedDisk, set[str]]]:
        """(kind, image, allowed states) for crash images of one workload, then
        (damaged, image, empty set) for a damaged copy of its final state."""
        images: list[tuple[str, SimulatedDisk, set[str]]] = []

        def capture(disk: SimulatedDisk, history: History, point: int) -> None:
            if rng.random() < 0.1:
                choices = random_choices(disk.pending(), rng, tear_probability=0.2)
                images.append(("crash", power_loss_image(disk, choices), history.allowed(power_loss=True)))
            if rng.random() < 0.05:
                images.append(("crash", process_crash_image(disk), history.allowed(power_loss=False)))

        disk, _ = run_workload(workload, capture)
        yield from images
        damaged = process_crash_image(disk)
        wal = {p: d for p, d in damaged.visible_files(LOG_DIR).items() if "/wal-" in p and d.rstrip(b"\0")}
        if wal:
            path = rng.choice(sorted(wal))
            end = len(wal[path].rstrip(b"\0"))
            if rng.random() < 0.5:
                damaged.flip_bit(path, rng.randrange(end), rng.randrange(8))
            else:
                start = rng.randrange(end)
                handle = damaged.open_file(path, writable=True)
                handle.write_at(start, bytes(min(rng.choice((7, 100, 600)), end - start)))
                handle.sync()
                handle.close()
            yield ("damaged", damaged, set())

    def _reader(self, report: ConformanceReport, mode: str, budget: float) -> None:
        stats = report.checks["reader"]
        deadline = time.perf_counter() + budget
        rng = random.Random(self.seed)
        number = 0
        workload_seed = self.seed * 1_000_003 + 500_000
        while time.perf_counter() < deadline and not stats.failed:
            workload = generate_workload(workload_seed, fault="none")
            workload_seed += 1
            for kind, image, allowed in self._reader_cases(rng, workload):
                number += 1
                directory = os.path.join(self.workdir, "reader", f"case-{number}")
                materialize(image, directory, root=LOG_DIR)
                packed = pack_wal_image(directory)
                try:
                    expected: Any = inspect_log(directory, recovery=mode).state.to_json_value()
                except CorruptionError as exc:
                    expected = {"error": "Corruption", "file": exc.file, "offset": exc.offset}
                got = self._open_and_read(directory, workload.file_num_bytes)
                stats.run += 1
                problem = self._judge(kind, mode, expected, got, allowed)
                if problem is None:
                    stats.passed += 1
                    continue
                stats.failed += 1
                case = {"kind": kind, "recovery": mode, "image": packed, "expected": expected, "got": got}
                report.failures.append(Failure("reader", problem, [case]))
                return
            if self.progress is not None:
                self.progress(report)

    def _open_and_read(self, directory: str, file_num_bytes: int) -> Any:
        opened = self.adapter.request({"op": "open", "dir": directory, "file_num_bytes": file_num_bytes})
        if not opened["ok"]:
            return {"error": opened.get("error"), "message": opened.get("message")}
        answer = self.adapter.request({"op": "state"})
        self.adapter.request({"op": "close"})
        return answer.get("state") if answer["ok"] else {"error": answer.get("error")}

    @staticmethod
    def _judge(kind: str, mode: str, expected: Any, got: Any, allowed: set[str]) -> str | None:
        refused = isinstance(got, dict) and "error" in got
        if kind == "crash" and mode in ("point_in_time", "strict") and not refused:
            if _canonical(got) in allowed:
                return None
            return f"a crash image recovered a state that no acknowledged prefix has (recovery {mode})"
        if refused and isinstance(expected, dict) and "error" in expected:
            return None if got["error"] == expected["error"] else f"refused with {got['error']}, expected {expected}"
        if got == expected:
            return None
        what = "crash" if kind == "crash" else "damaged"
        return f"a {what} image recovered another state than recovery mode {mode} gives"

    # -- writer --------------------------------------------------------------------

    def _writer(self, report: ConformanceReport, supported: set[str], budget: float) -> None:
        stats = report.checks["writer"]
        deadline = time.perf_counter() + budget
        rng = random.Random(self.seed ^ 0xBEEF)
        number = 0
        workload_seed = self.seed * 1_000_003 + 900_000
        curated = [workload for _, workload in exhaustive_workloads()] + padding_workloads()
        while time.perf_counter() < deadline and not stats.failed:
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
            number += 1
            case = os.path.join(self.workdir, "writer", f"case-{number}")
            stats.run += 1
            problem, requests = self._writer_case(workload, operations, case, supported)
            if problem == "unsupported":
                stats.unsupported += 1
            elif problem is None:
                stats.passed += 1
            else:
                stats.failed += 1
                problem, requests = self._shrink_writer_case(workload, operations, supported, problem, requests)
                report.failures.append(Failure("writer", problem, requests))
            if self.progress is not None:
                self.progress(report)

    def _shrink_writer_case(
        self,
        workload: Workload,
        operations: list[Operation],
        supported: set[str],
        problem: str,
        requests: list[dict[str, Any]],
    ) -> tuple[str, list[dict[str, Any]]]:
        """Remove operations while the case still fails (greedy delta debugging,
        chunks halving down to single operations): a short reproducer."""
        attempt = 0
        chunk = max(len(operations) // 2, 1)
        while True:
            removed = False
            start = 0
            while start < len(operations):
                candidate = operations[:start] + operations[start + chunk :]
                attempt += 1
                directory = os.path.join(self.workdir, "writer-shrink", f"attempt-{attempt}")
                result, candidate_requests = self._writer_case(workload, candidate, directory, supported)
                if result is not None and result != "unsupported":
                    operations, problem, requests, removed = candidate, result, candidate_requests, True
                else:
                    start += chunk
            if chunk == 1 and not removed:
                return problem, requests
            chunk = max(chunk // 2, 1)

    def _writer_case(
        self, workload: Workload, operations: list[Operation], case: str, supported: set[str]
    ) -> tuple[str | None, list[dict[str, Any]]]:
        reference = os.path.join(case, "reference")
        theirs = os.path.join(case, "implementation")
        list(
            apply_operations(reference, operations, checksum=workload.checksum, file_num_bytes=workload.file_num_bytes)
        )
        open_request = {
            "op": "open",
            "dir": theirs,
            "file_num_bytes": workload.file_num_bytes,
            "checksum": workload.checksum,
        }
        requests: list[dict[str, Any]] = [open_request]
        self.adapter.request(open_request)
        model = Model()
        for operation in operations:
            if isinstance(operation, ReopenOp):
                requests.extend([{"op": "close"}, open_request])
                self.adapter.request({"op": "close"})
                self.adapter.request(open_request)
                continue
            request = operation_to_json(operation)
            if request["op"] not in supported:
                self.adapter.request({"op": "close"})
                return "unsupported", requests
            requests.append(request)
            self.adapter.request(request)
            model.apply(request)
        requests.append({"op": "close"})
        self.adapter.request({"op": "close"})
        ours, mine = pack_wal_image(reference), pack_wal_image(theirs)
        if ours != mine:
            return f"WAL files differ from the reference's: {_first_difference(ours, mine)}", requests
        state = inspect_log(theirs).state.to_json_value()
        if state != model.state_json_value():
            return "the reference reads another state from the implementation's files", requests
        return None, requests


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
