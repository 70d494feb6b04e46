"""A search's results: the trials, the best one, and the files they are written to.

Results go to `<project>/.nbflow/tune/<timestamp>/`: `trials.json` and `trials.csv`, rewritten
atomically after every trial (an interrupted search leaves consistent files), and `objective.png`
and `report.html` (nbflow/local/tune/report.py) at the end.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FINISHED = ("complete", "failed", "interrupted")


@dataclass
class TrialResult:
    number: int  # 1-based
    parameters: dict[str, Any]
    state: str = "running"  # running, complete, failed, interrupted
    value: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    steps: dict[str, str] = field(default_factory=dict)  # step -> succeeded, cached, failed, ...
    run_dir: str | None = None
    error: str | None = None

    @property
    def ran(self) -> int:
        return sum(s in ("succeeded", "failed") for s in self.steps.values())

    @property
    def cached(self) -> int:
        return sum(s == "cached" for s in self.steps.values())


@dataclass
class TuneResult:
    pipeline: str
    objective: str
    direction: str
    algorithm: str
    sampler: str
    dir: Path
    state: str  # running, completed, goal, failed, interrupted
    reason: str
    trials: list[TrialResult]
    max_trials: int
    parallel: int
    goal: float | None
    max_failed: int | None
    notes: list[str]
    seconds: float

    @property
    def ok(self) -> bool:
        return self.state in ("completed", "goal")

    @property
    def best(self) -> TrialResult | None:
        return best_trial(self.trials, self.direction)

    def step_runs(self) -> dict[str, dict[str, int]]:
        """Per step: in how many trials it ran, hit the cache, or did not run."""
        out: dict[str, dict[str, int]] = {}
        for t in self.trials:
            for name, status in t.steps.items():
                row = out.setdefault(name, {"ran": 0, "cached": 0, "not_run": 0})
                key = (
                    "ran"
                    if status in ("succeeded", "failed")
                    else "cached"
                    if status == "cached"
                    else "not_run"
                )
                row[key] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        best = self.best
        return {
            "pipeline": self.pipeline,
            "objective": self.objective,
            "direction": self.direction,
            "algorithm": self.algorithm,
            "sampler": self.sampler,
            "state": self.state,
            "reason": self.reason,
            "max_trials": self.max_trials,
            "parallel": self.parallel,
            "goal": self.goal,
            "max_failed_trials": self.max_failed,
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
            "dir": str(self.dir),
            "best": None
            if best is None
            else {"number": best.number, "value": best.value, "parameters": best.parameters},
            "step_runs": self.step_runs(),
            "trials": [asdict(t) for t in self.trials],
        }


def best_trial(trials: Sequence[TrialResult], direction: str) -> TrialResult | None:
    done = [t for t in trials if t.state == "complete" and t.value is not None]
    if not done:
        return None
    pick = max if direction == "maximize" else min
    return pick(done, key=lambda t: t.value)  # type: ignore[arg-type,return-value]


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_results(result: TuneResult) -> None:
    """trials.json and trials.csv, each replaced atomically."""
    data = result.to_json()
    _atomic_write(result.dir / "trials.json", json.dumps(data, indent=2, default=str) + "\n")
    names = list(dict.fromkeys(k for t in result.trials for k in t.parameters))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "number",
            "state",
            result.objective,
            *names,
            "seconds",
            "steps_ran",
            "steps_cached",
            "run_dir",
            "error",
        ]
    )
    for t in result.trials:
        error = (t.error or "").strip().splitlines()
        w.writerow(
            [
                t.number,
                t.state,
                "" if t.value is None else repr(t.value),
                *(t.parameters.get(n, "") for n in names),
                f"{t.seconds:.3f}",
                t.ran,
                t.cached,
                t.run_dir or "",
                error[0] if error else "",
            ]
        )
    _atomic_write(result.dir / "trials.csv", buf.getvalue())


def draw_history(ax: Any, result: TuneResult) -> None:
    """Each trial's objective, the best so far and the failed trials, on matplotlib axes
    (objective.png and the tuning report draw the same picture)."""
    from matplotlib.ticker import MaxNLocator

    done = [t for t in result.trials if t.state == "complete" and t.value is not None]
    xs = [t.number for t in done]
    ys = [float(t.value or 0.0) for t in done]
    ax.scatter(xs, ys, label=result.objective, zorder=3)
    pick = max if result.direction == "maximize" else min
    best: list[float] = []
    for y in ys:
        best.append(y if not best else pick(best[-1], y))
    if xs:
        ax.step(xs, best, where="post", color="C1", label="best so far")
    failed = [t.number for t in result.trials if t.state != "complete"]
    if failed and ys:
        ax.scatter(
            failed, [min(ys)] * len(failed), marker="x", color="C3", label="failed / interrupted"
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trials are numbered 1, 2, 3...
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{result.objective} ({result.direction})")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")


def plot(result: TuneResult) -> Path | None:
    """objective.png: each trial's objective and the best so far. None when matplotlib is absent."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    draw_history(fig.add_subplot(), result)
    fig.axes[0].set_title(f"{result.pipeline}: {result.algorithm}, {len(result.trials)} trials")
    path = result.dir / "objective.png"
    fig.savefig(path)
    return path
