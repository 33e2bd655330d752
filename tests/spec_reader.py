"""The independent reader of clean WAL directories, for the tests that import
it from here; it lives in ``mrecordlog.oracle.spec_reader`` (the fuzz campaign
uses it too)."""

from mrecordlog.oracle.spec_reader import (
    BLOCK,
    FIRST,
    FULL,
    HEADER,
    LAST,
    MIDDLE,
    FormatViolation,
    canonical_json,
    directory_files,
    prefix_states,
    read_records,
    read_state,
    replay,
)

__all__ = [
    "BLOCK",
    "FIRST",
    "FULL",
    "HEADER",
    "LAST",
    "MIDDLE",
    "FormatViolation",
    "canonical_json",
    "directory_files",
    "prefix_states",
    "read_records",
    "read_state",
    "replay",
]
