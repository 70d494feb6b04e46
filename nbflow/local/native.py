"""`nbflow run --engine nbflow` (the default): the compiled local pipeline under nbflow's own
engine (`nbflow.local.engine`), its task outcomes turned into the run's step results.

Files, under the project's `.nbflow/`:

    artifacts/<pipeline>-<run id>/<task>/<output>   every task's outputs
    engine-cache/<key>.json                         cache entries (outputs by key)
    engine-cache/ir/<key>.yaml                      compiled pipelines by source, the 32 used
                                                    last (`ir_store`)
    runs/<run id>/tmp/                              the steps' TMPDIR, removed after the run
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.check.project import Project
from nbflow.generate.kfp_source import generate, task_name
from nbflow.local import warm
from nbflow.local.cache import Cache
from nbflow.local.engine import Engine, TaskOutcome, all_cached
from nbflow.local.follow import LogFollower
from nbflow.local.ir import Pipeline, load_ir
from nbflow.local.ir_store import IRStore

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
    compile_ir: Callable[[str], str],
    values: dict[str, Any],
    *,
    fresh: bool,
    state: Path,
    run_dir: Path,
    steps: dict[str, StepResult],
    cache: bool,
    jobs: int | None,
    progress: Callable[[StepResult], None] | None,
    copy_report: Callable[[Path, str], str | None],
    echo: Callable[[str, str], None] | None = None,
) -> tuple[bool, dict[str, float]]:
    """Run the project's local pipeline (`compile_ir`: generated source -> compiled IR); fill in
    `steps`; return (ok, metrics). `fresh` (`--no-cache`): the steps are compiled uncached."""
    # absolute: a step changes to the notebook's folder, and TMPDIR and artifact uris must hold
    state, run_dir = state.resolve(), run_dir.resolve()
    by_task = {task_name(name): r for name, r in steps.items()}

    follower = LogFollower(echo) if echo is not None else None

    def notify(out: TaskOutcome) -> None:
        r = by_task.get(out.name)
        if r is None:
            return  # a task of nbflow's own, not a step
        r.status, r.attempts, r.error = out.status, out.attempts, out.error
        r.seconds = out.seconds
        r.log = str(out.log) if out.log else None
        # each step's output as it prints it: after its start is reported, before its end
        if follower is not None and out.log and out.status in ("succeeded", "failed", "stopped"):
            follower.done(out.log)
        if progress is not None:
            progress(r)
        if follower is not None and out.log and out.status == "running":
            follower.follow(r.name, out.log)

    def start_server() -> ForkServerContext:
        sources = (project.source(c) for c in project.setup)
        return warm.context(warm.preload_list(sources, project.notebook_dir))

    # a run with steps to execute starts the server first: it imports the libraries while the
    # pipeline is generated and compiled
    ctx = start_server() if fresh else None
    source = generate(project, "local", cache=not fresh)
    store, entries = IRStore(state / "engine-cache" / "ir"), Cache(state / "engine-cache")
    usable = entries if cache and not fresh else None  # a fresh run's pipeline is never all cached
    pipeline = _stored_pipeline(store, source, usable, values, run_dir)
    if pipeline is None:
        ctx = ctx or start_server()
        ir = run_dir / "pipeline.yaml"
        text = compile_ir(source)
        ir.write_text(text, encoding="utf-8")
        pipeline = load_ir(ir)
        if not fresh:
            store.put(source, text)
    engine = Engine(
        start_server=start_server,
        run_root=state / "artifacts" / f"{pipeline.name}-{run_dir.name}",
        logs=run_dir / "logs",
        tmp=run_dir / "tmp",
        cache=entries,
        jobs=jobs or default_jobs(),
        use_cache=cache,
        notify=notify,
        log_names={t: r.name for t, r in by_task.items()},
        ctx=ctx,
    )
    try:
        outcomes = engine.execute(pipeline, {**pipeline.defaults, **values})
    finally:
        if follower is not None:
            follower.close()
        shutil.rmtree(run_dir / "tmp", ignore_errors=True)
    if follower is not None and follower.error is not None:
        raise follower.error
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


def _stored_pipeline(
    store: IRStore, source: str, cache: Cache | None, values: dict[str, Any], run_dir: Path
) -> Pipeline | None:
    """The pipeline compiled from `source` by an earlier run, copied into the run's folder, if
    every one of its tasks is served from `cache`: then nothing of it runs
    (`nbflow.local.ir_store`)."""
    text = store.get(source) if cache is not None else None
    if text is None or cache is None:
        return None
    ir = run_dir / "pipeline.yaml"
    try:
        ir.write_text(text, encoding="utf-8")
        pipeline = load_ir(ir)
    except Exception:  # cut short, or not a pipeline: this run compiles its own
        return None
    if all_cached(pipeline, {**pipeline.defaults, **values}, cache):
        return pipeline
    return None
