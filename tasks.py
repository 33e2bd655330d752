#!/usr/bin/env python3
"""The project's two commands, needing nothing but Python 3.11+ and pip.

    python3 tasks.py crashcheck   the main job: the crash-consistency campaign (seed 0, 60 s)
    python3 tasks.py test         every check: mypy --strict, ruff check, ruff format --check, pytest

Each creates or updates the local virtual environment ``.venv`` first (it
reinstalls when ``pyproject.toml`` changed). Extra arguments are passed to
``mrecordlog crashcheck`` (e.g. ``--budget 300 --seed 7``), or to pytest.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".installed"


def run(*command: str | os.PathLike[str]) -> None:
    print("+", " ".join(str(part) for part in command), flush=True)
    completed = subprocess.run([str(part) for part in command], cwd=ROOT, check=False)
    if completed.returncode:
        sys.exit(completed.returncode)


def ensure_environment() -> None:
    if not PYTHON.exists():
        print(f"creating virtual environment {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pyproject = ROOT / "pyproject.toml"
    if STAMP.exists() and STAMP.stat().st_mtime >= pyproject.stat().st_mtime:
        return
    run(PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", ".[dev]")
    STAMP.touch()


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ("crashcheck", "test"):
        print(__doc__)
        sys.exit(2)
    ensure_environment()
    task, rest = argv[0], argv[1:]
    if task == "crashcheck":
        run(BIN / "mrecordlog", "crashcheck", "--seed", "0", "--budget", "60", *rest)
        return
    run(PYTHON, "-m", "mypy", "--strict", "src", "fault_injection", "tests")
    run(PYTHON, "-m", "ruff", "check", ".")
    run(PYTHON, "-m", "ruff", "format", "--check", ".")
    run(PYTHON, "-m", "pytest", *rest)


if __name__ == "__main__":
    main(sys.argv[1:])
