"""ENOSPC on the production OS code path, with pyfakefs's disk-size limit."""

from __future__ import annotations

import errno

import pytest
from pyfakefs.fake_filesystem import FakeFilesystem

from mrecordlog import LogFailed, MultiRecordLog, StorageError


@pytest.mark.parametrize("capacity", [150_000, 200_000, 260_000])
def test_a_full_disk_fail_stops_the_log_and_keeps_every_acknowledged_record(fs: FakeFilesystem, capacity: int) -> None:
    fs.create_dir("/data")
    fs.set_disk_usage(capacity, path="/data")
    log = MultiRecordLog.open("/data/log", file_num_bytes=65536)
    log.create_queue("q")
    acknowledged: list[bytes] = []
    failure: StorageError | None = None
    for number in range(1000):
        payload = bytes([number % 256]) * 5000
        try:
            log.append_record("q", payload)
        except StorageError as exc:
            failure = exc
            break
        acknowledged.append(payload)
    assert failure is not None
    assert failure.errno == errno.ENOSPC
    assert failure.path.startswith("/data/log/wal-")
    assert [r.payload for r in log.range("q")] == acknowledged  # memory unchanged by the failed call
    with pytest.raises(LogFailed):
        log.append_record("q", b"refused")
    log.close()
    # The file whose preallocation failed was removed, not left at the wrong size.
    assert {fs.get_object(f"/data/log/{name}").size for name in fs.listdir("/data/log")} == {65536}
    with MultiRecordLog.open("/data/log") as reopened:
        assert [r.payload for r in reopened.range("q")] == acknowledged
