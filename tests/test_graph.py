"""nbflow.cli.graph: golden renders, and escaping that no name can break.

Rewrite the golden files with ``NBFLOW_UPDATE_GOLDEN=1 pytest tests/test_graph.py``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbflow.cli.graph import FORMATS, render
from nbflow.dataflow.plan import Edge, Plan, StepPlan
from tests.support.fuzz import fuzz_settings
from tests.test_analysis import load_yaml
from tests.test_plan import CASES, build

GRAPHS = Path(__file__).resolve().parent / "analysis_cases" / "graphs"
GOLDEN_CASES = ["diamond", "digits", "after", "functions-across-cells"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", GOLDEN_CASES)
def test_golden(name: str, fmt: str) -> None:
    plan, _, _ = build(load_yaml(CASES / f"{name}.yaml"))
    got = render(plan, fmt, pipeline=name)
    path = GRAPHS / f"{name}.{fmt}"
    if os.environ.get("NBFLOW_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got, encoding="utf-8")
    assert got == path.read_text(encoding="utf-8"), (
        f"{path} drifted: NBFLOW_UPDATE_GOLDEN=1 rewrites it"
    )


def test_diamond_shows_branches_variables_and_params() -> None:
    plan, _, _ = build(load_yaml(CASES / "diamond.yaml"))
    mermaid = render(plan, "mermaid", pipeline="diamond")
    assert "flowchart TD" in mermaid
    assert 'n1["load<br/>params: n_rows"]' in mermaid
    assert 'n1 -->|"raw"| n2' in mermaid and 'n1 -->|"raw"| n3' in mermaid
    assert "n2 --" not in mermaid.replace('n2 -->|"left"| n4', "")  # no edge between branches
    dot = render(plan, "dot", pipeline="diamond")
    assert 'n2 -> n4 [label="left"];' in dot and "n2 -> n3" not in dot


def test_after_only_is_dashed() -> None:
    plan, _, _ = build(load_yaml(CASES / "after.yaml"))
    assert "n1 -.-> n2" in render(plan, "mermaid", pipeline="p")
    assert "n1 -> n2 [style=dashed];" in render(plan, "dot", pipeline="p")
    text = render(plan, "text", pipeline="p")
    assert "<- first (after: order only, no data)" in text and "<- first: after" not in text


def test_text_shows_cells_as_ranges() -> None:
    plan, _, _ = build(
        {"cells": {n: f"x{n} = {n}" for n in range(1, 13)}, "steps": {"all": [*range(1, 10), 12]}}
    )
    assert "  all (cells 1-9, 12)\n" in render(plan, "text", pipeline="p")


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown graph format 'svg'"):
        render(Plan((), ()), "svg", pipeline="p")


def test_empty_plan() -> None:
    for fmt in FORMATS:
        assert render(Plan((), ()), fmt, pipeline="p").endswith("\n")


# -- escaping ---------------------------------------------------------------------------------

NASTY = [
    'a"b',
    "<script>",
    "x|y",
    "semi;colon",
    "hash#35;",
    "back\\slash",
    "new\nline",
    "tab\t",
    "é—ü",
    "]})",
    "`tick`",
    "\u2028",
    "%%",
    "-->",
]


def _mermaid_unescape(text: str) -> str:
    return re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), text)


def _dot_unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _dot_lines(label: str) -> list[str]:
    """A DOT label's lines: `\\n` separates them, other escapes stand for their character."""
    lines = [""]
    for token in re.findall(r"\\.|[^\\]", label):
        if token == "\\n":
            lines.append("")
        else:
            lines[-1] += token[-1]
    return lines


_MERMAID_NODE = re.compile(r'    (n\d+)\["([^"<>|]*(?:<br/>[^"<>|]*)*)"\]')
_MERMAID_EDGE = re.compile(r'    (n\d+) -->\|"([^"<>|]*)"\| (n\d+)')
_MERMAID_AFTER = re.compile(r"    (n\d+) -\.-> (n\d+)")
_DOT_STR = r'"((?:[^"\\\n]|\\.)*)"'
_DOT_NODE = re.compile(rf"    (n\d+) \[label={_DOT_STR}\];")
_DOT_EDGE = re.compile(rf"    (n\d+) -> (n\d+) \[label={_DOT_STR}\];")
_DOT_AFTER = re.compile(r"    (n\d+) -> (n\d+) \[style=dashed\];")


def _plan(names: list[str], variables: list[str], params: list[str]) -> Plan:
    names = list(dict.fromkeys(names))
    steps = [
        StepPlan(name=n, cells=(i + 1,), parameters=tuple(params), metrics=tuple(params[:1]))
        for i, n in enumerate(names)
    ]
    edges = []
    for i in range(1, len(names)):
        vs = tuple(sorted(set(variables[: i % 3])))
        edges.append(Edge(names[i - 1], names[i], vs, not vs))
    return Plan(tuple(steps), tuple(edges))


