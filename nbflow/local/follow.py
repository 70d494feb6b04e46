"""Step logs followed as they grow: `nbflow run -v`'s live output under the nbflow engine.

A step writes its output straight to its log (`nbflow.local.worker`), as a pod writes to its
container log; nbflow reads the logs of the running steps from a thread, a few times a second,
and hands each complete line to `echo(step, line)`. The step never waits on nbflow: whatever
nbflow does, the log is the step's whole output. When a step ends, `done` hands over the rest of
its log (a last line without a newline included) before the caller reports the end.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path

Echo = Callable[[str, str], None]  # (step, one line of its output)

POLL_SECONDS = 0.05
LONGEST_LINE = 64 * 1024  # bytes without a newline handed over as a line of their own


class LogFollower:
    def __init__(self, echo: Echo, poll: float = POLL_SECONDS) -> None:
        self.echo = echo
        self.poll = poll
        self._lock = threading.Lock()  # one reader of the logs at a time
        self._following: dict[Path, str] = {}  # log -> its step
        self._read: dict[Path, int] = {}  # log -> bytes handed over (a retry appends to it)
        self._partial: dict[Path, bytes] = {}  # log -> the start of a line not yet ended
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: Exception | None = None  # what `echo` raised in the thread, which then ended

    def follow(self, step: str, log: Path) -> None:
        """Start handing over `log`'s lines, from where an earlier attempt's ended."""
        with self._lock:
            self._following[log] = step
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="nbflow-logs", daemon=True)
            self._thread.start()

    def done(self, log: Path) -> None:
        """The step's attempt ended: hand over the rest of `log` now, then stop following it."""
        with self._lock:
            step = self._following.pop(log, None)
            if step is not None:
                self._hand_over(log, step, last=True)

    def close(self) -> None:
        """Hand over what every followed log still holds; stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for log in list(self._following):
            self.done(log)

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            with self._lock:
                try:
                    for log, step in list(self._following.items()):
                        self._hand_over(log, step, last=False)
                except Exception as exc:  # a closed stdout: the caller raises it, not a thread
                    self.error = exc
                    return

    def _hand_over(self, log: Path, step: str, *, last: bool) -> None:
        data = b""
        with contextlib.suppress(OSError), log.open("rb") as f:
            f.seek(self._read.get(log, 0))
            data = f.read()
        self._read[log] = self._read.get(log, 0) + len(data)
        data = self._partial.pop(log, b"") + data
        *lines, rest = data.split(b"\n")
        if last or len(rest) > LONGEST_LINE:
            lines, rest = ([*lines, rest] if rest else lines), b""
        if rest:
            self._partial[log] = rest
        for line in lines:
            self.echo(step, line.decode("utf-8", errors="replace").removesuffix("\r"))
