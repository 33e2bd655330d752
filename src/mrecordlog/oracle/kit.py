"""The conformance kit for Python implementations, in-process.

``check_conformance(factory)`` runs the same checks as
``mrecordlog conformance`` on a ``LogFactory`` (see ``oracle.protocol``) without
a subprocess; ``assert_conforms`` fails a test with the report and its
reproducers:

    from mrecordlog.oracle.kit import assert_conforms

    def test_my_log_conforms():
        assert_conforms(lambda directory, file_num_bytes, checksum: MyLog(directory, ...))
"""

from __future__ import annotations

import tempfile

from mrecordlog.oracle.adapters import InProcessAdapter
from mrecordlog.oracle.conformance import CHECKS, ConformanceReport, ConformanceRunner
from mrecordlog.oracle.protocol import LOG_OPS, LogFactory, ProtocolSession


def check_conformance(
    factory: LogFactory,
    *,
    name: str = "python implementation",
    version: str = "",
    recovery: str = "point_in_time",
    ops: tuple[str, ...] = LOG_OPS,
    checksums: tuple[str, ...] = ("crc32", "crc32c"),
    file_num_bytes: dict[str, int] | tuple[int, ...] | None = None,
    seed: int = 0,
    budget_seconds: float = 10.0,
    checks: tuple[str, ...] = CHECKS,
    baseline: frozenset[str] = frozenset(),
    max_failures: int = 10,
) -> ConformanceReport:
    """Run the conformance checks on an implementation given by its factory.

    ``recovery`` is the recovery mode the implementation implements, ``ops``
    the operations it supports (others are never sent), ``checksums`` and
    ``file_num_bytes`` the profiles and file sizes its ``open`` takes (as in
    ``hello``, ``spec/CONFORMANCE.md`` §2), ``baseline`` the
    failure classes of its known differences (``oracle.classes``).
    """
    session = ProtocolSession(
        factory,
        name=name,
        version=version,
        recovery=recovery,
        ops=ops,
        checksums=checksums,
        file_num_bytes=file_num_bytes,
    )
    adapter = InProcessAdapter(session)
    with tempfile.TemporaryDirectory(prefix="mrecordlog-kit-") as workdir:
        try:
            return ConformanceRunner(
                adapter,
                seed=seed,
                budget_seconds=budget_seconds,
                workdir=workdir,
                checks=checks,
                baseline=baseline,
                max_failures=max_failures,
            ).run()
        finally:
            adapter.close()


def assert_conforms(factory: LogFactory, **options: object) -> ConformanceReport:
    """``check_conformance``, raising ``AssertionError`` with the report on a failure."""
    report = check_conformance(factory, **options)  # type: ignore[arg-type]
    if not report.ok:
        raise AssertionError("\n".join(report.lines()))
    return report
