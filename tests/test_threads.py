"""A log shared between threads (issue 13, item 3).

Four seeded threads hammer one log with mixed calls: appends to a shared
queue and to their own, truncations, reads, range iterations, creations and
deletions of a queue they share. The log's lock is replaced by a recording
one that numbers each call's (outermost) acquisition: the order in which the
calls took effect. Replaying every call on the model in that order must give
every answer the threads got, and the final state. Each call must have taken
the lock exactly once (a public method that forgot it shows up here).

With the lock planted away (it numbers calls as they enter, but excludes
nothing) the same check fails: the test has teeth. A tiny switch interval
makes the interpreter switch threads every few bytecodes, so races show up in
one run.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mrecordlog import Always, MRecordLogError, MultiRecordLog, PersistAction, QueueModifiedDuringIteration
from mrecordlog.model import Model, ModelError

THREADS = 4
CALLS_PER_THREAD = 250
BLOCK = 32768
SHARED = "shared"
CHURN = "churn"  # created and deleted by every thread


class RecordingLock:
    """The log's re-entrant lock, numbering each outermost acquisition.

    ``excludes=False`` is the planted bug: calls are numbered as they enter,
    and nothing stops them from running at the same time."""

    def __init__(self, *, excludes: bool = True) -> None:
        self._lock = threading.RLock() if excludes else None
        self._numbers = itertools.count()
        self._local = threading.local()

    def taken(self) -> list[int]:
        """The numbers of this thread's outermost acquisitions since the last call."""
        taken: list[int] = getattr(self._local, "taken", [])
        self._local.taken = []
        return taken

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock is not None:
            self._lock.acquire(blocking, timeout)
        depth = getattr(self._local, "depth", 0)
        if not depth:
            self._local.__dict__.setdefault("taken", []).append(next(self._numbers))
        self._local.depth = depth + 1
        return True

    def release(self) -> None:
        self._local.depth -= 1
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


@dataclass
class Call:
    number: int  # when it took effect: the lock's number
    thread: int
    name: str
    args: tuple[Any, ...]
    outcome: tuple[str, Any]


def _outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("ok", call())
    except MRecordLogError as exc:
        return ("error", exc.kind)


def _model_outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("ok", call())
    except ModelError as exc:
        return ("error", exc.kind)