def check_mermaid(plan: Plan, pipeline: str, text: str) -> None:
    lines = text.splitlines()
    assert lines[:4] == ["---", f"title: {json.dumps(pipeline)}", "---", "flowchart TD"]
    assert json.loads(lines[1][len("title: ") :]) == pipeline
    body = lines[4:]
    assert len(body) == len(plan.steps) + len(plan.edges)
    for s, line in zip(plan.steps, body, strict=False):
        m = _MERMAID_NODE.fullmatch(line)
        assert m, line
        parts = [_mermaid_unescape(p) for p in m.group(2).split("<br/>")]
        assert parts[0] == s.name
        assert all(c.isprintable() for c in m.group(2))
    for e, line in zip(plan.edges, body[len(plan.steps) :], strict=True):
        if e.after_only:
            assert _MERMAID_AFTER.fullmatch(line), line
        else:
            m = _MERMAID_EDGE.fullmatch(line)
            assert m, line
            assert _mermaid_unescape(m.group(2)) == ", ".join(e.variables)


def check_dot(plan: Plan, pipeline: str, text: str) -> None:
    lines = text.splitlines()
    assert lines[0] == "digraph pipeline {" and lines[-1] == "}"
    m = re.fullmatch(rf"    label={_DOT_STR};", lines[1])
    assert m and _dot_unescape(m.group(1)) == "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode() for c in pipeline
    )
    body = lines[6:-1]
    assert len(body) == len(plan.steps) + len(plan.edges)
    for s, line in zip(plan.steps, body, strict=False):
        m = _DOT_NODE.fullmatch(line)
        assert m, line
        if s.name.isprintable():
            assert _dot_lines(m.group(2))[0] == s.name
    for e, line in zip(plan.edges, body[len(plan.steps) :], strict=True):
        if e.after_only:
            assert _DOT_AFTER.fullmatch(line), line
        else:
            m = _DOT_EDGE.fullmatch(line)
            assert m, line
            if all(c.isprintable() for v in e.variables for c in v):
                assert _dot_unescape(m.group(3)) == ", ".join(e.variables)


def check_text(plan: Plan, text: str) -> None:
    lines = text.splitlines()
    expected = 1 + len(plan.steps) + len(plan.edges)
    expected += sum(bool(s.parameters) + bool(s.metrics) for s in plan.steps)
    assert len(lines) == expected
    assert all(c.isprintable() for line in lines for c in line)


def test_nasty_names() -> None:
    plan = _plan(NASTY, NASTY, NASTY[:3])
    pipeline = 'pipe "line"\n<x>'
    check_mermaid(plan, pipeline, render(plan, "mermaid", pipeline=pipeline))
    check_dot(plan, pipeline, render(plan, "dot", pipeline=pipeline))
    check_text(plan, render(plan, "text", pipeline=pipeline))


names = st.text(min_size=1, max_size=10)


@fuzz_settings(200)
@given(
    st.lists(names, min_size=1, max_size=5),
    st.lists(names, min_size=1, max_size=4),
    st.lists(names, max_size=3),
    st.text(max_size=20),
)
def test_no_name_breaks_the_output(
    steps: list[str], variables: list[str], params: list[str], pipeline: str
) -> None:
    plan = _plan(steps, variables, params)
    check_mermaid(plan, pipeline, render(plan, "mermaid", pipeline=pipeline))
    check_dot(plan, pipeline, render(plan, "dot", pipeline=pipeline))
    check_text(plan, render(plan, "text", pipeline=pipeline))


def test_render_is_deterministic() -> None:
    for name in GOLDEN_CASES:
        case = load_yaml(CASES / f"{name}.yaml")
        for fmt in FORMATS:
            a = render(build(case)[0], fmt, pipeline=name)
            b = render(build(case)[0], fmt, pipeline=name)
            assert a == b


@pytest.mark.parametrize("fmt", ["mermaid", "dot", "text"])
def test_the_command_prints_the_projects_plan(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`nbflow graph` validates the project, then prints its plan as `render` draws it; a
    project with errors prints its diagnostics and nothing to stdout."""
    from nbflow.check.validate import load_project
    from tests.support.cases import CASES as MANIFEST_CASES
    from tests.support.cli import run_cli

    valid = MANIFEST_CASES / "valid" / "with-tuning"
    _, project = load_project(str(valid))
    assert project is not None
    r = run_cli(capsys, "graph", "--format", fmt, str(valid))
    assert r.code == 0, r.err
    assert r.out == render(project.plan, fmt, pipeline=project.name).rstrip("\n") + "\n"
    assert all(s.name in r.out for s in project.steps)
    bad = run_cli(capsys, "graph", "--format", fmt, str(MANIFEST_CASES / "invalid" / "after-cycle"))
    assert bad.code == 1 and bad.out == "" and "NBF" in bad.err
