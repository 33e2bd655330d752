"""The model against recorded reality, and against its own rules.

The model replays every recorded mrecordlog 0.5 vector: its answers equal the
peer's (error kinds included, ``wal_bytes_written`` and messages aside) and
its final state equals the peer's ``state.json``.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from mrecordlog import model
from mrecordlog.model import MAX_U64, Model, ModelError
from tests.test_vectors import WITH_OPS

_BYTE_LEVEL = {"i", "message", "wal_bytes_written"}


@pytest.mark.parametrize("vector", WITH_OPS, ids=lambda v: v.name)
def test_model_agrees_with_every_recorded_vector(vector: Path) -> None:
    m = Model()
    ops = [json.loads(line) for line in (vector / "ops.jsonl").read_text(encoding="utf-8").splitlines() if line]
    expected: list[dict[str, Any]] = [
        json.loads(line) for line in (vector / "results.jsonl").read_text(encoding="utf-8").splitlines() if line
    ]
    for op, theirs in zip(ops, expected, strict=True):
        assert m.apply(op) == {k: v for k, v in theirs.items() if k not in _BYTE_LEVEL}, op
    assert m.state_json() == (vector / "state.json").read_text(encoding="utf-8")


def test_model_imports_nothing_of_the_core() -> None:
    tree = ast.parse(Path(model.__file__).read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert not {name for name in imported if name.startswith("mrecordlog")}
    assert imported <= {"__future__", "copy", "json", "dataclasses", "typing"}


def test_model_stays_small_enough_to_read_in_one_sitting() -> None:
    assert len(Path(model.__file__).read_text(encoding="utf-8").splitlines()) < 300


def test_refused_operations_leave_the_model_unchanged() -> None:
    m = Model()
    m.create_queue("q")
    m.append("q", [b"a", b"b"])
    before = m.state_json()
    for op in (
        {"op": "create_queue", "queue": "q"},
        {"op": "append", "queue": "q", "position": 0, "payloads": ["00"]},
        {"op": "append", "queue": "q", "position": MAX_U64 - 1, "payloads": ["00", "01"]},
        {"op": "append", "queue": "missing", "position": None, "payloads": ["00"]},
        {"op": "truncate", "queue": "missing", "position": 0},
        {"op": "delete_queue", "queue": "missing"},
        {"op": "truncate", "queue": "q", "position": -1},
    ):
        assert m.apply(op)["ok"] is False
        assert m.state_json() == before


def test_model_truncation_beyond_the_largest_position_is_capped() -> None:
    m = Model()
    m.create_queue("q")
    m.append("q", [b"x"], MAX_U64 - 1)
    assert m.truncate("q", MAX_U64) == 1
    assert m.queues["q"].next_position == MAX_U64
    with pytest.raises(ModelError) as raised:
        m.append("q", [b"y"])
    assert raised.value.kind == "PositionOverflow"
    assert m.append("q", [b"y"], MAX_U64 - 1) is None
