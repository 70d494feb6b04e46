"""The run report (`index.html` in each run folder): rendered from a run's result and its plan,
written from the run's first moment, with `runs/latest` pointing at the run in progress."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nbflow.dataflow.plan import Edge, Plan, StepPlan
from nbflow.local import report
from nbflow.local.run import RunResult, StepResult, run
from tests.support.cli import run_cli
from tests.support.projects import load, tagged, write_project

PLAN = Plan(
    steps=(
        StepPlan("load", (2,)),
        StepPlan("left", (3,), upstream=("load",)),
        StepPlan("right", (4,), upstream=("load",)),
        StepPlan("join", (5,), upstream=("left", "right")),
    ),
    edges=(
        Edge("load", "left", ("a",), False),
        Edge("load", "right", ("a",), False),
        Edge("left", "join", ("b",), False),
        Edge("right", "join", (), True),
    ),
)


def result(tmp_path: Path) -> RunResult:
    steps = [
        StepResult("load", "succeeded", 1.5, 1, str(tmp_path / "logs/load.log"),
                   str(tmp_path / "reports/load.html")),
        StepResult("left", "cached", 0, 0, None, str(tmp_path / "reports/left.html")),
        StepResult("right", "failed", 0.25, 2, str(tmp_path / "logs/right.log"), None,
                   error="step 'right' failed: cell 4, line 1: ZeroDivisionError"),
        StepResult("join", "not-run"),
    ]  # fmt: skip
    return RunResult(
        run_dir=tmp_path,
        pipeline="demo<b>",
        ok=False,
        parameters={"lr": 0.5, "name": "<script>x</script>"},
        steps=steps,
        metrics={"count": 7.0, "loss": 0.125},
        seconds=3.0,
        started="2026-01-01T00:00:00+00:00",
        status="failed",
    )


def test_the_page_holds_parameters_metrics_steps_and_the_dag(tmp_path: Path) -> None:
    page = report.render(result(tmp_path), PLAN, status="failed", started="2026-01-01")
    # self-contained: no script, nothing from another host
    assert "<script" not in page and not re.search(r"(src|href)=\"(https?:)?//", page)
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "demo&lt;b&gt;" in page
    # an integral metric as an integer, a fraction as it is
    assert "<td class='num'>7</td>" in page and "<td class='num'>0.125</td>" in page
    # every step is a row; links relative to the run folder, for the steps that have them
    for name, status in (("load", "succeeded"), ("left", "cached"), ("right", "failed")):
        assert f'<tr data-step="{name}"><td>' in page and f"s-{status}" in page
    assert page.count('href="reports/load.html"') == 3  # name, report link, DAG node
    assert 'href="logs/right.log"' in page and 'href="reports/right.html"' not in page
    # the DAG: one node per step with its status, one path per edge, the `after` one dashed
    nodes = re.findall(r'<g class="node" data-step="([^"]+)" data-status="([^"]+)"', page)
    assert nodes == [("load", "succeeded"), ("left", "cached"), ("right", "failed"),
                     ("join", "not-run")]  # fmt: skip
    assert page.count('<path class="edge"') == 4 and page.count("stroke-dasharray") == 1
    assert "ZeroDivisionError" in page


def test_the_dag_lays_out_steps_in_rows_by_depth() -> None:
    svg = report.dag_svg(PLAN, {})
    found = re.findall(r'data-step="(\w+)".*?<rect x="\d+" y="(\d+)"', svg)
    ys = {name: int(y) for name, y in found}
    assert ys["load"] < ys["left"] == ys["right"] < ys["join"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [(3.0, "3"), (3, "3"), (0.1, "0.1"), (1e20, "1e+20"), (True, "true"), ("a", "a"),
     ([1, 2], "[1, 2]")],
)  # fmt: skip
def test_values_print_as_users_read_them(value: object, shown: str) -> None:
    assert report.format_value(value) == shown


# -- written by a real run -----------------------------------------------------------------------

CELLS = [
    "import numpy as np",
    tagged("scale = 2", "parameters"),
    "a = np.arange(4)",
    "b = float((a * scale).sum())\ncount = 3",
]
MANIFEST = """
name: small
setup: 1
steps:
  one: {cells: 3}
  two: {cells: 4}
parameters: {scale: 2}
metrics: {b: maximize, count: maximize}
"""


@pytest.mark.slow
def test_a_run_has_its_page_and_is_latest_from_its_first_moment(tmp_path: Path) -> None:
    project = load(write_project(tmp_path / "p", CELLS, MANIFEST))
    state = tmp_path / "state"
    seen: dict[str, str] = {}

    def started(run_dir: Path) -> None:
        seen["latest"] = (state / "runs" / "latest").resolve().name
        seen["page"] = (run_dir / "index.html").read_text(encoding="utf-8")
        seen["json"] = (run_dir / "run.json").read_text(encoding="utf-8")

    def progress(step: StepResult) -> None:
        if step.status == "running" and step.name == "two":
            seen["mid"] = (state / "runs" / "latest" / "index.html").read_text(encoding="utf-8")

    res = run(project, state_dir=state, started=started, progress=progress)
    assert res.ok
    assert seen["latest"] == res.run_dir.name
    assert 'id="run-status">running<' in seen["page"] and 'data-status="pending"' in seen["page"]
    assert json.loads(seen["json"])["status"] == "running"
    assert 'data-step="one" data-status="succeeded"' in seen["mid"]
    assert 'data-step="two" data-status="running"' in seen["mid"]
    page = (res.run_dir / "index.html").read_text(encoding="utf-8")
    assert 'id="run-status">succeeded<' in page and 'href="reports/two.html"' in page
    doc = json.loads((res.run_dir / "run.json").read_text(encoding="utf-8"))
    assert doc["status"] == "succeeded" and doc["started"].endswith("+00:00")

    # a run that does not claim `latest` (a tuning trial) leaves it where it was
    other = run(project, state_dir=state, latest=False)
    assert (state / "runs" / "latest").resolve().name == res.run_dir.name != other.run_dir.name


@pytest.mark.slow
def test_the_cli_prints_the_run_folder_first_and_integer_metrics_as_integers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_project(tmp_path / "p", CELLS, MANIFEST)
    monkeypatch.chdir(root)
    r = run_cli(capsys, "run", ".", "--no-cache")
    assert r.code == 0, r.err
    lines = r.err.splitlines()
    folder = next(line for line in lines if "run folder:" in line)
    assert lines.index(folder) < min(i for i, line in enumerate(lines) if "running" in line)
    run_id = (root / ".nbflow/runs/latest").resolve().name
    assert f".nbflow/runs/{run_id}" in folder
    assert f".nbflow/runs/{run_id}/index.html" in lines[-1]
    assert r.out.splitlines() == ["b=12", "count=3"]
