"""Validation of the public API's arguments: what can never be a valid argument.

Every check here either returns the argument in the one form the rest of the
package relies on (a payload as exact ``bytes``/``bytearray`` or a flat byte
``memoryview``, a position as an exact ``int``, a persist action as a
``PersistAction``, ...) or raises ``InvalidArgument`` whose ``argument`` names
the parameter (and whose ``queue`` names the queue, when there is one). No
other exception escapes: a caller never sees a raw ``TypeError``,
``ValueError`` or ``OverflowError`` for an argument that can never be valid.
The checks of the append hot path test exact types first, so that the common
case (a list of ``bytes``) costs a few type comparisons.
"""

from __future__ import annotations

import math
import operator
import os
from array import array
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from mrecordlog._codec import (
    BLOCK_NUM_BYTES,
    MAX_PAYLOAD_BYTES,
    MAX_QUEUE_NAME_BYTES,
    MAX_U64,
    ChecksumProfile,
)
from mrecordlog._recovery import RecoveryMode
from mrecordlog.errors import InvalidArgument

if TYPE_CHECKING:
    from mrecordlog.policy import PersistAction, PersistPolicy

Payload = bytes | bytearray | memoryview

# The largest file size ``open`` accepts (4 EiB). Far beyond what a file system
# allocates, so a real size is never refused, but small enough that a size is
# never an integer the OS calls cannot take (those raise OverflowError).
MAX_FILE_NUM_BYTES = 2**62

# A str of at most this many characters is at most MAX_QUEUE_NAME_BYTES UTF-8
# bytes when it is ASCII (the fast path of ``queue_name``).
_ASCII_NAME_FAST_PATH = MAX_QUEUE_NAME_BYTES

# Never a batch, though iterable: iterating them yields ints or characters,
# not payloads (a caller who passes one meant append_record).
_NOT_A_BATCH = (str, bytes, bytearray, memoryview, array)


def _type_name(value: object) -> str:
    return type(value).__name__


def queue_name(queue: object, argument: str = "queue") -> str:
    """A queue name: a str (a subclass becomes an exact str) of at most 65535
    UTF-8 bytes."""
    if type(queue) is str and queue.isascii() and len(queue) <= _ASCII_NAME_FAST_PATH:
        return queue
    if not isinstance(queue, str):
        raise InvalidArgument(f"{argument} must be a str, got {_type_name(queue)}: {queue!r:.80}", argument=argument)
    # A subclass may override __eq__ and __hash__: the log keys its queues by
    # the exact string.
    name = str.__str__(queue)
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgument(f"{argument} is not encodable as UTF-8: {exc}", queue=name, argument=argument) from None
    if len(encoded) > MAX_QUEUE_NAME_BYTES:
        raise InvalidArgument(
            f"{argument} is {len(encoded)} UTF-8 bytes long; the limit is {MAX_QUEUE_NAME_BYTES}",
            queue=name,
            argument=argument,
        )
    return name


def _integer(value: object, argument: str, queue: str | None) -> int:
    if type(value) is int:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return operator.index(value)  # an exact int, whatever the subclass overrides
    raise InvalidArgument(
        f"{argument} must be an int, got {_type_name(value)}: {value!r:.80}", queue=queue, argument=argument
    )


def position(value: object, argument: str = "position", queue: str | None = None) -> int:
    """A position: an int (not a bool) in [0, 2^64 - 1]."""
    number = _integer(value, argument, queue)
    if not 0 <= number <= MAX_U64:
        raise InvalidArgument(f"{argument} {number} is outside [0, 2^64 - 1]", queue=queue, argument=argument)
    return number


def range_bound(value: object, argument: str, queue: str | None = None) -> int | None:
    """A ``range`` bound: None (unbounded) or a position."""
    return None if value is None else position(value, argument, queue)


def payload(value: object, argument: str = "payload", queue: str | None = None, *, index: int | None = None) -> Payload:
    """One payload as the bytes that are written: exact ``bytes`` and
    ``bytearray`` as they are; any other C-contiguous buffer (a subclass of
    ``bytes`` or ``bytearray``, an ``array``, a multi-byte or multi-dimensional
    ``memoryview``) as a flat ``memoryview`` of its bytes, whose length is its
    size in bytes. ``index`` is the payload's place in its batch (for the message)."""
    what = argument if index is None else f"{argument}[{index}]"
    kind = type(value)
    if kind is bytes or kind is bytearray:
        size = len(value)  # type: ignore[arg-type]
        if size > MAX_PAYLOAD_BYTES:
            raise InvalidArgument(
                f"{what} is {size} bytes long; the limit is {MAX_PAYLOAD_BYTES}", queue=queue, argument=argument
            )
        return value  # type: ignore[return-value]
    # The buffer protocol, not len() or iteration: a subclass of bytes may lie
    # about its length, and an array's len() counts items, not bytes.
    try:
        view = memoryview(value)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidArgument(
            f"{what} must be a bytes-like object (bytes, bytearray or another C-contiguous buffer), "
            f"got {_type_name(value)}",
            queue=queue,
            argument=argument,
        ) from None
    except ValueError as exc:  # a released memoryview
        raise InvalidArgument(f"{what}: {exc}", queue=queue, argument=argument) from None
    if not view.c_contiguous:
        view.release()  # do not keep the caller's object exported (a bytearray could not resize)
        raise InvalidArgument(
            f"{what} must be a C-contiguous buffer (a strided view such as memoryview(b)[::2] is not)",
            queue=queue,
            argument=argument,
        )
    size = view.nbytes
    if size > MAX_PAYLOAD_BYTES:
        view.release()
        raise InvalidArgument(
            f"{what} is {size} bytes long; the limit is {MAX_PAYLOAD_BYTES}", queue=queue, argument=argument
        )
    if size == 0:
        view.release()
        return b""  # cast refuses a view with a zero in its shape
    return view.cast("B")


