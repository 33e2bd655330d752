"""The campaigns' shared driver for scaling out: the seed space, shards and
worker processes.

Every campaign draws its cases from a seed space of indices 0, 1, 2, ...: for
``crashcheck`` index i is the workload of seed ``S * 1_000_003 + i``, for
``fuzz`` the base log of that seed, for ``conformance`` a lane (every check
run with the seed ``lane_seed(S, i)``). A run takes one ``Part`` of that space:

- a shard ``K/N`` (K is 1-based) takes the indices i with ``i % N == K - 1``;
- its W workers take the shard's indices in turn: the shard's s-th index
  (s = i // N) goes to worker ``s % W`` (0-based).

So an index belongs to exactly one shard and one worker, whatever the budget
or the machine. A case depends only on its index, and a process runs its
indices in increasing order: W workers run the cases one process would (as
many as the budget allows), and shards 1/N .. N/N of a bounded run
(``--workloads``) together run exactly the cases of the unsharded run.

Workers are processes forked from this one on Linux when it runs no other
thread (they start in milliseconds, with every module imported), and started
with ``spawn`` otherwise (a fresh interpreter that imports what the job needs:
forking a process that runs threads, such as a test runner's, can deadlock).
Each runs its part of the campaign and sends pickled snapshots of its report (at most
every 0.2 s) and its final report through a queue; the parent merges them with
the campaign's merge, shows the merged progress, and sets the stop event when
the merged report asks for it (enough violations, a failure with
``--fail-fast``). Each worker checks the stop event, and whether its parent is
gone, between cases.

Ctrl-C: the workers are born with SIGINT blocked and then ignore it (the terminal
sends it to the whole process group); the parent sets the stop event, gives
them ``GRACE_SECONDS`` to return, then terminates (SIGTERM: the worker raises
SystemExit, so its ``finally`` blocks close what it opened, such as an adapter
process) and at last kills the stragglers. No worker outlives ``run_parallel``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from multiprocessing.context import ForkContext, SpawnContext
from types import FrameType
from typing import Any, Final, Protocol, TypeVar

__all__ = [
    "GRACE_SECONDS",
    "WHOLE",
    "Channel",
    "Part",
    "WorkerFailed",
    "available_cpus",
    "describe_scale",
    "merge_shards",
    "parse_shard",
    "parse_workers",
    "read_json_file",
    "reproducer_name",
    "run_campaign_in_workers",
    "run_parallel",
    "start_method",
]

GRACE_SECONDS: Final = 3.0
PROGRESS_SECONDS: Final = 0.2
R = TypeVar("R")


class TimedReport(Protocol):
    """A campaign's report: the driver sets its wall time."""

    seconds: float


T = TypeVar("T", bound=TimedReport)


