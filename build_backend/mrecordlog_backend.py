"""The build backend: setuptools' own (``setuptools.build_meta``), in which only
``build_wheel`` may compile.

``MRECORDLOG_COMPILE=1`` makes ``setup.py`` compile the core with mypyc (it
says which modules, and why the others are left out). mypyc comes with mypy,
which type-checks the source first, with the types of crc32c: this wrapper
adds both to the build requirements of a wheel only when the variable is 1.
``pyproject.toml``'s ``requires`` cannot depend on a variable, and a pure
build (the default) should not download mypy.

Every other hook runs ``setup.py`` as the pure build: setuptools runs it to
collect the requirements before they are installed, and the metadata and the
sdist are the same for both builds. An editable install refuses to compile:
its extension modules would be built beside the sources, and shadow them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from setuptools import build_meta as _setuptools

__all__ = [
    "build_editable",
    "build_sdist",
    "build_wheel",
    "get_requires_for_build_editable",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_editable",
    "prepare_metadata_for_build_wheel",
]

COMPILE_VARIABLE = "MRECORDLOG_COMPILE"
# mypyc (verified with mypy 2.4), and crc32c for the types of the module that imports it.
COMPILE_REQUIRES = ["mypy>=2.4", "crc32c>=2.3"]

ConfigSettings = dict[str, str | list[str] | None] | None


def _compiling() -> bool:
    return os.environ.get(COMPILE_VARIABLE) == "1"


@contextlib.contextmanager
def _pure() -> Iterator[None]:
    """Run a hook with the variable unset: setup.py then builds pure Python."""
    saved = os.environ.pop(COMPILE_VARIABLE, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[COMPILE_VARIABLE] = saved


def _refuse_compiled_editable() -> None:
    if _compiling():
        raise SystemExit(
            f"{COMPILE_VARIABLE}=1: an editable install cannot be compiled (the extension modules would "
            "shadow the sources); build a wheel or run `pip install .` instead"
        )


# -- wheel: the one hook that compiles -------------------------------------------


def get_requires_for_build_wheel(config_settings: ConfigSettings = None) -> list[str]:
    with _pure():
        requires: list[str] = _setuptools.get_requires_for_build_wheel(config_settings)
    return [*requires, *COMPILE_REQUIRES] if _compiling() else requires


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: ConfigSettings = None) -> str:
    with _pure():
        name: str = _setuptools.prepare_metadata_for_build_wheel(metadata_directory, config_settings)
    return name


def build_wheel(
    wheel_directory: str, config_settings: ConfigSettings = None, metadata_directory: str | None = None
) -> str:
    name: str = _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)
    return name


# -- sdist and editable: always pure -------------------------------------------------


def get_requires_for_build_sdist(config_settings: ConfigSettings = None) -> list[str]:
    with _pure():
        requires: list[str] = _setuptools.get_requires_for_build_sdist(config_settings)
    return requires


def build_sdist(sdist_directory: str, config_settings: ConfigSettings = None) -> str:
    with _pure():
        name: str = _setuptools.build_sdist(sdist_directory, config_settings)
    return name


def get_requires_for_build_editable(config_settings: ConfigSettings = None) -> list[str]:
    _refuse_compiled_editable()
    requires: list[str] = _setuptools.get_requires_for_build_editable(config_settings)
    return requires


def prepare_metadata_for_build_editable(metadata_directory: str, config_settings: ConfigSettings = None) -> str:
    _refuse_compiled_editable()
    name: str = _setuptools.prepare_metadata_for_build_editable(metadata_directory, config_settings)
    return name


def build_editable(
    wheel_directory: str, config_settings: ConfigSettings = None, metadata_directory: str | None = None
) -> str:
    _refuse_compiled_editable()
    name: str = _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
    return name
