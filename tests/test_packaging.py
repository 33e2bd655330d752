"""The wheel ships the whole library: every module and subpackage of
``src/mrecordlog`` and ``fault_injection`` (installed as
``mrecordlog.fault_injection``: nothing but ``mrecordlog`` is installed at the
top level), the ``py.typed`` marker and the ``mrecordlog`` command.

The other tests import the source tree (an editable install), so they cannot
see what ``pip install .`` leaves out. Here the wheel is built, as pip builds
it, from a copy of the source tree (a build in the tree itself would reuse a
stale ``build/`` directory and race with other builds), and its file list is
compared with the source tree. ``python3 tasks.py wheelcheck`` goes further:
it installs the wheel in a fresh environment and runs it.
"""

from __future__ import annotations

import ast
import configparser
import importlib.util
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

import mrecordlog

ROOT = Path(__file__).resolve().parent.parent
# The source directory of each importable package the wheel must ship, by its
# import name. src/mrecordlog/fault_injection is a symlink to fault_injection/.
PACKAGE_SOURCES = {
    "mrecordlog": ROOT / "src" / "mrecordlog",
    "mrecordlog.fault_injection": ROOT / "fault_injection",
}
CONSOLE_SCRIPTS = {"mrecordlog": "mrecordlog.cli:main"}
# Not part of the source: never copied into the build directory.
SKIPPED_AT_ROOT = {
    ".git",
    ".venv",
    "build",
    "dist",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    ".bench-tmp",
}


def _ignore(directory: str, names: list[str]) -> set[str]:
    skipped = {name for name in names if name == "__pycache__" or name.endswith((".pyc", ".egg-info"))}
    if Path(directory) == ROOT:
        skipped |= SKIPPED_AT_ROOT & set(names)
    return skipped


def _setuptools_builds_without_isolation() -> bool:
    """Whether .venv's setuptools can build the wheel itself (pyproject asks
    for >= 64; before 70.1 it also needs the ``wheel`` package)."""
    if importlib.util.find_spec("setuptools") is None:
        return False
    try:
        major, minor = (int(part) for part in version("setuptools").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return False
    if (major, minor) < (64, 0):
        return False
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


def _expected_source_files() -> set[str]:
    """Every .py and py.typed of the packages' source, as its path in the wheel."""
    expected: set[str] = set()
    for package, source in PACKAGE_SOURCES.items():
        for path in source.rglob("*"):
            relative = path.relative_to(source)
            shipped = path.suffix == ".py" or path.name == "py.typed"
            if shipped and path.is_file() and "__pycache__" not in relative.parts:
                expected.add(f"{package.replace('.', '/')}/{relative.as_posix()}")
    return expected


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=_ignore, symlinks=True)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check"]
    if _setuptools_builds_without_isolation():
        command.append("--no-build-isolation")
    command += ["--wheel-dir", str(work / "dist"), str(source)]
    completed = subprocess.run(command, cwd=work, capture_output=True, text=True, check=False, timeout=300)
    assert completed.returncode == 0, f"{' '.join(command)} failed:\n{completed.stdout}{completed.stderr}"
    wheels = sorted((work / "dist").glob("mrecordlog-*.whl"))
    assert len(wheels) == 1, f"expected one mrecordlog wheel, built {wheels}"
    with zipfile.ZipFile(wheels[0]) as archive:
        yield archive


def test_the_wheel_ships_every_module_and_subpackage_of_the_source_tree(wheel: zipfile.ZipFile) -> None:
    expected = {name for name in _expected_source_files() if name.endswith(".py")}
    assert any(name.count("/") > 1 for name in expected), "the source tree should have subpackages"
    missing = sorted(expected - set(wheel.namelist()))
    assert not missing, f"the wheel lacks {len(missing)} of the {len(expected)} source modules: {missing}"


def test_the_wheel_ships_the_py_typed_markers(wheel: zipfile.ZipFile) -> None:
    markers = {name for name in _expected_source_files() if name.endswith("/py.typed")}
    # The one marker covers the subpackages, mrecordlog.fault_injection included (PEP 561).
    assert "mrecordlog/py.typed" in markers
    missing = sorted(markers - set(wheel.namelist()))
    assert not missing, f"the wheel lacks the py.typed markers {missing}"


def test_the_wheel_installs_the_mrecordlog_command(wheel: zipfile.ZipFile) -> None:
    entry_points_files = [name for name in wheel.namelist() if name.endswith(".dist-info/entry_points.txt")]
    assert len(entry_points_files) == 1, f"the wheel has no single entry_points.txt: {entry_points_files}"
    parser = configparser.ConfigParser()
    parser.read_string(wheel.read(entry_points_files[0]).decode())
    scripts = dict(parser["console_scripts"]) if parser.has_section("console_scripts") else {}
    assert scripts == CONSOLE_SCRIPTS


def test_the_wheel_ships_nothing_outside_mrecordlog_and_its_dist_info(wheel: zipfile.ZipFile) -> None:
    # No top-level fault_injection (or any other name another project could also install).
    assert "mrecordlog/fault_injection/__init__.py" in wheel.namelist()
    ours = re.compile(r"(mrecordlog|mrecordlog-[^/]+\.dist-info)/")
    outside = sorted(name for name in wheel.namelist() if not ours.match(name))
    assert not outside, f"the wheel ships files outside mrecordlog/ and its .dist-info/: {outside}"


def test_the_fault_layer_is_linked_into_the_src_package() -> None:
    # setuptools finds mrecordlog.fault_injection under src/ through this link
    # (a checkout without symlinks, git's core.symlinks=false, leaves a text file).
    link = ROOT / "src" / "mrecordlog" / "fault_injection"
    assert link.is_symlink(), f"{link} should be a symlink to ../../fault_injection"
    assert link.resolve() == (ROOT / "fault_injection").resolve()


def test_the_fault_layer_imports_its_own_modules_relatively() -> None:
    # Installed as mrecordlog.fault_injection: an absolute import of the bare
    # source directory's name would fail there. (Ruff's ban of that name,
    # TID251, is off for fault_injection/, where it reads relative imports as it.)
    for path in sorted((ROOT / "fault_injection").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
                names = [node.module]
            else:
                continue
            bare = [name for name in names if name.split(".")[0] == "fault_injection"]
            assert not bare, f"{path.name}:{node.lineno} imports {bare[0]}: import the package's own modules relatively"


def test_the_default_wheel_is_pure_python_and_says_so(wheel: zipfile.ZipFile) -> None:
    # The default build is the reference: no extension module may sneak in
    # (MRECORDLOG_COMPILE unset), and the running tree reports none compiled.
    extensions = sorted(name for name in wheel.namelist() if name.endswith((".so", ".pyd")))
    assert extensions == []
    assert str(wheel.filename).endswith("-none-any.whl")
    assert mrecordlog.compiled_modules() == ()
