"""The subprocess adapter survives any adapter: every misbehaviour becomes a
typed ``AdapterFailure`` quickly, the adapter is dead afterwards, and
``close()`` is always fine."""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mrecordlog.oracle.adapters import AdapterFailure, InProcessAdapter, SubprocessAdapter

HELLO = {"op": "hello"}

_EXITS_AT_ONCE = "import sys\nsys.stderr.write('boom: cannot start\\n')\nsys.exit(3)\n"
_DIES_ON_THIRD = """\
import json, sys
for count, line in enumerate(sys.stdin, start=1):
    if count == 3:
        sys.stderr.write('panicked on request 3\\n')
        sys.stderr.flush()
        sys.exit(7)
    print(json.dumps({"ok": True, "op": json.loads(line)["op"]}), flush=True)
"""
_HANGS = "import sys, time\nfor line in sys.stdin:\n    time.sleep(60)\n"
_ANSWERS = """\
import sys
for line in sys.stdin:
    sys.stdout.buffer.write({answer!r})
    sys.stdout.flush()
"""


def _script(tmp_path: Path, source: str) -> str:
    path = tmp_path / "adapter.py"
    path.write_text(source, encoding="utf-8")
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(path))}"


def _answering(tmp_path: Path, answer: bytes) -> str:
    return _script(tmp_path, _ANSWERS.format(answer=answer))


@pytest.fixture
def adapters() -> Iterator[list[SubprocessAdapter]]:
    """Adapters closed (twice: close is idempotent) after the test, timed."""
    made: list[SubprocessAdapter] = []
    yield made
    for adapter in made:
        started = time.monotonic()
        adapter.close()
        adapter.close()
        assert time.monotonic() - started < 2.0


# Both ways of writing requests: straight to a non-blocking pipe (POSIX) and
# through the portable writer thread.
both_write_paths = pytest.mark.parametrize(
    "direct_writes",
    [pytest.param(True, marks=pytest.mark.skipif(os.name != "posix", reason="POSIX only")), False],
    ids=["direct-writes", "writer-thread"],
    indirect=True,
)


@pytest.fixture
def direct_writes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(SubprocessAdapter, "_direct_writes", request.param)
    return bool(request.param)


def _start(
    adapters: list[SubprocessAdapter], command: str, *, timeout_seconds: float = 10.0, max_line_bytes: int = 2**20
) -> SubprocessAdapter:
    adapter = SubprocessAdapter(command, timeout_seconds=timeout_seconds, max_line_bytes=max_line_bytes)
    adapters.append(adapter)
    return adapter


def _fails(adapter: SubprocessAdapter, request: dict[str, Any], kind: str) -> AdapterFailure:
    with pytest.raises(AdapterFailure) as raised:
        adapter.request(request)
    failure = raised.value
    assert failure.kind == kind, str(failure)
    assert failure.request == request
    assert "\n" not in str(failure)
    lines = failure.lines()
    assert lines[0].startswith(f"adapter failure: {kind}")
    assert "last requests:" in lines
    assert "adapter stderr (last lines):" in lines
    return failure


def _dead(adapter: SubprocessAdapter, kind: str) -> None:
    """Every later request fails at once with the same kind."""
    first = adapter.failure
    assert first is not None
    assert first.kind == kind
    started = time.monotonic()
    again = _fails(adapter, {"op": "state"}, kind)
    assert time.monotonic() - started < 0.5
    assert "already failed" in str(again)
    assert adapter.failure is first


@both_write_paths
def test_an_adapter_that_exits_at_once_is_reported_with_its_status_and_stderr(
    tmp_path: Path, adapters: list[SubprocessAdapter], direct_writes: bool
) -> None:
    adapter = _start(adapters, _script(tmp_path, _EXITS_AT_ONCE))
    time.sleep(0.2)  # let it exit before the first request
    failure = _fails(adapter, HELLO, "exited")
    assert failure.exit_status == 3
    assert failure.stderr_tail == ["boom: cannot start"]
    assert "boom: cannot start" in str(failure)
    assert failure.last_requests == [HELLO]
    assert "  boom: cannot start" in failure.lines()
    _dead(adapter, "exited")


