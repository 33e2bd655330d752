"""Every command-line transcript of the documentation is run, and its output
compared with the page: the ``console`` blocks of ``docs/*.md`` and of
``README.md``.

The conventions a page follows (docs/implementers.md and the others rely on
them; keep this text in step with the code below):

- **A transcript is a ```console block.** Its lines that start with ``$ `` are
  commands; the lines below a command, up to the next one, are its expected
  output: its stdout, then its stderr (each as the command wrote it). A
  command ending in `` \\`` goes on on the next line. A fence of another
  language may not hold a ``$ `` line: a transcript cannot hide from this test.
- **Each command runs in bash**, in a temporary working directory, with
  ``mrecordlog`` (and ``python``, ``python3``) first on its ``PATH``: the
  Python running this test, with the tested tree first on its path
  (``python -m mrecordlog``), so the command of this tree, not of whatever is
  installed; ``pip`` refuses to run. The campaigns print no progress line
  (``MRECORDLOG_PROGRESS_INTERVAL=0``), and Python writes UTF-8. So pipes, redirections,
  ``cp``, ``V=...`` and ``echo $?`` (the status of the command before) work as
  in a terminal. Shell variables last for the block.
- **A block runs in a fresh empty directory, unless its info string says
  ``session=NAME``**: the blocks of a page with the same session share one
  directory, in the page's order, as a reader typing them one after the other
  would (the later blocks see the files of the earlier ones). The setup a block
  needs is therefore written in the block itself, as commands the reader sees
  (``cat FILE`` with the file's content as its output writes that file, for the
  reader to copy), or in an earlier block of its session.
- **Files a page shows**: a ```python file=NAME block of the page (see
  tests/test_docs_examples.py) is written as ``NAME`` into the directory of
  each of its transcripts, for commands such as ``python my_adapter.py``.
- **``from-clone``** in the info string: the block runs as if from the root of
  a clone of the repository: its directory also holds ``tests`` and ``spec``,
  links to this tree's.
- **Placeholders.** In an expected output, ``…`` (U+2026) stands for any text
  within one line (timings, counts, temporary paths), and a line that is ``…``
  alone for any number of lines, none included. Nothing else is normalised:
  every other character must be what the command prints.
- **A block that cannot run says why**: ```console no-run: REASON`` (a reason
  is required). Keep them few: a campaign can run with a small ``--budget``
  and ``…`` for its counts.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import mrecordlog.cli

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
IMPORTED_FROM = str(Path(mrecordlog.cli.__file__).resolve().parent.parent)
# The blocks that do not run: each costs a place in this bound (and a reason).
MAX_NO_RUN = 4
# A fence of three or more backticks with its info string, the body, and a
# closing fence of the same length (as tests/test_docs_examples.py reads them).
_FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>[^`\n]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.MULTILINE | re.DOTALL)
PLACEHOLDER = "…"


@dataclass(frozen=True)
class Transcript:
    path: Path
    line: int  # of the opening fence
    info: str  # the words after "console"
    body: str

    @property
    def id(self) -> str:
        return f"{self.path.name}:{self.line}"

    @property
    def no_run(self) -> str | None:
        """The reason this block is not run, or None if it runs."""
        words = self.info.split(None, 1)
        if not words or not words[0].startswith("no-run"):
            return None
        return self.info.removeprefix("no-run").removeprefix(":").strip()

    @property
    def session(self) -> str | None:
        match = re.search(r"(?:^|\s)session=(\S+)", self.info)
        return match[1] if match else None

    @property
    def from_clone(self) -> bool:
        return "from-clone" in self.info.split()

    def steps(self) -> list[tuple[str, str]]:
        """The (command, expected output) pairs of the block."""
        steps: list[tuple[str, str]] = []
        continued = False
        for line in self.body.splitlines(keepends=True):
            if continued:
                command, output = steps[-1]
                steps[-1] = (command + line, output)
            elif line.startswith("$ "):
                steps.append((line[2:], ""))
            else:
                assert steps, f"{self.id}: output before the first command: {line!r}"
                command, output = steps[-1]
                steps[-1] = (command, output + line)
            continued = line.rstrip("\n").endswith("\\") and not steps[-1][1]
        return [(command.rstrip("\n"), output) for command, output in steps]


def transcripts(path: Path) -> Iterator[Transcript]:
    text = path.read_text(encoding="utf-8")
    for match in _FENCE.finditer(text):
        words = match["info"].split(None, 1)
        if words and words[0] == "console":
            line = text.count("\n", 0, match.start()) + 1
            yield Transcript(path, line, words[1] if len(words) > 1 else "", match["body"])


TRANSCRIPTS = [transcript for path in PAGES for transcript in transcripts(path)]


def expected_pattern(expected: str) -> re.Pattern[str]:
    """The regular expression an output must match in full (see Placeholders)."""
    parts = []
    for line in expected.splitlines(keepends=True):
        if line.rstrip("\n") == PLACEHOLDER:
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(r"[^\n]*?".join(re.escape(piece) for piece in line.split(PLACEHOLDER)))
    return re.compile("".join(parts))


def matches(expected: str, output: str) -> bool:
    return expected_pattern(expected).fullmatch(output) is not None


# The commands a transcript finds first on its PATH (also for the commands a
# command starts, such as the adapter of `conformance`).
_COMMANDS = {
    "mrecordlog": 'exec "$DOCS_PYTHON" -m mrecordlog "$@"',
    "python": 'exec "$DOCS_PYTHON" "$@"',
    "python3": 'exec "$DOCS_PYTHON" "$@"',
    "pip": 'echo "pip: a transcript that installs packages must be no-run" >&2; exit 127',
    "pip3": 'echo "pip: a transcript that installs packages must be no-run" >&2; exit 127',
}


def _commands(directory: Path) -> Path:
    directory.mkdir()
    for name, body in _COMMANDS.items():
        (directory / name).write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
        (directory / name).chmod(0o755)
    return directory


def run_transcript(transcript: Transcript, directory: Path, outputs: Path) -> list[tuple[str, str, str]]:
    """Run the block's commands in ``directory``: (command, expected, output) each."""
    steps = transcript.steps()
    script = []
    for index, (command, _) in enumerate(steps):
        # The group keeps the command's own redirections; the newline ends a comment.
        out, err = shlex.quote(str(outputs / f"{index}.out")), shlex.quote(str(outputs / f"{index}.err"))
        script.append(f"{{ {command}\n}} >{out} 2>{err}\n")
    env = {
        **os.environ,
        "DOCS_PYTHON": sys.executable,
        "PATH": os.pathsep.join([str(_commands(outputs / "bin")), os.environ.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join(filter(None, [IMPORTED_FROM, os.environ.get("PYTHONPATH")])),
        "MRECORDLOG_PROGRESS_INTERVAL": "0",  # campaigns print no progress line
        "PYTHONIOENCODING": "utf-8",  # whatever the locale, as on a UTF-8 terminal
    }
    subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", "".join(script)],
        cwd=directory,
        env=env,
        check=False,  # the status of the last command, which the page may show as non-zero
        timeout=300,
    )
    results = []
    for index, (command, expected) in enumerate(steps):
        output = (outputs / f"{index}.out").read_text(encoding="utf-8", errors="backslashreplace")
        output += (outputs / f"{index}.err").read_text(encoding="utf-8", errors="backslashreplace")
        results.append((command, expected, output))
    return results


def _working_directory(transcript: Transcript, block_tmp: Path, sessions: dict[str, Path]) -> Path:
    """The block's directory: a new one, or its session's."""
    directory = sessions.get(transcript.session or "")
    if directory is None:
        directory = block_tmp / "work"
        directory.mkdir()
        if transcript.session is not None:
            sessions[transcript.session] = directory
    if transcript.from_clone:
        for name in ("tests", "spec"):
            if not (directory / name).exists():
                (directory / name).symlink_to(ROOT / name, target_is_directory=True)
    for match in _FENCE.finditer(transcript.path.read_text(encoding="utf-8")):
        shown = re.fullmatch(r"python\s+file=(\S+)", match["info"].strip())
        if shown and not (directory / shown[1]).exists():
            (directory / shown[1]).write_text(match["body"], encoding="utf-8")
    # `cat FILE` shows a file the reader writes: the test writes it from the page.
    for command, expected in transcript.steps():
        words = command.split()
        if len(words) == 2 and words[0] == "cat" and not (directory / words[1]).exists():
            (directory / words[1]).write_text(expected, encoding="utf-8")
    return directory


# The sessions this process has run, each up to a block: (page, session) ->
# (its directory, the line of the last block run in it).
_SESSIONS: dict[tuple[Path, str], tuple[Path, int]] = {}


def _run_session_up_to(transcript: Transcript, tmp_path: Path) -> list[tuple[str, str, str]]:
    """Run the transcript, after the blocks of its session before it. The tests
    run in page order reuse the directory of the block before (each block runs
    once); a test run alone, or on another worker, runs those blocks first. An
    earlier block's output is not compared here: its own test does that."""
    before = [
        other
        for other in TRANSCRIPTS
        if transcript.session is not None
        and other.path == transcript.path
        and other.session == transcript.session
        and other.line < transcript.line
    ]
    sessions: dict[str, Path] = {}
    key = (transcript.path, transcript.session or "")
    if before and key in _SESSIONS and _SESSIONS[key][1] == before[-1].line:
        sessions[key[1]] = _SESSIONS[key][0]
        before = []
    results: list[tuple[str, str, str]] = []
    for index, block in enumerate([*before, transcript]):
        block_tmp = tmp_path / f"block-{index}"
        block_tmp.mkdir()
        outputs = block_tmp / "outputs"
        outputs.mkdir()
        results = run_transcript(block, _working_directory(block, block_tmp, sessions), outputs)
    if transcript.session is not None:
        _SESSIONS[key] = (sessions[transcript.session], transcript.line)
    return results


def _check_output(transcript: Transcript, results: list[tuple[str, str, str]]) -> None:
    for command, expected, output in results:
        if not matches(expected, output):
            pytest.fail(
                f"{transcript.id}: the output of\n$ {command}\nis not what the page shows.\n"
                f"--- page\n{expected}--- command\n{output}---",
                pytrace=False,
            )


def runs_a_campaign(text: str) -> bool:
    """A block that runs a campaign for a time budget (``tasks.py test``
    leaves these to ``test --all``)."""
    return re.search(r"--budget\b|budget_seconds=", text) is not None


@pytest.mark.parametrize(
    "transcript",
    [
        pytest.param(
            transcript,
            id=transcript.id,
            marks=[pytest.mark.skip(reason=f"no-run: {transcript.no_run}")]
            if transcript.no_run is not None
            else [pytest.mark.campaign]
            if runs_a_campaign(transcript.body)
            else [],
        )
        for transcript in TRANSCRIPTS
    ],
)
def test_transcript(transcript: Transcript, tmp_path_factory: pytest.TempPathFactory) -> None:
    # A directory that outlives the test, for the next block of its session.
    _check_output(transcript, _run_session_up_to(transcript, tmp_path_factory.mktemp("transcript")))


def test_the_docs_have_transcripts_and_few_exceptions() -> None:
    assert len(TRANSCRIPTS) >= 10
    not_run = [transcript for transcript in TRANSCRIPTS if transcript.no_run is not None]
    assert all(transcript.no_run for transcript in not_run), "a no-run block needs a reason"
    assert len(not_run) <= MAX_NO_RUN, [transcript.id for transcript in not_run]
    for transcript in TRANSCRIPTS:
        if transcript.no_run is None:
            assert transcript.steps(), f"{transcript.id}: a transcript without a command"


def test_no_transcript_outside_a_console_block() -> None:
    """A ``$ `` line in a fence of another language would escape this test."""
    hidden = []
    for path in PAGES:
        text = path.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            language = (match["info"].split() or [""])[0]
            if language != "console" and re.search(r"^\$ ", match["body"], re.MULTILINE):
                hidden.append(f"{path.name}:{text.count(chr(10), 0, match.start()) + 1} ({language or 'no language'})")
    assert not hidden, f"transcripts outside a console block: {hidden}"


def test_placeholders() -> None:
    assert matches("a\n", "a\n")
    assert not matches("a\n", "b\n")
    assert not matches("a\n", "a\nb\n")
    assert matches("seed 7: … images in … s\n", "seed 7: 1200 images in 2.0 s\n")
    assert not matches("seed 7: … images\n", "seed 7: 12\nimages\n")  # … stays within its line
    assert matches("first\n…\nlast\n", "first\nlast\n")
    assert matches("first\n…\nlast\n", "first\n1\n2\nlast\n")
    assert not matches("first\n…\nlast\n", "first\n1\nlast but not\n")
    assert matches("a.*b\n", "a.*b\n")
    assert not matches("a.*b\n", "axxb\n")


def test_steps_and_continuations() -> None:
    block = Transcript(Path("page.md"), 1, "session=s", "$ echo a \\\n    b\na b\n$ cat f\nline\n$ echo $?\n0\n")
    assert block.steps() == [("echo a \\\n    b", "a b\n"), ("cat f", "line\n"), ("echo $?", "0\n")]
    assert block.session == "s"
    assert block.no_run is None
    assert not block.from_clone
    assert Transcript(Path("p.md"), 1, "no-run: takes 60 s", "").no_run == "takes 60 s"
    assert Transcript(Path("p.md"), 1, "no-run", "").no_run == ""
