"""The fault-injecting disk: the page-cache model, faults, crash images, and
the core running on it."""

from __future__ import annotations

import errno
import random
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mrecordlog import LogLocked, MultiRecordLog, OsStorage, StorageError
from mrecordlog._storage import Storage, StorageFile
from mrecordlog.fault_injection import (
    DROP,
    KEEP,
    Choice,
    Drop,
    FaultPlan,
    Keep,
    LinkOp,
    RenameOp,
    ResizeOp,
    SimulatedDisk,
    Tear,
    UnlinkOp,
    WriteOp,
    durable_image,
    enumerate_choices,
    materialize,
    power_loss_image,
    process_crash_image,
    random_choices,
)


def _disk_with_synced_file(path: str = "/d/f", content: bytes = b"old!" * 256) -> tuple[SimulatedDisk, StorageFile]:
    """A disk holding one file whose content and entry are durable."""
    disk = SimulatedDisk()
    disk.make_dirs("/d")
    handle = disk.create_file(path, 0)
    handle.write_at(0, content)
    handle.sync()
    disk.sync_dir("/d")
    assert disk.pending() == ()
    return disk, handle


def _errno(exc: pytest.ExceptionInfo[StorageError]) -> int | None:
    return exc.value.errno


# -- the page cache model ------------------------------------------------------


def test_simulated_disk_implements_the_storage_protocol() -> None:
    storage: Storage = SimulatedDisk()  # checked by mypy
    assert storage.is_dir("/")


def test_reads_see_writes_at_once_and_are_short_at_the_end_of_the_file() -> None:
    disk = SimulatedDisk()
    handle = disk.create_file("f", 4)
    handle.write_at(2, b"abcd")
    assert handle.read_at(0, 100) == b"\0\0abcd"
    assert handle.size() == 6
    assert disk.open_file("/f", writable=False).read_at(4, 10) == b"cd"


def test_a_write_past_the_end_zero_fills_the_gap() -> None:
    disk = SimulatedDisk()
    handle = disk.create_file("/f", 0)
    handle.write_at(10, b"x")
    assert handle.read_at(0, 20) == bytes(10) + b"x"


def test_create_file_preallocates_zeros_as_a_link_then_a_resize() -> None:
    disk = SimulatedDisk()
    handle = disk.create_file("/f", 1024)
    assert handle.read_at(0, 2048) == bytes(1024)
    link, resize = disk.pending()
    assert link == LinkOp(link.seq, "/", "f", link.inode)
    assert resize == ResizeOp(link.seq + 1, link.inode, "/f", 1024)


def test_fsync_makes_the_files_writes_durable_but_not_its_directory_entry() -> None:
    disk = SimulatedDisk()
    handle = disk.create_file("/f", 0)
    handle.write_at(0, b"data")
    handle.sync()
    assert [type(op) for op in disk.pending()] == [LinkOp]
    assert disk.durable_files() == {}
    disk.sync_dir("/")
    assert disk.pending() == ()
    assert disk.durable_files() == {"/f": b"data"}


def test_fsync_of_one_file_leaves_the_other_files_writes_pending() -> None:
    disk, first = _disk_with_synced_file("/d/a")
    second = disk.create_file("/d/b", 0)
    first.write_at(0, b"A")
    second.write_at(0, b"B")
    first.sync()
    assert [(type(op), getattr(op, "path", None)) for op in disk.pending()] == [
        (LinkOp, None),
        (WriteOp, "/d/b"),
    ]


def test_list_files_names_the_visible_regular_files_only() -> None:
    disk = SimulatedDisk()
    disk.make_dirs("/d/sub")
    disk.create_file("/d/b", 0)
    disk.create_file("/d/a", 0)
    assert disk.list_files("/d") == ["a", "b"]
    assert disk.is_dir("/d/sub")
    assert not disk.is_dir("/d/a")


def test_an_open_file_keeps_its_content_after_removal() -> None:
    disk, handle = _disk_with_synced_file()
    disk.remove_file("/d/f")
    assert disk.list_files("/d") == []
    assert handle.read_at(0, 4) == b"old!"


def test_next_data_skips_zero_pages() -> None:
    disk = SimulatedDisk()
    handle = disk.create_file("/f", 5 * 4096)
    handle.write_at(3 * 4096 + 10, b"x")
    assert handle.next_data(100) == 3 * 4096
    assert handle.next_data(3 * 4096 + 5) == 3 * 4096 + 5
    assert handle.next_data(4 * 4096) == 5 * 4096