class Worker:
    def __init__(self, log: MultiRecordLog, lock: RecordingLock, index: int, seed: int) -> None:
        self.log = log
        self.lock = lock
        self.index = index
        self.rng = random.Random(f"{seed}-{index}")
        self.own = f"own-{index}"
        self.calls: list[Call] = []
        self.problems: list[str] = []
        self.ranges: list[tuple[str, list[tuple[int, bytes]]]] = []
        self.last_shared = -1  # the last position this thread appended to the shared queue
        self.counter = 0

    def payload(self) -> bytes:
        self.counter += 1
        return f"{self.index}:{self.counter}:".encode() + bytes(self.rng.randrange(40))

    def call(self, name: str, args: tuple[Any, ...], method: Callable[..., Any]) -> Any:
        """``method(*args)``, recorded with the number of its lock acquisition."""
        self.lock.taken()
        outcome = _outcome(lambda: method(*args))
        taken = self.lock.taken()
        if len(taken) != 1:
            self.problems.append(f"{name}{args} took the log's lock {len(taken)} times")
            return outcome
        self.calls.append(Call(taken[0], self.index, name, args, outcome))
        return outcome

    def iterate(self, queue: str) -> None:
        """A range over ``queue`` read to its end: each step takes the lock."""
        records: list[tuple[int, bytes]] = []
        try:
            for record in self.log.range(queue):
                records.append((record.position, record.payload))
        except QueueModifiedDuringIteration:
            pass
        except MRecordLogError as exc:
            if exc.kind != "MissingQueue":
                self.problems.append(f"range({queue!r}) raised {exc!r}")
        self.lock.taken()
        positions = [position for position, _ in records]
        if positions != sorted(set(positions)):
            self.problems.append(f"range({queue!r}) gave positions out of order: {positions}")
        self.ranges.append((queue, records))

    def run(self) -> None:
        log = self.log

        def append(queue: str, batch: list[bytes]) -> int | None:
            return log.append_records(queue, batch).last_position

        def truncate(queue: str, position: int) -> int:
            return log.truncate(queue, position).evicted_records

        self.call("create_queue", (self.own,), lambda queue: log.create_queue(queue) and None)
        for _ in range(CALLS_PER_THREAD):
            choice = self.rng.randrange(100)
            if choice < 35:
                batch = [self.payload() for _ in range(self.rng.randint(1, 3))]
                ok, last = self.call("append", (SHARED, batch), append)
                if ok == "ok":
                    self.last_shared = last
            elif choice < 50:
                batch = [self.payload() for _ in range(self.rng.randint(1, 3))]
                self.call("append", (self.own, batch), append)
            elif choice < 58:
                batch = [self.payload()]
                self.call("append", (CHURN, batch), append)
            elif choice < 65 and self.last_shared >= 0:
                # At or below a position that exists: the shared positions stay contiguous.
                position = max(0, self.last_shared - self.rng.randrange(8))
                self.call("truncate", (SHARED, position), truncate)
            elif choice < 70:
                position = self.counter
                self.call("truncate", (self.own, position), truncate)
            elif choice < 75:
                self.call("create_queue", (CHURN,), lambda queue: log.create_queue(queue) and None)
            elif choice < 80:
                self.call("delete_queue", (CHURN,), lambda queue: log.delete_queue(queue) and None)
            elif choice < 85:
                self.call("last_record", (SHARED,), lambda queue: _record(log.last_record(queue)))
            elif choice < 90:
                self.call("next_position", (SHARED,), log.next_position)
            elif choice < 93:
                self.call("queue_exists", (CHURN,), log.queue_exists)
            else:
                self.iterate(self.rng.choice((SHARED, self.own, CHURN)))


def _record(record: Any) -> tuple[int, bytes] | None:
    return None if record is None else (record.position, record.payload)


def _apply(model: Model, call: Call) -> tuple[str, Any]:
    queue, *rest = call.args
    if call.name == "create_queue":
        return _model_outcome(lambda: model.create_queue(queue))
    if call.name == "delete_queue":
        return _model_outcome(lambda: model.delete_queue(queue))
    if call.name == "append":
        return _model_outcome(lambda: model.append(queue, rest[0]))
    if call.name == "truncate":
        return _model_outcome(lambda: model.truncate(queue, rest[0]))
    if call.name == "last_record":
        return _model_outcome(lambda: model.last_record(queue))
    if call.name == "next_position":
        return _model_outcome(lambda: model.queues[queue].next_position)
    if call.name == "queue_exists":
        return ("ok", queue in model.queues)
    raise AssertionError(call.name)


