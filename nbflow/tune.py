"""`nbflow tune`: the manifest's `tuning` search on this machine, with Optuna.

The same `tuning` block generates the Katib Experiment for the cluster. Locally, each Katib
algorithm name maps to an Optuna sampler (`SAMPLERS`), and each trial is a run of the compiled
pipeline through `nbflow.localrun`, with kfp.local's cache on: a step that reads no searched
parameter has the same inputs in every trial, so it runs in the first trial and hits the cache
after that.

Katib algorithm        Optuna sampler                          settings mapped (Katib -> Optuna)
random                 RandomSampler                           random_state -> seed
grid                   GridSampler (every combination, in a    -
                       seeded random order)
tpe                    TPESampler(multivariate=False), i.e.    random_state -> seed, n_startup_trials,
                       hyperopt's independent TPE, as Katib's  n_ei_candidates, prior_weight,
                                                               gamma g -> n -> min(ceil(g*sqrt(n)), 25)
                                                               (hyperopt's rule)
multivariate-tpe       TPESampler(multivariate=True)           random_state -> seed, n_startup_trials,
                                                               n_ei_candidates
bayesianoptimization   GPSampler (needs torch and scipy)       random_state -> seed,
                                                               n_initial_points -> n_startup_trials;
                                                               base_estimator (only GP), acq_func and
                                                               acq_optimizer have no equivalent: noted,
                                                               ignored
cmaes                  CmaEsSampler (needs the cmaes package)  random_state -> seed, sigma -> sigma0;
                                                               restart_strategy: ignored (Optuna >= 4.4
                                                               dropped it)
sobol                  QMCSampler(qmc_type="sobol")            -
hyperband              not available locally (it needs a       -
                       resource parameter stepped per trial)

Search spaces: an int parameter is `suggest_int(min, max, step, log)`, a float one
`suggest_float(min, max, step, log)`, `values` is `suggest_categorical`. Optuna has no normal
prior: `distribution: normal|logNormal` is sampled uniformly (log-uniformly), with a note.

Trials follow Katib's counting: every trial counts towards `maxTrials`; the search stops once the
objective reaches `goal` (>= when maximizing, <= when minimizing) or when more than
`maxFailedTrials` trials have failed (running trials finish first). A trial fails when its run
fails or when its metrics lack the objective.

With `--parallel 1` every trial runs in this process. Parallel trials run in K worker processes
(`python -m nbflow.tune --worker ...`, each running trials one after another, so kfp is imported
and the project validated once per worker): kfp.local keeps its configuration in module globals
and a local run redirects the process's stdout and root logger, so two runs cannot share one
interpreter. The first trial always runs alone, in this process, while the workers start: it
compiles the local pipeline and fills the cache with the steps that read no searched parameter,
so the trials after it, started together, find those steps cached instead of each running them
at the same time. Without `--parallel`, `parallelTrials` is capped at the CPUs of this machine.
Workers have their own session: Ctrl-C reaches the search, which stops them and their tasks.

Results go to `<project>/.nbflow/tune/<timestamp>/`: `trials.json` and `trials.csv`, rewritten
atomically after every trial (an interrupted search leaves consistent files), and `objective.png`
at the end.
"""

from __future__ import annotations

import contextlib
import csv
import decimal
import io
import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from nbflow.errors import EnvironmentProblem, UsageError

if TYPE_CHECKING:
    import argparse

    from nbflow.manifest import Tuning
    from nbflow.project import Project

FINISHED = ("complete", "failed", "interrupted")
_INTERRUPT_GRACE_S = 5.0