def test_the_stderr_tail_keeps_the_last_twenty_lines_cut_and_decoded(
    tmp_path: Path, adapters: list[SubprocessAdapter]
) -> None:
    noisy = (
        "import sys\n"
        "for n in range(30): sys.stderr.write(f'line {n}\\n')\n"
        "sys.stderr.flush()\n"
        "sys.stderr.buffer.write(b'\\xff' + b'e' * 100_000 + b'\\n')\n"
        "sys.exit(1)\n"
    )
    adapter = _start(adapters, _script(tmp_path, noisy))
    failure = _fails(adapter, HELLO, "exited")
    assert len(failure.stderr_tail) == 20
    assert failure.stderr_tail[0] == "line 11"
    assert failure.stderr_tail[-1] == "\ufffd" + "e" * 499
    assert len(str(failure)) < 2000


@both_write_paths
def test_an_adapter_dying_mid_run_is_reported_with_the_requests_that_led_there(
    tmp_path: Path, adapters: list[SubprocessAdapter], direct_writes: bool
) -> None:
    adapter = _start(adapters, _script(tmp_path, _DIES_ON_THIRD))
    assert adapter.request(HELLO) == {"ok": True, "op": "hello"}
    assert adapter.request({"op": "open", "dir": "d"}) == {"ok": True, "op": "open"}
    third = {"op": "create_queue", "queue": "q"}
    failure = _fails(adapter, third, "exited")
    assert failure.exit_status == 7
    assert failure.last_requests == [HELLO, {"op": "open", "dir": "d"}, third]
    assert failure.stderr_tail == ["panicked on request 3"]
    assert adapter.requests_sent == 3
    _dead(adapter, "exited")
    assert adapter.requests_sent == 3


def test_last_requests_keeps_only_the_five_latest(tmp_path: Path, adapters: list[SubprocessAdapter]) -> None:
    adapter = _start(adapters, _answering(tmp_path, b'{"ok":true}\n'))
    for position in range(7):
        adapter.request({"op": "state", "n": position})
    adapter.close()
    failure = _fails(adapter, {"op": "state", "n": 7}, "exited")
    assert [request["n"] for request in failure.last_requests] == [2, 3, 4, 5, 6]


def test_a_hanging_adapter_times_out_then_fails_at_once(tmp_path: Path, adapters: list[SubprocessAdapter]) -> None:
    adapter = _start(adapters, _script(tmp_path, _HANGS), timeout_seconds=1.0)
    started = time.monotonic()
    failure = _fails(adapter, HELLO, "timeout")
    assert time.monotonic() - started < 2.5
    assert failure.exit_status is None
    _dead(adapter, "timeout")


@pytest.mark.skipif(os.name != "posix", reason="process groups are POSIX")
def test_a_hanging_wrapper_script_is_killed_with_what_it_started(
    tmp_path: Path, adapters: list[SubprocessAdapter]
) -> None:
    # The shell waits for its child, which holds the pipes: both must die.
    command = f"sh -c {shlex.quote(_script(tmp_path, _HANGS) + '; true')}"
    adapter = _start(adapters, command, timeout_seconds=1.0)
    started = time.monotonic()
    _fails(adapter, HELLO, "timeout")
    assert time.monotonic() - started < 1.8


@both_write_paths
def test_an_adapter_that_stops_reading_its_input_times_out(
    tmp_path: Path, adapters: list[SubprocessAdapter], direct_writes: bool
) -> None:
    # A request far larger than a pipe buffer must not block the oracle.
    adapter = _start(adapters, _script(tmp_path, "import time\ntime.sleep(60)\n"), timeout_seconds=1.0)
    started = time.monotonic()
    _fails(adapter, {"op": "append", "queue": "q", "payloads": ["00" * 2**20]}, "timeout")
    assert time.monotonic() - started < 2.5


