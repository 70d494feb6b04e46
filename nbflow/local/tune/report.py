"""report.html beside trials.csv: a search as a page to look at.

The optimisation history with the best so far (integer trial numbers on its axis), the
parameters' importances (Optuna's own evaluator, fANOVA, on the search's study), a slice plot of
the objective against each parameter, the best trial with the exact command that reruns it, and
every trial with a link to its run report. Plots are drawn by matplotlib to SVG and embedded;
nothing is loaded from another host. Without matplotlib the page has the tables only.
"""

from __future__ import annotations

import base64
import html
import io
import os
import shlex
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbflow.local.report import format_value
from nbflow.local.tune.results import TuneResult, draw_history

if TYPE_CHECKING:
    from nbflow.local.tune.space import Dimension

__all__ = ["importances", "render", "rerun_command", "write"]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:75em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.5em}.meta{color:#555}
table{border-collapse:collapse}td,th{padding:.25em .6em;border:1px solid #ccc;text-align:left}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.best td{background:#e6f4ea;font-weight:600}.failed{color:#d93025}
pre.cmd{background:#f5f5f5;padding:.6em;white-space:pre-wrap}figure{margin:1em 0}
"""


def rerun_command(result: TuneResult, project_path: str) -> str | None:
    """`nbflow run PATH -p name=value ...` for the best trial, quoted for a POSIX shell."""
    best = result.best
    if best is None:
        return None
    words = ["nbflow", "run", project_path]
    for name, value in best.parameters.items():
        shown = value if isinstance(value, str) else format_value(value)
        if isinstance(value, float) and float(shown) != value:
            shown = repr(value)  # the exact value, not its 6 digits
        words += ["-p", f"{name}={shown}"]
    return " ".join(shlex.quote(w) for w in words)


def importances(study: Any) -> dict[str, float]:
    """Each parameter's importance to the objective (sums to 1); empty when Optuna cannot tell
    (fewer than two complete trials, or one parameter that never varied)."""
    if study is None:
        return {}
    try:
        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dict(optuna.importance.get_param_importances(study))
    except Exception:  # Optuna refuses studies it cannot evaluate: the page says so instead
        return {}


def _svg(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img src="data:image/svg+xml;base64,{data}"'


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _history(result: TuneResult) -> str:
    fig = _figure(7.5, 4)
    draw_history(fig.add_subplot(), result)
    return _svg(fig) + ' alt="optimisation history" id="history">'


def _importance_plot(values: dict[str, float]) -> str:
    fig = _figure(7.5, 0.6 + 0.45 * len(values))
    ax = fig.add_subplot()
    names = list(values)[::-1]
    ax.barh(names, [values[n] for n in names], color="C0")
    ax.set_xlabel("importance (fANOVA)")
    ax.set_xlim(0, 1)
    return _svg(fig) + ' alt="parameter importances" id="importances">'


def _slices(result: TuneResult, dims: list[Dimension]) -> str:
    done = [t for t in result.trials if t.state == "complete" and t.value is not None]
    if not dims or not done:
        return ""
    fig = _figure(3.4 * len(dims), 3.2)
    for i, d in enumerate(dims):
        ax = fig.add_subplot(1, len(dims), i + 1)
        xs = [t.parameters.get(d.name) for t in done]
        if d.kind == "categorical":
            labels = [str(v) for v in d.values]
            xs = [labels.index(str(x)) if str(x) in labels else -1 for x in xs]
            ax.set_xticks(range(len(labels)), labels)
        points = ax.scatter(
            xs, [t.value for t in done], c=[t.number for t in done], cmap="viridis", zorder=3
        )
        if d.log:
            ax.set_xscale("log")
        ax.set_xlabel(d.name)
        if i == 0:
            ax.set_ylabel(result.objective)
        ax.grid(alpha=0.3)
    from matplotlib.ticker import MaxNLocator

    bar = fig.colorbar(points, ax=fig.axes, label="trial", fraction=0.03)
    bar.locator = MaxNLocator(integer=True)
    bar.update_ticks()
    return _svg(fig) + ' alt="slice plots" id="slices">'


def _link(path: str | None, folder: Path, name: str) -> str:
    if not path:
        return ""
    target = Path(path) / "index.html"
    rel = os.path.relpath(target, folder)
    return f'<a class="run" href="{html.escape(Path(rel).as_posix())}">{html.escape(name)}</a>'


def render(
    result: TuneResult,
    *,
    dimensions: list[Dimension],
    study: Any = None,
    project_path: str = ".",
    plots: bool = True,
) -> str:
    """The search's page; `plots=False` leaves out the plots (an interrupted search's page is
    written at once, without importing matplotlib)."""
    title = f"{result.pipeline} · tuning {result.dir.name}"
    best = result.best
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{html.escape(result.direction)} '
        f"<b>{html.escape(result.objective)}</b> with {html.escape(result.algorithm)} "
        f"({html.escape(result.sampler)}); {len(result.trials)} trial(s), "
        f'<span id="state">{html.escape(result.state)}</span> in {result.seconds:.1f} s</p>',
    ]
    parts.append("<h2>Best trial</h2>")
    command = rerun_command(result, project_path)
    if best is None or command is None:
        parts.append('<p class="meta" id="best">no trial completed</p>')
    else:
        params = ", ".join(f"{k}={format_value(v)}" for k, v in best.parameters.items())
        parts.append(
            f'<p id="best">trial #{best.number}: {html.escape(result.objective)} = '
            f"<b>{html.escape(format_value(best.value))}</b> with {html.escape(params)} "
            f"{_link(best.run_dir, result.dir, 'run report')}</p>"
            "<p>Rerun it:</p>"
            f'<pre class="cmd" id="rerun">{html.escape(command)}</pre>'
        )
    if plots:
        parts.extend(_plots(result, dimensions, study))
    else:
        parts.append('<p class="meta">no plots: the search was interrupted.</p>')
    parts.append("<h2>Trials</h2>")
    header = ["#", "state", result.objective, *(d.name for d in dimensions), "time", "run"]
    parts.append(
        '<table id="trials"><tr>' + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
    )
    for t in sorted(result.trials, key=lambda t: t.number):
        css = ' class="best"' if best is not None and t.number == best.number else ""
        value = "" if t.value is None else format_value(t.value)
        cells = [
            f'<td class="num">{t.number}</td>',
            f'<td class="{"failed" if t.state == "failed" else ""}">{html.escape(t.state)}</td>',
            f'<td class="num">{html.escape(value)}</td>',
            *(
                f'<td class="num">{html.escape(format_value(t.parameters.get(d.name)))}</td>'
                for d in dimensions
            ),
            f'<td class="num">{t.seconds:.1f} s</td>',
            f"<td>{_link(t.run_dir, result.dir, 'report')}</td>",
        ]
        parts.append(f'<tr data-trial="{t.number}"{css}>{"".join(cells)}</tr>')
    parts.append("</table>")
    parts.append('<p class="meta">trials.csv and trials.json hold the same data.</p>')
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _plots(result: TuneResult, dims: list[Dimension], study: Any) -> list[str]:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return ['<p class="meta">matplotlib is not installed: no plots.</p>']
    out = ["<h2>Optimisation history</h2>", f"<figure>{_history(result)}</figure>"]
    out.append("<h2>Parameter importances</h2>")
    values = importances(study)
    if values:
        out.append(f"<figure>{_importance_plot(values)}</figure>")
    else:
        out.append('<p class="meta">needs two or more complete trials that differ.</p>')
    slices = _slices(result, dims)
    if slices:
        out += ["<h2>Objective by parameter</h2>", f"<figure>{slices}</figure>"]
    return out


def write(
    result: TuneResult,
    *,
    dimensions: list[Dimension],
    study: Any = None,
    project_path: str = ".",
    plots: bool = True,
) -> Path:
    path = result.dir / "report.html"
    tmp = path.with_name(".report.html.tmp")
    page = render(
        result, dimensions=dimensions, study=study, project_path=project_path, plots=plots
    )
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path
