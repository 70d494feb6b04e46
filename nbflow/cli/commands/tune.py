"""`nbflow tune`: the search of `nbflow.local.tune` with its live display, summary and exit
code (0 a best trial found; 1 all trials failed or maxFailedTrials exceeded; 130 interrupted;
UsageError / EnvironmentProblem, exit 2, go to the handler of `nbflow.cli.main`)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from nbflow.check.validate import load_project
from nbflow.cli.exit_codes import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK
from nbflow.cli.reporters import render_text
from nbflow.console import wants_color
from nbflow.escape import terminal
from nbflow.local.report import format_value
from nbflow.local.tune.display import display, fmt
from nbflow.local.tune.search import tune
from nbflow.local.tune.spec import resolve_search

if TYPE_CHECKING:
    import argparse

    from nbflow.local.tune.results import TrialResult


def cmd_tune(args: argparse.Namespace) -> int:
    report, project = load_project(args.path)
    if report.diagnostics:
        sys.stderr.write(render_text(report, color=wants_color(sys.stderr)))
    if project is None:
        return EXIT_INPUT
    spec = resolve_search(project, trials=args.trials, parallel=args.parallel)
    goal = (
        f", goal {spec.objective} {'>=' if spec.direction == 'maximize' else '<='} {spec.goal:g}"
        if spec.goal is not None
        else ""
    )
    sys.stderr.write(
        f"nbflow tune {project.name}: {spec.algorithm} ({spec.sampler_name}), {spec.max_trials} trials, "
        f"{spec.parallel} at a time; {spec.direction} {spec.objective}{goal}\n"
    )
    for note in spec.notes:
        sys.stderr.write(f"  note: {terminal(note)}\n")
    shown = display(sys.stderr, spec)
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
        f"steps: {runs}\nresults: {terminal(os.path.relpath(result.dir))} "
        f"(report: {terminal(os.path.relpath(result.dir / 'report.html'))})\n"
    )
    best = result.best
    if args.json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2, default=str) + "\n")
    elif best is not None and best.value is not None:
        params = ", ".join(f"{k}={fmt(v)}" for k, v in best.parameters.items())
        print(f"best: {result.objective}={best.value:.6g} with {params}")
        print(f"{result.objective}={format_value(best.value)}")
    if result.state == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_OK if result.ok and best is not None else EXIT_INPUT


def _count(trials: Sequence[TrialResult]) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in trials:
        out[t.state] = out.get(t.state, 0) + 1
    return out