def test_a_garbage_answer_is_malformed(tmp_path: Path, adapters: list[SubprocessAdapter]) -> None:
    adapter = _start(adapters, _answering(tmp_path, b"this is not JSON\n"))
    failure = _fails(adapter, HELLO, "malformed")
    assert "not JSON" in str(failure)
    _dead(adapter, "malformed")


def test_a_non_utf8_answer_is_malformed_not_a_timeout(tmp_path: Path, adapters: list[SubprocessAdapter]) -> None:
    adapter = _start(adapters, _answering(tmp_path, b"\xff\xfe{}\n"))
    failure = _fails(adapter, HELLO, "malformed")
    assert "not UTF-8" in str(failure)
    _dead(adapter, "malformed")


def test_a_line_longer_than_the_bound_is_malformed_without_reading_it_all(
    tmp_path: Path, adapters: list[SubprocessAdapter]
) -> None:
    adapter = _start(
        adapters,
        _answering(tmp_path, b"x" * (2 * 2**20) + b"\n"),
        max_line_bytes=2**20,
    )
    started = time.monotonic()
    failure = _fails(adapter, HELLO, "malformed")
    assert time.monotonic() - started < 2.0
    assert f"an answer longer than {2**20} bytes" in str(failure)
    _dead(adapter, "malformed")


def test_a_line_exactly_at_the_bound_is_accepted(tmp_path: Path, adapters: list[SubprocessAdapter]) -> None:
    answer = b'{"ok":true}'
    adapter = _start(adapters, _answering(tmp_path, answer + b"\n"), max_line_bytes=len(answer))
    assert adapter.request(HELLO) == {"ok": True}
    assert adapter.failure is None


@pytest.mark.parametrize(
    "answer",
    [b"[1,2]\n", b'{"ok":"yes"}\n', b"{}\n", b"\n", b"[" * 100_000 + b"\n", b"1" * 10_000 + b"\n"],
    ids=["array", "string-ok", "no-ok", "empty-line", "deeply-nested", "huge-integer"],
)
def test_a_json_answer_that_is_not_an_object_with_boolean_ok_is_malformed(
    tmp_path: Path, adapters: list[SubprocessAdapter], answer: bytes
) -> None:
    adapter = _start(adapters, _answering(tmp_path, answer))
    _fails(adapter, HELLO, "malformed")
    _dead(adapter, "malformed")


@pytest.mark.parametrize(
    "command",
    ["", "   ", "/nonexistent/mrecordlog-adapter --flag", "'unbalanced quote", "/"],
    ids=["empty", "blank", "not-found", "unparsable", "not-executable"],
)
def test_an_unstartable_command_fails_on_the_first_request_not_in_the_constructor(
    adapters: list[SubprocessAdapter], command: str
) -> None:
    adapter = _start(adapters, command)
    assert adapter.failure is not None
    assert adapter.failure.kind == "unstartable"
    failure = _fails(adapter, HELLO, "unstartable")
    assert repr(command) in str(failure)
    assert "already failed" not in str(failure)
    assert adapter.requests_sent == 0
    _dead(adapter, "unstartable")


@both_write_paths
def test_a_well_behaved_adapter_answers_and_closes(
    tmp_path: Path, adapters: list[SubprocessAdapter], direct_writes: bool
) -> None:
    adapter = _start(adapters, f"{shlex.quote(sys.executable)} -m mrecordlog.adapter", timeout_seconds=10.0)
    assert adapter.request(HELLO)["ok"] is True
    assert adapter.request({"op": "open", "dir": str(tmp_path / "log")})["ok"] is True
    assert adapter.request({"op": "close"})["ok"] is True
    assert adapter.requests_sent == 3
    adapter.close()
    assert adapter.failure is None


def test_the_in_process_adapter_reports_a_malformed_answer_with_its_requests() -> None:
    class Session:
        def handle(self, request: dict[str, Any]) -> object:
            return [1, 2]

    adapter = InProcessAdapter(Session())  # type: ignore[arg-type]
    with pytest.raises(AdapterFailure) as raised:
        adapter.request(HELLO)
    assert raised.value.kind == "malformed"
    assert raised.value.last_requests == [HELLO]
