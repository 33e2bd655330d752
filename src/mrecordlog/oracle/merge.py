"""Merging the JSON reports of a campaign's shards (``mrecordlog merge-reports``).

Each report is the ``--json`` object of one ``crashcheck``, ``fuzz`` or
``conformance`` run (told apart by their fields). The reports merged must be
of the same campaign and seed, their shards of the same N, and no shard may
come twice (its cases would count twice); a missing shard is allowed and
named. The merge is the campaign's own (``CampaignReport.merge``,
``FuzzReport.merge``, ``ConformanceReport.merge``): counts summed, violations
(or failures) together up to the campaign's limit, ``seconds`` the longest
report's (shards run side by side), the conformance verdict recomputed from
the merged fields. ``reproducers`` (crashcheck, fuzz) lists every report's
files.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from mrecordlog.oracle.crashcheck import CampaignReport
from mrecordlog.oracle.crashcheck import iter_report_lines as crash_report_lines
from mrecordlog.oracle.driver import read_json_file
from mrecordlog.oracle.fuzz import FuzzReport
from mrecordlog.oracle.fuzz import iter_report_lines as fuzz_report_lines
from mrecordlog.oracle.report import ConformanceReport

__all__ = ["CAMPAIGNS", "MergedReports", "ReportError", "campaign_of", "load_report", "merge_reports"]

CAMPAIGNS: Final = ("crashcheck", "fuzz", "conformance")


class ReportError(ValueError):
    """Reports that cannot be merged; the message is one line."""


def campaign_of(value: object) -> str:
    """The campaign whose ``--json`` object ``value`` is."""
    if isinstance(value, dict):
        if "by_fault" in value and "images_checked" in value:
            return "crashcheck"
        if "by_mutation" in value and "base_images" in value:
            return "fuzz"
        if "verdict" in value and "checks" in value:
            return "conformance"
    raise ReportError("not the --json report of a crashcheck, fuzz or conformance campaign")


def load_report(path: str) -> dict[str, Any]:
    try:
        value = read_json_file(path)
    except ValueError as exc:
        raise ReportError(f"{path}: {exc}") from None
    try:
        campaign_of(value)
    except ReportError as exc:
        raise ReportError(f"{path}: {exc}") from None
    assert isinstance(value, dict)
    return value


Report = CampaignReport | FuzzReport | ConformanceReport


@dataclass
class MergedReports:
    campaign: str
    report: Report
    sources: int
    reproducers: list[str]
    # The shards "K/N" of the reports' N that no report ran.
    missing: list[str]

    @property
    def ok(self) -> bool:
        """No violation (crashcheck, fuzz); the verdict ``pass`` (conformance)."""
        if isinstance(self.report, ConformanceReport):
            return self.report.ok
        return not self.report.violations

    def to_json_value(self) -> dict[str, Any]:
        value = self.report.to_json_value()
        if self.campaign != "conformance":
            value["reproducers"] = list(self.reproducers)
        return value

    def lines(self) -> Iterator[str]:
        missing = f"missing: {', '.join(self.missing)}" if self.missing else "none missing"
        yield f"merged {self.sources} {self.campaign} report(s): shards {', '.join(self.report.shards)} ({missing})"
        if isinstance(self.report, CampaignReport):
            yield from crash_report_lines(self.report)
        elif isinstance(self.report, FuzzReport):
            yield from fuzz_report_lines(self.report)
        else:
            yield from self.report.lines()
        for path in self.reproducers:
            yield f"reproducer: {path}  (run again: mrecordlog {self.campaign} --replay {path})"


def _shard(text: object) -> tuple[int, int]:
    pieces = str(text).split("/")
    if len(pieces) != 2 or not all(piece.isdigit() for piece in pieces):
        raise ReportError(f"shard {text!r} is not K/N")
    shard, shards = int(pieces[0]), int(pieces[1])
    if not 1 <= shard <= shards:
        raise ReportError(f"shard {text!r} is not K/N with 1 <= K <= N")
    return shard, shards


def merge_reports(named: Sequence[tuple[str, dict[str, Any]]]) -> MergedReports:
    """Merge ``(name, --json object)`` pairs (name: for messages)."""
    if not named:
        raise ReportError("no report to merge")
    campaigns = {campaign_of(value) for _, value in named}
    if len(campaigns) > 1:
        raise ReportError(f"the reports are of different campaigns: {', '.join(sorted(campaigns))}")
    campaign = campaigns.pop()
    seeds = {value.get("seed") for _, value in named}
    if len(seeds) > 1:
        raise ReportError(f"the reports are of different seeds: {', '.join(map(str, sorted(seeds, key=str)))}")
    owner: dict[tuple[int, int], str] = {}
    for name, value in named:
        shards = value.get("shards", ["1/1"])
        if not isinstance(shards, list) or not shards:
            raise ReportError(f"{name}: its shards are not a list of K/N")
        for shard in map(_shard, shards):
            if shard in owner:
                raise ReportError(f"shard {shard[0]}/{shard[1]} is in both {owner[shard]} and {name}")
            owner[shard] = name
    counts = {shards for _, shards in owner}
    if len(counts) > 1:
        raise ReportError(
            f"the reports split the seed space differently: into {' and '.join(map(str, sorted(counts)))}"
        )
    total = counts.pop()
    missing = [f"{k}/{total}" for k in range(1, total + 1) if (k, total) not in owner]
    ordered = sorted(named, key=lambda pair: min(_shard(shard) for shard in pair[1].get("shards", ["1/1"])))
    reports: list[Any] = []
    for name, value in ordered:
        try:
            if campaign == "crashcheck":
                reports.append(CampaignReport.from_json_value(value))
            elif campaign == "fuzz":
                reports.append(FuzzReport.from_json_value(value))
            else:
                reports.append(ConformanceReport.from_json_value(value))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ReportError(f"{name}: not a valid {campaign} report: {type(exc).__name__}: {exc}") from None
    merged: Report
    if campaign == "crashcheck":
        merged = CampaignReport.merge(reports)
    elif campaign == "fuzz":
        merged = FuzzReport.merge(reports)
    else:
        merged = ConformanceReport.merge(reports)
    reproducers = [str(path) for _, value in ordered for path in value.get("reproducers", [])]
    return MergedReports(campaign, merged, len(named), reproducers, missing)