def test_errors_name_the_errno_of_the_real_call() -> None:
    disk, _ = _disk_with_synced_file()
    with pytest.raises(StorageError) as exists:
        disk.create_file("/d/f", 0)
    assert isinstance(exists.value.cause, FileExistsError)
    with pytest.raises(StorageError) as missing:
        disk.open_file("/d/nope", writable=False)
    assert isinstance(missing.value.cause, FileNotFoundError)
    with pytest.raises(StorageError) as removed:
        disk.remove_file("/d/nope")
    assert _errno(removed) == errno.ENOENT
    with pytest.raises(StorageError) as no_parent:
        disk.create_file("/nowhere/f", 0)
    assert _errno(no_parent) == errno.ENOENT


def test_a_closed_or_read_only_file_refuses_writes() -> None:
    disk, handle = _disk_with_synced_file()
    reader = disk.open_file("/d/f", writable=False)
    with pytest.raises(StorageError) as read_only:
        reader.write_at(0, b"x")
    assert _errno(read_only) == errno.EBADF
    handle.close()
    with pytest.raises(StorageError) as closed:
        handle.read_at(0, 1)
    assert _errno(closed) == errno.EBADF


def test_a_directory_has_one_lock_holder_until_it_releases() -> None:
    disk = SimulatedDisk()
    disk.make_dirs("/log")
    lock = disk.lock_dir("/log")
    with pytest.raises(LogLocked):
        disk.lock_dir("log")
    lock.release()
    lock.release()  # idempotent
    disk.lock_dir("/log").release()


# -- rename --------------------------------------------------------------------


def test_rename_moves_the_entry_and_keeps_the_inode() -> None:
    disk, _ = _disk_with_synced_file()
    disk.make_dirs("/d/q")
    disk.rename("/d/f", "/d/q/f")
    assert disk.list_files("/d") == []
    assert disk.open_file("/d/q/f", writable=False).read_at(0, 4) == b"old!"
    (op,) = disk.pending()
    assert isinstance(op, RenameOp)
    assert (op.source_directory, op.destination_directory) == ("/d", "/d/q")


def test_rename_onto_an_existing_file_fails_with_eexist_and_changes_nothing() -> None:
    disk, _ = _disk_with_synced_file()
    disk.create_file("/d/g", 0)
    with pytest.raises(StorageError) as exists:
        disk.rename("/d/f", "/d/g")
    assert _errno(exists) == errno.EEXIST
    assert disk.list_files("/d") == ["f", "g"]


def test_a_rename_across_directories_is_durable_once_both_are_synced() -> None:
    disk, _ = _disk_with_synced_file()
    disk.make_dirs("/d/q")
    disk.rename("/d/f", "/d/q/f")
    disk.sync_dir("/d/q")
    assert len(disk.pending()) == 1  # still waits for /d
    assert durable_image(disk).visible_files() == {"/d/f": b"old!" * 256}
    disk.sync_dir("/d")
    assert disk.pending() == ()
    assert durable_image(disk).visible_files() == {"/d/q/f": b"old!" * 256}


def test_syncing_a_removal_drags_along_the_unsynced_rename_that_brought_the_file() -> None:
    disk, _ = _disk_with_synced_file()
    disk.make_dirs("/e")
    disk.rename("/d/f", "/e/f")
    disk.remove_file("/e/f")
    disk.sync_dir("/e")  # /d was never synced, yet the removal cannot precede the rename
    assert disk.pending() == ()
    assert durable_image(disk).visible_files() == {}


def test_a_power_loss_keeps_or_drops_both_halves_of_a_rename() -> None:
    disk, _ = _disk_with_synced_file()
    disk.rename("/d/f", "/d/g")
    assert power_loss_image(disk, (KEEP,)).list_files("/d") == ["g"]
    assert power_loss_image(disk, (DROP,)).list_files("/d") == ["f"]


# -- power-loss images -----------------------------------------------------------


def test_a_power_loss_image_with_every_op_dropped_equals_the_durable_state() -> None:
    disk, handle = _disk_with_synced_file()
    handle.write_at(0, b"new!")
    disk.create_file("/d/g", 512).write_at(0, b"g")
    disk.remove_file("/d/f")
    image = power_loss_image(disk, (DROP,) * len(disk.pending()))
    assert image.visible_files() == disk.durable_files() == {"/d/f": b"old!" * 256}
    assert image.pending() == ()
    assert image.durable_files() == image.visible_files()
    assert durable_image(disk).visible_files() == image.visible_files()


