"""The documentation's code examples, run as tests.

Every fenced block in ``docs/*.md`` whose info string is ``python`` is executed
in a fresh namespace with a temporary directory as the working directory, so
the docs cannot drift from the library's behaviour. Blocks marked
``python no-run`` (signatures, fragments) are skipped. A block marked
``python file=NAME`` is a file the page shows in full: it is not run itself,
but written as ``NAME`` into the working directory of every block of its page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.test_cli_docs import runs_a_campaign

DOCS = Path(__file__).resolve().parent.parent / "docs"

# An opening fence of three or more backticks with its info string, the body,
# and a closing fence of the same length (CommonMark, without indentation).
_FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>[^`\n]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Example:
    path: Path
    line: int
    info: tuple[str, ...]
    source: str

    @property
    def id(self) -> str:
        return f"{self.path.name}:{self.line}"

    @property
    def file_name(self) -> str | None:
        for token in self.info[1:]:
            if token.startswith("file="):
                return token.removeprefix("file=")
        return None

    @property
    def runs(self) -> bool:
        return "no-run" not in self.info[1:] and self.file_name is None


def extract_examples(path: Path) -> list[Example]:
    """The ``python`` blocks of a Markdown file, with the line each starts on."""
    text = path.read_text(encoding="utf-8")
    examples = []
    for match in _FENCE.finditer(text):
        info = tuple(match["info"].split())
        if info and info[0] == "python":
            line = text.count("\n", 0, match.start("body")) + 1
            examples.append(Example(path, line, info, match["body"]))
    return examples


EXAMPLES = [example for path in sorted(DOCS.glob("*.md")) for example in extract_examples(path)]


def test_docs_have_examples() -> None:
    assert DOCS.is_dir()
    assert sum(example.runs for example in EXAMPLES) >= 10


_NO_RUN = pytest.mark.skip(reason="python no-run block, or a file= block run by the others")


@pytest.mark.parametrize(
    "example",
    [
        pytest.param(
            example,
            id=example.id,
            marks=_NO_RUN if not example.runs else pytest.mark.campaign if runs_a_campaign(example.source) else (),
        )
        for example in EXAMPLES
    ],
)
def test_example(example: Example, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Padding with newlines keeps line numbers in tracebacks equal to the Markdown's.
    code = compile("\n" * (example.line - 1) + example.source, str(example.path), "exec")
    monkeypatch.chdir(tmp_path)
    for other in EXAMPLES:
        if other.path == example.path and other.file_name is not None:
            (tmp_path / other.file_name).write_text(other.source, encoding="utf-8")
    namespace: dict[str, object] = {"__name__": "__docs_example__"}
    exec(code, namespace)


def test_extract_examples(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "text\n"
        "```python\nx = 1\n```\n"
        "```console\n$ ls\n```\n"
        "````python no-run\n```\nnested\n```\n````\n"
        "```pycon\n>>> 1\n```\n",
        encoding="utf-8",
    )
    examples = extract_examples(page)
    assert [(e.line, e.info, e.source, e.runs) for e in examples] == [
        (3, ("python",), "x = 1\n", True),
        (9, ("python", "no-run"), "```\nnested\n```\n", False),
    ]
