"""The library API: what the `nbflow` command does, as functions that return results.

    from nbflow import api

    report = api.validate(["examples"])           # Report: every diagnostic, nothing printed
    project = api.load("examples/digits")          # Project (raises InvalidProject on errors)
    built = api.build("examples/digits", out="dist")
    result = api.run("examples/digits", parameters={"C": 10.0})
    print(result.metrics["accuracy"])

No function here prints, exits the process or installs anything; errors in the user's input are
`InvalidProject` (carrying the report), other problems the exceptions of `nbflow.errors`.
Heavy imports (kfp, optuna, kubernetes) happen only inside the functions that need them; those
that need an extra (`build`, `run`, `tune`) raise `nbflow.extras.MissingExtra`, an
`EnvironmentProblem` naming it, when it is not installed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.diagnostics import Report
from nbflow.extras import require

if TYPE_CHECKING:
    from nbflow.check.project import Project
    from nbflow.generate.build import BuildResult
    from nbflow.local.run import RunResult
    from nbflow.local.tune import TuneResult


class InvalidProject(Exception):
    """The manifest or its notebook has errors; `report` holds every diagnostic."""

    def __init__(self, report: Report) -> None:
        first = report.errors[0].message if report.errors else "invalid project"
        super().__init__(f"{len(report.errors)} error(s) in {', '.join(report.manifests)}: {first}")
        self.report = report


def validate(paths: Iterable[str | Path] = (".",)) -> Report:
    """Validate every nbflow.yaml at or below `paths` with its notebook."""
    from nbflow.check.validate import validate as run_validation

    return run_validation(paths)


def load(path: str | Path = ".") -> Project:
    """The validated project of a folder or manifest, with its data-flow plan."""
    from nbflow.check.validate import load_project

    report, project = load_project(path)
    if project is None:
        raise InvalidProject(report)
    return project


def build(path: str | Path = ".", *, out: str | Path = "dist") -> BuildResult:
    """Write the project's versioned folder under `out`."""
    require("build", "nbflow.api.build")
    from nbflow.generate.build import build as run_build

    return run_build(load(path), Path(out))


def run(
    path: str | Path = ".",
    *,
    parameters: Mapping[str, Any] | None = None,
    cache: bool = True,
    engine: str = "nbflow",
    jobs: int | None = None,
) -> RunResult:
    """Run the pipeline on this machine; `parameters` override the defaults. `engine`:
    "nbflow" (steps in parallel, `jobs` at a time, default the cores) or "kfp-local".

    Ctrl-C, SIGTERM or SIGHUP (in the main thread) stop the running step with every process
    it started, then raise `nbflow.errors.Interrupted`, a KeyboardInterrupt naming the step.
    """
    require("run", "nbflow.api.run")
    from nbflow.local.run import run as run_locally

    return run_locally(
        load(path), parameters=dict(parameters or {}), cache=cache, engine=engine, jobs=jobs
    )


def tune(
    path: str | Path = ".", *, trials: int | None = None, parallel: int | None = None
) -> TuneResult:
    """Run the manifest's hyperparameter search on this machine with Optuna."""
    require("tune", "nbflow.api.tune")
    from nbflow.local.tune import tune as run_tune

    return run_tune(load(path), trials=trials, parallel=parallel)
