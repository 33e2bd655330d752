"""The oracle's side of the adapter protocol: talking to an implementation.

``SubprocessAdapter`` runs the implementation's adapter command and exchanges
JSON lines with it, turning a silence into a timeout and a garbled line into a
malformed answer (never a hang); ``InProcessAdapter`` calls a
``ProtocolSession`` directly (the conformance kit for Python implementations).
"""

from __future__ import annotations

import contextlib
import json
import queue
import shlex
import subprocess
import threading
from collections import deque
from typing import Any, Protocol

from mrecordlog.oracle.protocol import ProtocolSession


class AdapterFailure(Exception):
    """The adapter did not answer properly: ``kind`` is ``timeout``, ``exited``
    or ``malformed``."""

    def __init__(self, kind: str, message: str, request: dict[str, Any]) -> None:
        super().__init__(f"{kind}: {message} (request: {json.dumps(request)[:200]})")
        self.kind = kind
        self.request = request


class Adapter(Protocol):
    def request(self, request: dict[str, Any]) -> dict[str, Any]: ...

    def close(self) -> None: ...


def _validate(line: str, request: dict[str, Any]) -> dict[str, Any]:
    try:
        answer = json.loads(line)
    except json.JSONDecodeError as exc:
        raise AdapterFailure("malformed", f"answer is not JSON ({exc}): {line[:200]!r}", request) from None
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        raise AdapterFailure("malformed", f"answer is not an object with a boolean 'ok': {line[:200]!r}", request)
    return answer


class SubprocessAdapter:
    """An implementation's adapter command, one JSON line per request and answer."""

    def __init__(self, command: str, *, timeout_seconds: float = 30.0) -> None:
        self.command = command
        self.timeout = timeout_seconds
        self._process = subprocess.Popen(
            shlex.split(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=20)
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        threading.Thread(target=self._pump_stderr, daemon=True).start()

    def _pump_stdout(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        assert self._process.stderr is not None
        for line in self._process.stderr:
            self._stderr.append(line.rstrip("\n"))

    def request(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(request, separators=(",", ":")) + "\n")
            self._process.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise AdapterFailure(
                "exited", f"cannot write to the adapter: {exc}{self._stderr_tail()}", request
            ) from None
        try:
            line = self._lines.get(timeout=self.timeout)
        except queue.Empty:
            raise AdapterFailure("timeout", f"no answer within {self.timeout} s", request) from None
        if line is None:
            code = self._process.poll()
            raise AdapterFailure("exited", f"the adapter exited (status {code}){self._stderr_tail()}", request)
        return _validate(line, request)

    def _stderr_tail(self) -> str:
        return ("; its stderr ended with: " + " | ".join(self._stderr)) if self._stderr else ""

    def close(self) -> None:
        if self._process.stdin is not None and not self._process.stdin.closed:
            with contextlib.suppress(OSError):  # the adapter may already be gone
                self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


class InProcessAdapter:
    """A ``ProtocolSession`` called directly; requests and answers still go
    through JSON, so that both sides see exactly what a subprocess would."""

    def __init__(self, session: ProtocolSession) -> None:
        self._session = session

    def request(self, request: dict[str, Any]) -> dict[str, Any]:
        answer = self._session.handle(json.loads(json.dumps(request)))
        return _validate(json.dumps(answer), request)

    def close(self) -> None:
        self._session.handle({"op": "close"})
