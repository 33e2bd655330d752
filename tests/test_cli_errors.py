"""The command never shows a traceback: every error is one line on stderr and
a documented exit status (2 bad usage or arguments, 1 findings and failures,
130 interrupted), with ``--debug`` to see the traceback.

The cases the issue lists run the command as a shell does (a subprocess);
then every subcommand, found in the argument parser so that a new one is
covered without editing this file, is run with a family of hostile values in
place of each of its arguments."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import mrecordlog.cli
from mrecordlog import MultiRecordLog, __version__
from mrecordlog.cli import PROGRESS_INTERVAL_ENV, main
from tests.processes import sigint_as_on_a_terminal

REPO = Path(__file__).resolve().parent.parent
# The subprocesses import the package these tests import, wherever they run.
IMPORTED_FROM = str(Path(mrecordlog.cli.__file__).resolve().parent.parent)
# A path made of bytes that are not UTF-8, as the shell passes it; Python
# decodes it with surrogateescape, so in-process it is this str.
NOT_UTF8 = os.fsdecode(b"log-\xff\xfe")


def _env(**values: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [IMPORTED_FROM, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **values}


def _cli(*args: str | bytes, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mrecordlog", *args],
        capture_output=True,
        text=True,
        errors="backslashreplace",
        check=False,
        timeout=120,
        cwd=cwd,
        env=env or _env(),
    )


def _assert_one_line(stderr: str) -> None:
    assert "Traceback" not in stderr
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.endswith("\n")


def _small_log(directory: Path) -> Path:
    with MultiRecordLog.open(directory, file_num_bytes=32768) as log:
        log.create_queue("q")
        log.append_records("q", [b"one", b"two"])
    return directory


# -- the cases of the issue, as a shell runs them --------------------------------------


def _issue_cases(tmp: Path) -> Iterator[tuple[str, list[str], int, str]]:
    """(name, argv, status, what stderr says)."""
    (tmp / "not-json.json").write_text("this is not JSON {\n")
    (tmp / "bad-utf8.jsonl").write_bytes(b'{"op":"create_queue","queue":"q"}\n{"op":"create_queue","queue":"\xff"}\n')
    (tmp / "long-number.jsonl").write_text('{"op":"truncate","queue":"q","position":' + "9" * 5000 + "}\n")
    (tmp / "ops.jsonl").write_text('{"op":"create_queue","queue":"q"}\n')
    (tmp / "a-file").write_text("not a directory\n")
    log, ops, a_file = str(tmp / "log"), str(tmp / "ops.jsonl"), str(tmp / "a-file")
    yield "replay of a file that is not JSON", ["crashcheck", "--replay", str(tmp / "not-json.json")], 2, "not JSON"
    yield "apply of invalid UTF-8", ["apply", log, str(tmp / "bad-utf8.jsonl")], 2, "line 2: not UTF-8"
    yield "apply of a 5000-digit number", ["apply", log, str(tmp / "long-number.jsonl")], 2, "line 1: not JSON"
    yield "a file size of 2**70", ["apply", "--file-num-bytes", str(2**70), log, ops], 2, "--file-num-bytes"
    yield "a missing ops file", ["apply", log, str(tmp / "missing.jsonl")], 2, "missing.jsonl' does not exist"
    yield "a negative budget", ["crashcheck", "--budget", "-5"], 2, "argument --budget: must be more than 0"
    yield "a negative record count", ["demo", "--records", "-5"], 2, "argument --records: must be at least 1"
    for command in ("apply", "demo", "dump", "summary", "verify", "read"):
        argv = [command, a_file, *([ops] if command == "apply" else ["q"] if command == "read" else [])]
        yield f"{command} of a regular file", argv, 2, "a-file' is a regular file, not a log directory"
    yield "dump of a missing directory", ["dump", str(tmp / "nowhere")], 2, "nowhere' does not exist"


@pytest.fixture
def issue_cases(tmp_path: Path) -> list[tuple[str, list[str], int, str]]:
    return list(_issue_cases(tmp_path))


def test_every_case_of_the_issue_is_one_line_and_the_right_status(
    issue_cases: list[tuple[str, list[str], int, str]], tmp_path: Path
) -> None:
    for name, argv, status, says in issue_cases:
        run = _cli(*argv, cwd=tmp_path)
        assert run.returncode == status, (name, run.stderr)
        _assert_one_line(run.stderr)
        assert says in run.stderr, (name, run.stderr)
        assert run.stdout == "", name
        assert "Errno" not in run.stderr, (name, run.stderr)
        assert "mkdir" not in run.stderr, (name, run.stderr)
    # Nothing ran: the log of the refused applies was never created.
    assert not (tmp_path / "log").exists()


def test_debug_adds_the_traceback_to_the_line(tmp_path: Path) -> None:
    _small_log(tmp_path / "log")
    plain = _cli("read", str(tmp_path / "log"), "nope")
    assert plain.returncode == 1
    assert plain.stderr == "mrecordlog read: MissingQueue: missing queue 'nope'\n"
    for argv in (
        ["--debug", "read", str(tmp_path / "log"), "nope"],
        ["read", str(tmp_path / "log"), "nope", "--debug"],
    ):
        debug = _cli(*argv)
        assert debug.returncode == 1
        assert debug.stderr.startswith("Traceback (most recent call last):")
        assert debug.stderr.endswith(plain.stderr)
        assert "raise MissingQueue(queue)" in debug.stderr


def test_a_bug_is_one_line_naming_the_error_and_debug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: argparse.Namespace) -> int:
        table: dict[str, int] = {}
        return table["no such key"]

    monkeypatch.setitem(mrecordlog.cli._COMMANDS, "summary", broken)
    assert main(["summary", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == (
        "mrecordlog summary: internal error: KeyError: 'no such key' (run again with --debug for the traceback)\n"
    )
    assert main(["summary", "--debug", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback")
    assert 'return table["no such key"]' in err


def test_version_and_python_dash_m_are_the_command() -> None:
    version = _cli("--version")
    assert version.returncode == 0
    assert version.stdout == f"mrecordlog {__version__}\n"
    # The version the package says is the one its installation recorded.
    assert __version__ == importlib.metadata.version("mrecordlog")
    as_module = subprocess.run(
        [sys.executable, "-m", "mrecordlog.cli", "--version"], capture_output=True, text=True, check=False, env=_env()
    )
    assert as_module.stdout == version.stdout


# -- progress and Ctrl-C ---------------------------------------------------------------


@pytest.mark.parametrize("campaign", ["crashcheck", "fuzz"])
def test_a_campaign_off_a_terminal_prints_progress_lines_and_keeps_stdout_clean(campaign: str, tmp_path: Path) -> None:
    run = _cli(campaign, "--budget", "2", "--json", cwd=tmp_path, env=_env(**{PROGRESS_INTERVAL_ENV: "0.3"}))
    assert run.returncode in (0, 1), run.stderr
    json.loads(run.stdout)  # one JSON object, nothing else
    assert len(run.stdout.splitlines()) == 1
    lines = run.stderr.splitlines()
    assert len(lines) >= 2, run.stderr
    for line in lines:
        assert line.startswith(f"mrecordlog {campaign}: "), line
        assert "% of the budget: " in line
        assert "images" in line
    quiet = _cli(campaign, "--budget", "0.5", "--json", cwd=tmp_path, env=_env(**{PROGRESS_INTERVAL_ENV: "0"}))
    assert quiet.stderr == ""


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="the platform has no pseudo-terminals")
@pytest.mark.parametrize("campaign", ["crashcheck", "fuzz"])
def test_a_campaign_on_a_terminal_draws_a_bar_to_100_percent_and_keeps_stdout_clean(
    campaign: str, tmp_path: Path
) -> None:
    """stderr a terminal (a pseudo-terminal), stdout a pipe: the bar on
    stderr ends full, with the report's counts; stdout is the report alone."""
    import fcntl  # POSIX only, like the pseudo-terminal
    import termios

    controller, terminal = os.openpty()
    # A new pseudo-terminal is 0 columns wide: give it a terminal's size.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "mrecordlog", campaign, "--budget", "1.5", "--workers", "1"],
            stdout=subprocess.PIPE,
            stderr=terminal,
            cwd=tmp_path,
            env=_env(),
        )
        os.close(terminal)
        terminal = -1
        drawn = bytearray()
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the command closed its end
                break
            if not chunk:
                break
            drawn += chunk
        stdout = process.communicate(timeout=120)[0].decode()
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    assert process.returncode in (0, 1), drawn
    screen = drawn.decode(errors="replace")
    assert "Traceback" not in screen
    # The last state drawn (a terminal's line ends are \r\n; the bar redraws after \r).
    last = [part.strip() for part in screen.replace("\n", "\r").split("\r") if part.strip()][-1]
    assert last.startswith("100%|"), screen
    assert "images" in last, last
    assert "violation(s)" in last, last
    assert not any(line.startswith(f"mrecordlog {campaign}:") for line in screen.splitlines()), screen
    assert "%|" not in stdout
    assert "\r" not in stdout
    assert "violations" in stdout


