"""SIGTERM and SIGHUP stop a local run or search the way Ctrl-C does.

Without this, SIGTERM (a `kill`, a CI job cancelled, a container stopped) and SIGHUP (the
terminal closed) end nbflow at once, and the step or worker processes, which have their own
session, carry on alone. Within `interruptible`, each of SIGINT, SIGTERM and SIGHUP raises
`nbflow.errors.Interrupted` (a KeyboardInterrupt) naming the signal, so the code that cleans up
after Ctrl-C runs for all three.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

from nbflow.errors import Interrupted

SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@contextlib.contextmanager
def interruptible(
    on_signal: Callable[[int], None] | None = None,
    again: Callable[[int], None] | None = None,
) -> Iterator[None]:
    """Within: the first of SIGINT, SIGTERM or SIGHUP calls `on_signal(signum)`, then raises
    Interrupted; any later one calls `again(signum)` only, so that a second Ctrl-C does not
    break off the cleanup of the first (`again` may hurry it). Both run in a signal handler:
    they should only send signals or set flags.

    A signal that is ignored when this starts (`nohup` ignores SIGHUP; a shell ignores SIGINT
    for a job started with `&`) stays ignored. Off the main thread, where Python runs no signal
    handler, this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if fired:
            if again is not None:
                again(signum)
            return
        fired.append(signum)
        if on_signal is not None:
            on_signal(signum)
        raise Interrupted(signum)

    previous = {}
    for sig in SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, signal.SIG_DFL if old is None else old)
