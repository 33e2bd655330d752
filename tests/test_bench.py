"""The benchmark suite runs end to end: ``python -m bench.run --quick --json``
at tiny sizes gives every workload a positive figure, and every peer a ratio.

No figure is judged: the benchmarks print them, a test cannot time them.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUEUES = 100  # --queues: the many-queues workload at 100 queues, 5 appends each (--quick)

EXPECTED_WORKLOADS = [
    "append 256 B x 1",
    "append 256 B x 16",
    "append 256 B x 256",
    "append 16 KiB x 1",
    "append 16 KiB x 16",
    "append 16 KiB x 256",
    "append+fsync 256 B x 1",
    "reopen 1 KiB records (crc32c)",
    "reopen 1 KiB records (crc32)",
    "range read 1 KiB records",
    f"queues {QUEUES}: create",
    f"queues {QUEUES}: append 5 x 256 B",
    f"queues {QUEUES}: truncate",
    f"queues {QUEUES}: reopen",
    "memory per 256 B record",
    "memory per empty queue",
    "pwrite per append, DoNothing",
    "pwrite per append, Always(FLUSH)",
    "fsync per append, Always(FSYNC)",
    "fsync per create_queue",
    "crashcheck images",
]
WITHOUT_PEERS = set(EXPECTED_WORKLOADS[EXPECTED_WORKLOADS.index("memory per 256 B record") :])


def test_quick_bench_reports_every_workload(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    scratch = tmp_path / "scratch"
    command = [
        sys.executable,
        "-m",
        "bench.run",
        "--quick",
        "--json",
        str(output),
        "--append-mib",
        "1",
        "--reopen-mib",
        "1",
        "--queues",
        str(QUEUES),
        "--fsync-calls",
        "20",
        "--syscall-calls",
        "20",
        "--campaign-seconds",
        "1",
        "--tmpdir",
        str(scratch),
    ]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, f"{completed.stdout}\n{completed.stderr}"
    assert "append 256 B x 1" in completed.stdout  # the table was printed

    document = json.loads(output.read_text())
    assert document["machine"]["cpu_count"] >= 1
    assert document["machine"]["python"]
    assert document["ceilings"], "no ceiling measured"
    assert all(ceiling["figure"] > 0 for ceiling in document["ceilings"].values()), document["ceilings"]

    results = {result["workload"]: result for result in document["results"]}
    assert list(results) == EXPECTED_WORKLOADS
    peers = {"sqlite3", "lmdb"} if importlib.util.find_spec("lmdb") is not None else {"sqlite3"}
    for name, result in results.items():
        assert result["figure"] > 0, f"{name}: {result}"
        assert result["unit"], name
        if result["ratio_to_ceiling"] is not None:
            assert result["ratio_to_ceiling"] > 0, f"{name}: {result}"
        expected_peers = set() if name in WITHOUT_PEERS else peers
        assert set(result["peers"]) == expected_peers, f"{name}: {result['peers']}"
        assert all(value > 0 for value in result["peers"].values()), f"{name}: {result['peers']}"
    # The scratch directories are gone, and nothing was left in the repository.
    assert not scratch.exists() or not any(scratch.iterdir())
