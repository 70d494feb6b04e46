"""`nbflow tune` on the command line: its arguments, and the command over `tune`."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from nbflow.local.tune.display import display, fmt
from nbflow.local.tune.plan import plan_search
from nbflow.local.tune.search import tune

if TYPE_CHECKING:
    import argparse

    from nbflow.local.tune.results import TrialResult


def cmd_tune(args: argparse.Namespace) -> int:
    """0: done (a best trial found); 1: all trials failed or maxFailedTrials exceeded;
    130: interrupted. UsageError / EnvironmentProblem (exit 2) go to the CLI's handler."""
    from nbflow.check.validate import load_project
    from nbflow.cli.reporters import render_text

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
        params = ", ".join(f"{k}={fmt(v)}" for k, v in best.parameters.items())
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