def test_the_exhaustive_mode_counts_its_traces_in_its_progress_lines(tmp_path: Path) -> None:
    run = _cli("crashcheck", "--exhaustive", "--json", cwd=tmp_path, env=_env(**{PROGRESS_INTERVAL_ENV: "0.001"}))
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    lines = run.stderr.splitlines()
    assert lines, run.stderr
    assert all("% of the traces: " in line for line in lines), run.stderr
    assert lines[-1].endswith(
        f"100% of the traces: {len(report['traces'])} of {len(report['traces'])} traces, "
        f"{report['images_checked']} images, 0 violation(s)"
    )


def test_a_bad_progress_interval_is_a_usage_error(tmp_path: Path) -> None:
    run = _cli("crashcheck", "--budget", "1", cwd=tmp_path, env=_env(**{PROGRESS_INTERVAL_ENV: "soon"}))
    assert run.returncode == 2
    _assert_one_line(run.stderr)
    assert PROGRESS_INTERVAL_ENV in run.stderr


def test_ctrl_c_prints_how_far_the_campaign_came_and_exits_130(tmp_path: Path) -> None:
    with sigint_as_on_a_terminal():
        process = subprocess.Popen(
            [sys.executable, "-m", "mrecordlog", "crashcheck", "--budget", "60"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=_env(**{PROGRESS_INTERVAL_ENV: "0.2"}),
        )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()  # the campaign runs: it printed its first progress line
        assert "% of the budget" in first, first
        process.send_signal(signal.SIGINT)
        stdout, rest = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert stdout == ""
    last = rest.splitlines()[-1]
    assert last.startswith("mrecordlog crashcheck: interrupted after "), rest
    assert "; so far: " in last
    assert "images" in last
    assert "Traceback" not in rest


# -- every subcommand, every argument, hostile values ----------------------------------


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = mrecordlog.cli._parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("the command has no subcommands")


def _takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0 and not isinstance(action, argparse._HelpAction | argparse._VersionAction)


class _Setup:
    """The files the hostile runs use, and a valid, quick baseline per subcommand."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.log = str(_small_log(tmp / "log"))
        self.ops = tmp / "ops.jsonl"
        self.ops.write_text('{"op":"create_queue","queue":"q"}\n{"op":"append","queue":"q","payloads":["61"]}\n')
        self.garbage = tmp / "garbage.bin"
        self.garbage.write_bytes(b"\xff\xfe\x00 not a report, not JSON\n")
        self.count = 0

    def fresh(self, name: str) -> str:
        """A directory that does not exist yet (apply and demo create it)."""
        self.count += 1
        return str(self.tmp / f"{name}-{self.count}")

    def baseline(self, command: str, parser: argparse.ArgumentParser) -> dict[str, list[str]]:
        """A valid argv per argument (its option string and value, or a positional)."""
        quick = {"--budget": ["--budget", "0.2"], "--workloads": ["--workloads", "1"], "--timeout": ["--timeout", "2"]}
        values: dict[str, list[str]] = {}
        for action in parser._actions:
            if not _takes_value(action):
                continue
            key = action.option_strings[0] if action.option_strings else action.dest
            if key in quick:
                values[key] = quick[key]
            elif key == "--adapter":
                values[key] = ["--adapter", "false"]
            elif key == "--checks":
                values[key] = ["--checks", "reader"]
            elif key == "--records":
                values[key] = ["--records", "50"]
            elif key == "--reproducer-dir":
                values[key] = ["--reproducer-dir", str(self.tmp)]
            elif not action.option_strings:
                values[key] = [self.positional(command, action)]
        return values

    def positional(self, command: str, action: argparse.Action) -> str:
        if action.dest == "directory":
            return self.fresh(command) if command in ("apply", "demo") else self.log
        if action.dest == "ops":
            return str(self.ops)
        if action.dest == "queue":
            return "q"
        return str(self.garbage)  # REPORT.json: not a report, refused with status 2


def _hostile_values(setup: _Setup) -> list[str]:
    return [
        "-5",
        "0",
        str(2**70),
        "9" * 5000,
        "nan",
        "1e309",
        "abc",
        "",
        str(setup.tmp / "missing" / "path"),
        str(setup.garbage),  # a file where a directory (or a number) is expected
        str(setup.garbage / "below"),  # a path through a regular file
        str(setup.tmp / NOT_UTF8),
    ]


def test_every_subcommand_survives_hostile_values_for_every_argument(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # apply and demo create a DIR such as "0" or "abc": in the test's own directory.
    monkeypatch.chdir(tmp_path)
    setup = _Setup(tmp_path)
    subcommands = _subcommands()
    assert {"apply", "dump", "summary", "read", "verify", "crashcheck", "fuzz", "demo"} <= set(subcommands)
    runs = 0
    for command, parser in subcommands.items():
        for action in filter(_takes_value, parser._actions):
            argument = action.option_strings[0] if action.option_strings else action.dest
            for value in _hostile_values(setup):
                arguments = setup.baseline(command, parser)
                arguments[argument] = [argument, value] if action.option_strings else [value]
                argv = [command] + [part for parts in arguments.values() for part in parts]
                # An exception out of main is the traceback a user would see.
                status = main(argv)
                captured = capsys.readouterr()
                assert status in (0, 1, 2), (argv, status, captured.err)
                assert "Traceback" not in captured.err, argv
                assert len(captured.err.splitlines()) <= 3, (argv, captured.err)
                if status == 2:
                    assert len(captured.err.splitlines()) == 1, (argv, captured.err)
                runs += 1
    assert runs > 300


def test_every_subcommand_takes_a_path_of_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    """As the shell passes it: bytes in argv, decoded by Python itself. A
    command that creates its directory (apply, demo) may succeed; any other
    status is one line showing the bytes as \\xNN."""
    (tmp_path / "ops.jsonl").write_text('{"op":"create_queue","queue":"q"}\n')
    for command, parser in _subcommands().items():
        not_utf8 = bytes(tmp_path) + b"/\xff\xfe-" + command.encode()  # not there yet
        positionals = [a for a in parser._actions if not a.option_strings and _takes_value(a)]
        argv: list[str | bytes] = [command]
        if positionals:
            argv += [{"queue": "q", "ops": str(tmp_path / "ops.jsonl")}.get(a.dest, not_utf8) for a in positionals]
        else:
            argv += ["--reproducer-dir" if "--reproducer-dir" in parser._option_string_actions else "--baseline-file"]
            argv += [not_utf8]
            if command == "conformance":
                argv += ["--adapter", "false", "--budget", "0.2", "--checks", "reader"]
        if "--records" in parser._option_string_actions:
            argv += ["--records", "50"]
        run = _cli(*argv, cwd=tmp_path)
        assert run.returncode in (0, 1, 2), (argv, run.stderr)
        if run.returncode:
            _assert_one_line(run.stderr)
            assert "\\xff\\xfe" in run.stderr, run.stderr
        else:
            assert command in ("apply", "demo"), (argv, run.stdout)
            assert run.stderr == ""


def test_help_explains_dir_and_seed_wherever_a_command_has_them(capsys: pytest.CaptureFixture[str]) -> None:
    seen = {"DIR": 0, "--seed": 0}
    for command, parser in _subcommands().items():
        assert main([command, "--help"]) == 0
        # Without white space: argparse wraps the text, also after hyphens.
        shown = "".join(capsys.readouterr().out.split())
        for action in parser._actions:
            if action.metavar == "DIR" and not action.option_strings:
                seen["DIR"] += 1
                assert action.help is not None
                assert "the log directory" in action.help
                assert "".join(action.help.split()) in shown, command
            if "--seed" in action.option_strings:
                seen["--seed"] += 1
                assert action.help is not None
                assert "seed of" in action.help
                assert "default 0" in action.help
                assert "".join(action.help.split()) in shown, command
    assert seen["DIR"] >= 6
    assert seen["--seed"] >= 4


def test_broken_pipe_on_stdout_is_quiet(tmp_path: Path) -> None:
    log = tmp_path / "log"
    with MultiRecordLog.open(log, file_num_bytes=32768) as opened:
        opened.create_queue("q")
        opened.append_records("q", [b"x" * 100] * 3000)
    reader = subprocess.Popen(
        [sys.executable, "-m", "mrecordlog", "read", str(log), "q", "--format", "hex"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    assert reader.stdout is not None
    reader.stdout.read(10)
    reader.stdout.close()  # as `| head -c 10` does
    deadline = time.monotonic() + 60
    while reader.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reader.stderr is not None
    err = reader.stderr.read().decode()
    reader.stderr.close()
    assert reader.returncode == 1
    assert err == ""


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["demo", "--records", "-" + "9" * 40], "argument --records: must be at least 1, not a 41-character number"),
        (["demo", "--records", "9" * 5000], "argument --records: must be at most 1000000000, not a 5000-character"),
        (["demo", "--records", "1e3"], "argument --records: not an integer: '1e3'"),
        (["demo", "--seed", str(2**64)], f"argument --seed: must be at most {2**64 - 1}, not {2**64}"),
        (["crashcheck", "--budget", "inf"], "argument --budget: must be more than 0 and at most 1000000 seconds"),
        (["crashcheck", "--budget", "0"], "argument --budget: must be more than 0"),
        (["fuzz", "--workers", "257"], "argument --workers: must be at most 256, not 257"),
        (["fuzz", "--workloads", "0"], "argument --workloads: must be at least 1, not 0"),
        (["conformance", "--adapter", "true", "--timeout", "-1"], "argument --timeout: must be more than 0"),
        (["conformance", "--adapter", "true", "--max-failures", "0"], "argument --max-failures: must be at least 1"),
        (["read", ".", "q", "--to", str(2**64)], f"argument --to: must be at most {2**64 - 1}"),
    ],
)
def test_numeric_options_are_range_checked_while_parsing(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    _assert_one_line(captured.err)
    assert says in captured.err


def test_the_library_imports_neither_the_progress_bar_nor_the_campaigns() -> None:
    """tqdm is loaded by the first bar drawn and the campaign modules by
    their commands: ``import mrecordlog`` and the other commands start without them."""
    probe = (
        "import sys, mrecordlog, mrecordlog.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tqdm' or m.startswith(("
        "'mrecordlog.oracle.crashcheck', 'mrecordlog.oracle.fuzz', 'mrecordlog.oracle.conformance'))))"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=_env())
    assert run.stdout.strip() == "[]"
    alone = "import sys, mrecordlog; print('tqdm' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", alone], capture_output=True, text=True, check=True, env=_env())
    assert run.stdout.strip() == "False"
