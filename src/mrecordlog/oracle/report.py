"""The conformance report: one schema for the text table and the JSON object.

``spec/CONFORMANCE.md`` §6 documents the JSON object (``to_json_value``); the
text report (``lines``) shows the same fields. The report also owns the
collection rules: failures are kept one per (check, class) with a reproducer,
up to ``max_failures``; later occurrences and classes beyond the limit are
only counted; failures of a baseline class are counted as known.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from mrecordlog.oracle.driver import describe_scale, merge_shards

CHECKS: Final = ("live", "reader", "writer", "continuation", "crash")
VERDICTS: Final = ("pass", "fail", "adapter_failure", "nothing_checked")


@dataclass
class CheckStats:
    run: int = 0
    passed: int = 0
    failed: int = 0
    known: int = 0
    unsupported: int = 0


@dataclass
class Failure:
    check: str
    failure_class: str
    summary: str
    # {"requests": [...], and for image cases "image", "recovery"; "expected", "got"}.
    reproducer: dict[str, Any]
    count: int = 1

    def to_json_value(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "class": self.failure_class,
            "summary": self.summary,
            "count": self.count,
            "reproducer": self.reproducer,
        }


@dataclass
class AdapterTrouble:
    """The adapter failed (exited, hung, answered garbage): where and how."""

    check: str
    kind: str
    message: str
    last_requests: list[dict[str, Any]]
    stderr_tail: list[str]

    def to_json_value(self) -> dict[str, Any]:
        return vars(self).copy()


@dataclass
class ConformanceReport:
    implementation: dict[str, Any]
    seed: int
    checks: dict[str, CheckStats] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    # (check, class) -> occurrences of failures not kept (beyond max_failures).
    uncollected: Counter[tuple[str, str]] = field(default_factory=Counter)
    known: Counter[tuple[str, str]] = field(default_factory=Counter)
    baseline: frozenset[str] = frozenset()
    adapter_trouble: AdapterTrouble | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    max_failures: int = 10
    # The shards run (``K/N``, a merged report lists several) and the processes.
    shards: list[str] = field(default_factory=lambda: ["1/1"])
    workers: int = 1

    # -- collection ---------------------------------------------------------

    def kept(self, check: str, failure_class: str) -> Failure | None:
        for failure in self.failures:
            if failure.check == check and failure.failure_class == failure_class:
                return failure
        return None

    def wants_reproducer(self, check: str, failure_class: str) -> bool:
        """Whether a new failure of this class should be shrunk and kept (not
        yet kept, not known, and room left)."""
        return (
            failure_class not in self.baseline
            and self.kept(check, failure_class) is None
            and len(self.failures) < self.max_failures
        )

    def add_failure(self, failure: Failure) -> None:
        kept = self.kept(failure.check, failure.failure_class)
        if kept is not None:
            kept.count += 1
        elif len(self.failures) < self.max_failures:
            self.failures.append(failure)
        else:
            self.uncollected[failure.check, failure.failure_class] += 1

    def count_failure(self, check: str, failure_class: str) -> None:
        kept = self.kept(check, failure_class)
        if kept is not None:
            kept.count += 1
        else:
            self.uncollected[check, failure_class] += 1

    # -- verdict ------------------------------------------------------------

    @property
    def verdict(self) -> str:
        if self.adapter_trouble is not None:
            return "adapter_failure"
        if self.failures or self.uncollected:
            return "fail"
        if not any(stats.passed + stats.failed + stats.known for stats in self.checks.values()):
            return "nothing_checked"
        return "pass"

    @property
    def ok(self) -> bool:
        return self.verdict == "pass"

    # -- output ---------------------------------------------------------------

    def to_json_value(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "checks": {name: vars(stats).copy() for name, stats in self.checks.items()},
            "failures": [failure.to_json_value() for failure in self.failures],
            "uncollected": [
                {"check": check, "class": name, "count": count}
                for (check, name), count in sorted(self.uncollected.items())
            ],
            "known": [
                {"check": check, "class": name, "count": count} for (check, name), count in sorted(self.known.items())
            ],
            "baseline": sorted(self.baseline),
            "adapter_failure": None if self.adapter_trouble is None else self.adapter_trouble.to_json_value(),
            "notes": list(self.notes),
            "implementation": self.implementation,
            "seed": self.seed,
            "seconds": round(self.seconds, 3),
            "shards": list(self.shards),
            "workers": self.workers,
        }

    @classmethod
    def from_json_value(cls, value: dict[str, Any]) -> ConformanceReport:
        """The report of a ``--json`` object."""
        failures = [
            Failure(str(f["check"]), str(f["class"]), str(f["summary"]), dict(f["reproducer"]), int(f["count"]))
            for f in value["failures"]
        ]
        trouble = value.get("adapter_failure")
        return cls(
            dict(value["implementation"]),
            int(value["seed"]),
            checks={
                name: CheckStats(**{k: int(v) for k, v in stats.items()}) for name, stats in value["checks"].items()
            },
            failures=failures,
            uncollected=Counter({(str(u["check"]), str(u["class"])): int(u["count"]) for u in value["uncollected"]}),
            known=Counter({(str(k["check"]), str(k["class"])): int(k["count"]) for k in value["known"]}),
            baseline=frozenset(str(name) for name in value["baseline"]),
            adapter_trouble=None if trouble is None else AdapterTrouble(**trouble),
            notes=[str(note) for note in value["notes"]],
            seconds=float(value["seconds"]),
            max_failures=max(10, len(failures)),
            shards=[str(shard) for shard in value.get("shards", ["1/1"])],
            workers=int(value.get("workers", 1)),
        )

    @classmethod
    def merge(cls, reports: Sequence[ConformanceReport], *, max_failures: int | None = None) -> ConformanceReport:
        """One report of several runs (lanes of workers, shards): case counts
        summed per check, failures kept one per (check, class) in report order
        up to ``max_failures`` (default: the largest of the reports') with
        their counts summed, the rest counted as uncollected; the first
        adapter failure; the longest ``seconds`` (the caller sets the wall time
        of runs it timed). The verdict follows from the merged fields."""
        if not reports:
            raise ValueError("no report to merge")
        answered = [r.implementation for r in reports if r.implementation.get("name", "?") != "?"]
        merged = cls(
            answered[0] if answered else dict(reports[0].implementation),
            reports[0].seed,
            baseline=frozenset().union(*(r.baseline for r in reports)),
            max_failures=max_failures if max_failures is not None else max(r.max_failures for r in reports),
            shards=merge_shards(r.shards for r in reports),
            workers=sum(r.workers for r in reports),
        )
        for report in reports:
            for name, stats in report.checks.items():
                total = merged.checks.setdefault(name, CheckStats())
                for key, count in vars(stats).items():
                    setattr(total, key, getattr(total, key) + count)
            for failure in report.failures:
                kept = merged.kept(failure.check, failure.failure_class)
                if kept is not None:
                    kept.count += failure.count
                elif len(merged.failures) < merged.max_failures:
                    earlier = merged.uncollected.pop((failure.check, failure.failure_class), 0)
                    merged.failures.append(replace(failure, count=failure.count + earlier))
                else:
                    merged.uncollected[failure.check, failure.failure_class] += failure.count
            for (check, name), count in report.uncollected.items():
                kept = merged.kept(check, name)
                if kept is not None:
                    kept.count += count
                else:
                    merged.uncollected[check, name] += count
            merged.known.update(report.known)
            if merged.adapter_trouble is None:
                merged.adapter_trouble = report.adapter_trouble
            merged.notes.extend(note for note in report.notes if note not in merged.notes)
            merged.seconds = max(merged.seconds, report.seconds)
        return merged

    def lines(self) -> Iterator[str]:
        hello = self.implementation
        yield (
            f"{hello.get('name', '?')} {hello.get('version', '')} (recovery: {hello.get('recovery', '?')}, "
            f"checksums: {','.join(map(str, hello.get('checksums', []) or ['?']))}), "
            f"seed {self.seed}{describe_scale(self.shards, self.workers)}, "
            f"{self.seconds:.1f} s"
        )
        if self.baseline:
            yield f"baseline: {', '.join(sorted(self.baseline))}"
        yield ""
        yield f"{'check':<14}{'run':>7}{'passed':>8}{'failed':>8}{'known':>7}{'unsupported':>13}"
        for name, stats in self.checks.items():
            yield (f"{name:<14}{stats.run:>7}{stats.passed:>8}{stats.failed:>8}{stats.known:>7}{stats.unsupported:>13}")
        for note in self.notes:
            yield f"note: {note}"
        if self.known:
            yield ""
            yield "known differences (baseline): " + ", ".join(
                f"{check}/{name} x{count}" for (check, name), count in sorted(self.known.items())
            )
        for failure in self.failures:
            yield ""
            yield f"FAILED {failure.check} [{failure.failure_class}] x{failure.count}: {failure.summary}"
            yield from _reproducer_lines(failure.reproducer)
        for (check, name), count in sorted(self.uncollected.items()):
            yield f"FAILED {check} [{name}] x{count} (not kept: --max-failures {self.max_failures} reached)"
        trouble = self.adapter_trouble
        if trouble is not None:
            yield ""
            yield f"ADAPTER FAILURE during {trouble.check}: {trouble.kind}: {trouble.message}"
            if trouble.last_requests:
                yield "last requests:"
                for request in trouble.last_requests:
                    yield "  " + json.dumps(request, sort_keys=True)[:300]
            if trouble.stderr_tail:
                yield "adapter stderr (last lines):"
                for line in trouble.stderr_tail:
                    yield "  " + line
        yield ""
        yield f"verdict: {self.verdict}"


def _reproducer_lines(reproducer: dict[str, Any]) -> Iterator[str]:
    if "image" in reproducer:
        files = reproducer["image"].get("files", [])
        yield (
            f"image (wal-image/1, {len(files)} file(s): {', '.join(f['name'] for f in files)}), "
            f"opened with recovery {reproducer.get('recovery', '?')}; in the JSON report"
        )
    requests = reproducer.get("requests", [])
    yield f"reproducer ({len(requests)} JSONL request(s)):"
    for request in requests:
        yield "  " + json.dumps(request, sort_keys=True)[:2000]
    for key in ("expected", "got"):
        if key in reproducer:
            yield f"{key}: {json.dumps(reproducer[key], sort_keys=True)[:1000]}"
