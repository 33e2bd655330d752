"""The strace tracer: hand-written traces parsed into the exact events, a real
script's system calls followed through offsets, dups and renames, and the
reference adapter's session seen from outside."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

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
from mrecordlog.oracle.tracer import (
    TRACED_SYSCALLS,
    parse_trace,
    snapshot_files,
    strace_unavailable,
    trace_adapter_session,
    traced_command,
)

_UNAVAILABLE = strace_unavailable()
if _UNAVAILABLE is not None:
    pytest.skip(f"strace cannot trace here: {_UNAVAILABLE}", allow_module_level=True)

ROOT = "/r"
NL = "\n"
BINARY = b"\x00\xff\n\\"
HELLO = '{"op":"hello"}\n'
STATE = '{"op":"state"}\n'
THREAD = (
    "clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM, "
    "child_tid=0x7f0, parent_tid=0x7f0, exit_signal=0, stack=0x7f1, stack_size=0x7fff80, tls=0x7f2}"
)


def hx(data: bytes | str) -> str:
    """A string as ``strace -xx`` prints it (without the quotes)."""
    raw = data.encode() if isinstance(data, str) else data
    return "".join(f"\\x{byte:02x}" for byte in raw)


def fd(number: int | str, path: str, *, deleted: bool = False) -> str:
    """A descriptor as ``strace -y -xx`` prints it."""
    return f"{number}<{hx(path)}>" + ("(deleted)" if deleted else "")


def q(data: bytes | str) -> str:
    return f'"{hx(data)}"'


def iov(data: str) -> str:
    """One element of an iovec array as strace prints it."""
    return f"{{iov_base={q(data)}, iov_len={len(data)}}}"


def parse(text: str, **options: Any) -> list[TraceEvent]:
    return parse_trace(textwrap.dedent(text), root=ROOT, **options)


# -- hand-written traces ---------------------------------------------------------


def test_pid_prefixes_hex_strings_and_annotated_descriptors() -> None:
    events = parse(f"""\
        100 openat(AT_FDCWD<{hx("/home")}>, {q("/r/f")}, O_RDWR|O_CREAT|O_CLOEXEC, 0644) = {fd(3, "/r/f")}
        100 write({fd(3, "/r/f")}, {q(BINARY)}, 4) = 4
        100 write({fd(3, "/r/f")}, {q("ab")}, 2) = 2
        100 openat(AT_FDCWD<{hx("/home")}>, {q("/elsewhere/g")}, O_WRONLY|O_CREAT, 0644) = {fd(4, "/elsewhere/g")}
        100 write({fd(4, "/elsewhere/g")}, {q("not ours")}, 8) = 8
        100 fsync({fd(3, "/r/f")}) = 0
        100 close({fd(3, "/r/f")}) = 0
        100 +++ exited with 0 +++
        """)
    assert events == [
        Create("/r/f"),
        Write("/r/f", 0, BINARY),
        Write("/r/f", 4, b"ab"),
        Sync("/r/f", False),
    ]


def test_unfinished_calls_take_the_place_of_their_resumed_line() -> None:
    events = parse(f"""\
        100 openat(AT_FDCWD, {q("/r/a")}, O_WRONLY|O_CREAT|O_EXCL, 0644) = {fd(3, "/r/a")}
        100 openat(AT_FDCWD, {q("/r/b")}, O_WRONLY|O_CREAT|O_EXCL, 0644) = {fd(4, "/r/b")}
        100 {THREAD} => {{parent_tid=[101]}}, 88) = 101
        100 write({fd(3, "/r/a")}, {q("first")}, 5 <unfinished ...>
        101 write({fd(4, "/r/b")}, {q("second")}, 6) = 6
        100 <... write resumed>) = 5
        101 fsync({fd(4, "/r/b")} <unfinished ...>
        100 fsync({fd(3, "/r/a")}) = 0
        101 <... fsync resumed>) = 0
        """)
    assert events == [
        Create("/r/a"),
        Create("/r/b"),
        Write("/r/b", 0, b"second"),
        Write("/r/a", 0, b"first"),
        Sync("/r/a", False),
        Sync("/r/b", False),
    ]


def test_a_call_resumed_with_its_data_is_joined() -> None:
    events = parse(f"""\
        7 read({fd(0, "pipe:[1]")},  <unfinished ...>
        8 mkdir({q("/r/d")}, 0777) = 0
        7 <... read resumed>{q(HELLO + STATE)}, 8192) = {len(HELLO + STATE)}
        """)
    assert events == [MakeDirectory("/r/d"), RequestRead(2, 2)]


def test_failed_calls_changed_nothing() -> None:
    events = parse(f"""\
        100 openat(AT_FDCWD, {q("/r/missing")}, O_RDONLY) = -1 ENOENT (No such file or directory)
        100 openat(AT_FDCWD, {q("/r/f")}, O_WRONLY|O_CREAT|O_EXCL, 0644) = {fd(3, "/r/f")}
        100 write({fd(3, "/r/f")}, {q("full disk")}, 9) = -1 ENOSPC (No space left on device)
        100 rename({q("/r/f")}, {q("/other/f")}) = -1 EXDEV (Invalid cross-device link)
        100 mkdir({q("/r")}, 0777) = -1 EEXIST (File exists)
        100 fsync({fd(3, "/r/f")}) = -1 EIO (Input/output error)
        100 write({fd(3, "/r/f")}, {q("ok")}, 2) = 2
        100 fsync({fd(3, "/r/f")}) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)
        100 --- SIGCHLD {{si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=5, si_uid=0}} ---
        100 +++ killed by SIGKILL +++
        """)
    assert events == [Create("/r/f"), Write("/r/f", 0, b"ok")]


def test_plain_strings_without_pids_or_annotations() -> None:
    # strace without -f, -y and -xx: the descriptor table names the files.
    events = parse("""\
        open("/r/f", O_RDWR|O_CREAT|O_TRUNC, 0666) = 3
        write(3, "a\\"b\\\\c\\n\\0\\377\\x41", 9) = 9
        pwrite64(3, "Z", 1, 100) = 1
        write(3, "d", 1) = 1
        close(3) = 0
        """)
    assert events == [
        Create("/r/f"),
        Write("/r/f", 0, b'a"b\\c\n\x00\xffA'),
        Write("/r/f", 100, b"Z"),
        Write("/r/f", 9, b"d"),
    ]


def test_protocol_lines_on_stdin_and_stdout() -> None:
    events = parse(f"""\
        100 read({fd(0, "pipe:[5]")}, {q(HELLO)}, 65536) = {len(HELLO)}
        100 write({fd(1, "pipe:[6]")}, {q("{}" + NL)}, 3) = 3
        100 read({fd(0, "pipe:[5]")}, {q(STATE[:5])}, 65536) = 5
        100 read({fd(0, "pipe:[5]")}, {q(STATE[5:] + "{}" + NL + "{}" + NL)}, 65536) = {len(STATE[5:]) + 6}
        100 writev({fd(1, "pipe:[6]")}, [{iov("{}")}, {iov(NL + "{}" + NL)}], 2) = 6
        100 write({fd(2, "pipe:[7]")}, {q("log line" + NL)}, 9) = 9
        100 read({fd(0, "pipe:[5]")}, "", 65536) = 0
        """)
    assert events == [
        RequestRead(1, 1),
        Answered(1, 1),
        RequestRead(3, 4),
        Answered(2, 3),
    ]


def test_stdout_followed_through_dup2() -> None:
    events = parse(f"""\
        100 dup({fd(1, "pipe:[6]")}) = {fd(5, "pipe:[6]")}
        100 openat(AT_FDCWD, {q("/dev/null")}, O_WRONLY) = {fd(1, "/dev/null")}
        100 write({fd(5, "pipe:[6]")}, {q("{}" + NL)}, 3) = 3
        100 write({fd(1, "/dev/null")}, {q("{}" + NL)}, 3) = 3
        """)
    assert events == [Answered(1, 1)]


def test_short_writes_advance_by_the_returned_count() -> None:
    events = parse(f"""\
        100 openat(AT_FDCWD, {q("/r/f")}, O_WRONLY|O_CREAT, 0644) = {fd(3, "/r/f")}
        100 write({fd(3, "/r/f")}, {q("abcdef")}, 6) = 4
        100 write({fd(3, "/r/f")}, {q("ef")}, 2) = 2
        """)
    assert events == [Create("/r/f"), Write("/r/f", 0, b"abcd"), Write("/r/f", 4, b"ef")]


def test_offsets_through_lseek_dup_fcntl_and_reads() -> None:
    events = parse(f"""\
        100 openat(AT_FDCWD, {q("/r/f")}, O_RDWR|O_CREAT, 0644) = {fd(3, "/r/f")}
        100 read({fd(3, "/r/f")}, {q("")}, 4096) = 0
        100 write({fd(3, "/r/f")}, {q("0123456789")}, 10) = 10
        100 lseek({fd(3, "/r/f")}, 2, SEEK_SET) = 2
        100 read({fd(3, "/r/f")}, {q("234")}, 3) = 3
        100 fcntl({fd(3, "/r/f")}, F_DUPFD_CLOEXEC, 0) = {fd(4, "/r/f")}
        100 write({fd(4, "/r/f")}, {q("x")}, 1) = 1
        100 dup2({fd(4, "/r/f")}, 7) = {fd(7, "/r/f")}
        100 dup3({fd(7, "/r/f")}, 8, O_CLOEXEC) = {fd(8, "/r/f")}
        100 write({fd(8, "/r/f")}, {q("y")}, 1) = 1
        100 lseek({fd(4, "/r/f")}, -1, SEEK_END) = 9
        100 pwrite64({fd(3, "/r/f")}, {q("P")}, 1, 0) = 1
        100 write({fd(3, "/r/f")}, {q("z")}, 1) = 1
        100 pwritev({fd(3, "/r/f")}, [{{iov_base={q("Q")}, iov_len=1}}], 1, 1) = 1
        100 pwritev2({fd(3, "/r/f")}, [{{iov_base={q("w")}, iov_len=1}}], 1, -1, 0) = 1
        """)
    assert events == [
        Create("/r/f"),
        Write("/r/f", 0, b"0123456789"),
        Write("/r/f", 5, b"x"),
        Write("/r/f", 6, b"y"),
        Write("/r/f", 0, b"P"),
        Write("/r/f", 9, b"z"),
        Write("/r/f", 1, b"Q"),
        Write("/r/f", 10, b"w"),
    ]


def test_append_writes_go_to_the_tracked_end_of_the_file(tmp_path: Path) -> None:
    events = parse(
        f"""\
        100 openat(AT_FDCWD, {q("/r/log")}, O_WRONLY|O_APPEND) = {fd(3, "/r/log")}
        100 write({fd(3, "/r/log")}, {q("abc")}, 3) = 3
        100 ftruncate({fd(3, "/r/log")}, 1) = 0
        100 write({fd(3, "/r/log")}, {q("de")}, 2) = 2
        100 fcntl({fd(3, "/r/log")}, F_SETFL, O_WRONLY) = 0
        100 lseek({fd(3, "/r/log")}, 0, SEEK_SET) = 0
        100 write({fd(3, "/r/log")}, {q("f")}, 1) = 1
        100 pwritev2({fd(3, "/r/log")}, [{{iov_base={q("g")}, iov_len=1}}], 1, 0, RWF_APPEND) = 1
        """,
        initial_files={"/r/log": 10},
    )
    assert events == [
        Write("/r/log", 10, b"abc"),
        Truncate("/r/log", 1),
        Write("/r/log", 1, b"de"),
        Write("/r/log", 0, b"f"),
        Write("/r/log", 3, b"g"),
    ]


def test_without_a_snapshot_an_earlier_file_has_its_size_on_disk_now(tmp_path: Path) -> None:
    (tmp_path / "log").write_bytes(b"12345")
    path = str(tmp_path / "log")
    text = textwrap.dedent(f"""\
        100 openat(AT_FDCWD, {q(path)}, O_WRONLY|O_CREAT|O_APPEND, 0644) = {fd(3, path)}
        100 write({fd(3, path)}, {q("abc")}, 3) = 3
        """)
    # No snapshot: a path not seen before is taken as created by O_CREAT.
    assert parse_trace(text, root=str(tmp_path)) == [Create(path), Write(path, 0, b"abc")]
    # With one: it existed, with its size then.
    assert parse_trace(text, root=str(tmp_path), initial_files=snapshot_files(str(tmp_path))) == [
        Write(path, 5, b"abc")
    ]
    text = textwrap.dedent(f"""\
        100 openat(AT_FDCWD, {q(path)}, O_WRONLY|O_APPEND) = {fd(3, path)}
        100 write({fd(3, path)}, {q("abc")}, 3) = 3
        """)
    assert parse_trace(text, root=str(tmp_path)) == [Write(path, 5, b"abc")]


def test_creation_truncation_and_fallocate() -> None:
    events = parse(f"""\
        100 creat({q("/r/a")}, 0644) = {fd(3, "/r/a")}
        100 openat(AT_FDCWD, {q("/r/a")}, O_WRONLY|O_TRUNC) = {fd(4, "/r/a")}
        100 openat(AT_FDCWD, {q("/r/a")}, O_WRONLY|O_CREAT) = {fd(5, "/r/a")}
        100 openat2(AT_FDCWD, {q("/r/b")}, {{flags=O_RDWR|O_CREAT|O_EXCL, mode=0600, resolve=0}}, 24) = {fd(6, "/r/b")}
        100 fallocate({fd(6, "/r/b")}, 0, 0, 4096) = 0
        100 fallocate({fd(6, "/r/b")}, 0, 0, 100) = 0
        100 fallocate({fd(6, "/r/b")}, FALLOC_FL_KEEP_SIZE, 0, 65536) = 0
        100 fallocate({fd(6, "/r/b")}, FALLOC_FL_KEEP_SIZE|FALLOC_FL_PUNCH_HOLE, 0, 10) = 0
        100 truncate({q("/r/b")}, 10) = 0
        100 ftruncate({fd(6, "/r/b")}, 0) = 0
        """)
    assert events == [
        Create("/r/a"),
        Truncate("/r/a", 0),
        Create("/r/b"),
        Truncate("/r/b", 4096),
        Unmodelled("fallocate", "FALLOC_FL_KEEP_SIZE|FALLOC_FL_PUNCH_HOLE on /r/b at 0 for 10"),
        Truncate("/r/b", 10),
        Truncate("/r/b", 0),
    ]


def test_the_namespace_with_directory_descriptors() -> None:
    events = parse(f"""\
        100 mkdirat(AT_FDCWD<{hx("/r")}>, {q("d")}, 0777) = 0
        100 openat(AT_FDCWD<{hx("/r")}>, {q("d")}, O_RDONLY|O_DIRECTORY|O_CLOEXEC) = {fd(3, "/r/d")}
        100 openat({fd(3, "/r/d")}, {q("tmp")}, O_WRONLY|O_CREAT|O_EXCL, 0644) = {fd(4, "/r/d/tmp")}
        100 renameat2({fd(3, "/r/d")}, {q("tmp")}, {fd(3, "/r/d")}, {q("final")}, RENAME_NOREPLACE) = 0
        100 write({fd(4, "/r/d/final")}, {q("x")}, 1) = 1
        100 fsync({fd(3, "/r/d")}) = 0
        100 fdatasync({fd(4, "/r/d/final")}) = 0
        100 linkat({fd(3, "/r/d")}, {q("final")}, AT_FDCWD<{hx("/r")}>, {q("hard")}, 0) = 0
        100 link({q("hard")}, {q("/elsewhere/x")}) = 0
        100 unlinkat({fd(3, "/r/d")}, {q("final")}, 0) = 0
        100 write({fd(4, "/r/d/final", deleted=True)}, {q("lost")}, 4) = 4
        100 unlinkat(AT_FDCWD<{hx("/r")}>, {q("d")}, AT_REMOVEDIR) = 0
        100 renameat(AT_FDCWD<{hx("/r")}>, {q("hard")}, AT_FDCWD<{hx("/r")}>, {q("../outside")}) = 0
        100 renameat2(AT_FDCWD, {q("/r/x")}, AT_FDCWD, {q("/r/y")}, RENAME_EXCHANGE) = 0
        100 unlink({q("/elsewhere/x")}) = 0
        100 sync() = 0
        100 syncfs({fd(3, "/r/d")}) = 0
        """)
    assert events == [
        MakeDirectory("/r/d"),
        Create("/r/d/tmp"),
        Rename("/r/d/tmp", "/r/d/final"),
        Write("/r/d/final", 0, b"x"),
        Sync("/r/d", True),
        Sync("/r/d/final", False),
        Link("/r/d/final", "/r/hard"),
        Unlink("/r/d/final"),
        # The file lives on as /r/hard, which the descriptor cannot name.
        Unmodelled("write", "through a descriptor whose name was removed while the file had another link"),
        Unlink("/r/hard"),  # moved out of the root
        Unmodelled("renameat2", "RENAME_EXCHANGE of /r/x and /r/y"),
        SyncAll(),
        SyncAll(),
    ]


def test_relative_paths_follow_the_working_directory() -> None:
    events = parse(f"""\
        100 mkdir({q("d")}, 0777) = 0
        100 chdir({q("/r")}) = 0
        100 mkdir({q("d")}, 0777) = 0
        100 chdir({q("d")}) = 0
        100 open({q("f")}, O_WRONLY|O_CREAT, 0644) = 3
        100 rename({q("f")}, {q("../g")}) = 0
        """)
    assert events == [
        Unmodelled("mkdir", "a path relative to an unknown directory"),
        MakeDirectory("/r/d"),
        Create("/r/d/f"),
        Rename("/r/d/f", "/r/g"),
    ]
    assert parse('100 mkdir("d", 0777) = 0\n', cwd="/r") == [MakeDirectory("/r/d")]


def test_threads_share_the_descriptor_table_and_forks_copy_it() -> None:
    events = parse(f"""\
        100 open({q("/r/f")}, O_RDWR|O_CREAT, 0644) = 3
        100 {THREAD} <unfinished ...>
        101 write(3, {q("ab")}, 2) = 2
        100 <... clone3 resumed> => {{parent_tid=[101]}}, 88) = 101
        101 open({q("/r/g")}, O_RDWR|O_CREAT, 0644) = 4
        100 write(4, {q("cd")}, 2) = 2
        100 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f3) = 102
        102 write(3, {q("ef")}, 2) = 2
        102 close(3) = 0
        102 open({q("/r/h")}, O_RDWR|O_CREAT, 0644) = 5
        100 write(3, {q("gh")}, 2) = 2
        100 write(5, {q("ij")}, 2) = 2
        """)
    assert events == [
        Create("/r/f"),
        Write("/r/f", 0, b"ab"),
        Create("/r/g"),
        Write("/r/g", 0, b"cd"),
        Write("/r/f", 2, b"ef"),  # the fork shares the open file description
        Create("/r/h"),
        Write("/r/f", 4, b"gh"),  # the child's close and open did not touch the parent's table
    ]


def test_execve_closes_the_close_on_exec_descriptors() -> None:
    events = parse(f"""\
        100 open({q("/r/a")}, O_WRONLY|O_CREAT|O_CLOEXEC, 0644) = 3
        100 open({q("/r/b")}, O_WRONLY|O_CREAT, 0644) = 4
        100 execve({q("/bin/x")}, [{q("x")}], 0x7ffc /* 20 vars */) = 0
        100 write(3, {q("a")}, 1) = 1
        100 write(4, {q("b")}, 1) = 1
        """)
    assert events == [Create("/r/a"), Create("/r/b"), Write("/r/b", 0, b"b")]


def test_what_the_model_cannot_follow_is_reported() -> None:
    events = parse(f"""\
        100 openat(AT_FDCWD, {q("/r/f")}, O_RDWR|O_CREAT|O_DIRECT, 0644) = {fd(3, "/r/f")}
        100 mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, {fd(3, "/r/f")}, 0) = 0x7f0000000000
        100 mmap(NULL, 4096, PROT_READ, MAP_SHARED, {fd(3, "/r/f")}, 0) = 0x7f0000001000
        100 mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000002000
        100 sync_file_range({fd(3, "/r/f")}, 0, 4096, SYNC_FILE_RANGE_WRITE) = 0
        100 io_uring_setup(8, {{flags=0, sq_thread_cpu=0, sq_thread_idle=0}}) = {fd(4, "anon_inode:[io_uring]")}
        100 copy_file_range({fd(5, "/elsewhere/src")}, NULL, {fd(3, "/r/f")}, [0] => [10], 10, 0) = 10
        100 sendfile({fd(6, "socket:[9]")}, {fd(3, "/r/f")}, NULL, 10) = 10
        100 write({fd(7, "/r/unknown")}, {q("?")}, 1) = 1
        100 pwrite64({fd(7, "/r/unknown")}, {q("!")}, 1, 3) = 1
        100 write({fd(3, "/r/f")}, {q("cut")}..., 100000) = 100000
        """)
    assert events == [
        Create("/r/f"),
        Unmodelled("openat", "O_DIRECT on /r/f"),
        Unmodelled("mmap", "a shared writable mapping of /r/f"),
        Unmodelled("sync_file_range", "on /r/f"),
        Unmodelled("io_uring_setup", "io_uring: its file operations are not seen"),
        Unmodelled("copy_file_range", "data copied in the kernel, touching /r/f"),
        Unmodelled("sendfile", "data copied in the kernel, touching /r/f"),
        Unmodelled("write", "a write to /r/unknown at an unknown offset"),
        Write("/r/unknown", 3, b"!"),
        Unmodelled("write", "the data written to /r/f was cut by strace (-s)"),
    ]


def test_a_root_reached_through_a_symbolic_link_keeps_its_spelling(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    real, link = str(tmp_path / "real"), str(tmp_path / "link")
    text = textwrap.dedent(f"""\
        100 openat(AT_FDCWD, {q(link + "/f")}, O_WRONLY|O_CREAT, 0644) = {fd(3, real + "/f")}
        100 write({fd(3, real + "/f")}, {q("x")}, 1) = 1
        100 rename({q(link + "/f")}, {q(real + "/g")}) = 0
        """)
    assert parse_trace(text, root=link) == [
        Create(link + "/f"),
        Write(link + "/f", 0, b"x"),
        Rename(link + "/f", link + "/g"),
    ]


def test_traced_command_is_strace_then_the_command() -> None:
    command = traced_command(f"{shlex.quote(sys.executable)} -m 'my adapter'", "/tmp/trace file")
    argv = shlex.split(command)
    assert os.path.basename(argv[0]) == "strace"
    assert argv[-3:] == [sys.executable, "-m", "my adapter"]
    for option in ("-f", "-y", "-xx", "-qq"):
        assert option in argv
    assert argv[argv.index("-o") + 1] == "/tmp/trace file"
    assert int(argv[argv.index("-s") + 1]) >= 2**30 - 1
    traced = argv[argv.index("-e", argv.index("-s")) :]
    listed = next(arg for arg in traced if arg.startswith("trace="))
    assert {name.lstrip("?") for name in listed.removeprefix("trace=").split(",")} == set(TRACED_SYSCALLS)


# -- real processes -----------------------------------------------------------------

_SCRIPT = """\
import os, sys
root = sys.argv[1]
d = os.path.join(root, "d")
os.mkdir(d)
p = os.path.join(d, "f")
fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
os.write(fd, b"hello")
os.write(fd, b"\\x00\\xff\\n")
os.pwrite(fd, b"PW", 1)
os.lseek(fd, 20, os.SEEK_SET)
os.write(fd, b"after")
fd2 = os.dup(fd)
os.write(fd2, b"dup")
os.write(fd, b"!")
fd3 = os.open(p, os.O_WRONLY | os.O_APPEND)
os.write(fd3, b"app")
os.writev(fd, [b"ab", b"cd"])
os.ftruncate(fd, 40)
os.fsync(fd)
dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
os.fsync(dfd)
os.rename(p, p + "2")
os.write(fd, b"x")
os.mkdir(os.path.join(d, "sub"))
os.unlink(p + "2")
os.write(fd, b"y")
with open(os.path.join(root, "outside-of-d"), "wb") as f:
    f.write(b"buffered")
