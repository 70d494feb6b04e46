"""What a failed step says: the step, the cell, the line, and a traceback of the user's code
only; the hint under a value that cannot be saved, or a write that found the disk full.
"""

from __future__ import annotations

import errno
import os
import re
import sys
import traceback

from .util import short_type_name

CELL_FILE = re.compile(r"^<cell (\d+)>$")
_TIMED_FILES = ("<timed exec>", "<timed eval>")


class StepFailure(Exception):
    """A failure of the user's step: its message is the whole diagnostic."""


class CellSources:
    """Raw source lines of the cells, and where the lines of their compiled code come from."""

    def __init__(self) -> None:
        self.lines: dict[int, list[str]] = {}
        self.offsets: dict[int, int] = {}
        self.current = 0
        # IPython drops a cell's leading blank lines before compiling it
        self.drops_leading_blank_lines = False

    def add(self, number: int, source: str) -> None:
        lines = source.splitlines()
        first = next((i for i, text in enumerate(lines) if text.strip()), 0)
        self.lines[number] = lines
        self.offsets[number] = first if self.drops_leading_blank_lines else 0
        self.current = number

    def line(self, number: int, lineno: int | None) -> str:
        lines = self.lines.get(number, [])
        if lineno is None or not 0 < lineno <= len(lines):
            return ""
        return lines[lineno - 1].strip()

    def locate(self, filename: str, lineno: int | None) -> tuple[int, int | None] | None:
        """Map a code file name and line to (cell number, line in the cell); None: not a cell."""
        match = CELL_FILE.match(filename)
        if match:
            number = int(match.group(1))
            return number, None if lineno is None else lineno + self.offsets.get(number, 0)
        if filename in _TIMED_FILES and lineno is not None:
            # the body of a %%time cell, compiled without the magic's line
            number = self.current
            lines = self.lines.get(number, [])
            first = next((i for i, text in enumerate(lines) if text.strip()), 0)
            if first < len(lines) and lines[first].lstrip().startswith("%%"):
                return number, lineno + first + 1
        return None


def _internal_prefixes() -> tuple[str, ...]:
    # the runtime's own modules: the folder this file is in (inside the carried archive, or
    # nbflow/incluster/runtime when imported from nbflow)
    here = os.path.dirname(_internal_prefixes.__code__.co_filename)
    prefixes = ["<decorator-gen-", here + os.sep]
    for module in ("IPython", "traitlets"):
        loaded = sys.modules.get(module)
        location = getattr(loaded, "__file__", None)
        if location:
            prefixes.append(os.path.dirname(location) + os.sep)
    return tuple(prefixes)


def _user_stack(
    stack: traceback.StackSummary, sources: CellSources
) -> tuple[list[traceback.FrameSummary], list[tuple[int, int | None, str]]]:
    """Frames from the first cell frame on, without runtime/IPython frames; and the cell frames."""
    internal = _internal_prefixes()
    frames: list[traceback.FrameSummary] = []
    cells: list[tuple[int, int | None, str]] = []
    for frame in stack:
        where = sources.locate(frame.filename, frame.lineno)
        if where is not None:
            number, lineno = where
            text = sources.line(number, lineno)
            cells.append((number, lineno, text))
            frames.append(
                traceback.FrameSummary(
                    f"<cell {number}>", lineno, frame.name, lookup_line=False, line=text
                )
            )
        elif not frame.filename.startswith(internal):
            frames.append(frame)
    if not cells:  # a chained exception from library code: where it was raised
        return frames[-1:], cells
    first_cell = next(i for i, f in enumerate(frames) if CELL_FILE.match(f.filename))
    frames = frames[first_cell:]
    # library code below the user's last frame: only the line that raised
    last_cell = max((i for i, f in enumerate(frames) if CELL_FILE.match(f.filename)), default=-1)
    if len(frames) - last_cell > 2:
        frames = [*frames[: last_cell + 1], frames[-1]]
    return frames, cells


