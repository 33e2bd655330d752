"""The ``mrecordlog`` command: a thin argparse layer over the library.

Subcommands: ``apply`` (run ops.jsonl, print results.jsonl), ``dump`` (print
the canonical state, strictly read-only), ``summary``, ``read`` and ``verify``
(the read-only operator reports of ``mrecordlog.diagnosis``), ``crashcheck``
(the crash-consistency campaign, the README's main job), ``fuzz`` (the reader
fuzz campaign over damaged directories), ``conformance`` (check another
implementation), ``merge-reports`` (merge the JSON reports of a campaign's
shards), ``demo`` (a workload that writes, reopens and dumps a log). The
campaigns scale out with ``--workers`` and ``--shard`` (``oracle.driver``).

Exit status: 0 success; 1 a finding or a failure (the log refused, an I/O
error, corruption, ``verify`` found damage, a campaign found a violation, an
operation panicked); 2 usage (bad arguments: out of range, a missing input
file or log directory, a malformed operations or reproducer file); 130
interrupted (Ctrl-C). ``main`` turns every error into one line on stderr
(``--debug`` adds the traceback): no traceback reaches the user otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import math
import os
import re
import stat
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from mrecordlog import __version__
from mrecordlog._codec import MAX_U64, ChecksumProfile
from mrecordlog._recovery import RecoveryMode
from mrecordlog.demo import run_demo
from mrecordlog.diagnosis import read_records, summarize_log, verify_log
from mrecordlog.errors import CorruptionError, InvalidArgument, MRecordLogError
from mrecordlog.inspection import inspect_log
from mrecordlog.interchange import Operation, apply_operations, parse_operation, result_line
from mrecordlog.log import check_file_num_bytes
from mrecordlog.oracle.classes import BASELINES, BaselineError, baseline_classes
from mrecordlog.oracle.driver import WHOLE, Part, WorkerFailed, parse_shard, parse_workers, reproducer_name
from mrecordlog.oracle.report import CHECKS
from mrecordlog.outcomes import Record

# The campaigns (conformance, crashcheck, fuzz, merge-reports) import their
# modules when they run: the other commands start without them, about a fifth
# sooner (an operator's `summary` or `read`, and the tests, start it often).
# So is tqdm, by the first bar drawn (importing it takes longer than a summary).
if TYPE_CHECKING:
    from tqdm import tqdm

    from mrecordlog.oracle.conformance import ConformanceReport
    from mrecordlog.oracle.crashcheck import CampaignReport
    from mrecordlog.oracle.fuzz import FuzzReport

_MODES = [mode.value for mode in RecoveryMode]

# The bounds of the numeric options, checked while parsing so that a value out
# of range is a usage error (status 2) before anything runs. The upper bounds
# are far above any real use: they only keep absurd values (2^70 seconds, a
# 5000-digit count) from reaching time and OS calls that cannot take them.
MAX_SEED = MAX_U64
MAX_SECONDS = 10**6  # --budget and --timeout: 11.6 days
MAX_WORKERS = 256
MAX_COUNT = 10**9  # --records, --workloads, --max-failures
# int() refuses strings of more than 4300 digits with a message about
# sys.set_int_max_str_digits; nothing this command takes has more than 20.
_MAX_DIGITS = 30
_INTEGER = re.compile(r"[+-]?[0-9]+")

# Off a terminal, a campaign prints one progress line to stderr this often (in
# seconds), so that a CI log is not silent for the whole budget. The tests set
# it lower; 0 turns the lines off.
PROGRESS_INTERVAL_ENV = "MRECORDLOG_PROGRESS_INTERVAL"
DEFAULT_PROGRESS_INTERVAL = 10.0

_DIR_HELP = "the log directory: the folder holding the wal-NNNNNNNNNNNNNNNNNNNN files"
_READ_ONLY_DIR_HELP = _DIR_HELP + "; it must exist, and nothing in it is written or changed"


class BadArgument(Exception):
    """A command-line argument found invalid after parsing (a missing input
    file, a malformed operations or reproducer file): status 2, one line.
    Private to the command: ``main`` turns it into its message."""


# -- parsing ---------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line (argparse prints the whole
    usage first), so that every failure of the command is one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, _printable(f"{self.prog}: error: {_one_line(message)} (see {self.prog} --help)") + "\n")


def _integer(text: str, minimum: int, maximum: int) -> int:
    """An integer option's value: plain ASCII digits in [minimum, maximum]."""
    stripped = text.strip()
    if not _INTEGER.fullmatch(stripped):
        raise argparse.ArgumentTypeError(f"not an integer: '{text}'")
    if len(stripped.lstrip("+-").lstrip("0")) > _MAX_DIGITS:
        bound = f"at least {minimum}" if stripped.startswith("-") else f"at most {maximum}"
        raise argparse.ArgumentTypeError(f"must be {bound}, not a {len(stripped)}-character number")
    value = int(stripped)
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
    if value > maximum:
        raise argparse.ArgumentTypeError(f"must be at most {maximum}, not {value}")
    return value