"""


def test_a_real_script_traced(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(_SCRIPT, encoding="utf-8")
    root = tmp_path / "root"
    root.mkdir()
    trace = tmp_path / "trace.txt"
    command = traced_command(shlex.join([sys.executable, str(script), str(root)]), str(trace))
    subprocess.run(shlex.split(command), check=True, timeout=60)
    events = parse_trace(trace.read_text(encoding="utf-8"), root=str(root))
    d, f, f2 = f"{root}/d", f"{root}/d/f", f"{root}/d/f2"
    assert events == [
        MakeDirectory(d),
        Create(f),
        Write(f, 0, b"hello"),
        Write(f, 5, b"\x00\xff\n"),
        Write(f, 1, b"PW"),  # pwrite: at its offset, the file offset stays
        Write(f, 20, b"after"),  # after lseek
        Write(f, 25, b"dup"),  # through the dup
        Write(f, 28, b"!"),  # the original shares the offset
        Write(f, 29, b"app"),  # O_APPEND: at the end
        Write(f, 29, b"abcd"),  # writev at fd's offset, joined
        Truncate(f, 40),
        Sync(f, False),
        Sync(d, True),
        Rename(f, f2),
        Write(f2, 33, b"x"),  # the descriptor follows the rename
        MakeDirectory(f"{d}/sub"),
        Unlink(f2),
        # The write to the unlinked file changes no named file.
        Create(f"{root}/outside-of-d"),
        Write(f"{root}/outside-of-d", 0, b"buffered"),
    ]


_THREADS_SCRIPT = """\
import os, sys, threading
path = os.path.join(sys.argv[1], "f")
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, bytes(range(256)) * 4096)  # 1 MiB in one write
thread = threading.Thread(target=lambda: os.write(fd, b"thread"))
thread.start()
thread.join()
child = os.fork()
if child == 0:
    os.write(fd, b"child")
    os._exit(0)
