"""`nbflow run`: generated pipelines run end to end on this machine with kfp.local, through the
library (`nbflow.local.run.run`) and through the CLI in-process, as a user runs them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from nbflow.cli.main import EXIT_INPUT, EXIT_OK, EXIT_USAGE
from nbflow.local.run import RunError, RunResult, parse_parameters, run
from tests.support.cli import Result, run_cli
from tests.support.projects import load, md, tagged, write_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One kfp.local state folder for the library runs of this module."""
    return tmp_path_factory.mktemp("state")


def statuses(result: RunResult) -> dict[str, str]:
    return {s.name: s.status for s in result.steps}


def cli_json(r: Result) -> dict[str, Any]:
    assert 'File "/' not in r.err, r.err  # no traceback of nbflow's or kfp's own code
    return json.loads(r.out)


def json_statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["status"] for s in doc["steps"]}


# -- data of every serializer kind, parallel branches, reports -----------------------------------

KINDS_CELLS = [
    "import numpy as np",
    tagged("scale = 2", "parameters"),
    md("## Load"),
    """\
import pandas as pd
from sklearn.linear_model import LinearRegression

arr = np.arange(6, dtype=float).reshape(3, 2)
frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
model = LinearRegression().fit(arr[:, :1], arr[:, 1])

class Box:
    def __init__(self, v):
        self.v = v

bundle = {"f": lambda v: v * 3, "box": Box(5)}
print("loaded", arr.shape)""",
    """\
left = float(arr.sum()) * scale + bundle["f"](1)
print(f"left={left}")""",
    """\
assert type(bundle["box"]).__name__ == "Box" and list(frame.columns) == ["a", "b"]
right = int(frame["a"].sum()) + bundle["box"].v + round(float(model.predict(np.array([[10.0]]))[0]), 6)
print("letters", "".join(frame["b"]))""",
    """\
total = left + right
print(f"total is {total}")""",
]
KINDS_MANIFEST = """
name: kinds
setup: 1
steps:
  load: {cells: 4}
  left: {cells: 5}
  right: {cells: 6}
  join: {cells: 7}
parameters: {scale: 2}
metrics: {total: maximize}
"""


def test_every_kind_of_value_crosses_steps_and_branches_join(tmp_path: Path, state: Path) -> None:
    project = load(write_project(tmp_path / "kinds", KINDS_CELLS, KINDS_MANIFEST))
    plan = {s.name: s for s in project.plan.steps}
    # left and right read only load's output; join reads both
    assert plan["left"].upstream == ("load",) and plan["right"].upstream == ("load",)
    assert set(plan["join"].upstream) == {"left", "right"}
    seen: list[tuple[str, str]] = []
    result = run(project, state_dir=state, progress=lambda s: seen.append((s.name, s.status)))
    assert result.ok, [s.error for s in result.steps]
    assert statuses(result) == dict.fromkeys(("load", "left", "right", "join"), "succeeded")
    # left: 15 * 2 + 3; right: 6 + 5 + 11
    assert result.metrics == {"total": 55.0}
    order = [name for name, status in seen if status == "running"]
    # kfp.local runs one task at a time; the two branches in either order
    assert order[0] == "load" and set(order[1:3]) == {"left", "right"} and order[3] == "join"

    # each variable was saved by the serializer of its kind
    [folder] = (state / "artifacts").glob("kinds-*")
    kinds = {
        out.name: json.loads((out / "nbflow.json").read_text())["serializer"]
        for out in (folder / "step-load").glob("out_*")
    }
    assert kinds == {
        "out_arr": "numpy",
        "out_frame": "parquet",
        "out_model": "joblib",
        "out_bundle": "cloudpickle",
    }

    # a report per step, with what the step printed; run.json beside them
    reports = {s.name: Path(s.report or "") for s in result.steps}
    assert all(p.is_file() and p.parent == result.run_dir / "reports" for p in reports.values())
    assert all("<html" in p.read_text(encoding="utf-8")[:500].lower() for p in reports.values())
    assert "loaded (3, 2)" in reports["load"].read_text(encoding="utf-8")
    assert "left=33.0" in reports["left"].read_text(encoding="utf-8")
    assert "letters xyz" in reports["right"].read_text(encoding="utf-8")
    assert "total is 55.0" in reports["join"].read_text(encoding="utf-8")
    assert "total is 55.0" in Path(result.steps[3].log or "").read_text(encoding="utf-8")
    recorded = json.loads((result.run_dir / "run.json").read_text())
    assert recorded["ok"] is True and recorded["metrics"] == {"total": 55.0}
    assert recorded["parameters"] == {"scale": 2}
    assert (state / "runs" / "latest" / "run.json").is_file()