def _seed(text: str) -> int:
    return _integer(text, 0, MAX_SEED)


def _count(text: str) -> int:
    return _integer(text, 1, MAX_COUNT)


def _position(text: str) -> int:
    return _integer(text, 0, MAX_U64)


def _seconds(text: str) -> float:
    """A duration: a finite number of seconds, above 0 and at most MAX_SECONDS."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: '{text}'") from None
    if not math.isfinite(value) or not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_SECONDS} seconds, not {text}")
    return value


def _file_num_bytes(text: str) -> int:
    stripped = text.strip()
    if _INTEGER.fullmatch(stripped) and len(stripped) > _MAX_DIGITS:
        raise argparse.ArgumentTypeError(
            f"must be a positive multiple of 32768 of at most 2^62, not a {len(stripped)}-digit number"
        )
    try:
        return check_file_num_bytes(int(stripped))
    except (ValueError, MRecordLogError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _workers(text: str) -> str:
    """--workers: a count or auto, resolved by ``_scale_out``."""
    return text if text == "auto" else str(_integer(text, 1, MAX_WORKERS))


def _shard(text: str) -> str:
    try:
        if len(text) > 2 * _MAX_DIGITS:
            raise ValueError(f"--shard {text[:20]!r}...: expected K/N, two integers such as 1/4")
        parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _workloads(text: str) -> str:
    return str(_integer(text, 1, MAX_COUNT))


def _describe_entry(path: str) -> str | None:
    """Why ``path`` cannot be a directory (None when it is one)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"'{path}' does not exist"
    except (OSError, ValueError) as exc:
        return f"'{path}' cannot be examined: {getattr(exc, 'strerror', None) or exc}"
    if stat.S_ISDIR(mode):
        return None
    kind = "a regular file" if stat.S_ISREG(mode) else "not a directory"
    return f"'{path}' is {kind}, not a log directory"


