"""The ``mrecordlog`` command: a thin argparse layer over the library.

Subcommands: ``apply`` (run ops.jsonl, print results.jsonl), ``dump`` (print
the canonical state, strictly read-only), ``crashcheck`` (the crash-consistency
campaign, the README's main job), ``fuzz`` (the reader fuzz campaign over
damaged directories), ``conformance`` (check another implementation),
``merge-reports`` (merge the JSON reports of a campaign's shards), ``demo`` (a
workload that writes, reopens and dumps a log). The campaigns scale out with
``--workers`` and ``--shard`` (``oracle.driver``).
Exit status: 0 success; 1 the log refused (it could not be opened or
reopened, an I/O error, corruption) or an operation failed unexpectedly (a
``Panic`` result); 2 usage (bad arguments, a malformed operations file);
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence

from mrecordlog._codec import ChecksumProfile
from mrecordlog._recovery import RecoveryMode
from mrecordlog.demo import run_demo
from mrecordlog.errors import CorruptionError, InvalidArgument, MRecordLogError
from mrecordlog.inspection import inspect_log
from mrecordlog.interchange import apply_operations, read_operations, result_line
from mrecordlog.log import check_file_num_bytes
from mrecordlog.oracle.classes import BASELINES, BaselineError, baseline_classes
from mrecordlog.oracle.conformance import CHECKS, ConformanceReport, run_conformance
from mrecordlog.oracle.crashcheck import (
    CampaignReport,
    exhaustive_check,
    iter_report_lines,
    replay_reproducer,
    run_campaign,
    write_reproducer,
)
from mrecordlog.oracle.driver import WHOLE, Part, WorkerFailed, parse_shard, parse_workers, reproducer_name
from mrecordlog.oracle.fuzz import FuzzReport, ReproducerError, load_reproducer, run_fuzz_campaign
from mrecordlog.oracle.fuzz import iter_report_lines as iter_fuzz_report_lines
from mrecordlog.oracle.fuzz import replay_reproducer as replay_fuzz_reproducer
from mrecordlog.oracle.fuzz import write_reproducer as write_fuzz_reproducer
from mrecordlog.oracle.merge import ReportError, load_report, merge_reports
from mrecordlog.oracle.workloads import exhaustive_workloads

_MODES = [mode.value for mode in RecoveryMode]


def _file_num_bytes(text: str) -> int:
    try:
        return check_file_num_bytes(int(text))
    except (ValueError, MRecordLogError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_campaign_arguments(parser: argparse.ArgumentParser, seed_help: str) -> None:
    """The options crashcheck and fuzz share."""
    parser.add_argument("--seed", type=int, default=0, help=seed_help)
    parser.add_argument("--budget", type=float, default=60.0, metavar="SECONDS", help="time to spend (default 60)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument(
        "--reproducer-dir", default=".", metavar="DIR", help="where to write reproducer files (default .)"
    )
    parser.add_argument("--replay", metavar="FILE", help="run a reproducer file again instead of a campaign")
    _add_scale_out_arguments(parser, workloads=True)


def _add_scale_out_arguments(parser: argparse.ArgumentParser, *, workloads: bool) -> None:
    """--workers and --shard (and --workloads): checked by ``_scale_out``, so
    that a bad value is one line on stderr."""
    parser.add_argument(
        "--workers",
        default="1",
        metavar="N",
        help="worker processes on this machine (default 1; auto: one per available CPU)",
    )
    parser.add_argument(
        "--shard",
        metavar="K/N",
        help="run only shard K of N (K from 1 to N) of the seed space; merge the shards' --json reports with "
        "mrecordlog merge-reports",
    )
    if workloads:
        parser.add_argument(
            "--workloads",
            metavar="N",
            help="only the seed indices 0 to N-1 (of which a shard runs its part), within the budget",
        )


def _scale_out(args: argparse.Namespace) -> tuple[int, Part, int | None]:
    """The workers, the shard and the workload limit; ValueError with a one-line message."""
    workers = parse_workers(args.workers)
    part = WHOLE if args.shard is None else parse_shard(args.shard)
    limit = getattr(args, "workloads", None)
    if limit is not None and not (limit.isdigit() and limit.isascii() and int(limit) > 0):
        raise ValueError(f"--workloads {limit!r}: expected a positive integer")
    return workers, part, None if limit is None else int(limit)


def _campaign_options(args: argparse.Namespace) -> tuple[int, Part, int | None]:
    """``_scale_out`` for crashcheck and fuzz, which also refuse the options
    with --replay (and --exhaustive)."""
    scale = _scale_out(args)
    single = args.replay is not None or getattr(args, "exhaustive", False)
    if single and (args.workers != "1" or args.shard is not None or args.workloads is not None):
        raise ValueError("--workers, --shard and --workloads apply to a campaign, not to --replay or --exhaustive")
    return scale


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mrecordlog",
        description="A multi-queue write-ahead record log (the reference implementation of mrecordlog 0.5).",
        epilog=(
            "Exit status: 0 success, 1 the log refused, an operation panicked or crashcheck or fuzz found a "
            "violation, 2 usage error."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True)

    apply = commands.add_parser("apply", help="apply ops.jsonl to the log in DIR and print results.jsonl")
    apply.add_argument("directory", metavar="DIR")
    apply.add_argument("ops", metavar="OPS.jsonl", help="operations file, or - for stdin")
    apply.add_argument(
        "--checksum", choices=[p.value for p in ChecksumProfile], help="profile of a new log (default crc32c)"
    )
    apply.add_argument("--file-num-bytes", type=_file_num_bytes, metavar="N", help="WAL file size")
    apply.add_argument("--recovery", choices=_MODES, default="point_in_time", help="recovery mode of every open")

    dump = commands.add_parser("dump", help="print the canonical state JSON of DIR (read-only)")
    dump.add_argument("directory", metavar="DIR")
    dump.add_argument("--report", action="store_true", help="also print the recovery report on stderr")
    dump.add_argument(
        "--recovery", choices=_MODES, default="point_in_time", help="show what this recovery mode would recover"
    )

    crash = commands.add_parser(
        "crashcheck", help="the crash-consistency campaign: crash images must recover an allowed prefix"
    )
    _add_campaign_arguments(crash, "seed of the workloads and images (default 0)")
    crash.add_argument(
        "--exhaustive",
        action="store_true",
        help="instead of a campaign: every crash point and every image (up to 512 per point) of short traces",
    )

    fuzz = commands.add_parser(
        "fuzz", help="the reader fuzz campaign: hostile directories must be recovered safely in every mode"
    )
    _add_campaign_arguments(fuzz, "seed of the base logs and mutations (default 0)")

    conformance = commands.add_parser(
        "conformance", help="check another implementation through its adapter (spec/CONFORMANCE.md)"
    )
    conformance.add_argument("--adapter", required=True, metavar="CMD", help="the adapter command line")
    conformance.add_argument("--seed", type=int, default=0)
    conformance.add_argument("--budget", type=float, default=60.0, metavar="SECONDS", help="time to spend (default 60)")
    conformance.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    conformance.add_argument(
        "--checks", default=",".join(CHECKS), help=f"comma-separated checks to run (default: {','.join(CHECKS)})"
    )
    conformance.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="per request (default 30)")
    conformance.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="NAME",
        help=f"declare a built-in baseline of known differences ({', '.join(sorted(BASELINES))}); repeatable",
    )
    conformance.add_argument(
        "--baseline-file",
        action="append",
        default=[],
        metavar="FILE",
        help="declare known differences: one failure class per line, # comments; repeatable",
    )
    conformance.add_argument(
        "--max-failures",
        type=_positive_int,
        default=10,
        metavar="N",
        help="failure classes kept with a shrunk reproducer (default 10); the rest are counted",
    )
    conformance.add_argument(
        "--fail-fast", action="store_true", help="stop at the first failure kept, instead of spending the budget"
    )
    _add_scale_out_arguments(conformance, workloads=False)

    merge = commands.add_parser(
        "merge-reports", help="merge the --json reports of the shards of one crashcheck, fuzz or conformance run"
    )
    merge.add_argument("reports", nargs="+", metavar="REPORT.json", help="--json reports of the same campaign and seed")
    merge.add_argument("--json", action="store_true", help="print one JSON object instead of the table")

    demo = commands.add_parser("demo", help="write a demo workload, reopen, dump")
    demo.add_argument("directory", metavar="DIR", nargs="?", help="log directory (default: a temporary one)")
    demo.add_argument("--records", type=int, default=20000, help="records to append (default 20000)")
    demo.add_argument("--seed", type=int, default=0)
    return parser


def _bar(fraction: float, counts: str) -> None:
    width = 30
    filled = int(width * fraction)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {counts}")
    sys.stderr.flush()


def _progress_bar(report: CampaignReport, fraction: float) -> None:
    _bar(
        fraction,
        f"{report.images_checked} images, {report.workloads} workloads, {len(report.violations)} violation(s)",
    )


def _conformance(args: argparse.Namespace) -> int:
    checks = tuple(check.strip() for check in args.checks.split(",") if check.strip())
    unknown = [check for check in checks if check not in CHECKS]
    if unknown or not checks:
        print(
            f"mrecordlog conformance: unknown check(s) {', '.join(unknown) or '(none given)'}; "
            f"the checks are {', '.join(CHECKS)}",
            file=sys.stderr,
        )
        return 2
    try:
        baseline = baseline_classes(args.baseline, args.baseline_file)
    except BaselineError as exc:
        print(f"mrecordlog conformance: {exc}", file=sys.stderr)
        return 2
    if "live" in checks and importlib.util.find_spec("hypothesis") is None:
        print(
            "mrecordlog conformance: the live check needs Hypothesis: pip install 'mrecordlog[oracle]'", file=sys.stderr
        )
        return 2
    try:
        workers, part, _ = _scale_out(args)
    except ValueError as exc:
        print(f"mrecordlog conformance: {exc}", file=sys.stderr)
        return 2
    interactive = sys.stderr.isatty() and not args.json
    started = time.perf_counter()

    def progress(report: ConformanceReport) -> None:
        counts = ", ".join(f"{name} {stats.run}" for name, stats in report.checks.items())
        failures = len(report.failures) + len(report.uncollected)
        _bar(min((time.perf_counter() - started) / args.budget, 1.0), f"{counts}; {failures} failure class(es)")

    report = run_conformance(
        args.adapter,
        seed=args.seed,
        budget_seconds=args.budget,
        checks=checks,
        baseline=baseline,
        max_failures=args.max_failures,
        fail_fast=args.fail_fast,
        timeout=args.timeout,
        workers=workers,
        part=part,
        progress=progress if interactive else None,
    )
    if interactive:
        sys.stderr.write("\n")
    if args.json:
        print(json.dumps(report.to_json_value(), sort_keys=True))
    else:
        print("\n".join(report.lines()))
    return 0 if report.ok else 1


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _exhaustive(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    rows = []
    violations = 0
    for name, workload in exhaustive_workloads():
        report = exhaustive_check(workload, max_images_per_point=512, tear_variants=True)
        violations += len(report.violations)
        rows.append((name, report.crash_points, report.images_checked, len(report.violations)))
        for violation in report.violations:
            print(f"{name}: {violation.kind}: {violation.message}", file=sys.stderr)
    seconds = time.perf_counter() - started
    if args.json:
        traces = [{"trace": n, "crash_points": p, "images": i, "violations": v} for n, p, i, v in rows]
        total = sum(row[2] for row in rows)
        print(json.dumps({"traces": traces, "images_checked": total, "violations": violations, "seconds": seconds}))
    else:
        width = max(len(row[0]) for row in rows)
        print(f"{'trace / policy':<{width}}  {'points':>6}  {'images':>7}  {'violations':>10}")
        for name, points, images, bad in rows:
            print(f"{name:<{width}}  {points:>6}  {images:>7}  {bad:>10}")
        print(f"{sum(r[2] for r in rows)} images in {seconds:.1f} s, {violations} violation(s)")
    return 1 if violations else 0


def _crashcheck(args: argparse.Namespace) -> int:
    try:
        workers, part, limit = _campaign_options(args)
    except ValueError as exc:
        print(f"mrecordlog crashcheck: {exc}", file=sys.stderr)
        return 2
    if args.replay is not None:
        with open(args.replay, encoding="utf-8") as handle:
            reproducer = json.load(handle)
        message = replay_reproducer(reproducer)
        if message is None:
            print(f"{args.replay}: no violation (fixed?)")
            return 0
        print(f"{args.replay}: {reproducer.get('kind', 'violation')}: {message}")
        return 1
    if args.exhaustive:
        return _exhaustive(args)
    interactive = sys.stderr.isatty() and not args.json
    report = run_campaign(
        args.seed,
        args.budget,
        workers=workers,
        part=part,
        max_workloads=limit,
        progress=_progress_bar if interactive else None,
    )
    if interactive:
        _progress_bar(report, 1.0)
        sys.stderr.write("\n")
    paths = []
    for number, violation in enumerate(report.violations, start=1):
        path = os.path.join(args.reproducer_dir, reproducer_name("crashcheck", args.seed, part, number))
        write_reproducer(violation, path)
        paths.append(path)
    if args.json:
        print(json.dumps({**report.to_json_value(), "reproducers": paths}, sort_keys=True))
    else:
        print("\n".join(iter_report_lines(report)))
        for path in paths:
            print(f"reproducer: {path}  (run again: mrecordlog crashcheck --replay {path})")
    return 1 if report.violations else 0


def _fuzz_progress(report: FuzzReport, fraction: float) -> None:
    _bar(fraction, f"{report.images} images, {report.base_images} base logs, {report.violations} violation(s)")


def _fuzz(args: argparse.Namespace) -> int:
    try:
        workers, part, limit = _campaign_options(args)
    except ValueError as exc:
        print(f"mrecordlog fuzz: {exc}", file=sys.stderr)
        return 2
    if args.replay is not None:
        try:
            reproducer = load_reproducer(args.replay)
        except ReproducerError as exc:
            print(f"mrecordlog fuzz: {args.replay}: {exc}", file=sys.stderr)
            return 2
        findings = replay_fuzz_reproducer(reproducer)
        if not findings:
            print(f"{args.replay}: no violation (fixed?)")
            return 0
        for finding in findings:
            print(f"{args.replay}: {finding.kind} [{reproducer['mutation']}, {finding.mode}]: {finding.message}")
        return 1
    interactive = sys.stderr.isatty() and not args.json
    report = run_fuzz_campaign(
        args.seed,
        args.budget,
        workers=workers,
        part=part,
        max_workloads=limit,
        progress=_fuzz_progress if interactive else None,
    )
    if interactive:
        _fuzz_progress(report, 1.0)
        sys.stderr.write("\n")
    paths = []
    for number, violation in enumerate(report.details.values(), start=1):
        path = os.path.join(args.reproducer_dir, reproducer_name("fuzz", args.seed, part, number))
        write_fuzz_reproducer(violation, path)
        paths.append(path)
    if args.json:
        print(json.dumps({**report.to_json_value(), "reproducers": paths}, sort_keys=True))
    else:
        print("\n".join(iter_fuzz_report_lines(report)))
        for path in paths:
            print(f"reproducer: {path}  (run again: mrecordlog fuzz --replay {path})")
    return 1 if report.violations else 0


def _merge_reports(args: argparse.Namespace) -> int:
    try:
        merged = merge_reports([(path, load_report(path)) for path in args.reports])
    except ReportError as exc:
        print(f"mrecordlog merge-reports: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(merged.to_json_value(), sort_keys=True))
    else:
        print("\n".join(merged.lines()))
    return 0 if merged.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "apply":
            try:
                if args.ops == "-":
                    operations = read_operations(sys.stdin, "stdin")
                else:
                    with open(args.ops, encoding="utf-8") as handle:
                        operations = read_operations(handle, args.ops)
            except InvalidArgument as exc:
                print(f"mrecordlog apply: {exc}", file=sys.stderr)
                return 2
            failed = False
            for result in apply_operations(
                args.directory,
                operations,
                checksum=args.checksum,
                file_num_bytes=args.file_num_bytes,
                recovery=args.recovery,
            ):
                print(result_line(result))
                refused = result.get("op") in ("open", "reopen") or result.get("error") == "Panic"
                failed = failed or (refused and not result["ok"])
            return 1 if failed else 0
        if args.command == "dump":
            inspection = inspect_log(args.directory, recovery=args.recovery)
            sys.stdout.write(inspection.state.to_canonical_json())
            if args.report:
                print(inspection.report.describe(), file=sys.stderr)
            return 0
        if args.command == "crashcheck":
            return _crashcheck(args)
        if args.command == "fuzz":
            return _fuzz(args)
        if args.command == "conformance":
            return _conformance(args)
        if args.command == "merge-reports":
            return _merge_reports(args)
        if args.directory is not None:
            return run_demo(args.directory, records=args.records, seed=args.seed)
        with tempfile.TemporaryDirectory(prefix="mrecordlog-demo-") as directory:
            return run_demo(directory, records=args.records, seed=args.seed)
    except CorruptionError as exc:
        where = f" ({exc.file} at offset {exc.offset})" if exc.file is not None else ""
        print(f"mrecordlog {args.command}: {type(exc).__name__}{where}: {exc}", file=sys.stderr)
        return 1
    except MRecordLogError as exc:
        print(f"mrecordlog {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"mrecordlog {args.command}: {exc}", file=sys.stderr)
        return 1
    except WorkerFailed as exc:
        print(f"mrecordlog {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Any worker processes are stopped by then (oracle.driver).
        if sys.stderr.isatty():
            sys.stderr.write("\n")
        print(f"mrecordlog {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
