"""Starting a command the way a terminal starts a foreground job."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def sigint_as_on_a_terminal() -> Iterator[None]:
    """Processes started inside get SIGINT at its default action, as a
    terminal's foreground job does (this process's own handling of it is
    restored after).

    A job that a non-interactive shell starts in the background (a CI
    script's ``command &``) inherits SIGINT ignored, and so would every
    process it starts; Python then installs no KeyboardInterrupt handler, and
    a test that sends Ctrl-C's signal would wait for the whole budget. A
    handler of this process (unlike SIG_IGN) becomes SIG_DFL in an exec'd
    child."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
