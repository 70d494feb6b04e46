"""A run's own page: `index.html` in its run folder, written when the run starts and again at
each step event, so that it shows the run in progress and, at the end, how it went.

The page is one self-contained file (styles inline, the DAG an inline SVG drawn here, no script,
nothing loaded from another host): the parameters, the metrics, a table of the steps (status,
time, cached, attempts, links to each step's report and log) and the DAG with each step's
status. Every name and value a manifest or notebook gave is escaped.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbflow.dataflow.plan import Plan
    from nbflow.local.run_result import RunResult, StepResult

__all__ = ["dag_svg", "format_value", "render", "write"]

# fill, stroke per status; a failed step in red, a cached one in blue, one not run in grey
_COLOURS = {
    "succeeded": ("#e6f4ea", "#1e8e3e"),
    "cached": ("#e8f0fe", "#1967d2"),
    "failed": ("#fce8e6", "#d93025"),
    "running": ("#fef7e0", "#e37400"),
    "retrying": ("#fef7e0", "#e37400"),
    "pending": ("#ffffff", "#9aa0a6"),
    "not-run": ("#f1f3f4", "#9aa0a6"),
}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:75em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.5em}.meta{color:#555}
table{border-collapse:collapse}td,th{padding:.25em .6em;border:1px solid #ccc;text-align:left}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.status{font-weight:600}.s-succeeded{color:#1e8e3e}.s-cached{color:#1967d2}
.s-failed{color:#d93025}.s-running,.s-retrying{color:#e37400}.s-pending,.s-not-run{color:#777}
pre.error{background:#fdd;border-left:4px solid #c00;padding:.5em;white-space:pre-wrap}
svg.dag text{font-family:system-ui,sans-serif;font-size:13px}
"""

_NODE_W, _NODE_H, _GAP_X, _GAP_Y = 170, 46, 30, 50