# -- search space ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dimension:
    """One searched parameter, resolved: `values` for a categorical one, else a numeric range."""

    name: str
    kind: str  # int, float, categorical
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    log: bool = False
    values: tuple[Any, ...] = ()

    def grid(self) -> list[Any]:
        """Every value of a finite dimension (what Katib's grid enumerates)."""
        if self.kind == "categorical":
            return list(self.values)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            raise UsageError(f"grid search needs a `step` for the float parameter `{self.name}`")
        low, step = decimal.Decimal(str(self.low)), decimal.Decimal(str(self.step))
        count = int((decimal.Decimal(str(self.high)) - low) // step) + 1
        return [float(low + i * step) for i in range(count)]

    def suggest(self, trial: Any) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.values))
        if self.kind == "int":
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)


def dimensions(project: Project, notes: list[str]) -> list[Dimension]:
    tuning = _tuning(project)
    types = {p.name: p.type for p in project.parameters}
    grid = tuning.algorithm == "grid"
    out: list[Dimension] = []
    for name, space in tuning.search.items():
        if space.values is not None:
            out.append(Dimension(name, "categorical", values=tuple(space.values)))
            continue
        assert space.min is not None and space.max is not None
        kind = "int" if types.get(name) == "int" else "float"
        log = space.log or space.distribution in ("logUniform", "logNormal")
        if space.distribution in ("normal", "logNormal"):
            notes.append(
                f"`{name}`: Optuna has no {space.distribution} prior; "
                f"sampled {'log-' if log else ''}uniformly in [{space.min}, {space.max}]"
            )
        step = space.step
        if grid:
            log = False  # the grid enumerates min, min+step, ..., max: the scale plays no part
        elif log and step is not None and (kind == "float" or step != 1):
            raise UsageError(
                f"`{name}` has both `log` and `step`: Optuna cannot sample a log scale in steps; "
                "drop one of them to tune locally"
            )
        low, high = space.min, space.max
        if step is not None:
            # the last point of the range, so that Optuna need not adjust (and warn)
            d_low, d_step = decimal.Decimal(str(low)), decimal.Decimal(str(step))
            last = (decimal.Decimal(str(high)) - d_low) // d_step * d_step + d_low
            high = int(last) if kind == "int" else float(last)
        if kind == "int":
            out.append(Dimension(name, "int", int(low), int(high), int(step or 1), log))
        else:
            out.append(
                Dimension(
                    name, "float", float(low), float(high), float(step) if step else None, log
                )
            )
    return out


# -- samplers -------------------------------------------------------------------------------------


class SamplerFactory(Protocol):
    """Builds the Optuna sampler of one Katib algorithm; appends what it could not map to notes."""

    def __call__(
        self, settings: Mapping[str, Any], dims: Sequence[Dimension], notes: list[str]
    ) -> Any: ...


