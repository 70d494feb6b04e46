"""What each cell produced, in order, for the report: its streams (stdout and stderr, teed to
the step log) and its display data; and the root logger as a fresh kernel has it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from collections.abc import Iterator
from typing import Any

# Stream text kept per cell in the report; the step log still gets all of it.
MAX_REPORT_STREAM_CHARS = 1_000_000


class CellLog:
    __slots__ = ("_chars", "error", "number", "omitted", "outputs", "seconds", "setup", "source")

    def __init__(self, number: int, source: str, setup: bool) -> None:
        self.number = number
        self.source = source
        self.setup = setup
        # ("stream", name, text) | ("display", mime bundle, Out[] number or None)
        self.outputs: list[tuple[Any, ...]] = []
        self.error: str | None = None
        self.seconds = 0.0
        self.omitted = 0
        self._chars = 0

    def stream(self, name: str, text: str) -> None:
        room = MAX_REPORT_STREAM_CHARS - self._chars
        if len(text) > room:
            self.omitted += len(text) - max(room, 0)
            text = text[: max(room, 0)]
        if not text:
            return
        self._chars += len(text)
        last = self.outputs[-1] if self.outputs else None
        if last is not None and last[0] == "stream" and last[1] == name:
            self.outputs[-1] = ("stream", name, last[2] + text)
        else:
            self.outputs.append(("stream", name, text))

    def display(self, data: dict[str, Any], count: int | None = None) -> None:
        self.outputs.append(("display", dict(data), count))


class Recorder:
    """Routes stream text and display data to the cell that is running."""

    def __init__(self, out: Any) -> None:
        self.cells: list[CellLog] = []
        self.current: CellLog | None = None
        self.out = out  # the real stdout: displayed values go to the log as text too

    def stream(self, name: str, text: str) -> None:
        if self.current is not None:
            self.current.stream(name, text)

    def display(self, data: dict[str, Any], count: int | None = None) -> None:
        if self.current is not None:
            self.current.display(data, count)
        text = data.get("text/plain")
        if text:
            prefix = f"Out[{count}]: " if count is not None else ""
            self.out.write(f"{prefix}{text}\n")
            self.out.flush()

    def clear(self) -> None:
        if self.current is not None:
            self.current.outputs.clear()


class Tee(io.TextIOBase):
    """A text stream that writes through to the real stream and records for the report."""

    def __init__(self, name: str, target: Any, recorder: Recorder) -> None:
        self.name = name
        self._target = target
        self._recorder = recorder

    def write(self, text: str) -> int:
        self._target.write(text)
        self._recorder.stream(self.name, text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._target.flush()

    def fileno(self) -> int:
        return int(self._target.fileno())

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self._target, "errors", None)


@contextlib.contextmanager
def notebook_logging() -> Iterator[None]:
    """The root logger as a fresh kernel has it, for the step's cells.

    kfp's executor gives the root logger a handler on the real stdout before the step starts:
    records went past the report, and `logging.basicConfig` in a cell did nothing. The root
    logger's handlers are put back afterwards, and those a cell added are dropped.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers = []
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.handlers = handlers
        root.setLevel(level)


@contextlib.contextmanager
def teed(recorder: Recorder) -> Iterator[None]:
    saved = sys.stdout, sys.stderr
    sys.stdout = Tee("stdout", saved[0], recorder)
    sys.stderr = Tee("stderr", saved[1], recorder)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        sys.stdout, sys.stderr = saved
