"""The oracle's side of the adapter protocol: talking to an implementation.

``SubprocessAdapter`` runs the implementation's adapter command and exchanges
JSON lines with it. Whatever the adapter does (exit at once, die mid-run, hang,
answer garbage, non-UTF-8 bytes, a huge line, or not even start), a request
either returns an answer object with a boolean ``ok`` or raises an
``AdapterFailure`` of a known ``kind`` within the timeout, never a hang and
never another exception. After a failure the adapter is dead: its process is
killed and every later request fails at once with the same kind.

``InProcessAdapter`` calls a ``ProtocolSession`` directly (the conformance kit
for Python implementations).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import shlex
import signal
import subprocess
import threading
import time
from collections import deque
from typing import IO, Any, NamedTuple, Protocol

from mrecordlog.oracle.protocol import ProtocolSession

FAILURE_KINDS = ("timeout", "exited", "malformed", "unstartable")
STDERR_TAIL_LINES = 20
STDERR_LINE_CHARS = 500
LAST_REQUESTS = 5
DEFAULT_MAX_LINE_BYTES = 256 * 2**20
_EXIT_WAIT_SECONDS = 1.0
_STDERR_JOIN_SECONDS = 1.0
_CLOSE_WAIT_SECONDS = 5.0
_KILL_WAIT_SECONDS = 5.0
# Bytes kept of one stderr line: enough for STDERR_LINE_CHARS characters of UTF-8.
_STDERR_LINE_BYTES = 4 * STDERR_LINE_CHARS
_STDERR_READ_BYTES = 64 * 1024


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _request_text(request: dict[str, Any], limit: int) -> str:
    try:
        text = json.dumps(request, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(request)
    return _cut(text, limit)


class AdapterFailure(Exception):
    """The adapter did not answer properly.

    ``kind`` is ``timeout``, ``exited``, ``malformed`` or ``unstartable``;
    ``request`` the request that failed; ``stderr_tail`` the last lines of the
    adapter's stderr; ``last_requests`` the last requests sent to it, oldest
    first (the failing one last, when it was sent); ``exit_status`` its exit
    status when it exited on its own. ``str()`` is one line; ``lines()`` the
    full description."""

    def __init__(
        self,
        kind: str,
        message: str,
        request: dict[str, Any],
        *,
        stderr_tail: list[str] | None = None,
        last_requests: list[dict[str, Any]] | None = None,
        exit_status: int | None = None,
    ) -> None:
        super().__init__(_one_line(f"{kind}: {message} (request: {_request_text(request, 200)})"))
        self.kind = kind
        self.message = message
        self.request = request
        self.stderr_tail: list[str] = list(stderr_tail or [])
        self.last_requests: list[dict[str, Any]] = list(last_requests or [])
        self.exit_status = exit_status

    def lines(self) -> list[str]:
        """A readable multi-line description: the failure, the last requests
        sent and the last lines of the adapter's stderr."""
        status = f" (exit status {self.exit_status})" if self.exit_status is not None else ""
        out = [_one_line(f"adapter failure: {self.kind}{status}: {self.message}")]
        out.append("last requests:")
        requests = self.last_requests or [self.request]
        out.extend(f"  {_request_text(request, 300)}" for request in requests)
        out.append("adapter stderr (last lines):")
        out.extend(f"  {line}" for line in self.stderr_tail)
        if not self.stderr_tail:
            out.append("  (nothing)")
        return out

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.kind, self.message, self.request), dict(self.__dict__))


class Adapter(Protocol):
    def request(self, request: dict[str, Any]) -> dict[str, Any]: ...

    def close(self) -> None: ...


