"""The oracle's verdicts against an emulation of mrecordlog 0.5 and against
misbehaving adapters, through the runner and through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mrecordlog.oracle.adapters import InProcessAdapter
from mrecordlog.oracle.classes import BASELINES
from mrecordlog.oracle.conformance import ConformanceReport, ConformanceRunner
from tests.mrecordlog05_adapter import emulation_session

HERE = Path(__file__).resolve().parent
SEED = 2
SINGLE_CHECK_SECONDS = 8.0
ALL_CHECKS_SECONDS = 25.0


def _emulation_report(
    tmp_path: Path, checks: tuple[str, ...], budget: float, baseline: frozenset[str]
) -> ConformanceReport:
    adapter = InProcessAdapter(emulation_session())
    return ConformanceRunner(
        adapter, seed=SEED, budget_seconds=budget, workdir=str(tmp_path), checks=checks, baseline=baseline
    ).run()


@pytest.mark.hunt
@pytest.mark.parametrize(
    ("check", "failure_class"),
    [
        ("live", "position_wrap"),
        ("reader", "short_files"),
        ("writer", "gc_record_order"),
        ("continuation", "stale_records"),
    ],
)
def test_the_05_emulation_without_a_baseline_fails_with_the_class_of_each_difference(
    tmp_path: Path, check: str, failure_class: str
) -> None:
    report = _emulation_report(tmp_path, (check,), SINGLE_CHECK_SECONDS, frozenset())
    text = "\n".join(report.lines())
    assert report.verdict == "fail", text
    found = {failure.failure_class for failure in report.failures}
    assert failure_class in found, text
    # Nothing else: every difference of the emulation is one of its four.
    assert found <= {"position_wrap", "short_files", "gc_record_order", "stale_records"}, text
    failure = next(f for f in report.failures if f.failure_class == failure_class)
    print(
        f"{check}: [{failure_class}] x{failure.count}, reproducer of {len(failure.reproducer['requests'])} request(s)"
    )
    assert len(failure.reproducer["requests"]) <= 16


@pytest.mark.hunt
def test_the_05_emulation_with_its_baseline_fails_only_in_continuation(tmp_path: Path) -> None:
    baseline = BASELINES["mrecordlog-0.5"]
    report = _emulation_report(tmp_path, ("live", "reader", "writer", "continuation"), ALL_CHECKS_SECONDS, baseline)
    text = "\n".join(report.lines())
    assert report.verdict == "fail", text
    assert {(f.check, f.failure_class) for f in report.failures} == {("continuation", "stale_records")}, text
    assert not report.uncollected, text
    known = {name for _, name in report.known}
    assert known, text
    assert known <= baseline, text
    for check in ("live", "reader", "writer"):
        assert report.checks[check].failed == 0, text
        assert report.checks[check].passed > 0, text


# -- the CLI against misbehaving adapters ---------------------------------------------

HELLO = '{"ok": true, "op": "hello", "name": "x", "version": "0", "protocol": 1, "recovery": "point_in_time"}'
EXITS_AT_ONCE = "import sys\nsys.stderr.write('boom: no config\\n')\nsys.exit(3)\n"
GARBAGE = "import sys\nfor line in sys.stdin:\n    print('this is not JSON', flush=True)\n"
HANGS = "import sys, time\nfor line in sys.stdin:\n    time.sleep(60)\n"
NOT_UTF8 = "import sys\nfor line in sys.stdin:\n    sys.stdout.buffer.write(b'\\xff\\xfe{}\\n'); sys.stdout.flush()\n"
HUGE_LINE = (
    "import sys\nfor line in sys.stdin:\n"
    "    for _ in range(257):\n        sys.stdout.buffer.write(b'x' * 2**20)\n"
    "    sys.stdout.buffer.write(b'\\n'); sys.stdout.flush()\n"
)
DIES_MID_RUN = (
    "import json, sys\nfrom mrecordlog.adapter import reference_session\n"
    "session = reference_session()\n"
    "for number, line in enumerate(sys.stdin):\n"
    "    if number == 300:\n        sys.stderr.write('panicked at src/log.rs:12\\n'); sys.exit(101)\n"
    "    print(json.dumps(session.handle(json.loads(line))), flush=True)\n"
)
SUPPORTS_NOTHING = (
    "import json, sys\nfor line in sys.stdin:\n"
    "    request = json.loads(line)\n"
    "    if request['op'] == 'hello':\n"
    "        hello = {'ok': True, 'op': 'hello', 'name': 'empty', 'ops': [], 'checksums': ['crc32']}\n"
    "        print(json.dumps(hello), flush=True)\n"
    "    else:\n        print(json.dumps({'ok': False, 'error': 'Unsupported'}), flush=True)\n"
)
MALFORMED_HELLO = (
    f"import sys\nfor line in sys.stdin:\n    print({HELLO!r}.replace('point_in_time', 'sometimes'), flush=True)\n"
)


def _cli(
    tmp_path: Path, adapter: str, *extra: str, budget: str = "3", timeout: str = "2"
) -> tuple[int, dict[str, Any], str]:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mrecordlog.cli",
            "conformance",
            "--adapter",
            adapter,
            "--budget",
            budget,
            "--timeout",
            timeout,
            "--json",
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=tmp_path,
    )
    assert "Traceback" not in run.stderr, run.stderr
    return run.returncode, json.loads(run.stdout), run.stderr


@pytest.mark.parametrize(
    ("script", "kind", "stderr_says"),
    [
        (EXITS_AT_ONCE, "exited", "boom: no config"),
        (GARBAGE, "malformed", None),
        (HANGS, "timeout", None),
        (NOT_UTF8, "malformed", None),
        (HUGE_LINE, "malformed", None),
        (DIES_MID_RUN, "exited", "panicked at src/log.rs:12"),
        (MALFORMED_HELLO, "malformed", None),
    ],
    ids=["exits-at-once", "garbage", "hangs", "not-utf8", "huge-line", "dies-mid-run", "malformed-hello"],
)
def test_a_misbehaving_adapter_gives_a_report_with_verdict_adapter_failure(
    tmp_path: Path, script: str, kind: str, stderr_says: str | None
) -> None:
    path = tmp_path / "adapter.py"
    path.write_text(script, encoding="utf-8")
    # Moving 257 MiB through a pipe on a loaded machine may take a while.
    timeout = "30" if script is HUGE_LINE else "2"
    code, report, _ = _cli(tmp_path, f"{sys.executable} {path}", timeout=timeout)
    assert code == 1
    assert report["verdict"] == "adapter_failure"
    trouble = report["adapter_failure"]
    assert trouble["kind"] == kind, trouble
    assert trouble["check"] in ("hello", "live", "reader", "writer", "continuation")
    assert trouble["last_requests"], trouble
    if stderr_says is not None:
        assert any(stderr_says in line for line in trouble["stderr_tail"]), trouble
    if script is DIES_MID_RUN:
        assert trouble["check"] == "live"
        assert report["checks"]["live"]["run"] > 0


def test_an_unstartable_adapter_gives_verdict_adapter_failure(tmp_path: Path) -> None:
    code, report, _ = _cli(tmp_path, str(tmp_path / "no-such-adapter"))
    assert code == 1
    assert report["verdict"] == "adapter_failure"
    assert report["adapter_failure"]["kind"] == "unstartable"


def test_an_adapter_that_supports_nothing_checks_nothing_and_fails(tmp_path: Path) -> None:
    path = tmp_path / "adapter.py"
    path.write_text(SUPPORTS_NOTHING, encoding="utf-8")
    code, report, _ = _cli(tmp_path, f"{sys.executable} {path}")
    assert code == 1
    assert report["verdict"] == "nothing_checked"
    assert report["implementation"]["name"] == "empty"


def test_the_text_report_of_a_misbehaving_adapter_names_the_check_and_its_stderr(tmp_path: Path) -> None:
    path = tmp_path / "adapter.py"
    path.write_text(DIES_MID_RUN, encoding="utf-8")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mrecordlog.cli",
            "conformance",
            "--adapter",
            f"{sys.executable} {path}",
            "--budget",
            "3",
            "--checks",
            "live",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "ADAPTER FAILURE during live: exited" in run.stdout
    assert "panicked at src/log.rs:12" in run.stdout
    assert run.stdout.rstrip().endswith("verdict: adapter_failure")


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (["--baseline", "mrecordlog-0.4"], "unknown baseline 'mrecordlog-0.4'"),
        (["--baseline-file", "known.txt"], "known.txt:3: unknown failure class 'positon_wrap'"),
        (["--baseline-file", "missing.txt"], "cannot read baseline file missing.txt"),
        (["--checks", "live,everything"], "unknown check(s) everything"),
        (["--max-failures", "0"], "must be at least 1"),
    ],
)
def test_a_bad_baseline_or_option_is_a_usage_error(tmp_path: Path, options: list[str], says: str) -> None:
    (tmp_path / "known.txt").write_text("# ours\nposition_wrap # ok\npositon_wrap\n", encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "mrecordlog.cli", "conformance", "--adapter", "true", *options],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=tmp_path,
    )
    assert run.returncode == 2, run.stderr
    assert says in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.hunt
def test_the_emulation_through_the_cli_with_a_baseline_file_reports_known_differences(tmp_path: Path) -> None:
    (tmp_path / "known.txt").write_text("position_wrap\ngc_record_order\nshort_files\n", encoding="utf-8")
    code, report, _ = _cli(
        tmp_path,
        f"{sys.executable} {HERE / 'mrecordlog05_adapter.py'}",
        "--checks",
        "live",
        "--baseline-file",
        "known.txt",
        "--seed",
        str(SEED),
        budget="6",
    )
    assert report["verdict"] == "pass", report
    assert code == 0
    assert report["baseline"] == ["gc_record_order", "position_wrap", "short_files"]
    assert {entry["class"] for entry in report["known"]} == {"position_wrap"}
    assert report["checks"]["live"]["known"] > 0
