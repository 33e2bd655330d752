"""The reader check: the implementation opens directories the reference wrote.

Crash images and damaged images (``checks._images``), in the announced
profiles and file sizes. The implementation opens each and answers ``state``:

- a crash image, for ``point_in_time`` and ``strict``: a state of the model
  after a prefix of the operations containing every acknowledged one
  (``crash_not_a_prefix`` otherwise);
- anything else (damaged images; crash images for ``skip``): exactly what the
  reference recovers in that mode (``recovered_state``), or the refusal kind
  the reference's ``strict`` gives (``wrong_refusal``).

A difference that 0.5's short-file handling explains is ``short_files``.
"""

from __future__ import annotations

import json
import random
from typing import Any

from mrecordlog.errors import MRecordLogError
from mrecordlog.fault_injection import materialize
from mrecordlog.inspection import inspect_log
from mrecordlog.interchange import pack_wal_image
from mrecordlog.oracle.checks._images import ImageCase, fit_workload, image_cases
from mrecordlog.oracle.conformance import CheckContext
from mrecordlog.oracle.crashcheck import LOG_DIR
from mrecordlog.oracle.deviations import matches_variant, short_files_expectation
from mrecordlog.oracle.workloads import generate_workload


def canonical(state: Any) -> str:
    return json.dumps(state, sort_keys=True, separators=(",", ":")) + "\n"


def reference_recovery(directory: str, mode: str) -> Any:
    """What the reference recovers in ``mode``: the state value, or ``{"error": kind}``."""
    try:
        return inspect_log(directory, recovery=mode).state.to_json_value()
    except MRecordLogError as exc:
        return {"error": exc.kind}


def open_and_read(context: CheckContext, directory: str, file_num_bytes: int) -> tuple[list[dict[str, Any]], Any]:
    """Open ``directory``, answer its state, close: (the requests, the state
    or ``{"error": kind, "message": ...}``)."""
    open_request = {"op": "open", "dir": directory, "file_num_bytes": file_num_bytes}
    requests: list[dict[str, Any]] = [open_request, {"op": "state"}, {"op": "close"}]
    opened = context.request(open_request)
    if not opened.get("ok"):
        return requests[:1], {"error": opened.get("error"), "message": opened.get("message")}
    answer = context.request({"op": "state"})
    context.request({"op": "close"})
    return requests, answer.get("state") if answer.get("ok") else {"error": answer.get("error")}


def refused(value: Any) -> bool:
    return isinstance(value, dict) and "error" in value


def judge(kind: str, mode: str, expected: Any, got: Any, allowed: set[str]) -> str | None:
    """The failure class of an answer, or None when the spec allows it."""
    if kind == "crash" and mode in ("point_in_time", "strict") and not refused(got):
        return None if canonical(got) in allowed else "crash_not_a_prefix"
    if refused(got) or refused(expected):
        if refused(got) and refused(expected) and got["error"] == expected["error"]:
            return None
        return "wrong_refusal"
    return None if got == expected else "recovered_state"


def judge_case(context: CheckContext, case: ImageCase, directory: str) -> None:
    mode = context.capabilities.recovery
    file_num_bytes = case.workload.file_num_bytes
    expected = reference_recovery(directory, mode)
    requests, got = open_and_read(context, directory, file_num_bytes)
    if refused(got) and got.get("error") == "Unsupported":
        context.failed(
            "announced_unsupported",
            f"open of an existing {case.workload.checksum} log of {file_num_bytes}-byte files answered Unsupported",
            {"image": _pristine_image(context, case), "recovery": mode, "requests": requests, "got": got},
        )
        return
    failure_class = judge(case.kind, mode, expected, got, case.allowed)
    if failure_class is None:
        context.passed()
        return
    # The implementation's open may have changed the directory: the variant
    # and the reproducer come from a fresh copy of the image.
    pristine = context.fresh_directory("pristine")
    materialize(case.image, pristine, root=LOG_DIR)
    variant = short_files_expectation(pristine, mode)
    if matches_variant(variant, got):
        failure_class = "short_files"
    summary = {
        "crash_not_a_prefix": f"a crash image recovered a state that no acknowledged prefix has (recovery {mode})",
        "wrong_refusal": f"open answered {_what(got)}, the reference's {mode} recovery gives {_what(expected)}",
        "recovered_state": f"a {case.kind} image recovered another state than recovery mode {mode} gives",
        "short_files": "an incomplete last block was ignored, or a 0-byte first file refused (mrecordlog 0.5)",
    }[failure_class]
    context.failed(
        failure_class,
        summary,
        {
            "kind": case.kind,
            "image": pack_wal_image(pristine),
            "recovery": mode,
            "requests": requests,
            "expected": expected,
            "got": got,
        },
    )


def _pristine_image(context: CheckContext, case: ImageCase) -> dict[str, Any]:
    pristine = context.fresh_directory("pristine")
    materialize(case.image, pristine, root=LOG_DIR)
    return pack_wal_image(pristine)


def _what(value: Any) -> str:
    return f"the refusal {value['error']}" if refused(value) else "a state"


def run_reader_check(context: CheckContext) -> None:
    rng = random.Random(context.seed)
    workload_seed = context.seed * 1_000_003 + 500_000
    while context.time_left():
        workload = fit_workload(generate_workload(workload_seed, fault="none"), context.capabilities)
        workload_seed += 1
        for case in image_cases(workload, rng):
            if not context.time_left():
                return
            directory = context.fresh_directory()
            materialize(case.image, directory, root=LOG_DIR)
            judge_case(context, case, directory)
        context.tick()