def test_a_power_loss_image_with_every_op_kept_equals_the_visible_state() -> None:
    disk, handle = _disk_with_synced_file()
    handle.write_at(0, b"new!")
    disk.create_file("/d/g", 512).write_at(0, b"g")
    image = power_loss_image(disk, (KEEP,) * len(disk.pending()))
    assert image.visible_files() == disk.visible_files()


def test_a_power_loss_may_keep_a_later_write_and_drop_an_earlier_one() -> None:
    disk, handle = _disk_with_synced_file()
    handle.write_at(0, b"AAAA")
    handle.write_at(512, b"BBBB")
    image = power_loss_image(disk, (DROP, KEEP))
    content = image.visible_files()["/d/f"]
    assert content[:4] == b"old!"
    assert content[512:516] == b"BBBB"


def test_an_unsynced_creation_is_lost_on_power_loss() -> None:
    disk, _ = _disk_with_synced_file()
    created = disk.create_file("/d/g", 0)
    created.write_at(0, b"g")
    created.sync()  # the data is durable, the entry is not
    assert [type(op) for op in disk.pending()] == [LinkOp]
    assert sorted(durable_image(disk).visible_files()) == ["/d/f"]


def test_an_unsynced_unlink_is_lost_and_the_file_reappears_with_its_durable_content() -> None:
    disk, handle = _disk_with_synced_file()
    handle.write_at(0, b"new!")  # never synced
    disk.remove_file("/d/f")
    write, unlink = disk.pending()
    assert isinstance(write, WriteOp)
    assert isinstance(unlink, UnlinkOp)
    assert power_loss_image(disk, (DROP, DROP)).visible_files() == {"/d/f": b"old!" * 256}
    kept_write = power_loss_image(disk, (KEEP, DROP)).visible_files()["/d/f"]
    assert kept_write[:8] == b"new!old!"
    assert power_loss_image(disk, (KEEP, KEEP)).visible_files() == {}


def test_a_durable_removal_forgets_the_files_pending_writes() -> None:
    disk, handle = _disk_with_synced_file()
    handle.write_at(0, b"gone")
    disk.remove_file("/d/f")
    assert len(disk.pending()) == 2  # a crash may drop the unlink: the write matters
    disk.sync_dir("/d")
    assert disk.pending() == ()  # no crash image can show the file any more
    handle.write_at(0, b"still works")
    assert handle.read_at(0, 11) == b"still works"
    assert disk.pending() == ()


def test_a_dropped_creation_with_kept_data_leaves_no_file() -> None:
    disk = SimulatedDisk()
    disk.create_file("/f", 0).write_at(0, b"x")
    assert power_loss_image(disk, (DROP, KEEP)).visible_files() == {}
    assert power_loss_image(disk, (KEEP, DROP)).visible_files() == {"/f": b""}


def test_power_loss_image_refuses_a_wrong_number_of_choices_or_a_torn_link() -> None:
    disk = SimulatedDisk()
    disk.create_file("/f", 0)
    with pytest.raises(ValueError, match="choice"):
        power_loss_image(disk, ())
    with pytest.raises(ValueError, match="tear"):
        power_loss_image(disk, (Tear(0, "new", 0),))


def test_an_image_is_independent_of_its_source_disk() -> None:
    disk, handle = _disk_with_synced_file()
    image = process_crash_image(disk)
    handle.write_at(0, b"new!")
    handle.sync()
    image.open_file("/d/f", writable=True).write_at(4, b"img!")
    assert disk.visible_files()["/d/f"][:8] == b"new!old!"
    assert image.visible_files()["/d/f"][:8] == b"old!img!"


# -- torn writes -------------------------------------------------------------------

# A write of 1000 bytes at offset 300 touches sectors 0 (bytes 300-511), 1
# (512-1023) and 2 (1024-1299).
_TORN_OFFSET = 300
_TORN_NEW = bytes(range(256)) * 3 + bytes(range(232))


