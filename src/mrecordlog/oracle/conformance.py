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
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from mrecordlog.oracle.adapters import Adapter, AdapterFailure
from mrecordlog.oracle.capabilities import Capabilities, MalformedHello
from mrecordlog.oracle.report import CHECKS, AdapterTrouble, CheckStats, ConformanceReport, Failure

__all__ = ["CHECKS", "CheckContext", "ConformanceReport", "ConformanceRunner", "Failure"]

BUDGET_SHARES: Final = {"live": 0.4, "reader": 0.2, "writer": 0.2, "continuation": 0.2, "crash": 0.2}


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

    def run(self) -> ConformanceReport:
        started = time.perf_counter()
        report = ConformanceReport(
            {"name": "?"},
            self.seed,
            checks={check: CheckStats() for check in self.checks},
            baseline=self.baseline,
            max_failures=self.max_failures,
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
            share = self.budget * BUDGET_SHARES[check] / total
            context = CheckContext(
                name=check,
                adapter=self.adapter,
                capabilities=capabilities,
                report=report,
                seed=self.seed,
                deadline=time.perf_counter() + share,
                workdir=self.workdir,
                progress=self.progress,
                shrink_grace=max(5.0, share / 4),
                fail_fast=self.fail_fast,
                adapter_command=self.adapter_command,
                timeout=self.timeout,
            )
            try:
                _check(check)(context)
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
