#!/usr/bin/env python3
"""The project's commands, needing nothing but Python 3.11+ and pip.

    python3 tasks.py crashcheck   the main job: the crash-consistency campaign (seed 0, 60 s)
    python3 tasks.py test --all   the whole test suite: mypy --strict, ruff check, ruff format --check, pytest
    python3 tasks.py test         the same without the hunts and campaigns (under 2 minutes on 2 cores)
    python3 tasks.py hunts        the hunts and campaigns alone

Each creates or updates the local virtual environment ``.venv`` first (it
reinstalls when ``pyproject.toml`` changed). Extra arguments are passed to
``mrecordlog crashcheck`` (e.g. ``--budget 300 --seed 7``), or to pytest
(which runs on every core; ``-n 0`` runs it in one process).

The hunts are the tests marked ``hunt``: each plants a bug in the core (or
drives a deliberately wrong implementation) and requires the generators, the
crash campaign or the oracle to find it, with a short reproducer. They are
the evidence that a guarantee covers its class. The campaigns (marked
``campaign``) run the crash checker or the oracle against the reference for
a few seconds each. Together they are most of the suite's time (several
minutes on 2 cores), so ``test`` alone leaves them out for quick feedback;
``test --all`` and CI run them. A ``-m`` among the extra arguments replaces
the selection.

Python writes its bytecode cache (``__pycache__/``, ignored by git and by the
tree copies of ``wheelcheck`` and ``compiled``) for every command run from
here, even when ``PYTHONDONTWRITEBYTECODE`` is set: the tests start the
``mrecordlog`` command hundreds of times, and compiling every module at each
start doubled its start-up time (0.59 s instead of 0.32 s).

    python3 tasks.py bench        the benchmarks: the log, the machine's ceilings, sqlite3 and lmdb

``bench`` runs ``python -m bench.run`` in ``.venv`` (``--quick`` for small
sizes and one run, ``--json FILE`` for the figures as JSON; see bench/run.py).

    python3 tasks.py wheelcheck   the installed package: wheel, fresh venv, every command and module

``wheelcheck`` (run by CI after ``test``) does not use ``.venv``: it builds the
wheel from a copy of the source tree, installs it with its ``oracle`` extra
(from PyPI) in a fresh virtual environment in a temporary directory, and runs,
from outside the source tree, the ``mrecordlog`` command (help, demo,
crashcheck, conformance), the adapter handshake, an import of every module of
the source tree (each must come from the fresh environment), and mypy
--strict on a user script (the ``py.typed`` markers). One line per step; a
failure prints the step's output and exits 1.

    python3 tasks.py compiled     the mypyc-compiled build: wheel, fresh venv, the vector and model tests

``compiled`` builds the wheel of a copy of the source tree with
``MRECORDLOG_COMPILE=1`` (setup.py compiles the core modules of its
``COMPILED_MODULES`` with mypyc), installs it with its ``test`` extra in a
fresh virtual environment in a temporary directory, checks that those modules
are the compiled extension modules (``mrecordlog.compiled_modules()``, each a
``.so`` of the fresh environment), and runs against it, from a copy of
``tests/`` and ``spec/`` outside the source tree, the recorded mrecordlog 0.5
vectors, the golden vectors and the core-versus-model state machines (live
and crash) (``COMPILED_TESTS``), on every core, with the ``dev`` Hypothesis
profile whatever ``HYPOTHESIS_PROFILE`` says (extra arguments go to pytest,
e.g. ``--hypothesis-profile=ci``). It needs a C compiler and Python's headers
(checked first; on Debian: ``apt-get install gcc python3-dev``). One line per
step, then the elapsed time; a failure prints the step's output and exits 1.

    python3 tasks.py symbolic     the decoders under symbolic execution (CrossHair)

``symbolic`` installs the ``symbolic`` extra (``hypothesis-crosshair``) into
``.venv`` and runs ``tests/test_decoder_properties.py`` with the ``symbolic``
Hypothesis profile: each example is a path CrossHair found through the record
and frame decoders (``MRECORDLOG_SYMBOLIC_EXAMPLES`` paths per property,
default 2000; a few minutes on two cores). Extra arguments go to pytest.

    python3 tasks.py docs         the documentation site: mkdocs, strict, into site/

``docs`` installs the ``docs`` extra (mkdocs, its material theme, mkdocstrings)
into ``.venv`` and builds the site of ``mkdocs.yml`` (the pages of ``docs/``,
the specification and an API reference generated from the docstrings) into
``site/`` in strict mode: a warning (a broken link or anchor, a page missing
from the nav, a docstring mkdocstrings cannot render) fails the build. Extra
arguments go to ``mkdocs build``.

``python3 tasks.py --help`` (or ``-h``) prints this text.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import venv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn

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


TASKS = ("crashcheck", "test", "hunts", "wheelcheck", "compiled", "bench", "symbolic", "docs")


def keep_bytecode() -> None:
    """Let this command's subprocesses cache bytecode, next to each source
    (a cache prefix directory would also keep the bytecode of every temporary
    venv and test directory, long after they are gone)."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def ensure_environment() -> None:
    if not PYTHON.exists():
        print(f"creating virtual environment {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pyproject = ROOT / "pyproject.toml"
    if STAMP.exists() and STAMP.stat().st_mtime >= pyproject.stat().st_mtime:
        return
    run(PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", ".[dev]")
    STAMP.touch()


# -- wheelcheck: the package as `pip install` leaves it -----------------------

# The source directory of each importable package the wheel must ship, by its
# import name. The fault layer's source is the top-level fault_injection/,
# installed as mrecordlog.fault_injection (src/mrecordlog/fault_injection is a
# symlink to it); no top-level fault_injection may be installed.
PACKAGE_SOURCES = {
    "mrecordlog": ROOT / "src" / "mrecordlog",
    "mrecordlog.fault_injection": ROOT / "fault_injection",
}
# Not part of the source: never copied into the build directory.
NOT_SOURCE = {
    ".git",
    ".venv",
    "build",
    "dist",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    ".bench-tmp",
    "site",  # the docs build's output (CI builds it while the compiled build copies the tree)
}
# Environment variables that could make the fresh environment see the source tree.
LEAKY_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "MYPYPATH", "VIRTUAL_ENV")

IMPORT_SMOKE = """\
import importlib, importlib.util, json, os, sys
venv_dir = os.path.realpath(sys.argv[1])
if os.path.realpath(sys.prefix) != venv_dir:
    sys.exit(f"running in {sys.prefix}, not in {venv_dir}")
problems = []
modules = json.load(sys.stdin)
for name in modules:
    try:
        if name.rpartition(".")[2] == "__main__":  # importing it would run it
            spec = importlib.util.find_spec(name)
            origin = spec.origin if spec is not None else None
        else:
            origin = importlib.import_module(name).__file__
    except Exception as error:
        problems.append(f"{name}: {type(error).__name__}: {error}")
        continue
    if origin is None or not os.path.realpath(origin).startswith(venv_dir + os.sep):
        problems.append(f"{name}: loaded from {origin}, outside {venv_dir}")
print("\\n".join(problems) or f"{len(modules)} modules")
sys.exit(1 if problems else 0)
"""

# The fault layer installs as mrecordlog.fault_injection only: a top-level
# fault_injection package could collide with another project's.
NO_BARE_NAME = """\
import importlib.util, sys
spec = importlib.util.find_spec("fault_injection")
if spec is not None:
    sys.exit(f"a top-level fault_injection is importable: {spec.origin}")
print("no top-level fault_injection")
"""

TYPED_USER = """\
\"\"\"A user of the installed package: mypy --strict must find its types (py.typed).\"\"\"

import tempfile

from mrecordlog import AppendOutcome, MultiRecordLog, Record
from mrecordlog.fault_injection import FaultPlan, SimulatedDisk, durable_image


def main() -> None:
    with tempfile.TemporaryDirectory() as directory, MultiRecordLog.open(directory) as log:
        log.create_queue("orders")
        outcome: AppendOutcome = log.append_records("orders", [b"first", b"second"])
        last: int | None = outcome.last_position
        records: list[Record] = list(log.range("orders"))
        assert last == 1 and [record.payload for record in records] == [b"first", b"second"]
        # Were the package's types unknown (Any), --strict would report this
        # ignore as unused: it proves mypy reads the real signatures.
        wrong: str = log.create_queue("clicks")  # type: ignore[assignment]
        del wrong
    disk = SimulatedDisk(FaultPlan(capacity_bytes=1 << 20))
    with MultiRecordLog.open("/log", storage=disk, file_num_bytes=32768) as log:
        log.create_queue("q")
    # The same for the subpackage: mrecordlog's py.typed covers mrecordlog.fault_injection.
    wrong_disk: int = disk  # type: ignore[assignment]
    del wrong_disk
    durable: dict[str, bytes] = durable_image(disk).durable_files()
    assert durable, "nothing durable after close"


main()
"""


def _source_modules() -> list[str]:
    """Every module of the source tree, by its import name (once: whether
    rglob follows the symlinked src/mrecordlog/fault_injection depends on the
    Python version)."""
    modules = set()
    for package, source in PACKAGE_SOURCES.items():
        for path in source.rglob("*.py"):
            parts = (package, *path.relative_to(source).with_suffix("").parts)
            if "__pycache__" not in parts:
                modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(modules)


def _copy_source(destination: Path) -> None:
    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = {name for name in names if name == "__pycache__" or name.endswith((".pyc", ".egg-info"))}
        return skipped | (NOT_SOURCE & set(names) if Path(directory) == ROOT else set())

    shutil.copytree(ROOT, destination, ignore=ignore, symlinks=True)


def _text(output: str | bytes | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


class _Steps:
    """Runs the steps, one line each; the first failure prints its output and exits 1."""

    def __init__(self, cwd: Path, env: dict[str, str], label: str = "wheelcheck") -> None:
        self.cwd = cwd
        self.env = env
        self.label = label
        self.count = 0

    def run(
        self,
        name: str,
        *command: str | os.PathLike[str],
        stdin: str | None = None,
        timeout: float = 120,
        verify: Callable[[str], str | None] | None = None,
        summary: Callable[[str], str] = lambda output: "",
    ) -> str:
        """Run ``command``; a non-zero exit or a ``verify`` complaint fails the step."""
        arguments = [str(part) for part in command]
        started = time.monotonic()
        try:
            completed = subprocess.run(
                arguments,
                cwd=self.cwd,
                env=self.env,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as expired:
            output = _text(expired.stdout) + _text(expired.stderr)
            problem: str | None = f"still running after {timeout:g} s"
        else:
            output = completed.stdout + completed.stderr
            problem = f"exit status {completed.returncode}" if completed.returncode else None
            try:
                if problem is None and verify is not None:
                    problem = verify(completed.stdout)
                detail = "" if problem is not None else summary(completed.stdout)
            except Exception as error:  # an unexpected output: the step fails, it does not crash
                problem = f"unexpected output ({type(error).__name__}: {error})"
        seconds = time.monotonic() - started
        if problem is not None:
            self.fail(name, f"{problem} ({seconds:.1f} s)\n$ {shlex.join(arguments)}\n{output.rstrip()}")
        self.report(name, f"{detail} ({seconds:.1f} s)".strip())
        return completed.stdout

    def report(self, name: str, detail: str) -> None:
        self.count += 1
        print(f"{self.label}  {name:<12} ok  {detail}", flush=True)

    def fail(self, name: str, detail: str) -> NoReturn:
        print(f"{self.label}  {name:<12} FAILED: {detail}", flush=True)
        sys.exit(1)


@dataclass
class _FreshInstall:
    """A wheel of a copy of the source tree, installed in a fresh virtual
    environment in a temporary directory outside the tree."""

    base: Path  # the temporary directory
    work: Path  # the steps' working directory
    venv_dir: Path
    venv_bin: Path
    python: Path
    wheel: Path
    steps: _Steps

    @property
    def pip(self) -> tuple[str | os.PathLike[str], ...]:
        return (self.python, "-m", "pip", "--disable-pip-version-check", "--quiet")


@contextlib.contextmanager
def _fresh_install(
    label: str,
    extra: str,
    *,
    env_overrides: dict[str, str] | None = None,
    platform_wheel: bool = False,
    build_timeout: float = 300,
    precheck: Callable[[_Steps], None] | None = None,
) -> Iterator[_FreshInstall]:
    """Steps ``venv``, ``build`` (one wheel: a platform wheel if
    ``platform_wheel``, else pure) and ``install`` (with the ``extra``), in a
    temporary directory removed afterwards; ``precheck`` runs first."""
    with tempfile.TemporaryDirectory(prefix=f"mrecordlog-{label}-") as temporary:
        base = Path(temporary).resolve()
        if base.is_relative_to(ROOT):
            sys.exit(f"{label}: the temporary directory {base} lies inside the source tree; set TMPDIR")
        work, venv_dir = base / "work", base / "venv"
        work.mkdir()
        env = {name: value for name, value in os.environ.items() if name not in LEAKY_VARIABLES}
        venv_bin = venv_dir / ("Scripts" if os.name == "nt" else "bin")
        env["PATH"] = os.pathsep.join([str(venv_bin), env.get("PATH", "")])
        env.update(env_overrides or {})
        steps = _Steps(work, env, label=label)
        if precheck is not None:
            precheck(steps)

        venv_started = time.monotonic()
        venv.EnvBuilder(with_pip=True).create(venv_dir)
        python = venv_bin / "python"
        steps.report("venv", f"{venv_dir} ({time.monotonic() - venv_started:.1f} s)")

        pip = (python, "-m", "pip", "--disable-pip-version-check", "--quiet")
        _copy_source(base / "source")
        steps.run(
            "build",
            *pip,
            "wheel",
            "--no-deps",
            "--wheel-dir",
            base / "dist",
            base / "source",
            timeout=build_timeout,
            summary=lambda output: " ".join(wheel.name for wheel in (base / "dist").glob("*.whl")),
        )
        wheels = sorted((base / "dist").glob("mrecordlog-*.whl"))
        if len(wheels) != 1 or wheels[0].name.endswith("-none-any.whl") != (not platform_wheel):
            kind = "platform" if platform_wheel else "pure"
            steps.fail("build", f"expected one {kind} wheel of mrecordlog, got {[wheel.name for wheel in wheels]}")
        wheel = wheels[0]
        steps.run(
            "install",
            *pip,
            "install",
            f"mrecordlog[{extra}] @ {wheel.as_uri()}",
            timeout=300,
            summary=lambda output: f"{wheel.name}[{extra}]",
        )
        yield _FreshInstall(base, work, venv_dir, venv_bin, python, wheel, steps)


def _verify_hello(expected_version: str) -> Callable[[str], str | None]:
    def verify(stdout: str) -> str | None:
        lines = stdout.splitlines()
        if len(lines) != 1:
            return f"expected one answer line, got {len(lines)}"
        try:
            answer = json.loads(lines[0])
        except json.JSONDecodeError as error:
            return f"the answer is not JSON: {error}"
        expected = {"ok": True, "op": "hello", "protocol": 1, "version": expected_version}
        if not isinstance(answer, dict) or any(answer.get(key) != value for key, value in expected.items()):
            return f"expected an answer with {expected}"
        required_ops = {"open", "close", "state", "create_queue", "delete_queue", "append", "truncate", "persist"}
        if not required_ops <= set(answer.get("ops", [])) or not answer.get("checksums"):
            return "the answer does not announce every operation and a checksum profile"
        return None

    return verify


def _verify_json(key: str, expected: object) -> Callable[[str], str | None]:
    def verify(stdout: str) -> str | None:
        value = json.loads(stdout).get(key)
        return None if value == expected else f"{key} is {value!r}, expected {expected!r}"

    return verify


def source_version() -> str:
    """``mrecordlog.__version__`` as the source writes it (pyproject.toml
    reads the version from there), found without importing the package."""
    tree = ast.parse((ROOT / "src" / "mrecordlog" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and [getattr(t, "id", None) for t in node.targets] == ["__version__"]
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    raise SystemExit("src/mrecordlog/__init__.py assigns no string to __version__")


def wheelcheck() -> None:
    started = time.monotonic()
    project_version = source_version()
    modules = _source_modules()
    with _fresh_install("wheelcheck", "oracle") as fresh:
        work, venv_dir, venv_bin, python, steps, pip = (
            fresh.work,
            fresh.venv_dir,
            fresh.venv_bin,
            fresh.python,
            fresh.steps,
            fresh.pip,
        )
        command = venv_bin / "mrecordlog"
        steps.run("help", command, "--help", summary=lambda output: output.splitlines()[0])
        steps.run("demo", command, "demo", "--records", "200", summary=lambda output: output.splitlines()[-1])
        steps.run(
            "crashcheck",
            command,
            "crashcheck",
            "--budget",
            "3",
            "--seed",
            "1",
            "--json",
            verify=_verify_json("violations", 0),
            summary=lambda output: f"{json.loads(output)['images_checked']} images, 0 violations",
        )
        steps.run(
            "handshake",
            python,
            "-m",
            "mrecordlog.adapter",
            stdin='{"op":"hello"}\n',
            verify=_verify_hello(project_version),
            summary=lambda output: f"hello answered, version {project_version}",
        )
        adapter = f"{shlex.quote(str(python))} -m mrecordlog.adapter"
        steps.run(
            "conformance",
            command,
            "conformance",
            "--adapter",
            adapter,
            "--budget",
            "5",
            "--json",
            verify=_verify_json("verdict", "pass"),
            summary=lambda output: ", ".join(
                f"{check} {result['passed']}/{result['run']}" for check, result in json.loads(output)["checks"].items()
            ),
        )
        steps.run(
            "imports",
            python,
            "-c",
            IMPORT_SMOKE,
            venv_dir,
            stdin=json.dumps(modules),
            summary=lambda output: f"{len(modules)} source modules, each from the fresh venv",
        )
        steps.run(
            "bare-name",
            python,
            "-c",
            NO_BARE_NAME,
            summary=lambda output: output.strip(),
        )
        (work / "typed_user.py").write_text(TYPED_USER)
        steps.run("mypy-install", *pip, "install", "mypy", timeout=300)
        steps.run("typed-use", python, "typed_user.py")
        steps.run(
            "mypy",
            python,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "typed_user.py",
            summary=lambda output: "--strict on a user script: py.typed ships",
        )
    print(f"wheelcheck  {steps.count} steps passed in {time.monotonic() - started:.1f} s", flush=True)


# -- compiled: the mypyc build, installed and tested from outside the tree -----

# What the compiled build must pass: the tests that hold the core to the bytes
# of the recorded and golden vectors and to the model. (The tests that plant
# bugs by replacing core functions cannot patch compiled ones.)
COMPILED_TESTS = (
    "tests/test_vectors.py",
    "tests/test_golden_vectors.py",
    "tests/test_stateful.py",
    "tests/test_crash_machine.py",
)

VERIFY_COMPILED = """\
import importlib, json, os, sys
import mrecordlog
venv_dir = os.path.realpath(sys.argv[1])
expected = sorted(json.load(sys.stdin))
found = list(mrecordlog.compiled_modules())
problems = [] if found == expected else [f"compiled_modules() is {found}, expected {expected}"]
for name in expected:
    origin = os.path.realpath(importlib.import_module(name).__file__ or "")
    if not origin.endswith(".so") or not origin.startswith(venv_dir + os.sep):
        problems.append(f"{name}: loaded from {origin}, not a .so of {venv_dir}")
print("\\n".join(problems) or " ".join(found))
sys.exit(1 if problems else 0)
"""


def _compiled_modules_of_setup() -> list[str]:
    """``COMPILED_MODULES`` of setup.py, read (importing it would run setup())."""
    for node in ast.parse((ROOT / "setup.py").read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "COMPILED_MODULES" for target in node.targets
        ):
            return list(ast.literal_eval(node.value))
    sys.exit("compiled: setup.py defines no COMPILED_MODULES")


def _toolchain_problem() -> str | None:
    """What the build lacks to compile C extension modules, if anything."""
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    header = Path(sysconfig.get_paths()["include"]) / "Python.h"
    missing = [f"a C compiler ({compiler})"] if shutil.which(compiler) is None else []
    missing += [] if header.is_file() else [f"Python's headers ({header})"]
    if not missing:
        return None
    return f"compiling needs {' and '.join(missing)}: on Debian, apt-get install gcc python3-dev (as root)"


def _pytest_summary(output: str) -> str:
    lines = [line.strip("= ") for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def compiled(pytest_arguments: list[str]) -> None:
    started = time.monotonic()
    expected = _compiled_modules_of_setup()

    def toolchain(steps: _Steps) -> None:
        problem = _toolchain_problem()
        if problem is not None:
            steps.fail("toolchain", problem)
        steps.report("toolchain", f"C compiler and {Path(sysconfig.get_paths()['include']) / 'Python.h'}")

    with _fresh_install(
        "compiled",
        "test",
        env_overrides={"MRECORDLOG_COMPILE": "1", "HYPOTHESIS_PROFILE": "dev"},
        platform_wheel=True,
        build_timeout=600,
        precheck=toolchain,
    ) as fresh:
        base, work, venv_dir, python, steps = fresh.base, fresh.work, fresh.venv_dir, fresh.python, fresh.steps
        steps.run(
            "compiled",
            python,
            "-c",
            VERIFY_COMPILED,
            venv_dir,
            stdin=json.dumps(expected),
            summary=lambda output: output.strip(),
        )

        # The tests and the vectors they read, outside the source tree: `mrecordlog`
        # can only come from the fresh environment.
        shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(ROOT / "spec", work / "spec")
        shared_vectors = ROOT.parent / "shared" / "vectors"
        if shared_vectors.is_dir():  # read by test_vectors.py, as in the source tree
            shutil.copytree(shared_vectors, base / "shared" / "vectors")
        steps.run(
            "tests",
            python,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-n",
            "auto",
            *COMPILED_TESTS,
            *pytest_arguments,
            timeout=1200,
            summary=_pytest_summary,
        )
    print(f"compiled  {steps.count} steps passed in {time.monotonic() - started:.1f} s", flush=True)


def main(argv: list[str]) -> None:
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return
    if not argv or argv[0] not in TASKS:
        print(__doc__)
        sys.exit(2)
    keep_bytecode()
    if argv[0] == "wheelcheck":
        wheelcheck()
        return
    if argv[0] == "compiled":
        compiled(argv[1:])
        return
    ensure_environment()
    task, rest = argv[0], argv[1:]
    if task == "crashcheck":
        run(BIN / "mrecordlog", "crashcheck", "--seed", "0", "--budget", "60", *rest)
        return
    if task == "hunts":
        run_pytest(rest, hunts="only")
        return
    if task == "bench":
        run(PYTHON, "-m", "bench.run", *rest)
        return
    if task == "symbolic":
        run(PYTHON, "-m", "pip", "install", "-q", "-e", ".[symbolic]")
        os.environ["HYPOTHESIS_PROFILE"] = "symbolic"
        test = ["tests/test_decoder_properties.py", "-p", "no:cacheprovider", "--hypothesis-show-statistics"]
        run(PYTHON, "-m", "pytest", "-n", "0", *test, *rest)
        return
    if task == "docs":
        started = time.monotonic()
        run(PYTHON, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-e", ".[docs]")
        installed = time.monotonic()
        os.environ["NO_MKDOCS_2_WARNING"] = "1"  # mkdocs-material's banner about its successor
        run(PYTHON, "-m", "mkdocs", "build", "--strict", "--site-dir", "site", *rest)
        print(
            f"docs: site/ built (install {installed - started:.1f} s, build {time.monotonic() - installed:.1f} s)",
            flush=True,
        )
        return
    # src covers fault_injection/ through the symlink src/mrecordlog/fault_injection,
    # checked as mrecordlog.fault_injection; naming fault_injection here too would
    # check each of its files a second time, as the top-level module fault_injection.
    run(PYTHON, "-m", "mypy", "--strict", "src", "tests", "bench", "setup.py", "build_backend")
    run(PYTHON, "-m", "ruff", "check", ".")
    run(PYTHON, "-m", "ruff", "format", "--check", ".")
    run_pytest(rest, hunts="with" if "--all" in rest else "without")


def run_pytest(arguments: list[str], *, hunts: Literal["with", "without", "only"]) -> None:
    """pytest on every core, with the hunts, without them, or only them."""
    arguments = [arg for arg in arguments if arg != "--all"]
    # On every core unless the caller chose (-n 0 runs in this process).
    chose_workers = any(arg == "-n" or arg.startswith(("-n", "--numprocesses")) for arg in arguments)
    # Work stealing: a hunt takes up to a minute, and a worker that has
    # finished its share takes tests from the other instead of waiting.
    workers = [] if chose_workers else ["-n", "auto", "--dist", "worksteal"]
    chose_selection = any(arg == "-m" or arg.startswith("-m") for arg in arguments)
    selection = {"with": [], "without": ["-m", "not hunt and not campaign"], "only": ["-m", "hunt or campaign"]}[hunts]
    # The slowest tests, named in every run (CI logs included): where test time goes.
    run(PYTHON, "-m", "pytest", *workers, *([] if chose_selection else selection), "--durations=20", *arguments)


if __name__ == "__main__":
    main(sys.argv[1:])