os.waitpid(child, 0)
os.write(fd, b"parent")
"""


def test_threads_children_and_a_large_write_traced(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(_THREADS_SCRIPT, encoding="utf-8")
    root = tmp_path / "root"
    root.mkdir()
    trace = tmp_path / "trace.txt"
    command = traced_command(shlex.join([sys.executable, str(script), str(root)]), str(trace))
    subprocess.run(shlex.split(command), check=True, timeout=60)
    events = parse_trace(trace.read_text(encoding="utf-8"), root=str(root))
    f = f"{root}/f"
    size = 256 * 4096
    assert events == [
        Create(f),
        Write(f, 0, bytes(range(256)) * 4096),
        Write(f, size, b"thread"),
        Write(f, size + 6, b"child"),
        Write(f, size + 11, b"parent"),
    ]
    assert (root / "f").read_bytes() == bytes(range(256)) * 4096 + b"threadchildparent"


def _reference_command() -> str:
    return shlex.join([sys.executable, "-m", "mrecordlog.adapter"])


def _replay(events: list[TraceEvent]) -> dict[str, bytearray]:
    files: dict[str, bytearray] = {}
    for event in events:
        if isinstance(event, Create):
            files[event.path] = bytearray()
        elif isinstance(event, Truncate):
            content = files.setdefault(event.path, bytearray())
            del content[event.size :]
            content.extend(bytes(event.size - len(content)))
        elif isinstance(event, Write):
            content = files.setdefault(event.path, bytearray())
            if len(content) < event.offset:
                content.extend(bytes(event.offset - len(content)))
            content[event.offset : event.offset + len(event.data)] = event.data
        elif isinstance(event, Rename):
            files[event.destination] = files.pop(event.source)
        elif isinstance(event, Unlink):
            files.pop(event.path, None)
    return files


def test_the_reference_adapter_traced(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    requests: list[dict[str, Any]] = [
        {"op": "hello"},
        {"op": "open", "dir": str(directory), "file_num_bytes": 32768, "checksum": "crc32"},
        {"op": "create_queue", "queue": "q"},
        {"op": "append", "queue": "q", "position": None, "payloads": ["616263", "00ff" * 100]},
        {"op": "persist", "fsync": True},
        {"op": "close"},
    ]
    answers, events = trace_adapter_session(_reference_command(), requests, root=str(tmp_path), timeout=60)
    assert [answer["ok"] for answer in answers] == [True] * len(requests)
    wal = f"{directory}/wal-00000000000000000000"
    assert Create(wal) in events
    assert not [event for event in events if isinstance(event, Unmodelled)]

    files = _replay(events)
    on_disk = {str(path): path.read_bytes() for path in directory.iterdir() if path.is_file()}
    assert {path: bytes(content) for path, content in files.items()} == on_disk

    answered = [event for event in events if isinstance(event, Answered)]
    assert answered[-1].total == len(requests)
    assert [event.total for event in answered] == list(range(1, len(requests) + 1))
    read = [event for event in events if isinstance(event, RequestRead)]
    assert read[-1].total == len(requests)

    def index(event: TraceEvent) -> int:
        return events.index(event)

    append_read = index(RequestRead(1, 4))
    append_answer = index(Answered(1, 4))
    append_writes = [
        i for i, event in enumerate(events) if isinstance(event, Write) and append_read < i < append_answer
    ]
    assert append_writes, "the append wrote its records before answering"
    persist_answer = index(Answered(1, 5))
    syncs = [
        i for i, event in enumerate(events) if event == Sync(wal, False) and append_writes[-1] < i < persist_answer
    ]
    assert syncs, "the persist synced the WAL file before answering"


def test_tracing_overhead_on_the_reference_adapter(tmp_path: Path) -> None:
    """Measured and printed (run with -s to see it), not asserted: the start
    (up to the hello answer), the requests per second after it, and the
    parse of the trace."""
    count = 300

    def run(command: str, directory: Path) -> tuple[float, float]:
        requests: list[dict[str, Any]] = [
            {"op": "open", "dir": str(directory), "file_num_bytes": 32768, "checksum": "crc32"},
            {"op": "create_queue", "queue": "q"},
        ]
        requests += [{"op": "append", "queue": "q", "position": None, "payloads": ["ab" * 50]} for _ in range(count)]
        requests += [{"op": "persist", "fsync": True}, {"op": "close"}]
        started = time.monotonic()
        with SubprocessAdapter(command, timeout_seconds=60) as adapter:
            assert adapter.request({"op": "hello"})["ok"]
            ready = time.monotonic()
            for request in requests:
                assert adapter.request(request)["ok"], request
            done = time.monotonic()
        return ready - started, len(requests) / (done - ready)

    plain_start, plain_rate = run(_reference_command(), tmp_path / "plain" / "log")
    trace = tmp_path / "trace.txt"
    (tmp_path / "traced").mkdir()
    traced_start, traced_rate = run(traced_command(_reference_command(), str(trace)), tmp_path / "traced" / "log")
    started = time.monotonic()
    text = trace.read_text(encoding="utf-8")
    events = parse_trace(text, root=str(tmp_path / "traced"))
    parsed = time.monotonic() - started
    writes = sum(1 for event in events if isinstance(event, Write))
    print(
        f"\nreference adapter, {count + 4} requests: start {plain_start:.2f} s untraced, {traced_start:.2f} s traced; "
        f"{plain_rate:.0f} requests/s untraced, {traced_rate:.0f}/s traced ({plain_rate / traced_rate:.1f}x); "
        f"trace {len(text) / 1e6:.1f} MB parsed in {parsed:.2f} s into {len(events)} events ({writes} writes)"
    )
