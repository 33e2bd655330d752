"""Every public member of the API reference has a docstring (issue 12).

docs/api.md is rendered by mkdocstrings, which reads the source, not the
imported objects, and leaves out every member that has no docstring: a
member without one is missing from the reference. So these tests read the
source too, starting from each ``::: NAME`` entry of docs/api.md and each
name of ``mrecordlog.__all__`` (found through the package's imports; an
entry may also be a whole module, whose public definitions are all checked):

- a function, a class, and each public method, property, classmethod and
  staticmethod a class defines (not inherited) has a docstring;
- each public attribute of a class (a dataclass or NamedTuple field, an enum
  member, a class attribute, an attribute its ``__init__`` sets) is named by
  a ``:ivar NAME:``, ``:cvar NAME:`` or ``:var NAME:`` field of its docstring
  or of a base class's (mkdocs.yml has the sphinx docstring style, which
  renders these fields as the class's table of attributes), and no such
  field names an attribute the class does not have;
- a public module-level name bound by an assignment (a constant, a type
  alias) has an attribute docstring: a string right after it.

The failure message lists every problem at once.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import mrecordlog

ROOT = Path(__file__).resolve().parent.parent
API_PAGE = ROOT / "docs" / "api.md"
# A field as griffe's sphinx parser reads it: at the start of a line of the
# cleaned docstring, one space after the directive. Everything after a field
# up to the next one is its text, so the fields close a docstring.
_FIELD = re.compile(r"^:(?:var|ivar|cvar) (\w+):", re.MULTILINE)


def _public(name: str) -> bool:
    return not name.startswith("_")


def _bound_names(statement: ast.stmt) -> list[str]:
    """The plain names an assignment binds (``a = b = 1``, ``a: int = 1``)."""
    if isinstance(statement, ast.Assign):
        return [target.id for target in statement.targets if isinstance(target, ast.Name)]
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        return [statement.target.id]
    return []


def _defines(statement: ast.stmt, name: str) -> bool:
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return statement.name == name
    return name in _bound_names(statement)


class Sources:
    """The parsed source of the package's modules, by module name."""

    def __init__(self, trees: dict[str, ast.Module] | None = None) -> None:
        self._trees: dict[str, ast.Module] = dict(trees or {})

    def tree(self, module: str) -> ast.Module:
        if module not in self._trees:
            spec = importlib.util.find_spec(module)
            assert spec is not None, module
            assert spec.origin is not None, module
            self._trees[module] = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
        return self._trees[module]

    def find(self, module: str, name: str) -> tuple[str, ast.Module, int]:
        """Where ``module.name`` is defined, following ``from ... import``:
        (the defining module, its tree, the index of the statement)."""
        tree = self.tree(module)
        for index, statement in enumerate(tree.body):
            if _defines(statement, name):
                return module, tree, index
        for statement in tree.body:
            if (
                isinstance(statement, ast.ImportFrom)
                and statement.module
                and statement.level == 0
                and any((alias.asname or alias.name) == name for alias in statement.names)
            ):
                return self.find(statement.module, name)
        raise AssertionError(f"{module}.{name}: no definition found in the source")

    def class_tree(self, cls: type) -> ast.ClassDef | None:
        """The definition of a class of the package, None for any other class."""
        ours = cls.__module__ in self._trees or cls.__module__.startswith("mrecordlog.")
        if not ours or "." in cls.__qualname__:
            return None
        _, tree, index = self.find(cls.__module__, cls.__qualname__)
        statement = tree.body[index]
        return statement if isinstance(statement, ast.ClassDef) else None


def _has_attribute_docstring(body: list[ast.stmt], index: int) -> bool:
    following = body[index + 1] if index + 1 < len(body) else None
    return (
        isinstance(following, ast.Expr)
        and isinstance(following.value, ast.Constant)
        and isinstance(following.value.value, str)
        and bool(following.value.value.strip())
    )


