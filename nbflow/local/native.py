"""`nbflow run --engine nbflow` (the default): the compiled local pipeline under nbflow's own
engine (`nbflow.local.engine`), its task outcomes turned into the run's step results.

Files, under the project's `.nbflow/`:

    artifacts/<pipeline>-<run id>/<task>/<output>   every task's outputs
    engine-cache/<key>.json                         cache entries (outputs by key)
    runs/<run id>/tmp/                              the steps' TMPDIR, removed after the run
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.check.project import Project
from nbflow.generate.kfp_source import task_name
from nbflow.local import warm
from nbflow.local.cache import Cache
from nbflow.local.engine import Engine, TaskOutcome
from nbflow.local.ir import load_ir

if TYPE_CHECKING:
    from nbflow.local.run_result import StepResult


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def run_native(
    project: Project,
    ir: Path,
    values: dict[str, Any],
    *,
    state: Path,
    run_dir: Path,
    steps: dict[str, StepResult],
    cache: bool,
    jobs: int | None,
    progress: Callable[[StepResult], None] | None,
    copy_report: Callable[[Path, str], str | None],
    recompile: Callable[[], Path],
    echo: Callable[[str, str], None] | None = None,
) -> tuple[bool, dict[str, float]]:
    """Run the pipeline; fill in `steps`; return (ok, metrics)."""
    # absolute: a step changes to the notebook's folder, and TMPDIR and artifact uris must hold
    state, run_dir = state.resolve(), run_dir.resolve()
    try:
        pipeline = load_ir(ir)
    except Exception:  # cut short (a run killed while writing it): compiled again
        ir.unlink(missing_ok=True)
        pipeline = load_ir(recompile())
    by_task = {task_name(name): r for name, r in steps.items()}

    def notify(out: TaskOutcome) -> None:
        r = by_task.get(out.name)
        if r is None:
            return  # a task of nbflow's own, not a step
        r.status, r.attempts, r.error = out.status, out.attempts, out.error
        r.seconds = out.seconds
        r.log = str(out.log) if out.log else None
        if echo is not None and out.log and out.status in ("succeeded", "failed"):
            # each step's output when it ends (steps run side by side: their lines would mix)
            text = out.log.read_text(encoding="utf-8", errors="replace")
            for line in text.splitlines():
                echo(r.name, line)
        if progress is not None:
            progress(r)

    engine = Engine(
        start_server=lambda: warm.context(
            warm.preload_list((project.source(c) for c in project.setup), project.notebook_dir)
        ),
        run_root=state / "artifacts" / f"{pipeline.name}-{run_dir.name}",
        logs=run_dir / "logs",
        tmp=run_dir / "tmp",
        cache=Cache(state / "engine-cache"),
        jobs=jobs or default_jobs(),
        use_cache=cache,
        notify=notify,
        log_names={t: r.name for t, r in by_task.items()},
    )
    try:
        outcomes = engine.execute(pipeline, {**pipeline.defaults, **values})
    finally:
        shutil.rmtree(run_dir / "tmp", ignore_errors=True)
    metrics: dict[str, float] = {}
    for out in outcomes.values():
        r = by_task.get(out.name)
        if r is None:
            if out.status == "failed":  # an internal task: its steps say why they did not run
                for d in by_task.values():
                    if d.status == "not-run" and d.error is None:
                        d.error = f"not run: task `{out.name}` failed: {out.error}"
            continue
        r.status, r.attempts, r.error, r.seconds = out.status, out.attempts, out.error, out.seconds
        r.log = str(out.log) if out.log else None
        report = out.outputs.get("report")
        if report is not None and Path(report.uri).is_file():
            r.report = copy_report(Path(report.uri), r.name)
        m = out.outputs.get("metrics")
        if m is not None and out.status in ("succeeded", "cached"):
            r.metrics = {
                k: float(v)
                for k, v in sorted(m.metadata.items())
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
            metrics.update(r.metrics)
    ok = all(o.status in ("succeeded", "cached") for o in outcomes.values())
    return ok, metrics
