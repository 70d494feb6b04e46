"""Running one notebook cell: its package-install lines skipped, its output recorded, its
failure described.
"""

from __future__ import annotations

import re
import sys
import time
from typing import Any

from .capture import CellLog, Recorder, teed
from .events import emit_event
from .failures import CellSources, StepFailure, describe_failure
from .sessions import Session

# Package installs (`!pip`, `%pip`, `!conda`, `!python -m pip`, each with `install`): in a notebook
# they install into the kernel's environment; a step's packages come from its image and the
# manifest's `requirements:`, and a local run must not install into the user's Python.
_INSTALL_LINE = re.compile(
    r"^(?P<indent>[ \t]*)[!%]+[ \t]*(?:sudo[ \t]+)?"
    r"(?:pip3?|conda|mamba|micromamba|uv[ \t]+pip|python3?(?:\.\d+)?[ \t]+-m[ \t]+pip)"
    r"[ \t]+install\b"
)


def skip_installs(source: str) -> tuple[str, list[tuple[int, str]]]:
    """The cell without its package-install lines (each left as `pass`, so line numbers hold),
    and the (line, text) of those skipped."""
    lines = source.split("\n")
    skipped: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        match = _INSTALL_LINE.match(line)
        if match and not line.rstrip().endswith("\\"):
            skipped.append((i + 1, line.strip()))
            lines[i] = match.group("indent") + "pass"
    return ("\n".join(lines), skipped) if skipped else (source, [])


def run_cell(
    cell: dict[str, Any],
    session: Session,
    recorder: Recorder,
    sources: CellSources,
    *,
    step: str,
    notebook: str,
) -> None:
    """Run one notebook cell (number 0: imports replayed from other steps' cells)."""
    number, source = int(cell["number"]), str(cell["source"])
    log = CellLog(number, source, bool(cell.get("setup", False)))
    recorder.cells.append(log)
    recorder.current = log
    sources.add(number, source)
    recorder.out.flush()
    sys.stderr.write(f"[nbflow] step '{step}': cell {number}\n")
    emit_event("cell", step=step, cell=number)
    source, skipped = skip_installs(source)
    for lineno, text in skipped:
        sys.stderr.write(
            f"[nbflow] step '{step}': cell {number}, line {lineno}: skipped `{text}`: a step's "
            "packages come from its image and the manifest's `requirements:`\n"
        )
    started = time.perf_counter()
    try:
        with teed(recorder):
            error = session.run_cell(number, source)
    finally:
        log.seconds = time.perf_counter() - started
        recorder.current = None
    if error is not None:
        message = describe_failure(
            error, step=step, notebook=notebook, cell=number, sources=sources
        )
        log.error = message
        raise StepFailure(message)
