"""Progress of a local run, one line per step event: readable in a terminal and in CI logs.

A running step shows that it is alive: every `heartbeat` seconds a line with its elapsed time.
`quiet` prints only failures; `verbose` also streams each step's output live, each line prefixed
by the step's name.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from nbflow.escape import terminal, terminal_lines

if TYPE_CHECKING:
    from nbflow.local.run_result import RunResult, StepResult

_MARK = {
    "running": "▶",
    "succeeded": "✓",
    "cached": "↺",
    "failed": "✗",
    "retrying": "↻",
    "not-run": "·",
    "stopped": "■",
}


def elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class StepProgress:
    def __init__(
        self,
        pipeline: str,
        steps: list[str],
        stream: TextIO,
        *,
        quiet: bool = False,
        verbose: bool = False,
        heartbeat: float = 30.0,
    ) -> None:
        self.stream = stream
        self.quiet = quiet
        self.verbose = verbose and not quiet
        self.heartbeat = heartbeat
        self.width = max((len(s) for s in steps), default=4)
        self.ascii = (getattr(stream, "encoding", None) or "").lower() not in ("utf-8", "utf8")
        self._lock = threading.Lock()
        self._running: tuple[str, float] | None = None  # (step, its start on the monotonic clock)
        self._wake = threading.Event()
        self._ticker: threading.Thread | None = None
        if not quiet:
            self._print(f"nbflow run {pipeline}: {len(steps)} step{'s' if len(steps) != 1 else ''}")

    def _print(self, text: str) -> None:
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def _tick(self) -> None:
        while not self._wake.wait(self.heartbeat):
            current = self._running
            if current is not None:
                name, since = current
                mark = "*" if self.ascii else "…"  # no status mark: lab reads those
                self._print(
                    f"  {mark} {terminal(name).ljust(self.width)}  running, "
                    f"{elapsed(time.monotonic() - since)}"
                )

    def echo(self, step: str, line: str) -> None:
        """One line of a step's output, live (verbose only), its control characters escaped."""
        if self.verbose:
            self._print(f"  {terminal(step).ljust(self.width)} | {terminal(line)}")

    def _mark(self, status: str) -> str:
        if self.ascii:
            return {
                "running": ">",
                "succeeded": "+",
                "cached": "=",
                "failed": "x",
                "retrying": "~",
                "stopped": "#",
            }.get(status, ".")
        return _MARK.get(status, "·")

    def started(self, run_dir: Path) -> None:
        if self.quiet:
            return
        rel = os.path.relpath(run_dir)
        self._print(f"  run folder: {terminal(rel)}")

    def update(self, step: StepResult) -> None:
        if step.status == "running":
            self._running = (step.name, time.monotonic())
            if self._ticker is None and self.heartbeat > 0 and not self.quiet:
                self._ticker = threading.Thread(target=self._tick, daemon=True)
                self._ticker.start()
        elif self._running is not None and self._running[0] == step.name:
            self._running = None
        if self.quiet and step.status != "failed":
            return
        name = step.name.ljust(self.width)
        if step.status == "running":
            detail = "running" + (f" (attempt {step.attempts})" if step.attempts > 1 else "")
        elif step.status == "succeeded":
            detail = f"{step.seconds:.2f} s"
        elif step.status == "cached":
            detail = "cached"
        elif step.status == "retrying":
            detail = "failed, retrying"
        elif step.status == "failed":
            detail = f"failed after {step.seconds:.2f} s"
        elif step.status == "stopped":
            detail = f"stopped after {step.seconds:.2f} s"
        else:
            detail = step.status
        self._print(f"  {self._mark(step.status)} {name}  {detail}")
        if step.status == "failed" and step.error:
            # the error quotes the user's code and what it printed: no control character of it
            for line in terminal_lines(step.error).split("\n"):
                self._print(f"      {line}")

    def stop(self) -> None:
        self._running = None
        self._wake.set()
        if self._ticker is not None:
            self._ticker.join()

    def finish(self, result: RunResult) -> None:
        self.stop()
        counts: dict[str, int] = {}
        for s in result.steps:
            counts[s.status] = counts.get(s.status, 0) + 1
            if s.status == "not-run" and not self.quiet:
                self.update(s)
        if self.quiet and result.ok:
            return
        parts = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        state = "succeeded" if result.ok else "failed"
        rel = terminal(os.path.relpath(result.run_dir))
        self._print(f"run {state} in {result.seconds:.1f} s ({parts}); report: {rel}/index.html")
