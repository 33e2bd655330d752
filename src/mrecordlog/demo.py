"""A demo workload: several queues, rolling files, truncation and GC, reopen.

It writes a seeded mix of appends and truncations with small WAL files, checks
that a reopened log holds exactly the state the writer had, and prints what
happened. It is the README's main job until the crash campaign exists.
"""

from __future__ import annotations

import random
import sys
import time

from mrecordlog.log import MultiRecordLog
from mrecordlog.policy import Always, PersistAction

_QUEUES = ("orders", "clicks", "logs", "metrics", "empty")
_FILE_NUM_BYTES = 4 * 32768


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty():
        width = 40
        filled = width * done // total
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} records")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def run_demo(directory: str, *, records: int, seed: int) -> int:
    rng = random.Random(seed)
    started = time.perf_counter()
    bytes_written = 0
    evicted = 0
    max_files = 0
    with MultiRecordLog.open(
        directory, file_num_bytes=_FILE_NUM_BYTES, persist_policy=Always(PersistAction.FLUSH)
    ) as log:
        for queue in _QUEUES:
            if not log.queue_exists(queue):
                bytes_written += log.create_queue(queue).wal_bytes_written
        appended = 0
        step = max(1, records // 100)
        while appended < records:
            queue = rng.choice(_QUEUES[:-1])
            batch = [rng.randbytes(rng.choice((0, 1, 16, 200, 3000, 40000))) for _ in range(rng.randint(1, 5))]
            batch = batch[: records - appended]
            outcome = log.append_records(queue, batch)
            bytes_written += outcome.wal_bytes_written
            appended += len(batch)
            if rng.random() < 0.1:
                last = log.last_position(queue)
                if last is not None:
                    truncated = log.truncate(queue, max(0, last - rng.randint(0, 20)))
                    evicted += truncated.evicted_records
                    bytes_written += truncated.wal_bytes_written
            max_files = max(max_files, len(log.wal_file_numbers()))
            if appended // step != (appended - len(batch)) // step:
                _progress(appended, records)
        before = log.state()
    elapsed = time.perf_counter() - started
    with MultiRecordLog.open(directory) as reopened:
        after = reopened.state()
        files = reopened.wal_file_numbers()
        usage = reopened.resource_usage()
        report = reopened.recovery_report
    print(f"directory:        {directory}")
    print(f"appended:         {records} records, {bytes_written} WAL bytes in {elapsed:.2f} s")
    print(f"truncated:        {evicted} records evicted")
    print(f"WAL files:        at most {max_files} at once; now {len(files)} (numbers {files[0]}..{files[-1]})")
    print(f"after reopen:     {report.records_replayed} records replayed, profile {report.checksum_profile}")
    print(f"memory:           {usage.memory_used_bytes} bytes used, {usage.disk_used_bytes} bytes of disk")
    print("queues:")
    for name, queue_state in after.queues.items():
        first = queue_state.records[0].position if queue_state.records else None
        print(f"  {name:<10} next {queue_state.next_position:>6}  {len(queue_state.records):>6} records  first {first}")
    if after != before:
        print("MISMATCH: the reopened log differs from the state before close", file=sys.stderr)
        return 1
    print("reopened state equals the state before close: ok")
    return 0