# -- parameters and the cache, through the CLI ---------------------------------------------------

CHAIN_CELLS = [
    "import numpy as np",
    tagged("scale = 2\nlabel = 'x'", "parameters"),
    "a = np.arange(4)",
    "b = a * scale",
    "total = float(b.sum())\nprint(label, total)",
]
CHAIN_MANIFEST = """
name: chain
setup: 1
steps:
  one: {cells: 3}
  two: {cells: 4}
  three: {cells: 5}
parameters: {scale: 2, label: x}
metrics: {total: maximize}
"""


def test_cache_and_parameters_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_project(tmp_path / "chain", CHAIN_CELLS, CHAIN_MANIFEST)
    path = str(root)

    r = run_cli(capsys, "run", path, "--json")
    assert r.code == EXIT_OK, r.err
    doc = cli_json(r)
    assert json_statuses(doc) == {"one": "succeeded", "two": "succeeded", "three": "succeeded"}
    assert doc["metrics"] == {"total": 12.0}
    assert "run succeeded" in r.err and "3 succeeded" in r.err

    # the same run again: everything from the cache, the metric still reported
    r = run_cli(capsys, "run", path)
    assert r.code == EXIT_OK, r.err
    assert r.out == "total=12.0\n"
    assert "3 cached" in r.err

    # a parameter read only by `two`: `one` stays cached, `two` and what follows run again
    r = run_cli(capsys, "run", path, "-p", "scale=3", "--json")
    assert r.code == EXIT_OK, r.err
    doc = cli_json(r)
    assert json_statuses(doc) == {"one": "cached", "two": "succeeded", "three": "succeeded"}
    assert doc["parameters"] == {"scale": 3, "label": "x"}  # typed: an int
    assert doc["metrics"] == {"total": 18.0}

    # --no-cache runs every step
    r = run_cli(capsys, "run", path, "-p", "scale=3", "--no-cache", "--json")
    assert r.code == EXIT_OK, r.err
    assert set(json_statuses(cli_json(r)).values()) == {"succeeded"}

    # a string parameter read by the last step only
    r = run_cli(capsys, "run", path, "-p", "scale=3", "-p", "label=hello world", "--json")
    doc = cli_json(r)
    assert json_statuses(doc) == {"one": "cached", "two": "cached", "three": "succeeded"}
    report = Path(doc["steps"][2]["report"]).read_text(encoding="utf-8")
    assert "hello world 18.0" in report


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "scal=3"], "`scal` is not a parameter of chain (did you mean `scale`?)"),
        (["-p", "scale=three"], "parameter `scale` is int; `three` is not"),
        (["-p", "scale"], "parameter `scale` is not name=value"),
        (["-p", "nothing=1"], "`nothing` is not a parameter of chain (parameters: scale, label)"),
    ],
)
def test_bad_parameters_exit_2_before_running(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_project(tmp_path / "chain", CHAIN_CELLS, CHAIN_MANIFEST)
    r = run_cli(capsys, "run", str(root), *args)
    assert r.code == EXIT_USAGE
    assert r.err == f"nbflow: {message}\n"
    assert not (root / ".nbflow").exists()


def test_parameter_types(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        [
            tagged("i = 1\nf = 1.5\nb = True\ns = 'a'\nl = [1]\nd = {'k': 1}", "parameters"),
            "x = (i, f, b, s, l, d)",
        ],
        """
        name: types
        steps: {one: {cells: 2}}
        parameters: {i: 1, f: 1.5, b: true, s: a, l: [1], d: {default: {k: 1}}}
        """,
    )
    project = load(root)
    pairs = ["i=7", "f=2", "b=no", "s=7", "l=[1, 2]", 'd={"k": 2}']
    assert parse_parameters(project, pairs) == {
        "i": 7,
        "f": 2.0,
        "b": False,
        "s": "7",
        "l": [1, 2],
        "d": {"k": 2},
    }
    with pytest.raises(RunError, match=re.escape("parameter `l` is list; `{}` is not")):
        parse_parameters(project, ["l={}"])
    with pytest.raises(RunError, match="parameter `b` is bool; `maybe` is not"):
        parse_parameters(project, ["b=maybe"])


# -- failures ------------------------------------------------------------------------------------

FAIL_CELLS = [
    "x = 1",
    'y = x + 1\nprint("before the error")\nraise ValueError("boom")',
    "w = y + 1",
]
FAIL_MANIFEST = """
name: fails
steps:
  first: {cells: 1}
  bad: {cells: 2}
  after: {cells: 3}
"""


def test_a_failing_cell_fails_the_run_naming_cell_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_project(tmp_path / "fails", FAIL_CELLS, FAIL_MANIFEST)
    r = run_cli(capsys, "run", str(root), "--json")
    assert r.code == EXIT_INPUT
    assert "Traceback (most recent call last)" in r.err  # the user's traceback, shown ...
    assert 'File "<cell 2>", line 3' in r.err
    assert "step 'bad' failed in cell 2 of nb.ipynb, line 3: ValueError: boom" in r.err
    assert 'File "/' not in r.err  # ... without nbflow's or kfp's frames
    doc = cli_json(r)
    assert doc["ok"] is False
    assert json_statuses(doc) == {"first": "succeeded", "bad": "failed", "after": "not-run"}
    error = doc["steps"][1]["error"]
    assert (
        error.splitlines()[0] == "step 'bad' failed in cell 2 of nb.ipynb, line 3: ValueError: boom"
    )
    assert "executor_input" not in error and "outputFile" not in error  # no kfp chatter
    assert "run failed" in r.err
    # the failed step's report still holds what it printed, and the error
    report = Path(doc["steps"][1]["report"]).read_text(encoding="utf-8")
    assert "before the error" in report and "boom" in report
    assert Path(doc["steps"][0]["report"]).is_file()
    assert doc["steps"][2]["report"] is None
    assert (Path(doc["run_dir"]) / "run.json").is_file()

    # again: the first step comes from the cache, and its report with it
    r = run_cli(capsys, "run", str(root), "--json")
    doc = cli_json(r)
    assert json_statuses(doc) == {"first": "cached", "bad": "failed", "after": "not-run"}
    assert Path(doc["steps"][0]["report"]).is_file()


@pytest.mark.parametrize(
    ("cell", "variable", "type_name"),
    [
        ("g = (i for i in range(3))", "g", "generator"),
        ("import os\nh = open(os.devnull)", "h", "_io.TextIOWrapper"),
    ],
)
def test_a_value_that_cannot_cross_fails_naming_variable_step_and_type(
    cell: str, variable: str, type_name: str, tmp_path: Path, state: Path
) -> None:
    root = write_project(
        tmp_path / "unsavable",
        [cell, f"n = len(list({variable}))"],
        "name: unsavable\nsteps:\n  make: {cells: 1}\n  use: {cells: 2}\n",
    )
    result = run(load(root), state_dir=state)
    assert not result.ok
    assert statuses(result) == {"make": "failed", "use": "not-run"}
    error = result.steps[0].error or ""
    assert error.startswith(f"step 'make': cannot save variable '{variable}' of type {type_name}")
    assert "hint:" in error


def test_a_missing_requirement_stops_the_run_before_it_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_project(
        tmp_path / "reqs",
        ["x = 1"],
        """
        name: reqs
        requirements: [surely-not-installed-pkg==1.0, "numpy<1"]
        steps: {one: {cells: 1}}
        """,
    )
    r = run_cli(capsys, "run", str(root))
    assert r.code == EXIT_USAGE
    assert "surely-not-installed-pkg==1.0" in r.err and "numpy<1 (installed: " in r.err
    assert "Traceback" not in r.err
    assert not (root / ".nbflow").exists()


def test_retries_rerun_a_failed_step(tmp_path: Path, state: Path) -> None:
    marker = tmp_path / "attempted"
    root = write_project(
        tmp_path / "flaky",
        [
            "import pathlib",
            f"marker = pathlib.Path({str(marker)!r})\n"
            "if not marker.exists():\n"
            "    marker.touch()\n"
            "    raise RuntimeError('first attempt fails')\n"
            "done = 1",
        ],
        "name: flaky\nsetup: 1\nsteps:\n  flaky: {cells: 2, retries: 1}\n",
    )
    seen: list[str] = []
    result = run(load(root), state_dir=state, progress=lambda s: seen.append(s.status))
    assert result.ok, result.steps[0].error
    assert result.steps[0].attempts == 2
    assert seen == ["running", "failed", "retrying", "running", "succeeded"]
    assert result.steps[0].error is None  # the first attempt's error is gone
    log = Path(result.steps[0].log or "").read_text(encoding="utf-8")
    assert "first attempt fails" in log  # but both attempts are in the log


def test_names_that_shadow_generated_code_and_an_int_default_for_a_float(
    tmp_path: Path, state: Path
) -> None:
    # parameters named like the generated module's globals and the components' own arguments;
    # `C: {type: float, default: 1}`: kfp refuses an int for a float input unless nbflow converts it
    names = {"dsl": 1, "pipeline": 2, "json": 3, "NamedTuple": 4, "report": 5, "metrics": 6}
    root = write_project(
        tmp_path / "names",
        [
            tagged("\n".join(f"{k} = {v}" for k, v in names.items()) + "\nC = 1", "parameters"),
            "x = " + " + ".join(names) + " + C",
            "total = x * 1.0",
        ],
        """
        name: names
        steps:
          first-step: {cells: 2}
          second: {cells: 3}
        parameters: {dsl: 1, pipeline: 2, json: 3, NamedTuple: 4, report: 5, metrics: 6, C: {type: float, default: 1}}
        metrics: {total: maximize}
        """,
    )
    project = load(root)
    result = run(project, state_dir=state)
    assert result.ok, [s.error for s in result.steps]
    assert result.metrics == {"total": 22.0} and result.parameters["C"] == 1.0
    result = run(project, state_dir=state, parameters={"C": 2, "report": 10})
    assert result.metrics == {"total": 28.0}
    with pytest.raises(RunError, match="not parameters of names: nope"):
        run(project, state_dir=state, parameters={"nope": 1})


def test_cell_code_holding_kfp_placeholders_reaches_the_step_byte_for_byte(
    tmp_path: Path, state: Path
) -> None:
    # kfp.local, like the cluster's launcher, substitutes `{{$...}}` and `/kfp-workspace` in the
    # container's command, where the component's source goes: the cells' code must not be there
    # as text (`{{$}}` used to crash the step, the artifact path silently became `null`)
    texts = [
        "{{$}}",
        "{{$.outputs.artifacts['report'].path}}",
        "/kfp-workspace",
        "{{workflow.name}}",
    ]
    out = tmp_path / "seen.json"
    root = write_project(
        tmp_path / "placeholders",
        [
            "import json",
            "texts = [" + ", ".join(json.dumps(t) for t in texts) + "]\n"
            "for t in texts:\n"
            "    print('seen:', t)\n"
            f"open({str(out)!r}, 'w').write(json.dumps(texts))",
        ],
        "name: placeholders\nsetup: 1\nsteps:\n  show: {cells: 2}\n",
    )
    result = run(load(root), state_dir=state)
    assert result.ok, result.steps[0].error
    assert json.loads(out.read_text(encoding="utf-8")) == texts
    log = Path(result.steps[0].log or "").read_text(encoding="utf-8")
    for t in texts:
        assert f"seen: {t}\n" in log