def _log_directory(text: str) -> str:
    """DIR of a read-only command: an existing directory."""
    problem = _describe_entry(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text


def _new_or_log_directory(text: str) -> str:
    """DIR of apply and demo: a directory, or nothing yet (it is created)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path is not a directory")
    if os.path.lexists(text):
        problem = _describe_entry(text)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
    return text


def _input_file(text: str) -> str:
    """A file the command reads: it must exist and not be a directory."""
    try:
        mode = os.stat(text).st_mode
    except FileNotFoundError:
        raise argparse.ArgumentTypeError(f"'{text}' does not exist") from None
    except (OSError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"'{text}' cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    if stat.S_ISDIR(mode):
        raise argparse.ArgumentTypeError(f"'{text}' is a directory, not a file")
    return text


def _ops_file(text: str) -> str:
    return text if text == "-" else _input_file(text)


def _add_debug(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--debug", action="store_true", default=default, help="on an error, also print the Python traceback"
    )


def _add_read_only_arguments(parser: argparse.ArgumentParser, recovery_help: str, *, json_help: str) -> None:
    parser.add_argument("directory", metavar="DIR", type=_log_directory, help=_READ_ONLY_DIR_HELP)
    parser.add_argument("--recovery", choices=_MODES, default="point_in_time", metavar="MODE", help=recovery_help)
    parser.add_argument("--json", action="store_true", help=json_help)


def _add_campaign_arguments(parser: argparse.ArgumentParser, seed_help: str) -> None:
    """The options crashcheck and fuzz share."""
    parser.add_argument("--seed", type=_seed, default=0, metavar="S", help=seed_help)
    parser.add_argument(
        "--budget", type=_seconds, default=60.0, metavar="SECONDS", help="time to spend (default 60, more than 0)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument(
        "--reproducer-dir",
        default=".",
        type=_log_directory,
        metavar="DIR",
        help="an existing directory where reproducer files are written (default .)",
    )
    parser.add_argument(
        "--replay", metavar="FILE", type=_input_file, help="run a reproducer file again instead of a campaign"
    )
    _add_scale_out_arguments(parser, workloads=True)


def _add_scale_out_arguments(parser: argparse.ArgumentParser, *, workloads: bool) -> None:
    """--workers and --shard (and --workloads), checked while parsing."""
    parser.add_argument(
        "--workers",
        default="1",
        type=_workers,
        metavar="N",
        help=f"worker processes on this machine (default 1, at most {MAX_WORKERS}; auto: one per available CPU)",
    )
    parser.add_argument(
        "--shard",
        metavar="K/N",
        type=_shard,
        help="run only shard K of N (K from 1 to N) of the seed space; merge the shards' --json reports with "
        "mrecordlog merge-reports",
    )
    if workloads:
        parser.add_argument(
            "--workloads",
            metavar="N",
            type=_workloads,
            help="only the seed indices 0 to N-1 (of which a shard runs its part), within the budget",
        )


def _scale_out(args: argparse.Namespace) -> tuple[int, Part, int | None]:
    """The workers, the shard and the workload limit (checked by the parser)."""
    workers = parse_workers(args.workers)
    part = WHOLE if args.shard is None else parse_shard(args.shard)
    limit = getattr(args, "workloads", None)
    return workers, part, None if limit is None else int(limit)


def _campaign_options(args: argparse.Namespace) -> tuple[int, Part, int | None]:
    """``_scale_out`` for crashcheck and fuzz, which also refuse the options
    with --replay (and --exhaustive)."""
    scale = _scale_out(args)
    single = args.replay is not None or getattr(args, "exhaustive", False)
    if single and (args.workers != "1" or args.shard is not None or args.workloads is not None):
        raise BadArgument("--workers, --shard and --workloads apply to a campaign, not to --replay or --exhaustive")
    return scale


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mrecordlog",
        description="A multi-queue write-ahead record log (the reference implementation of mrecordlog 0.5).",
        epilog=(
            "Exit status: 0 success; 1 a finding or a failure (the log refused, verify found damage, a campaign "
            "found a violation, an operation panicked); 2 usage error (a bad option or argument, a missing file "
            "or directory); 130 interrupted. Errors are one line on stderr; --debug adds the traceback."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_debug(parser, False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, description: str | None = None) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=description or help_text)
        # SUPPRESS: the top-level --debug stays set when the subcommand's is not given.
        _add_debug(sub, argparse.SUPPRESS)
        return sub

    apply = command("apply", "apply ops.jsonl to the log in DIR and print results.jsonl")
    apply.add_argument(
        "directory", metavar="DIR", type=_new_or_log_directory, help=_DIR_HELP + "; created if it does not exist"
    )
    apply.add_argument("ops", metavar="OPS.jsonl", type=_ops_file, help="operations file (UTF-8 JSONL), or - for stdin")
    apply.add_argument(
        "--checksum", choices=[p.value for p in ChecksumProfile], help="profile of a new log (default crc32c)"
    )
    apply.add_argument(
        "--file-num-bytes", type=_file_num_bytes, metavar="N", help="WAL file size: a positive multiple of 32768"
    )
    apply.add_argument(
        "--recovery", choices=_MODES, default="point_in_time", metavar="MODE", help="recovery mode of every open"
    )

    dump = command("dump", "print the canonical state JSON of DIR (read-only)")
    dump.add_argument("directory", metavar="DIR", type=_log_directory, help=_READ_ONLY_DIR_HELP)
    dump.add_argument("--report", action="store_true", help="also print the recovery report on stderr")
    dump.add_argument(
        "--recovery",
        choices=_MODES,
        default="point_in_time",
        metavar="MODE",
        help="show what this recovery mode (point_in_time, strict, skip) would recover",
    )

    summary = command(
        "summary",
        "what the log in DIR holds: profile, files, and per queue its positions, records and bytes (read-only)",
    )
    _add_read_only_arguments(
        summary,
        "summarize what this recovery mode (point_in_time, strict, skip) would recover (default point_in_time)",
        json_help="print one JSON object instead of the text",
    )

    read = command("read", "print the records of one queue of the log in DIR, one per line (read-only)")
    _add_read_only_arguments(
        read,
        "the records this recovery mode (point_in_time, strict, skip) would recover (default point_in_time)",
        json_help="the same as --format json",
    )
    read.add_argument("queue", metavar="QUEUE", help="the queue's name")
    read.add_argument("--from", dest="start", type=_position, metavar="P", help="the first position shown")
    read.add_argument("--to", dest="last", type=_position, metavar="P", help="the last position shown (inclusive)")
    read.add_argument(
        "--format",
        choices=("text", "hex", "json"),
        help="text: position, tab, the payload as escaped UTF-8 (default); hex: position, tab, hex; "
        'json: {"payload_hex": ..., "position": ...} per line',
    )

    verify = command(
        "verify",
        "check the log in DIR frame by frame; exit 1 if anything is damaged (read-only)",
    )
    _add_read_only_arguments(
        verify,
        "the mode whose end of the log defines the data after the end (default point_in_time); "
        "every mode is replayed and reported",
        json_help="print one JSON object instead of the text",
    )

    crash = command("crashcheck", "the crash-consistency campaign: crash images must recover an allowed prefix")
    _add_campaign_arguments(
        crash,
        "seed of the workloads and crash images (default 0, from 0 to 2^64-1): the same seed and budget "
        "check the same images",
    )
    crash.add_argument(
        "--exhaustive",
        action="store_true",
        help="instead of a campaign: every crash point and every image (up to 512 per point) of short traces",
    )

    fuzz = command("fuzz", "the reader fuzz campaign: hostile directories must be recovered safely in every mode")
    _add_campaign_arguments(
        fuzz,
        "seed of the base logs and mutations (default 0, from 0 to 2^64-1): the same seed damages the same way",
    )

    conformance = command("conformance", "check another implementation through its adapter (spec/CONFORMANCE.md)")
    conformance.add_argument("--adapter", required=True, metavar="CMD", help="the adapter command line")
    conformance.add_argument(
        "--seed",
        type=_seed,
        default=0,
        metavar="S",
        help="seed of the generated operations and images (default 0, from 0 to 2^64-1)",
    )
    conformance.add_argument(
        "--budget", type=_seconds, default=60.0, metavar="SECONDS", help="time to spend (default 60, more than 0)"
    )
    conformance.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    conformance.add_argument(
        "--checks", default=",".join(CHECKS), help=f"comma-separated checks to run (default: {','.join(CHECKS)})"
    )
    conformance.add_argument(
        "--timeout", type=_seconds, default=30.0, metavar="SECONDS", help="per request (default 30, more than 0)"
    )
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
        type=_count,
        default=10,
        metavar="N",
        help="failure classes kept with a shrunk reproducer (default 10); the rest are counted",
    )
    conformance.add_argument(
        "--fail-fast", action="store_true", help="stop at the first failure kept, instead of spending the budget"
    )
    _add_scale_out_arguments(conformance, workloads=False)

    merge = command(
        "merge-reports", "merge the --json reports of the shards of one crashcheck, fuzz or conformance run"
    )
    merge.add_argument(
        "reports",
        nargs="+",
        type=_input_file,
        metavar="REPORT.json",
        help="--json reports of the same campaign and seed",
    )
    merge.add_argument("--json", action="store_true", help="print one JSON object instead of the table")

    demo = command("demo", "write a demo workload, reopen, dump")
    demo.add_argument(
        "directory",
        metavar="DIR",
        nargs="?",
        type=_new_or_log_directory,
        help=_DIR_HELP + "; created if it does not exist (default: a temporary one, removed afterwards)",
    )
    demo.add_argument(
        "--records",
        type=_count,
        default=20000,
        metavar="N",
        help=f"records to append (default 20000, 1 to {MAX_COUNT})",
    )
    demo.add_argument(
        "--seed",
        type=_seed,
        default=0,
        metavar="S",
        help="seed of the workload (default 0, from 0 to 2^64-1): the same seed writes the same records",
    )
    return parser


# -- output ----------------------------------------------------------------------------


def _one_line(text: str) -> str:
    """A message on one line: an exception's text may hold line breaks."""
    return " / ".join(line.strip() for line in text.splitlines() if line.strip()) or text.strip()


def _printable(text: str, encoding: str = "utf-8") -> str:
    """``text`` as the stream can encode it: a path given as bytes that are
    not UTF-8 reaches Python as lone surrogates, which no stream accepts;
    such a byte is shown as ``\\xNN`` (as Python's backslashreplace shows it),
    and a character ``encoding`` lacks as its backslash escape."""
    # A surrogate that no byte became raises: it is escaped below.
    with contextlib.suppress(UnicodeEncodeError):
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text.encode(encoding, "backslashreplace").decode(encoding)


def _out(text: str) -> None:
    sys.stdout.write(_printable(text, getattr(sys.stdout, "encoding", None) or "utf-8") + "\n")


def _err(text: str) -> None:
    sys.stderr.write(_printable(_one_line(text), getattr(sys.stderr, "encoding", None) or "utf-8") + "\n")
    sys.stderr.flush()


# Everything but printable ASCII other than the backslash: what ``payload_text``
# looks at one character at a time (keeping printable non-ASCII text as it is).
_NOT_PLAIN = re.compile(r"[^\x20-\x5b\x5d-\x7e]")
_SHORT_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not valid UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if char.isprintable():
        return char
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def payload_text(payload: bytes) -> str:
    """A payload as one line of printable text: UTF-8, with each byte that is
    not part of valid UTF-8 as ``\\xNN`` (80 to ff, as Python's
    backslashreplace shows it), a backslash as ``\\\\``, tab and line breaks
    as ``\\t``, ``\\n``, ``\\r``, other ASCII control characters as ``\\xNN``
    (00 to 7f) and other characters that are not printable (U+0085, U+2028,
    U+00AD, ...) as ``\\uNNNN`` or ``\\UNNNNNNNN``. Each payload has one such
    text, and each text one payload."""
    return _NOT_PLAIN.sub(_escape, payload.decode("utf-8", "surrogateescape"))


def _record_line(record: Record, form: str) -> str:
    if form == "json":
        return json.dumps(
            {"payload_hex": record.payload.hex(), "position": record.position}, sort_keys=True, separators=(",", ":")
        )
    if form == "hex":
        return f"{record.position}\t{record.payload.hex()}"
    return f"{record.position}\t{payload_text(bytes(record.payload))}"


# -- progress --------------------------------------------------------------------------


def _progress_interval() -> float | None:
    """Seconds between two progress lines off a terminal (None: no lines)."""
    text = os.environ.get(PROGRESS_INTERVAL_ENV)
    if text is None:
        return DEFAULT_PROGRESS_INTERVAL
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise BadArgument(f"{PROGRESS_INTERVAL_ENV}={text!r}: expected a number of seconds, 0 for no progress lines")
    return value or None


_BAR_STEPS = 1000
_BAR_FORMAT = "{percentage:3.0f}%|{bar}| {elapsed} {postfix}"


class _Progress:
    """A campaign's progress on stderr: a bar on a terminal (not with
    --json), else one line every ``interval`` seconds, so that a CI log shows
    the campaign alive; stdout stays the report alone. It also keeps the
    latest counts, which an interrupted campaign prints."""

    def __init__(self, command: str, *, json_output: bool, unit: str = "the budget") -> None:
        self.command = command
        self.unit = unit
        self.bar = sys.stderr.isatty() and not json_output
        self.interval = None if sys.stderr.isatty() else _progress_interval()
        self.started = time.monotonic()
        self.last_line = self.started
        self.counts: str | None = None
        self._tqdm: tqdm[NoReturn] | None = None

    def update(self, fraction: float, counts: str) -> None:
        self.counts = counts
        if self.bar:
            if self._tqdm is None:
                from tqdm import tqdm

                # Thousandths of the budget (or of the traces): the bar moves
                # with the fraction the campaign reports, its counts after it.
                self._tqdm = tqdm(
                    total=_BAR_STEPS, file=sys.stderr, bar_format=_BAR_FORMAT, dynamic_ncols=True, leave=True
                )
            self._tqdm.n = min(_BAR_STEPS, max(0, round(fraction * _BAR_STEPS)))
            self._tqdm.set_postfix_str(counts, refresh=False)
            self._tqdm.refresh()
        elif self.interval is not None and time.monotonic() - self.last_line >= self.interval:
            self.last_line = time.monotonic()
            _err(
                f"mrecordlog {self.command}: {self.last_line - self.started:.0f} s, {100 * fraction:.0f}% of "
                f"{self.unit}: {counts}"
            )

    def finish(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None

    def interrupted(self) -> str:
        """The one line printed at Ctrl-C: how far the campaign came."""
        self.finish()
        if self.counts is None:
            return "interrupted"
        return f"interrupted after {time.monotonic() - self.started:.1f} s; so far: {self.counts}"


# The campaign running in this process, if any: ``main`` reads its counts on Ctrl-C.
_running: list[_Progress] = []


def _start_progress(command: str, json_output: bool, unit: str = "the budget") -> _Progress:
    progress = _Progress(command, json_output=json_output, unit=unit)
    _running.append(progress)
    return progress


def _crash_counts(report: CampaignReport) -> str:
    return f"{report.images_checked} images, {report.workloads} workloads, {len(report.violations)} violation(s)"


def _fuzz_counts(report: FuzzReport) -> str:
    return f"{report.images} images, {report.base_images} base logs, {report.violations} violation(s)"


# -- the read-only reports -------------------------------------------------------------


def _summary(args: argparse.Namespace) -> int:
    summary = summarize_log(args.directory, recovery=args.recovery)
    if args.json:
        _out(json.dumps(summary.to_json_value(), sort_keys=True))
    else:
        _out(summary.describe())
    return 0


def _read(args: argparse.Namespace) -> int:
    form = args.format or ("json" if args.json else "text")
    if args.json and form != "json":
        raise BadArgument(f"--json and --format {form} ask for two formats; give one")
    end = None if args.last is None or args.last >= MAX_U64 else args.last + 1
    if args.start is not None and args.last is not None and args.start > args.last:
        raise BadArgument(f"--from {args.start} is after --to {args.last}")
    for record in read_records(args.directory, args.queue, start=args.start, end=end, recovery=args.recovery):
        _out(_record_line(record, form))
    return 0


def _verify(args: argparse.Namespace) -> int:
    verification = verify_log(args.directory, recovery=args.recovery)
    if args.json:
        _out(json.dumps(verification.to_json_value(), sort_keys=True))
    else:
        _out(verification.describe())
    return 0 if verification.clean else 1


# -- apply -----------------------------------------------------------------------------


def _read_operations(path: str) -> list[Operation]:
    """The operations of ``path`` (or stdin), all checked before any runs;
    BadArgument names the line of the first one that is not a valid operation."""
    source = "stdin" if path == "-" else path
    if path == "-":
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    else:
        with open(path, "rb") as handle:
            data = handle.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise BadArgument(
            f"{source} line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None
    operations = []
    # StringIO's universal newlines split lines as reading the file as text does.
    for number, line in enumerate(io.StringIO(text, newline=None), start=1):
        if not line.strip():
            continue
        where = f"{source} line {number}"
        try:
            value = json.loads(line)
        except RecursionError:
            raise BadArgument(f"{where}: not JSON: nested too deeply") from None
        except ValueError as exc:
            # Also a number of more than 4300 digits, which int() refuses with a ValueError.
            raise BadArgument(f"{where}: not JSON: {str(exc).split(';')[0]}") from None
        try:
            operations.append(parse_operation(value, where))
        except InvalidArgument as exc:
            raise BadArgument(str(exc)) from None
    return operations


def _apply(args: argparse.Namespace) -> int:
    operations = _read_operations(args.ops)
    failed = False
    for result in apply_operations(
        args.directory,
        operations,
        checksum=args.checksum,
        file_num_bytes=args.file_num_bytes,
        recovery=args.recovery,
    ):
        _out(result_line(result))
        refused = result.get("op") in ("open", "reopen") or result.get("error") == "Panic"
        failed = failed or (refused and not result["ok"])
    return 1 if failed else 0


def _dump(args: argparse.Namespace) -> int:
    inspection = inspect_log(args.directory, recovery=args.recovery)
    sys.stdout.write(inspection.state.to_canonical_json())
    if args.report:
        sys.stderr.write(_printable(inspection.report.describe()) + "\n")
    return 0


# -- the campaigns ---------------------------------------------------------------------


def _conformance(args: argparse.Namespace) -> int:
    from mrecordlog.oracle.conformance import run_conformance

    checks = tuple(check.strip() for check in args.checks.split(",") if check.strip())
    unknown = [check for check in checks if check not in CHECKS]
    if unknown or not checks:
        raise BadArgument(
            f"unknown check(s) {', '.join(unknown) or '(none given)'}; the checks are {', '.join(CHECKS)}"
        )
    try:
        baseline = baseline_classes(args.baseline, args.baseline_file)
    except BaselineError as exc:
        raise BadArgument(str(exc)) from None
    if "live" in checks and importlib.util.find_spec("hypothesis") is None:
        raise BadArgument("the live check needs Hypothesis: pip install 'mrecordlog[oracle]'")
    workers, part, _ = _scale_out(args)
    progress = _start_progress("conformance", args.json)
    started = time.perf_counter()

    def show(report: ConformanceReport) -> None:
        counts = ", ".join(f"{name} {stats.run}" for name, stats in report.checks.items())
        failures = len(report.failures) + len(report.uncollected)
        fraction = min((time.perf_counter() - started) / args.budget, 1.0)
        progress.update(fraction, f"{counts}; {failures} failure class(es)")

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
        progress=show,
    )
    progress.finish()
    if args.json:
        print(json.dumps(report.to_json_value(), sort_keys=True))
    else:
        print("\n".join(report.lines()))
    return 0 if report.ok else 1


def _exhaustive(args: argparse.Namespace) -> int:
    from mrecordlog.oracle.crashcheck import exhaustive_check
    from mrecordlog.oracle.workloads import exhaustive_workloads

    started = time.perf_counter()
    rows = []
    violations = 0
    workloads = exhaustive_workloads()
    progress = _start_progress("crashcheck", args.json, unit="the traces")
    for done, (name, workload) in enumerate(workloads, start=1):
        report = exhaustive_check(workload, max_images_per_point=512, tear_variants=True)
        violations += len(report.violations)
        rows.append((name, report.crash_points, report.images_checked, len(report.violations)))
        progress.finish()  # a violation's line starts on a line of its own
        for violation in report.violations:
            print(f"{name}: {violation.kind}: {violation.message}", file=sys.stderr)
        images = sum(row[2] for row in rows)
        progress.update(
            done / len(workloads), f"{done} of {len(workloads)} traces, {images} images, {violations} violation(s)"
        )
    progress.finish()
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


def _load_crash_reproducer(path: str) -> dict[str, Any]:
    """A crashcheck reproducer file, checked far enough that replaying it
    fails only on what the reproducer records; BadArgument otherwise."""
    from mrecordlog.oracle.workloads import Workload

    try:
        with open(path, "rb") as handle:
            value = json.loads(handle.read().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadArgument(
            f"{path}: not a crashcheck reproducer: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except RecursionError:
        raise BadArgument(f"{path}: not a crashcheck reproducer: JSON nested too deeply") from None
    except ValueError as exc:
        raise BadArgument(f"{path}: not a crashcheck reproducer: not JSON: {str(exc).split(';')[0]}") from None
    if not isinstance(value, dict) or not isinstance(value.get("workload"), dict):
        raise BadArgument(f'{path}: not a crashcheck reproducer: no "workload" object')
    try:
        Workload.from_json_value(value["workload"])
    except (KeyError, TypeError, ValueError, MRecordLogError) as exc:
        raise BadArgument(f"{path}: not a crashcheck reproducer: its workload is malformed: {exc!r}") from None
    if value.get("image") is not None and not (isinstance(value["image"], dict) and type(value.get("point")) is int):
        raise BadArgument(f'{path}: not a crashcheck reproducer: an "image" needs an object and an integer "point"')
    return value


def _crashcheck(args: argparse.Namespace) -> int:
    from mrecordlog.oracle.crashcheck import iter_report_lines, replay_reproducer, run_campaign, write_reproducer

    workers, part, limit = _campaign_options(args)
    if args.replay is not None:
        reproducer = _load_crash_reproducer(args.replay)
        message = replay_reproducer(reproducer)
        if message is None:
            print(f"{args.replay}: no violation (fixed?)")
            return 0
        print(f"{args.replay}: {reproducer.get('kind', 'violation')}: {message}")
        return 1
    if args.exhaustive:
        return _exhaustive(args)
    progress = _start_progress("crashcheck", args.json)
    report = run_campaign(
        args.seed,
        args.budget,
        workers=workers,
        part=part,
        max_workloads=limit,
        progress=lambda report, fraction: progress.update(fraction, _crash_counts(report)),
    )
    if progress.bar:
        progress.update(1.0, _crash_counts(report))
    progress.finish()
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


def _fuzz(args: argparse.Namespace) -> int:
    from mrecordlog.oracle.fuzz import ReproducerError, load_reproducer, run_fuzz_campaign
    from mrecordlog.oracle.fuzz import iter_report_lines as iter_fuzz_report_lines
    from mrecordlog.oracle.fuzz import replay_reproducer as replay_fuzz_reproducer
    from mrecordlog.oracle.fuzz import write_reproducer as write_fuzz_reproducer

    workers, part, limit = _campaign_options(args)
    if args.replay is not None:
        try:
            reproducer = load_reproducer(args.replay)
        except ReproducerError as exc:
            raise BadArgument(f"{args.replay}: {exc}") from None
        findings = replay_fuzz_reproducer(reproducer)
        if not findings:
            print(f"{args.replay}: no violation (fixed?)")
            return 0
        for finding in findings:
            print(f"{args.replay}: {finding.kind} [{reproducer['mutation']}, {finding.mode}]: {finding.message}")
        return 1
    progress = _start_progress("fuzz", args.json)
    report = run_fuzz_campaign(
        args.seed,
        args.budget,
        workers=workers,
        part=part,
        max_workloads=limit,
        progress=lambda report, fraction: progress.update(fraction, _fuzz_counts(report)),
    )
    if progress.bar:
        progress.update(1.0, _fuzz_counts(report))
    progress.finish()
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
    from mrecordlog.oracle.merge import ReportError, load_report, merge_reports

    try:
        merged = merge_reports([(path, load_report(path)) for path in args.reports])
    except ReportError as exc:
        raise BadArgument(str(exc)) from None
    if args.json:
        print(json.dumps(merged.to_json_value(), sort_keys=True))
    else:
        print("\n".join(merged.lines()))
    return 0 if merged.ok else 1


def _demo(args: argparse.Namespace) -> int:
    if args.directory is not None:
        return run_demo(args.directory, records=args.records, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="mrecordlog-demo-") as directory:
        return run_demo(directory, records=args.records, seed=args.seed)


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "apply": _apply,
    "dump": _dump,
    "summary": _summary,
    "read": _read,
    "verify": _verify,
    "crashcheck": _crashcheck,
    "fuzz": _fuzz,
    "conformance": _conformance,
    "merge-reports": _merge_reports,
    "demo": _demo,
}


# -- main ------------------------------------------------------------------------------


def _silence_stdout() -> None:
    """After a broken pipe (``mrecordlog read ... | head``): point stdout at
    /dev/null, so that the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; its exit status. Every error becomes one line on
    stderr (with ``--debug``, after its traceback) and a documented status:
    argparse's usage errors too, which it reports by raising SystemExit."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:
        # --help and --version (0) and usage errors (2), already printed.
        return exit_.code if isinstance(exit_.code, int) else 2
    command: str = args.command
    _running.clear()
    try:
        return _COMMANDS[command](args)
    except KeyboardInterrupt:
        # Any worker processes are stopped by then (oracle.driver).
        _err(f"mrecordlog {command}: {_running[-1].interrupted() if _running else 'interrupted'}")
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 1
    except Exception as exc:
        status, message = _describe_error(exc)
        if args.debug:
            sys.stderr.write(_printable(traceback.format_exc()))
            if isinstance(exc, WorkerFailed):
                sys.stderr.write(_printable(str(exc)) + "\n")
        _err(f"mrecordlog {command}: {message}")
        return status
    finally:
        for progress in _running:
            progress.finish()
        _running.clear()


def _describe_error(exc: Exception) -> tuple[int, str]:
    """The exit status of an error that ended a command, and its line."""
    if isinstance(exc, BadArgument):
        return 2, str(exc)
    if isinstance(exc, CorruptionError):
        where = f" ({exc.file} at offset {exc.offset})" if exc.file is not None else ""
        return 1, f"{type(exc).__name__}{where}: {exc}"
    if isinstance(exc, MRecordLogError):
        return 1, f"{type(exc).__name__}: {exc}"
    if isinstance(exc, WorkerFailed):
        # Its message ends with the worker's traceback: its last line names the error.
        lines = str(exc).strip().splitlines()
        return 1, f"a worker failed: {lines[-1] if lines else ''} (--debug shows its traceback)"
    if isinstance(exc, OSError):
        return 1, str(exc)
    # A bug of this package: still one line, with the way to see more.
    return 1, f"internal error: {type(exc).__name__}: {exc} (run again with --debug for the traceback)"


if __name__ == "__main__":
    sys.exit(main())
