"""The read-only commands (``summary``, ``read``, ``verify``) on the recorded
mrecordlog 0.5 images and on damaged copies of them, through the command line:
they report what the recorded states hold, ``verify`` exits 1 exactly on the
damaged copies, and none of them changes a byte, a name or a time stamp, even
in a directory the command may not write to."""

from __future__ import annotations

import hashlib
import json
import os
import random
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import mrecordlog
import mrecordlog.cli
from mrecordlog.cli import main, payload_text
from mrecordlog.interchange import unpack_wal_image
from tests.test_vectors import VECTORS

REPO = Path(__file__).resolve().parent.parent
# The subprocesses import the package these tests import, wherever they run.
IMPORTED_FROM = str(Path(mrecordlog.cli.__file__).resolve().parent.parent)
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [IMPORTED_FROM, os.environ.get("PYTHONPATH")]))}
WITH_IMAGE = [v for v in VECTORS if (v / "wal.image.json").is_file() and (v / "state.json").is_file()]
BLOCK = 32768
SECTOR = 512
SEEDS_PER_MUTATION = 2


def _image(vector: Path) -> dict[str, object]:
    image: dict[str, object] = json.loads((vector / "wal.image.json").read_text())
    return image


def _state(vector: Path) -> dict[str, dict[str, object]]:
    state: dict[str, dict[str, object]] = json.loads((vector / "state.json").read_text())["queues"]
    return state


def _unpack(vector: Path, directory: Path) -> Path:
    directory.mkdir()
    unpack_wal_image(_image(vector), str(directory))
    return directory