def format_value(value: object) -> str:
    """A parameter or metric as a user reads it: an integral metric as an integer."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.6g}"
    if isinstance(value, int | str):
        return str(value)
    return json.dumps(value, default=str)


def _layers(plan: Plan) -> dict[str, int]:
    """Each step's row: one more than the deepest step it waits for (plan order is
    topological)."""
    depth: dict[str, int] = {}
    for s in plan.steps:
        depth[s.name] = 1 + max((depth[u] for u in s.upstream if u in depth), default=-1)
    return depth


def dag_svg(plan: Plan, statuses: dict[str, str], links: dict[str, str] | None = None) -> str:
    """The plan's DAG as inline SVG, top to bottom, each step filled by its status and linked
    to its report where `links` has one."""
    links = links or {}
    depth = _layers(plan)
    rows: dict[int, list[str]] = {}
    for s in plan.steps:
        rows.setdefault(depth[s.name], []).append(s.name)
    widest = max((len(r) for r in rows.values()), default=1)
    width = widest * (_NODE_W + _GAP_X) + _GAP_X
    height = len(rows) * (_NODE_H + _GAP_Y) + _GAP_Y - 20
    pos: dict[str, tuple[float, float]] = {}
    for row, names in rows.items():
        offset = (width - len(names) * (_NODE_W + _GAP_X) + _GAP_X) / 2
        for i, name in enumerate(names):
            pos[name] = (offset + i * (_NODE_W + _GAP_X), 15 + row * (_NODE_H + _GAP_Y))
    out = [
        f'<svg class="dag" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        'aria-label="pipeline DAG">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#777"/></marker></defs>',
    ]
    for e in plan.edges:
        if e.src not in pos or e.dst not in pos:
            continue
        x1, y1 = pos[e.src][0] + _NODE_W / 2, pos[e.src][1] + _NODE_H
        x2, y2 = pos[e.dst][0] + _NODE_W / 2, pos[e.dst][1]
        dash = ' stroke-dasharray="5,4"' if e.after_only else ""
        mid = (y1 + y2) / 2
        title = html.escape(", ".join(e.variables) or "after")
        out.append(
            f'<path class="edge" d="M{x1:.0f},{y1:.0f} C{x1:.0f},{mid:.0f} {x2:.0f},{mid:.0f} '
            f'{x2:.0f},{y2:.0f}" fill="none" stroke="#777" stroke-width="1.5"{dash} '
            f'marker-end="url(#arrow)"><title>{title}</title></path>'
        )
    for s in plan.steps:
        x, y = pos[s.name]
        status = statuses.get(s.name, "pending")
        fill, stroke = _COLOURS.get(status, _COLOURS["pending"])
        name = s.name if len(s.name) <= 22 else s.name[:21] + "…"
        node = (
            f'<g class="node" data-step="{html.escape(s.name)}" data-status="{status}">'
            f"<title>{html.escape(s.name)}: {status}</title>"
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{_NODE_W}" height="{_NODE_H}" rx="8" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="2"/>'
            f'<text x="{x + _NODE_W / 2:.0f}" y="{y + 19:.0f}" text-anchor="middle" '
            f'font-weight="600">{html.escape(name)}</text>'
            f'<text x="{x + _NODE_W / 2:.0f}" y="{y + 36:.0f}" text-anchor="middle" '
            f'fill="{stroke}">{status}</text></g>'
        )
        link = links.get(s.name)
        if link:
            node = f'<a href="{html.escape(link)}">{node}</a>'
        out.append(node)
    out.append("</svg>")
    return "\n".join(out)


def _relative(path: str | None, run_dir: Path) -> str | None:
    if not path:
        return None
    try:
        return Path(path).relative_to(run_dir).as_posix()
    except ValueError:
        return None


def _step_row(step: StepResult, run_dir: Path) -> str:
    report = _relative(step.report, run_dir)
    log = _relative(step.log, run_dir)
    links = []
    if report:
        links.append(f'<a class="report" href="{html.escape(report)}">report</a>')
    if log:
        links.append(f'<a class="log" href="{html.escape(log)}">log</a>')
    seconds = f"{step.seconds:.2f} s" if step.status in ("succeeded", "failed") else ""
    cached = "yes" if step.status == "cached" else "no"
    name = html.escape(step.name)
    first = f'<a href="{html.escape(report)}">{name}</a>' if report else name
    return (
        f'<tr data-step="{name}"><td>{first}</td>'
        f'<td class="status s-{step.status}">{step.status}</td>'
        f'<td class="num">{seconds}</td><td>{cached}</td><td class="num">{step.attempts}</td>'
        f"<td>{' · '.join(links)}</td></tr>"
    )


def _table(rows: dict[str, Any], header: tuple[str, str]) -> str:
    if not rows:
        return '<p class="meta">none</p>'
    body = "".join(
        f"<tr><td>{html.escape(k)}</td><td class='num'>{html.escape(format_value(v))}</td></tr>"
        for k, v in rows.items()
    )
    return f"<table><tr><th>{header[0]}</th><th>{header[1]}</th></tr>{body}</table>"


def render(result: RunResult, plan: Plan, *, status: str, started: str) -> str:
    """The run's page. `status` is running, succeeded or failed."""
    run_dir = result.run_dir
    title = f"{result.pipeline} · run {run_dir.name}"
    statuses = {s.name: s.status for s in result.steps}
    links = {s.name: rel for s in result.steps if (rel := _relative(s.report, run_dir)) is not None}
    duration = f", {result.seconds:.1f} s" if status != "running" else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">started {html.escape(started)}; '
        f'<span class="status s-{status}" id="run-status">{status}</span>{duration}</p>',
    ]
    failed = [s for s in result.steps if s.status == "failed" and s.error]
    for s in failed:
        parts.append(
            f'<pre class="error">{html.escape(s.name)}: {html.escape(s.error or "")}</pre>'
        )
    parts.append("<h2>Parameters</h2>")
    parts.append(_table(result.parameters, ("parameter", "value")))
    parts.append("<h2>Metrics</h2>")
    parts.append(_table(dict(sorted(result.metrics.items())), ("metric", "value")))
    parts.append("<h2>Steps</h2>")
    parts.append(
        '<table id="steps"><tr><th>step</th><th>status</th><th>time</th><th>cached</th>'
        "<th>attempts</th><th>links</th></tr>"
    )
    parts.extend(_step_row(s, run_dir) for s in result.steps)
    parts.append("</table>")
    parts.append("<h2>DAG</h2>")
    parts.append(dag_svg(plan, statuses, links))
    parts.append(
        '<p class="meta">run.json holds the same data; '
        '<a href="logs/kfp-local.log">kfp-local.log</a> all that kfp.local printed.</p>'
    )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write(result: RunResult, plan: Plan, *, status: str, started: str) -> Path:
    """Write (or rewrite) the run folder's index.html, whole, and return its path."""
    path = result.run_dir / "index.html"
    partial = path.with_suffix(".html.partial")
    partial.write_text(render(result, plan, status=status, started=started), encoding="utf-8")
    partial.replace(path)  # a browser reloading the page never sees half of it
    return path
