"""The output a page shows for a Python example is that example's output.

A ```text block that follows a ```python block, with nothing between them but
the paragraph ``The example prints:``, is the standard output of that example:
the example is run (as tests/test_docs_examples.py runs it, in a temporary
working directory) and what it prints must be the text block, byte for byte.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
_FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>[^`\n]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.MULTILINE | re.DOTALL)
MARKER = "The example prints:"


def shown_outputs(path: Path) -> list[tuple[str, str, str]]:
    """(id, the example's source, the output shown) of each such pair."""
    text = path.read_text(encoding="utf-8")
    fences = list(_FENCE.finditer(text))
    pairs = []
    for before, after in itertools.pairwise(fences):
        between = text[before.end() : after.start()].strip()
        if before["info"].strip() == "python" and after["info"].strip() == "text" and between == MARKER:
            line = text.count("\n", 0, before.start("body")) + 1
            pairs.append((f"{path.name}:{line}", "\n" * (line - 1) + before["body"], after["body"]))
    return pairs


PAIRS = [pair for path in sorted(DOCS.glob("*.md")) for pair in shown_outputs(path)]


def test_the_marker_is_only_used_between_an_example_and_its_output() -> None:
    uses = sum(path.read_text(encoding="utf-8").count(MARKER) for path in DOCS.glob("*.md"))
    assert uses == len(PAIRS) >= 1


@pytest.mark.parametrize(("source", "shown"), [pytest.param(source, shown, id=name) for name, source, shown in PAIRS])
def test_the_output_shown_is_the_examples(
    source: str, shown: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(source, "example", "exec"), {"__name__": "__docs_example__"})
    assert printed.getvalue() == shown