def _trim(te: traceback.TracebackException, sources: CellSources, seen: set[int]) -> None:
    if id(te) in seen:
        return
    seen.add(id(te))
    frames, _ = _user_stack(te.stack, sources)
    te.stack = traceback.StackSummary.from_list(frames)
    for chained in (te.__cause__, te.__context__):
        if chained is not None:
            _trim(chained, sources, seen)


def describe_failure(
    exc: BaseException, *, step: str, notebook: str, cell: int, sources: CellSources
) -> str:
    """The message of a cell that raised ``exc``: where, what, and the user's traceback."""
    te = traceback.TracebackException.from_exception(exc)
    _, cells = _user_stack(te.stack, sources)
    ours = [c for c in cells if c[0] == cell]
    lineno: int | None = None
    text = ""
    if ours:
        _, lineno, text = ours[-1]
    elif isinstance(exc, SyntaxError):
        where_syntax = sources.locate(exc.filename or "", exc.lineno)
        if where_syntax is not None and where_syntax[1] is not None:
            lineno = where_syntax[1]
            text = sources.line(cell, lineno)
            te.lineno = te.end_lineno = str(lineno)
    what = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    if isinstance(exc, SyntaxError):
        what = f"{type(exc).__name__}: {exc.msg}"
    where = f"cell {cell} of {notebook}" + (f", line {lineno}" if lineno else "")
    lines = [f"step '{step}' failed in {where}: {what}"]
    if text:
        lines.append(f"    {text}")
    if cells and cells[-1][0] != cell:
        number, deep_line, deep_text = cells[-1]
        lines.append(f"raised in cell {number}, line {deep_line}: {deep_text}")
    _trim(te, sources, set())
    lines.append("")
    lines.append("".join(te.format()).rstrip())
    return "\n".join(lines)


def disk_hint(exc: BaseException) -> str | None:
    """What to do when a write failed for want of room, else None."""
    if not isinstance(exc, OSError):
        return None
    if exc.errno == errno.ENOSPC:
        return "the disk is full: free some space (or give the step a larger volume)"
    if exc.errno == errno.EFBIG:
        return "the file is larger than allowed here (`ulimit -f`, or the file system's limit)"
    if exc.errno == getattr(errno, "EDQUOT", None):
        return "the disk quota is used up: free some space"
    return None


# What cannot cross a step boundary, by type: (module root or type names, what it is, fix)
_UNSAVABLE = (
    (("_io", "io"), "an open file or stream", "open it again in the step that reads it"),
    (
        ("generator", "coroutine", "async_generator"),
        "a generator",
        "make a list of what it yields, or create it in the step that uses it",
    ),
    (
        ("_thread", "threading", "multiprocessing", "concurrent"),
        "a lock, thread or process pool",
        "create it in the step that uses it",
    ),
    (
        (
            "socket",
            "ssl",
            "sqlite3",
            "psycopg2",
            "pymysql",
            "sqlalchemy",
            "requests",
            "urllib3",
            "http",
        ),
        "a connection or session",
        "connect again in the step that uses it",
    ),
)


def save_hint(value: object, exc: BaseException, group: list[str]) -> str:
    """The hint under a failed save: what the value (or what it holds) is, and what to do."""
    disk = disk_hint(exc)  # a full disk, not the value, is what stopped it
    if disk is not None:
        return f"hint: {disk}"
    cls = type(value)
    names = {cls.__name__, cls.__module__.partition(".")[0]}
    text = f"{type(exc).__name__}: {exc}"
    for markers, what, fix in _UNSAVABLE:
        if names & set(markers) or any(m in text for m in markers if len(m) > 3):
            return f"hint: {short_type_name(value)} is (or holds) {what}, which cannot cross steps: {fix}"
    shared = (
        f" (saved together with {', '.join(group)}, which share objects with it)" if group else ""
    )
    return (
        f"hint: no serializer of nbflow can store {short_type_name(value)}{shared}: "
        "compute it in the step that uses it, or keep in the step's outputs only what can be "
        "pickled (e.g. the model's parameters, not the object holding a live resource)"
    )
