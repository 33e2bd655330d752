"""The live conformance check: Hypothesis drives an implementation and the model.

The operation sequences come from the same strategies as the test suite's
state machine (``oracle.strategies``). Every answer is compared with the
model's; at intervals, and after every close and open, the whole state too. A
disagreement is shrunk by Hypothesis and reported as the JSONL requests of the
shrunk run. Needs Hypothesis (the ``oracle`` extra).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from mrecordlog.model import Model
from mrecordlog.oracle.adapters import Adapter
from mrecordlog.oracle.strategies import (
    APPEND_POSITIONS,
    TRUNCATE_POSITIONS,
    append_position,
    batches,
    queue_names,
    truncate_position,
)

BLOCK = 32768
# The fields of an answer that the model predicts (wal_bytes_written and the
# message are the implementation's own business here).
_COMPARED = ("ok", "op", "error", "last_position", "evicted_records", "num_queues")


class Disagreement(AssertionError):
    def __init__(self, request: dict[str, Any], expected: Any, got: Any) -> None:
        super().__init__(f"request {request}: expected {expected}, got {got}")
        self.request = request
        self.expected = expected
        self.got = got


@dataclass
class LiveOutcome:
    examples: int = 0
    unsupported: set[str] = field(default_factory=set)
    failure: Disagreement | None = None
    reproducer: list[dict[str, Any]] = field(default_factory=list)


def _predicted(answer: dict[str, Any]) -> dict[str, Any]:
    return {key: answer[key] for key in _COMPARED if key in answer}


class AdapterVersusModel(RuleBasedStateMachine):
    """Set ``adapter``, ``workdir``, ``supported`` and ``outcome`` on a subclass."""

    adapter: ClassVar[Adapter]
    workdir: ClassVar[str]
    supported: ClassVar[set[str]]
    outcome: ClassVar[LiveOutcome]
    counter: ClassVar[list[int]]

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.sent: list[dict[str, Any]] = []
        self.counter[0] += 1
        self.directory = os.path.join(self.workdir, f"live-{self.counter[0]}")
        self.open_request: dict[str, Any] = {}
        self.steps = 0

    def _send(self, request: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(request)
        answer = self.adapter.request(request)
        if answer.get("error") == "Unsupported":
            self.outcome.unsupported.add(str(request.get("op")))
        return answer

    def _exchange(self, request: dict[str, Any]) -> None:
        answer = self._send(request)
        if answer.get("error") == "Unsupported":
            return
        expected = self.model.apply(request)
        if _predicted(answer) != expected:
            raise Disagreement(request, expected, _predicted(answer))
        self.steps += 1

    def teardown(self) -> None:
        if self.open_request:
            self.adapter.request({"op": "close"})
        self.outcome.examples += 1
        self.outcome.reproducer = self.sent

    @initialize(checksum=st.sampled_from(["crc32c", "crc32"]), blocks=st.integers(1, 4))
    def open_log(self, checksum: str, blocks: int) -> None:
        self.open_request = {
            "op": "open",
            "dir": self.directory,
            "file_num_bytes": blocks * BLOCK,
            "checksum": checksum,
        }
        answer = self._send(self.open_request)
        if not answer["ok"] or answer.get("num_queues") != 0:
            raise Disagreement(self.open_request, {"ok": True, "op": "open", "num_queues": 0}, answer)

    @precondition(lambda self: "create_queue" in self.supported)
    @rule(queue=queue_names)
    def create_queue(self, queue: str) -> None:
        self._exchange({"op": "create_queue", "queue": queue})

    @precondition(lambda self: "delete_queue" in self.supported)
    @rule(queue=queue_names)
    def delete_queue(self, queue: str) -> None:
        self._exchange({"op": "delete_queue", "queue": queue})

    @precondition(lambda self: "append" in self.supported)
    @rule(queue=queue_names, kind=st.sampled_from(APPEND_POSITIONS), delta=st.integers(0, 3), batch=batches)
    def append(self, queue: str, kind: str, delta: int, batch: list[bytes]) -> None:
        q = self.model.queues.get(queue)
        position = append_position(kind, delta, q.next_position if q is not None else 0)
        if position is not None and position < 0:
            position = 0
        self._exchange({"op": "append", "queue": queue, "position": position, "payloads": [p.hex() for p in batch]})

    @precondition(lambda self: "truncate" in self.supported)
    @rule(queue=queue_names, kind=st.sampled_from(TRUNCATE_POSITIONS), delta=st.integers(0, 2))
    def truncate(self, queue: str, kind: str, delta: int) -> None:
        position = truncate_position(kind, delta, self.model.queues.get(queue))
        self._exchange({"op": "truncate", "queue": queue, "position": position})

    @precondition(lambda self: "persist" in self.supported)
    @rule(fsync=st.booleans())
    def persist(self, fsync: bool) -> None:
        self._exchange({"op": "persist", "fsync": fsync})

    @rule()
    def reopen(self) -> None:
        answer = self._send({"op": "close"})
        if not answer["ok"]:
            raise Disagreement({"op": "close"}, {"ok": True, "op": "close"}, answer)
        request = {key: value for key, value in self.open_request.items() if key != "checksum"}
        answer = self._send(request)
        expected = {"ok": True, "op": "open", "num_queues": len(self.model.queues)}
        if _predicted(answer) != expected:
            raise Disagreement(request, expected, _predicted(answer))
        self._compare_state()

    def _compare_state(self) -> None:
        answer = self._send({"op": "state"})
        expected = self.model.state_json_value()
        if not answer["ok"] or answer.get("state") != expected:
            raise Disagreement({"op": "state"}, expected, answer.get("state", answer))

    @invariant()
    def same_state_at_intervals(self) -> None:
        if self.open_request and self.steps % 4 == 3:
            self._compare_state()


def run_live(
    adapter: Adapter,
    *,
    supported: set[str],
    workdir: str,
    seed: int,
    budget_seconds: float,
    progress: Callable[[], None] | None = None,
) -> LiveOutcome:
    """Run the machine in seeded batches until the budget is spent or it fails."""
    outcome = LiveOutcome()
    deadline = time.perf_counter() + budget_seconds
    counter = [0]
    batch = 0
    run_settings = settings(
        max_examples=10,
        stateful_step_count=40,
        deadline=None,
        derandomize=False,
        database=None,
        phases=(Phase.generate, Phase.shrink),
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    while time.perf_counter() < deadline:
        machine = type(
            "Live",
            (AdapterVersusModel,),
            {"adapter": adapter, "workdir": workdir, "supported": supported, "outcome": outcome, "counter": counter},
        )
        try:
            run_state_machine_as_test(hypothesis_seed(seed * 7919 + batch)(machine), settings=run_settings)
        except Disagreement as exc:
            outcome.failure = exc
            return outcome
        batch += 1
        if progress is not None:
            progress()
    return outcome
