"""The plan's DAG as text: Mermaid, Graphviz DOT, or plain text.

Every format shows each step with the parameters it reads and the metrics it computes, and each
edge with the variables it carries (an edge that is only an ``after`` is dashed, or says so in
text); text shows a step's cells as ranges (``cells 5-9, 12``). Output is a
function of the plan alone, so the same plan renders to the same bytes. Names are escaped for
each format, whatever characters they hold: node ids are generated (``n1``, ``n2``...), and
step, variable, parameter and pipeline names only ever appear inside escaped labels.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from nbflow.dataflow.plan import Plan, StepPlan
from nbflow.load.notebook import cell_ranges

__all__ = ["FORMATS", "render"]


def _join(names: Iterable[str]) -> str:
    return ", ".join(names)


def _details(step: StepPlan) -> list[str]:
    lines = []
    if step.parameters:
        lines.append("params: " + _join(step.parameters))
    if step.metrics:
        lines.append("metrics: " + _join(step.metrics))
    return lines


def _ids(plan: Plan) -> dict[str, str]:
    return {s.name: f"n{i}" for i, s in enumerate(plan.steps, start=1)}


# -- Mermaid ---------------------------------------------------------------------------------

# Inside a quoted Mermaid label `#code;` is an entity; these characters could end the label,
# start markup or a comment, so they always go as entities (and `#` first of all).
_MERMAID_SPECIAL = frozenset('#"<>&|`;[]{}()\\')


def _mermaid_text(text: str) -> str:
    return "".join(
        f"#{ord(c)};" if c in _MERMAID_SPECIAL or not c.isprintable() else c for c in text
    )


def _mermaid(plan: Plan, pipeline: str) -> str:
    ids = _ids(plan)
    out = ["---", f"title: {json.dumps(pipeline)}", "---", "flowchart TD"]
    for s in plan.steps:
        label = "<br/>".join(_mermaid_text(t) for t in [s.name, *_details(s)])
        out.append(f'    {ids[s.name]}["{label}"]')
    for e in plan.edges:
        a, b = ids[e.src], ids[e.dst]
        if e.after_only:
            out.append(f"    {a} -.-> {b}")
        else:
            out.append(f'    {a} -->|"{_mermaid_text(_join(e.variables))}"| {b}')
    return "\n".join(out) + "\n"


# -- DOT -------------------------------------------------------------------------------------


def _dot_text(text: str) -> str:
    """A DOT label string's content: backslash escapes only, one line."""
    out = []
    for c in text:
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif not c.isprintable():
            # shown as its Python escape, backslash and all
            out.append(c.encode("unicode_escape").decode().replace("\\", "\\\\"))
        else:
            out.append(c)
    return "".join(out)


def _dot(plan: Plan, pipeline: str) -> str:
    ids = _ids(plan)
    out = [
        "digraph pipeline {",
        f'    label="{_dot_text(pipeline)}";',
        "    labelloc=t;",
        "    rankdir=TB;",
        '    node [shape=box, style=rounded, fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
    ]
    for s in plan.steps:
        label = "\\n".join(_dot_text(t) for t in [s.name, *_details(s)])
        out.append(f'    {ids[s.name]} [label="{label}"];')
    for e in plan.edges:
        a, b = ids[e.src], ids[e.dst]
        if e.after_only:
            out.append(f"    {a} -> {b} [style=dashed];")
        else:
            out.append(f'    {a} -> {b} [label="{_dot_text(_join(e.variables))}"];')
    out.append("}")
    return "\n".join(out) + "\n"


# -- text ------------------------------------------------------------------------------------


def _plain(text: str) -> str:
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _text(plan: Plan, pipeline: str) -> str:
    out = [f"pipeline {_plain(pipeline)}: {len(plan.steps)} step(s)"]
    incoming: dict[str, list[str]] = {s.name: [] for s in plan.steps}
    for e in plan.edges:
        if e.after_only:  # order, not a variable that happens to be called `after`
            incoming[e.dst].append(f"<- {_plain(e.src)} (after: order only, no data)")
        else:
            incoming[e.dst].append(f"<- {_plain(e.src)}: {_join(_plain(v) for v in e.variables)}")
    for s in plan.steps:
        cells = f" (cell{'s' * (len(s.cells) > 1)} {cell_ranges(list(s.cells))})" if s.cells else ""
        out.append(f"  {_plain(s.name)}{cells}")
        out.extend(f"      {line}" for line in incoming[s.name])
        if s.parameters:
            out.append("      params: " + _join(_plain(p) for p in s.parameters))
        if s.metrics:
            out.append("      metrics: " + _join(_plain(m) for m in s.metrics))
    return "\n".join(out) + "\n"


_RENDERERS: dict[str, Callable[[Plan, str], str]] = {
    "mermaid": _mermaid,
    "dot": _dot,
    "text": _text,
}
FORMATS: tuple[str, ...] = tuple(_RENDERERS)


def render(plan: Plan, fmt: str, *, pipeline: str) -> str:
    """The plan as ``fmt`` ("mermaid", "dot" or "text"), ending with a newline."""
    try:
        renderer = _RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown graph format {fmt!r}: use one of {', '.join(FORMATS)}") from None
    return renderer(plan, pipeline)
