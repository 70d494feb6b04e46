"""Progress of a local run, one line per step event: readable in a terminal and in CI logs."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, TextIO

from nbflow.escape import terminal_lines

if TYPE_CHECKING:
    from nbflow.local.run import RunResult, StepResult

_MARK = {
    "running": "▶",
    "succeeded": "✓",
    "cached": "↺",
    "failed": "✗",
    "retrying": "↻",
    "not-run": "·",
    "stopped": "■",
}


class StepProgress:
    def __init__(self, pipeline: str, steps: list[str], stream: TextIO) -> None:
        self.stream = stream
        self.width = max((len(s) for s in steps), default=4)
        self.ascii = (getattr(stream, "encoding", None) or "").lower() not in ("utf-8", "utf8")
        self._print(f"nbflow run {pipeline}: {len(steps)} step{'s' if len(steps) != 1 else ''}")

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

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

    def update(self, step: StepResult) -> None:
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

    def finish(self, result: RunResult) -> None:
        counts: dict[str, int] = {}
        for s in result.steps:
            counts[s.status] = counts.get(s.status, 0) + 1
            if s.status == "not-run":
                self.update(s)
        parts = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        state = "succeeded" if result.ok else "failed"
        rel = os.path.relpath(result.run_dir)
        self._print(f"run {state} in {result.seconds:.1f} s ({parts}); logs and reports: {rel}")
