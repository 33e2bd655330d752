"""The console examples of the operator reports in ``docs/cli.md`` are the real
output of the command: each ``$ mrecordlog ...`` line is run on the log the
section describes, and its output (stdout, then stderr) compared with the
page, as is the status an ``$ echo $?`` line shows."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import mrecordlog.cli

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
IMPORTED_FROM = str(Path(mrecordlog.cli.__file__).resolve().parent.parent)
_CONSOLE = re.compile(r"^```console\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)


def _section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start : end if end != -1 else len(text)]


def _sessions(section: str) -> list[list[tuple[str, str]]]:
    """Each console block as (command, expected output) pairs."""
    sessions = []
    for block in _CONSOLE.finditer(section):
        steps: list[tuple[str, str]] = []
        for line in block["body"].splitlines(keepends=True):
            if line.startswith("$ "):
                steps.append((line[2:].strip(), ""))
            else:
                command, output = steps[-1]
                steps[-1] = (command, output + line)
        sessions.append(steps)
    return sessions


def test_the_operator_report_examples_are_the_commands_output(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [IMPORTED_FROM, os.environ.get("PYTHONPATH")]))}
    sessions = _sessions(_section("## `mrecordlog summary`, `read` and `verify`"))
    assert len(sessions) >= 5
    status = None
    ran = 0
    for steps in sessions:
        for command, expected in steps:
            if command.startswith("cat "):
                (tmp_path / command.split()[1]).write_text(expected)
                continue
            if command == "echo $?":
                assert f"{status}\n" == expected, command
                continue
            if command == "mrecordlog verify damaged" and not (tmp_path / "damaged").exists():
                # "The same log with one byte of `hello` changed."
                shutil.copytree(tmp_path / "log", tmp_path / "damaged")
                wal = tmp_path / "damaged" / "wal-00000000000000000000"
                data = bytearray(wal.read_bytes())
                data[data.index(b"hello")] = ord("j")
                wal.write_bytes(bytes(data))
            words = command.split()
            assert words[0] == "mrecordlog", command
            run = subprocess.run(
                [sys.executable, "-m", "mrecordlog", *words[1:]],
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
                cwd=tmp_path,
                env=env,
            )
            status = run.returncode
            assert run.stdout + run.stderr == expected, command
            ran += 1
    assert ran >= 7
