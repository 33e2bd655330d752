"""Hypothesis strategies for operation sequences, shared by the state machines
of the test suite and the live conformance check.

Besides well-formed operations, two strategies cover hostile input as classes:
``foreign_payloads`` (every kind of buffer a caller may hand in as a payload,
each with the bytes it must be recorded as) and ``never_valid_arguments``
(per API entry point, arguments that no state of the log makes valid).

Requires Hypothesis (the ``oracle`` extra); nothing else in the package
imports this module.
"""

from __future__ import annotations

import ctypes
import os
import random
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from hypothesis import strategies as st

from mrecordlog.model import MAX_RECORD_POSITION, MAX_U64, QueueModel
from mrecordlog.oracle.workloads import block_filling_size

__all__ = [
    "APPEND_POSITIONS",
    "FOREIGN_PAYLOAD_KINDS",
    "LONGEST_NAME",
    "TRUNCATE_POSITIONS",
    "NeverValidCall",
    "append_position",
    "batches",
    "block_filling_size",
    "foreign_payloads",
    "never_valid_arguments",
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


# -- foreign payloads ------------------------------------------------------------


class LyingBytes(bytes):
    """A bytes subclass whose ``len`` claims half its size."""

    def __len__(self) -> int:
        return super().__len__() // 2


class LyingByteArray(bytearray):
    """A bytearray subclass whose ``len`` claims one byte more than its size."""

    def __len__(self) -> int:
        return super().__len__() + 1


Builder = Callable[[bytes, st.DataObject], object]


def _itemsize(code: str) -> int:
    # array and memoryview agree on the native item sizes of these codes.
    return array(code).itemsize


def _array(code: str) -> Builder:
    return lambda expected, data: array(code, expected)


def _view_of_array(code: str) -> Builder:
    return lambda expected, data: memoryview(array(code, expected))


def _two_dimensional(code: Literal["B", "I"]) -> Builder:
    def build(expected: bytes, data: st.DataObject) -> object:
        items = len(expected) // _itemsize(code)
        rows = data.draw(st.sampled_from([d for d in range(1, items + 1) if items % d == 0]), label="rows")
        return memoryview(expected).cast(code, shape=[rows, items // rows])

    return build


def _slice_of(expected: bytes, data: st.DataObject) -> object:
    before, after = data.draw(st.integers(0, 3), label="before"), data.draw(st.integers(0, 3), label="after")
    return memoryview(b"<" * before + expected + b">" * after)[before : before + len(expected)]


# kind -> (the byte count the payload's size must be a multiple of (0: exactly
# 8 bytes), how to build an object from the expected bytes). Everything a
# caller may pass: exact bytes-likes, subclasses whose len() lies, arrays and
# views whose items are wider than a byte, views of more (and fewer) than one
# dimension, views into a larger buffer, and non-native formats as ctypes (and
# numpy) export them.
_FOREIGN: dict[str, tuple[int, Builder]] = {
    "bytearray": (1, lambda b, d: bytearray(b)),
    "memoryview": (1, lambda b, d: memoryview(b)),
    "memoryview_slice": (1, _slice_of),
    "bytes_subclass_with_lying_len": (1, lambda b, d: LyingBytes(b)),
    "bytearray_subclass_with_lying_len": (1, lambda b, d: LyingByteArray(b)),
    **{f"array_{code}": (_itemsize(code), _array(code)) for code in "BHIQ"},
    **{f"memoryview_of_array_{code}": (_itemsize(code), _view_of_array(code)) for code in "HIQ"},
    "memoryview_cast_H": (_itemsize("H"), lambda b, d: memoryview(b).cast("H")),
    "memoryview_cast_I": (_itemsize("I"), lambda b, d: memoryview(b).cast("I")),
    "memoryview_cast_Q": (_itemsize("Q"), lambda b, d: memoryview(b).cast("Q")),
    "memoryview_cast_d": (_itemsize("d"), lambda b, d: memoryview(b).cast("d")),
    "memoryview_2d_B": (1, _two_dimensional("B")),
    "memoryview_2d_I": (_itemsize("I"), _two_dimensional("I")),
    "ctypes_uint16_array": (2, lambda b, d: (ctypes.c_uint16 * (len(b) // 2)).from_buffer_copy(b)),
    "ctypes_uint64_scalar": (0, lambda b, d: ctypes.c_uint64.from_buffer_copy(b)),
}
FOREIGN_PAYLOAD_KINDS = tuple(_FOREIGN)
_NEEDS_ITEMS = {"memoryview_2d_B", "memoryview_2d_I"}  # a view with a zero in its shape cannot be made


@st.composite
def foreign_payloads(draw: st.DrawFn) -> tuple[object, bytes]:
    """(a payload object of one of ``FOREIGN_PAYLOAD_KINDS``, the bytes it must
    be recorded as). The bytes are drawn first and the object is built to carry
    exactly them, so the expectation never comes from the code under test."""
    kind = draw(st.sampled_from(FOREIGN_PAYLOAD_KINDS))
    unit, build = _FOREIGN[kind]
    size = draw(payload_sizes)
    if unit == 0:
        size = 8
    else:
        size -= size % unit
        if kind in _NEEDS_ITEMS:
            size = max(size, unit)
    expected = random.Random(draw(st.integers(0, 255))).randbytes(size)
    return build(expected, draw(st.data())), expected


# -- never-valid arguments -------------------------------------------------------


@dataclass(frozen=True)
class NeverValidCall:
    """A call that must be refused with ``InvalidArgument`` naming ``argument``.

    ``target`` is ``"log.<method>"`` (a method of the open log),
    ``"MultiRecordLog.open"`` (the caller adds its storage), or a persist
    policy's class name. ``queue`` is the call's (valid) queue, if it has one:
    the error must name it too."""

    target: str
    args: tuple[object, ...]
    kwargs: dict[str, object] = field(default_factory=dict)
    argument: str = ""
    queue: str | None = None

    def __repr__(self) -> str:
        arguments = [repr(a)[:60] for a in self.args] + [f"{k}={v!r:.60}" for k, v in self.kwargs.items()]
        return f"{self.target}({', '.join(arguments)}) -> InvalidArgument({self.argument!r})"


class _BytesPath:
    """An ``os.PathLike`` whose path is bytes."""

    def __init__(self, path: bytes) -> None:
        self._path = path

    def __fspath__(self) -> bytes:
        return self._path

    def __repr__(self) -> str:
        return f"_BytesPath({self._path!r})"


def _fresh(make: Callable[[], object]) -> st.SearchStrategy[object]:
    """A value built anew for every example (lists, views, iterators)."""
    return st.builds(make)


def _released_view() -> memoryview:
    view = memoryview(b"abc")
    view.release()
    return view


def _strided_views() -> st.SearchStrategy[object]:
    return st.one_of(
        _fresh(lambda: memoryview(bytes(range(8)))[::2]),
        _fresh(lambda: memoryview(bytes(range(8)))[::-1]),
        _fresh(lambda: memoryview(bytes(range(24))).cast("B", shape=[4, 6])[::2]),
        _fresh(lambda: memoryview(array("I", range(6)))[1::2]),
    )


_WRONG_TYPES: list[object] = [None, True, False, 1.5, 0.0, Decimal(1), Fraction(1, 2), b"a", object()]

# Not a queue name: another type, unhashable, unencodable, or too long.
_not_a_name = st.one_of(
    st.sampled_from([*_WRONG_TYPES, 5, bytearray(b"a"), "\ud800", "a\udcff", LONGEST_NAME + "n", "é" * 32768]),
    _fresh(lambda: ["a"]),
    _fresh(lambda: {"a": 1}),
    _fresh(lambda: {"a"}),
)

# Not a position (nor None, which means "none" where a position is optional).
_not_a_position = st.one_of(
    st.sampled_from([True, False, 1.5, 0.0, float("nan"), float("inf"), "1", "0", b"1", Decimal(1), Fraction(1)]),
    st.sampled_from([-1, -5, -(2**64), MAX_U64 + 1, 2**70]),
    st.integers(max_value=-1),
    st.integers(min_value=MAX_U64 + 1),
    _fresh(lambda: [1]),
)

# Not a payload: not a buffer, or a buffer that is not C-contiguous.
_not_a_payload = st.one_of(
    st.sampled_from([None, True, 5, 1.5, "text", "", Decimal(1)]),
    _fresh(object),
    _fresh(lambda: [b"a"]),
    _fresh(_released_view),
    _strided_views(),
)

# Not a batch: not iterable, a bare bytes-like or str, or holding a non-payload.
_not_a_batch = st.one_of(
    st.sampled_from([None, True, 5, 1.5, b"abc", b"", "abc", ""]),
    _fresh(lambda: bytearray(b"abc")),
    _fresh(lambda: memoryview(b"abc")),
    _fresh(lambda: array("B", b"abc")),
    st.builds(lambda bad, before: [b"ok"] * before + [bad], _not_a_payload, st.integers(0, 2)),
    st.builds(lambda bad: iter([b"ok", bad]), _not_a_payload),
    st.builds(lambda bad: (b"ok", bad), _not_a_payload),
    _fresh(lambda: [[b"nested"]]),
)

# Not a persist action: other spellings, types and bools.
_not_an_action = st.sampled_from(
    [True, False, None, 0, 1, 1.5, "", "FLUSH", "Flush", "FLUSH_AND_FSYNC", "fsync", "flush ", b"flush", "sync"]
)

_not_a_file_size = st.one_of(
    st.sampled_from([0, -32768, 1000, 32769, 2**62 + 32768, 2**64, 2**70, 32768.0, "32768", True, b"\x80"]),
    st.integers(max_value=0),
    st.integers(min_value=1).filter(lambda n: n % 32768 != 0),
)


def never_valid_arguments(directory: str) -> st.SearchStrategy[NeverValidCall]:
    """Calls of every public entry point with one argument that can never be
    valid (the others valid), for a log open in ``directory`` (used to spell
    that directory in never-valid ways: as bytes, with a NUL)."""
    queue = queue_names
    log = "log."

    def at(
        target: str,
        argument: str,
        call: Callable[[str, object], tuple[tuple[object, ...], dict[str, object]]],
        values: st.SearchStrategy[object],
        *,
        per_queue: bool = True,
    ) -> st.SearchStrategy[NeverValidCall]:
        def make(name: str, value: object) -> NeverValidCall:
            args, kwargs = call(name, value)
            return NeverValidCall(target, args, kwargs, argument, name if per_queue else None)

        return st.builds(make, queue, values)

    def name_only(name: str, value: object) -> tuple[tuple[object, ...], dict[str, object]]:
        return (value,), {}

    reads = ("queue_exists", "last_position", "last_record", "next_position", "range")
    by_name = [
        *(
            at(log + m, "queue", name_only, _not_a_name, per_queue=False)
            for m in ("create_queue", "delete_queue", *reads)
        ),
        at(log + "append_records", "queue", lambda n, v: ((v, [b"x"]), {}), _not_a_name, per_queue=False),
        at(log + "append_record", "queue", lambda n, v: ((v, b"x"), {}), _not_a_name, per_queue=False),
        at(log + "truncate", "queue", lambda n, v: ((v, 0), {}), _not_a_name, per_queue=False),
    ]
    encoded = os.fsencode(directory)
    not_a_directory = st.one_of(
        st.sampled_from([*_WRONG_TYPES, 5, "", encoded, directory + "\0", directory + "\0x", "\0"]),
        st.just(_BytesPath(encoded)),
        _fresh(lambda: [directory]),
    )
    opens = [
        at("MultiRecordLog.open", "directory", lambda n, v: ((v,), {}), not_a_directory, per_queue=False),
        at(
            "MultiRecordLog.open",
            "file_num_bytes",
            lambda n, v: ((directory,), {"file_num_bytes": v}),
            _not_a_file_size,
            per_queue=False,
        ),
        at(
            "MultiRecordLog.open",
            "persist_policy",
            lambda n, v: ((directory,), {"persist_policy": v}),
            st.sampled_from([None, "always", True, 5, "flush"]),
            per_queue=False,
        ),
        at(
            "MultiRecordLog.open",
            "checksum",
            lambda n, v: ((directory,), {"checksum": v}),
            st.sampled_from(["crc64", "CRC32", "", 5, True, b"crc32", 1.5]),
            per_queue=False,
        ),
        at(
            "MultiRecordLog.open",
            "recovery",
            lambda n, v: ((directory,), {"recovery": v}),
            st.sampled_from([None, "lenient", "", 5, True, b"strict"]),
            per_queue=False,
        ),
        at(
            "MultiRecordLog.open",
            "clock",
            lambda n, v: ((directory,), {"clock": v}),
            st.sampled_from([None, 5, "monotonic", 1.5]),
            per_queue=False,
        ),
    ]
    policies = [
        at("Always", "action", lambda n, v: ((v,), {}), _not_an_action, per_queue=False),
        at("DoNothing", "action", lambda n, v: ((), {"action": v}), _not_an_action, per_queue=False),
        at("OnDelay", "action", lambda n, v: ((1.0, v), {}), _not_an_action, per_queue=False),
        at(
            "OnDelay",
            "interval_seconds",
            lambda n, v: ((v,), {}),
            st.sampled_from([-1, -0.5, "5", None, True, float("nan"), float("inf"), 10**400, b"1"]),
            per_queue=False,
        ),
    ]
    per_queue = [
        at(log + "append_records", "payloads", lambda n, v: ((n, v), {}), _not_a_batch),
        at(log + "append_records", "position", lambda n, v: ((n, [b"x"]), {"position": v}), _not_a_position),
        at(log + "append_record", "payload", lambda n, v: ((n, v), {}), _not_a_payload),
        at(log + "append_record", "position", lambda n, v: ((n, b"x"), {"position": v}), _not_a_position),
        at(log + "truncate", "position", lambda n, v: ((n, v), {}), st.one_of(st.none(), _not_a_position)),
        at(log + "range", "start", lambda n, v: ((n, v), {}), _not_a_position),
        at(log + "range", "end", lambda n, v: ((n,), {"end": v}), _not_a_position),
    ]
    persists = [at(log + "persist", "action", lambda n, v: ((v,), {}), _not_an_action, per_queue=False)]
    return st.one_of(*by_name, *per_queue, *persists, *opens, *policies)
