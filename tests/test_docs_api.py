"""What the documentation says about the API is held to the code.

- **Signatures.** A signature the docs show, in a ```python no-run block
  (``MultiRecordLog.open(directory, *, ...) -> MultiRecordLog``) or in a code
  span (`` `inspect_log(directory, *, storage=None)` ``), is compared with
  ``inspect.signature`` of the function, method or class it names: the same
  parameters in the same order, of the same kind (keyword-only after ``*``),
  with the same defaults (the page's default is evaluated with the names of
  ``mrecordlog``) and the same return annotation when the page gives one. A
  call is told from a signature by its names: ``append_record(q, p)`` (names
  the function does not have) is an example of a call and is not checked, but
  a span with ``*``, or a line of a no-run block, must be a full signature.
- **Tables.** The guide's table of the members of an open log lists every
  public property of ``MultiRecordLog``; its table of errors has a row for
  every exception ``mrecordlog`` exports, with the class's ``kind``.
- **API reference.** docs/api.md has a ``::: mrecordlog.NAME`` entry for
  every name of ``mrecordlog.__all__``.
- **Installing.** mrecordlog is on no package index: a ``pip install`` in the
  docs or the README installs it from a path or a git URL, never by its bare
  name, and names only extras that pyproject.toml defines.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import shlex
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import mrecordlog
from mrecordlog import MRecordLogError, MultiRecordLog

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]
_FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>[^`\n]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.MULTILINE | re.DOTALL)
_SPAN = re.compile(r"(?<!`)`(?P<code>[^`\n]+)`(?!`)")
_CALL_START = re.compile(r"(?P<name>[A-Za-z_][\w.]*)\(")
_NAMESPACE: dict[str, object] = {**{name: getattr(mrecordlog, name) for name in mrecordlog.__all__}, "time": time}


@dataclass(frozen=True)
class Shown:
    """A call or a signature as a page shows it."""

    where: str
    name: str
    arguments: str
    returns: str | None
    must_be_signature: bool


def _without_fences(text: str) -> str:
    return _FENCE.sub(lambda match: "\n" * match[0].count("\n"), text)


def _closing(text: str, start: int) -> int:
    """The index of the parenthesis that closes the one before ``start``."""
    depth = 1
    for index in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        if depth == 0:
            return index
    return -1


def _shown_in(code: str, where: str, *, whole: bool) -> Iterator[Shown]:
    """The ``name(...)`` of ``code``: all of them in a no-run block, or the
    span itself when it is a call (``whole``)."""
    position = 0
    while (match := _CALL_START.search(code, position)) is not None:
        end = _closing(code, match.end())
        if end < 0:
            return
        position = end + 1  # the calls inside the arguments (defaults) are not signatures
        rest = code[end + 1 :]
        returns = re.match(r"\s*->\s*([\w.\[\]| ,]+?)\s*$", rest.split("\n", 1)[0])
        if whole and (match.start() != 0 or (rest.strip() and returns is None)):
            return
        yield Shown(where, match["name"], code[match.end() : end], returns[1] if returns else None, not whole)
        if whole:
            return


def shown_calls() -> Iterator[Shown]:
    for path in PAGES:
        text = path.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            if match["info"].split()[:2] == ["python", "no-run"]:
                line = text.count("\n", 0, match.start()) + 1
                body = re.sub(r"#[^\n]*", "", match["body"])  # the blocks' comments hold no code
                yield from _shown_in(body, f"{path.name}:{line}", whole=False)
        prose = _without_fences(text)
        for span in _SPAN.finditer(prose):
            line = prose.count("\n", 0, span.start()) + 1
            yield from _shown_in(span["code"], f"{path.name}:{line}", whole=True)


def resolve(name: str) -> Callable[..., object] | None:
    """The public callable a shown name stands for, if any."""
    owner, _, attribute = name.rpartition(".")
    if owner in ("log", "MultiRecordLog"):
        found = getattr(MultiRecordLog, attribute, None)
    elif owner.startswith("mrecordlog"):
        try:
            found = getattr(importlib.import_module(owner), attribute, None)
        except ImportError:
            return None
    elif owner:
        return None
    elif attribute in mrecordlog.__all__:
        found = getattr(mrecordlog, attribute)
    else:
        found = getattr(MultiRecordLog, attribute, None)
    return found if callable(found) and not attribute.startswith("_") else None


def _parameters(arguments: str) -> ast.arguments | None:
    try:
        definition = ast.parse(f"def shown({arguments}): pass").body[0]
    except SyntaxError:
        return None
    assert isinstance(definition, ast.FunctionDef)
    return definition.args


def _real_signature(function: Callable[..., object]) -> inspect.Signature:
    signature = inspect.signature(function)
    parameters = list(signature.parameters.values())
    if parameters and parameters[0].name in ("self", "cls") and not inspect.isclass(function):
        signature = signature.replace(parameters=parameters[1:])
    return signature


def signature_problems(shown: Shown) -> list[str]:
    """What the page gets wrong, or [] (also for a call that is no signature)."""
    function = resolve(shown.name)
    if function is None:
        return []
    arguments = _parameters(shown.arguments)
    if arguments is None or not (arguments.args or arguments.kwonlyargs):
        return [f"{shown.name}({shown.arguments}) is not a signature"] if shown.must_be_signature else []
    real = _real_signature(function)
    named = [
        *((argument, inspect.Parameter.POSITIONAL_OR_KEYWORD) for argument in arguments.args),
        *((argument, inspect.Parameter.KEYWORD_ONLY) for argument in arguments.kwonlyargs),
    ]
    defaults: list[ast.expr | None] = [
        *([None] * (len(arguments.args) - len(arguments.defaults))),
        *arguments.defaults,
        *arguments.kw_defaults,
    ]
    values: list[object] = []
    for default in defaults:
        try:
            values.append(
                None if default is None else eval(compile(ast.Expression(default), "", "eval"), dict(_NAMESPACE))
            )
        except Exception as error:  # a call's argument, such as position=position
            if shown.must_be_signature or arguments.kwonlyargs:
                return [f"{shown.name}({shown.arguments}): the default {ast.unparse(default)!r} fails: {error!r}"]  # type: ignore[arg-type]
            return []
    shown_names = [argument.arg for argument, _ in named]
    real_names = list(real.parameters)
    full = shown.must_be_signature or arguments.kwonlyargs or arguments.vararg is not None or any(defaults)
    problems = []
    if not full:
        # Plain names: a call such as append_record(q, p) (names of its own), or
        # the leading parameters, those left out having defaults.
        if not set(shown_names) <= set(real_names):
            return []
        left_out = real_names[len(shown_names) :]
        if shown_names != real_names[: len(shown_names)] or any(
            real.parameters[name].default is inspect.Parameter.empty for name in left_out
        ):
            problems.append(f"parameters {shown_names}, but the code has {real_names}")
    elif shown_names != real_names:
        problems.append(f"parameters {shown_names}, but the code has {real_names}")
    for (argument, kind), default, value in zip(named, defaults, values, strict=True):
        parameter = real.parameters.get(argument.arg)
        if parameter is None:
            continue
        if parameter.kind != kind:
            problems.append(f"{argument.arg} is shown {kind.description}, but is {parameter.kind.description}")
        if default is None and full and parameter.default is not inspect.Parameter.empty:
            problems.append(f"{argument.arg} is shown without its default {parameter.default!r}")
        elif default is not None and (parameter.default is inspect.Parameter.empty or value != parameter.default):
            problems.append(f"{argument.arg} is shown with the default {value!r}, not {parameter.default!r}")
    if shown.returns is not None:
        annotation = real.return_annotation
        text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", repr(annotation))
        if shown.returns.strip() != text:
            problems.append(f"shown returning {shown.returns}, but returns {text}")
    return [f"{shown.name}({shown.arguments}): {problem}" for problem in problems]


SHOWN = list(shown_calls())


def test_the_docs_show_signatures() -> None:
    checked = {shown.name for shown in SHOWN if resolve(shown.name) is not None}
    assert {"MultiRecordLog.open", "inspect_log", "log.append_records", "create_queue", "OnDelay"} <= checked


@pytest.mark.parametrize("page", [path.name for path in PAGES])
def test_signatures_shown_are_the_code(page: str) -> None:
    problems = [
        f"{shown.where}: {problem}"
        for shown in SHOWN
        if shown.where.startswith(page + ":")
        for problem in signature_problems(shown)
    ]
    assert not problems, "\n".join(problems)


def test_signature_checks_have_teeth() -> None:
    def problems(code: str, *, block: bool = False) -> list[str]:
        return [problem for shown in _shown_in(code, "t", whole=not block) for problem in signature_problems(shown)]

    assert problems("inspect_log(directory, *, storage=None)")  # recovery=, file_num_bytes= left out
    assert problems("log.truncate(queue, position) -> AppendOutcome")
    assert problems("log.append_record(queue, payload, position=None)")  # position is keyword-only
    assert problems("OnDelay(interval_seconds, action=PersistAction.FLUSH_AND_FSYNC)")
    assert problems("MultiRecordLog.open(directory, *, checksum=None)", block=True)
    assert not problems("log.truncate(queue, position) -> TruncateOutcome")
    assert not problems("append_record(q, p)")  # a call, not a signature
    assert not problems("Always(PersistAction.FLUSH)")
    assert not problems("mrecordlog.interchange.unpack_wal_image(image, directory)")  # storage has a default
    assert problems("mrecordlog.interchange.unpack_wal_image(directory, image)")
    assert not problems("append_records(queue, payloads, position=position)")  # a call


# -- tables of the guide --------------------------------------------------------


def _table_after(text: str, heading: str) -> list[list[str]]:
    """The rows (cells) of the first table after ``heading``."""
    rows = []
    for line in text[text.rindex("\n", 0, text.index(heading)) + 1 :].splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # without the header and its rule


def _code_names(cell: str) -> list[str]:
    return [re.sub(r"\(.*", "", span) for span in re.findall(r"`([^`]+)`", cell)]


def test_the_member_table_lists_every_property_of_a_log() -> None:
    guide = (DOCS / "guide.md").read_text(encoding="utf-8")
    listed = {
        name for row in _table_after(guide, "Properties and helpers of an open log") for name in _code_names(row[0])
    }
    properties = {name for name, value in vars(MultiRecordLog).items() if isinstance(value, property)}
    assert properties - listed == set(), "public properties missing from the guide's table"
    assert listed <= set(dir(MultiRecordLog)), "the table lists members the log does not have"


def test_the_guide_names_every_public_method_of_a_log() -> None:
    guide = (DOCS / "guide.md").read_text(encoding="utf-8")
    spans = set(_SPAN.findall(_without_fences(guide))) | set(re.findall(r"\blog\.(\w+)\(", guide))
    methods = {
        name
        for name, value in vars(MultiRecordLog).items()
        if (callable(value) or isinstance(value, classmethod)) and not name.startswith("_")
    }
    named = {re.match(r"(?:log\.|MultiRecordLog\.)?(\w+)", span)[1] for span in spans if re.match(r"[\w.]+", span)}  # type: ignore[index]
    assert methods - {"open"} - named == set(), "public methods the guide never names"


# The tables of errors: the guide's, and the one of the normative spec.
ERROR_TABLES = {
    "guide": (DOCS / "guide.md", "| exception | `kind` |"),
    "spec": (DOCS.parent / "spec" / "SEMANTICS.md", "| class | kind | raised by | attributes |"),
}


@pytest.mark.parametrize("where", list(ERROR_TABLES))
def test_the_error_table_has_every_error_and_its_kind(where: str) -> None:
    path, heading = ERROR_TABLES[where]
    rows = _table_after(path.read_text(encoding="utf-8"), heading)
    table = {_code_names(row[0])[0]: _code_names(row[1])[0] for row in rows}
    errors = {
        name: value.kind
        for name, value in vars(mrecordlog).items()
        if isinstance(value, type) and issubclass(value, MRecordLogError) and name in mrecordlog.__all__
    }
    assert errors.keys() - table.keys() == set(), f"exported errors missing from the {where}'s table"
    assert table.keys() - errors.keys() == set(), "the table lists errors mrecordlog does not export"
    wrong = {name: (table[name], kind) for name, kind in errors.items() if table[name] != kind}
    assert not wrong, f"kind in the table, kind of the class: {wrong}"


# What `apply` cannot meet: it never uses a closed log, iterates or forks.
# CapacityExceeded: apply opens its logs without limits.
NOT_FROM_APPLY = {"Error", "Closed", "ConcurrentModification", "Forked", "CapacityExceeded"}


def test_the_result_lines_of_apply_name_every_kind() -> None:
    cli = (DOCS / "cli.md").read_text(encoding="utf-8")
    sentence = cli[cli.index("- `error` is the exception's `kind`") :].split("\n- ", 1)[0]
    named = set(re.findall(r"`(\w+)`", sentence))
    kinds = {
        value.kind
        for name, value in vars(mrecordlog).items()
        if isinstance(value, type) and issubclass(value, MRecordLogError) and name in mrecordlog.__all__
    }
    assert kinds - NOT_FROM_APPLY - named == set(), "kinds cli.md does not list for apply's results"


def _first_column(text: str, heading: str) -> set[str]:
    return {name for row in _table_after(text, heading) for name in _code_names(row[0])[:1]}


def test_the_campaign_tables_list_every_kind() -> None:
    from mrecordlog.oracle.crashcheck import FAULT_KINDS
    from mrecordlog.oracle.fuzz import VIOLATION_KINDS

    crash = (DOCS / "crash-consistency.md").read_text(encoding="utf-8")
    documented = _first_column(crash, "| fault kind | image |") | _first_column(crash, "| fault kind | tamper edits |")
    assert documented == set(FAULT_KINDS), "crash-consistency.md's tables of fault kinds"
    cli = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert _first_column(cli, "| kind | promise |") == set(VIOLATION_KINDS), "cli.md's table of fuzz violations"


# -- the API reference ----------------------------------------------------------


def test_the_api_reference_has_every_public_name() -> None:
    entries = set(re.findall(r"^::: ([\w.]+)$", (DOCS / "api.md").read_text(encoding="utf-8"), re.MULTILINE))
    public = {f"mrecordlog.{name}" for name in mrecordlog.__all__} | {"mrecordlog.diagnosis", "mrecordlog.model"}
    assert public - entries == set(), "public names missing from docs/api.md"
    for entry in entries:
        module, _, name = entry.rpartition(".")
        assert hasattr(importlib.import_module(module), name) or importlib.util.find_spec(entry), entry


# -- installing -------------------------------------------------------------------


def pip_installs() -> Iterator[tuple[str, list[str]]]:
    """Each ``pip install`` of the docs and the README: (page, its arguments)."""
    for path in PAGES:
        for line in path.read_text(encoding="utf-8").splitlines():
            for match in re.finditer(r"pip install (?P<rest>[^`\n]*)", line):
                rest = match["rest"].split("  #")[0].split(" # ")[0]
                try:
                    words = shlex.split(rest)
                except ValueError:
                    words = rest.split()
                yield path.name, words


def install_problems(words: list[str], extras: set[str]) -> list[str]:
    problems = []
    requirements = " ".join(word for word in words if not word.startswith("-")).replace(" @ ", "@")
    for requirement in requirements.split():
        name, _, url = requirement.partition("@")
        local = name.startswith((".", "/")) and not url
        if not local and re.match(r"mrecordlog\b", name) and not url.startswith("git+"):
            problems.append(f"{requirement}: mrecordlog is on no index (install from a clone or a git+ URL)")
        for extra in re.findall(r"\[([\w,-]+)\]", name if (local or name.startswith("mrecordlog")) else ""):
            problems += [f"{requirement}: no extra {part!r}" for part in extra.split(",") if part not in extras]
    return problems


def test_every_pip_install_can_install_mrecordlog() -> None:
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    installs = list(pip_installs())
    assert len(installs) >= 3
    problems = [
        f"{page}: pip install {' '.join(words)}: {problem}"
        for page, words in installs
        for problem in install_problems(words, extras)
    ]
    assert not problems, "\n".join(problems)


def test_install_checks_have_teeth() -> None:
    extras = {"oracle", "dev"}
    assert install_problems(["mrecordlog[oracle]"], extras)
    assert install_problems(["mrecordlog"], extras)
    assert install_problems(["-e", ".[nope]"], extras)
    assert not install_problems(["-e", ".[oracle]"], extras)
    assert not install_problems(["."], extras)
    assert not install_problems(["mrecordlog[oracle] @ git+<repository-url>"], extras)
    assert not install_problems(["mypy"], extras)