def _is_accessor_or_overload(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A property's setter or deleter, or an ``@overload``: documented elsewhere."""
    for decorator in function.decorator_list:
        if isinstance(decorator, ast.Attribute) and decorator.attr in ("setter", "deleter"):
            return True
        if (isinstance(decorator, ast.Name) and decorator.id == "overload") or (
            isinstance(decorator, ast.Attribute) and decorator.attr == "overload"
        ):
            return True
    return False


def class_attributes(definition: ast.ClassDef) -> list[str]:
    """The public attributes a class defines: names bound in its body (fields,
    enum members, class attributes) and ``self.NAME`` its ``__init__`` sets."""
    names = [name for statement in definition.body for name in _bound_names(statement) if _public(name)]
    for statement in definition.body:
        if isinstance(statement, ast.FunctionDef) and statement.name == "__init__":
            for node in ast.walk(statement):
                targets = (
                    node.targets
                    if isinstance(node, ast.Assign)
                    else [node.target]
                    if isinstance(node, ast.AnnAssign)
                    else []
                )
                for target in targets:
                    if (
                        isinstance(target, ast.Attribute)
                        and isinstance(target.value, ast.Name)
                        and target.value.id == "self"
                        and _public(target.attr)
                        and target.attr not in names
                    ):
                        names.append(target.attr)
    return names


def _class_members(definition: ast.ClassDef) -> set[str]:
    functions = {
        statement.name for statement in definition.body if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    return functions | set(class_attributes(definition))


def class_problems(qualname: str, definition: ast.ClassDef, cls: type, sources: Sources) -> Iterator[str]:
    docstring = ast.get_docstring(definition)
    if not docstring:
        yield f"{qualname}: no docstring"
    documented = set(_FIELD.findall(docstring or ""))
    # What the bases (of the package) document and define.
    inherited_documented: set[str] = set()
    known = _class_members(definition) | set(dir(cls))
    for base in cls.__mro__[1:]:
        base_definition = sources.class_tree(base)
        if base_definition is not None:
            inherited_documented |= set(_FIELD.findall(ast.get_docstring(base_definition) or ""))
            known |= _class_members(base_definition)
    for statement in definition.body:
        if (
            isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef)
            and _public(statement.name)
            and not _is_accessor_or_overload(statement)
            and not ast.get_docstring(statement)
        ):
            yield f"{qualname}.{statement.name}: no docstring"
    for name in class_attributes(definition):
        if name not in documented | inherited_documented:
            yield f"{qualname}.{name}: not documented (no :ivar {name}: or :cvar {name}: in the class docstring)"
    for name in sorted(documented - known):
        yield f"{qualname}: the docstring documents {name!r}, which the class does not have"


def definition_problems(
    module: ModuleType, tree: ast.Module, index: int, name: str, sources: Sources, *, shown_as: str | None = None
) -> Iterator[str]:
    """What is missing from the documentation of ``module.name``, the
    ``index``-th statement of the module's source (``shown_as``: the name the
    API reference gives it)."""
    qualname = shown_as or f"{module.__name__}.{name}"
    statement = tree.body[index]
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
        if not ast.get_docstring(statement):
            yield f"{qualname}: no docstring"
    elif isinstance(statement, ast.ClassDef):
        yield from class_problems(qualname, statement, getattr(module, name), sources)
    elif not _has_attribute_docstring(tree.body, index):
        yield f"{qualname}: no docstring (a string right after the assignment)"


def module_problems(module: ModuleType, tree: ast.Module, sources: Sources) -> Iterator[str]:
    """The problems of every public name a module defines (not imports)."""
    if not ast.get_docstring(tree):
        yield f"{module.__name__}: no module docstring"
    for index, statement in enumerate(tree.body):
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names = [statement.name]
        else:
            names = _bound_names(statement)
        for name in names:
            if _public(name):
                yield from definition_problems(module, tree, index, name, sources)


def api_entries() -> list[str]:
    """The ``::: NAME`` entries of docs/api.md, then the names of
    ``mrecordlog.__all__`` it lacks (tests/test_docs_api.py requires none)."""
    entries: list[str] = re.findall(r"^::: ([\w.]+)$", API_PAGE.read_text(encoding="utf-8"), re.MULTILINE)
    return entries + [f"mrecordlog.{name}" for name in mrecordlog.__all__ if f"mrecordlog.{name}" not in entries]


def _is_module(entry: str) -> bool:
    try:
        return importlib.util.find_spec(entry) is not None
    except ModuleNotFoundError:
        return False


def api_problems() -> list[str]:
    sources = Sources()
    problems: list[str] = []
    for entry in api_entries():
        if _is_module(entry):
            problems += module_problems(importlib.import_module(entry), sources.tree(entry), sources)
            continue
        package, _, name = entry.rpartition(".")
        defining, tree, index = sources.find(package, name)
        problems += definition_problems(importlib.import_module(defining), tree, index, name, sources, shown_as=entry)
    return problems


def test_every_public_member_has_a_docstring() -> None:
    entries = api_entries()
    assert {"mrecordlog.RecoveryReport", "mrecordlog.Storage", "mrecordlog.model"} <= set(entries)
    problems = api_problems()
    assert not problems, f"{len(problems)} undocumented member(s):\n" + "\n".join(problems)


SYNTHETIC = '''
"""A module."""
import enum
from dataclasses import dataclass

LIMIT = 3
"""The limit."""
UNDOCUMENTED = 4


class Base(Exception):
    """A base.

    :cvar kind: its name.
    """

    kind = "Base"


class Child(Base):
    """A child that sets ``queue``."""

    kind = "Child"

    def __init__(self, queue: str) -> None:
        super().__init__(queue)
        self.queue = queue
        self._private = 1


class Color(enum.Enum):
    """A colour.

    :cvar RED: red.
    :cvar BLUE: a colour it does not have.
    """

    RED = 1
    GREEN = 2


@dataclass
class Point:
    """A point.

    :ivar x: across.
    """

    x: int
    y: int

    @property
    def norm(self) -> int:
        return self.x + self.y

    @norm.setter
    def norm(self, value: int) -> None:
        pass

    def moved(self) -> "Point":
        """Moved."""
        return self

    def _helper(self) -> None:
        pass


@dataclass
class Bare:
    z: int


def undocumented() -> None:
    pass
'''


def test_the_check_finds_every_kind_of_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    tree = ast.parse(SYNTHETIC)
    module = ModuleType("synthetic")
    monkeypatch.setitem(sys.modules, "synthetic", module)  # the dataclass looks its module up
    exec(compile(tree, "synthetic", "exec"), module.__dict__)
    problems = list(module_problems(module, tree, Sources({"synthetic": tree})))
    assert problems == [
        "synthetic.UNDOCUMENTED: no docstring (a string right after the assignment)",
        "synthetic.Child.queue: not documented (no :ivar queue: or :cvar queue: in the class docstring)",
        "synthetic.Color.GREEN: not documented (no :ivar GREEN: or :cvar GREEN: in the class docstring)",
        "synthetic.Color: the docstring documents 'BLUE', which the class does not have",
        "synthetic.Point.norm: no docstring",
        "synthetic.Point.y: not documented (no :ivar y: or :cvar y: in the class docstring)",
        # The dataclass made up a __doc__ ("Bare(z: int)"): the source has none.
        "synthetic.Bare: no docstring",
        "synthetic.Bare.z: not documented (no :ivar z: or :cvar z: in the class docstring)",
        "synthetic.undocumented: no docstring",
    ]
