"""Recording what an adapter does to its files, from outside, with ``strace``.

``traced_command`` prefixes an adapter command with ``strace``; the adapter
runs as usual (``SubprocessAdapter``) while strace writes every file-system
system call of it and of its threads and children to a trace file.
``parse_trace`` turns that text into the typed events of ``oracle.trace``,
doing the kernel's bookkeeping on the way: descriptor tables per process
(shared by threads made with ``CLONE_FILES``, copied by ``fork``, pruned of
close-on-exec descriptors by ``execve``), open file descriptions shared by
``dup``/``fcntl(F_DUPFD)`` and ``fork`` (so offsets are shared), offsets moved
by ``read``/``write``/``lseek`` by the returned counts, ``O_APPEND`` writes at
the tracked size of the file, renames and unlinks followed by the open
descriptors. ``trace_adapter_session`` does all of it for one session.

The trace is read with ``-y`` (every descriptor argument is annotated with the
path it refers to *now*, after renames, or ``(deleted)``) and ``-xx`` (every
byte of every string and path is escaped as ``\\xNN``: the data is exact).
The annotation decides which file a descriptor names; the descriptor table
gives the offset, which strace does not show.

Events are produced in the order the calls completed (a call interrupted by
another process's line, ``<unfinished ...>``, takes the place of its
``<... resumed>`` line). That is the order strace saw the calls return, which
for calls of different threads running at the same time is only the order in
which strace noticed them.

Limits (anything the model cannot follow is reported as ``Unmodelled``, never
guessed: shared writable ``mmap``, ``O_DIRECT``, ``O_TMPFILE``, io_uring and
Linux AIO, ``sync_file_range``, in-kernel copies, ``fallocate`` modes other
than a plain extension, exchanges, symbolic links, a write at an offset the
table does not know, data cut by ``-s``, through a descriptor whose name was
removed while the file had another link):

- the size of a file that existed before the trace, for ``O_APPEND`` writes
  and ``fallocate``, is its size in ``initial_files`` (``snapshot_files``)
  or, without it, the file's size on disk at parse time (else 0);
- an ``O_CREAT`` open creates the path when it was not known to exist (from
  ``initial_files``, or from the trace; without ``initial_files`` a path
  first seen in an ``O_CREAT`` open is taken as missing);
- ``fallocate(FALLOC_FL_KEEP_SIZE)`` alone changes neither size nor contents:
  no event;
- a rename moving a file out of the root is an ``Unlink``; directories are
  renamed like files (``Rename`` of the directory);
- writes through a descriptor of an unlinked file change no named file: no
  event;
- paths are normalised lexically (``..``) and through the real path of
  ``root``; symbolic links below ``root`` are not resolved;
- descriptors inherited from before the trace (other than 0 and 1, the
  protocol's pipes) or made by calls not traced are unknown until an open,
  ``dup`` or ``fcntl`` shows them; ``pwrite``-style writes still follow them
  through the ``-y`` path.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mrecordlog.oracle.adapters import SubprocessAdapter
from mrecordlog.oracle.trace import (
    Answered,
    Create,
    Link,
    MakeDirectory,
    Rename,
    RequestRead,
    Sync,
    SyncAll,
    TraceEvent,
    Truncate,
    Unlink,
    Unmodelled,
    Write,
)

# The system calls traced. Those that change files or the namespace, those that
# make them durable, those that move offsets or copy descriptors (the
# bookkeeping), the process calls that share or copy descriptor tables, and the
# ones the model cannot follow (reported as Unmodelled). ``read``/``readv``
# also carry the requests read from stdin.
TRACED_SYSCALLS: tuple[str, ...] = (
    # opening and creating
    "open",
    "openat",
    "openat2",
    "creat",
    # data
    "write",
    "pwrite64",
    "writev",
    "pwritev",
    "pwritev2",
    "ftruncate",
    "truncate",
    "fallocate",
    # durability
    "fsync",
    "fdatasync",
    "sync_file_range",
    "syncfs",
    "sync",
    # the namespace
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
    "mkdir",
    "mkdirat",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    # descriptors and offsets
    "close",
    "close_range",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "lseek",
    "read",
    "readv",
    # processes: descriptor tables and working directories
    "clone",
    "clone3",
    "fork",
    "vfork",
    "execve",
    "execveat",
    "chdir",
    "fchdir",
    # what the model cannot follow
    "mmap",
    "io_uring_setup",
    "io_setup",
    "copy_file_range",
    "sendfile",
    "splice",
)

# strace's largest -s: it allocates 4 bytes of output per byte of string
# (``-xx``) in an unsigned int. A longer string is cut (and reported as
# Unmodelled by parse_trace).
DEFAULT_STRING_LIMIT = 2**30 - 1


def _run_strace(argv: list[str]) -> str | None:
    """None when the command succeeded, else what went wrong."""
    try:
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc) or type(exc).__name__
    if result.returncode != 0:
        message = " ".join(result.stderr.decode("utf-8", errors="replace").split())[:300]
        return message or f"strace exited with status {result.returncode}"
    return None


@functools.cache
def strace_unavailable() -> str | None:
    """None when ``strace`` can trace here, else why not (found once, by
    running ``strace -f -o /dev/null true``, then ``true`` under
    ``traced_command``'s options)."""
    if not sys.platform.startswith("linux"):
        return "not Linux"
    strace = shutil.which("strace")
    if strace is None:
        return "strace not found on PATH"
    failure = _run_strace([strace, "-f", "-o", os.devnull, "true"])
    if failure is not None:
        return f"ptrace is not permitted: {failure}"
    failure = _run_strace(shlex.split(traced_command("true", os.devnull)))
    if failure is not None:
        return f"strace does not accept the tracer's options: {failure}"
    return None


def traced_command(command: str, trace_path: str, *, string_limit: int = DEFAULT_STRING_LIMIT) -> str:
    """The adapter command line run under strace, writing its trace to
    ``trace_path`` (a command line for ``SubprocessAdapter``: split like a
    shell would)."""
    strace = shutil.which("strace") or "strace"
    # "?name": no error where a name does not exist (open, rename, ... on arm64).
    syscalls = ",".join(f"?{name}" for name in TRACED_SYSCALLS)
    prefix = [
        strace,
        "-f",  # threads and children
        "--seccomp-bpf",  # stop only at the traced calls (much faster)
        "-qq",  # no attach/detach/exit messages
        "-y",  # paths of descriptor arguments and results
        "-xx",  # every byte of strings and paths as \xNN
        "-s",
        str(string_limit),
        "-e",
        "signal=none",
        "-e",
        f"trace={syscalls}",
        "-o",
        trace_path,
    ]
    return f"{shlex.join(prefix)} {command}"


def snapshot_files(root: str) -> dict[str, int]:
    """The regular files under ``root`` and their sizes (absolute normalised
    paths), for ``parse_trace``'s ``initial_files``."""
    top = os.path.normpath(os.path.abspath(root))
    files: dict[str, int] = {}
    for directory, _dirs, names in os.walk(top):
        for name in names:
            path = os.path.join(directory, name)
            with contextlib.suppress(OSError):
                if os.path.isfile(path) and not os.path.islink(path):
                    files[path] = os.path.getsize(path)
    return files


class TracingUnavailable(RuntimeError):
    """strace cannot trace here (``strace_unavailable()`` says why)."""


def trace_adapter_session(
    command: str,
    requests: Sequence[dict[str, Any]],
    *,
    root: str,
    timeout: float = 30.0,
    string_limit: int = DEFAULT_STRING_LIMIT,
) -> tuple[list[dict[str, Any]], list[TraceEvent]]:
    """Run the adapter under strace, send it ``requests`` one by one, close it
    (end of stdin: it exits and strace writes the rest of the trace) and
    return its answers and the events of the trace under ``root``. An
    ``AdapterFailure`` is raised as ``SubprocessAdapter.request`` raised it
    (after the adapter was closed)."""
    reason = strace_unavailable()
    if reason is not None:
        raise TracingUnavailable(reason)
    initial = snapshot_files(root)
    cwd = os.getcwd()
    handle, trace_path = tempfile.mkstemp(prefix="mrecordlog-trace-", suffix=".txt")
    os.close(handle)
    try:
        answers: list[dict[str, Any]] = []
        adapter = SubprocessAdapter(
            traced_command(command, trace_path, string_limit=string_limit), timeout_seconds=timeout
        )
        try:
            for request in requests:
                answers.append(adapter.request(request))
        finally:
            adapter.close()
        with open(trace_path, encoding="utf-8", errors="surrogateescape") as trace:
            text = trace.read()
        return answers, parse_trace(text, root=root, initial_files=initial, cwd=cwd)
    finally:
        with contextlib.suppress(OSError):
            os.remove(trace_path)


# -- the syntax of strace's output -------------------------------------------


class _Str:
    """A string argument; its bytes are decoded when asked for (most strings
    read are never looked at)."""

    __slots__ = ("_data", "_escaped", "truncated")

    def __init__(self, escaped: str, truncated: bool, data: bytes | None = None) -> None:
        self._escaped = escaped
        self._data = data
        self.truncated = truncated  # strace printed "..." after it: cut by -s

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = _unescape(self._escaped)
        return self._data

    def __repr__(self) -> str:
        return f"_Str({self._escaped[:40]!r}{'...' if self.truncated else ''})"


@dataclass(frozen=True)
class _Atom:
    """A number, a constant or flags (``O_RDWR|O_CREAT``), a pointer; with
    ``-y`` a descriptor's path annotation (``3</path>``, ``AT_FDCWD</cwd>``)."""

    text: str
    annotation: bytes | None = None
    deleted: bool = False


@dataclass(frozen=True)
class _Named:
    key: str
    value: _Value


_Value = _Str | _Atom | _Named | list["_Value"] | dict[str, "_Value"]

_HEX_ONLY = re.compile(r"(?:\\x[0-9a-fA-F]{2})*")
_SIMPLE_ESCAPES = {"n": 10, "t": 9, "r": 13, "v": 11, "f": 12, "a": 7, "b": 8, "e": 27, '"': 34, "\\": 92, "'": 39}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# What can end or structure an atom: a separator, a closing bracket, a nested
# parenthesis, an annotation, a key's "=", a comment.
_ATOM_SPECIAL = re.compile(r"[,()\]}<=/]")


def _unescape(text: str) -> bytes:
    """The bytes of a C string body as strace prints it."""
    if _HEX_ONLY.fullmatch(text):
        return bytes.fromhex(text.replace("\\x", ""))
    out = bytearray()
    index = 0
    length = len(text)
    while index < length:
        char = text[index]
        if char != "\\" or index + 1 >= length:
            out += char.encode("utf-8", errors="surrogateescape")
            index += 1
            continue
        escape = text[index + 1]
        if escape == "x":
            digits = text[index + 2 : index + 4]
            out.append(int(digits, 16))
            index += 2 + len(digits)
        elif escape in "01234567":
            end = index + 1
            while end < length and end < index + 4 and text[end] in "01234567":
                end += 1
            out.append(int(text[index + 1 : end], 8) & 0xFF)
            index = end
        else:
            out.append(_SIMPLE_ESCAPES.get(escape, ord(escape) & 0xFF))
            index += 2
    return bytes(out)


class _SyntaxError(ValueError):
    pass


class _Parser:
    """A reader of the argument list of one strace line."""

    def __init__(self, text: str, position: int) -> None:
        self.text = text
        self.position = position

    def _skip_space(self) -> None:
        text = self.text
        while self.position < len(text):
            if text[self.position] == " ":
                self.position += 1
            elif text.startswith("/*", self.position):
                end = text.find("*/", self.position + 2)
                self.position = len(text) if end < 0 else end + 2
            else:
                return

    def sequence(self, close: str) -> list[_Value]:
        """Values separated by commas up to ``close`` (consumed)."""
        values: list[_Value] = []
        self._skip_space()
        if self.text.startswith(close, self.position):
            self.position += 1
            return values
        while True:
            values.append(self.value())
            self._skip_space()
            if self.text.startswith("=>", self.position):  # clone3's "{...} => {...}": the updated struct
                self.position += 2
                self._skip_space()
                self.value()
                self._skip_space()
            if self.position >= len(self.text):
                raise _SyntaxError(f"no closing {close!r}")
            char = self.text[self.position]
            self.position += 1
            if char == close:
                return values
            if char != ",":
                raise _SyntaxError(f"unexpected {char!r} at {self.position - 1}")
            self._skip_space()

    def value(self) -> _Value:
        self._skip_space()
        if self.position >= len(self.text):
            raise _SyntaxError("unexpected end of line")
        char = self.text[self.position]
        if char == '"':
            return self._string()
        if char == "[":
            self.position += 1
            return self.sequence("]")
        if char == "{":
            self.position += 1
            entries = self.sequence("}")
            struct: dict[str, _Value] = {}
            for index, entry in enumerate(entries):
                if isinstance(entry, _Named):
                    struct[entry.key] = entry.value
                else:
                    struct[str(index)] = entry
            return struct
        return self._atom()

    def _string(self) -> _Str:
        text = self.text
        start = self.position + 1
        end = start
        while True:
            end = text.find('"', end)
            if end < 0:
                raise _SyntaxError("unterminated string")
            backslashes = 0
            while end - 1 - backslashes >= start and text[end - 1 - backslashes] == "\\":
                backslashes += 1
            if backslashes % 2 == 0:
                break
            end += 1
        self.position = end + 1
        truncated = text.startswith("...", self.position)
        if truncated:
            self.position += 3
        return _Str(text[start:end], truncated)

    def _atom(self) -> _Value:
        text = self.text
        start = self.position
        depth = 0
        annotation: bytes | None = None
        deleted = False
        pieces: list[str] = []
        while True:
            found = _ATOM_SPECIAL.search(text, self.position)
            if found is None:
                self.position = len(text)
                break
            self.position = found.start()
            char = text[self.position]
            if depth == 0 and (char in ",)]}" or text.startswith("=>", self.position)):
                break
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
            elif char == "<" and annotation is None and depth == 0:
                end = text.find(">", self.position + 1)
                if end < 0:
                    raise _SyntaxError("unterminated annotation")
                pieces.append(text[start : self.position])
                annotation = _unescape(text[self.position + 1 : end])
                self.position = end + 1
                if text.startswith("(deleted)", self.position):
                    deleted = True
                    self.position += len("(deleted)")
                start = self.position
                continue
            elif char == "=" and depth == 0 and annotation is None:
                key = ("".join(pieces) + text[start : self.position]).strip()
                if _IDENTIFIER.fullmatch(key) and text[self.position + 1 : self.position + 2] not in ("=", ">"):
                    self.position += 1
                    return _Named(key, self.value())
            elif char == "/" and text.startswith("/*", self.position):
                end = text.find("*/", self.position + 2)
                pieces.append(text[start : self.position])
                self.position = len(text) if end < 0 else end + 2
                start = self.position
                continue
            self.position += 1
        pieces.append(text[start : self.position])
        return _Atom("".join(pieces).strip(), annotation, deleted)


_LINE = re.compile(r"(?:\[pid +(\d+)\] |(\d+) +)?(.*)", re.DOTALL)
_RESUMED = re.compile(r"<\.\.\. ([A-Za-z0-9_]+) resumed> ?(.*)", re.DOTALL)
_CALL_START = re.compile(r"([A-Za-z0-9_]+)\(")
_UNFINISHED = " <unfinished ...>"
_RETURN = re.compile(r"\s*=\s*(-?\d+|0x[0-9a-fA-F]+|\?)(?:<([^>]*)>(\(deleted\))?)?\s*(.*)", re.DOTALL)


@dataclass(frozen=True)
class _Call:
    pid: int
    name: str
    text: str  # "name(args) = result", joined when it was unfinished


@dataclass(frozen=True)
class _Result:
    """A successful call's arguments and return value."""

    args: list[_Value]
    value: int
    annotation: bytes | None


def _calls(text: str, wanted: frozenset[str]) -> Iterator[_Call]:
    """The completed calls of ``wanted`` names, in completion order."""
    pending: dict[int, tuple[str, str]] = {}
    for raw in text.splitlines():
        match = _LINE.fullmatch(raw)
        if match is None:  # pragma: no cover - the pattern matches everything
            continue
        pid = int(match.group(1) or match.group(2) or 0)
        rest = match.group(3)
        if rest.startswith(("+++", "---")):
            if rest.startswith("+++"):
                pending.pop(pid, None)  # it exited or was killed inside a call
            continue
        resumed = _RESUMED.match(rest)
        if resumed is not None:
            started = pending.pop(pid, None)
            if started is None or started[0] != resumed.group(1):
                continue
            name, head = started
            rest = head + resumed.group(2)
        else:
            call = _CALL_START.match(rest)
            if call is None:
                continue
            name = call.group(1)
            if rest.endswith(_UNFINISHED):
                pending[pid] = (name, rest[: -len(_UNFINISHED)])
                continue
        if name in wanted:
            yield _Call(pid, name, rest)


def _result(call: _Call) -> _Result | None:
    """The parsed call, None when it failed (or its result is unknown)."""
    parser = _Parser(call.text, len(call.name) + 1)
    args = parser.sequence(")")
    match = _RETURN.fullmatch(call.text, parser.position)
    if match is None:
        raise _SyntaxError("no result")
    number, annotation, _deleted, rest = match.groups()
    if number == "?":
        return None
    value = int(number, 0)
    if value < 0 and re.match(r"E[A-Z0-9]+", rest):
        return None
    if rest.startswith(("ERESTART", "EINTR")):
        return None
    return _Result(args, value, _unescape(annotation) if annotation is not None else None)


def _text(value: _Value) -> str:
    if isinstance(value, _Atom):
        return value.text
    if isinstance(value, _Named):
        return _text(value.value)
    raise _SyntaxError(f"expected a constant, not {value!r}")


def _int(value: _Value) -> int:
    text = _text(value)
    if text == "NULL":
        return 0
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return int(text, 0) if not re.fullmatch(r"-?0[0-7]+", text) else int(text, 8)


def _is_null(value: _Value) -> bool:
    return isinstance(value, _Atom) and value.text == "NULL"


def _flags(value: _Value) -> set[str]:
    return {flag.strip() for flag in _text(value).split("|")}


def _bytes(value: _Value) -> _Str:
    if isinstance(value, _Str):
        return value
    if isinstance(value, _Named):
        return _bytes(value.value)
    raise _SyntaxError(f"expected a string, not {value!r}")


def _iovec(value: _Value) -> _Str:
    """The data of an iovec array, joined."""
    if not isinstance(value, list):
        raise _SyntaxError(f"expected an iovec array, not {value!r}")
    pieces: list[bytes] = []
    truncated = False
    for entry in value:
        if isinstance(entry, dict) and "iov_base" in entry:
            piece = _bytes(entry["iov_base"])
            pieces.append(piece.data)
            truncated = truncated or piece.truncated
            with contextlib.suppress(_SyntaxError, ValueError):
                if len(piece.data) < _int(entry.get("iov_len", _Atom("0"))):
                    truncated = True
        else:  # "..." : strace left elements out
            truncated = True
    return _Str("", truncated, b"".join(pieces))


def _struct_field(value: _Value, key: str) -> _Value | None:
    if isinstance(value, dict):
        return value.get(key)
    return None


# -- the kernel's bookkeeping -------------------------------------------------

_STDIN = "stdin"
_STDOUT = "stdout"
_FILE = "file"


@dataclass(eq=False)
class _Description:
    """An open file description: shared by dup'ed and inherited descriptors."""

    kind: str  # _STDIN, _STDOUT or _FILE
    path: str | None  # absolute, normalised (None: unknown or deleted)
    offset: int | None  # None: unknown
    append: bool = False
    directory: bool = False
    # It lost its name while the file had another one (a hard link): what is
    # done through it changes a named file the tracer cannot name.
    orphaned_link: bool = False


@dataclass(eq=False)
class _Descriptor:
    description: _Description
    cloexec: bool = False


@dataclass(eq=False)
class _Files:
    table: dict[int, _Descriptor] = field(default_factory=dict)

    def copy(self) -> _Files:
        return _Files({fd: _Descriptor(entry.description, entry.cloexec) for fd, entry in self.table.items()})


@dataclass(eq=False)
class _Fs:
    cwd: str | None


@dataclass(eq=False)
class _Process:
    files: _Files
    fs: _Fs


_AT_FDCWD = ("AT_FDCWD", "-100")


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _moved(path: str, source: str, destination: str) -> str | None:
    """Where ``path`` is after ``source`` moved to ``destination`` (None: not moved)."""
    if path == source:
        return destination
    if path.startswith(source + "/"):
        return destination + path[len(source) :]
    return None


_T = TypeVar("_T")


def _move_keys(table: dict[str, _T], source: str, destination: str) -> None:
    moving = {path: moved for path in table if (moved := _moved(path, source, destination)) is not None}
    values = {path: table.pop(path) for path in moving}
    for path, moved in moving.items():
        table[moved] = values[path]


class _Tracer:
    def __init__(self, root: str, initial_files: Mapping[str, int] | None, cwd: str | None) -> None:
        self.root = os.path.normpath(os.path.abspath(root))
        self.real_root = os.path.realpath(self.root)
        self.cwd = cwd
        self.events: list[TraceEvent] = []
        self.requests_read = 0
        self.answered = 0
        self.processes: dict[int, _Process] = {}
        self.clones: dict[int, tuple[int, set[str]]] = {}
        self.exists: dict[str, bool] = {}
        self.sizes: dict[str, int] = {}
        self.directories: set[str] = set()
        self.linked: set[str] = set()  # names of files with several links
        self.initial = initial_files is not None
        if initial_files is not None:
            for path, size in initial_files.items():
                local = self.local(os.path.normpath(os.path.abspath(path)))
                if local is not None:
                    self.exists[local] = True
                    self.sizes[local] = size

    # -- paths ----------------------------------------------------------------

    def canonical(self, path: str) -> str:
        """An absolute path normalised, in the root's spelling when under it."""
        path = os.path.normpath(path)
        return self.local(path) or path

    def local(self, path: str) -> str | None:
        """``path`` (absolute, normalised) in the root's spelling when it is
        under the root, else None."""
        if _under(path, self.root):
            return path
        if self.real_root != self.root and _under(path, self.real_root):
            return self.root + path[len(self.real_root) :]
        return None

    def absolute(self, raw: bytes, base: str | None) -> str | None:
        """An argument path made absolute against ``base`` (a directory) and
        canonical, or None when it is relative to an unknown directory."""
        path = os.fsdecode(raw)
        if not path.startswith("/"):
            if base is None:
                return None
            path = os.path.join(base, path)
        return self.canonical(path)

    def dirfd_base(self, process: _Process, value: _Value) -> str | None:
        """The directory a ``*at`` call's dirfd names."""
        atom = value.value if isinstance(value, _Named) else value
        if not isinstance(atom, _Atom):
            return None
        if atom.annotation is not None:
            path = os.fsdecode(atom.annotation)
            if not path.startswith("/") or atom.deleted:
                return None
            path = self.canonical(path)
            if atom.text in _AT_FDCWD:
                process.fs.cwd = path
            return path
        if atom.text in _AT_FDCWD:
            return process.fs.cwd
        with contextlib.suppress(ValueError):
            entry = process.files.table.get(int(atom.text, 0))
            if entry is not None:
                return entry.description.path
        return None

    def at_path(self, process: _Process, dirfd: _Value, raw: _Value) -> str | None:
        return self.absolute(_bytes(raw).data, self.dirfd_base(process, dirfd))

    def cwd_path(self, process: _Process, raw: _Value) -> str | None:
        return self.absolute(_bytes(raw).data, process.fs.cwd)

    # -- processes --------------------------------------------------------------

    def process(self, pid: int) -> _Process:
        found = self.processes.get(pid)
        if found is not None:
            return found
        clone = self.clones.pop(pid, None)
        if clone is not None:
            parent = self.process(clone[0])
            flags = clone[1]
            files = parent.files if "CLONE_FILES" in flags else parent.files.copy()
            fs = parent.fs if "CLONE_FS" in flags else _Fs(parent.fs.cwd)
            made = _Process(files, fs)
        else:
            # The traced command itself (or a process whose creation was not
            # seen): the protocol's pipes on 0 and 1.
            made = _Process(
                _Files(
                    {
                        0: _Descriptor(_Description(_STDIN, None, None)),
                        1: _Descriptor(_Description(_STDOUT, None, None)),
                    }
                ),
                _Fs(self.cwd),
            )
        self.processes[pid] = made
        return made

    def descriptions(self) -> list[_Description]:
        """Every open file description, once."""
        tables = {id(process.files): process.files for process in self.processes.values()}
        unique = {
            id(entry.description): entry.description for files in tables.values() for entry in files.table.values()
        }
        return list(unique.values())

    # -- descriptors ------------------------------------------------------------

    def descriptor(self, process: _Process, value: _Value) -> tuple[int | None, _Description | None, str | None]:
        """(fd, its description when the table knows it, the path it names now
        when that is under the root, else None).

        With ``-y`` the annotation names the file; a table entry naming
        another file is stale (the descriptor came from a call not traced):
        the description is then unknown."""
        atom = value.value if isinstance(value, _Named) else value
        if not isinstance(atom, _Atom):
            raise _SyntaxError(f"expected a descriptor, not {value!r}")
        try:
            fd: int | None = int(atom.text, 0)
        except ValueError:
            fd = None
        entry = process.files.table.get(fd) if fd is not None else None
        description = entry.description if entry is not None else None
        if description is not None and description.kind != _FILE:
            return fd, description, None
        if atom.annotation is None:
            path = description.path if description is not None else None
            return fd, description, self.local(path) if path is not None else None
        named = os.fsdecode(atom.annotation)
        if not named.startswith("/"):  # a pipe, a socket, an anonymous inode
            return fd, None, None
        if atom.deleted:
            if description is not None:
                description.path = None  # the file lost its name
            return fd, description, None
        named = self.canonical(named)
        if description is not None and description.path != named:
            description = None
        return fd, description, self.local(named)

    def install(self, process: _Process, fd: int, description: _Description, *, cloexec: bool) -> None:
        process.files.table[fd] = _Descriptor(description, cloexec)

    # -- sizes and existence ------------------------------------------------------

    def size(self, path: str) -> int:
        known = self.sizes.get(path)
        if known is not None:
            return known
        if not self.initial and self.exists.get(path, True):
            with contextlib.suppress(OSError):
                return os.path.getsize(path)
        return 0

    def is_directory(self, path: str) -> bool:
        return path in self.directories or (path not in self.exists and os.path.isdir(path))

    # -- events ---------------------------------------------------------------

    def emit(self, event: TraceEvent) -> None:
        self.events.append(event)

    def orphaned(self, name: str, description: _Description | None, path: str | None) -> bool:
        """Report (and say) when a call goes through a descriptor whose file
        lost that name but has another one."""
        if path is None and description is not None and description.orphaned_link:
            self.unmodelled(name, "through a descriptor whose name was removed while the file had another link")
            return True
        return False

    def unmodelled(self, syscall: str, detail: str) -> None:
        self.emit(Unmodelled(syscall, detail))

    def written(self, path: str, offset: int, data: bytes) -> None:
        if not data:
            return
        self.emit(Write(path, offset, data))
        self.sizes[path] = max(self.size(path), offset + len(data))
        self.exists[path] = True

    def truncated(self, path: str, size: int) -> None:
        self.emit(Truncate(path, size))
        self.sizes[path] = size
        self.exists[path] = True

    def renamed(self, source: str, destination: str) -> None:
        """Follow a rename in the descriptions, the sizes and what exists: the
        destination's old file (or tree) is replaced."""
        for description in self.descriptions():
            if description.path is None:
                continue
            moved = _moved(description.path, source, destination)
            if moved is not None:
                description.path = moved
            elif _moved(description.path, destination, destination) is not None:
                description.orphaned_link = description.path in self.linked
                description.path = None
        for path in [path for path in self.exists if _moved(path, destination, destination) is not None]:
            self.exists[path] = False
        for path in [path for path in self.sizes if _moved(path, destination, destination) is not None]:
            del self.sizes[path]
        _move_keys(self.exists, source, destination)
        _move_keys(self.sizes, source, destination)
        for names in (self.directories, self.linked):
            for path in [path for path in names if _moved(path, destination, destination) is not None]:
                names.discard(path)
            for path in [path for path in names if _moved(path, source, destination) is not None]:
                moved = _moved(path, source, destination)
                assert moved is not None
                names.discard(path)
                names.add(moved)
        self.exists[source] = False

    def unlinked(self, path: str) -> None:
        for description in self.descriptions():
            if description.path == path:
                description.path = None
                description.orphaned_link = path in self.linked
        self.linked.discard(path)
        self.exists[path] = False
        self.sizes.pop(path, None)

    # -- the calls ------------------------------------------------------------

    def handle(self, call: _Call) -> None:
        try:
            result = _result(call)
        except (_SyntaxError, ValueError, IndexError) as exc:
            self.unmodelled(call.name, f"cannot parse strace's line ({exc}): {call.text[:200]}")
            return
        if result is None:
            return
        process = self.process(call.pid)
        handler = getattr(self, f"_on_{call.name}", None)
        if handler is None:  # pragma: no cover - every traced name has a handler
            return
        try:
            handler(process, result.args, result)
        except (_SyntaxError, ValueError, IndexError, KeyError) as exc:
            self.unmodelled(call.name, f"cannot follow strace's line ({exc}): {call.text[:200]}")

    # opening

    def _open(self, process: _Process, name: str, path: str | None, flags: set[str], result: _Result) -> None:
        fd = result.value
        opened = path
        if result.annotation is not None:
            named = os.fsdecode(result.annotation)
            if named.startswith("/"):
                opened = self.canonical(named)
        if opened is None:
            self.unmodelled(name, "a path relative to an unknown directory")
            return
        local = self.local(opened)
        directory = "O_DIRECTORY" in flags or (local is not None and self.is_directory(local))
        description = _Description(_FILE, opened, 0, append="O_APPEND" in flags, directory=directory)
        self.install(process, fd, description, cloexec="O_CLOEXEC" in flags)
        if local is None:
            return
        if "O_TMPFILE" in flags:
            description.path = None
            self.unmodelled(name, f"O_TMPFILE in {local}")
            return
        if "O_CREAT" in flags and not self.exists.get(local, False):
            self.emit(Create(local))
            self.exists[local] = True
            self.sizes[local] = 0
        elif "O_TRUNC" in flags and not directory:
            self.truncated(local, 0)
        else:
            self.exists[local] = True
        if "O_DIRECT" in flags:
            self.unmodelled(name, f"O_DIRECT on {local}")

    def _on_open(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self._open(process, "open", self.cwd_path(process, args[0]), _flags(args[1]), result)

    def _on_creat(self, process: _Process, args: list[_Value], result: _Result) -> None:
        path = self.cwd_path(process, args[0])
        self._open(process, "creat", path, {"O_CREAT", "O_WRONLY", "O_TRUNC"}, result)

    def _on_openat(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self._open(process, "openat", self.at_path(process, args[0], args[1]), _flags(args[2]), result)

    def _on_openat2(self, process: _Process, args: list[_Value], result: _Result) -> None:
        flags = _struct_field(args[2], "flags")
        if flags is None:
            raise _SyntaxError("openat2 without flags")
        self._open(process, "openat2", self.at_path(process, args[0], args[1]), _flags(flags), result)

    # data

    def _write(
        self,
        process: _Process,
        name: str,
        fd_value: _Value,
        data: _Str,
        count: int,
        *,
        offset: int | None = None,
        append: bool = False,
    ) -> None:
        _fd, description, path = self.descriptor(process, fd_value)
        if len(data.data) < count and data.truncated:
            if path is not None:
                self.unmodelled(name, f"the data written to {path} was cut by strace (-s)")
            return
        if self.orphaned(name, description, path):
            return
        written = data.data[:count]
        if description is not None and description.kind == _STDOUT:
            lines = written.count(b"\n")
            if lines:
                self.answered += lines
                self.emit(Answered(lines, self.answered))
            return
        if description is not None and description.kind != _FILE:
            return
        at: int | None
        if (description is not None and description.append) or append:
            at = self.size(path) if path is not None else None
            if description is not None and offset is None:
                description.offset = at + count if at is not None else None
        elif offset is not None:
            at = offset
        elif description is not None and description.offset is not None:
            at = description.offset
            description.offset += count
        else:
            if path is not None:
                self.unmodelled(name, f"a write to {path} at an unknown offset")
            return
        if path is None or at is None:
            return
        self.written(path, at, written)

    def _on_write(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self._write(process, "write", args[0], _bytes(args[1]), result.value)

    def _on_pwrite64(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self._write(process, "pwrite64", args[0], _bytes(args[1]), result.value, offset=_int(args[3]))

    def _on_writev(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self._write(process, "writev", args[0], _iovec(args[1]), result.value)

    def _on_pwritev(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self._write(process, "pwritev", args[0], _iovec(args[1]), result.value, offset=_int(args[3]))

    def _on_pwritev2(self, process: _Process, args: list[_Value], result: _Result) -> None:
        offset: int | None = _int(args[3])
        flags = _flags(args[4]) if len(args) > 4 else set()
        if offset == -1:
            offset = None  # the current offset, moved
        self._write(
            process, "pwritev2", args[0], _iovec(args[1]), result.value, offset=offset, append="RWF_APPEND" in flags
        )

    def _read(self, process: _Process, fd_value: _Value, data: _Str | None, count: int) -> None:
        _fd, description, _path = self.descriptor(process, fd_value)
        if description is None:
            return
        if description.kind == _STDIN:
            if data is not None and count > 0:
                lines = data.data[:count].count(b"\n")
                if lines:
                    self.requests_read += lines
                    self.emit(RequestRead(lines, self.requests_read))
        elif description.kind == _FILE and description.offset is not None:
            description.offset += count

    def _on_read(self, process: _Process, args: list[_Value], result: _Result) -> None:
        data = args[1] if isinstance(args[1], _Str) else None
        self._read(process, args[0], data, result.value)

    def _on_readv(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self._read(process, args[0], _iovec(args[1]), result.value)

    def _on_lseek(self, process: _Process, args: list[_Value], result: _Result) -> None:
        _fd, description, _path = self.descriptor(process, args[0])
        if description is not None and description.kind == _FILE:
            description.offset = result.value

    def _on_ftruncate(self, process: _Process, args: list[_Value], result: _Result) -> None:
        _fd, description, path = self.descriptor(process, args[0])
        if self.orphaned("ftruncate", description, path):
            return
        if path is not None:
            self.truncated(path, _int(args[1]))

    def _on_truncate(self, process: _Process, args: list[_Value], result: _Result) -> None:
        path = self.cwd_path(process, args[0])
        if path is None:
            self.unmodelled("truncate", "a path relative to an unknown directory")
            return
        local = self.local(path)
        if local is not None:
            self.truncated(local, _int(args[1]))

    def _on_fallocate(self, process: _Process, args: list[_Value], result: _Result) -> None:
        _fd, _description, path = self.descriptor(process, args[0])
        if path is None:
            return
        mode = _flags(args[1])
        offset, length = _int(args[2]), _int(args[3])
        if mode <= {"0"}:
            if offset + length > self.size(path):
                self.truncated(path, offset + length)
        elif mode == {"FALLOC_FL_KEEP_SIZE"}:
            pass  # space reserved, size and contents unchanged: nothing to model
        else:
            self.unmodelled("fallocate", f"{'|'.join(sorted(mode))} on {path} at {offset} for {length}")

    # durability

    def _sync(self, process: _Process, name: str, args: list[_Value]) -> None:
        _fd, description, path = self.descriptor(process, args[0])
        if self.orphaned(name, description, path):
            return
        if path is not None:
            directory = description.directory if description is not None else self.is_directory(path)
            self.emit(Sync(path, directory or self.is_directory(path)))

    def _on_fsync(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self._sync(process, "fsync", args)

    def _on_fdatasync(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self._sync(process, "fdatasync", args)

    def _on_sync_file_range(self, process: _Process, args: list[_Value], result: _Result) -> None:
        _fd, _description, path = self.descriptor(process, args[0])
        if path is not None:
            self.unmodelled("sync_file_range", f"on {path}")

    def _on_syncfs(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self.emit(SyncAll())

    def _on_sync(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self.emit(SyncAll())

    # the namespace

    def _rename(self, name: str, source: str | None, destination: str | None, flags: set[str]) -> None:
        if source is None or destination is None:
            self.unmodelled(name, "a path relative to an unknown directory")
            return
        local_source, local_destination = self.local(source), self.local(destination)
        if local_source is None and local_destination is None:
            return
        if flags - {"0", "RENAME_NOREPLACE"}:
            self.unmodelled(name, f"{'|'.join(sorted(flags))} of {source} and {destination}")
            return
        if local_source is not None and local_destination is not None:
            self.emit(Rename(local_source, local_destination))
            self.renamed(local_source, local_destination)
        elif local_source is not None:  # moved out of the root: gone from it
            self.emit(Unlink(local_source))
            self.unlinked(local_source)
        else:
            self.unmodelled(name, f"{source} moved into the root as {destination}")

    def _on_rename(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self._rename("rename", self.cwd_path(process, args[0]), self.cwd_path(process, args[1]), set())

    def _on_renameat(self, process: _Process, args: list[_Value], result: _Result) -> None:
        source = self.at_path(process, args[0], args[1])
        self._rename("renameat", source, self.at_path(process, args[2], args[3]), set())

    def _on_renameat2(self, process: _Process, args: list[_Value], result: _Result) -> None:
        source = self.at_path(process, args[0], args[1])
        flags = _flags(args[4]) if len(args) > 4 else set()
        self._rename("renameat2", source, self.at_path(process, args[2], args[3]), flags)

    def _unlink(self, name: str, path: str | None) -> None:
        if path is None:
            self.unmodelled(name, "a path relative to an unknown directory")
            return
        local = self.local(path)
        if local is not None:
            self.emit(Unlink(local))
            self.unlinked(local)

    def _on_unlink(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self._unlink("unlink", self.cwd_path(process, args[0]))

    def _on_unlinkat(self, process: _Process, args: list[_Value], result: _Result) -> None:
        if "AT_REMOVEDIR" in _flags(args[2]):
            return  # the model never removes directories
        self._unlink("unlinkat", self.at_path(process, args[0], args[1]))

    def _mkdir(self, name: str, path: str | None) -> None:
        if path is None:
            self.unmodelled(name, "a path relative to an unknown directory")
            return
        local = self.local(path)
        if local is not None:
            self.emit(MakeDirectory(local))
            self.directories.add(local)
            self.exists[local] = True

    def _on_mkdir(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self._mkdir("mkdir", self.cwd_path(process, args[0]))

    def _on_mkdirat(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self._mkdir("mkdirat", self.at_path(process, args[0], args[1]))

    def _link(self, name: str, source: str | None, destination: str | None) -> None:
        if source is None or destination is None:
            self.unmodelled(name, "a path relative to an unknown directory")
            return
        local_source, local_destination = self.local(source), self.local(destination)
        if local_destination is None:
            return
        if local_source is None:
            self.unmodelled(name, f"{source} linked into the root as {destination}")
            return
        self.emit(Link(local_source, local_destination))
        self.linked.update((local_source, local_destination))
        self.exists[local_destination] = True
        self.sizes[local_destination] = self.size(local_source)

    def _on_link(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self._link("link", self.cwd_path(process, args[0]), self.cwd_path(process, args[1]))

    def _on_linkat(self, process: _Process, args: list[_Value], result: _Result) -> None:
        flags = _flags(args[4]) if len(args) > 4 else set()
        destination = self.at_path(process, args[2], args[3])
        if "AT_EMPTY_PATH" in flags and not _bytes(args[1]).data:
            local = self.local(destination) if destination is not None else None
            if local is not None or destination is None:
                self.unmodelled("linkat", f"a descriptor linked as {destination}")
            return
        self._link("linkat", self.at_path(process, args[0], args[1]), destination)

    def _symlink(self, name: str, destination: str | None) -> None:
        if destination is None or self.local(destination) is not None:
            self.unmodelled(name, f"a symbolic link {destination}")

    def _on_symlink(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self._symlink("symlink", self.cwd_path(process, args[1]))

    def _on_symlinkat(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self._symlink("symlinkat", self.at_path(process, args[1], args[2]))

    # descriptors

    def _on_close(self, process: _Process, args: list[_Value], result: _Result) -> None:
        fd, _description, _path = self.descriptor(process, args[0])
        if fd is not None:
            process.files.table.pop(fd, None)

    def _on_close_range(self, process: _Process, args: list[_Value], result: _Result) -> None:
        first, last = _int(args[0]), _int(args[1])
        flags = _flags(args[2]) if len(args) > 2 else set()
        for fd in [fd for fd in process.files.table if first <= fd <= last]:
            if "CLOSE_RANGE_CLOEXEC" in flags:
                process.files.table[fd].cloexec = True
            else:
                del process.files.table[fd]

    def _dup(self, process: _Process, old: _Value, new_fd: int, *, cloexec: bool) -> None:
        _fd, description, path = self.descriptor(process, old)
        if description is None:
            description = _Description(_FILE, path, None)
        self.install(process, new_fd, description, cloexec=cloexec)

    def _on_dup(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self._dup(process, args[0], result.value, cloexec=False)

    def _on_dup2(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self._dup(process, args[0], result.value, cloexec=False)

    def _on_dup3(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self._dup(process, args[0], result.value, cloexec="O_CLOEXEC" in _flags(args[2]))

    def _on_fcntl(self, process: _Process, args: list[_Value], result: _Result) -> None:
        command = _text(args[1])
        if command in ("F_DUPFD", "F_DUPFD_CLOEXEC"):
            self._dup(process, args[0], result.value, cloexec=command == "F_DUPFD_CLOEXEC")
            return
        fd, description, path = self.descriptor(process, args[0])
        if command == "F_SETFL" and description is not None:
            flags = _flags(args[2])
            description.append = "O_APPEND" in flags
            if "O_DIRECT" in flags and path is not None:
                self.unmodelled("fcntl", f"O_DIRECT on {path}")
        elif command == "F_SETFD" and fd is not None and fd in process.files.table:
            process.files.table[fd].cloexec = "FD_CLOEXEC" in _flags(args[2])

    # processes

    def _on_clone(self, process: _Process, args: list[_Value], result: _Result) -> None:
        pass  # read before the calls (``clone_flags``): the child may run first

    _on_clone3 = _on_clone
    _on_fork = _on_clone
    _on_vfork = _on_clone

    def _on_execve(self, process: _Process, args: list[_Value], result: _Result) -> None:
        table = process.files.table
        for fd in [fd for fd, entry in table.items() if entry.cloexec]:
            del table[fd]

    _on_execveat = _on_execve

    def _on_chdir(self, process: _Process, args: list[_Value], result: _Result) -> None:
        process.fs.cwd = self.cwd_path(process, args[0])

    def _on_fchdir(self, process: _Process, args: list[_Value], result: _Result) -> None:
        atom = args[0]
        if isinstance(atom, _Atom) and atom.annotation is not None:
            process.fs.cwd = os.path.normpath(os.fsdecode(atom.annotation))
            return
        _fd, description, _path = self.descriptor(process, atom)
        process.fs.cwd = description.path if description is not None else None

    # what the model cannot follow

    def _on_mmap(self, process: _Process, args: list[_Value], result: _Result) -> None:
        prot, flags = _flags(args[2]), _flags(args[3])
        if "PROT_WRITE" not in prot or not flags & {"MAP_SHARED", "MAP_SHARED_VALIDATE"}:
            return
        _fd, _description, path = self.descriptor(process, args[4])
        if path is not None:
            self.unmodelled("mmap", f"a shared writable mapping of {path}")

    def _on_io_uring_setup(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self.unmodelled("io_uring_setup", "io_uring: its file operations are not seen")

    def _on_io_setup(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self.unmodelled("io_setup", "Linux AIO: its file operations are not seen")

    def _copy(self, process: _Process, name: str, source: _Value, destination: _Value, moved: list[bool]) -> None:
        """``moved``: whether each side's offset moved (no explicit offset)."""
        touched: list[str] = []
        for value, moves in zip((source, destination), moved, strict=True):
            _fd, description, path = self.descriptor(process, value)
            if path is not None:
                touched.append(path)
                if moves and description is not None:
                    description.offset = None
        if touched:
            self.unmodelled(name, f"data copied in the kernel, touching {' and '.join(touched)}")

    def _on_copy_file_range(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self._copy(process, "copy_file_range", args[0], args[2], [_is_null(args[1]), _is_null(args[3])])

    def _on_sendfile(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self._copy(process, "sendfile", args[1], args[0], [_is_null(args[2]), True])

    def _on_splice(self, process: _Process, args: list[_Value], result: _Result) -> None:
        self._copy(process, "splice", args[0], args[2], [_is_null(args[1]), _is_null(args[3])])


_CLONES = frozenset({"clone", "clone3", "fork", "vfork"})


def _clone_flags(call: _Call) -> tuple[int, set[str]] | None:
    """(child pid, clone flags) of a successful process-creating call."""
    try:
        result = _result(call)
    except (_SyntaxError, ValueError, IndexError):
        return None
    if result is None or result.value <= 0:
        return None
    flags: set[str] = set()
    if call.name == "clone":
        for arg in result.args:
            if isinstance(arg, _Named) and arg.key == "flags":
                flags = _flags(arg.value)
    elif call.name == "clone3" and result.args:
        value = _struct_field(result.args[0], "flags")
        if value is not None:
            flags = _flags(value)
    return result.value, flags


def parse_trace(
    text: str, *, root: str, initial_files: Mapping[str, int] | None = None, cwd: str | None = None
) -> list[TraceEvent]:
    """The events of an ``strace -f -y -xx`` trace (``traced_command``'s)
    under ``root``, with the protocol's ``RequestRead`` and ``Answered``.

    ``initial_files``: the files under ``root`` and their sizes when the
    traced command started (``snapshot_files``); without it, a path is
    assumed missing until the trace shows it and a file's size before the
    trace is its size on disk now. ``cwd``: the traced command's working
    directory, for relative paths before the trace shows one (``AT_FDCWD``
    annotations and ``chdir`` update it)."""
    wanted = frozenset(TRACED_SYSCALLS)
    tracer = _Tracer(root, initial_files, cwd)
    calls = list(_calls(text, wanted))
    for call in calls:
        if call.name in _CLONES:
            found = _clone_flags(call)
            if found is not None:
                tracer.clones[found[0]] = (call.pid, found[1])
    for call in calls:
        tracer.handle(call)
    return tracer.events
