"""The conformance runner: one loop over the checks, one place for the rules.

The runner asks the implementation's ``hello`` for its capabilities
(``oracle.capabilities``), gives each check (``oracle.checks``) its share of
the budget and a ``CheckContext``, and owns what every check shares:

- collection: a check reports each case as passed, unsupported, known or
  failed with a class (``oracle.classes``); the report keeps one shrunk
  reproducer per class up to ``max_failures`` and counts the rest, and a
  class of the baseline is counted as known, never as a failure;
- adapter trouble: an adapter that exits, hangs or answers garbage ends the
  run with the verdict ``adapter_failure``, naming the check, the last
  requests and the tail of the adapter's stderr (``AdapterFailure`` is
  caught here, once, never in a check);
- the verdict (``oracle.report``).

Scaling out (``oracle.driver``): the seed space of a conformance run is its
lanes. Lane i runs every check with the seed ``lane_seed(seed, i)`` (lane 0
with ``seed`` itself), through its own adapter process, for the whole budget.
A runner runs the first lane of its ``part``: shard K/N with W workers runs
the lanes K - 1 + N * w, w = 0 .. W - 1, one per worker process
(``run_conformance``), and their reports merge (``ConformanceReport.merge``);
shards 1/N .. N/N with W workers each run the lanes of one unsharded run
with N * W workers.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from mrecordlog.oracle.adapters import Adapter, AdapterFailure, SubprocessAdapter
from mrecordlog.oracle.capabilities import Capabilities, MalformedHello
from mrecordlog.oracle.driver import WHOLE, Channel, Part, run_parallel
from mrecordlog.oracle.report import CHECKS, AdapterTrouble, CheckStats, ConformanceReport, Failure

__all__ = [
    "CHECKS",
    "CheckContext",
    "ConformanceReport",
    "ConformanceRunner",
    "Failure",
    "lane_seed",
    "run_conformance",
]

BUDGET_SHARES: Final = {"live": 0.4, "reader": 0.2, "writer": 0.2, "continuation": 0.2, "crash": 0.2}
# Lane i > 0 runs the checks with seed + i * LANE_STRIDE: far from the seeds
# of other runs' lane 0.
LANE_STRIDE: Final = 2**32


def lane_seed(seed: int, lane: int) -> int:
    """The seed the checks of lane ``lane`` of a run of ``seed`` get."""
    return seed + lane * LANE_STRIDE


class AdapterGone(BaseException):
    """Carries an ``AdapterFailure`` out of code that catches ``Exception``
    (Hypothesis would otherwise try to shrink a dead adapter)."""

    def __init__(self, failure: AdapterFailure) -> None:
        super().__init__(str(failure))
        self.failure = failure


@dataclass
class CheckContext:
    """What a check gets from the runner: the adapter, the capabilities, its
    budget and directory, and the calls that record each case's outcome."""

    name: str
    adapter: Adapter
    capabilities: Capabilities
    report: ConformanceReport
    seed: int
    deadline: float
    workdir: str
    progress: Callable[[ConformanceReport], None] | None = None
    shrink_grace: float = 5.0
    # Stop at the first failure kept (every later check then stops at once).
    fail_fast: bool = False
    # The adapter's command line (None in process): the crash check starts
    # its own traced copies of the adapter.
    adapter_command: str | None = None
    timeout: float = 30.0
    # The run was asked to stop (Ctrl-C, another lane failed with fail_fast).
    stop: Callable[[], bool] | None = None
    _directories: int = field(default=0, repr=False)

    @property
    def stats(self) -> CheckStats:
        return self.report.checks[self.name]

    @property
    def baseline(self) -> frozenset[str]:
        return self.report.baseline

    def time_left(self) -> bool:
        if self.fail_fast and (self.report.failures or self.report.uncollected):
            return False
        if self.stop is not None and self.stop():
            return False
        now = time.perf_counter()
        # A check whose share went on starting up (a slow or loaded machine)
        # still gets its first case, within the grace: a check that ran
        # nothing would report nothing.
        return now < self.deadline or (self.stats.run == 0 and now < self.deadline + self.shrink_grace)

    def shrink_time_left(self) -> bool:
        """Shrinking may go on a little past the deadline (a quarter of the
        check's share, at least 5 s): an unshrunk reproducer is still kept."""
        return time.perf_counter() < self.deadline + self.shrink_grace

    def request(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.adapter.request(request)
        except AdapterFailure as exc:
            raise AdapterGone(exc) from None

    def fresh_directory(self, label: str = "case") -> str:
        self._directories += 1
        return os.path.join(self.workdir, self.name, f"{label}-{self._directories}")

    def tick(self) -> None:
        if self.progress is not None:
            self.progress(self.report)

    # -- outcomes -----------------------------------------------------------

    def passed(self) -> None:
        self.stats.run += 1
        self.stats.passed += 1

    def unsupported(self) -> None:
        self.stats.run += 1
        self.stats.unsupported += 1

    def is_known(self, failure_class: str) -> bool:
        return failure_class in self.report.baseline

    def known(self, failure_class: str) -> None:
        self.stats.run += 1
        self.stats.known += 1
        self.report.known[self.name, failure_class] += 1

    def wants_reproducer(self, failure_class: str) -> bool:
        return self.report.wants_reproducer(self.name, failure_class)

    def failed(
        self,
        failure_class: str,
        summary: str,
        reproducer: dict[str, Any] | Callable[[], tuple[str, dict[str, Any]]],
    ) -> None:
        """A failing case. ``reproducer`` is the case, or a function that
        shrinks it (returning the shrunk summary and case), called only if
        the class needs a reproducer. A class of the baseline counts as known."""
        if self.is_known(failure_class):
            self.known(failure_class)
            return
        self.stats.run += 1
        self.stats.failed += 1
        if not self.wants_reproducer(failure_class):
            self.report.count_failure(self.name, failure_class)
            return
        if callable(reproducer):
            summary, case = reproducer()
        else:
            case = reproducer
        self.report.add_failure(Failure(self.name, failure_class, summary, case))


Check = Callable[[CheckContext], None]


def _check(name: str) -> Check:
    # Imported when run: the live check needs Hypothesis (the oracle extra).
    if name == "live":
        from mrecordlog.oracle.checks.live import run_live_check

        return run_live_check
    if name == "reader":
        from mrecordlog.oracle.checks.reader import run_reader_check

        return run_reader_check
    if name == "writer":
        from mrecordlog.oracle.checks.writer import run_writer_check

        return run_writer_check
    if name == "continuation":
        from mrecordlog.oracle.checks.continuation import run_continuation_check

        return run_continuation_check
    from mrecordlog.oracle.checks.crash import run_crash_check

    return run_crash_check


class ConformanceRunner:
    def __init__(
        self,
        adapter: Adapter,
        *,
        seed: int,
        budget_seconds: float,
        workdir: str,
        checks: tuple[str, ...] = CHECKS,
        baseline: frozenset[str] = frozenset(),
        max_failures: int = 10,
        fail_fast: bool = False,
        adapter_command: str | None = None,
        timeout: float = 30.0,
        progress: Callable[[ConformanceReport], None] | None = None,
        part: Part = WHOLE,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        unknown = [check for check in checks if check not in CHECKS]
        if unknown:
            raise ValueError(f"unknown check(s): {', '.join(unknown)}")
        self.adapter = adapter
        self.seed = seed
        self.budget = budget_seconds
        self.workdir = workdir
        self.checks = checks
        self.baseline = baseline
        self.max_failures = max_failures
        self.fail_fast = fail_fast
        self.adapter_command = adapter_command
        self.timeout = timeout
        self.progress = progress
        self.part = part
        self.lane = next(part.indices())
        self.stop = stop

    def run(self) -> ConformanceReport:
        started = time.perf_counter()
        report = ConformanceReport(
            {"name": "?"},
            self.seed,
            checks={check: CheckStats() for check in self.checks},
            baseline=self.baseline,
            max_failures=self.max_failures,
            shards=[self.part.label],
        )
        try:
            self._run(report)
        finally:
            report.seconds = time.perf_counter() - started
        return report

    def _run(self, report: ConformanceReport) -> None:
        try:
            hello = self.adapter.request({"op": "hello"})
        except AdapterFailure as exc:
            report.adapter_trouble = _trouble("hello", exc)
            return
        report.implementation = hello
        try:
            capabilities = Capabilities.from_hello(hello)
        except MalformedHello as exc:
            report.adapter_trouble = AdapterTrouble("hello", "malformed", str(exc), [{"op": "hello"}], [])
            return
        if not capabilities.can_open:
            report.notes.append("hello does not announce open, close and state: nothing can be checked")
            return
        total = sum(BUDGET_SHARES[check] for check in self.checks)
        for check in self.checks:
            run_check = _check(check)  # imported before its share of the budget starts
            share = self.budget * BUDGET_SHARES[check] / total
            context = CheckContext(
                name=check,
                adapter=self.adapter,
                capabilities=capabilities,
                report=report,
                seed=lane_seed(self.seed, self.lane),
                deadline=time.perf_counter() + share,
                workdir=self.workdir,
                progress=self.progress,
                shrink_grace=max(5.0, share / 4),
                fail_fast=self.fail_fast,
                adapter_command=self.adapter_command,
                timeout=self.timeout,
                stop=self.stop,
            )
            try:
                run_check(context)
            except AdapterGone as gone:
                report.adapter_trouble = _trouble(check, gone.failure)
                return
            except AdapterFailure as exc:
                report.adapter_trouble = _trouble(check, exc)
                return
            context.tick()


def _trouble(check: str, failure: AdapterFailure) -> AdapterTrouble:
    return AdapterTrouble(
        check,
        failure.kind,
        str(failure),
        list(getattr(failure, "last_requests", None) or [failure.request]),
        list(getattr(failure, "stderr_tail", None) or []),
    )


# -- scaling out: lanes in worker processes --------------------------------------------


@dataclass(frozen=True)
class _Lane:
    """A conformance run of one lane through its own adapter process (picklable:
    sent to a worker process)."""

    adapter_command: str
    seed: int
    budget_seconds: float
    checks: tuple[str, ...]
    baseline: frozenset[str]
    max_failures: int
    fail_fast: bool
    timeout: float

    def __call__(self, part: Part, channel: Channel | None = None) -> ConformanceReport:
        return self.run(part, channel.progress if channel else None, channel.stopped if channel else None)

    def run(
        self,
        part: Part,
        progress: Callable[[ConformanceReport], None] | None,
        stop: Callable[[], bool] | None,
    ) -> ConformanceReport:
        adapter = SubprocessAdapter(self.adapter_command, timeout_seconds=self.timeout)
        try:
            with tempfile.TemporaryDirectory(prefix="mrecordlog-conformance-") as workdir:
                runner = ConformanceRunner(
                    adapter,
                    seed=self.seed,
                    budget_seconds=self.budget_seconds,
                    workdir=workdir,
                    checks=self.checks,
                    baseline=self.baseline,
                    max_failures=self.max_failures,
                    fail_fast=self.fail_fast,
                    adapter_command=self.adapter_command,
                    timeout=self.timeout,
                    progress=progress,
                    part=part,
                    stop=stop,
                )
                return runner.run()
        finally:
            adapter.close()


def run_conformance(
    adapter_command: str,
    *,
    seed: int,
    budget_seconds: float,
    checks: tuple[str, ...] = CHECKS,
    baseline: frozenset[str] = frozenset(),
    max_failures: int = 10,
    fail_fast: bool = False,
    timeout: float = 30.0,
    workers: int = 1,
    part: Part = WHOLE,
    progress: Callable[[ConformanceReport], None] | None = None,
) -> ConformanceReport:
    """Check the implementation behind ``adapter_command`` in the lanes of
    ``part``'s shard, one per worker process (1: in this process), each through
    its own adapter process and runner. With more workers, the report is the
    merge of the lanes' (up to ``max_failures`` kept) and its ``seconds`` the
    wall time; ``progress`` sees the merged report; all lanes stop at the first
    failure kept with ``fail_fast``, and at an adapter failure."""
    lane = _Lane(adapter_command, seed, budget_seconds, checks, baseline, max_failures, fail_fast, timeout)
    if workers == 1:
        return lane.run(part, progress, None)
    started = time.perf_counter()

    def merge(reports: Sequence[ConformanceReport]) -> ConformanceReport:
        return ConformanceReport.merge(reports, max_failures=max_failures)

    def stop_when(report: ConformanceReport) -> bool:
        return report.adapter_trouble is not None or (fail_fast and bool(report.failures or report.uncollected))

    reports = run_parallel(lane, part, workers, merge=merge, progress=progress, stop_when=stop_when)
    merged = merge(reports)
    merged.seconds = time.perf_counter() - started
    return merged
