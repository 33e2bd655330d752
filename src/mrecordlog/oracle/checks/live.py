"""The live check: Hypothesis drives the implementation and the model side by side.

The operation sequences come from the same strategies as the test suite's
state machine (``oracle.strategies``), restricted to the announced operations,
profiles and file sizes. Every answer is compared with the model's; at
intervals, and after every close and open, the whole state too. A difference
that a known deviation explains (``oracle.deviations``) gets its class; if the
baseline lists it, the example goes on with the deviation's model and counts
as known. A difference of a new class is shrunk by Hypothesis and kept with
the JSONL requests of the shrunk run; one of a class already kept is counted
and the example ends. Needs Hypothesis (the ``oracle`` extra).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from hypothesis import HealthCheck, Phase, Verbosity, reject, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import Flaky, Unsatisfiable
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from mrecordlog.model import Model
from mrecordlog.oracle.conformance import CheckContext
from mrecordlog.oracle.deviations import Exchange, explaining_answer_deviation, predicted
from mrecordlog.oracle.strategies import (
    APPEND_POSITIONS,
    TRUNCATE_POSITIONS,
    append_position,
    batches,
    queue_names,
    truncate_position,
)

BLOCK = 32768
EXAMPLES_PER_BATCH = 10
STEPS_PER_EXAMPLE = 40


class Disagreement(AssertionError):
    def __init__(self, failure_class: str, request: dict[str, Any], expected: Any, got: Any) -> None:
        super().__init__(f"[{failure_class}] request {request}: expected {expected}, got {got}")
        self.failure_class = failure_class
        self.request = request
        self.expected = expected
        self.got = got


class ShrinkTimeUp(BaseException):
    """Ends Hypothesis' shrinking when the check's shrink time is spent (a
    ``BaseException``, so that Hypothesis lets it through)."""


@dataclass
class LiveOutcome:
    # The requests of the last example run (after a failure: the shrunk one).
    reproducer: list[dict[str, Any]] = field(default_factory=list)
    # The shortest failing example of the current batch: what is reported
    # when shrinking runs out of time.
    smallest: tuple[list[dict[str, Any]], Disagreement] | None = None


class AdapterVersusModel(RuleBasedStateMachine):
    """Set ``context`` and ``outcome`` on a subclass."""

    context: ClassVar[CheckContext]
    outcome: ClassVar[LiveOutcome]

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.sent: list[dict[str, Any]] = []
        self.exchanges: list[Exchange] = []
        self.directory = self.context.fresh_directory("live")
        self.open_request: dict[str, Any] = {}
        self.steps = 0
        self.known_class: str | None = None
        self.failed_class: str | None = None
        self.raised = False

    # -- talking to the adapter ------------------------------------------------

    def _send(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.outcome.smallest is not None and not self.context.shrink_time_left():
            raise ShrinkTimeUp
        self.sent.append(request)
        return self.context.request(request)

    def _differs(
        self, failure_class: str, request: dict[str, Any], expected: Any, got: Any, *, explainable: bool = True
    ) -> None:
        """A difference: explained by a known deviation, counted, or raised."""
        explained = explaining_answer_deviation(self.exchanges) if explainable else None
        if explained is not None:
            failure_class, model = explained
            if self.context.is_known(failure_class):
                self.model = model
                self.known_class = self.known_class or failure_class
                return
        if failure_class in self.context.baseline or not self.context.wants_reproducer(failure_class):
            self.failed_class = failure_class
            reject()  # counted in teardown; the example cannot go on meaningfully
        self._raise(Disagreement(failure_class, request, expected, got))

    def _raise(self, disagreement: Disagreement) -> None:
        self.raised = True  # counted once, by run_live_check, after shrinking
        smallest = self.outcome.smallest
        if smallest is None or len(self.sent) < len(smallest[0]):
            self.outcome.smallest = (list(self.sent), disagreement)
        raise disagreement

    def _exchange(self, request: dict[str, Any]) -> None:
        answer = self._send(request)
        self.exchanges.append(Exchange("op", request, answer))
        if answer.get("error") == "Unsupported":
            self._differs("announced_unsupported", request, "an answer", answer, explainable=False)
            return
        expected = self.model.apply(request)
        if predicted(answer) != expected:
            self._differs("wrong_answer", request, expected, predicted(answer))
        self.steps += 1

    def _compare_state(self, failure_class: str) -> None:
        answer = self._send({"op": "state"})
        got = answer.get("state", answer) if answer.get("ok") else answer
        self.exchanges.append(Exchange("state", {"op": "state"}, got))
        expected = self.model.state_json_value()
        if got != expected:
            self._differs(failure_class, {"op": "state"}, expected, got)

    def teardown(self) -> None:
        if self.open_request:
            self.context.request({"op": "close"})
        self.outcome.reproducer = self.sent
        if self.raised:
            pass
        elif self.failed_class is not None:
            self.context.failed(self.failed_class, "", {"requests": self.sent})
        elif self.known_class is not None:
            self.context.known(self.known_class)
        else:
            self.context.passed()
        self.context.tick()

    # -- rules -----------------------------------------------------------------

    @initialize(data=st.data(), blocks=st.integers(1, 4))
    def open_log(self, data: st.DataObject, blocks: int) -> None:
        capabilities = self.context.capabilities
        checksum = data.draw(st.sampled_from(sorted(capabilities.checksums)), label="checksum")
        self.open_request = {
            "op": "open",
            "dir": self.directory,
            "file_num_bytes": capabilities.file_sizes.nearest(blocks * BLOCK),
            "checksum": checksum,
        }
        answer = self._send(self.open_request)
        if not answer.get("ok") or answer.get("num_queues") != 0:
            self.failed_class = "announced_unsupported" if answer.get("error") == "Unsupported" else "open_refused"
            if self.context.wants_reproducer(self.failed_class):
                failure_class, self.failed_class = self.failed_class, None
                self._raise(Disagreement(failure_class, self.open_request, {"ok": True, "num_queues": 0}, answer))
            self.open_request = {}
            reject()

    @precondition(lambda self: "create_queue" in self.context.capabilities.ops)
    @rule(queue=queue_names)
    def create_queue(self, queue: str) -> None:
        self._exchange({"op": "create_queue", "queue": queue})

    @precondition(lambda self: "delete_queue" in self.context.capabilities.ops)
    @rule(queue=queue_names)
    def delete_queue(self, queue: str) -> None:
        self._exchange({"op": "delete_queue", "queue": queue})

    @precondition(lambda self: "append" in self.context.capabilities.ops)
    @rule(queue=queue_names, kind=st.sampled_from(APPEND_POSITIONS), delta=st.integers(0, 3), batch=batches)
    def append(self, queue: str, kind: str, delta: int, batch: list[bytes]) -> None:
        q = self.model.queues.get(queue)
        position = append_position(kind, delta, q.next_position if q is not None else 0)
        if position is not None and position < 0:
            position = 0
        self._exchange({"op": "append", "queue": queue, "position": position, "payloads": [p.hex() for p in batch]})

    @precondition(lambda self: "truncate" in self.context.capabilities.ops)
    @rule(queue=queue_names, kind=st.sampled_from(TRUNCATE_POSITIONS), delta=st.integers(0, 2))
    def truncate(self, queue: str, kind: str, delta: int) -> None:
        position = truncate_position(kind, delta, self.model.queues.get(queue))
        self._exchange({"op": "truncate", "queue": queue, "position": position})

    @precondition(lambda self: "persist" in self.context.capabilities.ops)
    @rule(fsync=st.booleans())
    def persist(self, fsync: bool) -> None:
        self._exchange({"op": "persist", "fsync": fsync})

    @rule()
    def reopen(self) -> None:
        answer = self._send({"op": "close"})
        if not answer.get("ok"):
            self._differs("reopen_state", {"op": "close"}, {"ok": True, "op": "close"}, answer, explainable=False)
        request = {key: value for key, value in self.open_request.items() if key != "checksum"}
        answer = self._send(request)
        self.exchanges.append(Exchange("open", request, answer.get("num_queues")))
        expected = {"ok": True, "op": "open", "num_queues": len(self.model.queues)}
        if predicted(answer) != expected:
            self._differs("reopen_state", request, expected, predicted(answer))
        self._compare_state("reopen_state")

    @invariant()
    def same_state_at_intervals(self) -> None:
        if self.open_request and self.steps % 4 == 3:
            self._compare_state("wrong_state")


def run_live_check(context: CheckContext) -> None:
    """Run the machine in seeded batches until the deadline."""
    outcome = LiveOutcome()
    run_settings = settings(
        max_examples=EXAMPLES_PER_BATCH,
        stateful_step_count=STEPS_PER_EXAMPLE,
        deadline=None,
        derandomize=False,
        database=None,
        phases=(Phase.generate, Phase.shrink),
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    batch = 0
    while context.time_left():
        machine = type("Live", (AdapterVersusModel,), {"context": context, "outcome": outcome})
        outcome.smallest = None
        try:
            run_state_machine_as_test(hypothesis_seed(context.seed * 7919 + batch)(machine), settings=run_settings)
        except Disagreement as exc:
            _report(context, outcome.reproducer, exc)
        except Unsatisfiable:
            pass  # every example ended early on a class already kept: each was counted
        except (ShrinkTimeUp, Flaky) as exc:
            if outcome.smallest is not None and not context.shrink_time_left():
                # Shrinking was cut short (Hypothesis may see the cut as flaky
                # data generation): the shortest failing example seen.
                _report(context, *outcome.smallest)
            else:  # the same requests were answered differently
                context.failed(
                    "nondeterministic",
                    f"{type(exc).__name__}: {_short(str(exc))}",
                    {"requests": outcome.reproducer},
                )
        batch += 1


def _report(context: CheckContext, requests: list[dict[str, Any]], exc: Disagreement) -> None:
    context.failed(
        exc.failure_class,
        f"{exc.request.get('op')}: expected {_short(exc.expected)}, got {_short(exc.got)}",
        {"requests": requests, "expected": exc.expected, "got": exc.got},
    )


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 300 else text[:300] + "..."