@pytest.mark.parametrize(
    ("kept_sectors", "torn", "new_up_to", "torn_range"),
    [
        (0, "old", 300, None),
        (0, "new", 512, None),
        (0, "garbage", 300, (300, 512)),
        (1, "old", 512, None),
        (1, "new", 1024, None),
        (2, "old", 1024, None),
        (2, "garbage", 1024, (1024, 1300)),
    ],
)
def test_a_torn_write_keeps_whole_sectors_then_one_torn_sector_at_exact_offsets(
    kept_sectors: int, torn: Literal["old", "new", "garbage"], new_up_to: int, torn_range: tuple[int, int] | None
) -> None:
    old = bytes([0xEE]) * 2048
    disk, handle = _disk_with_synced_file("/d/f", old)
    handle.write_at(_TORN_OFFSET, _TORN_NEW)
    content = power_loss_image(disk, (Tear(kept_sectors, torn, seed=7),)).visible_files()["/d/f"]
    end = _TORN_OFFSET + len(_TORN_NEW)
    assert content[:_TORN_OFFSET] == old[:_TORN_OFFSET]
    assert content[_TORN_OFFSET:new_up_to] == _TORN_NEW[: new_up_to - _TORN_OFFSET]
    rest_from = new_up_to
    if torn_range is not None:
        start, stop = torn_range
        assert content[start:stop] == random.Random(7).randbytes(stop - start)
        rest_from = stop
    assert content[rest_from:end] == old[rest_from:end]
    assert content[end:] == old[end:]


def test_a_tear_must_leave_a_sector_to_tear() -> None:
    disk, handle = _disk_with_synced_file()
    handle.write_at(0, bytes(1024))  # two sectors
    with pytest.raises(ValueError, match="does not fit"):
        power_loss_image(disk, (Tear(2, "old", 0),))


# -- faults ----------------------------------------------------------------------


def test_a_failed_fsync_drops_the_files_dirty_pages() -> None:
    disk, handle = _disk_with_synced_file()
    disk.fault_plan = FaultPlan(fsync_eio_at=disk.calls_by_kind["sync"] + 1)
    handle.write_at(0, b"lost")
    with pytest.raises(StorageError) as failed:
        handle.sync()
    assert _errno(failed) == errno.EIO
    # Reads and a process crash still see the pages; a power loss does not.
    assert handle.read_at(0, 4) == b"lost"
    assert disk.pending() == ()
    assert [op.offset for op in disk.lost_on_power_loss if isinstance(op, WriteOp)] == [0]
    assert process_crash_image(disk).visible_files()["/d/f"][:4] == b"lost"
    assert power_loss_image(disk, ()).visible_files()["/d/f"][:4] == b"old!"
    # The next fsync succeeds, and does not make the dropped pages durable.
    handle.sync()
    assert disk.durable_files()["/d/f"][:4] == b"old!"
    handle.write_at(4, b"kept")
    handle.sync()
    assert disk.durable_files()["/d/f"][:8] == b"old!kept"


def test_fail_at_call_raises_before_the_call_has_any_effect() -> None:
    disk, handle = _disk_with_synced_file()
    before_files = disk.visible_files()
    disk.fault_plan.fail_at_call = disk.call_count + 2
    handle.write_at(0, b"ok")  # call N + 1
    with pytest.raises(StorageError) as failed:
        handle.write_at(4, b"never")  # call N + 2
    assert _errno(failed) == errno.EIO
    assert failed.value.offset == 4
    assert len(disk.pending()) == 1
    assert disk.visible_files()["/d/f"][:9] == b"okd!old!o"
    disk.fault_plan.fail_at_call = disk.call_count + 1
    with pytest.raises(StorageError):
        disk.create_file("/d/g", 10)
    assert sorted(disk.visible_files()) == sorted(before_files)
    handle.write_at(4, b"later")  # the fault fired once
    assert disk.calls_by_kind["write_at"] == 1 + 3  # failed calls count too


def test_a_full_disk_refuses_creations_and_growth_with_enospc() -> None:
    disk = SimulatedDisk(FaultPlan(capacity_bytes=1000))
    handle = disk.create_file("/f", 600)
    with pytest.raises(StorageError) as create:
        disk.create_file("/g", 500)
    assert _errno(create) == errno.ENOSPC
    assert disk.list_files("/") == ["f"]
    handle.write_at(0, bytes(600))  # rewriting allocated bytes needs no room
    with pytest.raises(StorageError) as write:
        handle.write_at(900, b"x" * 101)
    assert _errno(write) == errno.ENOSPC
    assert handle.size() == 600
    handle.write_at(900, b"x" * 100)
    assert handle.size() == 1000


def test_flip_bit_rots_the_durable_and_the_visible_bytes() -> None:
    disk, handle = _disk_with_synced_file()
    disk.flip_bit("/d/f", 1, 0)
    assert handle.read_at(0, 4) == b"omd!"  # 'l' is 0x6c, 'm' 0x6d
    assert disk.durable_files()["/d/f"][:4] == b"omd!"
    with pytest.raises(ValueError, match="beyond"):
        disk.flip_bit("/d/f", 5000, 0)


