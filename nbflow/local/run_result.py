"""What a local run gives back: each step's outcome and the run's (the run folder's run.json).

Apart from `nbflow.local.run` so that the engines and the report, which `run` calls, can name
them without importing `run` back."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class StepResult:
    name: str
    status: str = (
        "pending"  # pending, running, retrying, succeeded, cached, failed, not-run, stopped
    )
    seconds: float = 0.0
    attempts: int = 0
    log: str | None = None
    report: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None


@dataclass
class RunResult:
    run_dir: Path
    pipeline: str
    ok: bool
    parameters: dict[str, Any]
    steps: list[StepResult]
    metrics: dict[str, float]
    seconds: float
    interrupted: str | None = None  # the signal that stopped the run (SIGINT, SIGTERM, SIGHUP)
    started: str = ""  # ISO 8601, UTC
    status: str = "running"  # running, succeeded, failed

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["run_dir"] = str(self.run_dir)
        return d