def _validate(line: str, request: dict[str, Any], last_requests: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    try:
        answer = json.loads(line)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, too many digits, too deep
        raise AdapterFailure(
            "malformed",
            f"answer is not JSON ({_cut(str(exc), 200)}): {line[:200]!r}",
            request,
            last_requests=last_requests,
        ) from None
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        raise AdapterFailure(
            "malformed",
            f"answer is not an object with a boolean 'ok': {line[:200]!r}",
            request,
            last_requests=last_requests,
        )
    return answer


class _Event(NamedTuple):
    """What the stdout pump saw: a ``line``, the ``eof``, or a line ``too_long``."""

    kind: str
    line: bytes = b""
    error: str = ""


class SubprocessAdapter:
    """An implementation's adapter command, one JSON line per request and answer.

    Requests are written without ever blocking past the deadline (on POSIX
    through a non-blocking pipe, elsewhere by a writer thread), so a process
    that stops reading cannot block the oracle. Daemon threads read the answer
    lines as bytes with a bound of ``max_line_bytes`` per line and keep the
    last lines of its stderr. A command that cannot be started does not raise
    here: the first ``request`` raises an ``unstartable`` failure."""

    # Write from the calling thread through a non-blocking pipe (POSIX), or
    # hand the requests to a writer thread (anywhere).
    _direct_writes = os.name == "posix"

    def __init__(
        self, command: str, *, timeout_seconds: float = 30.0, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    ) -> None:
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be positive, not {max_line_bytes}")
        self.command = command
        self.timeout = timeout_seconds
        self.max_line_bytes = max_line_bytes
        self.requests_sent = 0
        self._failure: AdapterFailure | None = None
        self._failure_reported = False
        self._closed = False
        self._last_requests: deque[dict[str, Any]] = deque(maxlen=LAST_REQUESTS)
        self._stderr: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._stderr_lock = threading.Lock()
        self._events: queue.Queue[_Event] = queue.Queue(maxsize=2)
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._stdin_fd: int | None = None
        self._write_error: str | None = None
        self._stderr_thread: threading.Thread | None = None
        self._process: subprocess.Popen[bytes] | None = None
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            self._unstartable(f"cannot parse the adapter command {command!r}: {exc}")
            return
        if not argv:
            self._unstartable(f"the adapter command {command!r} is empty")
            return
        try:
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                # Its own process group, so that killing it also kills what a
                # wrapper script started (and the pipes close).
                start_new_session=os.name == "posix",
            )
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            self._unstartable(f"cannot start the adapter command {command!r}: {exc}")
            return
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        assert self._process.stderr is not None
        if self._direct_writes:
            self._stdin_fd = self._process.stdin.fileno()
            os.set_blocking(self._stdin_fd, False)
        else:
            threading.Thread(target=self._pump_stdin, args=(self._process.stdin,), daemon=True).start()
        threading.Thread(target=self._pump_stdout, args=(self._process.stdout,), daemon=True).start()
        self._stderr_thread = threading.Thread(target=self._pump_stderr, args=(self._process.stderr,), daemon=True)
        self._stderr_thread.start()

    # -- state --------------------------------------------------------------

    @property
    def failure(self) -> AdapterFailure | None:
        """The first failure (the adapter is dead from then on), or None."""
        return self._failure

    def _unstartable(self, message: str) -> None:
        self._failure = AdapterFailure("unstartable", message, {})

    # -- threads ------------------------------------------------------------

    def _pump_stdin(self, stdin: IO[bytes]) -> None:
        try:
            while True:
                data = self._outbox.get()
                if data is None:
                    return
                try:
                    stdin.write(data)
                    stdin.flush()
                except (OSError, ValueError) as exc:
                    self._write_error = str(exc) or type(exc).__name__
                    return
        finally:
            with contextlib.suppress(OSError, ValueError):
                stdin.close()

    def _pump_stdout(self, stdout: IO[bytes]) -> None:
        limit = self.max_line_bytes
        try:
            while True:
                try:
                    line = stdout.readline(limit + 1)
                except (OSError, ValueError) as exc:
                    self._events.put(_Event("eof", error=str(exc)))
                    return
                if not line:
                    self._events.put(_Event("eof"))
                    return
                if len(line) > limit and not line.endswith(b"\n"):
                    self._events.put(_Event("too_long"))
                    return
                self._events.put(_Event("line", line))
        finally:
            with contextlib.suppress(OSError, ValueError):
                stdout.close()

    def _pump_stderr(self, stderr: IO[bytes]) -> None:
        current = bytearray()
        try:
            while True:
                try:
                    chunk = stderr.readline(_STDERR_READ_BYTES)
                except (OSError, ValueError):
                    chunk = b""
                if not chunk:
                    if current:
                        self._keep_stderr_line(bytes(current))
                    return
                if len(current) < _STDERR_LINE_BYTES:
                    current += chunk[: _STDERR_LINE_BYTES - len(current)]
                if chunk.endswith(b"\n"):
                    self._keep_stderr_line(bytes(current))
                    current.clear()
        finally:
            with contextlib.suppress(OSError, ValueError):
                stderr.close()

    def _keep_stderr_line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")[:STDERR_LINE_CHARS]
        with self._stderr_lock:
            self._stderr.append(line)

    def _stderr_tail(self) -> list[str]:
        with self._stderr_lock:
            return list(self._stderr)

    # -- requests -----------------------------------------------------------

    def request(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._failure is not None:
            raise self._again(request)
        if self._closed:
            raise self._fail("exited", "the adapter was closed", request)
        assert self._process is not None
        data = (json.dumps(request, separators=(",", ":")) + "\n").encode("utf-8")
        deadline = time.monotonic() + self.timeout
        self._last_requests.append(request)
        self.requests_sent += 1
        if not self._send(data, deadline):
            raise self._fail("timeout", f"the adapter did not read the request within {self.timeout} s", request)
        try:
            event = self._events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            stopped = f" (it stopped reading its input: {self._write_error})" if self._write_error else ""
            raise self._fail("timeout", f"no answer within {self.timeout} s{stopped}", request) from None
        if event.kind == "eof":
            raise self._exited(request, event.error)
        if event.kind == "too_long":
            raise self._fail("malformed", f"an answer longer than {self.max_line_bytes} bytes", request)
        try:
            text = event.line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self._fail("malformed", f"answer is not UTF-8 ({exc}): {event.line[:200]!r}", request) from None
        try:
            return _validate(text, request, list(self._last_requests))
        except AdapterFailure as exc:
            raise self._fail(exc.kind, exc.message, request) from None

    def _send(self, data: bytes, deadline: float) -> bool:
        """Write a request; False when the adapter did not read it by the
        deadline. A broken pipe is remembered: the answer then reads the end
        of the output (exited) or times out."""
        fd = self._stdin_fd
        if fd is None:
            self._outbox.put(data)
            return True
        if self._write_error is not None:
            return True
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                poller = select.poll()
                poller.register(fd, select.POLLOUT)
                poller.poll(max(1, int(remaining * 1000)))
            except (OSError, ValueError) as exc:
                self._write_error = str(exc) or type(exc).__name__
                return True
        return True

    def _again(self, request: dict[str, Any]) -> AdapterFailure:
        first = self._failure
        assert first is not None
        if not self._failure_reported:  # unstartable: this is the first request
            self._failure_reported = True
            self._failure = AdapterFailure(first.kind, first.message, request)
            return self._failure
        return AdapterFailure(
            first.kind,
            f"the adapter already failed ({first.message})",
            request,
            stderr_tail=first.stderr_tail,
            last_requests=first.last_requests,
            exit_status=first.exit_status,
        )

    def _exited(self, request: dict[str, Any], read_error: str) -> AdapterFailure:
        assert self._process is not None
        status: int | None
        try:
            status = self._process.wait(timeout=_EXIT_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            status = None
        if status is None:
            message = "the adapter closed its output without exiting"
        else:
            message = f"the adapter exited (status {status})"
        if read_error:
            message += f" (reading its output failed: {read_error})"
        if self._write_error:
            message += f" (writing to it failed: {self._write_error})"
        return self._fail("exited", message, request, exit_status=status)

    def _fail(
        self, kind: str, message: str, request: dict[str, Any], *, exit_status: int | None = None
    ) -> AdapterFailure:
        """Kill the process, wait for the end of its stderr and remember the
        failure: the adapter is dead from now on."""
        self._kill()
        tail = self._stderr_tail()
        if kind == "exited" and tail:
            message += "; its stderr ended with: " + " | ".join(_cut(line, 200) for line in tail[-5:])
        self._failure = AdapterFailure(
            kind,
            message,
            request,
            stderr_tail=tail,
            last_requests=list(self._last_requests),
            exit_status=exit_status,
        )
        self._failure_reported = True
        return self._failure

    def _kill(self) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            # The process has not been reaped, so its group is still ours to kill.
            with contextlib.suppress(OSError):
                if os.name == "posix":
                    os.killpg(process.pid, signal.SIGKILL)
                else:
                    process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=_KILL_WAIT_SECONDS)
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=_STDERR_JOIN_SECONDS)
        # Let a pump blocked on a full queue reach the end of the output.
        with contextlib.suppress(queue.Empty):
            while True:
                self._events.get_nowait()

    def close(self) -> None:
        """Close the adapter's stdin, give it 5 s to exit, then kill it.
        Idempotent; never raises nor hangs."""
        if self._closed:
            return
        self._closed = True
        process = self._process
        if process is None:
            return
        try:
            if self._stdin_fd is None:
                self._outbox.put(None)  # the writer closes stdin after the pending requests
            elif process.stdin is not None:
                with contextlib.suppress(OSError, ValueError):
                    process.stdin.close()
            if process.poll() is None:
                try:
                    process.wait(timeout=_CLOSE_WAIT_SECONDS)
                except subprocess.TimeoutExpired:
                    self._kill()
        except Exception:  # close must never raise: it runs in finally blocks
            with contextlib.suppress(Exception):
                self._kill()

    def __enter__(self) -> SubprocessAdapter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class InProcessAdapter:
    """A ``ProtocolSession`` called directly; requests and answers still go
    through JSON, so that both sides see exactly what a subprocess would."""

    def __init__(self, session: ProtocolSession) -> None:
        self._session = session
        self._last_requests: deque[dict[str, Any]] = deque(maxlen=LAST_REQUESTS)
        self.requests_sent = 0

    def request(self, request: dict[str, Any]) -> dict[str, Any]:
        self._last_requests.append(request)
        self.requests_sent += 1
        answer = self._session.handle(json.loads(json.dumps(request)))
        return _validate(json.dumps(answer), request, list(self._last_requests))

    def close(self) -> None:
        self._session.handle({"op": "close"})
