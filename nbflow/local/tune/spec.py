"""The search spec: the manifest's `tuning` block resolved into a sampler, dimensions and counts."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbflow.errors import UsageError
from nbflow.local.tune.samplers import SAMPLERS
from nbflow.local.tune.space import Dimension, dimensions, tuning_block

if TYPE_CHECKING:
    from nbflow.check.project import Project


@dataclass
class SearchSpec:
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


def resolve_search(
    project: Project, *, trials: int | None = None, parallel: int | None = None
) -> SearchSpec:
    """Resolve the manifest's `tuning` block into a search. Raises UsageError (bad input, an
    algorithm not available locally) or EnvironmentProblem (its package is not installed)."""
    tuning = tuning_block(project)
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
    return SearchSpec(
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