def test_a_pending_write_that_reaches_the_disk_replaces_a_rotten_byte() -> None:
    disk, handle = _disk_with_synced_file()
    handle.write_at(0, b"new!")
    disk.flip_bit("/d/f", 5, 0)  # outside the write: stays rotten
    disk.flip_bit("/d/f", 1, 0)  # under the write: the cached page rots too
    assert handle.read_at(0, 8) == b"ndw!omd!"  # e^1 = d, l^1 = m
    handle.sync()
    assert disk.durable_files()["/d/f"][:8] == b"new!omd!"


def test_calls_are_counted_by_kind() -> None:
    disk, handle = _disk_with_synced_file()
    assert disk.calls_by_kind == {"make_dirs": 1, "create_file": 1, "write_at": 1, "sync": 1, "sync_dir": 1}
    handle.read_at(0, 1)
    assert disk.call_count == 6


# -- choosing crash images ---------------------------------------------------------


def _three_ops() -> SimulatedDisk:
    disk, handle = _disk_with_synced_file()
    handle.write_at(0, b"a")
    handle.write_at(100, bytes(1024))  # three sectors: tears possible
    disk.remove_file("/d/f")
    return disk


def test_enumerate_choices_yields_all_kept_then_all_dropped_then_prefixes_then_the_rest() -> None:
    pending = _three_ops().pending()
    choices = list(enumerate_choices(pending, max_images=100, tear_variants=False))
    assert len(choices) == 8
    assert len(set(choices)) == 8
    assert choices[:4] == [(KEEP, KEEP, KEEP), (DROP, DROP, DROP), (KEEP, DROP, DROP), (KEEP, KEEP, DROP)]
    assert choices == list(enumerate_choices(pending, max_images=100, tear_variants=False))


def test_enumerate_choices_adds_four_tears_per_multi_sector_write_and_stops_at_max_images() -> None:
    pending = _three_ops().pending()
    with_tears = list(enumerate_choices(pending, max_images=1000, tear_variants=True))
    assert len(with_tears) == 2 * (2 + 4) * 2
    tears = {choice[1] for choice in with_tears if isinstance(choice[1], Tear)}
    assert {(t.kept_sectors, t.torn) for t in tears} == {(0, "new"), (0, "garbage"), (2, "old"), (2, "garbage")}
    assert len(list(enumerate_choices(pending, max_images=5, tear_variants=True))) == 5
    assert list(enumerate_choices((), max_images=5, tear_variants=True)) == [()]


def test_random_choices_are_reproducible_and_tear_only_writes() -> None:
    pending = _three_ops().pending()
    first = [random_choices(pending, random.Random(seed), tear_probability=0.5) for seed in range(50)]
    again = [random_choices(pending, random.Random(seed), tear_probability=0.5) for seed in range(50)]
    assert first == again
    assert all(isinstance(choices[2], Keep | Drop) for choices in first)
    assert any(isinstance(choices[1], Tear) for choices in first)
    disk = _three_ops()
    for choices in first:
        power_loss_image(disk, choices)


_OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(0, 2), st.integers(0, 3000), st.binary(min_size=1, max_size=1500)),
        st.tuples(st.just("create"), st.integers(0, 2), st.integers(0, 2048)),
        st.tuples(st.just("remove"), st.integers(0, 2)),
        st.tuples(st.just("rename"), st.integers(0, 2), st.integers(0, 2)),
        st.tuples(st.just("sync"), st.integers(0, 2)),
        st.tuples(st.just("sync_dir"), st.integers(0, 1)),
    ),
    max_size=25,
)


def _run(operations: list[tuple[object, ...]]) -> SimulatedDisk:
    """Apply generated operations, skipping the ones that do not apply."""
    disk = SimulatedDisk()
    disk.make_dirs("/a")
    disk.make_dirs("/b")
    paths = ["/a/x", "/a/y", "/b/z"]
    handles: dict[str, StorageFile] = {}
    for operation in operations:
        kind, index, *args = operation
        assert isinstance(index, int)
        try:
            if kind == "write" and paths[index] in handles:
                offset, data = args
                assert isinstance(offset, int)
                assert isinstance(data, bytes)
                handles[paths[index]].write_at(offset, data)
            elif kind == "create":
                (size,) = args
                assert isinstance(size, int)
                handles[paths[index]] = disk.create_file(paths[index], size)
            elif kind == "remove":
                disk.remove_file(paths[index])
                handles.pop(paths[index], None)
            elif kind == "rename":
                (target,) = args
                assert isinstance(target, int)
                disk.rename(paths[index], paths[target])
                handles[paths[target]] = handles.pop(paths[index])
            elif kind == "sync" and paths[index] in handles:
                handles[paths[index]].sync()
            elif kind == "sync_dir":
                disk.sync_dir(["/a", "/b"][index])
        except StorageError:
            pass  # EEXIST, ENOENT: the operation did not apply
    return disk


