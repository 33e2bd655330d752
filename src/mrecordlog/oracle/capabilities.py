"""What an implementation says it can do: the ``hello`` answer, parsed once.

Every check asks this module what to generate (operations, checksum profiles,
file sizes) and how to judge a recovery (the announced mode), so that a
request outside what was announced is never sent, and a refusal of something
not announced is never a failure. ``spec/CONFORMANCE.md`` §2 documents the
fields; a ``hello`` that does not follow it is the adapter's failure
(``MalformedHello``), reported like any other adapter trouble.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from mrecordlog.oracle.protocol import LOG_OPS

BLOCK_NUM_BYTES: Final = 32768
CHECKSUMS: Final = ("crc32", "crc32c")
RECOVERY_MODES: Final = ("point_in_time", "strict", "skip")
# Without these nothing can be checked at all.
ESSENTIAL_OPS: Final = frozenset({"open", "close", "state"})


class MalformedHello(ValueError):
    """The ``hello`` answer does not follow ``spec/CONFORMANCE.md`` §2."""


@dataclass(frozen=True)
class FileSizes:
    """The ``file_num_bytes`` values an implementation accepts: every positive
    multiple of ``multiple_of``, or exactly the sizes in ``sizes``."""

    multiple_of: int | None = BLOCK_NUM_BYTES
    sizes: tuple[int, ...] = ()

    def allows(self, num_bytes: int) -> bool:
        if self.multiple_of is not None:
            return num_bytes > 0 and num_bytes % self.multiple_of == 0
        return num_bytes in self.sizes

    def nearest(self, wanted: int) -> int:
        """The accepted size closest to ``wanted`` (the smaller one on a tie):
        a check that wants small files to make the log roll gets the smallest
        files the implementation takes."""
        if self.multiple_of is not None:
            return max(self.multiple_of, round(wanted / self.multiple_of) * self.multiple_of)
        return min(self.sizes, key=lambda size: (abs(size - wanted), size))

    def to_json_value(self) -> Any:
        return {"multiple_of": self.multiple_of} if self.multiple_of is not None else list(self.sizes)


@dataclass(frozen=True)
class Capabilities:
    name: str
    version: str
    ops: frozenset[str]
    checksums: tuple[str, ...]
    recovery: str
    file_sizes: FileSizes

    @property
    def can_open(self) -> bool:
        return self.ops >= ESSENTIAL_OPS

    def supports_all(self, ops: Sequence[str]) -> bool:
        return set(ops) <= self.ops

    def checksum_for(self, wanted: str) -> str:
        """``wanted`` if announced, else the first announced profile."""
        return wanted if wanted in self.checksums else self.checksums[0]

    @classmethod
    def from_hello(cls, hello: dict[str, Any]) -> Capabilities:
        """Parse a ``hello`` answer; raise ``MalformedHello`` saying which field is wrong."""
        if hello.get("ok") is not True:
            raise MalformedHello(f"hello was refused: {_short(hello)}")
        ops = hello.get("ops", list(LOG_OPS))
        if not isinstance(ops, list) or not all(isinstance(op, str) for op in ops):
            raise MalformedHello(f"hello 'ops' must be a list of operation names, not {_short(ops)}")
        checksums = hello.get("checksums", list(CHECKSUMS))
        if (
            not isinstance(checksums, list)
            or not checksums
            or not all(isinstance(c, str) and c in CHECKSUMS for c in checksums)
        ):
            raise MalformedHello(
                f"hello 'checksums' must be a non-empty list of {list(CHECKSUMS)}, not {_short(checksums)}"
            )
        recovery = hello.get("recovery", "point_in_time")
        if recovery not in RECOVERY_MODES:
            raise MalformedHello(f"hello 'recovery' must be one of {list(RECOVERY_MODES)}, not {_short(recovery)}")
        return cls(
            name=str(hello.get("name", "?")),
            version=str(hello.get("version", "")),
            ops=frozenset(op for op in ops if op in LOG_OPS),
            checksums=tuple(dict.fromkeys(checksums)),
            recovery=str(recovery),
            file_sizes=_file_sizes(hello.get("file_num_bytes")),
        )


def _file_sizes(value: Any) -> FileSizes:
    if value is None:
        return FileSizes()
    if isinstance(value, dict) and set(value) == {"multiple_of"}:
        step = value["multiple_of"]
        if isinstance(step, int) and not isinstance(step, bool) and step > 0 and step % BLOCK_NUM_BYTES == 0:
            return FileSizes(multiple_of=step)
    if (
        isinstance(value, list)
        and value
        and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 and n % BLOCK_NUM_BYTES == 0 for n in value)
    ):
        return FileSizes(multiple_of=None, sizes=tuple(sorted(set(value))))
    raise MalformedHello(
        "hello 'file_num_bytes' must be {\"multiple_of\": N} or a non-empty list of sizes, N and every size "
        f"a positive multiple of {BLOCK_NUM_BYTES}, not {_short(value)}"
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."
