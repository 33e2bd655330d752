"""The build's one choice; everything else is in pyproject.toml.

By default the wheel is pure Python: the default build, and the reference.

``MRECORDLOG_COMPILE=1 pip install .`` (or ``pip wheel .``) also compiles the
hot, pure core modules of ``COMPILED_MODULES`` with mypyc, from the same
typed source, into C extension modules: a platform wheel, which still ships
every ``.py`` (Python imports the extension module instead). The build needs
a C compiler and Python's headers (on Debian: ``apt-get install gcc
python3-dev``); mypy, which brings mypyc, is added to the build requirements
by ``build_backend/mrecordlog_backend.py``. ``mrecordlog.compiled_modules()``
tells which modules of an installation are compiled; ``python3 tasks.py
compiled`` builds, installs and tests the compiled wheel.

Left out:

- ``log.py``: the facade keeps its open logs in a ``weakref.WeakSet`` (fork
  safety), and mypyc's native classes cannot be weakly referenced. It is the
  largest interpreted share of an append left (its checks and the policy);
- ``_storage.py``, ``_quarantine.py``: I/O, and not per record;
- ``errors.py``, ``outcomes.py``, ``policy.py``, ``inspection.py``,
  ``diagnosis.py``: error paths, value classes and reports, not hot;
- ``_arguments.py``: log.py's argument checks, worth compiling with it;
- ``_compiled.py``: it tells whether the others are compiled;
- ``model.py``: the executable spec the core is checked against stays the
  interpreted Python it is written in;
- ``cli.py``, ``adapter.py``, ``demo.py``, ``interchange.py``, ``oracle/``,
  ``fault_injection/``: tools and test machinery, not the log's data path.

A compiled function or class cannot be replaced by assignment: the tests that
plant a bug in the core that way (the ``*_teeth`` tests, the mrecordlog 0.5
emulation) hold for the pure build only.
"""

from __future__ import annotations

import os

from setuptools import Extension, setup

COMPILED_MODULES = (
    "mrecordlog._codec",
    "mrecordlog._framing",
    "mrecordlog._queues",
    "mrecordlog._wal",
    "mrecordlog._recovery",
)
# The compiled build's own build directory: a pure build in the same tree
# (build/lib) never picks up its extension modules.
COMPILED_BUILD_BASE = os.path.join("build", "compiled")


def compile_requested() -> bool:
    value = os.environ.get("MRECORDLOG_COMPILE", "")
    if value not in ("", "0", "1"):
        raise SystemExit(f"MRECORDLOG_COMPILE must be 1 (compile with mypyc) or 0 (pure Python), not {value!r}")
    return value == "1"


def compiled_extensions() -> list[Extension]:
    from mypyc.build import mypycify

    paths = [os.path.join("src", *name.split(".")) + ".py" for name in COMPILED_MODULES]
    # mypyc type-checks with pyproject.toml's [tool.mypy] (--strict); its cache stays out of .mypy_cache.
    cache = ["--cache-dir", os.path.join(COMPILED_BUILD_BASE, "mypy-cache")]
    extensions: list[Extension] = mypycify([*cache, *paths], target_dir=os.path.join(COMPILED_BUILD_BASE, "c"))
    return extensions


if compile_requested():
    setup(ext_modules=compiled_extensions(), options={"build": {"build_base": COMPILED_BUILD_BASE}})
else:
    setup()
