"""Images for the checks that open directories the reference wrote (reader,
continuation): crash images from the fault layer and damaged copies.

A workload runs through the reference on a ``SimulatedDisk``
(``crashcheck.run_workload``); at a share of its storage calls a power loss
(writes kept, dropped or torn at random, or torn at one sector) or a process
crash leaves an image, with the states an acknowledged prefix allows; at the
end a copy of the final image gets a flipped bit or a zeroed range. Workloads
are fitted to the implementation's announced profiles and file sizes first.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from dataclasses import dataclass

from mrecordlog.fault_injection import SimulatedDisk, power_loss_image, process_crash_image, random_choices
from mrecordlog.oracle.capabilities import Capabilities
from mrecordlog.oracle.crashcheck import LOG_DIR, History, run_workload, torn_choices
from mrecordlog.oracle.workloads import Workload

BLOCK = 32768
HEADER = 7


@dataclass
class ImageCase:
    kind: str  # "crash" or "damaged"
    image: SimulatedDisk
    # For a crash image, the states an acknowledged prefix allows (a power
    # loss and a process crash acknowledge differently).
    allowed: set[str]
    history: History
    workload: Workload


def last_block_frame_headers(data: bytes) -> list[int]:
    """The offsets of the frame headers in the last block of ``data`` that
    holds anything, found by walking the frames' lengths."""
    end = len(data.rstrip(b"\0"))
    if not end:
        return []
    block = (end - 1) // BLOCK * BLOCK
    headers = []
    cursor = 0
    while cursor + HEADER <= BLOCK and block + cursor + HEADER <= len(data):
        header = data[block + cursor : block + cursor + HEADER]
        if not any(header):
            break
        headers.append(block + cursor)
        cursor += HEADER + int.from_bytes(header[4:6], "little")
    return headers


def fit_workload(workload: Workload, capabilities: Capabilities) -> Workload:
    """The workload with an announced checksum profile and an accepted file size."""
    return dataclasses.replace(
        workload,
        checksum=capabilities.checksum_for(workload.checksum),
        file_num_bytes=capabilities.file_sizes.nearest(workload.file_num_bytes),
    )


def image_cases(workload: Workload, rng: random.Random, *, crash_share: float = 0.1) -> Iterator[ImageCase]:
    """Crash images taken while the workload runs, then one damaged image of its end."""
    images: list[ImageCase] = []

    def capture(disk: SimulatedDisk, history: History, point: int) -> None:
        if rng.random() < crash_share:
            pending = disk.pending()
            torn = torn_choices(disk, rng) if rng.random() < 0.5 else None
            choices = torn if torn is not None else random_choices(pending, rng, tear_probability=0.2)
            allowed = history.allowed(power_loss=True)
            images.append(ImageCase("crash", power_loss_image(disk, choices), allowed, history, workload))
        if rng.random() < crash_share / 2:
            allowed = history.allowed(power_loss=False)
            images.append(ImageCase("crash", process_crash_image(disk), allowed, history, workload))

    disk, history = run_workload(workload, capture, check_answers=False)
    yield from images
    damaged = process_crash_image(disk)
    wal = {p: d for p, d in damaged.visible_files(LOG_DIR).items() if "/wal-" in p and d.rstrip(b"\0")}
    if not wal:
        return
    path = rng.choice(sorted(wal))
    end = len(wal[path].rstrip(b"\0"))
    data = wal[path]
    headers = last_block_frame_headers(data)
    handle = damaged.open_file(path, writable=True)
    roll = rng.random()
    if roll < 0.3 and len(headers) > 1:
        # A hole: one frame of the last block zeroed whole, frames after it.
        # Its zero header ends the log there; the frames after it are what a
        # writer must not let come back once it has written over the hole.
        index = rng.randrange(len(headers) - 1)
        handle.write_at(headers[index], bytes(headers[index + 1] - headers[index]))
    elif roll < 0.5 and headers:
        # A frame whose length field points past its block: every reader
        # abandons the rest of the block there.
        handle.write_at(rng.choice(headers) + 4, b"\xff\xff")
    elif roll < 0.75:
        offset = rng.randrange(end)
        handle.write_at(offset, bytes([data[offset] ^ (1 << rng.randrange(8))]))
    else:
        start = rng.randrange(end)
        handle.write_at(start, bytes(min(rng.choice((7, 100, 600)), end - start)))
    handle.sync()
    handle.close()
    yield ImageCase("damaged", damaged, set(), history, workload)