def _require(module: str, algorithm: str, sampler: str, install: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise EnvironmentProblem(
            f"the {algorithm} algorithm is not available locally: Optuna's {sampler} needs "
            f"`{module}`, which is not installed\n  install it (`pip install {install}`), "
            "or tune with another algorithm (e.g. `tpe`)"
        )


def _ignored(
    settings: Mapping[str, Any], keys: Sequence[str], algorithm: str, why: str, notes: list[str]
) -> None:
    for key in keys:
        if key in settings:
            notes.append(f"{algorithm} setting `{key}={settings[key]}` is ignored locally: {why}")


def _categorical_note(dims: Sequence[Dimension], algorithm: str, notes: list[str]) -> None:
    names = [d.name for d in dims if d.kind == "categorical"]
    if names:
        notes.append(
            f"{algorithm} samples {', '.join(f'`{n}`' for n in names)} at random (categorical)"
        )


def _random(settings: Mapping[str, Any], dims: Sequence[Dimension], notes: list[str]) -> Any:
    from optuna.samplers import RandomSampler

    return RandomSampler(seed=settings.get("random_state"))


def _grid(settings: Mapping[str, Any], dims: Sequence[Dimension], notes: list[str]) -> Any:
    from optuna.samplers import GridSampler

    class _Grid(GridSampler):
        # GridSampler ends Optuna's own optimize loop once every point is done, and raises
        # under ask-and-tell; this loop stops itself (trials are capped at the grid's size).
        def after_trial(self, *args: Any, **kwargs: Any) -> None:
            pass

    # a seed, so that the order of the points is the same from one search to the next
    return _Grid({d.name: d.grid() for d in dims}, seed=settings.get("random_state", 0))


def _tpe_gamma(fraction: float) -> Callable[[int], int]:
    def gamma(n: int) -> int:  # hyperopt's number of "good" trials, which Katib's tpe uses
        return min(math.ceil(fraction * math.sqrt(n)), 25)

    return gamma


def _tpe(
    settings: Mapping[str, Any],
    dims: Sequence[Dimension],
    notes: list[str],
    multivariate: bool = False,
) -> Any:
    from optuna.samplers import TPESampler

    kwargs: dict[str, Any] = {"seed": settings.get("random_state"), "multivariate": multivariate}
    for key in ("n_startup_trials", "n_ei_candidates"):
        if key in settings:
            kwargs[key] = settings[key]
    if "gamma" in settings:
        kwargs["gamma"] = _tpe_gamma(float(settings["gamma"]))
    if "prior_weight" in settings:
        import inspect

        if "prior_weight" in inspect.signature(TPESampler).parameters:
            kwargs["prior_weight"] = float(settings["prior_weight"])
        else:
            _ignored(
                settings,
                ("prior_weight",),
                "tpe",
                "this Optuna's TPESampler has no prior weight",
                notes,
            )
    with warnings.catch_warnings():
        # Optuna >= 4.9 deprecates prior_weight (still honoured until 6.0)
        warnings.simplefilter("ignore", FutureWarning)
        return TPESampler(**kwargs)


def _multivariate_tpe(
    settings: Mapping[str, Any], dims: Sequence[Dimension], notes: list[str]
) -> Any:
    return _tpe(settings, dims, notes, multivariate=True)


def _gp(settings: Mapping[str, Any], dims: Sequence[Dimension], notes: list[str]) -> Any:
    # GPSampler imports torch only once its startup trials are done: check before the search
    _require("torch", "bayesianoptimization", "GPSampler", "torch")
    _require("scipy", "bayesianoptimization", "GPSampler", "scipy")
    from optuna.samplers import GPSampler

    if settings.get("base_estimator", "GP") != "GP":
        notes.append(
            f"bayesianoptimization base_estimator={settings['base_estimator']} has no Optuna "
            "equivalent: a Gaussian process is used locally"
        )
    _ignored(
        settings,
        ("acq_func", "acq_optimizer"),
        "bayesianoptimization",
        "GPSampler optimises log expected improvement its own way",
        notes,
    )
    kwargs: dict[str, Any] = {"seed": settings.get("random_state")}
    if "n_initial_points" in settings:
        kwargs["n_startup_trials"] = settings["n_initial_points"]
    return GPSampler(**kwargs)


def _cmaes(settings: Mapping[str, Any], dims: Sequence[Dimension], notes: list[str]) -> Any:
    _require("cmaes", "cmaes", "CmaEsSampler", "cmaes")
    from optuna.samplers import CmaEsSampler

    _ignored(
        settings,
        ("restart_strategy",),
        "cmaes",
        "Optuna's CmaEsSampler dropped restarts in 4.4",
        notes,
    )
    _categorical_note(dims, "cmaes", notes)
    kwargs: dict[str, Any] = {
        "seed": settings.get("random_state"),
        "warn_independent_sampling": False,
    }
    if "sigma" in settings:
        kwargs["sigma0"] = float(settings["sigma"])
    return CmaEsSampler(**kwargs)


def _sobol(settings: Mapping[str, Any], dims: Sequence[Dimension], notes: list[str]) -> Any:
    from optuna.exceptions import ExperimentalWarning
    from optuna.samplers import QMCSampler

    _categorical_note(dims, "sobol", notes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return QMCSampler(
            qmc_type="sobol",
            seed=settings.get("random_state", 0),
            warn_asynchronous_seeding=False,
            warn_independent_sampling=False,
        )


def _hyperband(settings: Mapping[str, Any], dims: Sequence[Dimension], notes: list[str]) -> Any:
    raise UsageError(
        "the hyperband algorithm is not supported by `nbflow tune`: it runs brackets of trials "
        f"with a growing resource (`{settings.get('resource_name', 'resource_name')}`), which "
        "the local engine does not do; tune locally with another algorithm (e.g. `tpe`), or "
        "run hyperband on the cluster with Katib"
    )


SAMPLERS: dict[str, SamplerFactory] = {
    "random": _random,
    "grid": _grid,
    "tpe": _tpe,
    "multivariate-tpe": _multivariate_tpe,
    "bayesianoptimization": _gp,
    "cmaes": _cmaes,
    "sobol": _sobol,
    "hyperband": _hyperband,
}


@dataclass
class SearchPlan:
    """What `tune` will do: the sampler, the dimensions, how many trials, how many at once."""

    objective: str
    direction: str  # maximize, minimize
    algorithm: str
    sampler: Any
    dimensions: list[Dimension]
    max_trials: int
    parallel: int
    goal: float | None
    max_failed: int | None
    notes: list[str] = field(default_factory=list)

    @property
    def sampler_name(self) -> str:
        # the Optuna class (the grid's is a subclass of GridSampler)
        return next(
            c.__name__ for c in type(self.sampler).__mro__ if c.__module__.startswith("optuna")
        )


def _tuning(project: Project) -> Tuning:
    tuning = project.manifest.tuning
    if tuning is None:
        raise UsageError(f"{project.manifest_path} has no `tuning` block: nothing to tune")
    return tuning


def plan_search(
    project: Project, *, trials: int | None = None, parallel: int | None = None
) -> SearchPlan:
    """Resolve the manifest's `tuning` block into a search. Raises UsageError (bad input, an
    algorithm not available locally) or EnvironmentProblem (its package is not installed)."""
    tuning = _tuning(project)
    if trials is not None and trials < 1:
        raise UsageError(f"--trials must be at least 1, got {trials}")
    if parallel is not None and parallel < 1:
        raise UsageError(f"--parallel must be at least 1, got {parallel}")
    notes: list[str] = []
    factory = SAMPLERS.get(tuning.algorithm)
    if factory is None:
        raise UsageError(f"the {tuning.algorithm} algorithm is not supported by `nbflow tune`")
    dims = dimensions(project, notes)
    sampler = factory(tuning.settings, dims, notes)
    max_trials = trials if trials is not None else tuning.maxTrials
    if tuning.algorithm == "grid":
        size = math.prod(len(d.grid()) for d in dims)
        if max_trials > size:
            notes.append(f"the grid has {size} points: {size} trials, not {max_trials}")
            max_trials = size
    if parallel is None:
        parallel = tuning.parallelTrials
        cpus = (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1
        )
        if parallel > cpus and max_trials > 1:
            # more trials at once than CPUs only slows each one down; --parallel overrides
            notes.append(
                f"parallelTrials {parallel} capped at {cpus}, the CPUs here (--parallel K to override)"
            )
            parallel = cpus
    metric = project.manifest.metrics.get(tuning.objective)
    return SearchPlan(
        objective=tuning.objective,
        direction=metric.goal if metric else "maximize",
        algorithm=tuning.algorithm,
        sampler=sampler,
        dimensions=dims,
        max_trials=max_trials,
        parallel=min(parallel, max_trials),
        goal=float(tuning.goal) if tuning.goal is not None else None,
        max_failed=tuning.maxFailedTrials,
        notes=notes,
    )


# -- results --------------------------------------------------------------------------------------


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


def plot(result: TuneResult) -> Path | None:
    """objective.png: each trial's objective and the best so far. None when matplotlib is absent."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    done = [t for t in result.trials if t.state == "complete" and t.value is not None]
    xs = [t.number for t in done]
    ys = [float(t.value or 0.0) for t in done]
    ax.scatter(xs, ys, label=result.objective, zorder=3)
    best: list[float] = []
    pick = max if result.direction == "maximize" else min
    for y in ys:
        best.append(y if not best else pick(best[-1], y))
    if xs:
        ax.step(xs, best, where="post", color="C1", label="best so far")
    failed = [t.number for t in result.trials if t.state != "complete"]
    if failed and ys:
        ax.scatter(
            failed, [min(ys)] * len(failed), marker="x", color="C3", label="failed / interrupted"
        )
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{result.objective} ({result.direction})")
    ax.set_title(f"{result.pipeline}: {result.algorithm}, {len(result.trials)} trials")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    path = result.dir / "objective.png"
    fig.savefig(path)
    return path


# -- the search -----------------------------------------------------------------------------------

Progress = Callable[[TrialResult], None]


class _Worker:
    """A process that runs trials one after another (`python -m nbflow.tune --worker`), so
    that importing kfp and validating the project happen once per worker, not per trial."""

    def __init__(self, ident: int, search: _Search) -> None:
        self.ident = ident
        self.trial: TrialResult | None = None
        self.ask: Any = None
        self.started = 0.0
        self.result: dict[str, Any] | None = None
        self.log = search.result.dir / "logs" / f"worker-{ident}.log"
        self.log.parent.mkdir(exist_ok=True)
        env = dict(os.environ)
        source_root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (source_root, env.get("PYTHONPATH")) if p)
        cmd = [
            sys.executable,
            "-m",
            "nbflow.tune",
            "--worker",
            str(search.project.manifest_path),
            str(search.state),
        ]
        with self.log.open("w", encoding="utf-8") as err:
            # its own session: a Ctrl-C in the terminal reaches the search only, which then
            # stops each worker together with its kfp.local task (see `_Search.interrupt`)
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                encoding="utf-8",
                env=env,
                start_new_session=True,
            )
        self.reader = threading.Thread(target=self._read, args=(search.events,), daemon=True)
        self.reader.start()

    def _read(self, events: queue.Queue[tuple[int, dict[str, Any]]]) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(event, dict):
                    events.put((self.ident, event))
        events.put((self.ident, {"event": "exit", "code": self.proc.wait()}))

    def assign(self, ask: Any, trial: TrialResult) -> None:
        assert self.proc.stdin is not None
        self.ask, self.trial, self.result, self.started = ask, trial, None, time.perf_counter()
        # a worker that died already: its reader reports the exit, which fails this trial
        with contextlib.suppress(OSError):
            self.proc.stdin.write(json.dumps({"parameters": trial.parameters}) + "\n")
            self.proc.stdin.flush()

    def close(self) -> None:
        """Close its stdin (it ends after its current trial)."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def wait(self, timeout: float | None = None) -> None:
        self.proc.wait(timeout)
        self.reader.join(5)


class _Search:
    def __init__(
        self,
        project: Project,
        plan: SearchPlan,
        state: Path,
        folder: Path,
        progress: Progress | None,
    ) -> None:
        import optuna

        self.project = project
        self.plan = plan
        self.state = state
        self.progress = progress
        direction = (
            optuna.study.StudyDirection.MAXIMIZE
            if plan.direction == "maximize"
            else optuna.study.StudyDirection.MINIMIZE
        )
        self.study = optuna.create_study(direction=direction, sampler=plan.sampler)
        self.steps = [s.name for s in project.plan.steps] if project.plan else []
        self.events: queue.Queue[tuple[int, dict[str, Any]]] = queue.Queue()
        self.workers: dict[int, _Worker] = {}
        self.spawned = 0
        self.started = time.perf_counter()
        self.result = TuneResult(
            pipeline=project.name,
            objective=plan.objective,
            direction=plan.direction,
            algorithm=plan.algorithm,
            sampler=plan.sampler_name,
            dir=folder,
            state="running",
            reason="",
            trials=[],
            max_trials=plan.max_trials,
            parallel=plan.parallel,
            goal=plan.goal,
            max_failed=plan.max_failed,
            notes=plan.notes,
            seconds=0.0,
        )
        self.stop: str | None = None

    # -- the loop

    def loop(self) -> None:
        while True:
            if self.stop is None and self._left() > 0:
                if self.plan.parallel == 1 or not self.result.trials:
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
        return self.plan.max_trials - len(self.result.trials)

    def _spawn(self) -> None:
        if self.plan.parallel == 1:
            return
        left = self._left() - (0 if self.result.trials else 1)
        while len(self.workers) < min(
            self.plan.parallel, left + sum(w.trial is not None for w in self.workers.values())
        ):
            self.spawned += 1
            self.workers[self.spawned] = _Worker(self.spawned, self)

    def _ask(self) -> tuple[Any, TrialResult]:
        ask = self.study.ask()
        params = {d.name: d.suggest(ask) for d in self.plan.dimensions}
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
        from nbflow.localrun import RunError, run

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
            tail = _tail(worker.log)
            error = f"a trial worker exited with {event['code']}" + (f":\n{tail}" if tail else "")
            if trial is None:  # between trials: the next trial gets a new worker
                self.result.notes.append(error)
                return
            run = {"ok": False, "steps": [], "error": error}
            self._finish(worker.ask, trial, run, time.perf_counter() - worker.started)

    def _finish(self, ask: Any, trial: TrialResult, run: dict[str, Any], seconds: float) -> None:
        from optuna.trial import TrialState

        state, value, error = judge(run, self.plan.objective)
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
        goal = self.plan.goal
        if self.plan.max_failed is not None and failed > self.plan.max_failed:
            self.stop = "failed"
            self.result.reason = (
                f"{failed} trials failed, more than maxFailedTrials ({self.plan.max_failed})"
            )
        elif (
            goal is not None
            and trial.value is not None
            and (trial.value >= goal if self.plan.direction == "maximize" else trial.value <= goal)
        ):
            self.stop = "goal"
            self.result.reason = f"trial {trial.number} reached the goal {self.plan.objective} {'>=' if self.plan.direction == 'maximize' else '<='} {goal:g}"

    def interrupt(self) -> None:
        """Stop every worker with its tasks; mark the unfinished trials interrupted."""
        for worker in self.workers.values():
            _signal_group(worker.proc, signal.SIGINT)
            worker.close()
        deadline = time.monotonic() + _INTERRUPT_GRACE_S
        for worker in self.workers.values():
            try:
                worker.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(worker.proc, signal.SIGKILL)
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
        return r

    def _write(self) -> None:
        self.result.seconds = time.perf_counter() - self.started
        write_results(self.result)


def _signal_group(proc: subprocess.Popen[str], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, sig)
        else:  # pragma: no cover - no process groups
            proc.kill()


def _tail(path: Path | None, lines: int = 15) -> str:
    if path is None:
        return ""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join([ln for ln in text.splitlines() if ln.strip()][-lines:])


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
    A KeyboardInterrupt (Ctrl-C, or raised by `progress`) stops the workers and returns a
    result whose state is `interrupted`, its files written. Raises UsageError or
    EnvironmentProblem when the search cannot start.
    """
    import optuna

    from nbflow.localrun import missing_requirements

    plan = plan_search(project, trials=trials, parallel=parallel)
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
        search = _Search(project, plan, state, folder, progress)
        search._write()
        try:
            search.loop()
        except KeyboardInterrupt:
            search.interrupt()
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


# -- display --------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _steps_text(t: TrialResult) -> str:
    return f"{t.ran} ran, {t.cached} cached"


class TrialLog:
    """One line per finished trial: for CI logs and anything that is not a terminal."""

    def __init__(self, stream: TextIO, plan: SearchPlan) -> None:
        self.stream = stream
        self.plan = plan
        self.trials: dict[int, TrialResult] = {}

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def update(self, trial: TrialResult) -> None:
        self.trials[trial.number] = trial
        if trial.state not in FINISHED:
            return
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in trial.parameters.items())
        value = (
            f"{self.plan.objective}={_fmt(trial.value)}" if trial.value is not None else trial.state
        )
        best = best_trial(list(self.trials.values()), self.plan.direction)
        tail = f"best #{best.number} {_fmt(best.value)}" if best else "no best yet"
        self._print(
            f"trial {trial.number}/{self.plan.max_trials}  {value}  {params}  "
            f"{trial.seconds:.1f} s  ({_steps_text(trial)})  {tail}"
        )
        if trial.state == "failed" and trial.error:
            for line in trial.error.strip().splitlines()[:8]:
                self._print(f"    {line}")

    def close(self) -> None:
        pass


class TrialTable(TrialLog):
    """A live table of the trials (rich), for a terminal."""

    MAX_ROWS = 20

    def __init__(self, stream: TextIO, plan: SearchPlan) -> None:
        super().__init__(stream, plan)
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=stream)
        self.live = Live(
            self._table(),
            console=self.console,
            refresh_per_second=4,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.live.start()

    def _table(self) -> Any:
        from rich.table import Table

        best = best_trial(list(self.trials.values()), self.plan.direction)
        caption = (
            f"best so far: #{best.number} {self.plan.objective}={_fmt(best.value)}"
            if best
            else "best so far: -"
        )
        table = Table(caption=caption, caption_justify="left")
        table.add_column("#", justify="right")
        for d in self.plan.dimensions:
            table.add_column(d.name, justify="right")
        table.add_column(self.plan.objective, justify="right")
        table.add_column("state")
        table.add_column("s", justify="right")
        table.add_column("steps")
        rows = sorted(self.trials.values(), key=lambda t: t.number)[-self.MAX_ROWS :]
        for t in rows:
            style = (
                "bold green"
                if best is not None and t.number == best.number
                else ("red" if t.state == "failed" else None)
            )
            running = [n for n, s in t.steps.items() if s == "running"]
            state = f"running {running[0]}" if t.state == "running" and running else t.state
            table.add_row(
                str(t.number),
                *(_fmt(t.parameters.get(d.name)) for d in self.plan.dimensions),
                "" if t.value is None else _fmt(t.value),
                state,
                f"{t.seconds:.1f}" if t.state in FINISHED else "",
                _steps_text(t),
                style=style,
            )
        return table

    def update(self, trial: TrialResult) -> None:
        self.trials[trial.number] = trial
        self.live.update(self._table())

    def close(self) -> None:
        self.live.update(self._table())
        self.live.stop()


def display(stream: TextIO, plan: SearchPlan) -> TrialLog:
    live = stream.isatty() and os.environ.get("TERM") != "dumb"
    return TrialTable(stream, plan) if live else TrialLog(stream, plan)


# -- command line ---------------------------------------------------------------------------------


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add `nbflow tune` to the CLI's subparsers."""
    t: argparse.ArgumentParser = sub.add_parser(
        "tune", help="run the manifest's hyperparameter search on this machine (Optuna)"
    )
    t.add_argument("path", nargs="?", default=".", help="project folder or nbflow.yaml")
    t.add_argument(
        "--trials", type=int, metavar="N", help="number of trials (default: tuning.maxTrials)"
    )
    t.add_argument(
        "--parallel",
        type=int,
        metavar="K",
        help="trials run at once (default: tuning.parallelTrials)",
    )
    t.add_argument("--json", action="store_true", help="print the search's result as JSON")
    return t


def cmd_tune(args: argparse.Namespace) -> int:
    """0: done (a best trial found); 1: all trials failed or maxFailedTrials exceeded;
    130: interrupted. UsageError / EnvironmentProblem (exit 2) go to the CLI's handler."""
    from nbflow.reporters import render_text
    from nbflow.validate import load_project

    report, project = load_project(args.path)
    if report.diagnostics:
        sys.stderr.write(render_text(report, color=sys.stderr.isatty()))
    if project is None:
        return 1
    plan = plan_search(project, trials=args.trials, parallel=args.parallel)
    goal = (
        f", goal {plan.objective} {'>=' if plan.direction == 'maximize' else '<='} {plan.goal:g}"
        if plan.goal is not None
        else ""
    )
    sys.stderr.write(
        f"nbflow tune {project.name}: {plan.algorithm} ({plan.sampler_name}), {plan.max_trials} trials, "
        f"{plan.parallel} at a time; {plan.direction} {plan.objective}{goal}\n"
    )
    for note in plan.notes:
        sys.stderr.write(f"  note: {note}\n")
    shown = display(sys.stderr, plan)
    try:
        result = tune(project, trials=args.trials, parallel=args.parallel, progress=shown.update)
    finally:
        shown.close()
    runs = ", ".join(
        f"{name} {c['ran']} ran/{c['cached']} cached" for name, c in result.step_runs().items()
    )
    counts = ", ".join(f"{n} {s}" for s, n in sorted(_count(result.trials).items()))
    sys.stderr.write(
        f"tune {result.state} in {result.seconds:.1f} s: {counts or 'no trials'}"
        f"{f' ({result.reason})' if result.reason and result.state != 'completed' else ''}\n"
        f"steps: {runs}\nresults: {os.path.relpath(result.dir)}\n"
    )
    best = result.best
    if args.json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2, default=str) + "\n")
    elif best is not None and best.value is not None:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in best.parameters.items())
        print(f"best: {result.objective}={best.value:.6g} with {params}")
        print(f"{result.objective}={best.value!r}")
    if result.state == "interrupted":
        return 130
    return 0 if result.ok and best is not None else 1


