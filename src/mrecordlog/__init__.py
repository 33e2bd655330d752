"""mrecordlog: a multi-queue write-ahead record log, byte-compatible with
Quickwit's mrecordlog 0.5, and the reference its other implementations are
checked against.

The public API, re-exported; nothing else lives here but ``__version__``.
"""

from mrecordlog._codec import ChecksumProfile
from mrecordlog._compiled import compiled_modules
from mrecordlog._recovery import Damage, QuarantinedBytes, RecoveryMode, RecoveryReport
from mrecordlog._storage import OsStorage, Storage, StorageFile
from mrecordlog.errors import (
    CapacityExceeded,
    ChecksumProfileMismatch,
    CorruptionError,
    FileNumbersExhausted,
    FileSizeMismatch,
    InvalidArgument,
    LogClosed,
    LogFailed,
    LogForked,
    LogLocked,
    MissingQueue,
    MRecordLogError,
    PositionInPast,
    PositionOverflow,
    QueueAlreadyExists,
    QueueModifiedDuringIteration,
    RecordDecodeError,
    StorageError,
    UnexpectedEntry,
)
from mrecordlog.inspection import Inspection, LogState, QueueState, inspect_log
from mrecordlog.log import MultiRecordLog
from mrecordlog.outcomes import (
    AppendOutcome,
    CreateQueueOutcome,
    DeleteQueueOutcome,
    QueueSummary,
    Record,
    ResourceUsage,
    TruncateOutcome,
)
from mrecordlog.policy import Always, DoNothing, OnDelay, PersistAction, PersistPolicy

# The one place the version is written: pyproject.toml reads it from here
# (setuptools' ``attr:``, without importing the package). Asking
# importlib.metadata instead took half the time of ``import mrecordlog``.
__version__ = "0.1.0"

__all__ = [
    "Always",
    "AppendOutcome",
    "CapacityExceeded",
    "ChecksumProfile",
    "ChecksumProfileMismatch",
    "CorruptionError",
    "CreateQueueOutcome",
    "Damage",
    "DeleteQueueOutcome",
    "DoNothing",
    "FileNumbersExhausted",
    "FileSizeMismatch",
    "Inspection",
    "InvalidArgument",
    "LogClosed",
    "LogFailed",
    "LogForked",
    "LogLocked",
    "LogState",
    "MRecordLogError",
    "MissingQueue",
    "MultiRecordLog",
    "OnDelay",
    "OsStorage",
    "PersistAction",
    "PersistPolicy",
    "PositionInPast",
    "PositionOverflow",
    "QuarantinedBytes",
    "QueueAlreadyExists",
    "QueueModifiedDuringIteration",
    "QueueState",
    "QueueSummary",
    "Record",
    "RecordDecodeError",
    "RecoveryMode",
    "RecoveryReport",
    "ResourceUsage",
    "Storage",
    "StorageError",
    "StorageFile",
    "TruncateOutcome",
    "UnexpectedEntry",
    "compiled_modules",
    "inspect_log",
]