def _snapshot(directory: Path) -> dict[str, tuple[str, int, int, int]]:
    """Every entry under ``directory`` (itself included): a digest of its bytes
    (or of its listing, for a directory), its mode, size and mtime (ns)."""
    found: dict[str, tuple[str, int, int, int]] = {}
    for root, dirs, names in os.walk(directory):
        listing = hashlib.sha256("\0".join(sorted(dirs + names)).encode()).hexdigest()
        status = os.stat(root)
        found[os.path.relpath(root, directory)] = (listing, status.st_mode, status.st_size, status.st_mtime_ns)
        for name in names:
            path = Path(root) / name
            status = path.stat()
            with path.open("rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
            found[str(path.relative_to(directory))] = (digest, status.st_mode, status.st_size, status.st_mtime_ns)
    return found


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """The command as a shell runs it: ``python -m mrecordlog`` in a new process."""
    return subprocess.run(
        [sys.executable, "-m", "mrecordlog", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=cwd,
        env=ENV,
    )


# -- the recorded images ---------------------------------------------------------------


@pytest.mark.parametrize("vector", WITH_IMAGE, ids=lambda v: v.name)
def test_the_reports_of_a_recorded_image_show_its_state_and_change_nothing(vector: Path, tmp_path: Path) -> None:
    directory = _unpack(vector, tmp_path / "log")
    before = _snapshot(directory)
    recorded = _state(vector)

    summary = _cli("summary", "--json", str(directory))
    assert summary.returncode == 0, summary.stderr
    value = json.loads(summary.stdout)
    assert value["clean"] is True
    assert value["checksum_profile"] == ("crc32" if any(q["records"] for q in recorded.values()) else None)
    assert [q["name"] for q in value["queues"]] == sorted(recorded)
    for queue in value["queues"]:
        records = recorded[queue["name"]]["records"]
        assert isinstance(records, list)
        assert queue["records"] == len(records)
        assert queue["next_position"] == recorded[queue["name"]]["next_position"]
        assert queue["first_position"] == (records[0][0] if records else None)
        assert queue["last_position"] == (records[-1][0] if records else None)
        assert queue["payload_bytes"] == sum(len(payload) // 2 for _, payload in records)

        read = _cli("read", str(directory), queue["name"], "--format", "json")
        assert read.returncode == 0, read.stderr
        lines = [json.loads(line) for line in read.stdout.splitlines()]
        assert [[line["position"], line["payload_hex"]] for line in lines] == records
        hexed = _cli("read", str(directory), queue["name"], "--format", "hex", "--recovery", "strict")
        assert hexed.stdout.splitlines() == [f"{position}\t{payload}" for position, payload in records]

    text = _cli("summary", str(directory))
    assert text.returncode == 0
    assert text.stdout.startswith(f"log: {directory}\n")

    verify = _cli("verify", str(directory))
    assert verify.returncode == 0, verify.stdout
    assert verify.stdout.rstrip().endswith("verdict: clean")
    verified = json.loads(_cli("verify", "--json", str(directory)).stdout)
    assert verified["clean"] is True
    assert verified["findings"] == []
    assert {m["mode"] for m in verified["modes"]} == {"point_in_time", "strict", "skip"}
    assert sum(f["frames"] for f in verified["files"]) >= sum(m["records_replayed"] for m in verified["modes"]) // 3
    assert all(f["damaged_frames"] == 0 for f in verified["files"])

    assert _snapshot(directory) == before


def test_read_shows_a_range_in_three_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vector = next(v for v in WITH_IMAGE if v.name.startswith("10_"))
    directory = _unpack(vector, tmp_path / "log")
    records = _state(vector)["alpha"]["records"]
    assert isinstance(records, list)
    assert main(["read", str(directory), "alpha", "--from", "3", "--to", "5", "--json"]) == 0
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [[r["position"], r["payload_hex"]] for r in shown] == [r for r in records if 3 <= r[0] <= 5]
    assert main(["read", str(directory), "alpha", "--to", str(2**64 - 1)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{p}\t{payload_text(bytes.fromhex(h))}" for p, h in records]
    assert main(["read", str(directory), "alpha", "--from", "5", "--to", "4"]) == 2
    assert "--from 5 is after --to 4" in capsys.readouterr().err
    assert main(["read", str(directory), "alpha", "--json", "--format", "hex"]) == 2
    assert "--json and --format hex" in capsys.readouterr().err
    assert main(["read", str(directory), "gamma"]) == 1
    assert capsys.readouterr().err == "mrecordlog read: MissingQueue: missing queue 'gamma'\n"


def _unescape(text: str) -> bytes:
    """The inverse of ``payload_text``, written independently of it."""
    out = bytearray()
    index = 0
    while index < len(text):
        char = text[index]
        if char != "\\":
            out += char.encode("utf-8")
            index += 1
            continue
        code = text[index + 1]
        if code in "\\ntr":
            out += {"\\": b"\\", "n": b"\n", "t": b"\t", "r": b"\r"}[code]
            index += 2
        elif code == "x":  # an ASCII control character, or a byte that is not UTF-8: the byte itself
            out.append(int(text[index + 2 : index + 4], 16))
            index += 4
        else:
            digits = {"u": 4, "U": 8}[code]
            out += chr(int(text[index + 2 : index + 2 + digits], 16)).encode("utf-8")
            index += 2 + digits
    return bytes(out)


def test_payload_text_is_one_line_and_can_be_read_back() -> None:
    assert payload_text(b"caf\xc3\xa9 \\ \n\t\x00\xff\xc2\x85") == "café \\\\ \\n\\t\\x00\\xff\\u0085"
    rng = random.Random(12)
    pieces = [b"a", b"\\", b"\\x41", b"\n", b"\r", b"\x00", b"\x7f", b"\xc2\x85", b"\xe2\x80\xa8", b"\xc2\xad"]
    pieces += [b"\xff", b"\xc3", b"\xa9", b"\xed\xa0\x80", "é😀".encode(), b"\xf4\x90\x80\x80", b"\xef\xbf\xbf"]
    for _ in range(2000):
        if rng.random() < 0.3:
            payload = rng.randbytes(rng.randrange(20))
        else:
            payload = b"".join(rng.choice(pieces) for _ in range(rng.randrange(12)))
        text = payload_text(payload)
        assert text.isprintable(), payload
        assert _unescape(text) == payload, payload


# -- damaged copies --------------------------------------------------------------------


def _written(vector: Path) -> list[tuple[str, int, bytes]]:
    """The extents of the image: (file, offset, bytes) with at least one non-zero byte."""
    image = _image(vector)
    files = image["files"]
    assert isinstance(files, list)
    return [
        (file["name"], extent["offset"], bytes.fromhex(extent["hex"]))
        for file in files
        for extent in file.get("extents", [])
        if bytes.fromhex(extent["hex"]).strip(b"\0")
    ]


def _flip_bit(vector: Path, directory: Path, rng: random.Random) -> str:
    """One bit of a non-zero byte: a byte of a frame, whose checksum then fails."""
    name, start, data = rng.choice(_written(vector))
    index = rng.choice([i for i, byte in enumerate(data) if byte])
    with (directory / name).open("r+b") as handle:
        handle.seek(start + index)
        handle.write(bytes([data[index] ^ (1 << rng.randrange(8))]))
    return f"bit flip in {name} at {start + index}"


def _truncate(vector: Path, directory: Path, rng: random.Random) -> str:
    """Cut a file inside its written data (never at a block boundary: a file
    cut there after a complete frame is a valid log of smaller files)."""
    name, start, data = rng.choice(_written(vector))
    last = len(data.rstrip(b"\0"))
    cuts = [start + i for i in range(1, last) if (start + i) % BLOCK]
    cut = rng.choice(cuts) if cuts else start + 1
    os.truncate(directory / name, cut)
    return f"{name} cut at {cut}"


def _zero_sector(vector: Path, directory: Path, rng: random.Random) -> str:
    """Zero a 512-byte sector holding written bytes, short of the log's last
    non-zero byte: zeroing the end of the log can leave a valid, shorter one
    (the format has no end marker to miss)."""
    nonzero = sorted((name, start + i) for name, start, data in _written(vector) for i, byte in enumerate(data) if byte)
    last_name, last = nonzero[-1]
    sectors = sorted({(name, offset // SECTOR * SECTOR) for name, offset in nonzero[:-1]})
    name, offset = rng.choice(sectors)
    end = min(offset + SECTOR, last) if name == last_name else offset + SECTOR
    with (directory / name).open("r+b") as handle:
        handle.seek(offset)
        handle.write(bytes(end - offset))
    return f"{name}: bytes {offset} to {end} zeroed"


def _append_garbage(vector: Path, directory: Path, rng: random.Random) -> str:
    name = rng.choice(sorted({name for name, _, _ in _written(vector)}))
    garbage = bytes(rng.randrange(1, 256) for _ in range(rng.choice((1, 100, BLOCK))))
    with (directory / name).open("ab") as handle:
        handle.write(garbage)
    return f"{len(garbage)} garbage bytes appended to {name}"


MUTATIONS = {
    "flip_bit": _flip_bit,
    "truncate": _truncate,
    "zero_sector": _zero_sector,
    "append_garbage": _append_garbage,
}
NON_EMPTY = [v for v in WITH_IMAGE if _written(v)]


def _reports(directory: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[tuple[list[str], int, str, str]]:
    """Every read-only command on ``directory``, in every recovery mode."""
    for mode in ("point_in_time", "strict", "skip"):
        for args in (["summary"], ["summary", "--json"], ["verify"], ["verify", "--json"]):
            argv = [*args, "--recovery", mode, str(directory)]
            status = main(argv)
            captured = capsys.readouterr()
            yield argv, status, captured.out, captured.err
    for queue in ("alpha", "beta", "q1", "q2", "q"):
        for form in ("text", "hex", "json"):
            argv = ["read", str(directory), queue, "--format", form]
            status = main(argv)
            captured = capsys.readouterr()
            yield argv, status, captured.out, captured.err


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
@pytest.mark.parametrize("vector", NON_EMPTY, ids=lambda v: v.name)
def test_verify_exits_1_on_every_damaged_copy_and_no_command_changes_it(
    vector: Path, mutation: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for seed in range(SEEDS_PER_MUTATION):
        rng = random.Random(f"{vector.name}/{mutation}/{seed}")
        directory = _unpack(vector, tmp_path / f"log-{seed}")
        what = MUTATIONS[mutation](vector, directory, rng)
        before = _snapshot(directory)

        assert main(["verify", str(directory)]) == 1, what
        out = capsys.readouterr().out
        assert "verdict: damaged" in out, what
        assert main(["verify", "--json", str(directory)]) == 1, what
        verified = json.loads(capsys.readouterr().out)
        assert verified["clean"] is False
        assert verified["findings"], what
        damages = [d for m in verified["modes"] for d in m["damages"]]
        assert all(d["file"].startswith("wal-") and d["offset"] >= 0 and d["kind"] for d in damages), what

        for argv, status, stdout, stderr in _reports(directory, capsys):
            # 1 only where it is meant: strict refusing, verify's verdict, a queue the log lacks.
            assert status in (0, 1), (what, argv, stderr)
            if status == 1 and argv[0] != "verify":
                assert stderr.count("\n") == 1, (what, argv, stderr)
                assert stderr.startswith(f"mrecordlog {argv[0]}: "), (what, argv, stderr)
                assert "CorruptionError" in stderr or "MissingQueue" in stderr, (what, argv, stderr)
            if argv[0] == "summary" and status == 0 and "--json" in argv:
                json.loads(stdout)
        assert _snapshot(directory) == before, what


# -- a directory the command cannot write to -------------------------------------------

# Run as the command, but as an unprivileged user when the tests run as root
# (root writes anywhere, so a directory without write permission would prove
# nothing): the imports happen first, as root, then the process drops to nobody.
_AS_NOBODY = """
import os, sys
from mrecordlog.cli import main
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_the_reports_work_in_a_directory_nobody_may_write_to() -> None:
    vector = next(v for v in WITH_IMAGE if v.name.startswith("10_"))
    with tempfile.TemporaryDirectory(prefix="mrecordlog-read-only-") as parent:
        os.chmod(parent, 0o755)
        directory = _unpack(vector, Path(parent) / "log")
        (directory / "quarantine").mkdir()
        for path in [*directory.iterdir(), directory]:
            os.chmod(path, 0o555 if path.is_dir() else 0o444)
        try:
            before = _snapshot(directory)

            def run(*args: str) -> subprocess.CompletedProcess[str]:
                return subprocess.run(
                    [sys.executable, "-c", _AS_NOBODY, *args],
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=120,
                    cwd=REPO,
                    env=ENV,
                )

            # The directory is really read-only to the command: apply, which writes, fails.
            ops = Path(parent) / "ops.jsonl"
            ops.write_text('{"op":"create_queue","queue":"new"}\n')
            os.chmod(ops, 0o444)
            refused = run("apply", str(directory), str(ops))
            assert refused.returncode == 1, refused.stdout + refused.stderr
            assert "Traceback" not in refused.stderr

            summary = run("summary", "--json", str(directory))
            assert summary.returncode == 0, summary.stderr
            assert [q["name"] for q in json.loads(summary.stdout)["queues"]] == sorted(_state(vector))
            verify = run("verify", str(directory))
            assert verify.returncode == 0, verify.stdout + verify.stderr
            read = run("read", str(directory), "beta", "--format", "json")
            assert read.returncode == 0, read.stderr
            assert len(read.stdout.splitlines()) == len(_state(vector)["beta"]["records"])  # type: ignore[arg-type]
            dump = run("dump", str(directory))
            assert dump.returncode == 0, dump.stderr
            assert _snapshot(directory) == before
        finally:
            for path in [directory, *directory.iterdir()]:
                os.chmod(path, stat.S_IRWXU)


# -- what verify counts and where it looks for data after the end ----------------------


def test_verify_counts_one_frame_per_block_a_record_touches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with mrecordlog.MultiRecordLog.open(tmp_path, file_num_bytes=4 * BLOCK, checksum="crc32") as log:
        log.create_queue("q")  # 1 frame
        log.append_records("q", [b"a", b"b"])  # 1 frame: one WAL record
        log.append_record("q", bytes(2 * BLOCK))  # 3 frames: First, Middle, Last
    assert main(["verify", "--json", str(tmp_path)]) == 0
    verified = json.loads(capsys.readouterr().out)
    assert [(f["frames"], f["damaged_frames"]) for f in verified["files"]] == [(5, 0)]
    assert [m["records_replayed"] for m in verified["modes"]] == [3, 3, 3]


def test_verify_looks_for_data_after_the_end_where_the_chosen_mode_ends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with mrecordlog.MultiRecordLog.open(tmp_path, file_num_bytes=BLOCK, checksum="crc32") as log:
        log.create_queue("q")
        log.append_record("q", b"hello")
        log.append_record("q", b"world")
    wal = tmp_path / "wal-00000000000000000000"
    data = bytearray(wal.read_bytes())
    data[data.index(b"hello")] ^= 1  # the second frame of three
    wal.write_bytes(bytes(data))
    ends = {}
    for mode in ("point_in_time", "skip"):
        assert main(["verify", "--json", "--recovery", mode, str(tmp_path)]) == 1
        verified = json.loads(capsys.readouterr().out)
        assert verified["recovery"] == mode
        ends[mode] = verified["stale_after_end"]
    # point_in_time stops at the damaged frame: the rest is after its end;
    # skip reads on to the last frame, after which there is nothing.
    assert [(s["file"], s["whole_file"]) for s in ends["point_in_time"]] == [(wal.name, False)]
    assert ends["skip"] == []


def test_the_reports_of_a_directory_without_wal_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "--json", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["files"], summary["queues"], summary["checksum_profile"]) == ([], [], None)
    assert main(["verify", str(tmp_path)]) == 0
    assert capsys.readouterr().out.endswith("verdict: clean\n")
    assert main(["read", str(tmp_path), "q"]) == 1
    assert list(tmp_path.iterdir()) == []
