"""Hypothesis strategies for operation sequences, shared by the state machines
of the test suite and the live conformance check.

Requires Hypothesis (the ``oracle`` extra); nothing else in the package
imports this module.
"""

from __future__ import annotations

import random

from hypothesis import strategies as st

from mrecordlog.model import MAX_RECORD_POSITION, MAX_U64, QueueModel
from mrecordlog.oracle.workloads import block_filling_size

__all__ = [
    "APPEND_POSITIONS",
    "LONGEST_NAME",
    "TRUNCATE_POSITIONS",
    "append_position",
    "batches",
    "block_filling_size",
    "payloads",
    "queue_names",
    "truncate_position",
]

BLOCK = 32768
LONGEST_NAME = "n" * 65535

# Most operations hit the same two queues, so that sequences build up state;
# one in twenty uses the longest allowed name (its records span blocks).
_NAME_WEIGHTS = (("a", 10), ("b", 5), ("", 2), ("é🦀", 2), (LONGEST_NAME, 1))
_NAME_TABLE = tuple(name for name, weight in _NAME_WEIGHTS for _ in range(weight))
queue_names = st.integers(0, len(_NAME_TABLE) - 1).map(_NAME_TABLE.__getitem__)

# Payload sizes biased to 0, 1, the sizes whose one-record append fills a block
# exactly (7 + 11 + name + 12 + size = 32768, for the short names), and sizes
# larger than a block.
_FILLS_BLOCK = [BLOCK - 7 - 11 - 12 - n for n in (0, 1, 6)]
_AROUND_BLOCK = sorted({s + d for s in _FILLS_BLOCK for d in range(-8, 9)})
payload_sizes = st.one_of(
    st.sampled_from([0, 1, 2, 3]),
    st.integers(0, 200),
    st.sampled_from(_AROUND_BLOCK),
    st.sampled_from([BLOCK, 40000, 70000]),
)
payloads = st.builds(lambda size, seed: random.Random(seed).randbytes(size), payload_sizes, st.integers(0, 255))
batches: st.SearchStrategy[list[bytes]] = st.one_of(
    st.just([]), st.lists(payloads, min_size=1, max_size=1), st.lists(payloads, max_size=6)
)

APPEND_POSITIONS = ("none", "last", "next", "past", "future", "near_max")
TRUNCATE_POSITIONS = ("before_head", "head", "inside", "last", "beyond", "max")


def append_position(kind: str, delta: int, next_position: int) -> int | None:
    """An explicit append position of the given kind, relative to the queue's
    next position (``None``: no explicit position)."""
    return {
        "none": None,
        "last": next_position - 1,
        "next": next_position,
        "past": next_position - 2 - delta,
        "future": next_position + 1 + delta,
        "near_max": MAX_RECORD_POSITION - delta,
    }[kind]


def truncate_position(kind: str, delta: int, queue: QueueModel | None) -> int:
    """A truncation position of the given kind, relative to the queue's records."""
    records = queue.records if queue is not None else []
    next_position = queue.next_position if queue is not None else 0
    first = records[0][0] if records else next_position
    last = records[-1][0] if records else next_position
    return {
        "before_head": max(first - 1 - delta, 0),
        "head": first,
        "inside": records[len(records) // 2][0] if records else first,
        "last": last,
        "beyond": last + 1 + delta,
        "max": MAX_U64 - delta,
    }[kind]