@given(_OPERATIONS)
def test_every_op_kept_is_the_visible_state_and_every_op_dropped_is_the_durable_state(
    operations: list[tuple[object, ...]],
) -> None:
    disk = _run(operations)
    pending = disk.pending()
    assert power_loss_image(disk, (KEEP,) * len(pending)).visible_files() == disk.visible_files()
    assert durable_image(disk).visible_files() == disk.durable_files()
    assert process_crash_image(disk).visible_files() == disk.visible_files()


@given(_OPERATIONS, st.randoms(use_true_random=False))
def test_a_crash_image_is_wholly_durable_and_syncing_everything_leaves_nothing_to_lose(
    operations: list[tuple[object, ...]], rng: random.Random
) -> None:
    disk = _run(operations)
    choices: tuple[Choice, ...] = random_choices(disk.pending(), rng, tear_probability=0.3)
    image = power_loss_image(disk, choices)
    assert image.pending() == ()
    assert image.durable_files() == image.visible_files()
    for path in disk.visible_files():
        disk.open_file(path, writable=True).sync()
    disk.sync_dir("/a")
    disk.sync_dir("/b")
    assert disk.pending() == ()
    assert durable_image(disk).visible_files() == disk.visible_files()


# -- onto the real file system and under the core -----------------------------------


def test_materialize_writes_files_that_os_storage_reads_back(tmp_path: Path) -> None:
    disk, handle = _disk_with_synced_file()
    handle.write_at(2000, b"tail")
    disk.make_dirs("/d/empty")
    disk.create_file("/elsewhere", 3)
    materialize(disk, tmp_path, root="/d")
    storage = OsStorage()
    assert storage.list_files(str(tmp_path)) == ["f"]
    assert storage.is_dir(str(tmp_path / "empty"))
    real = storage.open_file(str(tmp_path / "f"), writable=False)
    assert real.read_at(0, 10_000) == disk.visible_files()["/d/f"]
    real.close()


def test_the_core_reopens_a_process_crash_image_with_the_same_state() -> None:
    disk = SimulatedDisk()
    with MultiRecordLog.open("/log", storage=disk, file_num_bytes=32768) as log:
        log.create_queue("q")
        log.create_queue("r")
        for i in range(40):
            log.append_record("q", bytes([i]) * 1000)
        log.truncate("q", 9)
        log.append_records("r", [b"a", b"b"])
        state = log.state()
    assert len(disk.list_files("/log")) > 1
    image = process_crash_image(disk)
    with MultiRecordLog.open("/log", storage=image, file_num_bytes=32768) as reopened:
        assert reopened.state() == state


def test_the_core_opens_every_power_loss_image_and_keeps_the_fsynced_queue() -> None:
    disk = SimulatedDisk()
    log = MultiRecordLog.open("/log", storage=disk, file_num_bytes=32768)
    log.create_queue("q")  # fsynced
    for i in range(30):
        log.append_record("q", bytes([i]) * 1500)  # flushed only: may be lost
    log.truncate("q", 20)
    assert len(disk.pending()) > 5
    for choices in enumerate_choices(disk.pending(), max_images=200, tear_variants=True):
        with MultiRecordLog.open("/log", storage=power_loss_image(disk, choices), file_num_bytes=32768) as reopened:
            assert reopened.list_queues() == ["q"]


def test_the_core_recovers_the_durable_image_after_fsynced_operations() -> None:
    disk = SimulatedDisk()
    with MultiRecordLog.open("log", storage=disk, file_num_bytes=32768) as log:
        log.create_queue("q")  # fsynced
        state = log.state()
        log.append_record("q", b"maybe lost")  # flushed, not fsynced
    with MultiRecordLog.open("log", storage=durable_image(disk), file_num_bytes=32768) as reopened:
        assert reopened.state() == state