def _count(trials: Sequence[TrialResult]) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in trials:
        out[t.state] = out.get(t.state, 0) + 1
    return out


# -- the worker of a parallel trial ---------------------------------------------------------------


def _worker(argv: Sequence[str]) -> int:
    """`python -m nbflow.tune --worker MANIFEST STATE_DIR`: runs trials for a parallel search.

    Reads one `{"parameters": {...}}` line per trial from stdin, until stdin closes. For each, it
    writes one JSON object per line to stdout: `{"event": "step", "step": {...}}` as the run's
    steps change, then `{"event": "result", "result": RunResult.to_json()}`, or `{"event":
    "error", "error": "..."}` when the run cannot start."""
    if len(argv) != 3 or argv[0] != "--worker":
        sys.stderr.write("usage: python -m nbflow.tune --worker MANIFEST STATE_DIR\n")
        return 2
    _, manifest, state = argv
    # the events get their own copy of stdout; anything else written to stdout (kfp.local, a
    # task) goes to stderr, the worker's log
    channel = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)

    def send(event: dict[str, Any]) -> None:
        channel.write(json.dumps(event, default=str) + "\n")

    try:
        from nbflow.localrun import RunError, run
        from nbflow.reporters import render_text
        from nbflow.validate import load_project

        report, project = load_project(manifest)
        import kfp.local  # noqa: F401  (while the search waits for its first trial)

        for line in sys.stdin:
            if not line.strip():
                continue
            if project is None:
                send({"event": "error", "error": render_text(report)})
                continue
            try:
                result = run(
                    project,
                    parameters=json.loads(line)["parameters"],
                    cache=True,
                    state_dir=Path(state),
                    progress=lambda step: send({"event": "step", "step": asdict(step)}),
                )
            except RunError as exc:
                send({"event": "error", "error": str(exc)})
                continue
            send({"event": "result", "result": result.to_json()})
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        channel.close()


if __name__ == "__main__":
    raise SystemExit(_worker(sys.argv[1:]))
