"""Steps compute what the notebook computes (issue 14).

Each test is a small notebook that runs straight through in a Jupyter kernel (nbclient) and
through `nbflow run` (kfp.local, each step in its own process); its last step prints
`RESULT=<json>` and the two results must be equal, exactly. The patterns are the issue's, with
their neighbours: functions and classes defined in one step and used in another, closures,
containers of models, in-place changes through a loop variable, relative paths, install cells
and values that need a serializer of their own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from nbflow.check.validate import load_project
from nbflow.cli.main import EXIT_OK
from nbflow.local.run import RunResult, run
from tests.support.cli import run_subprocess
from tests.support.projects import Cell, load, tagged, write_project

pytestmark = pytest.mark.slow

PRINT_RESULT = 'import json\nprint("RESULT=" + json.dumps(result, sort_keys=True))'


def straight_through(root: Path, notebook: str = "nb.ipynb") -> Any:
    """The notebook executed top to bottom in a kernel, in its folder, as Jupyter runs it."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(root / notebook, as_version=4)
    NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(root)}}
    ).execute()
    texts = [o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    return _result("\n".join(texts))


def _result(text: str) -> Any:
    lines = [line for line in text.splitlines() if line.startswith("RESULT=")]
    assert len(lines) == 1, text
    return json.loads(lines[0].removeprefix("RESULT="))


def pipeline(root: Path, state: Path, **parameters: Any) -> tuple[Any, RunResult]:
    """The project run with `nbflow run`'s engine, from another working directory."""
    result = run(load(root), parameters=parameters, state_dir=state)
    logs = {s.name: Path(s.log).read_text(encoding="utf-8") for s in result.steps if s.log}
    assert result.ok, {s.name: s.error for s in result.steps} | logs
    return _result("\n".join(logs.values())), result


def cli_pipeline(root: Path, cwd: Path) -> tuple[Any, dict[str, str]]:
    """`nbflow run ROOT --json` in a subprocess started in `cwd`, as a user runs it: the
    result, and each step's status."""
    done = run_subprocess("run", str(root), "--json", cwd=cwd, timeout=300)
    assert done.code == EXIT_OK, done.out + done.err
    doc = json.loads(done.out)
    logs = [Path(s["log"]).read_text(encoding="utf-8") for s in doc["steps"] if s.get("log")]
    statuses = {s["name"]: s["status"] for s in doc["steps"]}
    return (_result("\n".join(logs)) if logs else None), statuses


def project(tmp: Path, cells: Sequence[str | Cell], manifest: str) -> Path:
    return write_project(tmp / "project", cells, manifest)


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`nbflow run` is started from a folder that is not the notebook's."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)


# -- item 1: functions, classes and closures see the globals of the step that calls them --------


def test_functions_defined_in_one_step_see_the_calling_steps_globals(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        [
            tagged("IMG_SIZE = 64\nBATCH_SIZE = 8", "parameters"),
            """\
def get_train_generator():
    return {"size": IMG_SIZE, "batch": BATCH_SIZE, "extra": OFFSET}

class Shape:
    def area(self):
        return IMG_SIZE * IMG_SIZE

def make_scaler(k):
    def scale(x):
        return x * k + IMG_SIZE
    return scale

scale = make_scaler(3)""",
            "OFFSET = 5",
            """\
result = [get_train_generator(), Shape().area(), scale(2)]
"""
            + PRINT_RESULT,
        ],
        """
        name: globals
        parametersCell: 1
        parameters: {IMG_SIZE: 64, BATCH_SIZE: 8}
        steps:
          define: {cells: 2}
          offset: {cells: 3}
          use: {cells: 4}
        """,
    )
    expected = straight_through(root)
    assert expected == [{"size": 64, "batch": 8, "extra": 5}, 4096, 70]
    got, _ = pipeline(root, tmp_path / "state")
    assert got == expected
    # a parameter reaches the functions through the step that calls them
    got, _ = pipeline(root, tmp_path / "state", IMG_SIZE=128)
    assert got == [{"size": 128, "batch": 8, "extra": 5}, 16384, 134]


# -- items 2 and 3: shared references and changes through them --------------------------------

SETUP = """\
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier
X = [[0.0], [1.0], [2.0], [3.0]]
y = [0, 0, 1, 1]"""


def test_values_that_share_objects_arrive_sharing_them(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        [
            SETUP,
            """\
model1 = LogisticRegression()
model3 = DecisionTreeClassifier(random_state=0)
classifiers = [model1, model3]
models = {"lr": model1, "tree": model3}""",
            """\
for clf in classifiers:
    clf.fit(X, y)
tree_pred = model3.predict(X).tolist()""",
            """\
result = {
    "tree": tree_pred,
    "lr": models["lr"].predict(X).tolist(),
    "same": [models["lr"] is model1, classifiers[1] is model3],
}
"""
            + PRINT_RESULT,
        ],
        """
        name: shared
        setup: 1
        steps:
          make: {cells: 2}
          fit: {cells: 3}
          report: {cells: 4}
        """,
    )
    expected = straight_through(root)
    assert expected["same"] == [True, True]
    got, result = pipeline(root, tmp_path / "state")
    assert got == expected
    report = Path(next(s.report for s in result.steps if s.name == "make") or "").read_text()
    assert "bundle" in report  # saved together, as one object graph


def test_changes_through_a_loop_variable_reach_later_steps(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        [
            "import pandas as pd",
            """\
train = pd.DataFrame({"v": [1.0, None, 3.0]})
test = pd.DataFrame({"v": [None, 5.0]})""",
            """\
frames = [train, test]
for f in frames:
    f["w"] = f["v"] * 10
for df in [train, test]:
    df.fillna(0, inplace=True)""",
            """\
result = [train.to_dict("list"), test.to_dict("list")]
"""
            + PRINT_RESULT,
        ],
        """
        name: alias
        setup: 1
        steps:
          load: {cells: 2}
          features: {cells: 3}
          use: {cells: 4}
        """,
    )
    expected = straight_through(root)
    assert expected[0]["w"] == [10.0, 0.0, 30.0]
    got, _ = pipeline(root, tmp_path / "state")
    assert got == expected


# -- item 4: the notebook's folder, and the files it reads -------------------------------------


def test_steps_run_in_the_notebooks_folder_and_files_are_inputs(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        [
            "from pathlib import Path\nfrom helpers import double",
            "numbers = [int(v) for v in Path('data.csv').read_text().split()]",
            "result = [double(n) for n in numbers]\n" + PRINT_RESULT,
        ],
        """
        name: files
        setup: 1
        steps:
          load: {cells: 2}
          use: {cells: 3}
        """,
    )
    (root / "helpers.py").write_text("def double(n):\n    return 2 * n\n")
    (root / "data.csv").write_text("1 2 3\n")
    report, _ = load_project(root)
    [warning] = [d for d in report.diagnostics if d.code == "NBF709"]
    assert "`data.csv`" in warning.message and warning.location.cell == 2
    assert straight_through(root) == [2, 4, 6]
    elsewhere = tmp_path / "cwd"
    got, _ = cli_pipeline(root, elsewhere)
    assert got == [2, 4, 6]
    # a changed file is a changed input: the step that reads it runs again
    (root / "data.csv").write_text("5 6\n")
    got, statuses = cli_pipeline(root, elsewhere)
    assert got == straight_through(root) == [10, 12]
    assert statuses == {"load": "succeeded", "use": "succeeded"}
    # an unchanged file: everything from the cache
    _, statuses = cli_pipeline(root, elsewhere)
    assert statuses == {"load": "cached", "use": "cached"}


# -- item 5: package installs in cells ----------------------------------------------------------


def test_install_lines_are_skipped_and_validate_warns(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        [
            # fails at once in the kernel (no index, no such file): nothing is installed
            "!pip install --quiet --no-index --no-deps ./no-such-package.whl\nvalue = 21",
            "result = value * 2\n" + PRINT_RESULT,
        ],
        """
        name: installs
        steps:
          make: {cells: 1}
          use: {cells: 2}
        """,
    )
    report, _ = load_project(root)
    [warning] = [d for d in report.diagnostics if d.code == "NBF708"]
    assert warning.location.cell == 1 and warning.location.cell_line == 1
    assert "requirements:" in (warning.hint or "")
    expected = straight_through(root)
    got, result = pipeline(root, tmp_path / "state")
    assert got == expected == 42
    log = Path(next(s.log for s in result.steps if s.name == "make") or "").read_text()
    [skipped] = [line for line in log.splitlines() if "no-such-package.whl" in line]
    assert "cell 1, line 1: skipped `!pip install --quiet --no-index" in skipped


# -- item 6: values that need a serializer of their own -----------------------------------------


def test_xgboost_and_lightgbm_values_cross_steps(tmp_path: Path) -> None:
    pytest.importorskip("xgboost")
    pytest.importorskip("lightgbm")
    root = project(
        tmp_path,
        [
            "import numpy as np\nimport xgboost as xgb\nimport lightgbm as lgb",
            """\
rng = np.random.default_rng(0)
features = rng.normal(size=(200, 3))
labels = (features[:, 0] + features[:, 1] > 0).astype(int)
dtrain = xgb.DMatrix(features, label=labels)
ltrain = lgb.Dataset(features, label=labels, params={"verbose": -1}).construct()""",
            """\
booster = xgb.train({"max_depth": 2, "seed": 0}, dtrain, num_boost_round=5)
gbm = lgb.train({"verbose": -1, "seed": 0, "num_leaves": 4}, ltrain, num_boost_round=5)""",
            """\
result = [
    booster.predict(dtrain).round(6).tolist()[:10],
    gbm.predict(features).round(6).tolist()[:10],
    dtrain.num_row(),
]
"""
            + PRINT_RESULT,
        ],
        """
        name: boosters
        setup: 1
        steps:
          data: {cells: 2}
          train: {cells: 3}
          score: {cells: 4}
        """,
    )
    expected = straight_through(root)
    got, _ = pipeline(root, tmp_path / "state")
    assert got == expected