@dataclass(frozen=True, slots=True)
class Part:
    """The seed indices one process runs: shard ``shard`` of ``shards``
    (1-based), worker ``worker`` of ``workers`` (0-based) within it."""

    shard: int = 1
    shards: int = 1
    worker: int = 0
    workers: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.shard <= self.shards:
            raise ValueError(f"shard {self.shard}/{self.shards}: K must be between 1 and N")
        if not 0 <= self.worker < self.workers:
            raise ValueError(f"worker {self.worker} of {self.workers}: must be between 0 and {self.workers - 1}")

    @property
    def label(self) -> str:
        """The shard as ``--shard`` spells it: ``K/N``."""
        return f"{self.shard}/{self.shards}"

    def owns(self, index: int) -> bool:
        return index % self.shards == self.shard - 1 and (index // self.shards) % self.workers == self.worker

    def indices(self, limit: int | None = None) -> Iterator[int]:
        """This part's seed indices in increasing order, below ``limit`` (None: all)."""
        index = self.shard - 1 + self.shards * self.worker
        step = self.shards * self.workers
        while limit is None or index < limit:
            yield index
            index += step

    def count(self, limit: int) -> int:
        """How many of this part's indices are below ``limit``."""
        first = self.shard - 1 + self.shards * self.worker
        step = self.shards * self.workers
        return 0 if limit <= first else (limit - first + step - 1) // step

    def of_worker(self, worker: int, workers: int) -> Part:
        """Worker ``worker`` of ``workers`` of this part's shard."""
        return replace(self, worker=worker, workers=workers)


# The whole seed space, in one process.
WHOLE: Final = Part()


def parse_shard(text: str) -> Part:
    """``K/N`` (1 <= K <= N): shard K of N. ValueError with a one-line message otherwise."""
    pieces = text.split("/")
    if len(pieces) != 2 or not all(piece.isdigit() and piece.isascii() for piece in pieces):
        raise ValueError(f"--shard {text!r}: expected K/N, two integers such as 1/4")
    shard, shards = int(pieces[0]), int(pieces[1])
    if shards < 1 or not 1 <= shard <= shards:
        raise ValueError(f"--shard {text}: K must be between 1 and N, and N at least 1 (K is 1-based)")
    return Part(shard, shards)


def available_cpus() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def parse_workers(text: str) -> int:
    """A positive integer, or ``auto`` (the CPUs this process may run on)."""
    if text == "auto":
        return available_cpus()
    if not (text.isdigit() and text.isascii()) or int(text) < 1:
        raise ValueError(f"--workers {text!r}: expected a positive integer or auto")
    return int(text)


class WorkerFailed(RuntimeError):
    """A worker process raised an exception or died; the message holds its traceback."""


# -- in the worker ---------------------------------------------------------------------


class Channel:
    """A worker's line to its parent: progress snapshots, and whether to stop."""

    def __init__(self, worker: int, messages: Any, stop: Any, parent: int) -> None:
        self.worker = worker
        self._messages = messages
        self._stop = stop
        self._parent = parent
        self._last = 0.0

    def stopped(self) -> bool:
        """The parent asked to stop, or is gone."""
        return bool(self._stop.is_set()) or os.getppid() != self._parent

    def progress(self, report: object, fraction: float = 0.0) -> None:
        """Send a snapshot of ``report`` (at most every ``PROGRESS_SECONDS``)."""
        now = time.monotonic()
        if now - self._last >= PROGRESS_SECONDS:
            self._last = now
            self.send("progress", report)

    def send(self, kind: str, payload: object) -> None:
        # Pickled here, not in the queue's feeder thread: the campaign goes on
        # changing its report.
        self._messages.put((kind, self.worker, pickle.dumps(payload)))


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _worker_main(
    job: Callable[[Part, Channel], object],
    part: Part,
    messages: Any,
    stop: Any,
    parent: int,
    initializer: Callable[[], None] | None,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGTERM, _terminated)
    channel = Channel(part.worker, messages, stop, parent)
    try:
        if initializer is not None:
            initializer()
        report = job(part, channel)
    except Exception:
        channel.send("error", traceback.format_exc())
    else:
        channel.send("done", report)


# -- in the parent ---------------------------------------------------------------------


def start_method() -> str:
    """``fork`` on Linux when this process runs no other thread, else ``spawn``."""
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return "fork"
    return "spawn"


def run_parallel(
    job: Callable[[Part, Channel], R],
    part: Part,
    workers: int,
    *,
    merge: Callable[[Sequence[R]], R],
    progress: Callable[[R], None] | None = None,
    stop_when: Callable[[R], bool] | None = None,
    initializer: Callable[[], None] | None = None,
) -> list[R]:
    """Run ``job(part_of_worker, channel)`` in ``workers`` processes (``job``
    and ``initializer`` must be picklable for ``spawn``: module-level
    functions or instances of module-level classes; ``initializer`` runs
    first in each worker). Returns the workers' reports in worker order. ``merge`` merges
    the latest snapshots for ``progress`` and ``stop_when``. A worker that
    raises or dies raises ``WorkerFailed`` here, after every worker stopped."""
    context: ForkContext | SpawnContext
    if start_method() == "fork":
        context = multiprocessing.get_context("fork")
    else:
        context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    stop = context.Event()
    parent = os.getpid()
    processes = [
        context.Process(
            target=_worker_main,
            args=(job, part.of_worker(worker, workers), messages, stop, parent, initializer),
            name=f"mrecordlog-worker-{worker}",
            daemon=True,
        )
        for worker in range(workers)
    ]
    latest: dict[int, R] = {}
    finished: dict[int, R] = {}
    try:
        with _sigint_blocked():  # the workers are born with SIGINT blocked
            for process in processes:
                process.start()
        silent_and_dead = 0
        while len(finished) < workers:
            try:
                kind, worker, payload = messages.get(timeout=0.5)
            except queue.Empty:
                dead = [w for w, p in enumerate(processes) if w not in finished and not p.is_alive()]
                silent_and_dead = silent_and_dead + 1 if dead else 0
                if silent_and_dead > 1:  # dead, and nothing came in the queue since
                    codes = ", ".join(f"worker {w} exit code {processes[w].exitcode}" for w in dead)
                    raise WorkerFailed(f"a worker died without a report ({codes})") from None
                continue
            value = pickle.loads(payload)
            if kind == "error":
                raise WorkerFailed(f"worker {worker} failed:\n{value}")
            if kind == "done":
                finished[worker] = value
            latest[worker] = value
            if progress is not None or stop_when is not None:
                merged = merge([latest[w] for w in sorted(latest)])
                if progress is not None:
                    progress(merged)
                if stop_when is not None and stop_when(merged):
                    stop.set()
    finally:
        with _sigint_blocked():  # a second Ctrl-C does not cut the cleanup short
            _stop_all(processes, messages, stop)
    return [finished[worker] for worker in range(workers)]


def _stop_all(processes: Sequence[Any], messages: Any, stop: Any) -> None:
    stop.set()
    started = [process for process in processes if process.pid is not None]
    deadline = time.monotonic() + GRACE_SECONDS
    while any(process.is_alive() for process in started) and time.monotonic() < deadline:
        # Keep the pipe drained: a worker cannot exit while its queue's data waits.
        with suppress(queue.Empty):
            messages.get(timeout=0.05)
    for process in started:
        if process.is_alive():
            process.terminate()
    for process in started:
        process.join(1.0)
        if process.is_alive():
            process.kill()
            process.join()
    messages.close()
    messages.cancel_join_thread()


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread for the duration (a no-op off the main thread
    or without ``pthread_sigmask``); a Ctrl-C meanwhile is delivered after."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def describe_scale(shards: Sequence[str], workers: int) -> str:
    """`` (shard 1/2, 2 workers)`` for a report's first line; empty for one unsharded process."""
    if list(shards) == ["1/1"] and workers == 1:
        return ""
    where = "" if list(shards) == ["1/1"] else f"shard{'s' if len(shards) > 1 else ''} {', '.join(shards)}, "
    return f" ({where}{workers} worker{'s' if workers != 1 else ''})"


def merge_shards(lists: Iterable[Sequence[str]]) -> list[str]:
    """The shards (``K/N``) of several reports, each once, in shard order."""
    shards = {shard for shard_list in lists for shard in shard_list}

    def key(shard: str) -> tuple[int, ...]:
        pieces = shard.split("/")
        if len(pieces) == 2 and all(piece.isdigit() for piece in pieces):
            return (int(pieces[1]), int(pieces[0]))
        return (-1,)

    return sorted(shards, key=key)


def read_json_file(path: str) -> object:
    """The JSON value in the file at ``path`` (a report, a reproducer);
    ``ValueError`` with a one-line reason otherwise."""
    try:
        with open(path, encoding="utf-8") as handle:
            value: object = json.load(handle)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"cannot read it: {exc}") from None
    return value


