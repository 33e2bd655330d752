"""Which build is running: the pure-Python one (the default, and the
reference) or the one whose core modules mypyc compiled
(``MRECORDLOG_COMPILE=1 pip install .``; see setup.py).

This module is never compiled: it answers for the others.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import pkgutil


def compiled_modules() -> tuple[str, ...]:
    """The modules of the ``mrecordlog`` package that this installation loads
    as compiled extension modules, sorted: empty for the pure-Python build.
    Nothing is imported to tell."""
    import mrecordlog

    compiled = []
    for module in pkgutil.iter_modules(mrecordlog.__path__, "mrecordlog."):
        spec = importlib.util.find_spec(module.name)
        if spec is not None and isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
            compiled.append(module.name)
    return tuple(sorted(compiled))
