"""Campaigns scale out (issue 11, item 5): the seed space is split into shards
and dealt to worker processes, and the reports merge.

Every index of the seed space belongs to exactly one shard and one worker;
shards together, and workers together, run exactly the workloads of a single
unsharded process (so their merged counts are its counts); a violation found
by a worker comes back with a reproducer that replays; reports merge by
summing; bad ``--shard`` and ``--workers`` values are one line and status 2;
Ctrl-C stops the workers. Runs are bounded by a number of workloads
(``max_workloads``, ``--workloads``), never by the clock."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from mrecordlog.cli import main
from mrecordlog.oracle import crashcheck, driver
from mrecordlog.oracle.conformance import lane_seed, run_conformance
from mrecordlog.oracle.crashcheck import (
    Campaign,
    CampaignReport,
    History,
    Image,
    Judgement,
    Violation,
    replay_reproducer,
    run_campaign,
    write_reproducer,
)
from mrecordlog.oracle.driver import WHOLE, Part, parse_shard, parse_workers, reproducer_name
from mrecordlog.oracle.fuzz import FuzzCampaign, FuzzReport
from mrecordlog.oracle.merge import ReportError, merge_reports
from mrecordlog.oracle.report import CheckStats, ConformanceReport, Failure
from mrecordlog.oracle.workloads import Workload
from tests.processes import sigint_as_on_a_terminal

MRECORDLOG = str(Path(sys.executable).parent / "mrecordlog")
ADAPTER = f"{sys.executable} -m mrecordlog.adapter"
# Fewer images per workload: what is checked here holds for any options.
CHEAP: dict[str, Any] = {
    "images_per_point": 1,
    "kinds": (),
    "modes": ("point_in_time",),
    "continuation_share": 0.0,
    "hostile_share": 0.0,
}


def _counts(value: dict[str, Any]) -> dict[str, Any]:
    """A report's JSON without what depends on the clock or on how it was split."""
    return {
        key: item
        for key, item in value.items()
        if key not in ("seconds", "images_per_minute", "images_per_second", "shards", "workers", "reproducers")
    }


