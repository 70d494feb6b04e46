"""`nbflow runs`: list a project's local runs, compare two, prune old ones.

    nbflow runs [-C PATH] [--json]                     id, start, status, duration, params, metrics
    nbflow runs compare A B [--all] [--json]           what changed, as `dvc metrics diff` shows it
    nbflow runs prune --keep N                         delete all but the newest N runs

A run is named by its id, a unique prefix of it, `latest`, or `latest~N`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from nbflow.escape import terminal
from nbflow.local.report import format_value
from nbflow.local.runs import (
    Change,
    Comparison,
    RunRecord,
    compare,
    list_runs,
    prune,
    resolve,
    state_of,
)

__all__ = ["add_parser", "cmd_runs"]


def _common(top: bool) -> argparse.ArgumentParser:
    """`-C` and `--json`, taken before the action and after it. An action's have no default:
    argparse copies a subparser's defaults over what was parsed before it, and
    `nbflow runs -C x list` must keep `x`."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-C",
        "--project",
        default="." if top else argparse.SUPPRESS,
        metavar="PATH",
        help="project folder or its nbflow.yaml (default: .)",
    )
    common.add_argument(
        "--json",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="print JSON instead of text",
    )
    return common


def add_parser(sub: Any) -> None:
    common = _common(top=False)
    r = sub.add_parser(
        "runs",
        parents=[_common(top=True)],
        help="list, compare and prune this project's local runs",
        description="List the local runs of a project (`nbflow run` makes them): id, start, "
        "status, duration, parameters and metrics, oldest first. A run is named by its id, a "
        "unique prefix of it, `latest` or `latest~N`.",
    )
    actions = r.add_subparsers(
        dest="runs_command", metavar="ACTION", help="what to do with the runs (default: list)"
    )
    actions.add_parser(
        "list",
        parents=[common],
        help="list the runs (the default action)",
        description="List the runs, oldest first; `*` marks the one runs/latest points at.",
    )
    c = actions.add_parser(
        "compare",
        aliases=["diff"],
        parents=[common],
        help="what changed in parameters and metrics from run A to run B",
        description="What changed in parameters and metrics from run A to run B, with the "
        "difference of numbers (like `dvc metrics diff`).",
    )
    c.add_argument("a", help="the run to compare from (e.g. latest~1)")
    c.add_argument("b", nargs="?", default="latest", help="the run to compare to (default: latest)")
    c.add_argument(
        "--all", action="store_true", help="show unchanged values too (default: changes only)"
    )
    pr = actions.add_parser(
        "prune",
        parents=[common],
        help="delete all but the newest N runs (the latest is kept)",
        description="Delete all but the newest N runs; the run runs/latest points at and a run "
        "still running are kept.",
    )
    pr.add_argument("--keep", type=int, required=True, metavar="N", help="runs to keep")


def cmd_runs(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from nbflow.errors import UsageError

    out = out or sys.stdout
    state = state_of(Path(args.project))
    action = args.runs_command or "list"
    if action == "prune":
        if args.keep < 0:
            raise UsageError("--keep takes 0 or more")
        gone = prune(state, args.keep)
        if args.json:
            out.write(json.dumps([r.id for r in gone]) + "\n")
        else:
            out.write(f"deleted {len(gone)} run(s)\n")
        return 0
    runs = list_runs(state)
    if action in ("compare", "diff"):
        cmp = compare(resolve(runs, args.a, state), resolve(runs, args.b, state))
        if args.json:
            out.write(json.dumps(cmp.to_json(everything=args.all), indent=2, default=str) + "\n")
        else:
            out.write(render_comparison(cmp, everything=args.all))
        return 0
    if args.json:
        out.write(json.dumps([r.to_json() for r in runs], indent=2, default=str) + "\n")
    else:
        out.write(render_list(runs, state))
    return 0


def _pairs(values: dict[str, Any]) -> str:
    return " ".join(f"{k}={format_value(v)}" for k, v in values.items())


def _duration(r: RunRecord) -> str:
    if r.seconds is None:
        return "-"
    minutes, seconds = divmod(r.seconds, 60)
    return f"{int(minutes)}m{seconds:04.1f}s" if minutes else f"{seconds:.1f}s"


def _table(header: list[str], rows: list[list[str]]) -> str:
    cells = [[terminal(c) for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines) + "\n"


def render_list(runs: list[RunRecord], state: Path) -> str:
    if not runs:
        return f"no runs in {terminal(str(state / 'runs'))}: `nbflow run` makes them\n"
    latest = (state / "runs" / "latest").resolve()
    rows = [
        [
            r.id + (" *" if r.folder.resolve() == latest else ""),
            r.started.replace("T", " ").removesuffix("+00:00"),
            r.status,
            _duration(r),
            _pairs(r.parameters),
            _pairs(dict(sorted(r.metrics.items()))),
        ]
        for r in runs
    ]
    return _table(["run", "started (UTC)", "status", "duration", "parameters", "metrics"], rows)


def _change_rows(changes: list[Change], everything: bool) -> list[list[str]]:
    rows = []
    for c in changes:
        if not (everything or c.changed):
            continue
        diff = "-" if c.diff is None else ("+" if c.diff > 0 else "") + format_value(c.diff)
        if not c.changed:
            diff = "0" if c.diff is not None else "-"
        shown = ["-" if v is None else format_value(v) for v in (c.old, c.new)]
        rows.append([c.name, *shown, diff])
    return rows


def render_comparison(cmp: Comparison, *, everything: bool = False) -> str:
    parts = []
    for kind, changes in (("parameter", cmp.parameters), ("metric", cmp.metrics)):
        rows = _change_rows(changes, everything)
        if rows:
            parts.append(_table([kind, cmp.a.id, cmp.b.id, "change"], rows))
    if not parts:
        return f"no change in parameters or metrics from {cmp.a.id} to {cmp.b.id}\n"
    return "\n".join(parts)