def reproducer_name(campaign: str, seed: int, part: Part, number: int) -> str:
    """``<campaign>-seed<S>-<N>.json``, with ``-shard<K>of<N>`` before the
    number in a sharded run: shards writing to one directory do not collide
    (the workers' reproducers are written by their parent, numbered once)."""
    shard = "" if part.shards == 1 else f"-shard{part.shard}of{part.shards}"
    return f"{campaign}-seed{seed}{shard}-{number}.json"


# -- a campaign in worker processes ---------------------------------------------------


@dataclass(frozen=True)
class _CampaignJob:
    """One worker's campaign: ``factory(seed, budget_seconds, progress=...,
    max_workloads=..., part=..., stop=..., **options).run()``. Sent to a
    worker process: ``factory`` is a module-level class (picklable)."""

    factory: Callable[..., Any]
    seed: int
    budget_seconds: float
    max_workloads: int | None
    options: dict[str, Any]

    def __call__(self, part: Part, channel: Channel) -> Any:
        campaign = self.factory(
            self.seed,
            self.budget_seconds,
            progress=channel.progress,
            max_workloads=self.max_workloads,
            part=part,
            stop=channel.stopped,
            **self.options,
        )
        return campaign.run()


def run_campaign_in_workers(
    factory: Callable[..., Any],
    seed: int,
    budget_seconds: float,
    *,
    workers: int,
    part: Part,
    max_workloads: int | None,
    progress: Callable[[T, float], None] | None,
    initializer: Callable[[], None] | None,
    options: dict[str, Any],
    merge: Callable[[Sequence[T]], T],
    cases_done: Callable[[T], int],
    stop_when: Callable[[T], bool] | None = None,
) -> T:
    """The campaign ``factory(seed, budget_seconds, ...)`` (``Campaign``,
    ``FuzzCampaign``) over the shard of ``part``, in ``workers`` processes
    (1: in this one, as ``factory(...).run()``). With more, each worker spends
    the whole budget once started, the report is the ``merge`` of the
    workers' and its ``seconds`` the wall time (their start included);
    ``progress`` sees the merged report and the fraction done (of the budget,
    or of ``max_workloads`` by ``cases_done``), and the workers stop together
    once ``stop_when`` holds for the merged report. ``initializer`` runs first
    in each worker process (a module-level function)."""
    if workers == 1:
        report: T = factory(
            seed, budget_seconds, progress=progress, max_workloads=max_workloads, part=part, **options
        ).run()
        return report
    started = time.perf_counter()
    job = _CampaignJob(factory, seed, budget_seconds, max_workloads, dict(options))
    expected = None if max_workloads is None else max(1, part.count(max_workloads))

    def merged_progress(merged: T) -> None:
        assert progress is not None
        merged.seconds = time.perf_counter() - started
        fraction = merged.seconds / budget_seconds if budget_seconds > 0 else 1.0
        if expected is not None:
            fraction = max(fraction, cases_done(merged) / expected)
        progress(merged, min(1.0, fraction))

    reports = run_parallel(
        job,
        part,
        workers,
        merge=merge,
        progress=merged_progress if progress is not None else None,
        stop_when=stop_when,
        initializer=initializer,
    )
    merged = merge(reports)
    merged.seconds = time.perf_counter() - started
    return merged