def hammer(directory: Path, seed: int, lock: RecordingLock) -> list[str]:
    """Run the threads on one log; return every disagreement with the model
    applied in the order the lock numbered the calls (none when the log is
    thread-safe)."""
    problems: list[str] = []
    log = MultiRecordLog.open(directory, file_num_bytes=BLOCK, persist_policy=Always(PersistAction.FLUSH))
    try:
        log.create_queue(SHARED)
        log._mutex = lock  # type: ignore[assignment]
        workers = [Worker(log, lock, index, seed) for index in range(THREADS)]
        crashes: list[str] = []

        def run(worker: Worker) -> None:
            try:
                worker.run()
            except BaseException as exc:  # a race may break the core in any way
                crashes.append(f"thread {worker.index} raised {exc!r}")

        threads = [threading.Thread(target=run, args=(worker,)) for worker in workers]
        previous = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            sys.setswitchinterval(previous)
        problems += crashes
        for worker in workers:
            problems += worker.problems
        calls = sorted((call for worker in workers for call in worker.calls), key=lambda call: call.number)
        if [call.number for call in calls] != sorted({call.number for call in calls}):
            problems.append("two calls took the lock under one number")
        model = Model()
        model.create_queue(SHARED)
        for call in calls:
            expected = _apply(model, call)
            if expected != call.outcome:
                problems.append(
                    f"call #{call.number} of thread {call.thread}, {call.name}{call.args!r:.80}: "
                    f"the log answered {call.outcome!r:.80}, the model in lock order {expected!r:.80}"
                )
        if log.state().to_json_value() != model.state_json_value():
            problems.append("the final state differs from the model's")
        # Each shared append got distinct positions, contiguous from 0, and
        # each payload is what a range reads at its position.
        appended: dict[int, bytes] = {}
        for call in calls:
            if call.name == "append" and call.args[0] == SHARED and call.outcome[0] == "ok":
                batch = call.args[1]
                first = call.outcome[1] - len(batch) + 1
                for offset, payload in enumerate(batch):
                    if first + offset in appended:
                        problems.append(f"position {first + offset} of the shared queue was given twice")
                    appended[first + offset] = payload
        if sorted(appended) != list(range(len(appended))):
            problems.append("the shared queue's positions are not contiguous from 0")
        for worker in workers:
            for queue, records in worker.ranges:
                if queue == SHARED and any(appended.get(position) != payload for position, payload in records):
                    problems.append(f"a range of thread {worker.index} read a payload at another position")
        if problems:
            return problems
        log.close()
        with MultiRecordLog.open(directory) as reopened:
            if reopened.state().to_json_value() != model.state_json_value():
                problems.append("the reopened log differs from the model's final state")
        return problems
    finally:
        log._mutex = threading.RLock()
        with contextlib.suppress(MRecordLogError):  # a race may have fail-stopped it
            log.close()


@pytest.mark.parametrize("seed", range(3))
def test_threads_sharing_a_log_behave_as_the_model_in_the_lock_order(tmp_path: Path, seed: int) -> None:
    problems = hammer(tmp_path, seed, RecordingLock())
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize("seed", range(3))
def test_without_the_lock_the_threads_test_fails(tmp_path: Path, seed: int) -> None:
    problems = hammer(tmp_path, seed, RecordingLock(excludes=False))
    assert problems, "the planted race went unnoticed"
    print(f"seed {seed}: {len(problems)} disagreement(s), the first: {problems[0]}")


def test_a_range_iterator_takes_the_lock_for_each_step(tmp_path: Path) -> None:
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        log.append_records("q", [b"a", b"b", b"c"])
        lock = RecordingLock()
        log._mutex = lock  # type: ignore[assignment]
        iterator: Iterator[Any] = log.range("q")
        lock.taken()
        assert [next(iterator) for _ in range(3)]
        assert len(lock.taken()) == 3
        assert next(iterator, None) is None
        assert len(lock.taken()) == 1
        log._mutex = threading.RLock()


def test_a_fork_while_another_thread_holds_the_log_waits_and_the_child_can_use_its_locks(tmp_path: Path) -> None:
    """The fork hook takes each log's lock before the fork: a fork while a
    call runs in another thread waits for that call, and in the child the
    lock is free (the child has no thread that could release it otherwise)."""
    import os

    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    with MultiRecordLog.open(tmp_path) as log:
        log.create_queue("q")
        entered, release = threading.Event(), threading.Event()
        finished: list[bool] = []

        def hold() -> None:
            with log._mutex:
                entered.set()
                release.wait(10)
                log.append_record("q", b"in flight")
                finished.append(True)

        holder = threading.Thread(target=hold)
        holder.start()
        entered.wait(10)
        threading.Timer(0.2, release.set).start()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                got = log._mutex.acquire(timeout=5)
                state = [r.payload for r in log.range("q")]
                os.write(write, b"ok" if got and state == [b"in flight"] else repr((got, state)).encode())
            finally:
                os._exit(0)
        os.close(write)
        report = os.read(read, 4096)
        os.close(read)
        os.waitpid(pid, 0)
        holder.join()
        assert finished == [True]
        assert report == b"ok", report