class _Recording(Campaign):
    """A campaign that remembers the seeds of the workloads it ran."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seeds: list[int] = []

    def run_one(self, workload: Workload) -> None:
        self.seeds.append(workload.seed)
        super().run_one(workload)


# -- the seed space --------------------------------------------------------------------


@pytest.mark.parametrize("shards", [1, 2, 3, 5])
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_every_seed_index_belongs_to_exactly_one_shard_and_one_worker(shards: int, workers: int) -> None:
    parts = [Part(k, shards).of_worker(w, workers) for k in range(1, shards + 1) for w in range(workers)]
    runs = {part: list(part.indices(100)) for part in parts}
    assert sorted(index for indices in runs.values() for index in indices) == list(range(100))
    for part, indices in runs.items():
        assert indices == sorted(indices)
        assert all(part.owns(index) for index in indices)
        assert part.count(100) == len(indices)
        assert all(index % shards == part.shard - 1 for index in indices)


def test_shards_and_workers_are_parsed_strictly() -> None:
    assert parse_shard("1/1") == WHOLE
    assert parse_shard("3/4") == Part(3, 4)
    assert parse_workers("2") == 2
    assert parse_workers("auto") >= 1
    for text in ("0/2", "3/2", "1/0", "0/0", "a/b", "1", "1/2/3", "-1/2", " 1/2", "1/²"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(text)
    for text in ("0", "-1", "x", "1.5", "", "²"):
        with pytest.raises(ValueError, match="--workers"):
            parse_workers(text)


def test_shards_together_run_exactly_the_workloads_of_the_unsharded_run() -> None:
    whole = _Recording(0, 60, max_workloads=7, **CHEAP)
    whole.run()
    shards = [_Recording(0, 60, max_workloads=7, part=Part(k, 3), **CHEAP) for k in (1, 2, 3)]
    for shard in shards:
        shard.run()
    assert whole.seeds == list(range(7))
    assert sorted(seed for shard in shards for seed in shard.seeds) == whole.seeds
    assert [shard.seeds for shard in shards] == [[0, 3, 6], [1, 4], [2, 5]]
    # A workload depends only on its seed: the merged counts are the whole run's.
    merged = CampaignReport.merge([shard.report for shard in shards])
    assert _counts(merged.to_json_value()) == _counts(whole.report.to_json_value())
    assert merged.shards == ["1/3", "2/3", "3/3"]


def test_two_worker_processes_run_the_workloads_of_one_process() -> None:
    one = run_campaign(0, 60, max_workloads=3, **CHEAP)
    two = run_campaign(0, 60, max_workloads=3, workers=2, **CHEAP)
    assert two.workloads == 3
    assert two.workers == 2
    assert _counts(two.to_json_value()) == _counts(one.to_json_value())


def test_fuzz_shards_together_mutate_exactly_the_base_logs_of_the_unsharded_run() -> None:
    options: dict[str, Any] = {"images_per_base": 2, "sparse_every": 1000}
    whole = FuzzCampaign(5, 60, max_workloads=3, **options).run()
    shards = [FuzzCampaign(5, 60, max_workloads=3, part=Part(k, 2), **options).run() for k in (1, 2)]
    assert [shard.base_images for shard in shards] == [2, 1]
    merged = FuzzReport.merge(shards)
    assert _counts(merged.to_json_value()) == _counts(whole.to_json_value())
    assert merged.base_images == 3


# -- a violation found by a worker -------------------------------------------------------

PLANTED_SEED = 1  # seed index 1 of seed 0: worker 1 of 2
PLANTED = "planted: a recovery the judge refuses"
_real_judge = crashcheck.judge


def _planted_judge(workload: Workload, disk: Any, history: History, image: Image) -> Judgement:
    if workload.seed == PLANTED_SEED and history.issued == 3:
        return Judgement(PLANTED)
    return _real_judge(workload, disk, history, image)


def plant_a_violation() -> None:
    """The worker processes' initializer: a judge that fails the images of one
    crash point of one workload."""
    crashcheck.judge = _planted_judge


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_a_violation_found_by_a_worker_is_reported_with_a_reproducer_that_replays(
    start: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if start == "fork" and driver.start_method() != "fork":
        pytest.skip("fork is not used here")
    monkeypatch.setattr(driver, "start_method", lambda: start)
    report = run_campaign(0, 60, max_workloads=2, workers=2, initializer=plant_a_violation, **CHEAP)
    planted = [violation for violation in report.violations if violation.message == PLANTED]
    assert planted, "the worker's violation is not in the merged report"
    assert {violation.reproducer["workload"]["seed"] for violation in planted} == {PLANTED_SEED}
    assert crashcheck.judge is _real_judge  # planted in the workers only
    paths = []
    for number, violation in enumerate(report.violations, start=1):
        path = tmp_path / reproducer_name("crashcheck", 0, WHOLE, number)
        write_reproducer(violation, str(path))
        paths.append(path)
    assert len(set(paths)) == len(paths)
    reproducer = json.loads(paths[report.violations.index(planted[0])].read_text())
    with monkeypatch.context() as patched:
        patched.setattr(crashcheck, "judge", _planted_judge)
        assert replay_reproducer(reproducer) == PLANTED
        assert main(["crashcheck", "--replay", str(paths[report.violations.index(planted[0])])]) == 1
        assert PLANTED in capsys.readouterr().out
    assert replay_reproducer(reproducer) is None  # without the planted bug it passes


def test_reproducer_names_of_shards_do_not_collide() -> None:
    names = {reproducer_name("crashcheck", 7, Part(k, 3), n) for k in (1, 2, 3) for n in (1, 2)}
    assert len(names) == 6
    assert reproducer_name("crashcheck", 7, WHOLE, 1) == "crashcheck-seed7-1.json"
    assert reproducer_name("fuzz", 7, Part(2, 3), 1) == "fuzz-seed7-shard2of3-1.json"


# -- merging reports --------------------------------------------------------------------------


def _crash_report(seed: int, shard: str, images: int, violations: Sequence[int]) -> CampaignReport:
    report = CampaignReport(seed, images_checked=images, workloads=images // 10, seconds=images / 100, shards=[shard])
    report.by_fault["power_loss"] = images
    report.by_mode["strict"] = images // 2
    report.continuations = images // 5
    report.violations = [
        Violation("power_loss", f"violation in workload {w}", {"workload": {"seed": w}}, found_after=1)
        for w in violations
    ]
    return report


def test_merging_reports_sums_counts_and_keeps_violations_in_workload_order_up_to_the_max() -> None:
    first = _crash_report(4, "1/2", 100, [7, 9, 11])
    second = _crash_report(4, "2/2", 50, [2, 8, 12, 14])
    merged = CampaignReport.merge([first, second])
    assert merged.images_checked == 150
    assert merged.by_fault["power_loss"] == 150
    assert merged.by_mode["strict"] == 75
    assert merged.continuations == 30
    assert merged.workloads == 15
    assert merged.seconds == 1.0  # the longest
    assert merged.shards == ["1/2", "2/2"]
    assert merged.workers == 2
    assert [v.reproducer["workload"]["seed"] for v in merged.violations] == [2, 7, 8, 9, 11]


def test_merging_json_reports_is_merging_the_reports() -> None:
    first, second = _crash_report(4, "1/2", 100, [7]), _crash_report(4, "2/2", 50, [])
    named = [("b.json", second.to_json_value()), ("a.json", first.to_json_value())]
    merged = merge_reports(named)
    assert merged.campaign == "crashcheck"
    assert merged.missing == []
    assert not merged.ok
    assert _counts(merged.to_json_value()) == _counts(CampaignReport.merge([first, second]).to_json_value())
    assert merge_reports(named[:1]).missing == ["1/2"]
    assert merge_reports(named[:1]).ok


@pytest.mark.parametrize(
    ("reports", "complaint"),
    [
        ([_crash_report(4, "1/2", 1, []), _crash_report(4, "1/2", 1, [])], "in both"),
        ([_crash_report(4, "1/2", 1, []), _crash_report(5, "2/2", 1, [])], "different seeds"),
        ([_crash_report(4, "1/2", 1, []), _crash_report(4, "2/3", 1, [])], "differently"),
        ([_crash_report(4, "1/2", 1, []), FuzzReport(4, shards=["2/2"])], "different campaigns"),
    ],
)
def test_reports_that_do_not_add_up_are_refused(reports: list[CampaignReport | FuzzReport], complaint: str) -> None:
    with pytest.raises(ReportError, match=complaint):
        merge_reports([(f"r{i}.json", report.to_json_value()) for i, report in enumerate(reports)])


def test_merged_conformance_reports_keep_failures_up_to_the_max_and_recompute_the_verdict() -> None:
    def lane(shard: str, failures: Sequence[str]) -> ConformanceReport:
        report = ConformanceReport(
            {"name": "x"}, 0, checks={"writer": CheckStats(run=3, passed=3)}, max_failures=2, shards=[shard]
        )
        for name in failures:
            report.checks["writer"].run += 1
            report.checks["writer"].failed += 1
            report.add_failure(Failure("writer", name, "s", {"requests": []}))
        return report

    passing = ConformanceReport.merge([lane("1/3", []), lane("2/3", [])])
    assert passing.verdict == "pass"
    assert passing.checks["writer"].run == 6
    failing = ConformanceReport.merge([lane("1/3", ["a"]), lane("2/3", ["b", "a"]), lane("3/3", ["c"])])
    assert failing.verdict == "fail"
    assert [(f.failure_class, f.count) for f in failing.failures] == [("a", 2), ("b", 1)]
    assert failing.uncollected == {("writer", "c"): 1}
    assert failing.checks["writer"].failed == 4
    round_trip = merge_reports([(s, r.to_json_value()) for s, r in [("1", lane("1/2", ["a"])), ("2", lane("2/2", []))]])
    assert round_trip.report.to_json_value()["verdict"] == "fail"
    assert not round_trip.ok


# -- conformance lanes -------------------------------------------------------------------------


def test_the_conformance_lanes_of_shards_are_those_of_one_run_with_more_workers() -> None:
    def lanes(part: Part, workers: int) -> set[int]:
        return {next(part.of_worker(w, workers).indices()) for w in range(workers)}

    assert lanes(WHOLE, 1) == {0}
    assert lane_seed(9, 0) == 9
    assert lanes(Part(1, 2), 2) | lanes(Part(2, 2), 2) == lanes(WHOLE, 4) == {0, 1, 2, 3}
    assert len({lane_seed(9, lane) for lane in range(4)}) == 4


def test_conformance_workers_each_check_through_their_own_adapter() -> None:
    report = run_conformance(ADAPTER, seed=0, budget_seconds=0.5, checks=("writer",), workers=2)
    assert report.adapter_trouble is None
    assert report.verdict == "pass"
    assert report.workers == 2
    assert report.checks["writer"].run >= 2


# -- the command line ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["crashcheck"], ["fuzz"], ["conformance", "--adapter", "false"]])
@pytest.mark.parametrize(
    "option", [["--shard", "0/2"], ["--shard", "3/2"], ["--shard", "1"], ["--shard", "x/y"], ["--workers", "0"]]
)
def test_a_bad_shard_or_worker_count_exits_2_with_one_line(
    command: list[str], option: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, *option, "--budget", "0"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert option[0] in captured.err


def test_scale_out_options_do_not_apply_to_a_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crashcheck", "--replay", str(tmp_path / "r.json"), "--workers", "2"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_merge_reports_adds_up_the_shards_of_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def run(*options: str) -> Path:
        path = tmp_path / f"report{len(list(tmp_path.iterdir()))}.json"
        status = main(["crashcheck", "--seed", "3", "--workloads", "2", "--json", *options])
        path.write_text(capsys.readouterr().out)
        assert status == 0
        return path

    whole, first, second = run(), run("--shard", "1/2"), run("--shard", "2/2")
    assert main(["merge-reports", str(second), str(first), "--json"]) == 0
    merged = json.loads(capsys.readouterr().out)
    assert _counts(merged) == _counts(json.loads(whole.read_text()))
    assert merged["shards"] == ["1/2", "2/2"]
    assert main(["merge-reports", str(first)]) == 0
    assert "missing: 2/2" in capsys.readouterr().out
    assert main(["merge-reports", str(first), str(first)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    failing = json.loads(first.read_text())
    failing["violation_details"] = [{"kind": "power_loss", "message": "lost", "found_after": 1}]
    failing["violations"] = 1
    first.write_text(json.dumps(failing))
    assert main(["merge-reports", str(first), str(second)]) == 1
    assert "power_loss: lost" in capsys.readouterr().out


def _children(pid: int) -> set[int]:
    children = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.add(int(entry))
    return children


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_stops_the_workers_without_a_traceback(tmp_path: Path) -> None:
    with sigint_as_on_a_terminal():
        process = subprocess.Popen(
            [MRECORDLOG, "crashcheck", "--workers", "2", "--budget", "60", "--reproducer-dir", str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
    try:
        deadline = time.monotonic() + 30
        children: set[int] = set()
        while len(children) < 2 and time.monotonic() < deadline:  # the two workers
            children |= _children(process.pid)
            time.sleep(0.05)
        time.sleep(0.5)  # into their first workloads
        children |= _children(process.pid)
        assert len(children) >= 2
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130
    assert out == ""
    # One line: how far the campaign came (docs/cli.md), no traceback.
    assert re.fullmatch(
        r"mrecordlog crashcheck: interrupted after [0-9.]+ s; so far: [0-9]+ images, [0-9]+ workloads, "
        r"[0-9]+ violation\(s\)\n",
        err,
    ), err
    # The workers are gone when the command returns; multiprocessing's
    # resource tracker (started with spawn) exits when its pipe closes.
    deadline = time.monotonic() + 5
    while any(_running(child) for child in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [_command_line(child) for child in children if _running(child)] == []