def batch(payloads: object, queue: str | None = None) -> Sequence[Payload]:
    """A batch of payloads, materialised: the caller's list or tuple itself when
    every payload is exact ``bytes``/``bytearray``, else a new list of the
    normalised payloads. Any other iterable is consumed here, once (so the
    caller's code runs before the log writes anything)."""
    kind = type(payloads)
    items: Sequence[object]
    if kind is list or kind is tuple:
        items = payloads  # type: ignore[assignment]
    elif isinstance(payloads, _NOT_A_BATCH):
        raise InvalidArgument(
            f"payloads: a batch must be an iterable of bytes-like objects, got a {_type_name(payloads)} "
            "object (append_record appends one payload)",
            queue=queue,
            argument="payloads",
        )
    else:
        try:
            iterator = iter(payloads)  # type: ignore[call-overload]
        except TypeError:
            raise InvalidArgument(
                f"payloads: a batch must be an iterable of bytes-like objects, got {_type_name(payloads)}",
                queue=queue,
                argument="payloads",
            ) from None
        items = list(iterator)
    # The hot path: every payload exact bytes or bytearray of a valid size.
    for item in items:
        item_kind = type(item)
        if (item_kind is not bytes and item_kind is not bytearray) or len(item) > MAX_PAYLOAD_BYTES:  # type: ignore[arg-type]
            break
    else:
        return items  # type: ignore[return-value]
    return [payload(item, "payloads", queue, index=index) for index, item in enumerate(items)]


def file_num_bytes(value: object) -> int:
    """A WAL file size: a positive multiple of 32 KiB, at most 2^62."""
    number = _integer(value, "file_num_bytes", None)
    if number <= 0 or number % BLOCK_NUM_BYTES or number > MAX_FILE_NUM_BYTES:
        raise InvalidArgument(
            f"file_num_bytes must be a positive multiple of {BLOCK_NUM_BYTES} of at most 2^62, got {number}",
            argument="file_num_bytes",
        )
    return number


def directory(value: object) -> str:
    """A directory path: a str or an ``os.PathLike`` of str, not empty, without
    NUL (bytes paths are refused: the log names its files in str)."""
    path: object = value
    if not isinstance(value, str) and isinstance(value, os.PathLike):
        path = value.__fspath__()
    if not isinstance(path, str):
        raise InvalidArgument(
            f"directory must be a str or an os.PathLike of str, got {_type_name(value)}: {value!r:.80}",
            argument="directory",
        )
    path = str.__str__(path)
    if not path or "\0" in path:
        raise InvalidArgument(f"directory {path!r:.80} is empty or contains NUL", argument="directory")
    return path


def persist_action(value: object, argument: str = "action") -> PersistAction:
    """A ``PersistAction``, or exactly one of its values (``"flush"``,
    ``"flush_and_fsync"``)."""
    from mrecordlog.policy import PersistAction

    if type(value) is PersistAction:
        return value
    if isinstance(value, str):
        for action in PersistAction:
            if str.__str__(value) == action.value:
                return action
    raise InvalidArgument(
        f"{argument} must be a PersistAction, 'flush' or 'flush_and_fsync', got {value!r:.80}", argument=argument
    )


def persist_policy(value: object) -> PersistPolicy:
    """One of the three persist policies."""
    from mrecordlog.policy import Always, DoNothing, OnDelay

    if isinstance(value, (DoNothing, OnDelay, Always)):
        return value
    raise InvalidArgument(
        f"persist_policy must be DoNothing, OnDelay or Always, got {value!r:.80}", argument="persist_policy"
    )


def interval_seconds(value: object) -> float:
    """A persist interval: a finite int or float (not a bool) >= 0, as a float."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            seconds = float.__float__(value) if isinstance(value, float) else float(operator.index(value))
        except OverflowError:
            seconds = math.inf
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    raise InvalidArgument(
        f"interval_seconds must be a finite number >= 0, got {value!r:.80}", argument="interval_seconds"
    )


def checksum_profile(value: object) -> ChecksumProfile | None:
    """None (the log's own profile, or the default) or a checksum profile."""
    if value is None:
        return None
    try:
        return ChecksumProfile.parse(value)
    except InvalidArgument as exc:
        raise InvalidArgument(str(exc), argument="checksum") from None


def recovery_mode(value: object) -> RecoveryMode:
    try:
        return RecoveryMode.parse(value)
    except InvalidArgument as exc:
        raise InvalidArgument(str(exc), argument="recovery") from None


def clock(value: object) -> Callable[[], float]:
    if not callable(value):
        raise InvalidArgument(f"clock must be callable, got {_type_name(value)}", argument="clock")
    return value
