"""The search loop: ask Optuna for parameters, run each trial as a local pipeline run, tell it
the objective.

Trials follow Katib's counting: every trial counts towards `maxTrials`; the search stops once the
objective reaches `goal` (>= when maximizing, <= when minimizing) or when more than
`maxFailedTrials` trials have failed (running trials finish first). A trial fails when its run
fails or when its metrics lack the objective.

With `--parallel 1` every trial runs in this process. Parallel trials run in K worker processes
(`python -m nbflow.local.tune --worker ...`, each running trials one after another, so kfp is imported
and the project validated once per worker): kfp.local keeps its configuration in module globals
and a local run redirects the process's stdout and root logger, so two runs cannot share one
interpreter. The first trial always runs alone, in this process, while the workers start: it
compiles the local pipeline and fills the cache with the steps that read no searched parameter,
so the trials after it, started together, find those steps cached instead of each running them
at the same time. Without `--parallel`, `parallelTrials` is capped at the CPUs of this machine.
Workers have their own session: Ctrl-C, SIGTERM or SIGHUP reach the search only, which stops them
and each worker the step it runs.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.errors import EnvironmentProblem, Interrupted
from nbflow.local.interrupt import interruptible
from nbflow.local.tune import report
from nbflow.local.tune.results import TrialResult, TuneResult, plot, write_results
from nbflow.local.tune.spec import SearchSpec, resolve_search
from nbflow.local.tune.workers import Worker, log_tail, signal_group

if TYPE_CHECKING:
    from nbflow.check.project import Project

_INTERRUPT_GRACE_S = 5.0

Progress = Callable[[TrialResult], None]


def judge(run: Mapping[str, Any], objective: str) -> tuple[str, float | None, str | None]:
    """A trial's state, objective value and error, from a run's JSON (`RunResult.to_json()`)."""
    if not run.get("ok"):
        errors = [s.get("error") for s in run.get("steps", []) if s.get("status") == "failed"]
        failed = [s["name"] for s in run.get("steps", []) if s.get("status") == "failed"]
        head = f"step `{failed[0]}` failed" if failed else "the run failed"
        return "failed", None, head + (f": {errors[0]}" if errors and errors[0] else "")
    metrics = run.get("metrics") or {}
    if objective not in metrics:
        have = ", ".join(sorted(metrics)) or "none"
        return (
            "failed",
            None,
            f"the objective `{objective}` is missing from the trial's metrics (metrics: {have})",
        )
    value = float(metrics[objective])
    if not math.isfinite(value):
        return "failed", None, f"the objective `{objective}` is {value}"
    return "complete", value, None


class Search:
    def __init__(
        self,
        project: Project,
        spec: SearchSpec,
        state: Path,
        folder: Path,
        progress: Progress | None,
    ) -> None:
        import optuna

        self.project = project
        self.spec = spec
        self.state = state
        self.progress = progress
        direction = (
            optuna.study.StudyDirection.MAXIMIZE
            if spec.direction == "maximize"
            else optuna.study.StudyDirection.MINIMIZE
        )
        self.study = optuna.create_study(direction=direction, sampler=spec.sampler)
        self.steps = [s.name for s in project.plan.steps]
        self.events: queue.Queue[tuple[int, dict[str, Any]]] = queue.Queue()
        self.workers: dict[int, Worker] = {}
        self.spawned = 0
        self.started = time.perf_counter()
        self.result = TuneResult(
            pipeline=project.name,
            objective=spec.objective,
            direction=spec.direction,
            algorithm=spec.algorithm,
            sampler=spec.sampler_name,
            dir=folder,
            state="running",
            reason="",
            trials=[],
            max_trials=spec.max_trials,
            parallel=spec.parallel,
            goal=spec.goal,
            max_failed=spec.max_failed,
            notes=spec.notes,
            seconds=0.0,
        )
        self.stop: str | None = None

    # -- the loop

    def loop(self) -> None:
        while True:
            if self.stop is None and self._left() > 0:
                if self.spec.parallel == 1 or not self.result.trials:
                    # the first trial runs alone (see the module docstring); workers for the
                    # trials after it start meanwhile, so that they are ready when it ends
                    self._spawn()
                    self._run_here()
                    continue
                self._spawn()
                idle = [w for w in self.workers.values() if w.trial is None]
                if idle:
                    idle[0].assign(*self._ask())
                    continue
            busy = [w for w in self.workers.values() if w.trial is not None]
            if not busy:
                break
            self._handle(*self.events.get())
        for w in self.workers.values():
            w.close()
        for w in self.workers.values():
            w.wait()
        self.workers.clear()

    def _left(self) -> int:
        return self.spec.max_trials - len(self.result.trials)

    def _spawn(self) -> None:
        if self.spec.parallel == 1:
            return
        left = self._left() - (0 if self.result.trials else 1)
        while len(self.workers) < min(
            self.spec.parallel, left + sum(w.trial is not None for w in self.workers.values())
        ):
            self.spawned += 1
            self.workers[self.spawned] = Worker(
                self.spawned,
                manifest=self.project.manifest_path,
                state=self.state,
                log_dir=self.result.dir / "logs",
                events=self.events,
            )

    def _ask(self) -> tuple[Any, TrialResult]:
        ask = self.study.ask()
        params = {d.name: d.suggest(ask) for d in self.spec.dimensions}
        types = {p.name: p.type for p in self.project.parameters}
        params = {
            k: float(v)
            if types.get(k) == "float" and isinstance(v, int) and not isinstance(v, bool)
            else v
            for k, v in params.items()
        }
        trial = TrialResult(
            len(self.result.trials) + 1, params, steps=dict.fromkeys(self.steps, "pending")
        )
        self.result.trials.append(trial)
        self._emit(trial)
        return ask, trial

    def _emit(self, trial: TrialResult) -> None:
        if self.progress is not None:
            self.progress(trial)

    def _run_here(self) -> None:
        from nbflow.local.run import RunError, run

        ask, trial = self._ask()
        started = time.perf_counter()

        def on_step(step: Any) -> None:
            trial.steps[step.name] = step.status
            self._emit(trial)

        try:
            result = run(
                self.project,
                parameters=trial.parameters,
                cache=True,
                state_dir=self.state,
                latest=False,
                progress=on_step,
            )
        except RunError as exc:
            raise EnvironmentProblem(str(exc)) from None
        self._finish(ask, trial, result.to_json(), time.perf_counter() - started)

    def _handle(self, ident: int, event: dict[str, Any]) -> None:
        worker = self.workers.get(ident)
        if worker is None:
            return
        kind = event.get("event")
        trial = worker.trial
        if kind == "step" and trial is not None:
            step = event["step"]
            trial.steps[step["name"]] = step["status"]
            self._emit(trial)
        elif kind in ("result", "error") and trial is not None:
            run = event.get("result") or {"ok": False, "steps": [], "error": event.get("error")}
            worker.trial = None
            self._finish(worker.ask, trial, run, time.perf_counter() - worker.started)
        elif kind == "exit":
            del self.workers[ident]
            tail = log_tail(worker.log)
            error = f"a trial worker exited with {event['code']}" + (f":\n{tail}" if tail else "")
            if trial is None:  # between trials: the next trial gets a new worker
                self.result.notes.append(error)
                return
            run = {"ok": False, "steps": [], "error": error}
            self._finish(worker.ask, trial, run, time.perf_counter() - worker.started)

    def _finish(self, ask: Any, trial: TrialResult, run: dict[str, Any], seconds: float) -> None:
        from optuna.trial import TrialState

        state, value, error = judge(run, self.spec.objective)
        if state == "failed" and not run.get("steps") and run.get("error"):
            error = str(run["error"])
        trial.state, trial.value, trial.error = state, value, error
        trial.metrics = dict(run.get("metrics") or {})
        trial.seconds = seconds
        trial.run_dir = run.get("run_dir")
        for step in run.get("steps", []):
            trial.steps[step["name"]] = step["status"]
        if value is not None:
            self.study.tell(ask, value)
        else:
            self.study.tell(ask, state=TrialState.FAIL)
        self._check_stop(trial)
        self._write()
        self._emit(trial)

    def _check_stop(self, trial: TrialResult) -> None:
        if self.stop is not None:
            return
        failed = sum(t.state == "failed" for t in self.result.trials)
        goal = self.spec.goal
        if self.spec.max_failed is not None and failed > self.spec.max_failed:
            self.stop = "failed"
            self.result.reason = (
                f"{failed} trials failed, more than maxFailedTrials ({self.spec.max_failed})"
            )
        elif (
            goal is not None
            and trial.value is not None
            and (trial.value >= goal if self.spec.direction == "maximize" else trial.value <= goal)
        ):
            self.stop = "goal"
            self.result.reason = f"trial {trial.number} reached the goal {self.spec.objective} {'>=' if self.spec.direction == 'maximize' else '<='} {goal:g}"

    def interrupt(self) -> None:
        """Stop every worker with its tasks; mark the unfinished trials interrupted."""
        for worker in self.workers.values():
            signal_group(worker.proc, signal.SIGINT)
            worker.close()
        deadline = time.monotonic() + _INTERRUPT_GRACE_S
        for worker in self.workers.values():
            try:
                worker.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(worker.proc, signal.SIGKILL)
                worker.wait()
        self.workers.clear()
        for t in self.result.trials:
            if t.state == "running":
                t.state = "interrupted"
        self.stop = "interrupted"
        self.result.reason = "interrupted"

    def close(self) -> TuneResult:
        r = self.result
        if self.stop is not None:
            r.state = self.stop
        elif not any(t.state == "complete" for t in r.trials):
            r.state, r.reason = "failed", "no trial succeeded"
        else:
            r.state, r.reason = "completed", f"{len(r.trials)} trials"
        self._write()
        if plot(r) is None:
            r.notes.append("matplotlib is not installed: no objective.png")
            self._write()
        report.write(
            r,
            dimensions=self.spec.dimensions,
            study=self.study,
            project_path=_shown(self.project.root),
            plots=r.state != "interrupted",  # Ctrl-C: out at once, the tables still written
        )
        return r

    def _write(self) -> None:
        self.result.seconds = time.perf_counter() - self.started
        write_results(self.result)


def _shown(path: Path) -> str:
    """A path as the rerun command gives it: relative to here when it is below here."""
    rel = os.path.relpath(path)
    return str(path) if rel.startswith("..") else rel


def tune(
    project: Project,
    *,
    trials: int | None = None,
    parallel: int | None = None,
    state_dir: Path | None = None,
    progress: Progress | None = None,
) -> TuneResult:
    """Run the project's `tuning` search here with Optuna; never exits the process.

    `trials` overrides `tuning.maxTrials`, `parallel` `tuning.parallelTrials`. `progress` is
    called with a trial whenever it starts, one of its steps changes, and when it finishes.
    A KeyboardInterrupt (Ctrl-C, SIGTERM, SIGHUP, or raised by `progress`) stops the workers
    and returns a result whose state is `interrupted`, its files written. Raises UsageError or
    EnvironmentProblem when the search cannot start.
    """
    import optuna

    from nbflow.local.run import missing_requirements

    spec = resolve_search(project, trials=trials, parallel=parallel)
    missing = missing_requirements(project)
    if missing:
        raise EnvironmentProblem(
            "requirements not installed in this environment: "
            + ", ".join(missing)
            + "\n  install them; nbflow does not install packages into your interpreter"
        )
    state = state_dir or project.root / ".nbflow"
    state.mkdir(parents=True, exist_ok=True)
    gitignore = state / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("# created by nbflow: local runs, caches and builds\n*\n")
    folder = state / "tune" / datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
    folder.mkdir(parents=True)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per trial from Optuna itself
    try:
        search = Search(project, spec, state, folder, progress)
        search._write()
        # SIGTERM and SIGHUP stop the search as Ctrl-C does: the workers have their own
        # session, so nothing else would stop them
        with interruptible():
            try:
                search.loop()
            except KeyboardInterrupt as exc:
                search.interrupt()
                if isinstance(exc, Interrupted):
                    search.result.reason = f"interrupted by {exc.signal}"
            except BaseException:
                search.interrupt()
                search._write()
                raise
        result = search.close()
    finally:
        optuna.logging.set_verbosity(verbosity)
    latest = state / "tune" / "latest"
    with contextlib.suppress(OSError):
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(folder.name)
    return result
